"""Measure variants are built from their validated notification without pydantic's validation
(:func:`powercheck.models.replaced`, ``measures._fuse_variant``): every variant of the demo and of the rule cases
must be the notification ``Notification.model_validate`` makes of the same values -- the same field values of the
same types, nested models included -- and the main fuse measure's variant the one the former
``Notification.model_validate({**n.model_dump(exclude_none=True), **update})`` made."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

import powercheck.rules.measures as measures
from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.models import Appliance, Connection, Notification, replaced
from powercheck.rules.engine import Assessor
from tests.helpers.rule_cases import CASE_NAMES, case_entries


def same(a, b) -> bool:
    """Equal values of the same types, through models, lists, tuples and dicts (``==`` alone takes 1 == 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, BaseModel):
        return all(same(a.__dict__[name], b.__dict__[name]) for name in type(a).model_fields)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b or (a != a and b != b)


@pytest.fixture
def collected(monkeypatch):
    """Every variant :func:`measures.variants` makes, and every main fuse variant with its base and update."""
    found: dict[str, list] = {"variants": [], "fuse": []}
    make_variants, fuse_variant = measures.variants, measures._fuse_variant

    def variants(*args, **kwargs):
        out = make_variants(*args, **kwargs)
        found["variants"] += out
        return out

    def fuse(n, update):
        out = fuse_variant(n, update)
        found["fuse"].append((n, update, out))
        return out

    monkeypatch.setattr(measures, "variants", variants)
    monkeypatch.setattr(measures, "_fuse_variant", fuse)
    return found


def assert_validated(found):
    for v in found["variants"]:
        n = v.notification
        assert same(n, Notification.model_validate(n.model_dump(exclude_none=True))), v.ids
    for n, update, got in found["fuse"]:
        want = Notification.model_validate({**n.model_dump(exclude_none=True), **update})
        assert same(got, want) and got == want


@pytest.mark.parametrize("ledger", [False, True])
def test_demo_variants_equal_validated_notifications(demo_region, policy, collected, ledger):
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    state = CapacityState.empty(demo_region) if ledger else None
    Assessor(demo_region, policy, ledger=state).assess_many(notes)
    assert_validated(collected)
    kinds = {mid for v in collected["variants"] for mid in v.ids}
    # the demo's escalations have every kind of variant the demo policy gives them, fuse pairs and budgets too
    assert {"main_fuse", "charging_current_limit", "three_phase", "reactive_power", "soft_starter"} <= kinds
    assert any(len(v.ids) == 2 for v in collected["variants"])
    assert any("power_budget" in update for _, update, _ in collected["fuse"])


def test_rule_case_variants_equal_validated_notifications(case_region, policy, collected):
    for name in CASE_NAMES:
        case_entries(name, case_region, policy, True)
    assert len(collected["variants"]) > 20 and collected["fuse"]
    assert_validated(collected)


def test_replaced_is_model_copy():
    a = Appliance(kind="ev_charger", rated_kw=11, connection="3ph", cos_phi=0.99)
    for update in ({"rated_kw": 7.4}, {"connection": Connection.L_N, "cos_phi": None}, {}):
        got, want = replaced(a, update), a.model_copy(update=update)
        assert same(got, want) and got.model_fields_set == want.model_fields_set
        assert got.__pydantic_extra__ is want.__pydantic_extra__ and got.__pydantic_private__ is None
    assert a.rated_kw == 11  # the original unchanged


def test_fuse_variant_that_would_not_validate_raises_as_before(demo_region, policy):
    n = next(r.notification for r in read_notifications(demo_notifications_path()) if r.ok)
    for update in (
        {"main_fuse_before_a": 25.0, "main_fuse_after_a": 5000.0},  # above FuseAmps' 4000 A
        {"main_fuse_before_a": 25.0, "main_fuse_after_a": 63.0, "power_budget": {"max_demand_kw": 6000.0,
                                                                                  "cos_phi": 0.9}},
    ):  # fmt: skip
        with pytest.raises(ValidationError):
            measures._fuse_variant(n, update)
    got = measures._fuse_variant(n, {"main_fuse_before_a": 25, "main_fuse_after_a": 63, "power_budget": None})
    assert type(got.main_fuse_before_a) is float and got.main_fuse_after_a == 63.0 and got.power_budget is None
