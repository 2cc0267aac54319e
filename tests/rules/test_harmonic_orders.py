"""Every order of an installer's spectrum counts: THD runs over the orders 2-40 (EN 50160), orders without an individual
limit are named as counted in THD only, orders above 40 are named as not assessed."""

from __future__ import annotations

import json
from pathlib import Path

from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from tests.helpers.mini import FIXED_TIME, without_measures

CASE = Path(__file__).parents[1] / "data" / "rules" / "pv_inverter_spectrum_above_the_limit_table"


def test_high_orders_count_in_thd_and_are_named(case_region, policy):
    note = Notification.model_validate(json.loads((CASE / "notification.json").read_text(encoding="utf-8")))
    assessor = Assessor(case_region, without_measures(policy), clock=lambda: FIXED_TIME)
    d = assessor.assess(note)
    thd = d.check("PQ.THD")
    assert "orders 29, 31, 35, 37 counted in THD" in thd.detail
    assert "installer orders 45 are above the THD range (2-40) and not assessed" in thd.detail
    # without the high orders only the background is left: THD drops to the background's 2.60 %
    quiet = note.model_copy(update={"appliances": [note.appliances[0].model_copy(
        update={"harmonic_current_percent": {45: 3.0}})]})  # fmt: skip
    d0 = assessor.assess(quiet)
    # nothing in the THD range: the check still runs (background only) and names the 45th as not assessed
    background = (0.8**2 + 2.0**2 + 1.2**2 + 0.3**2 + 0.6**2 + 0.5**2) ** 0.5  # orders 3, 5, 7, 9, 11, 13
    assert abs(d0.check("PQ.THD").value - background) < 1e-12
    assert "installer orders 45 are above the THD range" in d0.check("PQ.THD").detail
    assert thd.value > background + 0.05
    expected = json.loads((CASE / "expected.json").read_text(encoding="utf-8"))["checks"]["PQ.THD"]["value"]
    assert abs(thd.value - expected) < 1e-9 * expected
    # the 5th (2 % background against 6 %) is the order closest to its limit: the high orders have none
    assert d.check("PQ.HARMONIC").name.endswith("order 5 (closest to its limit)")


def test_policy_spectrum_is_made_once_per_policy_and_read_only(policy):
    """The policy's spectrum of a kind is memoised per policy: the table's values (5th of the policy's class),
    shared and read-only, and another policy with another table gets its own."""
    import numpy as np
    import pytest

    from powercheck.rules.evaluate import harmonic_orders, policy_spectrum

    orders = harmonic_orders(policy)
    cls = policy.value("harmonic_class_of_kind").get("ev_charger", "default")
    table = {int(h): float(v) for h, v in policy.value("harmonic_spectra")[cls].items()}
    first, origin = policy_spectrum("ev_charger", policy, orders)
    assert origin == f"policy:{cls}"
    assert first.tolist() == [table.get(h, 0.0) for h in orders]
    assert policy_spectrum("ev_charger", policy, orders)[0] is first
    with pytest.raises(ValueError):
        first[0] = 1.0
    spectra = {k: dict(v) for k, v in policy.value("harmonic_spectra").items()}
    spectra[cls] = {**spectra[cls], "5": 9.5}
    params = dict(policy.params)
    params["harmonic_spectra"] = policy.param("harmonic_spectra").model_copy(update={"value": spectra})
    other = policy.model_copy(update={"params": params})
    assert policy_spectrum("ev_charger", other, orders)[0][orders.index(5)] == 9.5
    assert np.array_equal(policy_spectrum("ev_charger", policy, orders)[0], first)
