"""Network data at the connection point, as grid owners give installers (Ik max/min, loop impedance, voltage)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from powercheck.models import NetworkData, construct
from powercheck.quality.codes import SQRT3
from powercheck.rules.context import GridView
from powercheck.rules.demand import DemandCase
from powercheck.rules.evaluate import Evaluation
from powercheck.rules.policy import Policy, PolicyKey


def network_data(cases: Sequence[DemandCase], ev: Evaluation, grid: GridView, policy: Policy) -> list:
    """Network data at each located connection point, as grid owners give installers (None elsewhere).

    ``Ik max`` is the 3-phase current ``c_max U / (sqrt3 |Z1|)`` of the maximum case; ``Ik min`` the
    minimum fault of the system (1-phase L-N in TN, 2-phase L-L in IT, :attr:`Evaluation.ik_min_a`),
    its loop impedance ``(2 Z1 + Z0)/3`` (TN) or ``2 Z1`` (IT) in the minimum case (conductors at
    their end temperature).
    """
    arr = grid.arrays
    c_max = policy.number(PolicyKey.SC_C_MAX)
    located = [k for k, case in enumerate(cases) if case.location is not None]
    # the grid values of every located point, read once for the batch as Python floats
    buses = np.array([cases[k].location.bus_row for k in located], dtype=np.int64)
    u_of = arr.u_ll_v[buses].tolist()
    tn_of = arr.system_tn[buses].tolist()
    z_max_of = np.hypot(arr.rk1_max[buses], arr.xk1_max[buses]).tolist()
    r1_of, x1_of, r0_of, x0_of = (v[buses].tolist() for v in (arr.rk1_min, arr.xk1_min, arr.rk0_min, arr.xk0_min))
    vm_of = arr.vm_peak_pu[buses].tolist()
    ik_min_of = np.asarray(ev.ik_min_a)[np.array(located, dtype=np.int64)].tolist()
    basis: dict[str, str] = {}
    out: list[NetworkData | None] = [None] * len(cases)
    for i, k in enumerate(located):
        case = cases[k]
        loc = case.location
        u = u_of[i]
        tn = bool(tn_of[i])
        z_max = z_max_of[i]
        r1, x1, r0, x0 = r1_of[i], x1_of[i], r0_of[i], x0_of[i]
        loop_r, loop_x = ((2 * r1 + r0) / 3, (2 * x1 + x0) / 3) if tn else (2 * r1, 2 * x1)
        ik_min = ik_min_of[i] if case.evaluable else float("nan")
        base_case = basis.get(loc.network_id)
        if base_case is None:
            base_case = basis[loc.network_id] = grid.region.base_case_basis(loc.network_id)
        # every field in the model's order, the numbers Python floats or None and the texts str: what NetworkData's
        # validation would make of them, without its pass (tests/test_models.py compares the two)
        cp = loc.cp_row
        out[k] = construct(
            NetworkData,
            {
                "system": "TN_400" if tn else "IT_230",
                "u_nominal_v": float(u),
                "ik_max_3ph_a": _finite(float(c_max * u / (SQRT3 * z_max))) if z_max > 0 else None,
                "ik_min_a": _finite(float(ik_min)),
                "ik_min_kind": "1-phase L-N (TN)" if tn else "2-phase L-L (IT)",
                "loop_r_ohm": _finite(float(loop_r)),
                "loop_x_ohm": _finite(float(loop_x)),
                "voltage_peak_pu": _finite(float(vm_of[i])),
                "existing_peak_kw": _finite(float(grid.customers.existing_peak_kw[cp])) if cp >= 0 else None,
                "load_basis": str(grid.customers.peak_basis[cp]) if cp >= 0 else None,
                "base_case": None if base_case is None else str(base_case),
            },
        )
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
