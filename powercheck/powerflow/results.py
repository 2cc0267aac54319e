"""Results of the batched radial power flow: voltages, branch currents and loadings, slack power.

:class:`BatchResult` (balanced) and :class:`BatchResult3ph` (per phase) hold the solver
output in pandapower's order (``net.bus``, ``net.line``, ``net.trafo``) with the batch axes
first. The solvers compute them inside their kernels from each block of batch items' voltages
(:func:`~powercheck.powerflow.kernels.solve_balanced`, :func:`~powercheck.powerflow.kernels.solve_unbalanced`).
:func:`balanced_summary` (net-order voltages, branch currents, loadings, slack power from internal-order
voltages) and :func:`unbalanced_summary` (branch results from net-order phase voltages) compute the same numbers
from given voltages in one kernel call per batch, as pandapower's ``results_branch.py`` does for its own solver:
the solvers' numbers bit for bit. :func:`to_net_buses`, :func:`balanced_branch_results`,
:func:`unbalanced_branch_results` and :func:`unbalanced_branch_results_numpy` compute the same from internal-order
voltages (NumPy, or one kernel over the internal order): the references of
``tests/powerflow/test_branch_summary_kernel.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from powercheck.powerflow import kernels
from powercheck.powerflow.kernels import STATUS_CONVERGED, STATUS_DIVERGED, STATUS_MAX_ITER
from powercheck.powerflow.model import RadialModel

__all__ = [
    "BatchResult",
    "BatchResult3ph",
    "PowerFlowNotConverged",
    "balanced_branch_results",
    "balanced_summary",
    "raise_not_converged",
    "to_net_buses",
    "unbalanced_branch_results",
    "unbalanced_summary",
]

_SQRT3 = math.sqrt(3.0)


class PowerFlowNotConverged(RuntimeError):
    """At least one batch item did not converge (raised only with ``errors="raise"``)."""


def raise_not_converged(status: np.ndarray, shape: tuple[int, ...], max_iter: int | None) -> None:
    """Raise :class:`PowerFlowNotConverged` naming the failed batch indices (flat ``status``, batch ``shape``)."""
    bad = np.flatnonzero(status != STATUS_CONVERGED)
    if bad.size:
        where = [tuple(int(j) for j in np.unravel_index(int(b), shape)) if shape else () for b in bad[:5]]
        limit = f" within max_iter={max_iter}" if max_iter is not None else " within max_iter"
        kinds = {STATUS_MAX_ITER: "no convergence" + limit, STATUS_DIVERGED: "diverged"}
        first = kinds.get(int(status[bad[0]]), "failed")
        raise PowerFlowNotConverged(
            f"{bad.size} of {status.size} batch items did not converge ({first} at batch index {where[0]}); "
            f"first indices: {where}"
        )


@dataclass(frozen=True, eq=False)
class _BatchResultBase:
    """Fields and accessors shared by the balanced and the per-phase results."""

    v_pu: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    status: np.ndarray
    bus_index: np.ndarray
    line_index: np.ndarray
    trafo_index: np.ndarray

    @property
    def vm_pu(self) -> np.ndarray:
        """Voltage magnitudes [pu], shape of ``v_pu``."""
        return np.abs(self.v_pu)

    @property
    def va_degree(self) -> np.ndarray:
        """Voltage angles [degree], shape of ``v_pu``."""
        return np.rad2deg(np.angle(self.v_pu))

    @property
    def all_converged(self) -> bool:
        return bool(np.all(self.converged))

    def raise_if_not_converged(self) -> None:
        """Raise :class:`PowerFlowNotConverged` naming the failed batch indices."""
        raise_not_converged(self.status.ravel(), self.status.shape, None)


@dataclass(frozen=True, eq=False)
class BatchResult(_BatchResultBase):
    """Results of :func:`~powercheck.powerflow.solve.run_batch`; leading axes are the batch shape of the inputs.

    Attributes
    ----------
    v_pu : ndarray of complex, shape (..., n_bus)
        Bus voltages [pu] in ``bus_index`` order; NaN for unsupplied buses and
        non-converged items.
    converged : ndarray of bool, shape (...)
    n_iter : ndarray of int, shape (...)
        Sweeps used.
    line_i_from_ka, line_i_to_ka, line_i_ka : ndarray, shape (..., n_line)
        Line terminal currents and their maximum [kA].
    line_loading_percent : ndarray, shape (..., n_line)
        ``i_ka / (max_i_ka * df * parallel)`` [%].
    trafo_i_hv_ka, trafo_i_lv_ka : ndarray, shape (..., n_trafo)
        Transformer terminal currents [kA].
    trafo_loading_percent : ndarray, shape (..., n_trafo)
        Current-based loading as pandapower's ``trafo_loading="current"`` [%].
    ext_grid_p_mw, ext_grid_q_mvar : ndarray, shape (...)
        Power supplied by the slack [MW], [Mvar].
    bus_index, line_index, trafo_index : ndarray
        pandapower indices of the last axes.
    """

    line_i_from_ka: np.ndarray | None = None
    line_i_to_ka: np.ndarray | None = None
    line_loading_percent: np.ndarray | None = None
    trafo_i_hv_ka: np.ndarray | None = None
    trafo_i_lv_ka: np.ndarray | None = None
    trafo_loading_percent: np.ndarray | None = None
    ext_grid_p_mw: np.ndarray | None = None
    ext_grid_q_mvar: np.ndarray | None = None

    @property
    def line_i_ka(self) -> np.ndarray | None:
        """Larger of the two terminal currents [kA], shape (..., n_line)."""
        if self.line_i_from_ka is None or self.line_i_to_ka is None:
            return None
        return np.maximum(self.line_i_from_ka, self.line_i_to_ka)


@dataclass(frozen=True, eq=False)
class BatchResult3ph(_BatchResultBase):
    """Results of :func:`~powercheck.powerflow.solve.run_batch_3ph`.

    Leading axes are the batch shape, the last axis is the phase a, b, c.

    Attributes
    ----------
    v_pu : ndarray of complex, shape (..., n_bus, 3)
        Phase-to-neutral voltages [pu of ``vn_kv/sqrt(3)``]; NaN for unsupplied
        buses and non-converged items. For an IT network (unearthed winding)
        these are relative to the symmetrical star point (zero sequence 0).
    converged, n_iter, status : ndarray, shape (...)
    line_i_ka : ndarray, shape (..., n_line, 3)
        Phase currents, larger of the two ends [kA].
    line_i_n_ka : ndarray, shape (..., n_line)
        Neutral (residual) current ``|Ia + Ib + Ic|``, larger end [kA].
    line_loading_percent : ndarray, shape (..., n_line)
        Highest phase current over ``max_i_ka * df * parallel`` [%].
    trafo_i_hv_ka, trafo_i_lv_ka : ndarray, shape (..., n_trafo, 3)
        Transformer phase currents [kA].
    trafo_loading_percent : ndarray, shape (..., n_trafo)
        Highest phase loading, pandapower's current-based definition [%].
    """

    line_i_ka: np.ndarray | None = None
    line_i_n_ka: np.ndarray | None = None
    line_loading_percent: np.ndarray | None = None
    trafo_i_hv_ka: np.ndarray | None = None
    trafo_i_lv_ka: np.ndarray | None = None
    trafo_loading_percent: np.ndarray | None = None

    @property
    def unbalance_percent(self) -> np.ndarray:
        """Voltage unbalance ``|V2| / |V1| * 100`` [%], shape (..., n_bus) (pandapower's definition)."""
        a = np.exp(2j * np.pi / 3)
        va, vb, vc = self.v_pu[..., 0], self.v_pu[..., 1], self.v_pu[..., 2]
        v1 = (va + a * vb + a * a * vc) / 3
        v2 = (va + a * a * vb + a * vc) / 3
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs(v2) / np.abs(v1) * 100.0


def to_net_buses(model: RadialModel, v: np.ndarray, bus_axis: int) -> np.ndarray:
    """Internal bus order -> net.bus order along ``bus_axis`` (NaN where unsupplied)."""
    sup = model.bus_pos >= 0
    shape = list(v.shape)
    shape[bus_axis] = len(model.bus_index)
    out = np.full(shape, np.nan + 0j, dtype=complex)
    idx: list[Any] = [slice(None)] * v.ndim
    idx[bus_axis] = np.flatnonzero(sup)
    out[tuple(idx)] = np.take(v, model.bus_pos[sup], axis=bus_axis)
    return out


def balanced_branch_results(
    model: RadialModel,
    v: np.ndarray,
    shape: tuple[int, ...],
    elem_pos: np.ndarray,
    s_elem: np.ndarray,
) -> dict[str, np.ndarray]:
    """Line and transformer currents and loadings, and the slack power, of balanced solutions.

    Parameters
    ----------
    model : RadialModel
    v : ndarray of complex, shape (nb, n)
        Voltages in internal bus order [pu] (NaN rows for non-converged items).
    shape : tuple of int
        Batch shape (``nb = prod(shape)``).
    elem_pos, s_elem : ndarray
        Internal bus and consumed power [pu] of every PQ injection, as given to the solver
        (the injections at the slack bus count towards the slack power).

    Returns
    -------
    dict
        The branch fields of :class:`BatchResult` ([kA], [%], [MW], [Mvar]).
    """
    nb = v.shape[0]
    sn = model.sn_mva
    res: dict[str, np.ndarray] = {}
    nbr = model.br_f.shape[0]
    i_f = np.empty((nb, nbr), dtype=complex)
    i_t = np.empty((nb, nbr), dtype=complex)
    y = model.br_y[1]
    kernels.branch_currents(v, model.br_f, model.br_t, y[0], y[1], y[2], y[3], i_f, i_t)
    a_f = np.abs(i_f) * model.br_ibase_f
    a_t = np.abs(i_t) * model.br_ibase_t
    n_line = len(model.line_index)
    n_trafo = len(model.trafo_index)
    with np.errstate(invalid="ignore", divide="ignore"):
        res["line_i_from_ka"] = a_f[:, :n_line].reshape(*shape, n_line)
        res["line_i_to_ka"] = a_t[:, :n_line].reshape(*shape, n_line)
        res["line_loading_percent"] = (
            np.maximum(a_f[:, :n_line], a_t[:, :n_line]) / model.line_imax_ka * 100.0
        ).reshape(*shape, n_line)
        hv, lv = a_f[:, n_line:], a_t[:, n_line:]
        res["trafo_i_hv_ka"] = hv.reshape(*shape, n_trafo)
        res["trafo_i_lv_ka"] = lv.reshape(*shape, n_trafo)
        ld = np.maximum(hv * model.trafo_vn_hv_kv, lv * model.trafo_vn_lv_kv) * _SQRT3 / model.trafo_sn_mva * 100.0
        res["trafo_loading_percent"] = (ld / model.trafo_rating_factor).reshape(*shape, n_trafo)
    # slack injection: branches below the root, shunts and elements at the root
    ch = model.root_children
    v0 = v[:, 0]
    i_root = (model.ypp[1, ch] * v0[:, None] + model.ypc[1, ch] * v[:, ch]).sum(axis=1) + model.ysh[1, 0] * v0
    at_root = elem_pos == 0
    if at_root.any():
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN rows of non-converged items
            i_root = i_root + np.conj(s_elem[:, at_root].sum(axis=1) / v0)
    s_root = v0 * np.conj(i_root) * sn
    res["ext_grid_p_mw"] = s_root.real.reshape(shape)
    res["ext_grid_q_mvar"] = s_root.imag.reshape(shape)
    return res


def unbalanced_branch_results(model: RadialModel, v: np.ndarray, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Phase and neutral currents and loadings of lines and transformers of unbalanced solutions.

    One kernel (:func:`~powercheck.powerflow.kernels.unbalanced_branch_summary`) computes the branch
    currents and every result from the voltages, in parallel over the batch; this wrapper only allocates
    and reshapes (:func:`unbalanced_branch_results_numpy` is the same in NumPy, the reference of the tests).

    Parameters
    ----------
    model : RadialModel
    v : ndarray of complex, shape (nb, 3, n)
        Phase voltages in internal bus order [pu].
    shape : tuple of int
        Batch shape.

    Returns
    -------
    dict
        The branch fields of :class:`BatchResult3ph` ([kA], [%]).
    """
    y = model.br_y
    f64 = np.float64
    args = (
        model.br_f, model.br_t, y[:, 0], y[:, 1], y[:, 2], y[:, 3], np.asarray(model.br_ibase_f, f64),
        np.asarray(model.br_ibase_t, f64), len(model.line_index), np.asarray(model.line_imax_ka, f64),
        np.asarray(model.trafo_vn_hv_kv, f64), np.asarray(model.trafo_vn_lv_kv, f64),
        np.asarray(model.trafo_sn_mva, f64), np.asarray(model.trafo_rating_factor, f64),
    )  # fmt: skip
    return _unbalanced_branches(kernels.unbalanced_branch_summary, False, np.ascontiguousarray(v), args,
                                len(model.line_index), len(model.trafo_index), shape)  # fmt: skip


def unbalanced_branch_results_numpy(model: RadialModel, v: np.ndarray, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Phase and neutral currents and loadings of lines and transformers of unbalanced solutions.

    Parameters
    ----------
    model : RadialModel
    v : ndarray of complex, shape (nb, 3, n)
        Phase voltages in internal bus order [pu].
    shape : tuple of int
        Batch shape.

    Returns
    -------
    dict
        The branch fields of :class:`BatchResult3ph` ([kA], [%]).
    """
    nb = v.shape[0]
    res: dict[str, np.ndarray] = {}
    nbr = model.br_f.shape[0]
    i_f = np.empty((nb, 3, nbr), dtype=complex)
    i_t = np.empty((nb, 3, nbr), dtype=complex)
    y = model.br_y
    kernels.branch_currents_unbalanced(v, model.br_f, model.br_t, y[:, 0], y[:, 1], y[:, 2], y[:, 3], i_f, i_t)
    a_f = np.abs(i_f) * model.br_ibase_f  # [nb, 3, nbr]
    a_t = np.abs(i_t) * model.br_ibase_t
    n_line = len(model.line_index)
    n_trafo = len(model.trafo_index)
    with np.errstate(invalid="ignore", divide="ignore"):
        li = np.maximum(a_f[:, :, :n_line], a_t[:, :, :n_line])
        res["line_i_ka"] = np.transpose(li, (0, 2, 1)).reshape(*shape, n_line, 3)
        i_n = np.maximum(
            np.abs(i_f[:, :, :n_line].sum(axis=1)) * model.br_ibase_f[:n_line],
            np.abs(i_t[:, :, :n_line].sum(axis=1)) * model.br_ibase_t[:n_line],
        )
        res["line_i_n_ka"] = i_n.reshape(*shape, n_line)
        res["line_loading_percent"] = (li.max(axis=1) / model.line_imax_ka * 100.0).reshape(*shape, n_line)
        hv, lv = a_f[:, :, n_line:], a_t[:, :, n_line:]
        res["trafo_i_hv_ka"] = np.transpose(hv, (0, 2, 1)).reshape(*shape, n_trafo, 3)
        res["trafo_i_lv_ka"] = np.transpose(lv, (0, 2, 1)).reshape(*shape, n_trafo, 3)
        ld = np.maximum(hv * model.trafo_vn_hv_kv, lv * model.trafo_vn_lv_kv) * _SQRT3 / model.trafo_sn_mva * 100.0
        res["trafo_loading_percent"] = (ld.max(axis=1) / model.trafo_rating_factor).reshape(*shape, n_trafo)
    return res


def _alloc(nb: int, *shapes: tuple[int, ...], dtype: Any = float) -> list[np.ndarray]:
    return [np.empty((nb, *shape), dtype=dtype) for shape in shapes]


def balanced_summary(
    plan: Any, v: np.ndarray, shape: tuple[int, ...], root_elems: np.ndarray, s_elem: np.ndarray, threads: bool
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Net-order voltages and the branch fields of :class:`BatchResult` of balanced solutions in one kernel call
    (:func:`~powercheck.powerflow.kernels.balanced_summary`; :func:`to_net_buses` and
    :func:`balanced_branch_results` are the same in NumPy, the reference of the tests).

    ``plan`` is the solver's per-model plan (:class:`powercheck.powerflow.solve._Plan`); ``v [nb, n]`` internal-
    order voltages; ``root_elems`` the columns of ``s_elem`` injected at the slack bus; ``threads``: the
    parallel kernel (else the serial one, same results).
    """
    nb = v.shape[0]
    nl, nt = plan.n_line, plan.n_trafo
    v_net = np.empty((nb, plan.nbus), dtype=complex)
    out = balanced_branch_arrays(nb, nl, nt)
    kernel = kernels.balanced_summary if threads else kernels.balanced_summary_serial
    kernel(v, plan.bus_pos, *plan.branch_args, *plan.root_args, root_elems, s_elem, plan.sn, v_net, *out)
    return batch_shaped(v_net, shape), balanced_branch_fields(out, shape)


def batch_shaped(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``arr`` (batch items first: ``(nb, ...)``) with its first axis as the batch ``shape``; ``arr`` itself when it
    has that shape already (one batch axis)."""
    target = (*shape, *arr.shape[1:])
    return arr if arr.shape == target else arr.reshape(target)


def balanced_branch_arrays(nb: int, nl: int, nt: int) -> tuple[np.ndarray, ...]:
    """Result arrays of the balanced kernels for ``nb`` items (``branch_out`` of
    :func:`~powercheck.powerflow.kernels.solve_balanced`; 0 items: no branch results): line from/to currents and
    loadings ``[nb, nl]``, transformer hv/lv currents and loadings ``[nb, nt]``, slack P and Q ``[nb]``."""
    return (
        np.empty((nb, nl)), np.empty((nb, nl)), np.empty((nb, nl)),
        np.empty((nb, nt)), np.empty((nb, nt)), np.empty((nb, nt)), np.empty(nb), np.empty(nb),
    )  # fmt: skip


def balanced_branch_fields(out: tuple[np.ndarray, ...], shape: tuple[int, ...]) -> dict[str, Any]:
    """:class:`BatchResult`'s branch fields from :func:`balanced_branch_arrays`, in the batch ``shape``."""
    li_f, li_t, l_ld, t_hv, t_lv, t_ld, eg_p, eg_q = (batch_shaped(a, shape) for a in out)
    return {
        "line_i_from_ka": li_f,
        "line_i_to_ka": li_t,
        "line_loading_percent": l_ld,
        "trafo_i_hv_ka": t_hv,
        "trafo_i_lv_ka": t_lv,
        "trafo_loading_percent": t_ld,
        "ext_grid_p_mw": eg_p,
        "ext_grid_q_mvar": eg_q,
    }


def unbalanced_summary(plan: Any, v_net: np.ndarray, shape: tuple[int, ...], threads: bool) -> dict[str, np.ndarray]:
    """:func:`unbalanced_branch_results` from the phase voltages in the net's bus order (``v_net [nb, n_net_bus,
    3]``, the solver's output), with the model's arrays prepared once (``plan``, see :func:`balanced_summary`)
    and the serial kernel unless ``threads``."""
    kernel = kernels.unbalanced_branch_summary if threads else kernels.unbalanced_branch_summary_serial
    return _unbalanced_branches(kernel, True, v_net, plan.branch_args_3ph, plan.n_line, plan.n_trafo, shape)


def _unbalanced_branches(kernel, net_order: bool, v, args: tuple, nl: int, nt: int, shape) -> dict[str, np.ndarray]:
    """Run an unbalanced branch-summary kernel (``args``: its branch and rating arrays) into new arrays, reshaped to
    the batch ``shape``."""
    out = unbalanced_branch_arrays(v.shape[0], nl, nt)
    kernel(net_order, v, *args, *out)
    return unbalanced_branch_fields(out, shape)


def unbalanced_branch_arrays(nb: int, nl: int, nt: int) -> list[np.ndarray]:
    """New output arrays of the unbalanced branch-summary kernels for ``nb`` items, ``nl`` lines, ``nt``
    transformers: ``line_i [nb, nl, 3], line_i_n [nb, nl], line_loading [nb, nl], trafo_i_hv, trafo_i_lv [nb, nt,
    3], trafo_loading [nb, nt]``."""
    return _alloc(nb, (nl, 3), (nl,), (nl,), (nt, 3), (nt, 3), (nt,))


def unbalanced_branch_fields(out, shape) -> dict[str, np.ndarray]:
    """The :class:`BatchResult3ph` branch fields of the arrays of :func:`unbalanced_branch_arrays`, in the batch
    ``shape``."""
    line_i, line_i_n, line_ld, t_hv, t_lv, t_ld = (batch_shaped(a, shape) for a in out)
    return {
        "line_i_ka": line_i,
        "line_i_n_ka": line_i_n,
        "line_loading_percent": line_ld,
        "trafo_i_hv_ka": t_hv,
        "trafo_i_lv_ka": t_lv,
        "trafo_loading_percent": t_ld,
    }
