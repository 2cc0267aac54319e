"""SimBench LV grids with one day of their own load and PV profiles, for the batch power-flow comparisons with
power-grid-model and pandapower (``benchmarks/bench_batchpf.py``, ``tests/powerflow/test_vs_power_grid_model.py``,
``tests/powerflow/test_simbench.py``).

Each grid is SimBench's LV grid with its MV/LV transformer and the MV side as the ext_grid (``vm_pu`` 1.025), in
its normal switching state: every switch of these grids is closed (line and transformer switches only, no
bus-bus switch, none open), and the grid is radial as stored (``build_radial_model`` rejects meshes). The day is
the one with the largest absolute net feed-in or consumption (sum over the grid's loads minus its PV) in the
grid's own year of profiles (``simbench.get_absolute_values``, 15-min values, 96 steps): loads ``p_mw``/
``q_mvar`` and PV ``p_mw`` from the profiles, PV ``q_mvar`` static (0 in these grids).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

#: Three SimBench LV grids of different size: rural (15 buses), semi-urban (44), urban (59).
SIMBENCH_LV = ("1-LV-rural1--0-sw", "1-LV-semiurb4--0-sw", "1-LV-urban6--0-sw")


@functools.cache
def _cached(code: str, steps: int):
    import simbench as sb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = sb.get_simbench_net(code)
        absolute = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    assert net.switch.closed.all() and not (net.switch.et == "b").any(), f"{code}: switching state changed"
    lp = absolute[("load", "p_mw")][net.load.index].to_numpy(dtype=float)
    lq = absolute[("load", "q_mvar")][net.load.index].to_numpy(dtype=float)
    gp = absolute[("sgen", "p_mw")][net.sgen.index].to_numpy(dtype=float)
    n_days = lp.shape[0] // steps
    net_load = (lp.sum(axis=1) - gp.sum(axis=1))[: n_days * steps].reshape(n_days, steps)
    day = int(np.argmax(np.abs(net_load).max(axis=1)))
    rows = slice(day * steps, (day + 1) * steps)
    gq = np.broadcast_to(net.sgen.q_mvar.to_numpy(dtype=float) * net.sgen.scaling.to_numpy(dtype=float), gp[rows].shape)
    net.profiles = {}
    return net, day, lp[rows].copy(), lq[rows].copy(), gp[rows].copy(), np.ascontiguousarray(gq)


def simbench_case(code: str, steps: int = 96):
    """``(net, day, load_p, load_q, sgen_p, sgen_q)``: a fresh copy of the SimBench grid ``code`` and one day of its
    profiles, arrays ``[steps, n_load]`` / ``[steps, n_sgen]`` [MW], [Mvar] (see the module docstring)."""
    import copy

    net, day, lp, lq, gp, gq = _cached(code, steps)
    return copy.deepcopy(net), day, lp.copy(), lq.copy(), gp.copy(), gq.copy()
