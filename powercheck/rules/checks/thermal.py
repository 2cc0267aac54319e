"""Thermal checks: the binding cable on the radial path and the transformer, at peak and at low load with export."""

from __future__ import annotations

from powercheck.models import LimitKind
from powercheck.rules.checks.base import CheckBlock, CheckInput, measured, not_evaluated
from powercheck.rules.policy import PolicyKey
from powercheck.rules.rule_ids import RuleId

# (line rule, transformer rule, label, seq of the line result, which load case)
_CASES = (
    (RuleId.THERMAL_LINE_PEAK, RuleId.THERMAL_TRAFO_PEAK, "at peak load", 0, "peak"),
    (RuleId.THERMAL_LINE_EXPORT, RuleId.THERMAL_TRAFO_EXPORT, "at low load with full export", 2, "low"),
)


def thermal(c: CheckInput) -> list[CheckBlock]:
    """Cable and transformer loading with the added current (peak) and export (low load).

    The added current is carried by every line on the radial path; the check reports the
    line closest to its limit. At a bus fed through a mesh the path-based check does not
    apply (not evaluated).
    """
    ev = c.evaluation
    th = ev.thermal
    arr = c.grid.arrays
    blocks: list[CheckBlock] = []
    evaluable = c.rows.tolist()
    lean = c.lean  # values and limits only (CheckInput.lean): no details, no assumptions
    # per evaluable row, read once: fed through a mesh (the path-based check does not apply)
    meshed_of = dict(zip(evaluable, arr.meshed[[c.cases[k].location.bus_row for k in evaluable]].tolist()))
    for line_rule, trafo_rule, label, seq, case_name in _CASES:
        peak = case_name == "peak"
        added = ev.load.current_a if peak else ev.export.current_a
        line_row = th.peak_line_row if peak else th.low_line_row
        line_base = th.peak_line_base_a if peak else th.low_line_base_a
        line_reserved = th.peak_line_reserved_a if peak else th.low_line_reserved_a
        line_limit = th.peak_line_limit_a if peak else th.low_line_limit_a
        trafo_base = th.trafo_peak_base_a if peak else th.trafo_low_base_a
        trafo_reserved = ev.reserved.trafo_peak_a if peak else ev.reserved.trafo_low_a
        # the batch's columns as Python values once (the details read them per row)
        added_of, base_of, reserved_of = added.tolist(), line_base.tolist(), line_reserved.tolist()
        rows = [k for k in evaluable if added_of[k] > 0]
        meshed = [k for k in rows if meshed_of[k]]
        radial = [k for k in rows if not meshed_of[k]]
        if meshed:
            blocks.append(
                not_evaluated(
                    line_rule,
                    meshed,
                    name=f"Cable loading {label}",
                    detail=[
                        f"bus {c.cases[k].location.bus} of network {c.cases[k].location.network_id} is fed "
                        "through a mesh: the path-based thermal check does not apply"
                        for k in meshed
                    ],
                    seq=seq,
                )
            )

        def assumptions(k: int) -> tuple[str, ...]:
            case = c.cases[k]
            return case.demand_assumptions if peak else case.export_assumptions  # noqa: B023

        line_row_of = line_row.tolist()
        with_line = [k for k in radial if line_row_of[k] >= 0]
        line_ids = arr.line_ids[[line_row_of[k] for k in with_line]].tolist() if with_line else []
        blocks.append(
            measured(
                line_rule,
                with_line,
                line_base[with_line] + line_reserved[with_line] + added[with_line],
                line_limit[with_line],
                LimitKind.MAX,
                "A",
                name=f"Cable loading {label}",
                limit_key=str(PolicyKey.LINE_LOADING_MAX_PERCENT),
                assumptions=() if lean else [assumptions(k) for k in with_line],
                detail=""
                if lean
                else [
                    f"binding line {int(line_id)} of network {c.cases[k].location.network_id}: "
                    f"base {base_of[k]:.1f} A + reserved {reserved_of[k]:.1f} A + added {added_of[k]:.1f} A"
                    for k, line_id in zip(with_line, line_ids)
                ],
                seq=seq,
            )
        )
        blocks.append(
            measured(
                trafo_rule,
                radial,
                trafo_base[radial] + trafo_reserved[radial] + added[radial],
                th.trafo_limit_a[radial],
                LimitKind.MAX,
                "A",
                name=f"Transformer loading {label}",
                limit_key=str(PolicyKey.TRANSFORMER_LOADING_MAX_PERCENT),
                assumptions=() if lean else [assumptions(k) for k in radial],
                detail=""
                if lean
                else [
                    f"LV-side current: base {t_base:.1f} A + reserved {t_reserved:.1f} A + added {added_of[k]:.1f} A"
                    for k, t_base, t_reserved in zip(
                        radial, trafo_base[radial].tolist(), trafo_reserved[radial].tolist()
                    )
                ],
                seq=seq + 1,
            )
        )
    return blocks
