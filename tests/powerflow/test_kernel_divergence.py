"""A NaN voltage anywhere makes a batch item DIVERGED, whichever bus comes after it (issue 13).

The block kernels keep the largest squared voltage change of a sweep per item; a plain maximum
``d2 if d2 > dv2 else dv2`` loses a NaN as soon as a later bus has a finite change, so an item with a NaN voltage
could be reported converged. The network below is made for that: a slack with two children, bus 1 a load-free leaf
whose sweep factor ``m`` is NaN (its voltage is NaN in every sweep), bus 2 loaded and converging. Every kernel entry
(balanced and unbalanced, serial and parallel) must report DIVERGED with NaN voltages; the same network with a
finite ``m`` at bus 1 converges (the check is not triggered by anything else).

Hand calculation of the finite control: line admittance ``y = 1/(0.01 + 0.01j)`` pu per branch, no shunts, so
``m_b = 1/y``, ``kup_b = 1``; bus 2 with ``S = 0.1 + 0.05j`` pu and ``V_0 = 1`` pu converges to
``V_2 = 1 - z conj(S / V_2)``, i.e. ``V_2 ~= 1 - 0.01 (0.1 - 0.05j) (1 + j) ~= 0.9985 - 0.0005j`` to first order,
and ``V_1 = V_0 = 1`` (no load, no shunt).
"""

from __future__ import annotations

import numpy as np
import pytest

from powercheck.powerflow import kernels

Z = 0.01 + 0.01j
S = 0.1 + 0.05j
NB = 3  # batch items (all alike)


def _network(nan_m):
    parent = np.array([0, 0, 0], dtype=np.int64)
    y = 1.0 / Z
    ypp = np.array([0, y, y], dtype=complex)
    ypc = np.array([0, -y, -y], dtype=complex)
    ycp = ypc.copy()
    ycc = ypp.copy()
    ysh = np.zeros(3, dtype=complex)
    m3, kup3, ycp3 = (np.zeros((3, 3), dtype=complex) for _ in range(3))
    for s, y_slack in ((0, 10.0 + 0j), (1, 0j), (2, 10.0 + 0j)):
        m, kup, _ = kernels.sweep_factors(parent, ypp, ypc, ycp, ycc, ysh, y_slack)
        m3[s], kup3[s], ycp3[s] = m, kup, ycp
    if nan_m:
        m3[1, 1] = np.nan  # bus 1 (load-free leaf): NaN voltage in every sweep of the positive sequence
    full2red = np.arange(3, dtype=np.int64)  # identity: no chain reduction
    return parent, m3, kup3, ycp3, full2red


def _balanced(solver, nan_m):
    parent, m3, kup3, ycp3, full2red = _network(nan_m)
    m, kup, ycp = m3[1].copy(), kup3[1].copy(), ycp3[1].copy()
    elem_pos = np.array([2], dtype=np.int64)
    s_elem = np.full((NB, 1), S)
    v_slack = np.ones(NB, dtype=complex)
    v = np.empty((NB, 3), dtype=complex)
    n_iter = np.zeros(NB, dtype=np.int64)
    status = np.zeros(NB, dtype=np.int64)
    bus_pos = np.arange(3, dtype=np.int64)
    i64, c128, f64 = np.zeros(0, np.int64), np.zeros(0, complex), np.zeros(0)
    no_branch = (i64, i64, c128, c128, c128, c128, f64, f64, 0, f64, f64, f64, f64, f64, i64, c128, c128, 0j, i64,
                 1.0)  # fmt: skip
    no_out = (*(np.empty((0, 0)) for _ in range(6)), np.empty(0), np.empty(0))
    solver(parent, m, kup, ycp, full2red, full2red.copy(), parent, m, kup, ycp, elem_pos, s_elem, v_slack, bus_pos,
           1e-10, 50, v, n_iter, status, no_branch, no_out)  # fmt: skip
    return v, status


def _unbalanced(solver, nan_m):
    parent, m3, kup3, ycp3, full2red = _network(nan_m)
    wye_pos = np.array([2, 2, 2], dtype=np.int64)
    wye_phase = np.array([0, 1, 2], dtype=np.int64)
    s_wye = np.full((NB, 3), S)  # per phase, on the per-phase base
    delta_pos = np.zeros(0, dtype=np.int64)
    s_delta = np.zeros((NB, 0), dtype=complex)
    v_slack = np.ones(NB, dtype=complex)
    bus_pos = np.arange(3, dtype=np.int64)
    v = np.empty((NB, 3, 3), dtype=complex)
    n_iter = np.zeros(NB, dtype=np.int64)
    status = np.zeros(NB, dtype=np.int64)
    no_branch = (np.zeros(0, np.int64), np.zeros(0, np.int64), *(np.zeros((3, 0), complex) for _ in range(4)),
                 np.zeros(0), np.zeros(0), 0, *(np.zeros(0) for _ in range(5)))  # fmt: skip
    no_out = tuple(np.empty((0, 0, 3) if k in (0, 3, 4) else (0, 0)) for k in range(6))
    solver(parent, m3, kup3, ycp3, full2red, full2red.copy(), parent, m3, kup3, ycp3, wye_pos, wye_phase, s_wye,
           delta_pos, delta_pos.copy(), s_delta, v_slack, bus_pos, 1e-10, 50, v, n_iter, status, no_branch,
           no_out)  # fmt: skip
    return v, status


CASES = [
    ("balanced_serial", _balanced, kernels.solve_balanced_serial),
    ("balanced", _balanced, kernels.solve_balanced),
    ("unbalanced_serial", _unbalanced, kernels.solve_unbalanced_serial),
    ("unbalanced", _unbalanced, kernels.solve_unbalanced),
]


@pytest.mark.parametrize(("name", "run", "solver"), CASES, ids=[c[0] for c in CASES])
def test_nan_voltage_before_a_converging_bus_is_diverged(name, run, solver):
    v, status = run(solver, nan_m=True)
    np.testing.assert_array_equal(status, [kernels.STATUS_DIVERGED] * NB)
    assert np.isnan(v).all()


@pytest.mark.parametrize(("name", "run", "solver"), CASES, ids=[c[0] for c in CASES])
def test_same_network_with_finite_factor_converges(name, run, solver):
    v, status = run(solver, nan_m=False)
    np.testing.assert_array_equal(status, [kernels.STATUS_CONVERGED] * NB)
    v2 = v[:, 2] if v.ndim == 2 else v[:, 2, 0]  # bus 2 (phase a)
    np.testing.assert_allclose(v2, 0.9985 - 0.0005j, atol=1e-4)  # first-order hand value above
    exact = 1.0 - Z * np.conj(S / v2)  # the fixed point itself
    np.testing.assert_allclose(v2, exact, rtol=0, atol=1e-9)
    v1 = v[:, 1] if v.ndim == 2 else v[:, 1, :]
    want = 1.0 if v.ndim == 2 else [1.0, np.exp(-2j * np.pi / 3), np.exp(2j * np.pi / 3)]  # a load-free leaf: V_0
    np.testing.assert_allclose(v1, np.broadcast_to(want, v1.shape), rtol=0, atol=1e-12)
