"""The feeder path from the transformer to each connection point, with the voltage along it.

Per bus of the path: the base case (peak load; low load with generation), the base case with
the ledger's reserved drop/rise, and with the request too. The request's change at a bus of the
path is its drop across that bus's Thevenin impedance
(:func:`powercheck.quality.superposition.path_voltage_change`); at the connection point the
constant-power solution the voltage checks use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from powercheck.ledger.state import CapacityState
from powercheck.models import PathPoint
from powercheck.quality.superposition import path_voltage_change
from powercheck.rules.context import GridView
from powercheck.rules.demand import DemandCase
from powercheck.rules.evaluate import AddedPower, Evaluation


def _change(k: int, bus_row: int, added: AddedPower, q_sign: float, grid: GridView) -> tuple[np.ndarray, np.ndarray]:
    arr = grid.arrays
    lo, hi = added.component_indptr[k], added.component_indptr[k + 1]
    return path_voltage_change(
        bus_row, arr.bus_parent_row, arr.rk1_min, arr.xk1_min, arr.rk0_min, arr.xk0_min, arr.u_ll_v,
        added.component_conn[lo:hi], added.component_current_a[lo:hi], added.component_cos_phi[lo:hi],
        np.full(hi - lo, q_sign),
    )  # fmt: skip


def voltage_paths(
    cases: Sequence[DemandCase], ev: Evaluation, grid: GridView, state: CapacityState | None = None
) -> list[list[PathPoint]]:
    """Per notification the path points (empty where the notification is not evaluable)."""
    arr = grid.arrays
    n_bus = arr.bus_ids.shape[0]
    drop = state.bus_drop_percent if state is not None else np.zeros(n_bus)
    rise = state.bus_rise_percent if state is not None else np.zeros(n_bus)
    out: list[list[PathPoint]] = []
    for k, case in enumerate(cases):
        if not case.evaluable or case.location is None:
            out.append([])
            continue
        bus_row = int(ev.point.bus_row[k])
        rows, dv_load = _change(k, bus_row, ev.load, 1.0, grid)
        _, dv_export = _change(k, bus_row, ev.export, -1.0, grid)
        peak_ledger = arr.vm_peak_pu[rows] - drop[rows] / 100.0
        low_ledger = arr.vm_low_pu[rows] + rise[rows] / 100.0
        peak = peak_ledger - dv_load / 100.0
        low = low_ledger + dv_export / 100.0
        peak[-1] = ev.v_peak_pu[k]
        low[-1] = ev.v_low_pu[k]
        out.append(
            [
                PathPoint.model_construct(
                    bus=int(arr.bus_ids[r]),
                    distance_km=float(arr.path_length_km[r]),
                    v_peak_base_pu=float(arr.vm_peak_pu[r]),
                    v_peak_ledger_pu=float(peak_ledger[i]),
                    v_peak_pu=float(peak[i]),
                    v_low_base_pu=float(arr.vm_low_pu[r]),
                    v_low_ledger_pu=float(low_ledger[i]),
                    v_low_pu=float(low[i]),
                )
                for i, r in enumerate(rows)
            ]
        )
    return out
