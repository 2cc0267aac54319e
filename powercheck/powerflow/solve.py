"""Solvers of the batched radial power flow: :func:`run_batch` (balanced) and :func:`run_batch_3ph` (per phase).

Both share one pipeline: the power arguments are validated and brought to one batch shape
(:func:`_prepare`), written into the kernels' injection arrays (balanced or per phase) in the
column layout of the model's :class:`_Plan` (worked out on the first call and kept on the
model, with everything else that depends on the model only), solved by the numba sweep of
:mod:`powercheck.powerflow.kernels` on one thread or on all (:func:`_solve`, same results either
way), and returned as :class:`~powercheck.powerflow.results.BatchResult` /
:class:`~powercheck.powerflow.results.BatchResult3ph` in pandapower's bus, line and transformer
order; one kernel call computes all results of a batch (voltages in the net's bus order, branch
currents, loadings, slack power).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from powercheck.powerflow import kernels
from powercheck.powerflow.build import build_radial_model
from powercheck.powerflow.model import RadialModel, RadialModelError
from powercheck.powerflow.results import (
    BatchResult,
    BatchResult3ph,
    balanced_branch_arrays,
    balanced_branch_fields,
    batch_shaped,
    raise_not_converged,
    unbalanced_branch_arrays,
    unbalanced_branch_fields,
)

__all__ = ["BatchPowerFlow", "run_batch", "run_batch_3ph"]

_ErrorMode = Literal["mask", "raise"]

_POWER_ARGS = (
    "p_mw",
    "q_mvar",
    "sgen_p_mw",
    "sgen_q_mvar",
    "storage_p_mw",
    "storage_q_mvar",
    "asym_load_p_mw",
    "asym_load_q_mvar",
    "asym_sgen_p_mw",
    "asym_sgen_q_mvar",
    "bus_p_mw",
    "bus_q_mvar",
    "bus_delta_p_mw",
    "bus_delta_q_mvar",
    "vm_pu_slack",
)
"""Names of the power (and slack voltage) arguments of the solvers."""


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------

_TABLES = (
    ("load", "p_mw", "q_mvar", False),
    ("sgen", "sgen_p_mw", "sgen_q_mvar", False),
    ("storage", "storage_p_mw", "storage_q_mvar", False),
    ("asymmetric_load", "asym_load_p_mw", "asym_load_q_mvar", True),
    ("asymmetric_sgen", "asym_sgen_p_mw", "asym_sgen_q_mvar", True),
)
"""PQ tables with their power arguments (``asym``: per-phase values, trailing axis 3)."""


def _as_batch(name: str, value: Any, trailing: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float array of shape ``(..., *trailing)``; ValueError naming ``name``.

    Whether its values are finite is checked once for all arguments, on the injection arrays they are written into
    (:func:`_check_finite`): a NaN or infinity in any given value reaches them (every value is multiplied by a
    finite, non-zero scale or summed over the phases).
    """
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not a numeric array") from None
    nt = len(trailing)
    if arr.ndim < nt or arr.shape[arr.ndim - nt :] != trailing:
        want = ", ".join(str(t) for t in trailing)
        raise ValueError(f"{name}: expected shape (..., {want}), got {arr.shape}")
    return arr


def _check_finite(batch: _Batch, *injections: np.ndarray) -> None:
    """ValueError naming the first argument (in the solver's argument order) with a NaN or infinite value, and its
    first such index.

    One reduction over the injection arrays made from the arguments is the fast path; the arguments are looked at
    one by one only if it is not finite (a NaN or infinity, or an overflow of finite values, which passes as
    before).
    """
    if all(np.isfinite(np.add.reduce(s.view(float), axis=None)) for s in injections if s.size):
        return
    for name in _POWER_ARGS[:-1]:
        arr = batch.given.get(name)
        if arr is None:
            continue
        bad = ~np.isfinite(arr)
        if bad.any():
            where = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
            raise ValueError(f"{name}: contains NaN or infinite values (first at index {where})")


@dataclass(frozen=True, eq=False)
class _Part:
    """One PQ table's place in the kernels' injection arrays.

    Balanced: columns ``start:stop`` of ``s_elem``. Unbalanced: ``wye``/``delta`` are ``(start, rows)`` with
    ``rows`` the table rows (a slice when all of them) whose three phases take columns ``start : start + 3 r``
    (phase-major) of ``s_wye``/``s_delta``, or None.
    """

    table: str
    p_name: str
    q_name: str
    asym: bool
    scale: float  # sign / sn_mva [1/MVA]
    static_p: np.ndarray  # static values [MW] (n,) or (n, 3)
    static_q: np.ndarray
    start: int
    stop: int
    wye: tuple[int, Any] | None
    delta: tuple[int, Any] | None


class _Plan:
    """What the solvers need of a model besides the power arrays, worked out once per model (:func:`_plan`):
    expected trailing shapes of the arguments, the column layout of the injection arrays, their static (omitted
    argument) values and bus positions."""

    def __init__(self, model: RadialModel) -> None:
        el = model.elements
        nbus = len(model.bus_index)
        self.nbus = nbus
        self.sn = float(model.sn_mva)
        self.trailing: dict[str, tuple[int, ...]] = {}
        parts: list[_Part] = []
        col = wcol = dcol = 0
        pos: list[np.ndarray] = []
        wpos: list[np.ndarray] = []
        wph: list[np.ndarray] = []
        dpos: list[np.ndarray] = []
        dph: list[np.ndarray] = []
        for table, pn, qn, asym in _TABLES:
            e = el[table]
            n = len(e.index)
            self.trailing[pn] = self.trailing[qn] = (n, 3) if asym else (n,)
            if not n:
                continue
            wye = delta = None
            for is_delta, tgt_pos, tgt_ph in ((False, wpos, wph), (True, dpos, dph)):
                sel = np.flatnonzero(e.delta == is_delta)
                if not sel.size:
                    continue
                rows: Any = slice(None) if sel.size == n else sel
                start = dcol if is_delta else wcol
                tgt_pos.append(np.tile(e.pos[sel], 3))
                tgt_ph.append(np.repeat(np.arange(3, dtype=np.int64), sel.size))
                if is_delta:
                    delta, dcol = (start, rows), dcol + 3 * sel.size
                else:
                    wye, wcol = (start, rows), wcol + 3 * sel.size
            sp = np.asarray(e.p_mw, dtype=float)
            sq = np.asarray(e.q_mvar, dtype=float)
            parts.append(_Part(table, pn, qn, asym, e.sign / self.sn, sp, sq, col, col + n, wye, delta))
            pos.append(e.pos)
            col += n
        self.parts = tuple(parts)
        self.n_elem = col
        self.n_wye = wcol
        self.n_delta = dcol
        bus_pos = np.asarray(model.bus_pos, dtype=np.int64)
        self.bus_pos = bus_pos
        cat = _cat_int
        self.elem_pos = cat(pos)
        self.elem_pos_bus = cat([*pos, bus_pos])
        self.root_elems = np.flatnonzero(self.elem_pos == 0).astype(np.int64)
        self.root_elems_bus = np.flatnonzero(self.elem_pos_bus == 0).astype(np.int64)
        # unbalanced: the bus arguments' wye / delta columns follow the tables' (phase-major over all buses)
        tile, rep = np.tile(bus_pos, 3), np.repeat(np.arange(3, dtype=np.int64), nbus)
        self.wye_pos = (cat(wpos), cat([*wpos, tile]))
        self.wye_phase = (cat(wph), cat([*wph, rep]))
        self.delta_pos = (cat(dpos), cat([*dpos, tile]))
        self.delta_pair = (cat(dph), cat([*dph, rep]))
        self.static_elem = np.empty(self.n_elem, dtype=complex)
        for part in parts:
            p = part.static_p.sum(axis=1) if part.asym else part.static_p
            q = part.static_q.sum(axis=1) if part.asym else part.static_q
            self.static_elem[part.start : part.stop] = part.scale * (p + 1j * q)
        y = model.br_y
        f64 = np.float64
        ch = np.asarray(model.root_children, dtype=np.int64)
        n_line = len(model.line_index)
        self.branch_args = (
            np.asarray(model.br_f, np.int64), np.asarray(model.br_t, np.int64),
            y[1, 0].copy(), y[1, 1].copy(), y[1, 2].copy(), y[1, 3].copy(),
            np.asarray(model.br_ibase_f, f64), np.asarray(model.br_ibase_t, f64), n_line,
            np.asarray(model.line_imax_ka, f64), np.asarray(model.trafo_vn_hv_kv, f64),
            np.asarray(model.trafo_vn_lv_kv, f64), np.asarray(model.trafo_sn_mva, f64),
            np.asarray(model.trafo_rating_factor, f64),
        )  # fmt: skip
        self.root_args = (ch, model.ypp[1, ch].copy(), model.ypc[1, ch].copy(), complex(model.ysh[1, 0]))
        # the unbalanced results are computed from the net-order voltages: branch ends as net bus positions (any
        # net bus of the internal bus: fused buses share its voltage)
        net_of = np.zeros(model.n_bus, dtype=np.int64)
        sup = np.flatnonzero(bus_pos >= 0)
        net_of[bus_pos[sup]] = sup
        self.branch_args_3ph = (
            net_of[self.branch_args[0]], net_of[self.branch_args[1]],
            np.ascontiguousarray(y[:, 0]), np.ascontiguousarray(y[:, 1]),
            np.ascontiguousarray(y[:, 2]), np.ascontiguousarray(y[:, 3]),
            *self.branch_args[6:],
        )  # fmt: skip
        self.n_line = n_line
        self.n_trafo = len(model.trafo_index)
        # the same for the solver's block kernel (branch ends as internal buses); none: no branch results
        self.branch_args_block = (self.branch_args[0], self.branch_args[1], *self.branch_args_3ph[2:])
        self.no_branch_args_block = (
            np.zeros(0, np.int64), np.zeros(0, np.int64), *(np.zeros((3, 0), complex) for _ in range(4)),
            *(np.zeros(0) for _ in range(2)), 0, *(np.zeros(0) for _ in range(5)),
        )  # fmt: skip
        self.solve_args = (model.parent, model.m[1].copy(), model.kup[1].copy(), model.ycp[1].copy())
        # balanced sweeps on the network with the chains of buses without element reduced away (the IEEE LV
        # feeder: 907 -> 205 buses); with bus injections (any bus may be loaded) on the full network
        keep = np.zeros(model.n_bus, dtype=bool)
        keep[self.elem_pos[self.elem_pos >= 0]] = True
        self.reduced_args = chain_reduction(model, keep)
        self.identity_args = chain_reduction(model, np.ones(model.n_bus, dtype=bool))
        keep3 = np.zeros(model.n_bus, dtype=bool)
        for pos in (self.wye_pos[0], self.delta_pos[0]):
            keep3[pos[pos >= 0]] = True
        self.reduced_args_3ph = chain_reduction(model, keep3, three_phase=True)
        self.identity_args_3ph = chain_reduction(model, np.ones(model.n_bus, dtype=bool), three_phase=True)
        self.solve_args_3ph = (model.parent, model.m, model.kup, model.ycp)


def chain_reduction(model: RadialModel, keep: np.ndarray, three_phase: bool = False) -> tuple[np.ndarray, ...]:
    """The network with every chain of buses that are not in ``keep`` and have one child replaced by one two-port
    (exact Kron reduction of the chain's inner buses, their shunts included), in the positive sequence or (with
    ``three_phase``) in all three.

    The root, the buses in ``keep`` and the buses with no or several children stay. Returns ``(full2red, rbus,
    rparent, rm, rkup, rycp)`` as :func:`~powercheck.powerflow.kernels.solve_balanced` takes them (``rm, rkup,
    rycp`` of shape ``(3, r)`` with ``three_phase``, as :func:`~powercheck.powerflow.kernels.solve_unbalanced`).

    Eliminating the bus ``e`` between two-ports ``A`` (above) and ``B`` (below) with shunt ``y_e``:
    ``D = A_cc + y_e + B_pp``, ``Y_pp = A_pp - A_pc A_cp / D``, ``Y_pc = -A_pc B_pc / D``,
    ``Y_cp = -B_cp A_cp / D``, ``Y_cc = B_cc - B_cp B_pc / D`` (the node equation of ``e`` solved for ``V_e``).
    A floating zero sequence, or any ``D = 0`` (e.g. a model without zero-sequence data), leaves the network
    unreduced.
    """
    parent = np.asarray(model.parent, dtype=np.int64)
    n = parent.shape[0]
    n_child = np.bincount(parent[1:], minlength=n)
    kept = keep | (n_child != 1)
    kept[0] = True
    if three_phase and model.zero_seq_floating:
        kept[:] = True
    rbus = np.flatnonzero(kept).astype(np.int64)
    full2red = np.full(n, -1, dtype=np.int64)
    full2red[rbus] = np.arange(rbus.size)
    r = rbus.size
    if r == n:  # nothing reduced: the model's own factors
        if three_phase:
            return full2red, rbus, parent, model.m, model.kup, model.ycp
        return full2red, rbus, parent, model.m[1].copy(), model.kup[1].copy(), model.ycp[1].copy()
    rparent = np.zeros(r, dtype=np.int64)
    rm = np.zeros((3, r), dtype=complex)
    rkup = np.zeros((3, r), dtype=complex)
    rycp = np.zeros((3, r), dtype=complex)
    for s in (0, 1, 2) if three_phase else (1,):
        ypp, ypc, ycp, ycc, ysh = (np.asarray(a[s], dtype=complex) for a in (model.ypp, model.ypc, model.ycp,
                                                                               model.ycc, model.ysh))  # fmt: skip
        two_port = np.zeros((4, r), dtype=complex)
        for j in range(1, r):
            c = int(rbus[j])
            chain = [c]  # c and the reduced-away buses above it, bottom up
            while not kept[parent[chain[-1]]]:
                chain.append(int(parent[chain[-1]]))
            top = chain[-1]
            a_pp, a_pc, a_cp, a_cc = ypp[top], ypc[top], ycp[top], ycc[top]
            for k in range(len(chain) - 2, -1, -1):  # eliminate the bus above chain[k]
                e, b = chain[k + 1], chain[k]
                d = a_cc + ysh[e] + ypp[b]
                if d == 0:
                    return chain_reduction(model, np.ones(n, dtype=bool), three_phase)
                a_pp, a_pc, a_cp, a_cc = (
                    a_pp - a_pc * a_cp / d,
                    -a_pc * ypc[b] / d,
                    -ycp[b] * a_cp / d,
                    ycc[b] - ycp[b] * ypc[b] / d,
                )
            rparent[j] = full2red[parent[top]]
            two_port[:, j] = a_pp, a_pc, a_cp, a_cc
        y_slack = complex(model.y_slack[s]) if s != 1 else 0j  # as build_radial_model
        rm[s], rkup[s], _ = kernels.sweep_factors(
            rparent, two_port[0], two_port[1], two_port[2], two_port[3], ysh[rbus].copy(), y_slack
        )
        rycp[s] = two_port[2]
    if three_phase:
        return full2red, rbus, rparent, rm, rkup, rycp
    return full2red, rbus, rparent, rm[1].copy(), rkup[1].copy(), rycp[1].copy()


def _cat_int(parts: list[np.ndarray]) -> np.ndarray:
    """The arrays concatenated as int64 (empty for none)."""
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _plan(model: RadialModel) -> _Plan:
    """The model's :class:`_Plan`, built on first use and kept on the (immutable) model."""
    plan = model.__dict__.get("_solve_plan")
    if plan is None:
        plan = _Plan(model)
        object.__setattr__(model, "_solve_plan", plan)
    return plan


# batch items x buses (x 3 unbalanced) below which the serial kernels are used: threads pay off only for large
# batches (on the shared 2-core development machine, 96 steps of the 906-bus IEEE feeder, 261,000 units, ran slower
# on two threads than on one; 960 steps about equal)
_PARALLEL_MIN_WORK = 1_000_000


def _use_threads(parallel: bool | None, nb: int, n_bus: int) -> bool:
    """Whether to run the threaded kernel: as asked, or (``None``) for large batches only."""
    if parallel is None:
        return nb >= 16 and nb * n_bus >= _PARALLEL_MIN_WORK
    return bool(parallel)


def _check_solver_args(tol: float, max_iter: int, errors: str) -> None:
    """ValueError naming the option unless ``tol`` > 0, ``max_iter`` >= 1 and ``errors`` is known."""
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol: must be a positive number, got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter: must be >= 1, got {max_iter!r}")
    if errors not in ("mask", "raise"):
        raise ValueError(f"errors: must be 'mask' or 'raise', got {errors!r}")


@dataclass(frozen=True, eq=False)
class _Batch:
    """Validated solver inputs: batch shape and size, the given power arrays reshaped to ``(nb, ...)``, slack
    voltage per item, and the given arrays as given (``given``: for the error of :func:`_check_finite`)."""

    shape: tuple[int, ...]
    nb: int
    arrays: dict[str, np.ndarray]
    v_slack: np.ndarray
    given: dict[str, np.ndarray]


def _prepare(
    model: RadialModel, plan: _Plan, args: dict[str, Any], *, three_phase: bool, tol: float, max_iter: int, errors: str
) -> _Batch:
    """Check the solver options and the power arguments (``args``: the solver's arguments by name).

    Every given power array must have the trailing shape of its elements and all of them the same batch shape
    (ValueError naming the argument otherwise); ``vm_pu_slack`` may also be a scalar.
    """
    _check_solver_args(tol, max_iter, errors)
    nbus = plan.nbus
    bus_trailing = (nbus, 3) if three_phase else (nbus,)
    shape: tuple[int, ...] | None = None
    first = ""
    given: dict[str, np.ndarray] = {}
    for name in _POWER_ARGS[:-1]:
        value = args.get(name)
        if value is None:
            continue
        if name.startswith("bus_"):
            if not three_phase and name.startswith("bus_delta"):
                continue
            trailing = bus_trailing
        else:
            trailing = plan.trailing[name]
        arr = _as_batch(name, value, trailing)
        bshape = arr.shape[: arr.ndim - len(trailing)]
        if shape is None:
            shape, first = bshape, name
        elif bshape != shape:
            raise ValueError(f"{name}: batch shape {bshape} differs from {first}'s batch shape {shape}")
        given[name] = arr
    vm = args.get("vm_pu_slack")
    vm_arr = None
    if vm is not None:
        vm_arr = np.asarray(vm, dtype=float)
        if shape is None:
            shape, first = vm_arr.shape, "vm_pu_slack"
        elif vm_arr.shape not in (shape, ()):
            raise ValueError(f"vm_pu_slack: shape {vm_arr.shape} differs from the batch shape {shape} of {first}")
        if not np.isfinite(vm_arr).all() or (vm_arr <= 0).any():
            raise ValueError("vm_pu_slack: values must be finite and positive")
    shape = shape or ()
    nb = 1
    for d in shape:
        nb *= int(d)
    arrays = {name: _items_first(arr, len(shape), nb) for name, arr in given.items()}
    if vm_arr is None:
        v_slack = np.full(nb, model.v_slack, dtype=complex)
    else:
        ang = np.angle(model.v_slack)
        v_slack = (np.broadcast_to(vm_arr, shape).reshape(nb) * np.exp(1j * ang)).astype(complex)
    return _Batch(shape, nb, arrays, v_slack, given)


def _items_first(arr: np.ndarray, batch_ndim: int, nb: int) -> np.ndarray:
    """``arr`` (``batch_ndim`` batch axes first) with one axis of ``nb`` items for them; ``arr`` itself when it has
    that shape already (the inverse of :func:`~powercheck.powerflow.results.batch_shaped`)."""
    target = (nb, *arr.shape[batch_ndim:])
    return arr if arr.shape == target else arr.reshape(target)


def _solve(
    batch: _Batch,
    threads: bool,
    threaded: Callable[..., None],
    serial: Callable[..., None],
    network: tuple[Any, ...],
    v_shape: tuple[int, ...],
    *,
    tol: float,
    max_iter: int,
    errors: str,
    extra: tuple[Any, ...] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a solver kernel pair on the batch; returns voltages (shape ``v_shape``), iterations, status.

    ``network`` are the kernel's leading arguments, ``extra`` its trailing ones (after ``status``). With
    ``errors="raise"`` a non-converged item raises :class:`~powercheck.powerflow.results.PowerFlowNotConverged`.
    """
    v = np.empty(v_shape, dtype=complex)
    n_iter = np.zeros(batch.nb, dtype=np.int64)
    status = np.zeros(batch.nb, dtype=np.int64)
    solve = threaded if threads else serial
    solve(*network, float(tol), int(max_iter), v, n_iter, status, *extra)
    if errors == "raise":
        raise_not_converged(status, batch.shape, max_iter)
    return v, n_iter, status


def _result_fields(
    model: RadialModel, v_net: np.ndarray, n_iter: np.ndarray, status: np.ndarray, shape: tuple[int, ...]
) -> dict[str, Any]:
    """The fields shared by :class:`BatchResult` and :class:`BatchResult3ph`."""
    n_iter, status = batch_shaped(n_iter, shape), batch_shaped(status, shape)
    return {
        "v_pu": v_net,
        "converged": status == kernels.STATUS_CONVERGED,
        "n_iter": n_iter,
        "status": status,
        "bus_index": model.bus_index,
        "line_index": model.line_index,
        "trafo_index": model.trafo_index,
    }


def _pq(part: _Part, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The table's given P and Q (the static values for the one not given), or None if neither is given."""
    p = arrays.get(part.p_name)
    q = arrays.get(part.q_name)
    if p is None and q is None:
        return None
    return (part.static_p if p is None else p), (part.static_q if q is None else q)


def _balanced_injections(plan: _Plan, batch: _Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bus (internal) and consumed power [pu] of every PQ injection, per batch item, and the injections at the
    slack bus: ``(elem_pos, s_elem, root_elems)``; ValueError naming the argument of a NaN or infinite value
    (:func:`_check_finite`)."""
    arrays, nb = batch.arrays, batch.nb
    bus = "bus_p_mw" in arrays or "bus_q_mvar" in arrays
    ne = plan.n_elem
    s_elem = np.empty((nb, ne + (plan.nbus if bus else 0)), dtype=complex)
    re, im = s_elem.real, s_elem.imag
    for part in plan.parts:
        pq = _pq(part, arrays)
        if pq is None:  # not given: the static values
            s_elem[:, part.start : part.stop] = plan.static_elem[part.start : part.stop]
            continue
        p, q = pq
        if part.asym:
            p, q = p.sum(axis=-1), q.sum(axis=-1)
        np.multiply(p, part.scale, out=re[:, part.start : part.stop])
        np.multiply(q, part.scale, out=im[:, part.start : part.stop])
    if bus:
        zero = np.zeros(plan.nbus)
        np.multiply(arrays.get("bus_p_mw", zero), 1.0 / plan.sn, out=re[:, ne:])
        np.multiply(arrays.get("bus_q_mvar", zero), 1.0 / plan.sn, out=im[:, ne:])
    _check_finite(batch, s_elem)
    if bus:
        return plan.elem_pos_bus, s_elem, plan.root_elems_bus
    return plan.elem_pos, s_elem, plan.root_elems


def _unbalanced_injections(model: RadialModel, plan: _Plan, batch: _Batch) -> tuple[np.ndarray, ...]:
    """Phase-to-neutral and phase-to-phase injections [pu on ``sn_mva/3``] per batch item.

    Returns ``(s_wye, wye_pos, wye_phase, s_delta, delta_pos, delta_pair)``; the columns of ``s_wye``/``s_delta``
    are the tables' wye/delta rows phase-major (:class:`_Part`), then the bus arguments (phase-major over all
    buses).

    Raises
    ------
    ValueError
        A NaN or infinite value in a power argument, named with its index (:func:`_check_finite`).
    RadialModelError
        Phase-to-neutral power given for an unearthed (IT) network.
    """
    arrays, nb = batch.arrays, batch.nb
    nbus = plan.nbus
    bus_w = "bus_p_mw" in arrays or "bus_q_mvar" in arrays
    bus_d = "bus_delta_p_mw" in arrays or "bus_delta_q_mvar" in arrays
    nw, nd = plan.n_wye, plan.n_delta
    s_wye = np.empty((nb, nw + (3 * nbus if bus_w else 0)), dtype=complex)
    s_del = np.empty((nb, nd + (3 * nbus if bus_d else 0)), dtype=complex)
    for part in plan.parts:
        pq = _pq(part, arrays)
        p, q = pq if pq is not None else (part.static_p, part.static_q)
        if p.shape != q.shape:  # one of the two given, the other its static values: both per batch item
            p, q = np.broadcast_arrays(p, q)
        # per phase [pu on sn/3]: balanced elements P/3 / (sn/3) = P/sn on each phase, asymmetric 3 P_ph / sn
        scale = 3.0 * part.scale if part.asym else part.scale
        for side, out in ((part.wye, s_wye), (part.delta, s_del)):
            if side is None:
                continue
            start, rows = side
            pr, qr = p[..., rows, :] if part.asym else p[..., rows], q[..., rows, :] if part.asym else q[..., rows]
            r = pr.shape[-2] if part.asym else pr.shape[-1]
            blk = out[:, start : start + 3 * r].reshape(nb, 3, r)  # view: phase-major columns
            if part.asym:
                np.multiply(np.swapaxes(pr, -1, -2), scale, out=blk.real)
                np.multiply(np.swapaxes(qr, -1, -2), scale, out=blk.imag)
            else:  # the same value on the three phases: computed once, copied as complex (contiguous) rows
                one = np.empty(pr.shape, dtype=complex)
                np.multiply(pr, scale, out=one.real)
                np.multiply(qr, scale, out=one.imag)
                blk[...] = one[..., None, :]
    zero = np.zeros((nbus, 3))
    for on, names, out, start in (
        (bus_w, ("bus_p_mw", "bus_q_mvar"), s_wye, nw),
        (bus_d, ("bus_delta_p_mw", "bus_delta_q_mvar"), s_del, nd),
    ):
        if on:
            blk = out[:, start:].reshape(nb, 3, nbus)
            np.multiply(np.swapaxes(arrays.get(names[0], zero), -1, -2), 3.0 / plan.sn, out=blk.real)
            np.multiply(np.swapaxes(arrays.get(names[1], zero), -1, -2), 3.0 / plan.sn, out=blk.imag)
    _check_finite(batch, s_wye, s_del)
    wye_pos, wye_phase = plan.wye_pos[bus_w], plan.wye_phase[bus_w]
    if model.zero_seq_floating and wye_pos.size:
        used = (wye_pos >= 0) & np.any(s_wye != 0, axis=0)
        if used.any():
            raise RadialModelError(
                "phase-to-neutral power given for an unearthed (IT) network: only phase-to-phase (delta) loads "
                "are possible"
            )
    return s_wye, wye_pos, wye_phase, s_del, plan.delta_pos[bus_d], plan.delta_pair[bus_d]


# --------------------------------------------------------------------------------------------
# solvers
# --------------------------------------------------------------------------------------------


def run_batch(
    model: RadialModel,
    p_mw: Any = None,
    q_mvar: Any = None,
    *,
    sgen_p_mw: Any = None,
    sgen_q_mvar: Any = None,
    storage_p_mw: Any = None,
    storage_q_mvar: Any = None,
    asym_load_p_mw: Any = None,
    asym_load_q_mvar: Any = None,
    asym_sgen_p_mw: Any = None,
    asym_sgen_q_mvar: Any = None,
    bus_p_mw: Any = None,
    bus_q_mvar: Any = None,
    vm_pu_slack: Any = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    branch_results: bool = True,
    errors: _ErrorMode = "mask",
    parallel: bool | None = None,
) -> BatchResult:
    """Balanced power flow for a batch of load cases (time steps x scenarios x ...).

    Every power argument is optional; an omitted one takes the network's
    static values (``p_mw * scaling`` etc.) for every batch item. Given arrays
    hold the actual element powers (no ``scaling`` applied) with the batch
    axes first, e.g. ``p_mw[steps, n_load]`` or ``p_mw[scenarios, steps,
    n_load]``; all given arrays must share the same batch shape.

    Parameters
    ----------
    model : RadialModel
        From :func:`~powercheck.powerflow.build.build_radial_model`.
    p_mw, q_mvar : array_like, shape (..., n_load)
        Load consumption, columns in ``model.load_index`` order [MW], [Mvar].
    sgen_p_mw, sgen_q_mvar : array_like, shape (..., n_sgen)
        Static generator output (generation positive) [MW], [Mvar].
    storage_p_mw, storage_q_mvar : array_like, shape (..., n_storage)
        Storage power (charging positive) [MW], [Mvar].
    asym_load_p_mw, asym_load_q_mvar, asym_sgen_p_mw, asym_sgen_q_mvar : array_like, shape (..., n, 3)
        Asymmetric elements per phase; the balanced solver uses the phase sum
        [MW], [Mvar].
    bus_p_mw, bus_q_mvar : array_like, shape (..., n_bus)
        Extra consumption per bus in ``model.bus_index`` order (e.g. a
        connection candidate) [MW], [Mvar].
    vm_pu_slack : array_like, shape (...) or scalar, optional
        Slack voltage magnitude per item [pu]; default the ext_grid's ``vm_pu``.
    tol : float, default 1e-10
        Convergence tolerance on the voltage change between sweeps [pu].
    max_iter : int, default 100
        Sweep limit per item.
    branch_results : bool, default True
        Compute line/trafo currents and loadings and the slack power.
    errors : {"mask", "raise"}, default "mask"
        ``"mask"``: non-converged items get NaN results and ``converged`` False.
        ``"raise"``: raise :class:`~powercheck.powerflow.results.PowerFlowNotConverged`.
    parallel : bool or None, default None
        Solve the batch items on all numba threads. ``None`` decides by batch
        size (threads only pay off for large batches). Results are identical
        either way.

    Returns
    -------
    BatchResult
    """
    plan = _plan(model)
    batch = _prepare(model, plan, locals(), three_phase=False, tol=tol, max_iter=max_iter, errors=errors)
    elem_pos, s_elem, root_elems = _balanced_injections(plan, batch)
    threads = _use_threads(parallel, batch.nb, model.n_bus)
    # the kernel writes the voltages in the net's bus order and the branch results and slack power (the same
    # numbers as balanced_summary of those voltages, computed in the kernel's item blocks)
    out = balanced_branch_arrays(batch.nb if branch_results else 0, plan.n_line, plan.n_trafo)
    v_net, n_iter, status = _solve(
        batch,
        threads,
        kernels.solve_balanced,
        kernels.solve_balanced_serial,
        (
            *plan.solve_args,
            *(plan.reduced_args if elem_pos is plan.elem_pos else plan.identity_args),
            elem_pos,
            s_elem,
            batch.v_slack,
            plan.bus_pos,
        ),
        (batch.nb, plan.nbus),
        tol=tol,
        max_iter=max_iter,
        errors=errors,
        extra=((*plan.branch_args, *plan.root_args, root_elems, plan.sn), out),
    )
    v_net = batch_shaped(v_net, batch.shape)
    res = balanced_branch_fields(out, batch.shape) if branch_results else {}
    return BatchResult(**_result_fields(model, v_net, n_iter, status, batch.shape), **res)


def run_batch_3ph(
    model: RadialModel,
    p_mw: Any = None,
    q_mvar: Any = None,
    *,
    sgen_p_mw: Any = None,
    sgen_q_mvar: Any = None,
    storage_p_mw: Any = None,
    storage_q_mvar: Any = None,
    asym_load_p_mw: Any = None,
    asym_load_q_mvar: Any = None,
    asym_sgen_p_mw: Any = None,
    asym_sgen_q_mvar: Any = None,
    bus_p_mw: Any = None,
    bus_q_mvar: Any = None,
    bus_delta_p_mw: Any = None,
    bus_delta_q_mvar: Any = None,
    vm_pu_slack: Any = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    branch_results: bool = True,
    errors: _ErrorMode = "mask",
    parallel: bool | None = None,
) -> BatchResult3ph:
    """Unbalanced (per-phase) power flow for a batch of load cases.

    Arguments as in :func:`run_batch`, plus per-phase arrays. Balanced
    elements (``load``, ``sgen``, ``storage``) are split 1/3 per phase and
    connected phase-to-neutral, or phase-to-phase when their ``type`` is
    ``"delta"``. Asymmetric elements take ``p_a/b/c``; for ``type == "delta"``
    the three values load the ab, bc and ca branches.

    Parameters
    ----------
    model : RadialModel
        From :func:`~powercheck.powerflow.build.build_radial_model` with zero-sequence data
        (``model.three_phase_error is None``).
    p_mw, q_mvar, sgen_p_mw, sgen_q_mvar, storage_p_mw, storage_q_mvar : array_like, shape (..., n)
        Balanced elements, total over the phases [MW], [Mvar].
    asym_load_p_mw, asym_load_q_mvar, asym_sgen_p_mw, asym_sgen_q_mvar : array_like, shape (..., n, 3)
        Asymmetric elements per phase (or per phase pair for delta) [MW], [Mvar].
    bus_p_mw, bus_q_mvar : array_like, shape (..., n_bus, 3)
        Extra phase-to-neutral consumption per bus and phase [MW], [Mvar].
    bus_delta_p_mw, bus_delta_q_mvar : array_like, shape (..., n_bus, 3)
        Extra phase-to-phase consumption per bus on ab, bc, ca [MW], [Mvar].
    vm_pu_slack, tol, max_iter, branch_results, errors, parallel
        As in :func:`run_batch`.

    Returns
    -------
    BatchResult3ph

    Raises
    ------
    RadialModelError
        The model lacks zero-sequence data, or phase-to-neutral loads are
        connected to an unearthed (IT) network.
    """
    if model.three_phase_error is not None:
        raise RadialModelError(f"model not usable for the unbalanced power flow: {model.three_phase_error}")
    plan = _plan(model)
    batch = _prepare(model, plan, locals(), three_phase=True, tol=tol, max_iter=max_iter, errors=errors)
    s_wye, wye_pos, wye_phase, s_del, del_pos, del_pair = _unbalanced_injections(model, plan, batch)
    n = model.n_bus
    threads = _use_threads(parallel, batch.nb, 3 * n)
    tables_only = wye_pos is plan.wye_pos[0] and del_pos is plan.delta_pos[0]  # no bus injections: reduced network
    # the kernel writes the phase voltages in the net's bus order, phase last (the result's layout), and the branch
    # results (the same numbers as unbalanced_summary of those voltages, computed in the kernel's item blocks)
    out = tuple(unbalanced_branch_arrays(batch.nb if branch_results else 0, plan.n_line, plan.n_trafo))
    v_net, n_iter, status = _solve(
        batch,
        threads,
        kernels.solve_unbalanced,
        kernels.solve_unbalanced_serial,
        (
            *plan.solve_args_3ph,
            *(plan.reduced_args_3ph if tables_only else plan.identity_args_3ph),
            wye_pos,
            wye_phase,
            s_wye,
            del_pos,
            del_pair,
            s_del,
            batch.v_slack,
            plan.bus_pos,
        ),
        (batch.nb, plan.nbus, 3),
        tol=tol,
        max_iter=max_iter,
        errors=errors,
        extra=(plan.branch_args_block if branch_results else plan.no_branch_args_block, out),
    )
    res = unbalanced_branch_fields(out, batch.shape) if branch_results else {}
    v_net = batch_shaped(v_net, batch.shape)
    return BatchResult3ph(**_result_fields(model, v_net, n_iter, status, batch.shape), **res)


class BatchPowerFlow:
    """A network's radial model with the balanced and unbalanced batch solvers.

    Parameters
    ----------
    net : pandapowerNet
        Radial network (see :func:`~powercheck.powerflow.build.build_radial_model`).
    **model_options
        Passed to :func:`~powercheck.powerflow.build.build_radial_model`.

    Examples
    --------
    >>> pf = BatchPowerFlow(net)                         # doctest: +SKIP
    >>> res = pf.run(p_mw=load_p[steps], q_mvar=load_q[steps])  # doctest: +SKIP
    >>> res.vm_pu.min(axis=-1)                           # doctest: +SKIP
    """

    def __init__(self, net: Any, **model_options: Any) -> None:
        self.model = build_radial_model(net, **model_options)

    def run(self, *args: Any, **kwargs: Any) -> BatchResult:
        """:func:`run_batch` on this model."""
        return run_batch(self.model, *args, **kwargs)

    def run_3ph(self, *args: Any, **kwargs: Any) -> BatchResult3ph:
        """:func:`run_batch_3ph` on this model."""
        return run_batch_3ph(self.model, *args, **kwargs)
