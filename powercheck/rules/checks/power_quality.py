"""Power-quality checks: rapid voltage change, flicker, harmonics, unbalance."""

from __future__ import annotations

import math

import numpy as np

from powercheck.models import LimitKind
from powercheck.rules.checks.base import CheckBlock, CheckInput, measured, policy_limited
from powercheck.rules.policy import PolicyKey
from powercheck.rules.rule_ids import RuleId


def rapid_voltage_change(c: CheckInput) -> list[CheckBlock]:
    """Rapid voltage changes against two kinds of limit.

    * PQ.RVC_DACH (planning, D-A-CH-CZ): the step of every start against the limit of its start rate
      (below ``rvc_rare_rate_per_min`` the rare-start limit, else the frequent-start one);
    * PQ.RVC_FOL_MAX and PQ.RVC_FOL_STATIONARY (legal, FoL): FoL counts steps of dU_max >= 5 % and of
      dU_stationary >= 3 % against 24 a day; an appliance that switches more often than that must keep
      every step below the thresholds.

    An appliance kind that ramps up (policy ``start_behaviour``: EV chargers, inverters) makes no start
    step; its step is the stop (or trip) at rated current.
    """
    ev = c.evaluation
    pol = c.policy
    steps = ev.appliances
    rare_rate = pol.number(PolicyKey.RVC_RARE_RATE_PER_MIN)
    hours = pol.number(PolicyKey.OPERATING_HOURS_PER_DAY)
    max_events = pol.number(PolicyKey.RVC_MAX_EVENTS_PER_DAY)
    events_keys = tuple(pol.assumption_keys(PolicyKey.RVC_MAX_EVENTS_PER_DAY))
    ramp_keys = tuple(pol.assumption_keys(PolicyKey.START_BEHAVIOUR))
    lean = c.lean
    start: dict[str, list] = {"rows": [], "seq": [], "key": [], "value": [], "name": [], "a": [], "detail": []}
    big: dict[str, list] = {"rows": [], "seq": [], "value": [], "name": [], "a": [], "detail": []}
    stat: dict[str, list] = {"rows": [], "seq": [], "value": [], "name": [], "a": [], "detail": []}
    # per appliance row as Python values, converted once for the batch
    indptr = steps.indptr.tolist()
    ramped_of = steps.ramped.tolist()
    d_start = steps.d_start_percent.tolist()
    d_rated = steps.d_rated_percent.tolist()
    for k in c.rows.tolist():
        for local, j in enumerate(range(indptr[k], indptr[k + 1])):
            r = steps.cases[j]
            rate = r.starts_per_hour / 60.0
            ramped = bool(ramped_of[j])
            used = r.defaults_used + (ramp_keys if ramped else ())
            start["rows"].append(k)
            start["seq"].append(3 * local)
            start["key"].append(
                PolicyKey.RVC_RARE_MAX_PERCENT if rate < rare_rate else PolicyKey.RVC_FREQUENT_MAX_PERCENT
            )
            start["value"].append(d_start[j])
            if not lean:  # lean: values and limits only (CheckInput.lean)
                start["a"].append(used)
                if ramped:
                    start["name"].append(f"Rapid voltage change when {r.label} stops (it ramps up; D-A-CH-CZ planning)")
                    start["detail"].append(
                        f"ramped start (policy start_behaviour): no start step; the stop at rated current at cos phi "
                        f"{r.cos_phi:g}, {r.starts_per_hour:g} switchings/h ({rate:.3g}/min)"
                    )
                else:
                    start["name"].append(f"Rapid voltage change when {r.label} starts (D-A-CH-CZ planning)")
                    start["detail"].append(
                        f"direct-on-line start: I_start = {r.start_current_ratio:g} x I_rated at cos phi "
                        f"{r.cos_phi_start:g}, {r.starts_per_hour:g} starts/h ({rate:.3g}/min)"
                    )
            events = r.starts_per_hour * hours
            if events > max_events:
                for out, value in ((big, d_start[j]), (stat, d_rated[j])):
                    out["rows"].append(k)
                    out["seq"].append(3 * local + (1 if out is big else 2))
                    out["value"].append(value)
                if lean:
                    continue
                text = f"{events:g} switching events per day > {max_events:g} (FoL)"
                for out, name in (
                    (big, f"Largest step when {r.label} switches, FoL dU_max (legal)"),
                    (stat, f"Stationary step when {r.label} switches, FoL (legal)"),
                ):
                    out["name"].append(name)
                    out["a"].append(used + events_keys)
                    out["detail"].append(text)
    blocks = (
        (RuleId.PQ_RVC, start, start["key"]),  # per start: the D-A-CH-CZ limit of its rate
        (RuleId.PQ_RVC_FOL_MAX, big, PolicyKey.RVC_MAX_STEP_PERCENT),
        (RuleId.PQ_RVC_STATIONARY, stat, PolicyKey.RVC_STATIONARY_MAX_PERCENT),
    )
    return [
        policy_limited(
            pol,
            rule,
            got["rows"],
            got["value"],
            key,
            LimitKind.MAX,
            "%",
            name="" if lean else got["name"],
            assumptions=() if lean else got["a"],
            detail="" if lean else got["detail"],
            seq=got["seq"],
        )  # fmt: skip
        for rule, got, key in blocks
    ]


def flicker(c: CheckInput) -> list[CheckBlock]:
    """Flicker of the appliance starts (IEC 61000-3-3 analytical method), against two kinds of limit.

    * PQ.FLICKER_PST / PQ.FLICKER_PLT: the grid total at the customer point -- background and the
      customer's emission by the cubic summation law -- against the FoL totals (legal, Pst 1.2, Plt 1.0);
    * PQ.FLICKER_SHARE_PST / PQ.FLICKER_SHARE_PLT: the customer's own emission against its share
      (emission, the grid owner's allocation).

    Plt of an appliance follows from its declared operating pattern: switching in ``n`` of the twelve
    10-min intervals of 2 h gives ``Plt = Pst (n / 12)^(1/3)`` (``n`` from ``operating_minutes_per_2h``,
    else the policy default, named).
    """
    ev = c.evaluation
    pol = c.policy
    fl = ev.flicker
    steps = ev.appliances
    common = tuple(
        pol.assumption_keys(PolicyKey.FLICKER_TF_COEFF, PolicyKey.FLICKER_TF_EXPONENT, PolicyKey.FLICKER_BACKGROUND_PST)
    )
    model = tuple(pol.assumption_keys(PolicyKey.FLICKER_TF_COEFF, PolicyKey.FLICKER_TF_EXPONENT))
    background = pol.number(PolicyKey.FLICKER_BACKGROUND_PST)
    default_active = pol.number(PolicyKey.FLICKER_ACTIVE_INTERVALS)
    rows = [int(k) for k in c.rows if fl.present[k]]
    # per appliance row as Python values, converted once for the batch
    indptr = steps.indptr.tolist()
    applies = fl.applies.tolist()
    pst_of = fl.pst_appliance.tolist()
    plt_of = fl.plt_appliance.tolist()
    if c.lean:  # values and limits only (CheckInput.lean)
        assumptions = own_assumptions = ()
        detail = plt_detail = own_detail = ""
    else:
        assumptions, own_assumptions, detail, plt_detail, own_detail = [], [], [], [], []
        for k in rows:
            parts, plt_parts, used = [], [], []
            for j in range(indptr[k], indptr[k + 1]):
                if applies[j]:
                    r = steps.cases[j]
                    parts.append(f"{r.label} Pst {pst_of[j]:.3f} ({r.starts_per_hour:g} starts/h)")
                    if r.appliance.operating_minutes_per_2h is not None:
                        origin = f"declared {r.appliance.operating_minutes_per_2h:g} min per 2 h"
                    elif any(u.endswith("operating_minutes_per_2h") for u in r.defaults_used):
                        origin = "policy appliance_defaults"
                    else:
                        origin = f"no pattern declared: policy flicker_active_intervals {default_active:g}"
                    plt_parts.append(
                        f"{r.label} Plt {plt_of[j]:.3f} (switching in {r.active_intervals:g} of 12 10-min "
                        f"intervals, {origin})"
                    )
                    used.extend(r.defaults_used)
            assumptions.append((*used, *common))
            own_assumptions.append((*used, *model))
            detail.append(f"background Pst {background:g} + " + "; ".join(parts) + " (cubic summation)")
            plt_detail.append(f"background Plt {background:g} + " + "; ".join(plt_parts) + " (cubic summation)")
            own_detail.append("the customer's own emission, without the background: " + "; ".join(parts + plt_parts))
    return [
        policy_limited(
            pol,
            RuleId.PQ_FLICKER_PST,
            rows,
            fl.pst_total[rows],
            PolicyKey.FLICKER_GRID_PST_MAX,
            LimitKind.MAX,
            "-",
            name="Short-term flicker Pst at the customer point, background included (legal total, FoL)",
            assumptions=assumptions,
            detail=detail,
        ),
        policy_limited(
            pol,
            RuleId.PQ_FLICKER_PLT,
            rows,
            fl.plt_total[rows],
            PolicyKey.FLICKER_GRID_PLT_MAX,
            LimitKind.MAX,
            "-",
            name="Long-term flicker Plt at the customer point over 2 h, background included (legal total, FoL)",
            assumptions=assumptions,
            detail=plt_detail,
            seq=1,
        ),
        policy_limited(
            pol,
            RuleId.PQ_FLICKER_SHARE_PST,
            rows,
            fl.pst_emission[rows],
            PolicyKey.FLICKER_CUSTOMER_PST_MAX,
            LimitKind.MAX,
            "-",
            name="The customer's own Pst emission against its share (emission limit)",
            assumptions=own_assumptions,
            detail=own_detail,
            seq=2,
        ),
        policy_limited(
            pol,
            RuleId.PQ_FLICKER_SHARE_PLT,
            rows,
            fl.plt_emission[rows],
            PolicyKey.FLICKER_CUSTOMER_PLT_MAX,
            LimitKind.MAX,
            "-",
            name="The customer's own Plt emission against its share (emission limit)",
            assumptions=own_assumptions,
            detail=own_detail,
            seq=3,
        ),
    ]


def harmonics(c: CheckInput) -> list[CheckBlock]:
    """PQ.THD (orders 2 to ``thd_max_order``), PQ.THD_WEEK (continuously running appliances, 1-week limit) and
    PQ.HARMONIC (the individual order closest to its limit).

    Every order of a spectrum up to ``thd_max_order`` counts in THD; the orders without an individual
    limit in the policy and the installer's orders above the THD range are named in the details.
    """
    ev = c.evaluation
    pol = c.policy
    hr = ev.harmonics
    steps = ev.appliances
    common = tuple(
        pol.assumption_keys(
            PolicyKey.HARMONIC_SUMMATION_ALPHA, PolicyKey.HARMONIC_SKIN_EXPONENT, PolicyKey.HARMONIC_BACKGROUND_PERCENT
        )
    )
    spectra_keys = tuple(pol.assumption_keys(PolicyKey.HARMONIC_SPECTRA))
    orders = hr.orders
    limited = np.isfinite(hr.limit_percent)
    rows = [int(k) for k in c.rows if hr.present[k]]
    # per row and order at once: the orders counted in THD without an individual limit, and the order closest to
    # its limit (the first of equals)
    total = hr.total_percent[rows]
    ratio = np.where(limited, total / np.where(limited, hr.limit_percent, 1.0), -np.inf)
    worst_of = np.argmax(ratio, axis=1).tolist() if rows else []
    unlimited_of = (~limited & (hr.emission_percent[rows] > 0)).tolist()
    background = hr.background_percent.tolist()
    limit_of = hr.limit_percent.tolist()
    emitting = hr.emitting.tolist()
    indptr = ev.appliances.indptr.tolist()
    orders_above = steps.table.orders_above
    if c.lean:  # values and limits only (CheckInput.lean): the order closest to its limit, no texts
        worst_at = np.array(worst_of, dtype=np.int64)
        worst_value = total[np.arange(len(rows)), worst_at]
        worst_limit = hr.limit_percent[worst_at]
        assumptions, thd_detail, worst_name, worst_detail = (), "", "", ""
    else:
        assumptions, thd_detail, worst_value, worst_limit, worst_name, worst_detail = [], [], [], [], [], []
        for i, k in enumerate(rows):
            parts, used, beyond = [], [], set()
            for j in range(indptr[k], indptr[k + 1]):
                if emitting[j]:
                    r = steps.cases[j]
                    origin = hr.origin[j]
                    parts.append(f"{r.label} spectrum {origin}")
                    if str(origin).startswith("policy:"):
                        used.extend(spectra_keys)
                    used.extend(r.defaults_used)
                if orders_above:
                    beyond.update(orders_above[j])
            assumptions.append((*used, *common))
            unlimited = [order for order, flag in zip(orders, unlimited_of[i]) if flag]
            text = f"orders {orders[0]}-{orders[-1]}; " + "; ".join(parts)
            if unlimited:
                text += (
                    "; orders " + ", ".join(map(str, unlimited)) + " counted in THD (no individual limit in the policy)"
                )
            if beyond:
                text += (f"; installer orders {', '.join(map(str, sorted(beyond)))} are above the THD range "
                         f"(2-{orders[-1]}) and not assessed")  # fmt: skip
            thd_detail.append(text)
            worst = worst_of[i]
            h = orders[worst]
            worst_value.append(float(total[i, worst]))
            worst_limit.append(limit_of[worst])
            worst_name.append(f"Harmonic voltage of order {h} (closest to its limit)")
            worst_detail.append(
                f"order {h}: background {background[worst]:.2f} % + emission "
                f"{float(hr.emission_percent[k, worst]):.2f} % "
                f"(IEC 61000-3-6 summation, alpha {pol.harmonic_alpha(h):g})"
            )
    week = [i for i, k in enumerate(rows) if hr.continuous[k]]
    week_rows = [rows[i] for i in week]
    return [
        policy_limited(
            pol,
            RuleId.PQ_THD,
            rows,
            hr.thd_percent[rows],
            PolicyKey.THD_MAX_PERCENT,
            LimitKind.MAX,
            "%",
            name="Total harmonic distortion with the appliances",
            assumptions=assumptions,
            detail=thd_detail,
        ),
        policy_limited(
            pol,
            RuleId.PQ_THD_WEEK,
            week_rows,
            hr.thd_percent[week_rows],
            PolicyKey.THD_WEEK_MAX_PERCENT,
            LimitKind.MAX,
            "%",
            name="THD of continuously running appliances against the 1-week limit",
            assumptions=()
            if c.lean
            else [(*assumptions[i], *pol.assumption_keys(PolicyKey.THD_WEEK_KINDS)) for i in week],
            detail="" if c.lean else [thd_detail[i] for i in week],
            seq=1,
        ),
        measured(
            RuleId.PQ_HARMONIC,
            rows,
            worst_value,
            worst_limit,
            LimitKind.MAX,
            "%",
            name=worst_name,
            limit_key=str(PolicyKey.HARMONIC_VOLTAGE_MAX_PERCENT),
            assumptions=assumptions,
            detail=worst_detail,
            seq=2,
        ),
    ]


def unbalance(c: CheckInput) -> list[CheckBlock]:
    """PQ.UNBALANCE: the highest unbalance in the network once the notification's single-phase load (at
    peak) or export (at low load) is added -- base case (or assumed background) + the ledger's
    requests + the notification's share -- the worse side.
    """
    ev = c.evaluation
    pol = c.policy
    arr = c.grid.arrays
    background_keys = tuple(pol.assumption_keys(PolicyKey.BACKGROUND_UNBALANCE_PERCENT))
    worst = ev.worst
    rows = [int(k) for k in c.rows if ev.s1_load_kva[k] > 0 or ev.s1_export_kva[k] > 0]
    value, assumptions, detail = [], [], []
    for k in rows:
        peak = float(worst.unbalance_peak_percent[k]) if ev.s1_load_kva[k] > 0 else -np.inf
        low = float(worst.unbalance_low_percent[k]) if ev.s1_export_kva[k] > 0 else -np.inf
        at_peak = peak >= low
        where = int(worst.unbalance_peak_bus_row[k] if at_peak else worst.unbalance_low_bus_row[k])
        own = where == ev.point.bus_row[k]
        base = float(arr.unbalance_base_percent[where])
        used = () if math.isfinite(base) else background_keys
        origin = "base-case load flow" if math.isfinite(base) else "assumed background"
        side = "load at peak" if at_peak else "export at low load"
        s1 = float(ev.s1_load_kva[k] if at_peak else ev.s1_export_kva[k])
        value.append(peak if at_peak else low)
        assumptions.append(used + (c.cases[k].demand_assumptions if at_peak else c.cases[k].export_assumptions))
        place = "at the connection point" if own else f"at bus {int(arr.bus_ids[where])}"
        detail.append(f"{origin} + reserved + {s1:.1f} kVA single-phase {side}, {place} (|V2|/|V1|, worst phase)")
    return [
        policy_limited(
            pol,
            RuleId.PQ_UNBALANCE,
            rows,
            value,
            PolicyKey.UNBALANCE_MAX_PERCENT,
            LimitKind.MAX,
            "%",
            name="Voltage unbalance with the single-phase load/export",
            assumptions=assumptions,
            detail=detail,
        )
    ]
