"""The grid as it will be: the reservations of every active request applied to the region's arrays.

:class:`CapacityState` keeps, per line and transformer, the current the active requests add
(at peak and at low load with export) and, per bus, the voltage change and unbalance they add
(superposition over the radial tree, :func:`powercheck.quality.superposition.add_injection`).
The rule stages read it so that every check sees the network with the approved-but-not-built
requests in place; applying or removing one request costs one pass over its network's buses.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from heapq import merge

import numpy as np

from powercheck.ledger.model import LedgerRequest, Reservation, ReservedComponent
from powercheck.quality.superposition import add_injection
from powercheck.quality.voltage import line_current_a


@dataclass
class CapacityState:
    """Reserved capacity of the active requests of a region (arrays indexed like the region's arrays)."""

    arrays: object
    """The region's :class:`RegionArrays`."""
    bus_index: dict[tuple[str, int], int]
    """(network id, pandapower bus) -> bus row."""
    network_ids: list[str]
    line_peak_a: np.ndarray
    """Current the active requests add to every line at peak [A] (worst phase)."""
    line_low_a: np.ndarray
    """Export current they add to every line at low load [A]."""
    trafo_peak_a: np.ndarray
    trafo_low_a: np.ndarray
    bus_drop_percent: np.ndarray
    """Voltage drop they add at every bus at peak [%]."""
    bus_rise_percent: np.ndarray
    """Voltage rise their export adds at every bus at low load [%]."""
    bus_vuf_peak_percent: np.ndarray
    """Unbalance their single-phase load adds at every bus [%]."""
    bus_vuf_low_percent: np.ndarray
    """Unbalance their single-phase export adds at every bus [%]."""
    requests: dict[str, LedgerRequest] = field(default_factory=dict)
    """Every request the state knows, by notification id."""
    applied: dict[str, int] = field(default_factory=dict)
    """Notification id -> bus row of every request whose reservation is applied."""
    by_mp: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Metering point -> notification ids of its requests, in id order (any status; a tuple, as most points have
    one)."""
    active_by_mp: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Metering point -> notification ids of its active requests, in id order (what the site and the power
    accounting at the point read, without walking the point's pending ones)."""
    open_by_mp: dict[str, dict[str | None, tuple[str, ...]]] = field(default_factory=dict)
    """Metering point -> installer id (None: unknown) -> notification ids of the open requests, in id order: the
    ledger's conflicts (open requests of other installers) are found and counted from these, not by walking every
    request at the point."""
    version: int = 0
    """Bumped on every change of the reserved capacity."""
    _bounds: np.ndarray = field(default=None, repr=False)
    _journals: list[list] = field(default_factory=list, repr=False)
    """Open journals (:meth:`begin`): each records (notification id, request before) of every change."""
    _torn: bool = field(default=False, repr=False)
    """A reservation's application raised part-way: the arrays need rebuilding on rollback."""

    @classmethod
    def empty(cls, region) -> CapacityState:
        arr = region.arrays
        n_bus, n_line, n_trafo = arr.bus_ids.shape[0], arr.line_ids.shape[0], arr.trafo_ids.shape[0]
        net_ids = list(region.network_order)
        index = {(net_ids[int(k)], int(b)): row for row, (k, b) in enumerate(zip(arr.network_index, arr.bus_ids))}
        counts = np.bincount(arr.network_index, minlength=len(net_ids))
        bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(
            arrays=arr,
            bus_index=index,
            network_ids=net_ids,
            line_peak_a=np.zeros(n_line),
            line_low_a=np.zeros(n_line),
            trafo_peak_a=np.zeros(n_trafo),
            trafo_low_a=np.zeros(n_trafo),
            bus_drop_percent=np.zeros(n_bus),
            bus_rise_percent=np.zeros(n_bus),
            bus_vuf_peak_percent=np.zeros(n_bus),
            bus_vuf_low_percent=np.zeros(n_bus),
            _bounds=bounds,
        )

    @classmethod
    def of(cls, region, requests) -> CapacityState:
        state = cls.empty(region)
        for request in requests:
            state.put(request)
        return state

    # ------------------------------------------------------------------ queries
    def bus_row(self, network_id: str | None, bus: int | None) -> int:
        if network_id is None or bus is None:
            return -1
        return self.bus_index.get((network_id, int(bus)), -1)

    def at(self, metering_point_id: str, *, excluding: str | None = None) -> list[LedgerRequest]:
        """Requests at a metering point (other than ``excluding``), by notification id."""
        requests = self.requests
        return [requests[i] for i in self.by_mp.get(metering_point_id, ()) if i != excluding]

    def active_at(self, metering_point_id: str, *, excluding: str | None = None) -> list[LedgerRequest]:
        """The active requests at a metering point (other than ``excluding``), by notification id: :meth:`at`'s
        requests whose status is active."""
        requests = self.requests
        return [requests[i] for i in self.active_by_mp.get(metering_point_id, ()) if i != excluding]

    def _open_of_others(self, metering_point_id: str, installer: str | None) -> list[tuple[str, ...]]:
        """The id tuples of the open requests at the point of every installer but ``installer`` (None: every
        installer; requests of an unknown installer always count)."""
        by_installer = self.open_by_mp.get(metering_point_id)
        if by_installer is None:
            return []
        return [ids for who, ids in by_installer.items() if installer is None or who != installer]

    def open_count(self, metering_point_id: str, *, excluding: str | None = None, installer: str | None = None) -> int:
        """Open requests at a metering point other than ``excluding``'s, not counting those of ``installer`` (None:
        none left out; requests of an unknown installer always count)."""
        n = sum(map(len, self._open_of_others(metering_point_id, installer)))
        own = self.requests.get(excluding) if excluding is not None and n else None
        if own is not None and own.open and own.metering_point_id == metering_point_id:
            n -= installer is None or own.installer_id != installer
        return n

    def open_ids(self, metering_point_id: str, *, excluding: str | None = None, installer: str | None = None):
        """The ids :meth:`open_count` counts, in id order (an iterator)."""
        groups = self._open_of_others(metering_point_id, installer)
        ids = groups[0] if len(groups) == 1 else merge(*groups)
        return (i for i in ids if i != excluding) if excluding is not None else iter(ids)

    # ------------------------------------------------------------------ journals
    def begin(self) -> list:
        """Start recording changes, so that :meth:`rollback` can undo them (journals nest)."""
        journal: list = []
        self._journals.append(journal)
        return journal

    def commit(self, journal: list) -> None:
        """Stop recording into ``journal`` and keep its changes."""
        self._close(journal)

    def _close(self, journal: list) -> None:
        # by identity: two journals with the same entries (e.g. both empty) are equal lists
        self._journals = [j for j in self._journals if j is not journal]

    def rollback(self, journal: list) -> None:
        """Undo the changes recorded in ``journal`` (newest first) and close it.

        Costs what the journal's changes cost, not the size of the ledger. If applying a reservation raised
        part-way, the arrays are rebuilt from the restored requests (the only case that touches them all).
        """
        self._close(journal)
        held, self._journals = self._journals, []  # the undo is no change of its own
        try:
            for notification_id, before in reversed(journal):
                self.drop(notification_id)
                if before is not None:
                    self.put(before)
        finally:
            self._journals = held
        if self._torn:
            self._rebuild()

    def _record(self, notification_id: str, before: LedgerRequest | None) -> None:
        for journal in self._journals:
            journal.append((notification_id, before))

    def _rebuild(self) -> None:
        for arr in (self.line_peak_a, self.line_low_a, self.trafo_peak_a, self.trafo_low_a, self.bus_drop_percent,
                    self.bus_rise_percent, self.bus_vuf_peak_percent, self.bus_vuf_low_percent):  # fmt: skip
            arr[:] = 0.0
        self._torn = False
        for notification_id, row in self.applied.items():
            self._apply(row, self.requests[notification_id].reservation, +1.0)

    # ------------------------------------------------------------------ changes
    def put(self, request: LedgerRequest) -> None:
        """Record ``request``, replacing an earlier one with the same notification id."""
        if self._journals:
            self._record(request.notification_id, self.requests.get(request.notification_id))
        self._drop(request.notification_id)
        nid = request.notification_id
        self.requests[nid] = request
        mp = request.metering_point_id
        self.by_mp[mp] = _inserted(self.by_mp.get(mp, ()), nid)
        if request.active:
            self.active_by_mp[mp] = _inserted(self.active_by_mp.get(mp, ()), nid)
        if request.open:
            by_installer = self.open_by_mp.setdefault(mp, {})
            by_installer[request.installer_id] = _inserted(by_installer.get(request.installer_id, ()), nid)
        if request.active and not request.reservation.empty:
            row = self.bus_row(request.network_id, request.bus)
            if row >= 0 and not self.arrays.bus_problem[row]:  # nothing can be applied where the grid model fails
                self._apply(row, request.reservation, +1.0)
                self.applied[request.notification_id] = row

    def drop(self, notification_id: str) -> LedgerRequest | None:
        """Forget a request (its reservation is taken off the grid)."""
        if self._journals and notification_id in self.requests:
            self._record(notification_id, self.requests[notification_id])
        return self._drop(notification_id)

    def _drop(self, notification_id: str) -> LedgerRequest | None:
        old = self.requests.pop(notification_id, None)
        if old is None:
            return None
        mp = old.metering_point_id
        _remove(self.by_mp, mp, notification_id)
        if old.active:
            _remove(self.active_by_mp, mp, notification_id)
        if old.open:
            by_installer = self.open_by_mp[mp]
            _remove(by_installer, old.installer_id, notification_id)
            if not by_installer:
                del self.open_by_mp[mp]
        row = self.applied.pop(notification_id, None)
        if row is not None:
            self._apply(row, old.reservation, -1.0)
        return old

    def _apply(self, row: int, reservation: Reservation, sign: float) -> None:
        try:
            self._add(row, reservation, sign)
        except BaseException:
            self._torn = True  # some arrays may hold part of it: a rollback rebuilds them
            raise

    def _add(self, row: int, reservation: Reservation, sign: float) -> None:
        arr = self.arrays
        net = int(arr.network_index[row])
        lo, hi = int(self._bounds[net]), int(self._bounds[net + 1])
        for components, q_sign, s1, lines, trafos, dv, vuf in (
            (reservation.load, 1.0, reservation.s1_load_kva, self.line_peak_a, self.trafo_peak_a,
             self.bus_drop_percent, self.bus_vuf_peak_percent),
            (reservation.export, -1.0, reservation.s1_export_kva, self.line_low_a, self.trafo_low_a,
             self.bus_rise_percent, self.bus_vuf_low_percent),
        ):  # fmt: skip
            if not components:
                continue
            conn, p_kw, cos = _columns(components)
            current = line_current_a(p_kw, cos, conn, np.full(conn.shape[0], arr.u_ll_v[row]))
            add_injection(
                row, lo, hi, arr.bus_parent_row, arr.rk1_min, arr.xk1_min, arr.rk0_min, arr.xk0_min, arr.u_ll_v,
                conn, current, cos, np.full(conn.shape[0], q_sign), float(s1), arr.path_indptr, arr.path_lines,
                arr.trafo_row, sign, lines, trafos, dv, vuf,
            )  # fmt: skip
        self.version += 1


def _inserted(ids: tuple[str, ...], nid: str) -> tuple[str, ...]:
    """``ids`` (in order) with ``nid`` in its place."""
    k = bisect_left(ids, nid)
    return ids[:k] + (nid,) + ids[k:]


def _remove(index: dict, key, nid: str) -> None:
    """``nid`` taken out of ``index[key]``; the key dropped when nothing is left."""
    ids = index.get(key)
    if ids is None:
        return
    rest = tuple(i for i in ids if i != nid)
    if rest:
        index[key] = rest
    else:
        del index[key]


def _columns(components: tuple[ReservedComponent, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array([c.conn for c in components], dtype=np.int64),
        np.array([c.p_kw for c in components], dtype=float),
        np.array([c.cos_phi for c in components], dtype=float),
    )
