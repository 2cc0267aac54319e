import json

import pyarrow.parquet as pq
import pytest

from powercheck.gs1 import make_gsrn
from powercheck.io import DecisionWriter, read_notifications, write_notifications_parquet
from powercheck.models import CheckStatus, Message, Notification

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
    assert records[1].errors[0].startswith("(line 2): not valid JSON")
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


def test_decisions_file_keeps_every_field_of_every_demo_decision(tmp_path, demo_region, policy):
    """Decision -> Parquet row -> Decision gives the same decision, for all demo decisions in both languages
    (the report and a later re-rendering read the file, not the engine)."""
    from powercheck.demo import demo_notifications_path
    from powercheck.io import decision_from_row, read_decision, read_decisions
    from powercheck.ledger import CapacityState
    from powercheck.rules.engine import Assessor
    from powercheck.texts import localize
    from tests.helpers.mini import FIXED_TIME

    records = list(read_notifications(demo_notifications_path()))
    valid = [r.notification for r in records if r.ok]
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region))
    decisions = assessor.assess_many(valid)
    decisions.append(assessor.invalid_decision(["appliances[0].rated_kw: bad"], notification_id="BAD", source="x:1"))
    out = tmp_path / "d.parquet"
    with DecisionWriter(out, row_group_size=50) as w:
        for d in decisions:
            w.write(d)
    rows = read_decisions(out).to_pylist()
    assert len(rows) == len(decisions)
    for d, row in zip(decisions, rows, strict=True):
        back = decision_from_row(row)
        assert back.model_dump(mode="json") == d.model_dump(mode="json"), d.notification_id
        assert localize(back, "nb").model_dump(mode="json") == localize(d, "nb").model_dump(mode="json")
    # the things a report shows are really there (not an empty round trip)
    assert sum(1 for d in decisions if d.path) > 100
    assert sum(1 for d in decisions if d.measures and d.measures[0].message.params) > 10
    # one decision by id: the latest revision unless a revision is asked for
    revised = next(d for d in decisions if d.revision > 1)
    assert read_decision(out, revised.notification_id).revision == revised.revision
    assert read_decision(out, revised.notification_id, revision=1).revision == 1
    from powercheck.io import DecisionNotFound

    with pytest.raises(DecisionNotFound, match="NOPE"):
        read_decision(out, "NOPE")
    with pytest.raises(DecisionNotFound, match="revisions"):
        read_decision(out, revised.notification_id, revision=99)
    (tmp_path / "n.parquet").write_bytes((tmp_path / "d.parquet").read_bytes()[:100])
    with pytest.raises(ValueError, match="n.parquet"):
        read_decision(tmp_path / "n.parquet", "X")


@pytest.mark.parametrize(
    "params",
    [
        {"job": "ev_charger", "fuse": 25.0, "count": 3, "ok": True, "none": None, "tekst": "målt ø"},
        {"margin": float("nan"), "rule": "VOLT.PEAK_MIN"},  # NaN: pydantic's JSON form writes null
        {"limit": float("inf")},
        {"text": [{"key": "missing", "params": {"field": "x"}}]},  # nested messages as dicts
        {"kinds": ("pv_inverter", "battery_inverter")},  # a tuple becomes a list
        {"text": Message(key="missing", params={"field": "ø", "n": 2})},  # a nested message
        {"conditions": [Message(key="a", params={"x": 1.5}), Message(key="b")], "n": 3},  # a list of them
        {"text": Message(key="m", params={"inner": Message(key="n", params={"v": [1, (2, None)]})})},
        {"text": Message(key="m", params={"bad": float("nan")})},  # NaN inside: pydantic's form (null)
        {"text": [Message(key="m", params={"kind": CheckStatus.FAIL})]},  # an enum inside: pydantic's form
        {"table": {"a": [1, 2], "b": {"c": None}}},  # dicts of plain values
    ],
)
def test_message_row_params_equal_pydantic_json_dump(params):
    """The decisions file's message parameters: a dict of plain values is written directly, everything else
    through pydantic's JSON form -- both as ``json.dumps(pydantic JSON form, ensure_ascii=False, sort_keys=True)``."""
    from powercheck.io import _message_row
    from powercheck.models import Message

    message = Message.model_construct(key="check_failed", params=params)
    want = json.dumps(Message.model_validate(message).model_dump(mode="json")["params"], ensure_ascii=False,
                      sort_keys=True)  # fmt: skip
    assert _message_row(message) == {"key": "check_failed", "params": want}


def test_json_encoder_writes_what_json_dumps_writes():
    from powercheck.models import json_encoder

    values = [{"b": 1.5, "a": "æøå", "c": [1, None, True, {"z": 1e16, "y": 1e-5, "x": float("nan")}]}, "strø", [], 3]
    for options in (dict(ensure_ascii=False, sort_keys=True), dict(sort_keys=True, separators=(",", ":"))):
        encode = json_encoder(json.JSONEncoder(**options))
        assert [encode(v) for v in values] == [json.dumps(v, **options) for v in values]
