"""Steady-state voltage band checks: at peak with the added load, at low load with the added export."""

from __future__ import annotations

from powercheck.models import LimitKind
from powercheck.rules.checks.base import CheckBlock, CheckInput, policy_limited
from powercheck.rules.policy import PolicyKey
from powercheck.rules.rule_ids import RuleId


def _elsewhere(c: CheckInput, k: int, worst_row: int) -> str:
    """Where in the network the worst voltage is, when it is not the connection point."""
    arr = c.grid.arrays
    if worst_row == c.evaluation.point.bus_row[k]:
        return ""
    return f"; lowest margin at bus {int(arr.bus_ids[worst_row])} ({float(arr.vm_peak_pu[worst_row]):.4f} pu base)"


def voltage_band(c: CheckInput) -> list[CheckBlock]:
    """VOLT.PEAK_PLANNING / VOLT.PEAK_MIN and VOLT.LOW_PLANNING / VOLT.LOW_MAX: the worst bus of the network once
    the load / export is added, against the planning limit (decides auto-approval) and the legal FoL limit (below
    it: no connection without grid measures).

    At the connection point the constant-power solution with the minimum short-circuit
    impedance; at every other bus the drop (rise) through the impedance its path shares with the
    connection point, on top of the base case and the ledger's reserved drop (rise).
    """
    ev = c.evaluation
    arr = c.grid.arrays
    worst = ev.worst
    evaluable = c.rows.tolist()
    load_of, export_of = ev.load.current_a.tolist(), ev.export.current_a.tolist()
    peak = [k for k in evaluable if load_of[k] > 0]
    low = [k for k in evaluable if export_of[k] > 0]
    lean = c.lean  # values and limits only (CheckInput.lean): no details, no assumptions
    return [
        *_band(
            c, peak, worst.v_peak_pu, _PEAK_LIMITS, LimitKind.MIN, "Voltage at peak load with the added demand",
            assumptions=() if lean else [c.cases[k].demand_assumptions for k in peak],
            detail="" if lean else _details(
                c, peak, arr.vm_peak_pu, ev.reserved.drop_percent, ev.load.voltage_change_percent,
                worst.v_peak_bus_row, "base case", "drop", "constant power, minimum short-circuit impedance case",
            ),
            seq=0,
        ),
        *_band(
            c, low, worst.v_low_pu, _LOW_LIMITS, LimitKind.MAX, "Voltage at low load with the added export",
            assumptions=() if lean else [c.cases[k].export_assumptions for k in low],
            detail="" if lean else _details(
                c, low, arr.vm_low_pu, ev.reserved.rise_percent, ev.export.voltage_change_percent,
                worst.v_low_bus_row, "low-load case", "rise", "constant power",
            ),
            seq=2,
        ),
    ]  # fmt: skip


_PEAK_LIMITS = (
    (RuleId.VOLT_PEAK_PLANNING, PolicyKey.VOLTAGE_PLANNING_MIN_PU, "planning limit (auto-approval)"),
    (RuleId.VOLT_PEAK_MIN, PolicyKey.VOLTAGE_MIN_PU, "legal limit (FoL)"),
)
_LOW_LIMITS = (
    (RuleId.VOLT_LOW_PLANNING, PolicyKey.VOLTAGE_PLANNING_MAX_PU, "planning limit (auto-approval)"),
    (RuleId.VOLT_LOW_MAX, PolicyKey.VOLTAGE_MAX_PU, "legal limit (FoL)"),
)


def _details(c: CheckInput, rows, base_pu, reserved, added, worst_row, case: str, change: str, model: str) -> list[str]:
    """The detail text of each of ``rows`` (one side of the band: peak or low load): the ``case``'s voltage at its
    connection point, the ledger's reserved and the job's added ``change`` (drop or rise), the ``model`` of the
    calculation, and where the worst bus is when it is not the connection point."""
    bus = c.evaluation.point.bus_row
    return [
        f"{case} {v_base:.4f} pu, reserved {change} {r:.2f} %, added {change} {a:.2f} % at nominal-voltage current "
        f"({model})" + _elsewhere(c, k, w)
        for k, v_base, r, a, w in zip(
            rows, base_pu[bus[rows]].tolist(), reserved[rows].tolist(), added[rows].tolist(), worst_row[rows].tolist()
        )
    ]


def _band(c: CheckInput, rows, worst_pu, limits, kind: LimitKind, situation: str, *, assumptions, detail, seq: int):
    """One side of the band: the worst voltage of ``rows`` against each of ``limits`` (rule, policy key, which
    limit), check sequence numbers from ``seq``."""
    pol = c.policy
    return [
        policy_limited(
            pol,
            rule,
            rows,
            worst_pu[rows],
            key,
            kind,
            "pu",
            name=f"{situation}, {what}",
            margin_scale=abs(pol.number(key) - 1.0),
            assumptions=assumptions,
            detail=detail,
            seq=seq + i,
        )
        for i, (rule, key, what) in enumerate(limits)
    ]
