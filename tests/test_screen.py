"""The main job end to end: `powercheck screen` on the embedded demo data."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from powercheck.cli import main
from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications, write_notifications_parquet
from powercheck.screen import screen_file

ROOT = Path(__file__).parents[1]


def _records(path):
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_screen_demo_writes_one_decision_per_record(tmp_path, cache_dir, capsys):
    out = tmp_path / "decisions.parquet"
    code = main(
        ["screen", str(demo_notifications_path()), "--out", str(out), "--cache-dir", str(cache_dir), "--no-progress"]
    )
    assert code == 0
    table = pq.read_table(out).to_pandas()
    lines = _records(demo_notifications_path())
    assert len(table) == len(lines) == 228
    assert sorted(table.source_line) == list(range(1, 229))  # every input line decided once
    # decided in submitted order (records without a readable time last)
    dated = table[table.notification_id.str.startswith("ELS-2026-1")]
    assert dated.source_line.is_monotonic_increasing
    counts = table.outcome.value_counts().to_dict()
    # the default policy auto-approves metering-point work and OV/MV changes only (no appliance job); an OV change
    # whose fuse is too large for the KV on record is approved on the condition of a smaller main fuse
    assert set(counts) == {"auto_approve", "escalate", "request_info", "reject_incomplete", "approved_with_conditions"}
    assert set(table[table.outcome == "auto_approve"].job_type) <= {"meter_work", "ov_mv_change"}
    assert set(table[table.outcome == "approved_with_conditions"].job_type) == {"ov_mv_change"}
    # the seven deliberately broken records: 4 invalid, 1 incomplete, a motor without its datasheet values
    # (request_info), 1 unknown metering point
    bad = table[table.notification_id.str.contains("BAD") | table.notification_id.str.startswith("invalid:")]
    assert len(bad) == 7
    by_id = {r.notification_id: r for r in bad.itertuples()}
    assert (
        "check digit" in by_id["ELS-2026-BAD-01"].reasons[0] and by_id["ELS-2026-BAD-01"].outcome == "reject_incomplete"
    )
    assert "appliances[0].connection" in by_id["ELS-2026-BAD-02"].reasons[0]
    assert "appliances[0].rated_kw" in by_id["ELS-2026-BAD-05"].reasons[0]
    assert by_id["ELS-2026-BAD-04"].outcome == "escalate"
    assert by_id["ELS-2026-BAD-06"].outcome == "request_info"
    assert "datasheet values needed" in by_id["ELS-2026-BAD-06"].reasons[0]
    assert "not valid JSON" in [r for r in bad.itertuples() if r.notification_id.startswith("invalid:")][0].reasons[0]
    # every approved decision has only passing checks and a score of at least the policy margin
    approved = table[table.outcome == "auto_approve"]
    assert len(approved) >= 25
    # the in-memory ledger: every approval and escalation is a request, incomplete records are not
    status = {"auto_approve": "approved", "approved_with_conditions": "approved_with_conditions", "escalate": "pending"}
    completion = table.duplicated(["notification_id", "revision"], keep="first")  # the demo's completion notices
    for outcome, ledger_status in zip(table.outcome[~completion], table.ledger_status[~completion]):
        assert ledger_status == status.get(outcome)
    # a completion notice that matches marks its request built; one that differs leaves it approved
    done = table[completion]
    assert sorted(zip(done.outcome, done.ledger_status)) == [("auto_approve", "built"), ("escalate", "approved")]
    for checks, score, done_ in zip(approved.checks, approved.score, completion[approved.index]):
        assert all(c["status"] == "pass" for c in checks)
        assert score >= 0.05 or (done_ and math.isnan(score))  # a completion notice has no margin to score
    # summary on stdout
    text = capsys.readouterr().out
    assert "auto_approve" in text and f"{len(lines)} notifications in" in text
    assert f"{counts['auto_approve']:>26}" in text


def _ledger_assessor(region, policy):
    from powercheck.ledger import CapacityState
    from powercheck.rules.engine import Assessor
    from tests.helpers.mini import FIXED_TIME

    return Assessor(region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(region))


def test_parquet_input_gives_the_same_decisions(tmp_path, demo_region, policy):
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    pq_in = tmp_path / "n.parquet"
    write_notifications_parquet(valid, pq_in)
    jsonl = tmp_path / "n.jsonl"
    jsonl.write_text("\n".join(json.dumps(n.model_dump(mode="json")) for n in valid) + "\n")
    a = screen_file(pq_in, _ledger_assessor(demo_region, policy), tmp_path / "a.parquet")
    b = screen_file(jsonl, _ledger_assessor(demo_region, policy), tmp_path / "b.parquet")
    ta = pq.read_table(tmp_path / "a.parquet").to_pandas()
    tb = pq.read_table(tmp_path / "b.parquet").to_pandas()
    assert a.outcomes == b.outcomes and a.invalid == 0
    assert ta.outcome.tolist() == tb.outcome.tolist()
    assert ta.input_hash.tolist() == tb.input_hash.tolist()
    assert ta.score.fillna(-99).tolist() == pytest.approx(tb.score.fillna(-99).tolist())


def test_chunking_does_not_change_decisions(tmp_path, demo_region, policy):
    # with the cumulative ledger: chunks are decided in submitted order, each on the ledger of the ones before
    screen_file(demo_notifications_path(), _ledger_assessor(demo_region, policy), tmp_path / "a.parquet", chunk_size=7)
    screen_file(
        demo_notifications_path(), _ledger_assessor(demo_region, policy), tmp_path / "b.parquet", chunk_size=1000
    )
    ta = pq.read_table(tmp_path / "a.parquet")
    tb = pq.read_table(tmp_path / "b.parquet")
    assert ta.num_rows == tb.num_rows == 228
    assert ta.equals(tb)  # every column, list and struct columns included


def test_seen_keys_count_repeats_as_a_set_of_id_revision_pairs():
    import random

    from powercheck.screen import SeenKeys

    rng = random.Random(13)
    keys = [(f"N-{rng.randrange(300)}", 1 if rng.random() < 0.8 else rng.randrange(2, 4)) for _ in range(2000)]
    seen, pairs = SeenKeys(), set()
    for nid, revision in keys:
        assert seen.add(nid, revision) == ((nid, revision) in pairs), (nid, revision)
        pairs.add((nid, revision))
    assert len(seen) == len(pairs)
    assert any(type(v) is set for v in seen._revisions.values()) and any(
        type(v) is int for v in seen._revisions.values()
    )


def test_repeated_id_and_revision_are_counted(tmp_path, demo_region, policy):
    lines = _records(demo_notifications_path())
    keys = [r.notification.key for r in read_notifications(demo_notifications_path()) if r.ok]
    (tmp_path / "twice.jsonl").write_text("\n".join(lines + lines[:40]) + "\n", encoding="utf-8")
    summary = screen_file(tmp_path / "twice.jsonl", _ledger_assessor(demo_region, policy), tmp_path / "d.parquet")
    expected = (
        len(keys) - len(set(keys)) + sum(1 for r in list(read_notifications(demo_notifications_path()))[:40] if r.ok)
    )
    assert summary.duplicates == expected > 40  # the demo's completion notices repeat their request's key


def test_cli_errors_are_one_line(tmp_path, cache_dir, capsys):
    assert main(["screen", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.parquet")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "n.jsonl").write_text("{}\n")
    code = main(
        ["screen", str(tmp_path / "n.jsonl"), "--grid", str(tmp_path / "no-region"), "--cache-dir", str(cache_dir)]
    )
    assert code == 1
    assert "region manifest" in capsys.readouterr().err
    bad_policy = tmp_path / "p.toml"
    bad_policy.write_text("[policy]\nid='x'\nversion='1'\n")
    assert main(["policy", "--policy", str(bad_policy)]) == 1
    assert "param." in capsys.readouterr().err


def test_policy_command_lists_assumptions(capsys):
    assert main(["policy"]) == 0
    out = capsys.readouterr().out
    assert "unbalance_max_percent = 2.0 %  ASSUMPTION" in out
    assert "unverified assumptions ([R]):" in out


def test_installed_console_script_runs_with_progress(tmp_path, cache_dir):
    exe = Path(sys.executable).parent / "powercheck"
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    head = "\n".join(_records(demo_notifications_path())[:20]) + "\n"
    src = tmp_path / "n.jsonl"
    src.write_text(head)
    proc = subprocess.run(
        [str(exe), "screen", str(src), "--out", str(tmp_path / "d.parquet"), "--cache-dir", str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "screening [" in proc.stderr and "20/20" in proc.stderr
    assert pq.read_table(tmp_path / "d.parquet").num_rows == 20


def test_ledger_file_across_runs_and_ledger_commands(tmp_path, cache_dir, capsys):
    ledger = tmp_path / "ledger.sqlite"
    out = tmp_path / "d.parquet"
    args = ["screen", str(demo_notifications_path()), "--out", str(out), "--cache-dir", str(cache_dir)]
    assert main([*args, "--no-progress", "--ledger", str(ledger)]) == 0
    table = pq.read_table(out).to_pandas()
    capsys.readouterr()
    assert main(["ledger", "list", "--ledger", str(ledger), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    recorded = table[table.ledger_status.notna()]
    # one request per notification id (the revision replaced its first request)
    assert len(rows) == recorded.notification_id.nunique()
    by_id = {r["notification_id"]: r for r in rows}
    latest = recorded.sort_values("revision", kind="stable").groupby("notification_id").last()  # completions last
    for nid, row in latest.iterrows():
        assert by_id[nid]["status"] == row.ledger_status and by_id[nid]["revision"] == row.revision
    approved = next(r for r in rows if r["status"] == "approved")
    # completion notice, then an illegal change
    assert main(["ledger", "set-status", approved["notification_id"], "built", "--ledger", str(ledger)]) == 0
    assert "approved -> built" in capsys.readouterr().out
    assert main(["ledger", "set-status", approved["notification_id"], "pending", "--ledger", str(ledger)]) == 1
    assert "cannot change status from built to pending" in capsys.readouterr().err
    # export and import into a new ledger
    export = tmp_path / "requests.jsonl"
    assert main(["ledger", "list", "--ledger", str(ledger), "--json"]) == 0
    export.write_text(capsys.readouterr().out)
    assert main(["ledger", "import", str(export), "--ledger", str(tmp_path / "copy.sqlite")]) == 0
    capsys.readouterr()
    assert main(["ledger", "list", "--ledger", str(tmp_path / "copy.sqlite"), "--json"]) == 0
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == [
        json.loads(x) for x in export.read_text().splitlines()
    ]
    # a bad line in an import file is named
    (tmp_path / "bad.jsonl").write_text('{"notification_id": "X"}\n')
    assert main(["ledger", "import", str(tmp_path / "bad.jsonl"), "--ledger", str(tmp_path / "b.sqlite")]) == 1
    assert "bad.jsonl line 1" in capsys.readouterr().err


def test_jsonl_records_are_read_in_submitted_order(tmp_path):
    """The two-pass reader orders a JSON Lines file by submitted time (offsets normalised, naive = UTC, to the
    microsecond), then by line; records without a readable time (missing, unparseable, not JSON) last."""
    from powercheck.screen import _Ordered

    base = json.loads(Path(demo_notifications_path()).read_text(encoding="utf-8").splitlines()[0])

    def rec(nid, at):
        r = {**base, "notification_id": nid}
        if at is None:
            r.pop("submitted_at")
        else:
            r["submitted_at"] = at
        return json.dumps(r)

    lines = [
        rec("L1", "2026-11-02T08:00:00+00:00"),
        rec("L2", None),  # no time: last group
        rec("L3", "2026-11-02T08:30:00+01:00"),  # 07:30 UTC: first
        rec("L4", "2026-11-02T08:00:00"),  # naive = UTC, same time as L1: after it by line
        "{not json",  # unreadable: last group
        rec("L6", "2026-11-02T08:00:00.000001+00:00"),  # one microsecond after L1 and L4
        rec("L7", "2026-11-02T07:59:59.999999Z"),  # just before L1
        json.dumps({"notification_id": "L8", "submitted_at": "2026-11-02T07:45:00+00:00"}),  # invalid, timed
    ]
    path = tmp_path / "n.jsonl"
    path.write_text("\n".join(lines[:4]) + "\n\n" + "\n".join(lines[4:]) + "\n")  # a blank line 5 is skipped
    # the records of the first pass kept (a short file), and read again by their spans (a long file: keep=0)
    for ordered, kept in ((_Ordered(path), True), (_Ordered(path, keep=0), False), (_Ordered(path, keep=7), False)):
        assert (ordered.records is not None) is kept
        # file lines: L1=1, L2=2, L3=3, L4=4, blank=5, bad JSON=6, L6=7, L7=8, L8=9
        # by time: L3 07:30, L8 07:45, L7 07:59:59.999999, L1 08:00 (line 1), L4 08:00 (line 4),
        # L6 08:00:00.000001; then without a time by line: L2 (2), bad JSON (6)
        assert len(ordered) == 8
        assert ordered.spans[:, 0].tolist() == [3, 9, 8, 1, 4, 7, 2, 6]
        chunk = ordered.chunk(2, 3)
        assert [r.line for r in chunk] == [8, 1, 4]
        assert [r.notification.notification_id for r in chunk] == ["L7", "L1", "L4"]
        assert [r.line for r in ordered.chunk(0, 100)] == [3, 9, 8, 1, 4, 7, 2, 6]
