"""Solvers of the batched radial power flow: :func:`run_batch` (balanced) and :func:`run_batch_3ph` (per phase).

Both share one pipeline: the power arguments are validated and brought to one batch shape
(:func:`_prepare`), turned into per-bus injections (balanced or per phase), solved by the
numba sweep of :mod:`powercheck.powerflow.kernels` on one thread or on all (:func:`_solve`,
same results either way), and returned as :class:`~powercheck.powerflow.results.BatchResult`
/ :class:`~powercheck.powerflow.results.BatchResult3ph` in pandapower's bus, line and
transformer order.
"""

from __future__ import annotations

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
    balanced_branch_results,
    raise_not_converged,
    to_net_buses,
    unbalanced_branch_results,
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


def _as_batch(name: str, value: Any, trailing: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float array of shape ``(..., *trailing)``, all finite; ValueError naming ``name``."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not a numeric array") from None
    nt = len(trailing)
    if arr.ndim < nt or arr.shape[arr.ndim - nt :] != trailing:
        want = ", ".join(str(t) for t in trailing)
        raise ValueError(f"{name}: expected shape (..., {want}), got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
        raise ValueError(f"{name}: contains NaN or infinite values (first at index {where})")
    return arr


class _Inputs:
    """Collects the optional power arrays and checks that their batch shapes agree."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] | None = None
        self.first: str | None = None

    def add(self, name: str, value: Any, trailing: tuple[int, ...]) -> np.ndarray | None:
        if value is None:
            return None
        arr = _as_batch(name, value, trailing)
        bshape = arr.shape[: arr.ndim - len(trailing)]
        if self.shape is None:
            self.shape, self.first = bshape, name
        elif bshape != self.shape:
            raise ValueError(f"{name}: batch shape {bshape} differs from {self.first}'s batch shape {self.shape}")
        return arr

    def flat(self, arr: np.ndarray | None, static: np.ndarray, trailing: tuple[int, ...]) -> np.ndarray:
        bshape = self.shape or ()
        nb = int(np.prod(bshape)) if bshape else 1
        if arr is None:
            return np.broadcast_to(static, (nb, *trailing))
        return arr.reshape((nb, *trailing))


def _common_inputs(model: RadialModel, kw: dict[str, Any], three_phase: bool):
    """Validate all power arguments (``kw`` by name, None = not given).

    Returns the batch shape, the number of items ``nb``, every power array flattened to
    ``(nb, ...)`` (omitted ones broadcast from the network's static values, or 0 for the bus
    injections) [MW], [Mvar], and the complex slack voltage per item [pu].
    """
    inp = _Inputs()
    el = model.elements
    nbus = len(model.bus_index)
    spec: list[tuple[str, str, str, tuple[int, ...]]] = [
        ("p_mw", "load", "p", (len(el["load"].index),)),
        ("q_mvar", "load", "q", (len(el["load"].index),)),
        ("sgen_p_mw", "sgen", "p", (len(el["sgen"].index),)),
        ("sgen_q_mvar", "sgen", "q", (len(el["sgen"].index),)),
        ("storage_p_mw", "storage", "p", (len(el["storage"].index),)),
        ("storage_q_mvar", "storage", "q", (len(el["storage"].index),)),
        ("asym_load_p_mw", "asymmetric_load", "p", (len(el["asymmetric_load"].index), 3)),
        ("asym_load_q_mvar", "asymmetric_load", "q", (len(el["asymmetric_load"].index), 3)),
        ("asym_sgen_p_mw", "asymmetric_sgen", "p", (len(el["asymmetric_sgen"].index), 3)),
        ("asym_sgen_q_mvar", "asymmetric_sgen", "q", (len(el["asymmetric_sgen"].index), 3)),
    ]
    bus_spec: list[tuple[str, tuple[int, ...]]] = (
        [
            ("bus_p_mw", (nbus, 3)),
            ("bus_q_mvar", (nbus, 3)),
            ("bus_delta_p_mw", (nbus, 3)),
            ("bus_delta_q_mvar", (nbus, 3)),
        ]
        if three_phase
        else [("bus_p_mw", (nbus,)), ("bus_q_mvar", (nbus,))]
    )
    raw: dict[str, np.ndarray | None] = {}
    for name, _, _, trailing in spec:
        raw[name] = inp.add(name, kw.get(name), trailing)
    for name, trailing in bus_spec:
        raw[name] = inp.add(name, kw.get(name), trailing)
    vm = kw.get("vm_pu_slack")
    vm_arr = None
    if vm is not None:
        vm_arr = np.asarray(vm, dtype=float)
        if inp.shape is None:
            inp.shape, inp.first = vm_arr.shape, "vm_pu_slack"
        elif vm_arr.shape not in (inp.shape, ()):
            raise ValueError(
                f"vm_pu_slack: shape {vm_arr.shape} differs from the batch shape {inp.shape} of {inp.first}"
            )
        if not np.isfinite(vm_arr).all() or (vm_arr <= 0).any():
            raise ValueError("vm_pu_slack: values must be finite and positive")
    flat: dict[str, np.ndarray] = {}
    for name, table, pq, trailing in spec:
        e = el[table]
        static = e.p_mw if pq == "p" else e.q_mvar
        flat[name] = inp.flat(raw[name], static, trailing)
    for name, trailing in bus_spec:
        flat[name] = inp.flat(raw[name], np.zeros(trailing), trailing)
    shape = inp.shape or ()
    nb = int(np.prod(shape)) if shape else 1
    if vm_arr is None:
        v_slack = np.full(nb, model.v_slack, dtype=complex)
    else:
        ang = np.angle(model.v_slack)
        v_slack = (np.broadcast_to(vm_arr, shape).reshape(nb) * np.exp(1j * ang)).astype(complex)
    return shape, nb, flat, v_slack


_PARALLEL_MIN_WORK = 200_000  # batch items x buses below which the serial kernel is used


def _use_threads(parallel: bool | None, nb: int, n_bus: int) -> bool:
    """Whether to run the threaded kernel: as asked, or (``None``) for large batches only."""
    if parallel is None:
        return nb >= 16 and nb * n_bus >= _PARALLEL_MIN_WORK
    return bool(parallel)


def _check_solver_args(tol: float, max_iter: int, errors: str) -> None:
    """ValueError naming the option unless ``tol`` > 0, ``max_iter`` >= 1 and ``errors`` is known."""
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol: must be a positive number, got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter: must be >= 1, got {max_iter!r}")
    if errors not in ("mask", "raise"):
        raise ValueError(f"errors: must be 'mask' or 'raise', got {errors!r}")


@dataclass(frozen=True)
class _Batch:
    """Validated solver inputs: batch shape, flattened power arrays, slack voltage per item."""

    shape: tuple[int, ...]
    nb: int
    flat: dict[str, np.ndarray]
    v_slack: np.ndarray
    given: frozenset[str]

    def has(self, *names: str) -> bool:
        """Whether any of the arguments ``names`` was given."""
        return any(name in self.given for name in names)


def _prepare(
    model: RadialModel, args: dict[str, Any], *, three_phase: bool, tol: float, max_iter: int, errors: str
) -> _Batch:
    """Check the solver options and the power arguments (``args``: the solver's arguments by name)."""
    _check_solver_args(tol, max_iter, errors)
    kw = {name: args[name] for name in _POWER_ARGS if name in args}
    shape, nb, flat, v_slack = _common_inputs(model, kw, three_phase=three_phase)
    return _Batch(shape, nb, flat, v_slack, frozenset(name for name, value in kw.items() if value is not None))


def _solve(
    batch: _Batch,
    threaded: Callable[..., None],
    serial: Callable[..., None],
    network: tuple[Any, ...],
    v_shape: tuple[int, ...],
    work: int,
    *,
    tol: float,
    max_iter: int,
    errors: str,
    parallel: bool | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a solver kernel pair on the batch; returns voltages (internal order), iterations, status.

    ``network`` are the kernel's leading arguments; ``work`` the buses per item that decide
    between the threaded and the serial kernel. With ``errors="raise"`` a non-converged item
    raises :class:`~powercheck.powerflow.results.PowerFlowNotConverged`.
    """
    v = np.empty(v_shape, dtype=complex)
    n_iter = np.zeros(batch.nb, dtype=np.int64)
    status = np.zeros(batch.nb, dtype=np.int64)
    solve = threaded if _use_threads(parallel, batch.nb, work) else serial
    solve(*network, float(tol), int(max_iter), v, n_iter, status)
    if errors == "raise":
        raise_not_converged(status, batch.shape, max_iter)
    return v, n_iter, status


def _result_fields(
    model: RadialModel, v_net: np.ndarray, n_iter: np.ndarray, status: np.ndarray, shape: tuple[int, ...]
) -> dict[str, Any]:
    """The fields shared by :class:`BatchResult` and :class:`BatchResult3ph`."""
    return {
        "v_pu": v_net,
        "converged": (status == kernels.STATUS_CONVERGED).reshape(shape),
        "n_iter": n_iter.reshape(shape),
        "status": status.reshape(shape),
        "bus_index": model.bus_index,
        "line_index": model.line_index,
        "trafo_index": model.trafo_index,
    }


def _balanced_injections(model: RadialModel, batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
    """Bus (internal) and consumed power [pu] of every PQ injection, per batch item: ``(elem_pos, s_elem)``."""
    flat, nb = batch.flat, batch.nb
    el = model.elements
    sn = model.sn_mva
    blocks: list[np.ndarray] = []
    pos: list[np.ndarray] = []
    for table, pn_, qn_ in (
        ("load", "p_mw", "q_mvar"),
        ("sgen", "sgen_p_mw", "sgen_q_mvar"),
        ("storage", "storage_p_mw", "storage_q_mvar"),
    ):
        e = el[table]
        if len(e.index):
            blocks.append(e.sign * (flat[pn_] + 1j * flat[qn_]) / sn)
            pos.append(e.pos)
    for table, pn_, qn_ in (
        ("asymmetric_load", "asym_load_p_mw", "asym_load_q_mvar"),
        ("asymmetric_sgen", "asym_sgen_p_mw", "asym_sgen_q_mvar"),
    ):
        e = el[table]
        if len(e.index):
            blocks.append(e.sign * (flat[pn_].sum(axis=2) + 1j * flat[qn_].sum(axis=2)) / sn)
            pos.append(e.pos)
    if batch.has("bus_p_mw", "bus_q_mvar"):
        blocks.append((flat["bus_p_mw"] + 1j * flat["bus_q_mvar"]) / sn)
        pos.append(model.bus_pos)
    s_elem = np.ascontiguousarray(np.concatenate(blocks, axis=1)) if blocks else np.zeros((nb, 0), complex)
    elem_pos = np.concatenate(pos).astype(np.int64) if pos else np.zeros(0, np.int64)
    return elem_pos, s_elem


def _unbalanced_injections(model: RadialModel, batch: _Batch) -> tuple[np.ndarray, ...]:
    """Phase-to-neutral and phase-to-phase injections [pu on ``sn_mva/3``] per batch item.

    Returns ``(s_wye, wye_pos, wye_phase, s_delta, delta_pos, delta_pair)``.

    Raises
    ------
    RadialModelError
        Phase-to-neutral power given for an unearthed (IT) network.
    """
    flat, nb = batch.flat, batch.nb
    el = model.elements
    sn = model.sn_mva
    w_blk: list[np.ndarray] = []
    w_pos: list[np.ndarray] = []
    w_ph: list[np.ndarray] = []
    d_blk: list[np.ndarray] = []
    d_pos: list[np.ndarray] = []
    d_ph: list[np.ndarray] = []

    def add(s3: np.ndarray, pos: np.ndarray, delta: np.ndarray) -> None:
        # s3: [nb, rows, 3] per-phase power [pu on sn/3]
        for sel, blk, pl, phl in ((~delta, w_blk, w_pos, w_ph), (delta, d_blk, d_pos, d_ph)):
            if not sel.any():
                continue
            part = s3[:, sel, :]  # [nb, r, 3]
            r = part.shape[1]
            blk.append(np.transpose(part, (0, 2, 1)).reshape(nb, 3 * r))
            pl.append(np.tile(pos[sel], 3))
            phl.append(np.repeat(np.arange(3, dtype=np.int64), r))

    for table, pn_, qn_ in (
        ("load", "p_mw", "q_mvar"),
        ("sgen", "sgen_p_mw", "sgen_q_mvar"),
        ("storage", "storage_p_mw", "storage_q_mvar"),
    ):
        e = el[table]
        if len(e.index):
            s = e.sign * (flat[pn_] + 1j * flat[qn_]) / sn  # (P/3) / (sn/3)
            add(np.repeat(s[:, :, None], 3, axis=2), e.pos, e.delta)
    for table, pn_, qn_ in (
        ("asymmetric_load", "asym_load_p_mw", "asym_load_q_mvar"),
        ("asymmetric_sgen", "asym_sgen_p_mw", "asym_sgen_q_mvar"),
    ):
        e = el[table]
        if len(e.index):
            add(e.sign * 3.0 * (flat[pn_] + 1j * flat[qn_]) / sn, e.pos, e.delta)
    nbus = len(model.bus_index)
    if batch.has("bus_p_mw", "bus_q_mvar"):
        add(3.0 * (flat["bus_p_mw"] + 1j * flat["bus_q_mvar"]) / sn, model.bus_pos, np.zeros(nbus, bool))
    if batch.has("bus_delta_p_mw", "bus_delta_q_mvar"):
        add(3.0 * (flat["bus_delta_p_mw"] + 1j * flat["bus_delta_q_mvar"]) / sn, model.bus_pos, np.ones(nbus, bool))
    if model.zero_seq_floating and w_pos:
        wp = np.concatenate(w_pos)
        wb = np.concatenate(w_blk, axis=1)
        used = (wp >= 0) & np.any(wb != 0, axis=0)
        if used.any():
            raise RadialModelError(
                "phase-to-neutral power given for an unearthed (IT) network: only phase-to-phase (delta) loads "
                "are possible"
            )

    def cat(blk: list[np.ndarray], pl: list[np.ndarray], phl: list[np.ndarray]):
        if not blk:
            return np.zeros((nb, 0), complex), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return (
            np.ascontiguousarray(np.concatenate(blk, axis=1)),
            np.concatenate(pl).astype(np.int64),
            np.concatenate(phl).astype(np.int64),
        )

    s_wye, wye_pos, wye_phase = cat(w_blk, w_pos, w_ph)
    s_del, del_pos, del_pair = cat(d_blk, d_pos, d_ph)
    return s_wye, wye_pos, wye_phase, s_del, del_pos, del_pair


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
    batch = _prepare(model, locals(), three_phase=False, tol=tol, max_iter=max_iter, errors=errors)
    elem_pos, s_elem = _balanced_injections(model, batch)
    n = model.n_bus
    v, n_iter, status = _solve(
        batch,
        kernels.solve_balanced,
        kernels.solve_balanced_serial,
        (model.parent, model.m[1], model.kup[1], model.ycp[1], elem_pos, s_elem, batch.v_slack),
        (batch.nb, n),
        n,
        tol=tol,
        max_iter=max_iter,
        errors=errors,
        parallel=parallel,
    )
    res = balanced_branch_results(model, v, batch.shape, elem_pos, s_elem) if branch_results else {}
    v_net = to_net_buses(model, v, 1).reshape(*batch.shape, len(model.bus_index))
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
    batch = _prepare(model, locals(), three_phase=True, tol=tol, max_iter=max_iter, errors=errors)
    s_wye, wye_pos, wye_phase, s_del, del_pos, del_pair = _unbalanced_injections(model, batch)
    n = model.n_bus
    v, n_iter, status = _solve(
        batch,
        kernels.solve_unbalanced,
        kernels.solve_unbalanced_serial,
        (model.parent, model.m, model.kup, model.ycp)
        + (wye_pos, wye_phase, s_wye, del_pos, del_pair, s_del, batch.v_slack),
        (batch.nb, 3, n),
        3 * n,
        tol=tol,
        max_iter=max_iter,
        errors=errors,
        parallel=parallel,
    )
    res = unbalanced_branch_results(model, v, batch.shape) if branch_results else {}
    v_net = np.empty((v.shape[0], len(model.bus_index), 3), dtype=complex)
    kernels.phases_to_net_buses(np.ascontiguousarray(v), np.asarray(model.bus_pos, dtype=np.int64), v_net)
    v_net = v_net.reshape(*batch.shape, len(model.bus_index), 3)
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
