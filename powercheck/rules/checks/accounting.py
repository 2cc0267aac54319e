"""Power accounting and ledger checks at the customer point: fuses after the job, start current, conflicts."""

from __future__ import annotations

from powercheck.models import LimitKind
from powercheck.rules.checks.base import CheckBlock, CheckInput, failed_gate, measured, not_evaluated
from powercheck.rules.devices import breaker_of_size, no_trip_current
from powercheck.rules.rule_ids import RuleId
from powercheck.texts import render


def ledger_conflicts(c: CheckInput) -> list[CheckBlock]:
    """LEDGER.CONFLICT: another open request at the metering point, or a contradicting fuse."""
    rows = [int(k) for k in c.rows if c.cases[k].conflicts]
    return [
        failed_gate(
            RuleId.LEDGER_CONFLICT,
            rows,
            name="No other open request at the metering point contradicts this one",
            counts=[c.cases[k].conflict_count for k in rows],
            unit="conflicting requests",
            detail=["; ".join(render(m) for m in c.cases[k].conflicts) for k in rows],
        )
    ]


def _required(c: CheckInput, k: int) -> str:
    fuse = c.cases[k].required_fuse_a
    if fuse is None:
        return "; no standard fuse is large enough"
    breaker = breaker_of_size(c.cases[k].device, fuse)
    if breaker is not None:  # sized by the breaker's own criterion
        return f"; requires a main protection of at least {fuse:g} A: {breaker} (the breaker's own criterion)"
    return f"; requires a fuse of at least {fuse:g} A"


def fuses(c: CheckInput) -> list[CheckBlock]:
    """LOAD.MAIN_FUSE, LOAD.METER_FUSE and LOAD.EXPORT_FUSE: the installation after the job on its fuses."""
    main_rows, main_value, main_limit, main_a, main_detail = [], [], [], [], []
    unknown = []
    meter_rows, meter_value, meter_limit, meter_detail = [], [], [], []
    export_rows, export_value, export_limit, export_detail = [], [], [], []
    lean = c.lean  # values and limits only (CheckInput.lean): no details, no assumptions
    for k in c.rows:
        k = int(k)
        case = c.cases[k]
        acc = case.accounting
        if case.fuse_after_a is None:
            unknown.append(k)
            continue
        phase = acc.phase_current_a
        main_rows.append(k)
        main_value.append(phase)
        main_limit.append(case.fuse_after_a)
        mv = case.meter_fuse_after_a
        meter = mv is not None and abs(mv - case.fuse_after_a) > 1e-9
        if meter:
            meter_rows.append(k)
            meter_value.append(phase)
            meter_limit.append(mv)
        if acc.export_phase_current_a > 0:
            smallest = min(case.fuse_after_a, mv) if mv is not None else case.fuse_after_a
            export_rows.append(k)
            export_value.append(acc.export_phase_current_a)
            export_limit.append(smallest)
        if lean:
            continue
        text = f"{acc.demand_after_kw:.1f} kW after the job, {phase:.1f} A in the most loaded phase"
        main_a.append(acc.assumptions + case.demand_assumptions)
        main_detail.append(text + (_required(c, k) if phase > case.fuse_after_a else ""))
        if meter:
            meter_detail.append(text + (_required(c, k) if phase > mv else ""))
        if acc.export_phase_current_a > 0:
            export_detail.append(
                f"{acc.export_after_kw:.1f} kW export after the job, {acc.export_phase_current_a:.1f} A in the "
                "most loaded phase" + (_required(c, k) if acc.export_phase_current_a > smallest else "")
            )
    return [
        measured(
            RuleId.LOAD_MAIN_FUSE,
            main_rows,
            main_value,
            main_limit,
            LimitKind.MAX,
            "A",
            name="Demand after the job within the main fuse",
            assumptions=() if lean else main_a,
            detail="" if lean else main_detail,
        ),
        not_evaluated(
            RuleId.LOAD_MAIN_FUSE,
            unknown,
            name="Demand after the job within the main fuse",
            detail="the main fuse is neither in the notification (main_fuse_before_a/after_a) "
            "nor in the customer index",
        ),
        measured(
            RuleId.LOAD_METER_FUSE,
            meter_rows,
            meter_value,
            meter_limit,
            LimitKind.MAX,
            "A",
            name="Demand after the job within the meter fuse",
            detail="" if lean else meter_detail,
            seq=1,
        ),
        measured(
            RuleId.LOAD_EXPORT_FUSE,
            export_rows,
            export_value,
            export_limit,
            LimitKind.MAX,
            "A",
            name="Export after the job within the main and meter fuse",
            detail="" if lean else export_detail,
            seq=2,
        ),
    ]


def start_current(c: CheckInput) -> list[CheckBlock]:
    """PROT.START_CURRENT: the main protection carries the start of the largest motor/compressor without tripping."""
    pol = c.policy
    rows, value, limit, keys, assumptions, detail = [], [], [], [], [], []
    for k in c.rows:
        k = int(k)
        case = c.cases[k]
        acc = case.accounting
        if acc is None or acc.start_current_a is None or case.fuse_after_a is None or case.device is None:
            continue
        duration = acc.start_duration_s or 0.0
        crit = no_trip_current(case.device, duration, pol)
        rows.append(k)
        value.append(acc.start_current_a)
        limit.append(float("nan") if crit.value is None else crit.value)
        keys.append(str(crit.key))
        assumptions.append(acc.assumptions + crit.assumptions)
        if crit.value is None:
            detail.append(f"{acc.start_label} starts for {duration:g} s: {crit.text}")
        else:
            text = f"{acc.start_label} starting for {duration:g} s: {acc.start_current_a:.0f} A against {crit.text}"
            detail.append(text + (_required(c, k) if acc.start_current_a > crit.value else ""))
    return [
        measured(
            RuleId.PROT_START_CURRENT,
            rows,
            value,
            limit,
            LimitKind.MAX,
            "A",
            name="Start current within what the main protection carries without tripping",
            limit_key=keys,
            assumptions=assumptions,
            detail=detail,
        )
    ]
