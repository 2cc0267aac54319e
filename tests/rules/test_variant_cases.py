"""A measure's variant takes what it does not change from its base notification's demand case
(:func:`powercheck.rules.demand.demand_case` with ``base``): the cases must equal those computed from scratch."""

from __future__ import annotations

import pytest

import powercheck.rules.engine as engine
from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.models import Connection
from powercheck.rules.demand import _appliance_kept, _variant_of, demand_cases
from powercheck.rules.engine import Assessor


@pytest.mark.parametrize("screening", [False, True])
@pytest.mark.parametrize("ledger", [False, True])
def test_variant_cases_from_their_base_equal_cases_from_scratch(demo_region, policy, monkeypatch, screening, ledger):
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    seen = {"variants": 0, "derived": 0}

    def both_ways(notifications, grid, policy, state=None, preceding=None, screening=False, bases=None):
        got = demand_cases(notifications, grid, policy, state, preceding, screening, bases=bases)
        if bases is not None:
            assert got == demand_cases(notifications, grid, policy, state, preceding, screening)
            seen["variants"] += len(bases)
            seen["derived"] += sum(_variant_of(b, n) for b, n in zip(bases, notifications))
        return got

    monkeypatch.setattr(engine, "demand_cases", both_ways)
    state = CapacityState.empty(demo_region) if ledger else None
    Assessor(demo_region, policy, ledger=state, screening=screening).assess_many(notes)
    # the demo's escalations have variants of both kinds: derived from their base, and computed anew
    assert 0 < seen["derived"] < seen["variants"]


def test_an_appliance_change_that_could_make_it_incomplete_is_computed_anew(demo_region):
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    a = next(x for n in notes for x in n.appliances if x.start_current_ratio is not None and x.cos_phi is not None)
    assert _appliance_kept(a, a.model_copy(update={"rated_kw": a.rated_kw / 2, "connection": Connection.THREE_PHASE}))
    assert not _appliance_kept(a, a.model_copy(update={"rated_kw": a.rated_kw * 2}))  # may become challenging
    assert not _appliance_kept(a, a.model_copy(update={"cos_phi": None}))  # a value removed
    assert not _appliance_kept(a, a.model_copy(update={"start_current_ratio": a.start_current_ratio + 1}))


def _variant_of_by_field(base, n) -> bool:
    """:func:`_variant_of` as a loop over the fields (the reference its C-speed identity test must agree with)."""
    if not base.evaluable or base.accounting is None:
        return False
    b = base.notification
    if n is b:
        return True
    if set(n.__dict__) != set(b.__dict__) or len(n.appliances) != len(b.appliances):
        return False
    if any(v is not b.__dict__[k] for k, v in n.__dict__.items() if k != "appliances"):
        return False
    return all(a is x or _appliance_kept(x, a) for a, x in zip(n.appliances, b.appliances))


def test_variant_of_agrees_with_the_field_loop(demo_region, policy, monkeypatch):
    from powercheck.models import replaced

    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    pairs = []

    def record(notifications, grid, policy, state=None, preceding=None, screening=False, bases=None):
        if bases is not None:
            pairs.extend(zip(bases, notifications))
        return demand_cases(notifications, grid, policy, state, preceding, screening, bases=bases)

    monkeypatch.setattr(engine, "demand_cases", record)
    Assessor(demo_region, policy).assess_many(notes)
    base, n = next((b, n) for b, n in pairs if _variant_of(b, n) and n is not b.notification)
    odd = [
        replaced(n, {"comment": "another object"}),  # a field besides the appliances changed
        replaced(base.notification, {}),  # every field the same object
        replaced(n, {}),  # below: the same fields in another order
    ]
    object.__setattr__(odd[-1], "__dict__", dict(reversed(list(n.__dict__.items()))))
    assert list(odd[-1].__dict__) != list(base.notification.__dict__)
    results = [_variant_of(b, x) for b, x in pairs] + [_variant_of(base, x) for x in odd]
    assert results == [_variant_of_by_field(b, x) for b, x in pairs] + [_variant_of_by_field(base, x) for x in odd]
    assert 0 < sum(results) < len(results) and results[-3:] == [False, True, True]
