"""Issue 12: the CLI against hostile input files -- one bad record never loses the run, bad arguments fail fast."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

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
