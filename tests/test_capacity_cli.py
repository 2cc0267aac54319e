"""`powercheck capacity`: the map file holds the capacity map of every demo customer point, the page shows per network
a plot with one marker per limited point and probe and a table of the same numbers; with a ledger of a screening run
the map shrinks where the approvals reserve capacity."""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow.parquet as pq

from powercheck.cli import main
from powercheck.demo import demo_notifications_path
from powercheck.rules.capacity import PROBES, capacity_map
from powercheck.rules.context import GridView


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r'<section id="net-([^"]+)">', html)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_cli_capacity_map_file_and_page(tmp_path, cache_dir, demo_region, policy, capsys):
    out, page = tmp_path / "capacity.parquet", tmp_path / "capacity.html"
    assert main(["capacity", "--cache-dir", str(cache_dir), "--out", str(out), "--html", str(page), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "capacity map of 285 customer points" in printed and "points/s" in printed
    table = pq.read_table(out)
    assert table.num_rows == len(demo_region.customers) == 285
    assert not list(tmp_path.glob("*.partial"))
    cols = table.to_pydict()
    grid = GridView.of(demo_region)
    cmap = capacity_map(grid, policy)
    assert cols["metering_point_id"] == demo_region.customers.metering_point_id.astype(str).tolist()
    for res in cmap.probes:
        name = res.probe.name
        stored = np.array([np.nan if v is None else v for v in cols[f"{name}_kw_max"]])
        np.testing.assert_allclose(stored, res.largest_kw, rtol=0, atol=0)
        assert cols[f"{name}_binding"] == res.binding
    assert "heat_pump_start_a" in cols and "motor_start_a" in cols and "ev_1ph_start_a" not in cols
    # start current at the largest heat pump: ratio x rated current (3-phase, cos phi of the defaults)
    d = policy.value("appliance_defaults")["heat_pump"]
    k = 0
    u = float(grid.arrays.u_ll_v[grid.customers.bus_row[k]])
    expect = d["start_current_ratio"] * 1000 * cols["heat_pump_kw_max"][k] / (math.sqrt(3) * u * d["cos_phi"])
    assert cols["heat_pump_start_a"][k] == expect or abs(cols["heat_pump_start_a"][k] - expect) < 1e-9 * expect
    meta = table.schema.metadata
    assert meta[b"ledger"] == b"none" and b"demo" in meta[b"region"]
    assert table.schema.field("ev_1ph_kw_max").metadata[b"unit"] == b"kW"

    html = page.read_text(encoding="utf-8")
    sections = _sections(html)
    assert sorted(sections) == sorted(set(cols["network_id"]))
    for nid, body in sections.items():
        rows = [i for i, n in enumerate(cols["network_id"]) if n == nid]
        finite = sum(math.isfinite(cols[f"{p.name}_kw_max"][i]) for p in PROBES for i in rows)
        assert body.count("<circle") == finite, nid
        assert body.count(f"<td>{cols['metering_point_id'][rows[0]]}</td>") == 1
        first = cols["ev_1ph_kw_max"][rows[0]]
        assert f">{first:.1f}<br>" in body
    assert "Capacity map" in html and html.count("<svg") == len(sections)


def test_cli_capacity_with_the_ledger_of_a_screening_run(tmp_path, cache_dir, capsys):
    ledger = tmp_path / "ledger.sqlite"
    decisions = tmp_path / "decisions.parquet"
    assert main(["screen", str(demo_notifications_path()), "--out", str(decisions), "--ledger", str(ledger),
                 "--cache-dir", str(cache_dir), "-q", "--no-progress"]) == 0  # fmt: skip
    static, with_ledger = tmp_path / "static.parquet", tmp_path / "ledger.parquet"
    assert main(["capacity", "--cache-dir", str(cache_dir), "--out", str(static), "-q"]) == 0
    assert main(["capacity", "--cache-dir", str(cache_dir), "--out", str(with_ledger), "--ledger", str(ledger),
                 "-q"]) == 0  # fmt: skip
    a, b = pq.read_table(static).to_pydict(), pq.read_table(with_ledger).to_pydict()
    assert pq.read_table(with_ledger).schema.metadata[b"ledger"] == str(ledger).encode()
    # approved fuse changes are the fuse before the next job (a larger fuse may allow more there)
    same_fuse = np.array(a["main_fuse_a"]) == np.array(b["main_fuse_a"])
    assert (~same_fuse).sum() >= 3
    shrunk = 0
    for p in PROBES:
        x = np.array(a[f"{p.name}_kw_max"], dtype=float)
        y = np.array(b[f"{p.name}_kw_max"], dtype=float)
        both = np.isfinite(x) & np.isfinite(y) & same_fuse
        assert (y[both] <= x[both] * (1 + 1e-9)).all(), p.name
        shrunk += int((y[both] < x[both] - 1e-6).sum())
    assert shrunk >= 20
    capsys.readouterr()
    assert main(["capacity", "--cache-dir", str(cache_dir), "--ledger", str(tmp_path / "none.sqlite"), "-q"]) == 2
    assert "none.sqlite" in capsys.readouterr().err
