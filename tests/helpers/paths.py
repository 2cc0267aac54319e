"""A feeder path walked on its own: the reference the tests of the batched voltage paths compare with."""

from __future__ import annotations

import numpy as np

from powercheck.quality.superposition import _change_percent


def path_alone(k: int, bus_row: int, added, q_sign: float, grid) -> tuple[np.ndarray, np.ndarray]:
    """One notification's path walked on its own: bus rows from the transformer busbar down to ``bus_row`` (the
    parents up from the point, reversed), and at each the change its components (rows ``k`` of ``added``) make
    across the bus's own impedance (``superposition._change_percent``)."""
    arr = grid.arrays
    lo, hi = added.component_indptr[k], added.component_indptr[k + 1]
    components = (added.component_conn[lo:hi], added.component_current_a[lo:hi], added.component_cos_phi[lo:hi],
                  np.full(hi - lo, q_sign))  # fmt: skip
    rows, dv = [], []
    a = bus_row
    while a >= 0:
        rows.append(a)
        dv.append(_change_percent(a, arr.rk1_min, arr.xk1_min, arr.rk0_min, arr.xk0_min, arr.u_ll_v, *components))
        a = int(arr.bus_parent_row[a])
    return np.array(rows[::-1], dtype=np.int64), np.array(dv[::-1])
