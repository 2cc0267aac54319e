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
    pol = c.policy
    bus = ev.point.bus_row
    worst = ev.worst
    evaluable = c.rows.tolist()
    load_of, export_of = ev.load.current_a.tolist(), ev.export.current_a.tolist()
    peak = [k for k in evaluable if load_of[k] > 0]
    low = [k for k in evaluable if export_of[k] > 0]
    lean = c.lean  # values and limits only (CheckInput.lean): no details, no assumptions
    peak_detail = (
        ""
        if lean
        else [
            f"base case {v_base:.4f} pu, reserved drop {reserved:.2f} %, added drop {added:.2f} % at nominal-voltage "
            "current (constant power, minimum short-circuit impedance case)" + _elsewhere(c, k, worst_row)
            for k, v_base, reserved, added, worst_row in zip(
                peak,
                arr.vm_peak_pu[bus[peak]].tolist(),
                ev.reserved.drop_percent[peak].tolist(),
                ev.load.voltage_change_percent[peak].tolist(),
                worst.v_peak_bus_row[peak].tolist(),
            )
        ]
    )
    low_detail = (
        ""
        if lean
        else [
            f"low-load case {v_base:.4f} pu, reserved rise {reserved:.2f} %, added rise {added:.2f} % at "
            "nominal-voltage current (constant power)" + _elsewhere(c, k, worst_row)
            for k, v_base, reserved, added, worst_row in zip(
                low,
                arr.vm_low_pu[bus[low]].tolist(),
                ev.reserved.rise_percent[low].tolist(),
                ev.export.voltage_change_percent[low].tolist(),
                worst.v_low_bus_row[low].tolist(),
            )
        ]
    )
    blocks = []
    for seq, (rule, key, what) in enumerate(
        (
            (RuleId.VOLT_PEAK_PLANNING, PolicyKey.VOLTAGE_PLANNING_MIN_PU, "planning limit (auto-approval)"),
            (RuleId.VOLT_PEAK_MIN, PolicyKey.VOLTAGE_MIN_PU, "legal limit (FoL)"),
        )
    ):
        blocks.append(
            policy_limited(
                pol,
                rule,
                peak,
                worst.v_peak_pu[peak],
                key,
                LimitKind.MIN,
                "pu",
                name=f"Voltage at peak load with the added demand, {what}",
                margin_scale=abs(1.0 - pol.number(key)),
                assumptions=() if lean else [c.cases[k].demand_assumptions for k in peak],
                detail=peak_detail,
                seq=seq,
            )
        )
    for seq, (rule, key, what) in enumerate(
        (
            (RuleId.VOLT_LOW_PLANNING, PolicyKey.VOLTAGE_PLANNING_MAX_PU, "planning limit (auto-approval)"),
            (RuleId.VOLT_LOW_MAX, PolicyKey.VOLTAGE_MAX_PU, "legal limit (FoL)"),
        ),
        start=2,
    ):
        blocks.append(
            policy_limited(
                pol,
                rule,
                low,
                worst.v_low_pu[low],
                key,
                LimitKind.MAX,
                "pu",
                name=f"Voltage at low load with the added export, {what}",
                margin_scale=abs(pol.number(key) - 1.0),
                assumptions=() if lean else [c.cases[k].export_assumptions for k in low],
                detail=low_detail,
                seq=seq,
            )
        )
    return blocks
