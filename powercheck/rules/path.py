"""The feeder path from the transformer to each connection point, with the voltage along it.

Per bus of the path: the base case (peak load; low load with generation), the base case with
the ledger's reserved drop/rise, and with the request too. The request's change at a bus of the
path is its drop across that bus's Thevenin impedance
(:func:`powercheck.quality.superposition.paths_voltage_change`); at the connection point the
constant-power solution the voltage checks use.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import numpy as np

from powercheck.ledger.state import CapacityState
from powercheck.models import PathPoint, construct_rows
from powercheck.quality.superposition import paths_voltage_change
from powercheck.rules.context import GridView
from powercheck.rules.demand import DemandCase
from powercheck.rules.evaluate import AddedPower, Evaluation, bus_zeros


def _changes(
    at: np.ndarray, bus_rows: np.ndarray, added: AddedPower, q_sign: float, grid: GridView
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paths of the notifications ``at`` (at ``bus_rows``) in one kernel call: their buses' rows and the
    voltage change ``added`` makes at each, concatenated, and each path's length."""
    arr = grid.arrays
    indptr = np.asarray(added.component_indptr, dtype=np.int64)
    return paths_voltage_change(
        bus_rows, arr.bus_parent_row, arr.rk1_min, arr.xk1_min, arr.rk0_min, arr.xk0_min, arr.u_ll_v, indptr[at],
        indptr[at + 1], added.component_conn, added.component_current_a, added.component_cos_phi, q_sign,
    )  # fmt: skip


PATH_COLUMNS = tuple(PathPoint.model_fields)
"""The columns of a path, in :class:`PathPoint` field order."""


class PathRows(Sequence):
    """The path of one notification as columns (``columns[name]``: one array per :data:`PATH_COLUMNS`);
    reads as a sequence of :class:`PathPoint` (made when read, so a batch never builds one object per bus)."""

    __slots__ = ("columns",)

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns

    def __len__(self) -> int:
        return int(self.columns["bus"].shape[0])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        c = self.columns
        return PathPoint.model_construct(
            bus=int(c["bus"][i]), **{name: float(c[name][i]) for name in PATH_COLUMNS if name != "bus"}
        )

    def __iter__(self):
        """The points in order: each column read into Python values once (``tolist``: ints and floats), one
        :class:`PathPoint` a bus made without the per-field checks of ``model_construct``
        (:func:`~powercheck.models.construct_rows`; the decision of a small batch lists every path point of every
        notification)."""
        c = self.columns
        columns = [c[name].astype(np.int64 if name == "bus" else float, copy=False).tolist() for name in PATH_COLUMNS]
        return iter(construct_rows(PathPoint, PATH_COLUMNS, zip(*columns)))

    def __eq__(self, other) -> bool:
        return list(self) == list(other)


EMPTY_PATH = PathRows({name: np.zeros(0, dtype=np.int64 if name == "bus" else float) for name in PATH_COLUMNS})


def voltage_paths(
    cases: Sequence[DemandCase],
    ev: Evaluation,
    grid: GridView,
    state: CapacityState | None = None,
    only: Container[int] | None = None,
) -> list[PathRows]:
    """Per notification the path points as columns (empty where the notification is not evaluable, or not in
    ``only`` when given)."""
    arr = grid.arrays
    drop = state.bus_drop_percent if state is not None else bus_zeros(grid)
    rise = state.bus_rise_percent if state is not None else bus_zeros(grid)
    out: list[PathRows] = [EMPTY_PATH] * len(cases)
    kept = [
        k for k, case in enumerate(cases)
        if case.evaluable and case.location is not None and (only is None or k in only)
    ]  # fmt: skip
    if not kept:
        return out
    # every kept path's buses at once (the same element-wise operations as path by path), then one view a path
    at = np.array(kept, dtype=np.int64)
    bus_rows = np.asarray(ev.point.bus_row, dtype=np.int64)[at]
    rows, dv_load, counts = _changes(at, bus_rows, ev.load, 1.0, grid)
    _, dv_export, _ = _changes(at, bus_rows, ev.export, -1.0, grid)
    ends = np.cumsum(counts)
    peak_base = arr.vm_peak_pu[rows].astype(float, copy=False)
    low_base = arr.vm_low_pu[rows].astype(float, copy=False)
    peak_ledger = np.asarray(peak_base - drop[rows] / 100.0, dtype=float)
    low_ledger = np.asarray(low_base + rise[rows] / 100.0, dtype=float)
    peak = np.asarray(peak_ledger - dv_load / 100.0, dtype=float)
    low = np.asarray(low_ledger + dv_export / 100.0, dtype=float)
    peak[ends - 1] = ev.v_peak_pu[kept]  # at the connection point (each path's last bus): the checks' solution
    low[ends - 1] = ev.v_low_pu[kept]
    columns = {
        "bus": arr.bus_ids[rows].astype(np.int64, copy=False),
        "distance_km": arr.path_length_km[rows].astype(float, copy=False),
        "v_peak_base_pu": peak_base,
        "v_peak_ledger_pu": peak_ledger,
        "v_peak_pu": peak,
        "v_low_base_pu": low_base,
        "v_low_ledger_pu": low_ledger,
        "v_low_pu": low,
    }
    begin = 0
    for k, end in zip(kept, ends.tolist()):
        out[k] = PathRows({name: column[begin:end] for name, column in columns.items()})
        begin = end
    return out
