"""Measures: what would make an escalated notification pass, who carries it out, and what it achieves.

For every escalated notification whose checks ran, the installer's measures of the policy
(``measures``, tried in policy order) become *variants* of the notification -- the EV charger
at a lower charging current, the appliance three-phase, the PV export limited or absorbing
reactive power, a soft starter or frequency converter, the next main fuse, a larger service
cable -- and every variant of the batch is assessed in one more vectorised pass on the same
ledger. The first variant that the auto-approval rules accept makes the decision
``approved_with_conditions``: its conditions are listed, its checks are the decision's, and it
is what the ledger reserves. Otherwise the decision lists every measure that would help with
what it achieves (which failing checks it resolves, which still fail), then the grid owner's
measures (reinforce the binding cable or transformer, ...) and what a case handler has to do.
Sizes come from the inverse answers (:mod:`powercheck.rules.inverse`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from powercheck.models import (
    BUDGET_MAX_KW,
    FUSE_MAX_A,
    Appliance,
    Connection,
    MeasureOption,
    Message,
    Notification,
    Outcome,
    PowerBudget,
    SupplyPhases,
    construct,
    replaced,
)
from powercheck.quality.codes import CONN_3PH, SQRT3
from powercheck.rules.accounting import phase_current_a
from powercheck.rules.checks.base import FAIL, NOT_EVALUATED, CheckTable
from powercheck.rules.decide import DecisionBatch
from powercheck.rules.demand import DemandCase
from powercheck.rules.policy import Policy, PolicyKey
from powercheck.rules.rule_ids import RuleId
from powercheck.texts import msg, render

GATE_RULES = {RuleId.DATA_COMPLETE, RuleId.GRID_LOCATED, RuleId.GRID_SYSTEM, RuleId.GRID_DATA, RuleId.LEDGER_CONFLICT}
"""Escalations no installer measure can fix: the case handler acts first."""


@dataclass(frozen=True)
class Variant:
    """The notification with measures applied."""

    origin: int
    """Row of the escalated notification in its batch."""
    ids: tuple[str, ...]
    notification: Notification
    conditions: tuple[Message, ...]
    source: str


def _label(n: Notification, i: int) -> str:
    return f"{n.appliances[i].kind.value}#{i}"


def _largest_kw(limits, i: int) -> float | None:
    for limit in limits:
        if limit.quantity == f"appliances[{i}].rated_kw":
            return limit.largest
    return None


def _with_appliance(n: Notification, i: int, **update) -> Notification:
    appliances = list(n.appliances)
    appliances[i] = replaced(appliances[i], update)
    return replaced(n, {"appliances": appliances})


def _charging_power_kw(current_a: float, a: Appliance, u_ll_v: float) -> float:
    cos = a.cos_phi or 1.0
    if a.connection is Connection.THREE_PHASE:
        return SQRT3 * u_ll_v * current_a * cos / 1000.0
    u_ref = u_ll_v if a.connection is Connection.L_L else u_ll_v / SQRT3
    return u_ref * current_a * cos / 1000.0


def _measure_kinds(policy: Policy) -> tuple[tuple[dict, str, frozenset[str]], ...]:
    """Per installer measure of the policy (in order): the measure, its id and the appliance kinds it applies to."""
    return tuple((m, m["id"], frozenset(m.get("kinds", []))) for m in policy.value(PolicyKey.MEASURES))


def _single_measures(
    case: DemandCase, limits, failing: set[str], policy: Policy, u_ll_v: float
) -> list[tuple[str, Notification, list]]:
    """(measure id, variant, condition messages) for every installer measure that changes this notification."""
    n = case.notification
    margin = policy.number(PolicyKey.AUTO_APPROVE_MIN_RELATIVE_MARGIN)
    out: list[tuple[str, Notification, list]] = []
    for m, mid, kinds in policy.derived("measures.kinds", _measure_kinds):
        for i, a in enumerate(n.appliances):
            if a.kind not in kinds:  # a str enum: found as its value
                continue
            label = _label(n, i)
            largest = _largest_kw(limits, i)
            if mid == "charging_current_limit" and largest is not None and largest < a.rated_kw:
                steps = [s for s in m["steps_a"] if _charging_power_kw(s, a, u_ll_v) <= largest * (1 - margin)]
                for step in sorted(steps, reverse=True)[:2]:
                    kw = _charging_power_kw(step, a, u_ll_v)
                    out.append(
                        (
                            mid,
                            _with_appliance(n, i, rated_kw=round(kw, 3)),
                            [msg("measure.charging_current_limit", appliance=label, current=step, power=kw)],
                        )
                    )
            elif mid == "three_phase" and a.connection is not Connection.THREE_PHASE:
                if n.supply_phases is SupplyPhases.THREE:
                    out.append(
                        (
                            mid,
                            _with_appliance(n, i, connection=Connection.THREE_PHASE),
                            [msg("measure.three_phase", appliance=label)],
                        )
                    )
            elif mid == "export_limit" and a.kind.generates and largest is not None and largest < a.rated_kw:
                kw = math.floor(largest * (1 - margin) * 10) / 10
                if kw > 0:
                    out.append(
                        (
                            mid,
                            _with_appliance(n, i, rated_kw=kw),
                            [msg("measure.export_limit", appliance=label, power=kw)],
                        )
                    )
            elif mid == "reactive_power" and (a.cos_phi or 1.0) > m["cos_phi"]:
                out.append(
                    (
                        mid,
                        _with_appliance(n, i, cos_phi=m["cos_phi"]),
                        [msg("measure.reactive_power", appliance=label, cos_phi=m["cos_phi"])],
                    )
                )
            elif mid in ("soft_starter", "frequency_converter"):
                ratio = a.start_current_ratio
                if ratio is not None and ratio > m["start_current_ratio"]:
                    text = msg(f"measure.{mid}", appliance=label, ratio=m["start_current_ratio"])
                    out.append((mid, _with_appliance(n, i, start_current_ratio=m["start_current_ratio"]), [text]))
        if mid == "main_fuse":
            out.extend(_fuse_measures(case, limits, failing, policy, u_ll_v))
        if mid == "kv_fuse" and case.kv_changed and failing & KV_RULES:
            kv = next((x for x in limits if x.quantity == "kv_fuse_after_a"), None)
            if kv is not None and kv.smallest is not None and kv.largest is not None and kv.smallest <= kv.largest:
                target = min(max(case.kv_a, kv.smallest), kv.largest)
                variant = replaced(n, {"kv_fuse_after_a": target})
                out.append((mid, variant, [msg("measure.kv_fuse", fuse=target)]))
        if mid == "service_cable" and str(RuleId.PROT_SERVICE_CABLE) in failing and case.fuse_after_a is not None:
            rating = float(math.ceil(case.fuse_after_a / (1 - margin)))  # with the auto-approval margin
            variant = replaced(n, {"service_cable_ampacity_a": rating})
            out.append((mid, variant, [msg("measure.service_cable", current=rating)]))
    return out


PROTECTION = {
    str(RuleId.PROT_SERVICE_CABLE),
    str(RuleId.PROT_SELECTIVITY),
    str(RuleId.PROT_KV_SELECTIVITY),
    str(RuleId.PROT_FAULT_CURRENT),
}
KV_RULES = {
    str(RuleId.PROT_KV_SELECTIVITY),
    str(RuleId.PROT_KV_FAULT_CURRENT),
    str(RuleId.PROT_KV_UPSTREAM_SELECTIVITY),
}
ACCOUNTING = {str(RuleId.LOAD_MAIN_FUSE), str(RuleId.LOAD_EXPORT_FUSE), str(RuleId.PROT_START_CURRENT)}


def _budget_like(case: DemandCase, policy: Policy, u_ll_v: float) -> dict | None:
    """A power budget that gives the installation the same current per phase as its accounting.

    The budget's cos phi is chosen so that its balanced part, ``(P - P1) / (sqrt3 U cos)``, plus the
    single-phase appliances equals the accounted current (None when no cos phi in (0.5, 1] does).
    """
    acc = case.accounting
    diversity = policy.value(PolicyKey.APPLIANCE_DIVERSITY)
    single = [(diversity.get(a.appliance.kind.value, 1.0) * a.total_kw, a) for a in case.appliances
              if a.appliance.kind.consumes and a.conn != CONN_3PH]  # fmt: skip
    p1 = sum(kw for kw, _ in single)
    i1 = sum(phase_current_a(kw, a.cos_phi, a.conn, u_ll_v) for kw, a in single)
    balanced_a = acc.phase_current_a - i1
    if case.notification.supply_phases is not SupplyPhases.THREE or balanced_a <= 0:
        return None
    cos = (acc.demand_after_kw - p1) * 1000.0 / (SQRT3 * u_ll_v * balanced_a)
    if not 0.5 <= cos <= 1.0:
        return None
    return {"max_demand_kw": acc.demand_after_kw, "cos_phi": cos}


def _fuse_amps(value) -> float | None:
    """A fuse rating as ``FuseAmps`` validates it (a finite number in (0, ``FUSE_MAX_A``], as float); None when it
    would not validate."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= FUSE_MAX_A:
        return None
    return float(value)


def _fuse_variant(n: Notification, update: dict) -> Notification:
    """``Notification.model_validate({**n.model_dump(exclude_none=True), **update})`` for the main fuse measure's
    ``update`` (fuses before and after, maybe a power budget as a dict) of the validated ``n``: ``n`` with the fuses
    as float and the budget a :class:`PowerBudget`, its other fields shared (they validate to equal values), without
    pydantic's dump and validation (``tests/rules/test_variant_models.py`` compares the two on every variant of the
    demo and the rule cases). Values that would not validate go to ``model_validate`` (which raises, as before)."""
    before, after = _fuse_amps(update["main_fuse_before_a"]), _fuse_amps(update["main_fuse_after_a"])
    values = {"main_fuse_before_a": before, "main_fuse_after_a": after}
    budget = update.get("power_budget", n.power_budget)
    if isinstance(budget, dict):
        demand, cos = budget["max_demand_kw"], budget["cos_phi"]
        if (
            set(budget) == {"max_demand_kw", "cos_phi"}
            and _number_in(demand, 0.0, BUDGET_MAX_KW)
            and _number_in(cos, 0.0, 1.0)
            and cos > 0
        ):
            budget = construct(
                PowerBudget, {"max_demand_kw": float(demand), "max_export_kw": 0.0, "cos_phi": float(cos)}
            )
        else:
            budget = False
    if before is None or after is None or budget is False:
        return Notification.model_validate({**n.model_dump(exclude_none=True), **update})
    if "power_budget" in update:
        values["power_budget"] = budget
    return replaced(n, values)


def _number_in(value, low: float, high: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value <= high


def _fuse_measures(
    case: DemandCase, limits, failing: set[str], policy: Policy, u_ll_v: float
) -> list[tuple[str, Notification, list]]:
    """A bigger main fuse for the installation, a smaller one for its protection, a bigger meter fuse."""
    n = case.notification
    need, fuse = case.required_fuse_a, case.fuse_after_a
    if fuse is None:
        return []
    out = []
    allowed = next((x.largest for x in limits if x.quantity == "main_fuse_a"), None)
    target = None
    if failing & ACCOUNTING and need is not None and need > fuse:
        target, key = need, "measure.main_fuse"
    elif failing & PROTECTION and case.fuse_changed and allowed is not None and allowed < fuse:
        if need is None or allowed >= need:
            target, key = allowed, "measure.smaller_main_fuse"
    if target is not None:
        update: dict = {"main_fuse_before_a": n.main_fuse_before_a or fuse, "main_fuse_after_a": target}
        threshold = policy.value(PolicyKey.BUDGET_REQUIRED_ABOVE_FUSE_A).get(n.network_system.value)
        if n.power_budget is None and threshold is not None and target > threshold and case.accounting is not None:
            update["power_budget"] = _budget_like(case, policy, u_ll_v)  # the policy wants a budget above this
        variant = _fuse_variant(n, update)
        out.append(("main_fuse", variant, [msg(key, fuse=target)]))
    if str(RuleId.LOAD_METER_FUSE) in failing and need is not None:
        variant = replaced(n, {"meter_fuse_before_a": n.meter_fuse_before_a, "meter_fuse_after_a": need})
        out.append(("main_fuse", variant, [msg("measure.meter_fuse", fuse=need)]))
    return out


def variants(
    batch: DecisionBatch,
    policy: Policy,
    u_ll_of: Callable[[DemandCase], float],
    failing_of: Sequence[Sequence[str]] | None = None,
    skip: Collection[int] = (),
) -> list[Variant]:
    """Variants of every escalated notification whose grid checks ran (single measures, then with a bigger fuse).

    ``failing_of``: :func:`failing_rules` of the batch's checks (found here when not given); rows in ``skip`` get
    none."""
    if failing_of is None:
        failing_of = failing_rules(batch.checks)
    sources = {m["id"]: m["source"] for m in policy.value(PolicyKey.MEASURES)}
    out: list[Variant] = []
    for k, case in enumerate(batch.cases):
        if batch.outcome[k] is not Outcome.ESCALATE or not case.evaluable or k in skip:
            continue
        rows = batch.checks.rows_of(k)
        if not GATE_RULES.isdisjoint(batch.checks.rule_id[rows.start : rows.stop]):
            continue
        failing = set(failing_of[k])
        singles = _single_measures(case, batch.limits[k] if batch.limits else (), failing, policy, u_ll_of(case))
        for mid, note, conditions in singles:
            out.append(Variant(k, (mid,), note, tuple(conditions), sources[mid]))
        fuse = next(((note, c) for mid, note, c in singles if mid == "main_fuse"), None)
        if fuse is not None:
            for mid, note, conditions in singles:
                if mid == "main_fuse":
                    continue
                fields = ("main_fuse_before_a", "main_fuse_after_a", "power_budget")
                both = replaced(note, {name: getattr(fuse[0], name) for name in fields})
                out.append(Variant(k, ("main_fuse", mid), both, tuple(fuse[1]) + tuple(conditions),
                                   f"{sources['main_fuse']}; {sources[mid]}"))  # fmt: skip
            if fuse[0].meter_fuse_after_a != case.notification.meter_fuse_after_a:
                continue
    return out


def failing_rules(checks: CheckTable, bad_rows: list[list[int]] | None = None) -> list[list[str]]:
    """Per notification of a check table: the rule ids of its results that fail or are not evaluated, in order
    (found for the whole table at once; from its :func:`_bad_rows` when the caller has them)."""
    rule_id = checks.rule_id
    return [[str(rule_id[i]) for i in rows] for rows in (_bad_rows(checks) if bad_rows is None else bad_rows)]


def _bad_rows(checks: CheckTable) -> list[list[int]]:
    """Per notification of a check table: its results (rows of the table) that fail or are not evaluated, in
    order."""
    status = checks.status
    bad = np.flatnonzero((status == FAIL) | (status == NOT_EVALUATED))
    out: list[list[int]] = [[] for _ in range(len(checks.indptr) - 1)]
    if bad.size:
        owner = np.searchsorted(checks.indptr, bad, side="right") - 1  # the row whose range holds each result
        for i, k in zip(bad.tolist(), owner.tolist()):
            out[k].append(i)
    return out


def _option(mid: str, by: str, message: Message, effect: Message, sufficient: bool, resolves, remaining, source):
    """A measure option from trusted values (every field, in the model's order: no validation pass)."""
    return construct(
        MeasureOption,
        {
            "id": mid,
            "by": by,
            "text": render(message),
            "effect": render(effect),
            "sufficient": bool(sufficient),
            "resolves": sorted(set(resolves)),
            "remaining": sorted(set(remaining)),
            "message": message,
            "effect_message": effect,
            "source": source,
        },
    )


def _grid_owner_options(batch: DecisionBatch, k: int, grid, policy: Policy, bad: Sequence[int]) -> list[MeasureOption]:
    """Reinforcements for the failing grid checks, and what a case handler has to do (``bad``: the notification's
    results that fail or are not evaluated, :func:`_bad_rows`; the others add nothing)."""
    checks = batch.checks
    case = batch.cases[k]
    out: list[MeasureOption] = []
    seen: set[str] = set()
    line_frac = policy.number(PolicyKey.LINE_LOADING_MAX_PERCENT) / 100.0
    trafo_frac = policy.number(PolicyKey.TRANSFORMER_LOADING_MAX_PERCENT) / 100.0
    for i in bad:
        rule = checks.rule_id[i]
        status = checks.status[i]
        if status == NOT_EVALUATED and rule.group != "GRID":
            message = msg("measure.case_handler", text=msg("measure.review_not_evaluated", rule=str(rule),
                                                          detail=checks.detail[i]))  # fmt: skip
            out.append(_option("review", "case_handler", message, msg("effect_review"), False, [], [], "policy"))
            continue
        if status != FAIL or rule.group not in ("THERMAL", "VOLT", "PQ", "PROT") or rule in seen:
            continue
        seen.add(rule)
        if rule is RuleId.PROT_SELECTIVITY and case.fuse_after_a is not None and checks.unit[i] == "ratio":
            needed = float(checks.limit[i]) * case.fuse_after_a
            message = msg("measure.grid_selectivity", needed=needed)
        elif rule is RuleId.PROT_FAULT_CURRENT:
            message = msg("measure.grid_fault_current", ik=float(checks.value[i]))
        elif rule.group == "PROT":
            continue
        elif rule in (RuleId.THERMAL_LINE_PEAK, RuleId.THERMAL_LINE_EXPORT):
            line = checks.detail[i].split("binding line ")[-1].split(" ")[0]
            needed, rated = float(checks.value[i]) / line_frac, float(checks.limit[i]) / line_frac
            message = msg("measure.grid_line", line=line, network=case.location.network_id, needed=needed, rated=rated)
        elif rule in (RuleId.THERMAL_TRAFO_PEAK, RuleId.THERMAL_TRAFO_EXPORT):
            message = msg("measure.grid_transformer", needed=float(checks.value[i]) / trafo_frac,
                          rated=float(checks.limit[i]) / trafo_frac)  # fmt: skip
        elif rule.group == "VOLT":
            message = msg("measure.grid_voltage")
        else:
            message = msg("measure.grid_power_quality")
        out.append(_option(f"grid:{rule}", "grid_owner", message, msg("effect_grid", resolved=str(rule)), False,
                           [str(rule)], [], "grid owner's planning"))  # fmt: skip
    if not bad:
        rows = list(checks.rows_of(k))
        only_margin = all(m.key == "policy_margin" for m in batch.reasons[k])
        key = "measure.review_margin" if only_margin and rows else "measure.review_checks_pass"
        out.append(_option("review", "case_handler", msg("measure.case_handler", text=msg(key)),
                           msg("effect_review"), False, [], [], "policy"))  # fmt: skip
    return out


def _gate_options(batch: DecisionBatch, k: int) -> list[MeasureOption]:
    rows = batch.checks.rows_of(k)
    rules = set(batch.checks.rule_id[rows.start : rows.stop])  # rule ids (str enums: equal to their str)
    key = None
    if str(RuleId.GRID_LOCATED) in rules:
        key = "measure.review_unknown_point"
    elif str(RuleId.GRID_SYSTEM) in rules:
        key = "measure.review_system"
    elif str(RuleId.GRID_DATA) in rules:
        key = "measure.review_grid_data"
    elif str(RuleId.LEDGER_CONFLICT) in rules:
        key = "measure.review_conflict"
    if key is None:
        return []
    return [_option("review", "case_handler", msg("measure.case_handler", text=msg(key)), msg("effect_review"),
                    False, [], [], "policy")]  # fmt: skip


def apply_measures(
    batch: DecisionBatch,
    assess_variants: Callable[
        [list[Notification], list[int]], tuple[DecisionBatch, dict[int, tuple[DecisionBatch, int]]]
    ],
    policy: Policy,
    grid,
    skip: Collection[int] = (),
) -> DecisionBatch:
    """Approve escalations with conditions where an installer's measure makes them approvable; list measures.

    ``assess_variants(notifications, origins)`` decides variants on the same ledger state (the
    origin rows give each variant its notification's place in the batch): ``(decided, full)``, ``decided`` with
    every variant's outcome, checks' statuses, reasons and demand case (it may be lean: without the checks' texts and
    assumptions), ``full[pos] = (batch, row)`` for every variant that auto-approves: its full decision (checks,
    score, assumptions, path), which an approval with conditions takes. Rows in ``skip`` (decisions that
    will be thrown away) keep their outcome and get no measures.
    """
    arr = grid.arrays
    bad_rows = _bad_rows(batch.checks)
    failing_of = failing_rules(batch.checks, bad_rows)
    found = variants(batch, policy, lambda c: float(arr.u_ll_v[c.location.bus_row]), failing_of, skip)
    outcome = list(batch.outcome)
    measures: list[list[MeasureOption]] = [[] for _ in batch.cases]
    conditions: list[list[Message]] = [[] for _ in batch.cases]
    reserve = list(batch.cases)
    replace_checks: dict[int, tuple[DecisionBatch, int]] = {}
    if found:
        decided, full = assess_variants([v.notification for v in found], [v.origin for v in found])
        best: dict[tuple[int, str], tuple] = {}
        decided_failing = failing_rules(decided.checks)
        for pos, v in enumerate(found):
            k = v.origin
            before = set(failing_of[k])
            after = set(decided_failing[pos])
            approvable = decided.outcome[pos] is Outcome.AUTO_APPROVE
            if approvable and outcome[k] is Outcome.ESCALATE:
                outcome[k] = Outcome.APPROVED_WITH_CONDITIONS
                conditions[k] = list(v.conditions)
                of, row = full[pos]
                reserve[k] = of.cases[row]
                replace_checks[k] = (of, row)
            if not (approvable or before - after):
                continue
            key = (k, "+".join(v.ids))
            rank = (not approvable, len(after))  # per measure the first variant that does most
            if key not in best or rank < best[key][0]:
                best[key] = (rank, (pos, v, approvable, before, after))
        for (k, _), (_, found_option) in best.items():  # the options made for the variants kept only
            measures[k].append(_installer_option(decided, *found_option))
    for k in range(len(batch.cases)):
        if outcome[k] is Outcome.ESCALATE and k not in skip:
            measures[k] += _grid_owner_options(batch, k, grid, policy, bad_rows[k]) + _gate_options(batch, k)
            if not measures[k]:
                text = msg("measure.case_handler", text=msg("measure.review_other"))
                measures[k].append(_option("review", "case_handler", text, msg("effect_review"), False, [], [], ""))
    return _merged(batch, outcome, measures, conditions, reserve, replace_checks)


def _installer_option(decided: DecisionBatch, pos: int, v: Variant, approvable: bool, before: set, after: set):
    """The measure option of variant ``v`` (row ``pos`` of ``decided``): what it achieves against the failing rules
    ``before`` it, ``after`` it."""
    if approvable:
        effect = msg("effect_sufficient")
    elif not after and any(m.key == "policy_job_type" for m in decided.reasons[pos]):
        effect = msg("effect_job_type", job=v.notification.job_type.value)
    elif not after:
        effect = msg("effect_margin")
    else:
        effect = msg("effect_partial", resolved=sorted(before - after), remaining=sorted(after))
    text = v.conditions[0] if len(v.conditions) == 1 else msg("measure.together", measures=list(v.conditions))
    return _option("+".join(v.ids), "installer", text, effect, approvable, before - after, after, v.source)


def _merged(batch, outcome, measures, conditions, reserve, replace_checks) -> DecisionBatch:
    """The batch with the measures' outcomes; an approval with conditions takes its variant's checks and score."""
    if not replace_checks:
        return dataclasses.replace(batch, outcome=outcome, measures=measures, conditions=conditions, reserve=reserve)
    scores = np.array(batch.score, copy=True)
    reasons = list(batch.reasons)
    overrides = {}
    for k, (decided, pos) in replace_checks.items():
        scores[k] = decided.score[pos]
        reasons[k] = [msg("approved_with_conditions", conditions=list(conditions[k]))]
        overrides[k] = (decided, pos)
    return dataclasses.replace(
        batch, outcome=outcome, score=scores, reasons=reasons, measures=measures, conditions=conditions,
        reserve=reserve, check_overrides=overrides,
    )  # fmt: skip


__all__ = ["Variant", "apply_measures", "failing_rules", "variants"]
