"""Issue 12, item 1: a bad grid element never stops a batch; the region names every bus it cannot assess."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from powercheck.cli import main
from powercheck.grid.region import GridRegion
from powercheck.io import decision_from_row
from powercheck.models import CheckStatus, Outcome
from tests.helpers.bad_region import BAD_POINTS, EXPECTED_PROBLEM, bad_networks, ev_notification
from tests.helpers.grids import bus_named


def test_region_loads_and_names_every_bus_it_cannot_assess(bad_region_dir, cache_dir, capsys):
    region = GridRegion.load(bad_region_dir, cache_dir=cache_dir)
    nets = bad_networks()
    problems = {(p["network"], p["bus"]): p for p in region.grid_problems()}
    expected = {("isl", bus_named(nets["isl"], "island")): "islanded"}
    for nid in ("notr", "oos", "zero"):
        lv = nets[nid].bus.index[nets[nid].bus.vn_kv < 1.0]
        expected.update({(nid, int(b)): EXPECTED_PROBLEM[nid] for b in lv})
    assert {k: p["problem"] for k, p in problems.items()} == expected
    assert "zero impedance" in problems[("zero", bus_named(nets["zero"], "house_3"))]["why"]
    assert "line" in problems[("zero", bus_named(nets["zero"], "house_3"))]["why"]
    assert problems[("isl", bus_named(nets["isl"], "island"))]["customer_points"] == 1

    # the CLI lists them too: JSON on stdout, a warning naming network and bus on stderr
    assert main(["region", "--grid", str(bad_region_dir), "--cache-dir", str(cache_dir), "-q"]) == 0
    out, err = capsys.readouterr()
    listed = json.loads(out)["grid_problems"]
    assert {(p["network"], p["bus"], p["problem"]) for p in listed} == {(n, b, w) for (n, b), w in expected.items()}
    assert "cannot be assessed" in err and "network isl bus" in err


def test_screen_decides_the_batch_and_escalates_the_unassessable_buses(bad_region_dir, cache_dir, tmp_path, capsys):
    path = tmp_path / "n.jsonl"
    records = [ev_notification(nid, bus, f"P-{i}") for i, (nid, bus) in enumerate(BAD_POINTS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "d.parquet"
    rc = main(["screen", str(path), "--grid", str(bad_region_dir), "--cache-dir", str(cache_dir), "--out", str(out),
               "-q", "--no-progress"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    decisions = {d.notification_id: d for d in (decision_from_row(r) for r in pq.read_table(out).to_pylist())}
    assert len(decisions) == len(BAD_POINTS)
    for i, (nid, bus) in enumerate(BAD_POINTS):
        d = decisions[f"P-{i}"]
        unusable = nid in ("notr", "oos", "zero") or bus == "island"
        if unusable:
            assert d.outcome is Outcome.ESCALATE, d.reasons
            assert [c.rule_id for c in d.checks] == ["GRID.DATA"]
            assert d.checks[0].status is CheckStatus.NOT_EVALUATED
            assert f"network {nid}" in d.reasons[0] and "cannot be computed" in d.reasons[0]
            assert d.measures and "grid model" in d.measures[0].text
        else:  # assessed on the grid: every check ran and passes (the policy decides whether the job type is auto)
            rules = [c.rule_id for c in d.checks]
            assert "GRID.DATA" not in rules and "VOLT.PEAK_MIN" in rules and "THERMAL.LINE_PEAK" in rules, rules
            assert all(c.status is CheckStatus.PASS for c in d.checks), d.reasons
            assert d.outcome is not Outcome.REJECT_INCOMPLETE


def test_one_notification_that_crashes_the_engine_does_not_stop_the_batch(demo_region, policy, tmp_path, monkeypatch):
    """Whatever raises inside the assessment of one notification, the others are decided and it is escalated."""
    from powercheck.demo import demo_notifications_path
    from powercheck.ledger import open_ledger
    from powercheck.rules import engine as engine_mod
    from powercheck.rules.engine import Assessor
    from powercheck.screen import screen_file

    real = engine_mod.demand_cases

    def fragile(notifications, *args, **kwargs):
        if any(n.notification_id == "BOOM" for n in notifications):
            raise FloatingPointError("divide by zero encountered in divide")
        return real(notifications, *args, **kwargs)

    monkeypatch.setattr(engine_mod, "demand_cases", fragile)
    lines = demo_notifications_path().read_text(encoding="utf-8").splitlines()[:30]
    boom = json.loads(lines[4])
    boom["notification_id"] = "BOOM"
    lines[4] = json.dumps(boom)
    src = tmp_path / "n.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store, state = open_ledger(None, demo_region, valid_days=365)
    assessor = Assessor(demo_region, policy, ledger=state)
    summary = screen_file(src, assessor, tmp_path / "d.parquet", ledger=store)
    rows = {r["notification_id"]: r for r in pq.read_table(tmp_path / "d.parquet").to_pylist()}
    assert summary.records == 30 and len(rows) == 30
    assert rows["BOOM"]["outcome"] == "escalate"
    assert [c["rule_id"] for c in rows["BOOM"]["checks"]] == ["ENGINE.ERROR"]
    assert "FloatingPointError" in rows["BOOM"]["reasons"][0]
    others = [r for nid, r in rows.items() if nid != "BOOM"]
    assert all("ENGINE.ERROR" not in [c["rule_id"] for c in r["checks"]] for r in others)
    # the ledger holds what the decided records reserved, and nothing of the failed one
    assert "BOOM" not in {r.notification_id for r in store.list()}
    assert len(store.list()) == sum(1 for r in others if r["ledger_status"] is not None)


def test_the_capacity_map_names_the_points_it_cannot_assess(bad_region_dir, cache_dir, tmp_path, capsys):
    out, html = tmp_path / "cap.parquet", tmp_path / "cap.html"
    assert main(["capacity", "--grid", str(bad_region_dir), "--cache-dir", str(cache_dir), "--out", str(out),
                 "--html", str(html), "-q"]) == 0, capsys.readouterr().err  # fmt: skip
    rows = {(r["network_id"], r["bus"]): r for r in pq.read_table(out).to_pylist()}
    nets = bad_networks()
    assert len(rows) == len(BAD_POINTS)
    for nid, bus_name in BAD_POINTS:
        r = rows[(nid, bus_named(nets[nid], bus_name))]
        if nid in ("notr", "oos", "zero") or bus_name == "island":
            assert r["evaluated"] is False and r["ev_3ph_kw_max"] is None and r["grid_problem"], r
        else:
            assert r["evaluated"] is True and r["grid_problem"] is None and r["ev_3ph_kw_max"] > 0, r
    assert "islanded" in rows[("isl", bus_named(nets["isl"], "island"))]["grid_problem"]
    assert html.read_text(encoding="utf-8").count("<tr") >= len(BAD_POINTS)
