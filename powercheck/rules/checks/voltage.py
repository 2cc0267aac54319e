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
    """VOLT.PEAK_MIN and VOLT.LOW_MAX: the worst bus of the network once the load / export is added.

    At the connection point the constant-power solution with the minimum short-circuit
    impedance; at every other bus the drop (rise) through the impedance its path shares with the
    connection point, on top of the base case and the ledger's reserved drop (rise).
    """
    ev = c.evaluation
    arr = c.grid.arrays
    pol = c.policy
    bus = ev.point.bus_row
    worst = ev.worst
    peak = [int(k) for k in c.rows if ev.load.current_a[k] > 0]
    low = [int(k) for k in c.rows if ev.export.current_a[k] > 0]
    return [
        policy_limited(
            pol,
            RuleId.VOLT_PEAK_MIN,
            peak,
            worst.v_peak_pu[peak],
            PolicyKey.VOLTAGE_MIN_PU,
            LimitKind.MIN,
            "pu",
            name="Voltage at peak load with the added demand",
            margin_scale=abs(1.0 - pol.number(PolicyKey.VOLTAGE_MIN_PU)),
            assumptions=[c.cases[k].demand_assumptions for k in peak],
            detail=[
                f"base case {float(arr.vm_peak_pu[bus[k]]):.4f} pu, reserved drop "
                f"{float(ev.reserved.drop_percent[k]):.2f} %, added drop "
                f"{float(ev.load.voltage_change_percent[k]):.2f} % at nominal-voltage current "
                "(constant power, minimum short-circuit impedance case)" + _elsewhere(c, k, worst.v_peak_bus_row[k])
                for k in peak
            ],
        ),
        policy_limited(
            pol,
            RuleId.VOLT_LOW_MAX,
            low,
            worst.v_low_pu[low],
            PolicyKey.VOLTAGE_MAX_PU,
            LimitKind.MAX,
            "pu",
            name="Voltage at low load with the added export",
            margin_scale=abs(pol.number(PolicyKey.VOLTAGE_MAX_PU) - 1.0),
            assumptions=[c.cases[k].export_assumptions for k in low],
            detail=[
                f"low-load case {float(arr.vm_low_pu[bus[k]]):.4f} pu, reserved rise "
                f"{float(ev.reserved.rise_percent[k]):.2f} %, added rise "
                f"{float(ev.export.voltage_change_percent[k]):.2f} % at nominal-voltage current (constant power)"
                + _elsewhere(c, k, worst.v_low_bus_row[k])
                for k in low
            ],
            seq=1,
        ),
    ]
