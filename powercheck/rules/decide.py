"""Stage 4: check results -> outcome, score, reasons and the decision of every notification.

* ``reject_incomplete`` when data is missing (DATA.COMPLETE) or the record is invalid (DATA.VALID);
* ``request_info`` when a challenging appliance lacks its datasheet values or a required attachment is
  missing (DATA.INFO): the reasons name every value and attachment needed;
* a completion notice (COMPLETION.MATCH): ``auto_approve`` (the approved request is marked built) when it
  matches what was approved, else ``escalate`` with the differences;
* ``escalate`` when the metering point is unknown or on another system, when the grid model cannot
  be computed at its bus (``GRID.DATA``: islanded, no transformer, ...), when a check fails
  or cannot be evaluated, or when the policy's auto-approval gates stop it (job type,
  fuse cap, relative margin);
* ``auto_approve`` otherwise.

The score is the smallest relative margin over the evaluated checks (negative: a limit is
exceeded). A decision names the [R] assumptions of its checks, and the grid-model defaults
of its network when a grid check ran.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from powercheck import __version__
from powercheck.models import (
    CheckResult,
    CheckStatus,
    Decision,
    LimitKind,
    MeasureOption,
    Message,
    NetworkData,
    Notification,
    Outcome,
    PathPoint,
    SizeLimit,
    construct,
)
from powercheck.rules.checks.base import FAIL, NOT_EVALUATED, PASS, CheckTable
from powercheck.rules.context import GridView
from powercheck.rules.demand import DemandCase, fuse_capacity_kva, supply_conn
from powercheck.rules.devices import breaker_of_size
from powercheck.rules.policy import Policy, PolicyKey
from powercheck.rules.rule_ids import GRID_RULE_GROUPS, LEGAL_VOLTAGE_RULES, PLANNING_VOLTAGE_RULES, RuleId
from powercheck.texts import DEFAULT_LANGUAGE, msg, render

FUSE_RULES = frozenset(
    {RuleId.LOAD_MAIN_FUSE, RuleId.LOAD_METER_FUSE, RuleId.LOAD_EXPORT_FUSE, RuleId.PROT_START_CURRENT}
)
"""Rules whose failure reason names the fuse that would do."""


def _check_reasons(case: DemandCase, checks: CheckTable, rows: Sequence[int], status: Sequence[int]) -> list[Message]:
    """The reasons of the results ``rows`` that did not pass (``status``: the table's status codes as a list)."""
    reasons = []
    for i in rows:
        rule = checks.rule_id[i]
        status_i = status[i]
        if status_i == FAIL:
            if rule is RuleId.LEDGER_CONFLICT:
                reasons.append(msg("ledger_conflict", text=list(case.conflicts)))
                continue
            params = dict(
                rule=str(rule), value=float(checks.value[i]), limit=float(checks.limit[i]), unit=checks.unit[i]
            )
            if rule in LEGAL_VOLTAGE_RULES:
                reasons.append(msg("check_failed_legal", **params))
            elif rule in PLANNING_VOLTAGE_RULES:
                reasons.append(msg("check_failed_planning", **params))
            elif rule in FUSE_RULES:
                fuse = case.required_fuse_a
                breaker = breaker_of_size(case.device, fuse) if fuse is not None else None
                if breaker is not None:  # sized by the notified breaker's own criterion, not gG values
                    extra = msg("protection_required", fuse=fuse, device=breaker)
                else:
                    extra = msg("fuse_required", fuse=fuse) if fuse is not None else msg("fuse_none")
                reasons.append(msg("check_failed_with", **params, extra=extra))
            else:
                reasons.append(msg("check_failed", **params))
        elif status_i == NOT_EVALUATED:
            reasons.append(msg("check_not_evaluated", rule=str(rule), detail=checks.detail[i]))
    return reasons


def _gates(policy: Policy) -> tuple[frozenset[str], dict, dict, dict, float]:
    """The auto-approval gates' policy values: job types, fuse and kVA caps and tariff thresholds by system, margin."""
    return (
        frozenset(policy.value(PolicyKey.AUTO_APPROVE_JOB_TYPES)),
        policy.value(PolicyKey.AUTO_APPROVE_MAX_FUSE_A),
        policy.value(PolicyKey.AUTO_APPROVE_MAX_FUSE_KVA),
        policy.value(PolicyKey.TARIFF_THRESHOLDS_A),
        policy.number(PolicyKey.AUTO_APPROVE_MIN_RELATIVE_MARGIN),
    )


def _gate_reasons(case: DemandCase, checks: CheckTable, low: Sequence[int], rel_margin: np.ndarray, policy: Policy,
                  grid: GridView, gates: tuple | None = None) -> list:  # fmt: skip
    """Why a notification whose checks all pass is still not auto-approved (``low``: its results whose relative
    margin is below the auto-approval margin, in order; ``gates``: the policy's :func:`_gates` when the caller has
    them already)."""
    n = case.notification
    reasons = []
    job_types, max_fuse_of, max_kva_of, tariff_of, min_margin = gates or policy.derived("decide.gates", _gates)
    job = n.job_type._value_  # the enum's value (``.value`` without the descriptor call)
    if job not in job_types:
        reasons.append(msg("policy_job_type", job=job))
    system = n.network_system._value_
    max_fuse = max_fuse_of.get(system)
    fuse = case.fuse_after_a
    if fuse is not None and max_fuse is not None and fuse > max_fuse:
        reasons.append(msg("policy_max_fuse", fuse=fuse, limit=float(max_fuse)))
    max_kva = max_kva_of.get(system)
    if fuse is not None and max_kva is not None and case.location is not None:
        u_ll = float(grid.arrays.u_ll_v[case.location.bus_row])
        kva = fuse_capacity_kva(fuse, u_ll, supply_conn(n.network_system, n.supply_phases))
        if kva > max_kva + 1e-9:
            reasons.append(msg("policy_max_fuse_kva", fuse=fuse, kva=kva, limit=float(max_kva)))
    tariff = tariff_of.get(system)
    if fuse is not None and tariff is not None and case.fuse_changed and fuse > tariff:
        before = n.main_fuse_before_a
        if before is None and case.location is not None:
            record = float(grid.customers.main_fuse_a[case.location.cp_row])
            before = None if math.isnan(record) else record
        if before is None or before <= tariff:
            reasons.append(msg("policy_tariff", fuse=fuse, limit=float(tariff), system=system))
    for i in low:
        reasons.append(
            msg("policy_margin", rule=str(checks.rule_id[i]), margin=float(rel_margin[i]), minimum=min_margin)
        )
    return reasons


def _completion_reasons(case: DemandCase) -> tuple[list[Message], Outcome]:
    """A completion notice: marked built when it matches the approved request, else escalated with the
    differences listed (or why there is nothing to compare with)."""
    done = case.completion
    approved = done.approved
    if approved is None:
        return [msg("completion_no_approval", why=done.why or "")], Outcome.ESCALATE
    params = dict(other=approved.notification_id, revision=approved.revision)
    if done.differences:
        return [msg("completion_differs", **params, differences="; ".join(done.differences))], Outcome.ESCALATE
    return [msg("completion_match", **params, status=approved.status.value)], Outcome.AUTO_APPROVE


def _localized(option: MeasureOption, lang: str) -> MeasureOption:
    if lang == DEFAULT_LANGUAGE:
        return option
    return option.model_copy(
        update={"text": render(option.message, lang), "effect": render(option.effect_message, lang)}
    )


@dataclass(frozen=True)
class DecisionBatch:
    """The decisions of a batch as columns, materialised on demand as :class:`Decision` objects."""

    cases: Sequence[DemandCase]
    checks: CheckTable
    outcome: list[Outcome]
    score: np.ndarray
    """NaN where no check was evaluated."""
    reasons: list[list[Message]]
    assumptions: list[list[str]]
    decided_at: datetime
    policy: Policy
    grid_model_version: str
    limits: Sequence[Sequence[SizeLimit]] = ()
    """Per notification: the inverse answers (:mod:`powercheck.rules.inverse`)."""
    network_data: Sequence[NetworkData | None] = ()
    """Per notification: network data at the connection point."""
    paths: Sequence[Sequence[PathPoint]] = ()
    """Per notification: the feeder path with the voltage along it (:mod:`powercheck.rules.path`)."""
    measures: Sequence[Sequence[MeasureOption]] = ()
    """Per notification: measures that would help (:mod:`powercheck.rules.measures`)."""
    conditions: Sequence[Sequence[Message]] = ()
    """Per notification: the conditions of an approval with conditions."""
    reserve: Sequence[DemandCase] = ()
    """Per notification: what the ledger reserves (the conditioned variant of an approval with conditions)."""
    check_overrides: dict = field(default_factory=dict)
    """Row -> (batch, row) whose checks an approval with conditions shows (its conditioned variant's)."""

    def __len__(self) -> int:
        return len(self.cases)

    def reserved_case(self, k: int) -> DemandCase:
        return self.reserve[k] if self.reserve else self.cases[k]

    def decision(
        self, k: int, lang: str = DEFAULT_LANGUAGE, heavy: bool = True, ledger_status: str | None = None
    ) -> Decision:
        """Row ``k`` as a :class:`Decision` (with the ledger status its request got); ``heavy=False`` leaves its
        checks and path empty (the columnar writer takes them from the check table and the path columns,
        :mod:`powercheck.columnar`)."""
        return construct(Decision, self.decision_fields(k, lang, heavy, ledger_status))

    def decision_fields(
        self,
        k: int,
        lang: str = DEFAULT_LANGUAGE,
        heavy: bool = True,
        ledger_status: str | None = None,
        input_hash: str | None = None,
    ) -> dict[str, Any]:
        """The fields of :meth:`decision`'s :class:`Decision`, every one in the model's order (the columnar writer
        makes its row of them without the model, :func:`powercheck.columnar._light_row`). ``input_hash``: the
        notification's :meth:`~powercheck.models.Notification.input_hash` when the caller has it already."""
        case = self.cases[k]
        checks_of, row = self.check_overrides.get(k, (self, k))
        conditions = list(self.conditions[k]) if self.conditions else []
        n = case.notification
        loc = case.location
        score = float(self.score[k])
        return {  # every field, in the model's order
            "notification_id": n.notification_id,
            "revision": n.revision,
            "metering_point_id": n.metering_point_id,
            "job_type": n.job_type._value_,  # the enums' values (``.value`` without the descriptor call)
            "stage": n.stage._value_,
            "outcome": self.outcome[k],
            "reasons": [render(m, lang) for m in self.reasons[k]],
            "checks": [checks_of.checks.result(i) for i in checks_of.checks.rows_of(row)] if heavy else [],
            "score": None if math.isnan(score) else score,
            "policy_id": self.policy.id,
            "policy_version": self.policy.version,
            "policy_hash": self.policy.hash,
            "grid_model_version": self.grid_model_version,
            "network_id": loc.network_id if loc else None,
            "bus": loc.bus if loc else None,
            "assumptions": checks_of.assumptions[row],
            "required_main_fuse_a": case.required_fuse_a,
            "notifiable": None if case.accounting is None else case.notifiable is not None,
            "notifiable_reason": case.notifiable,
            "limits": list(self.limits[k]) if self.limits else [],
            "conditions": [render(m, lang) for m in conditions],
            "measures": [_localized(m, lang) for m in self.measures[k]] if self.measures else [],
            "network_data": self.network_data[k] if self.network_data else None,
            "path": list(checks_of.paths[row]) if checks_of.paths and heavy else [],
            "language": lang,
            "messages": list(self.reasons[k]),
            "condition_messages": conditions,
            "ledger_status": ledger_status,
            "input_hash": n.input_hash() if input_hash is None else input_hash,
            "engine_version": __version__,
            "decided_at": self.decided_at,
        }

    def decisions(self, lang: str = DEFAULT_LANGUAGE) -> list[Decision]:
        return [self.decision(k, lang) for k in range(len(self.cases))]


def _within(sorted_rows: list[int], start: int, stop: int) -> list[int]:
    """The entries of ``sorted_rows`` in ``[start, stop)``."""
    return sorted_rows[bisect_left(sorted_rows, start) : bisect_left(sorted_rows, stop)]


def _min_per_row(values: np.ndarray, indptr: np.ndarray, n: int) -> np.ndarray:
    """Per notification the smallest non-NaN value of its results (NaN where there is none)."""
    out = np.full(n, np.nan)
    starts, stops = indptr[:-1], indptr[1:]
    filled = np.flatnonzero(stops > starts)
    if filled.size:  # the results of the filled rows are contiguous: each segment ends where the next begins
        out[filled] = np.fmin.reduceat(values, starts[filled])
    return out


def decide(
    cases: Sequence[DemandCase],
    checks: CheckTable,
    grid: GridView,
    policy: Policy,
    now: datetime,
    limits: Sequence[Sequence[SizeLimit]] = (),
    network_data: Sequence[NetworkData | None] = (),
    paths: Sequence[Sequence[PathPoint]] = (),
) -> DecisionBatch:
    """Outcome, score, reasons and assumptions of every notification."""
    rel_margin = checks.relative_margin()
    evaluated_margin = np.where(checks.status == NOT_EVALUATED, np.nan, rel_margin)
    outcomes: list[Outcome] = []
    scores = _min_per_row(evaluated_margin, checks.indptr, len(cases))
    all_reasons: list[list[Message]] = []
    all_assumptions: list[list[str]] = []
    # per-result facts as lists and per-row ranges, found once for the batch
    status = checks.status.tolist()
    indptr = checks.indptr.tolist()
    not_passed = np.flatnonzero(checks.status != PASS).tolist()
    with np.errstate(invalid="ignore"):  # NaN margins are never below the minimum
        low = np.flatnonzero(rel_margin < policy.number(PolicyKey.AUTO_APPROVE_MIN_RELATIVE_MARGIN)).tolist()
    grid_rule = {rule: rule.group in GRID_RULE_GROUPS for rule in set(checks.rule_id)}
    grid_before = np.zeros(len(checks.rule_id) + 1, dtype=np.int64)
    np.cumsum([grid_rule[rule] for rule in checks.rule_id], out=grid_before[1:])
    grid_before = grid_before.tolist()
    assumptions = checks.assumptions
    gates = policy.derived("decide.gates", _gates)
    # per network its grid-model defaults, per text of a point's peak assumptions its keys: found once a batch
    network_defaults: dict[str, frozenset[str]] = {}
    peak_keys: dict[str, frozenset[str]] = {}
    peak_assumptions = grid.customers.peak_assumptions
    for k, case in enumerate(cases):
        start, stop = indptr[k], indptr[k + 1]
        if case.missing:
            reasons = [msg("missing", text=m) for m in case.missing]
            outcome = Outcome.REJECT_INCOMPLETE
        elif case.requested:
            reasons = list(case.requested)
            outcome = Outcome.REQUEST_INFO
        elif case.completion is not None:
            reasons, outcome = _completion_reasons(case)
        elif case.location is None:
            reasons = [msg("grid_located", mp=case.notification.metering_point_id)]
            outcome = Outcome.ESCALATE
        elif case.system_mismatch is not None:
            reasons = [case.system_mismatch]
            outcome = Outcome.ESCALATE
        elif case.grid_problem is not None:
            reasons = [case.grid_problem]
            outcome = Outcome.ESCALATE
        else:
            reasons = _check_reasons(case, checks, _within(not_passed, start, stop), status)
            if not reasons:
                reasons = _gate_reasons(case, checks, _within(low, start, stop), rel_margin, policy, grid, gates)
            outcome = Outcome.ESCALATE if reasons else Outcome.AUTO_APPROVE
        used = set().union(*assumptions[start:stop])
        location = case.location
        if location is not None and grid_before[stop] > grid_before[start]:
            network = location.network_id
            defaults = network_defaults.get(network)
            if defaults is None:
                defaults = network_defaults[network] = frozenset(grid.grid_assumptions.get(network, ()))
            used |= defaults
        if location is not None and location.cp_row >= 0 and stop > start:
            text = peak_assumptions[location.cp_row]
            keys = peak_keys.get(text)
            if keys is None:
                keys = peak_keys[text] = frozenset(text.split(",")) if text else frozenset()
            used |= keys
        outcomes.append(outcome)
        all_reasons.append(reasons + list(case.screening_defaults))
        all_assumptions.append(sorted(used))
    return DecisionBatch(
        cases=cases,
        checks=checks,
        outcome=outcomes,
        score=scores,
        reasons=all_reasons,
        assumptions=all_assumptions,
        decided_at=now,
        policy=policy,
        grid_model_version=grid.region.version,
        limits=limits,
        network_data=network_data,
        paths=paths,
    )


def error_decision(
    n: Notification,
    error: str,
    *,
    policy: Policy,
    grid_model_version: str | None,
    now: datetime,
    lang: str = DEFAULT_LANGUAGE,
) -> Decision:
    """The decision for a notification whose assessment raised: escalate, ``ENGINE.ERROR`` not evaluated."""
    message = msg("engine_error", error=error)
    return Decision.model_construct(
        notification_id=n.notification_id,
        revision=n.revision,
        metering_point_id=n.metering_point_id,
        job_type=n.job_type.value,
        stage=n.stage.value,
        outcome=Outcome.ESCALATE,
        reasons=[render(message, lang)],
        messages=[message],
        language=lang,
        checks=[
            CheckResult.model_construct(
                rule_id=str(RuleId.ENGINE_ERROR),
                name="The assessment completed",
                status=CheckStatus.NOT_EVALUATED,
                value=None,
                limit=None,
                limit_kind=LimitKind.MAX,
                margin=None,
                unit="",
                margin_scale=None,
                limit_key=None,
                assumptions=[],
                detail=error,
            )
        ],
        score=None,
        policy_id=policy.id,
        policy_version=policy.version,
        policy_hash=policy.hash,
        grid_model_version=grid_model_version,
        network_id=None,
        bus=None,
        assumptions=[],
        conditions=[],
        condition_messages=[],
        measures=[],
        limits=[],
        network_data=None,
        path=[],
        required_main_fuse_a=None,
        notifiable=None,
        notifiable_reason=None,
        ledger_status=None,
        input_hash=n.input_hash(),
        engine_version=__version__,
        decided_at=now,
    )


def invalid_decision(
    errors: Sequence[str],
    *,
    notification_id: str | None,
    revision: int | None,
    source: str,
    policy: Policy,
    grid_model_version: str | None,
    now: datetime,
    lang: str = DEFAULT_LANGUAGE,
) -> Decision:
    """The decision for input that failed validation: reject_incomplete, errors named by field."""
    messages = [msg("invalid", error=e) for e in errors]
    return Decision.model_construct(
        notification_id=notification_id or f"invalid:{source}",
        revision=revision or 1,
        metering_point_id=None,
        job_type=None,
        stage=None,
        outcome=Outcome.REJECT_INCOMPLETE,
        reasons=[render(m, lang) for m in messages],
        messages=messages,
        language=lang,
        checks=[
            CheckResult.model_construct(
                rule_id=str(RuleId.DATA_VALID),
                name="Notification passes field validation",
                status=CheckStatus.FAIL,
                value=float(len(errors)),
                limit=0.0,
                limit_kind=LimitKind.MAX,
                margin=-float(len(errors)),
                unit="invalid fields",
                margin_scale=None,
                limit_key=None,
                assumptions=[],
                detail="; ".join(errors),
            )
        ],
        score=None,
        policy_id=policy.id,
        policy_version=policy.version,
        policy_hash=policy.hash,
        grid_model_version=grid_model_version,
        network_id=None,
        bus=None,
        assumptions=[],
        input_hash=None,
        engine_version=__version__,
        decided_at=now,
    )
