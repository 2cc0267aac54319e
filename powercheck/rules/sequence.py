"""Deciding notifications one after the other on the capacity ledger, vectorised where they cannot interact.

Records are taken in ``submitted_at`` order (then input order); each decision is recorded in
the ledger state before the next record is assessed, so an approval reserves capacity for
everything after it. Records on different networks cannot affect each other, so they are
decided together in *waves*: a wave assesses, with one pass of the vectorised stages, every
pending record; walking the wave in order, a record is final unless an earlier record of the
wave changed the reserved capacity of its network -- then it goes to the next wave. Every wave
finalises at least one record per network, and usually many (escalations and incomplete
records reserve nothing). A wave takes only the first few pending records of each network, as many
as the network's recent waves finalised (twice that), so a network whose approvals change its
capacity often is not assessed over and over in full.

Requests at the same metering point conflict when they come from different installers; every
complete record becomes an open request, so each record of a wave is assessed with the earlier
records of the wave at its point as open requests (``preceding``). A record whose conflict
rested on an earlier record that turned out incomplete (and so records nothing) is decided
again. Such a record (answered reject_incomplete or request_info, which does not depend on the
ledger) is taken as recording nothing in the next waves, so the records after it at its point
are not decided again once per such record (a point with many of them took a wave each); should
it record a request after all, the records after it at its point are decided again.

A completion notice (stage ``completion``) is compared with its approved request in the ledger (which stays
in place while it is assessed); when it matches, the request is marked built, else nothing is recorded.

A notification already in the ledger is assessed without its own reservation, alone on its
network in its wave: a higher revision replaces the ledger's request, the same revision is a
replay (the ledger keeps its row, as a case handler may have changed its status), a lower
one is a conflict.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial

from powercheck.ledger import share
from powercheck.ledger.model import LedgerRequest, RequestStatus, Reservation, ReservedComponent
from powercheck.ledger.share import shared
from powercheck.ledger.state import CapacityState
from powercheck.models import Decision, Notification, Outcome, Stage
from powercheck.rules.completeness import installed_appliances
from powercheck.rules.decide import DecisionBatch
from powercheck.rules.demand import DemandCase
from powercheck.rules.devices import Device
from powercheck.texts import render

INITIAL_WINDOW = 16
"""Records of one network the first wave assesses."""
MIN_WINDOW = 4

STATUS_OF_OUTCOME = {
    Outcome.AUTO_APPROVE: RequestStatus.APPROVED,
    Outcome.APPROVED_WITH_CONDITIONS: RequestStatus.APPROVED_WITH_CONDITIONS,
    Outcome.ESCALATE: RequestStatus.PENDING,
}
"""The ledger status a decision gives its request (reject_incomplete records nothing)."""


def request_of(
    case: DemandCase, outcome: Outcome, decided_at: datetime, conditions: tuple[str, ...] = ()
) -> LedgerRequest | None:
    """The ledger request of a decided case (for an approval with conditions: its conditioned variant), or
    None when the decision records none."""
    if case.completion is not None:  # a completion notice marks the approved request built, or records nothing
        approved = case.completion.approved
        if outcome is Outcome.AUTO_APPROVE and approved is not None:
            return replace(approved, status=RequestStatus.BUILT, decided_at=decided_at)
        return None
    status = STATUS_OF_OUTCOME.get(outcome)
    if status is None:
        return None
    n = case.notification
    loc = case.location
    demand_after_kw = case.accounting.demand_after_kw if case.accounting is not None else 0.0
    load = tuple((c.conn, c.p_kw, c.cos_phi) for c in case.loads)
    export = tuple((c.conn, c.p_kw, c.cos_phi) for c in case.exports)
    appliances = installed_appliances(n)

    def reserved() -> Reservation:
        return Reservation(
            load=shared(tuple(shared(ReservedComponent(*c)) for c in load)),
            export=shared(tuple(shared(ReservedComponent(*c)) for c in export)),
            s1_load_kva=case.s1_load_kva,
            s1_export_kva=case.s1_export_kva,
            demand_after_kw=demand_after_kw,
            supply_phases=n.supply_phases.value,
            appliances=shared(appliances),
        )

    if share.exact(case.s1_load_kva) and share.exact(case.s1_export_kva) and share.exact(demand_after_kw):
        # one reservation per distinct value, looked up by its plain values (no objects made for a known one)
        key = ("reservation", load, export, case.s1_load_kva, case.s1_export_kva, demand_after_kw,
               n.supply_phases.value, appliances)  # fmt: skip
        reservation = share.made(key, reserved)
    else:
        reservation = reserved()
    return LedgerRequest(
        notification_id=n.notification_id,
        revision=n.revision,
        metering_point_id=n.metering_point_id,
        network_id=loc.network_id if loc is not None else None,
        bus=share.number(loc.bus) if loc is not None else None,
        status=status,
        job_type=n.job_type.value,
        installer_id=_interned(n.installer_id),
        submitted_at=n.submitted_at,
        decided_at=decided_at,
        fuse_after_a=share.rating(case.fuse_after_a),
        device_after=_device_record(case.device),
        kv_after_a=share.rating(case.kv_a) if case.kv_changed else None,
        reservation=reservation,
        conditions=shared(conditions),
    )


def _device_record(device: Device | None) -> dict | None:
    """The ledger's record of the main device after the job, one (read-only) dict per device and rating."""
    if device is None:
        return None
    if type(device.rating_a) is not float or not device.rating_a > 0.0:
        return device.record()
    spec = device.spec  # a frozen model: its field values are its value
    return share.made(("device record", type(spec), tuple(spec.__dict__.values()), device.rating_a), device.record)


def _interned(text: str | None) -> str | None:
    """One string object per installer id for the requests a long run keeps in its in-memory ledger."""
    return None if text is None else sys.intern(text)


@dataclass(frozen=True)
class DecisionRef:
    """Row ``k`` of a decided batch, with the ledger status its decision got (None: no ledger); made into a
    :class:`Decision` only when asked (:mod:`powercheck.columnar` writes it from the batch's columns)."""

    batch: DecisionBatch
    k: int
    ledger_status: str | None = None

    def decision(self, lang: str = "en") -> Decision:
        return self.batch.decision(self.k, lang, ledger_status=self.ledger_status)


class Assessment:
    """Decisions of a batch (input order) and the ledger requests they recorded (None: nothing recorded).

    ``entries`` holds per record a :class:`DecisionRef` or a :class:`Decision` (one made outside a batch);
    :attr:`decisions` makes them all :class:`Decision` objects on first use.
    """

    def __init__(
        self,
        decisions: list[Decision] | None = None,
        requests: list[LedgerRequest | None] | None = None,
        *,
        entries: list | None = None,
        language: str = "en",
    ):
        if entries is None:
            entries = list(decisions or [])
        self.entries = entries
        self.requests = requests if requests is not None else [None] * len(entries)
        self.language = language
        self._decisions = decisions

    @property
    def decisions(self) -> list[Decision]:
        if self._decisions is None:
            self._decisions = [e.decision(self.language) if isinstance(e, DecisionRef) else e for e in self.entries]
        return self._decisions


def _walk(
    wave, preceding, stash, notifications, capacity_key, unlisted, batch: DecisionBatch
) -> tuple[list[tuple], set[tuple]]:
    """The records of a wave that are final on its ``batch``, in wave order, as (row, record, the request it records
    or None, the ledger's request it replaces or None), and the capacity keys they change. A record is not final
    when an earlier record of the wave changed its network's capacity, when its conflict rested on an earlier
    record of the wave that records nothing, or when an earlier record at its point left out of the ``preceding``
    lists (``unlisted``: expected to record nothing) records a request after all. Reads the ledger state, changes
    nothing."""
    out = []
    touched: set[tuple] = set()
    unrecorded: set[str] = set()  # ids of wave records that made no request
    surprised: set[str] = set()  # points where an unlisted record made a request
    for pos, i in enumerate(wave):
        note = notifications[i]
        key = capacity_key(i)
        if (
            key in touched
            or note.metering_point_id in surprised
            or any(p.notification_id in unrecorded for p in preceding[pos])
        ):
            continue  # decided again in the next wave, on the changed state
        conditions = tuple(render(m) for m in batch.conditions[pos]) if batch.conditions else ()
        request = request_of(batch.reserved_case(pos), batch.outcome[pos], batch.decided_at, conditions)
        old = stash.get(i)
        if old is not None and (request is None or old.revision >= note.revision):
            request = None  # replay, older revision or nothing to record: the ledger keeps its request
        elif request is not None:
            if request.active and not request.reservation.empty and note.stage is not Stage.COMPLETION:
                touched.add(key)
        if request is None:
            unrecorded.add(note.notification_id)
        elif i in unlisted:
            surprised.add(note.metering_point_id)
        if old is not None and old.active and request is not None:
            touched.add(key)
        out.append((pos, i, request, old))
    return out, touched


_NO_REQUEST = frozenset({Outcome.REJECT_INCOMPLETE, Outcome.REQUEST_INFO})
"""Outcomes that record no request: a notification incomplete or lacking information, found before its grid checks and
the ledger (:func:`~powercheck.rules.decide.decide`)."""


def _doomed(walk: Callable[[DecisionBatch], tuple[list[tuple], set[tuple]]], batch: DecisionBatch) -> set[int]:
    """Rows of a wave's batch, decided before its measures, that are decided again in the next wave whatever their
    measures: the rows not final on it. Measures only turn escalations (pending requests, which reserve nothing)
    into approvals with conditions (which may reserve capacity; every other row records the same or nothing, as
    before), so they can only add records that change their network's capacity, never make final a record that is
    not final without them."""
    return set(range(len(batch))) - {pos for pos, _, _, _ in walk(batch)[0]}


def order_key(n: Notification, i: int) -> tuple:
    """Submitted order (then input position); records without a time last."""
    at = n.submitted_at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at is None, at or datetime.min.replace(tzinfo=UTC), i)


def assess_in_order(
    notifications: Sequence[Notification],
    network_of: Sequence[str | None],
    state: CapacityState,
    assess_wave: Callable[[list[Notification], list, Callable[[DecisionBatch], set[int]]], DecisionBatch],
    language: str = "en",
) -> Assessment:
    """Decide ``notifications`` in submitted order on ``state``, recording every decision in it.

    ``network_of[i]`` is the network of record ``i``'s metering point (None when unknown).
    ``assess_wave(notes, preceding, doomed)`` decides a wave (:meth:`~powercheck.rules.engine.Assessor.assess_batch`);
    ``doomed(batch)`` gives the rows of its batch before measures that this wave will not keep.
    """
    n = len(notifications)
    pending = sorted(range(n), key=lambda i: order_key(notifications[i], i))
    decisions: list[DecisionRef | None] = [None] * n
    requests: list[LedgerRequest | None] = [None] * n

    def capacity_key(i: int) -> tuple:
        net = network_of[i]
        return ("net", net) if net is not None else ("mp", notifications[i].metering_point_id)

    def as_open(i: int) -> LedgerRequest:
        n = notifications[i]
        return LedgerRequest(
            notification_id=n.notification_id,
            revision=n.revision,
            metering_point_id=n.metering_point_id,
            network_id=network_of[i],
            bus=None,
            status=RequestStatus.PENDING,
            job_type=n.job_type.value,
            installer_id=n.installer_id,
            submitted_at=n.submitted_at,
        )

    def nid_of(i: int) -> str:
        return notifications[i].notification_id

    window: dict[tuple, int] = {}  # records of a network taken into the next wave (adapts to its approval rate)
    # records decided in a wave and not kept whose outcome there records no request whatever the ledger holds: the
    # next wave's records after them at their point are decided without them as open requests; when one records a
    # request after all, those records are decided again (_walk)
    records_nothing: set[int] = set()
    while pending:
        wave, stash, blocked = [], {}, set()
        taken: dict[tuple, int] = {}
        earlier_ids: set[str] = set()  # ids of undecided records before this one (in submitted order)
        for i in pending:
            nid = notifications[i].notification_id
            waits = notifications[i].stage is Stage.COMPLETION and nid in earlier_ids
            earlier_ids.add(nid)
            if waits:
                continue  # a completion notice waits until the notification it completes is decided
            key = capacity_key(i)
            if key in blocked:
                continue
            if key[0] == "net":
                if taken.get(key, 0) >= window.get(key, INITIAL_WINDOW):
                    continue
                taken[key] = taken.get(key, 0) + 1
            nid = notifications[i].notification_id
            if nid in state.requests and notifications[i].stage is not Stage.COMPLETION:
                if any(capacity_key(j) == key for j in wave):
                    blocked.add(key)
                    continue
                stash[i] = state.drop(nid)
                blocked.add(key)
            wave.append(i)
        at_point: dict[str, list[LedgerRequest]] = {}  # the open requests of the wave's records so far, per point
        preceding = []
        unlisted = set()
        for i in wave:
            earlier = at_point.setdefault(notifications[i].metering_point_id, [])
            preceding.append(earlier.copy())
            if i in records_nothing:
                unlisted.add(i)  # taken as recording nothing, as last time: no open request for the records after it
            else:
                earlier.append(as_open(i))  # one per record, shared by the lists of the records after it
        walk = partial(_walk, wave, preceding, stash, notifications, capacity_key, unlisted)
        batch = assess_wave([notifications[i] for i in wave], preceding, partial(_doomed, walk))
        final: dict[tuple, int] = {}
        finals, touched_capacity = walk(batch)
        for pos, i, request, old in finals:
            note = notifications[i]
            key = capacity_key(i)
            if request is not None:
                state.put(request)
            elif old is not None:
                state.put(old)  # replay, older revision or nothing to record: the ledger keeps its request
            if request is None and old is None and note.stage is Stage.COMPLETION and nid_of(i) in state.requests:
                old = state.requests[nid_of(i)]  # a completion that marks nothing: the request keeps its status
            status = request.status.value if request is not None else (old.status.value if old else None)
            decisions[i] = DecisionRef(batch, pos, status)
            requests[i] = request
            final[key] = final.get(key, 0) + 1
        for pos, i in enumerate(wave):
            if decisions[i] is None:  # decided again in the next wave
                if batch.outcome[pos] in _NO_REQUEST:
                    records_nothing.add(i)
                else:
                    records_nothing.discard(i)
        for key, n_taken in taken.items():
            # a network whose capacity changed mid-wave gets a window twice what became final; else it doubles
            done = final.get(key, 0)
            window[key] = max(MIN_WINDOW, 2 * done) if key in touched_capacity else 2 * max(n_taken, 1)
        pending = [i for i in pending if decisions[i] is None]
    return Assessment(entries=decisions, requests=requests, language=language)
