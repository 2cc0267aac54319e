import pytest
from pydantic import ValidationError

from powercheck.gs1 import make_gsrn
from powercheck.models import Notification, describe_validation_error

MP = make_gsrn("70705750012345678")


def base(**over):
    data = {
        "notification_id": "ELS-1",
        "job_type": "ev_charger",
        "metering_point_id": MP,
        "network_system": "TN_400",
        "appliances": [{"kind": "ev_charger", "rated_kw": 11.0, "connection": "3ph"}],
    }
    data.update(over)
    return data


def errors_of(data) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        Notification.model_validate(data)
    return describe_validation_error(exc.value)


def test_valid_notification_parses_with_defaults():
    n = Notification.model_validate(base())
    assert n.revision == 1
    assert n.supply_phases.value == "3ph"
    assert n.appliances[0].rated_kw == 11.0
    assert n.appliances[0].quantity == 1
    assert n.key == ("ELS-1", 1)


def test_bad_check_digit_names_the_field():
    bad = MP[:-1] + str((int(MP[-1]) + 1) % 10)
    errs = errors_of(base(metering_point_id=bad))
    assert len(errs) == 1 and errs[0].startswith("metering_point_id:") and "check digit" in errs[0]


def test_line_to_neutral_in_it_grid_is_rejected_with_index():
    errs = errors_of(
        base(
            network_system="IT_230",
            appliances=[
                {"kind": "heat_pump", "rated_kw": 3.0, "connection": "L-L"},
                {"kind": "ev_charger", "rated_kw": 7.4, "connection": "L-N"},
            ],
        )
    )
    assert errs == [
        "appliances: appliances[1].connection: L-N is impossible in an IT 230 V system "
        "(no neutral); single-phase appliances are connected L-L"
    ]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"appliances": [{"kind": "ev_charger", "rated_kw": -1, "connection": "3ph"}]}, "appliances[0].rated_kw"),
        (
            {"appliances": [{"kind": "ev_charger", "rated_kw": 7, "connection": "3ph", "cos_phi": 1.2}]},
            "appliances[0].cos_phi",
        ),
        ({"appliances": [{"kind": "toaster", "rated_kw": 7, "connection": "3ph"}]}, "appliances[0].kind"),
        ({"main_fuse_after_a": 0}, "main_fuse_after_a"),
        ({"network_system": "TT_400"}, "network_system"),
        ({"job_type": "repaint"}, "job_type"),
        ({"surprise": 1}, "surprise"),
        ({"power_budget": {"max_demand_kw": float("nan")}}, "power_budget.max_demand_kw"),
    ],
)
def test_field_errors_are_named(patch, field):
    errs = errors_of(base(**patch))
    assert any(e.startswith(f"{field}:") for e in errs), errs


def test_missing_required_field_is_named():
    data = base()
    del data["metering_point_id"]
    assert errors_of(data) == ["metering_point_id: Field required"]


def test_input_hash_is_stable_and_content_sensitive():
    a = Notification.model_validate(base())
    b = Notification.model_validate(base())
    c = Notification.model_validate(base(revision=2))
    assert a.input_hash() == b.input_hash()
    assert a.input_hash() != c.input_hash()
    assert len(a.input_hash()) == 64


def test_workflow_fields_are_validated_by_name():
    """The new fields of issue 11 have ranges and name themselves in errors."""
    from pydantic import ValidationError

    from powercheck.gs1 import make_gsrn
    from powercheck.models import Notification, Outcome, Stage, describe_validation_error

    base = {"notification_id": "V-1", "job_type": "motor", "network_system": "TN_400",
            "metering_point_id": make_gsrn("70705750000000001")}  # fmt: skip
    motor = {"kind": "motor", "rated_kw": 4, "connection": "3ph"}
    for minutes in (0, 121, True):
        with pytest.raises(ValidationError) as exc:
            Notification.model_validate({**base, "appliances": [{**motor, "operating_minutes_per_2h": minutes}]})
        assert describe_validation_error(exc.value)[0].startswith("appliances[0].operating_minutes_per_2h")
    with pytest.raises(ValidationError) as exc:
        Notification.model_validate(
            {**base, "appliances": [motor], "attachments": [{"kind": "datasheet", "appliance": 1}]}
        )
    assert "attachments: Value error, [0].appliance: 1 names no appliance" in str(exc.value) or any(
        "attachments" in e and "names no appliance" in e for e in describe_validation_error(exc.value)
    )
    with pytest.raises(ValidationError) as exc:
        Notification.model_validate({**base, "attachments": [{"kind": "photo"}]})
    assert describe_validation_error(exc.value)[0].startswith("attachments[0].kind")
    with pytest.raises(ValidationError) as exc:
        Notification.model_validate({**base, "stage": "done"})
    assert describe_validation_error(exc.value)[0].startswith("stage")
    with pytest.raises(ValidationError) as exc:
        Notification.model_validate({**base, "installation_condition_confirmed": "yes"})
    assert describe_validation_error(exc.value)[0].startswith("installation_condition_confirmed")
    for block in ({"units": 1, "annual_kwh_per_unit": 5000}, {"units": 10, "annual_kwh_per_unit": 0}):
        with pytest.raises(ValidationError) as exc:
            Notification.model_validate({**base, "block": block})
        assert describe_validation_error(exc.value)[0].startswith("block.")
    with pytest.raises(ValidationError) as exc:
        Notification.model_validate({**base, "merged_metering_point_ids": ["707057500000000002"]})
    assert describe_validation_error(exc.value)[0].startswith("merged_metering_point_ids")
    ok = Notification.model_validate({**base, "stage": "completion", "appliances": [motor],
                                      "attachments": [{"kind": "datasheet", "appliance": 0}]})  # fmt: skip
    assert ok.stage is Stage.COMPLETION and Outcome("request_info") is Outcome.REQUEST_INFO


def _state(m):
    return (list(m.__dict__.items()), m.__pydantic_fields_set__, m.__pydantic_extra__, m.__pydantic_private__)


def test_construct_equals_model_construct_for_every_field_in_order():
    from powercheck.models import Decision, Message, construct

    message = construct(Message, {"key": "missing", "params": {"text": "x"}})
    assert _state(message) == _state(Message.model_construct(key="missing", params={"text": "x"}))
    assert message == Message(key="missing", params={"text": "x"})
    assert message.model_dump_json() == '{"key":"missing","params":{"text":"x"}}'
    values = {name: None for name in Decision.model_fields}
    values.update(notification_id="N-1", revision=2, reasons=["r"], checks=[], messages=[message])
    direct = construct(Decision, dict(values))
    assert _state(direct) == _state(Decision.model_construct(**values))
    assert direct.model_dump() == Decision.model_construct(**values).model_dump()
    assert type(direct.__pydantic_fields_set__) is set and direct.__pydantic_fields_set__ == set(Decision.model_fields)


def test_make_message_equals_model_construct():
    from powercheck.models import Message, _constructible_fields, make_message

    assert _constructible_fields(Message) == ("key", "params")  # what make_message spells out
    params = {"text": "x", "n": 1.5}
    message = make_message("missing", params)
    assert _state(message) == _state(Message.model_construct(key="missing", params=params))
    assert message == Message(key="missing", params=params) and message.params is params
    assert message.model_dump_json() == '{"key":"missing","params":{"text":"x","n":1.5}}'
    assert make_message("k", {}).__pydantic_fields_set__ is not message.__pydantic_fields_set__  # one set each


def test_construct_leaves_partial_or_reordered_values_to_model_construct():
    from powercheck.models import Message, construct

    partial = construct(Message, {"key": "missing"})  # params from its default factory, as model_construct does
    assert partial.params == {} and partial.__pydantic_fields_set__ == {"key"}
    reordered = construct(Message, {"params": {}, "key": "missing"})
    assert list(reordered.__dict__) == ["key", "params"]  # the model's order, as model_construct gives it


def test_engine_decision_takes_the_direct_construction(demo_region, policy, monkeypatch):
    """DecisionBatch.decision names every Decision field in the model's order (else construct would fall back to
    the slower model_construct, silently)."""
    from powercheck.demo import demo_notifications_path
    from powercheck.io import read_notifications
    from powercheck.models import Decision
    from powercheck.rules.engine import Assessor

    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:20]
    assessor = Assessor(demo_region, policy)
    assessor.assess_many(notes[:1])

    def refuse(cls, **values):
        raise AssertionError("Decision.model_construct called")

    monkeypatch.setattr(Decision, "model_construct", classmethod(refuse))
    decisions = assessor.assess_many(notes)
    assert len(decisions) == 20
    assert all(list(d.__dict__) == list(Decision.model_fields) for d in decisions)


def test_engine_network_data_equals_validated_network_data(demo_region, policy):
    """rules.connection.network_data builds NetworkData without the validation pass: every demo point's equals the
    validated model of its values, field for field with the same types."""
    from powercheck.demo import demo_notifications_path
    from powercheck.io import read_notifications
    from powercheck.models import NetworkData
    from powercheck.rules.engine import Assessor

    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    batch = Assessor(demo_region, policy).assess_batch(notes)
    data = [d for d in batch.network_data if d is not None]
    assert len(data) > 200 and any(d.ik_min_a is None for d in data) and any(d.ik_min_a for d in data)
    for d in data:
        want = NetworkData(**d.__dict__)
        assert d == want and list(d.__dict__) == list(want.__dict__)
        assert [type(v) for v in d.__dict__.values()] == [type(v) for v in want.__dict__.values()]
        assert d.__pydantic_fields_set__ == want.__pydantic_fields_set__
