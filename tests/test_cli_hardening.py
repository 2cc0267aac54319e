"""Issue 12: the CLI against hostile input files -- one bad record never loses the run, bad arguments fail fast."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from powercheck.cli import main
from powercheck.demo import demo_notifications_path


def _demo_lines(n: int) -> list[bytes]:
    return demo_notifications_path().read_bytes().splitlines()[:n]


def _screen(args, cache_dir) -> int:
    return main(["screen", *map(str, args), "--cache-dir", str(cache_dir), "-q", "--no-progress"])


def test_every_bad_line_becomes_a_decision_with_its_line_and_the_rest_is_decided(tmp_path, cache_dir, capsys):
    good = _demo_lines(6)
    huge_revision = json.loads(good[5])
    huge_revision["revision"] = 2**70
    lines = [
        b"\xef\xbb\xbf" + good[0],  # a byte order mark, as the service accepts it
        b"[" * 100_000,  # RecursionError in json.loads before
        good[1],
        b'{"notification_id": "\xff\xfe"}',  # not UTF-8: the whole run stopped before, without a line number
        b"",  # a zero-length line
        b"   \t",
        good[2],
        b'{"revision": 1' + b"0" * 5000 + b"}",  # an integer Python refuses to convert
        json.dumps(huge_revision).encode(),  # a revision no int64 column holds: the writer overflowed before
        b'{"notification_id": "' + b"x" * 1_100_000 + b'"}',  # longer than a record may be
        good[3],
        b"\x00",
        good[4],
    ]
    src = tmp_path / "hostile.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "d.parquet"
    assert _screen([src, "--out", out], cache_dir) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    rows = {r["source_line"]: r for r in pq.read_table(out).to_pylist()}
    expected_bad = {
        2: "nested too deeply",
        4: "not valid UTF-8 (byte 0xff",
        8: "not valid JSON",
        9: "revision",
        10: "longer than 1000000 bytes",
        12: "not valid JSON",
    }
    assert sorted(rows) == [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13]  # blank lines 5 and 6 are no records
    for line, why in expected_bad.items():
        row = rows[line]
        assert row["outcome"] == "reject_incomplete", (line, row["reasons"])
        assert why in row["reasons"][0], (line, row["reasons"])
        assert row["checks"][0]["rule_id"] == "DATA.VALID"
        if line != 9:
            assert f"line {line}" in row["reasons"][0] and row["notification_id"] == f"invalid:line {line}"
    assert rows[9]["notification_id"] == huge_revision["notification_id"] and rows[9]["revision"] == 1
    for line in (1, 3, 7, 11, 13):
        assert rows[line]["outcome"] != "reject_incomplete" or "DATA.COMPLETE" in str(rows[line]["checks"]), line
        assert rows[line]["checks"][0]["rule_id"] != "DATA.VALID", line
    assert rows[1]["notification_id"] == json.loads(good[0])["notification_id"]  # the BOM line is read


def _replicated_demo(path, copies: int) -> int:
    """The demo notifications ``copies`` times with distinct ids; returns the number of records."""
    out = []
    for k in range(copies):
        for line in demo_notifications_path().read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                out.append(line)
                continue
            if isinstance(data, dict) and isinstance(data.get("notification_id"), str):
                data["notification_id"] = f"R{k}-{data['notification_id'][-20:]}"
            out.append(json.dumps(data))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return len(out)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_run_finishes_the_chunk_and_leaves_a_readable_file(tmp_path, cache_dir, demo_region, signum):
    src = tmp_path / "big.jsonl"
    total = _replicated_demo(src, 10)
    out, ledger = tmp_path / "d.parquet", tmp_path / "ledger.sqlite"
    cmd = [sys.executable, "-m", "powercheck", "screen", str(src), "--out", str(out), "--ledger", str(ledger),
           "--cache-dir", str(cache_dir), "--chunk-size", "32", "-q", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    started = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=0.1)
            started = con.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
            con.close()
        except sqlite3.Error:
            started = 0
        if started >= 64:
            break
        time.sleep(0.05)
    assert started >= 64 and proc.poll() is None, "the run never got going"
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    assert not out.exists()
    table = pq.read_table(tmp_path / "d.parquet.partial")  # a complete Parquet file with its footer
    decided = table.num_rows
    assert f"{decided} of {total} records decided" in stderr
    assert 64 <= decided < total and decided % 32 == 0  # whole chunks only
    rows = table.to_pylist()
    assert len({(r["notification_id"], r["source_line"]) for r in rows}) == decided
    con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    in_ledger = {nid for (nid,) in con.execute("SELECT notification_id FROM requests")}
    con.close()
    assert in_ledger == {r["notification_id"] for r in rows if r["ledger_status"] is not None}


def test_ctrl_c_while_loading_the_grid_is_one_line(tmp_path, cache_dir):
    src = tmp_path / "n.jsonl"
    src.write_bytes(b"\n".join(_demo_lines(3)) + b"\n")
    cmd = [sys.executable, "-m", "powercheck", "screen", str(src), "--out", str(tmp_path / "d.parquet"),
           "--cache-dir", str(tmp_path / "empty-cache"), "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)  # importing and building the grid cache from scratch takes longer
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert stderr.strip().endswith("interrupted (SIGINT)")


def test_a_signal_whose_exception_a_callback_swallowed_still_stops_the_run():
    """SIGINT while the grid loads raises in the handler; inside a C callback (numba compiling a kernel, llvmlite's
    object-cache hook) that exception is printed and dropped. Found by the test above at a 2.5 s delay: the run
    went on and ended with 0. The request is kept, so entering the screening stage stops with it."""
    from powercheck.screen import Interrupted, StopRequest

    stop = StopRequest()
    try:
        stop(signal.SIGINT)  # as the handler runs while loading
    except Interrupted:
        pass  # what the C callback does with it
    with pytest.raises(Interrupted) as info:
        with stop.screening():
            pytest.fail("the screening stage must not start")
    assert info.value.signum == signal.SIGINT
    fresh = StopRequest()
    with fresh.screening():  # no signal: screening starts; one during it only asks to finish the chunk
        fresh(signal.SIGTERM)
    assert fresh.name == "SIGTERM"


def test_a_swallowed_interrupt_is_not_reported_and_the_run_stops(monkeypatch):
    """The same in a C callback for real (a ctypes callback, as llvmlite's): while signals are handled, the dropped
    Interrupted does not reach the unraisable-exception hook (which prints "Exception ignored ... Traceback");
    other exceptions dropped there still do, and the hook is put back after."""
    import ctypes

    from powercheck.screen import Interrupted, stop_on_signals

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(type(u.exc_value).__name__))
    outer = sys.unraisablehook
    callback_type = ctypes.CFUNCTYPE(None)
    with stop_on_signals() as stop:
        callback_type(lambda: stop(signal.SIGINT))()  # the handler raises inside the callback: dropped there
        callback_type(lambda: 1 / 0)()
        assert seen == ["ZeroDivisionError"]
        with pytest.raises(Interrupted):
            with stop.screening():
                pass
    assert sys.unraisablehook is outer


# ------------------------------------------------------------------- item 9: one line, before any work


def _bad_region(tmp_path, network_extra: str) -> str:
    root = tmp_path / "region"
    root.mkdir(exist_ok=True)
    (root / "region.toml").write_text(
        '[region]\nname = "r"\n[[network]]\nid = "a"\nsystem = "TN_400"\nsource = "pandapower:kerber_landnetz_kabel_1"\n'
        + network_extra,
        encoding="utf-8",
    )
    return str(root)


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("out_under_a_file", "--out"),
        ("out_at_a_directory", "--out"),
        ("out_unwritable", "--out"),
        ("kwargs_not_a_table", "network[0].kwargs"),
        ("lv_kv_not_a_number", "network[0].lv_kv"),
        ("lv_kv_out_of_range", "network[0].lv_kv"),
        ("kwargs_value_too_large", "network[0].kwargs.seed"),
        ("network_not_a_table_list", "region.toml: network"),
        ("unknown_region_key", "region.customer_point"),
        ("corrupt_parquet", "n.parquet: not a readable Parquet file"),
        ("unknown_suffix", "unknown notifications format '.csv'"),
        ("ledger_at_a_directory", "--ledger"),
        ("ledger_not_a_database", "--ledger"),
    ],
)
def test_bad_arguments_are_one_line_before_any_work(tmp_path, case, named, capsys):
    src = tmp_path / "n.jsonl"
    src.write_bytes(b"\n".join(_demo_lines(3)) + b"\n")
    cache = tmp_path / "cache"
    out = tmp_path / "d.parquet"
    args = ["screen", str(src), "--cache-dir", str(cache), "--no-progress"]
    if case == "out_under_a_file":
        (tmp_path / "plain.txt").write_text("x")
        out = tmp_path / "plain.txt" / "sub" / "d.parquet"
    elif case == "out_at_a_directory":
        out = tmp_path / "somedir"
        out.mkdir()
    elif case == "out_unwritable":
        out = Path("/proc/powercheck-cannot-write-here/d.parquet")
    elif case == "kwargs_not_a_table":
        args += ["--grid", _bad_region(tmp_path, "kwargs = 5\n")]
    elif case == "lv_kv_not_a_number":
        args += ["--grid", _bad_region(tmp_path, 'lv_kv = "low"\n')]
    elif case == "lv_kv_out_of_range":
        args += ["--grid", _bad_region(tmp_path, "lv_kv = 230\n")]
    elif case == "kwargs_value_too_large":
        args += ["--grid", _bad_region(tmp_path, "kwargs = { seed = 1e300 }\n")]
    elif case == "network_not_a_table_list":
        root = tmp_path / "region"
        root.mkdir()
        (root / "region.toml").write_text('network = 5\n[region]\nname = "r"\n')
        args += ["--grid", str(root)]
    elif case == "unknown_region_key":
        root = tmp_path / "region"
        root.mkdir()
        (root / "region.toml").write_text('[region]\nname = "r"\ncustomer_point = "x.parquet"\n')
        args += ["--grid", str(root)]
    elif case == "corrupt_parquet":
        src = tmp_path / "n.parquet"
        src.write_bytes(b"PAR1" + b"\x00" * 100)
        args[1] = str(src)
    elif case == "unknown_suffix":
        src = tmp_path / "n.csv"
        src.write_text("a,b\n")
        args[1] = str(src)
    elif case == "ledger_at_a_directory":
        (tmp_path / "ledgerdir").mkdir()
        args += ["--ledger", str(tmp_path / "ledgerdir")]
    elif case == "ledger_not_a_database":
        (tmp_path / "ledger.sqlite").write_bytes(b"this is not a database" * 100)
        args += ["--ledger", str(tmp_path / "ledger.sqlite")]
    rc = main([*args, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert named in err, err
    assert not cache.exists(), "a grid was loaded before the argument was refused"
    assert not list(tmp_path.rglob("*.partial")) and not out.is_file()


def test_a_ledger_sqlite_refuses_is_one_line_in_a_fresh_interpreter(tmp_path):
    """The CLI imports sqlite3 only for commands that use a ledger; an error SQLite raises is still one line (exit 1),
    not a traceback -- in a fresh interpreter, where nothing else has imported sqlite3 before the command."""
    ledger = tmp_path / "ledger.sqlite"
    ledger.write_bytes(b"this is not a database" * 100)
    proc = subprocess.run(
        [sys.executable, "-m", "powercheck", "ledger", "list", "--ledger", str(ledger)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "powercheck ledger: file is not a database\n"


def test_serve_limits_are_the_services_defaults_unless_given():
    """The parser leaves the limit options None (it does not import the service); cmd_serve fills in
    ServiceLimits' defaults: 16 MiB, 10,000 notifications, 50 appliances, 10 s headers, 30 s body."""
    from powercheck.cli import build_parser, service_limits
    from powercheck.service.limits import ServiceLimits

    default = service_limits(build_parser().parse_args(["serve"]))
    assert default == ServiceLimits()
    assert (default.max_body_bytes, default.max_batch, default.max_appliances) == (16 * 1024 * 1024, 10_000, 50)
    assert (default.header_timeout_s, default.body_timeout_s) == (10.0, 30.0)
    args = ["serve", "--max-body-mb", "1.5", "--max-batch", "50", "--max-appliances", "10", "--header-timeout", "2",
            "--body-timeout", "3"]  # fmt: skip
    given = service_limits(build_parser().parse_args(args))
    assert given == ServiceLimits(
        max_body_bytes=1_572_864, max_batch=50, max_appliances=10, header_timeout_s=2.0, body_timeout_s=3.0
    )  # 1.5 MiB = 1.5 * 1,048,576 bytes


def test_a_failure_mid_run_keeps_a_readable_partial_and_is_one_line(tmp_path, cache_dir, capsys, monkeypatch):
    """An error that only shows mid-run (here: the disk fills up) ends with one line and what was decided."""
    from powercheck import io as io_mod

    calls = {"n": 0}
    real = io_mod.DecisionWriter.flush

    def flaky(self):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(28, "No space left on device")
        real(self)

    monkeypatch.setattr(io_mod.DecisionWriter, "flush", flaky)
    src = tmp_path / "big.jsonl"
    _replicated_demo(src, 6)
    out = tmp_path / "d.parquet"
    rc = main(["screen", str(src), "--out", str(out), "--cache-dir", str(cache_dir), "-q", "--no-progress",
               "--chunk-size", "256"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "No space left on device" in err, err
    assert pq.read_table(tmp_path / "d.parquet.partial").num_rows == 1024  # the first row group
