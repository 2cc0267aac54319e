import json

import pyarrow.parquet as pq
import pytest

from powercheck.gs1 import make_gsrn
from powercheck.io import DecisionWriter, read_notifications, write_notifications_parquet
from powercheck.models import Notification

MP = make_gsrn("70705750012345678")
GOOD = {
    "notification_id": "A",
    "job_type": "pv",
    "metering_point_id": MP,
    "network_system": "TN_400",
    "appliances": [{"kind": "pv_inverter", "rated_kw": 5, "connection": "3ph"}],
}


def test_jsonl_keeps_going_past_bad_records(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text(
        json.dumps(GOOD)
        + "\n"
        + "{not json\n"
        + "\n"
        + json.dumps(
            {
                **GOOD,
                "notification_id": "B",
                "revision": 3,
                "appliances": [{"kind": "pv_inverter", "rated_kw": 0, "connection": "3ph"}],
            }
        )
        + "\n"
        + "[1, 2]\n"
        + json.dumps({**GOOD, "notification_id": "C"})
        + "\n"
    )
    records = list(read_notifications(path))
    assert [r.line for r in records] == [1, 2, 4, 5, 6]
    assert [r.ok for r in records] == [True, False, False, False, True]
    assert records[1].errors[0].startswith("(line): not valid JSON")
    assert records[2].raw_id == "B" and records[2].raw_revision == 3
    assert records[2].errors == ["appliances[0].rated_kw: Input should be greater than 0"]
    assert "expected a JSON object" in records[3].errors[0]


def test_parquet_roundtrip(tmp_path):
    notes = [Notification.model_validate({**GOOD, "notification_id": f"N{i}"}) for i in range(3)]
    write_notifications_parquet(notes, tmp_path / "n.parquet")
    back = [r.notification for r in read_notifications(tmp_path / "n.parquet")]
    assert back == notes


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(ValueError, match="unknown notifications format"):
        read_notifications(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError):
        read_notifications(tmp_path / "missing.jsonl")


def test_writer_keeps_partial_output_when_interrupted(tmp_path, demo_assessor):
    n = Notification.model_validate(GOOD)
    decision = demo_assessor.assess(n)
    out = tmp_path / "d.parquet"
    with pytest.raises(RuntimeError):
        with DecisionWriter(out, row_group_size=2) as w:
            for _ in range(5):
                w.write(decision)
            raise RuntimeError("crash")
    assert not out.exists()
    partial = pq.read_table(tmp_path / "d.parquet.partial")
    assert partial.num_rows == 5  # everything decided before the crash is on disk
