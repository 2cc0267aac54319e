"""The ledger's view of a notification (conflicts at its metering point, the active requests there, its revision)
read from the state's per-point indexes, against a walk over every request at the point."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState, LedgerRequest, RequestStatus
from powercheck.ledger.model import ACTIVE, APPROVED
from powercheck.models import replaced
from powercheck.rules.demand import MAX_CONFLICTS_LISTED, _ledger_view, _request_params
from powercheck.texts import msg


def _walked(n, state, preceding, revisions):
    """The view as a walk over every request at the point: the state's (in id order), then ``preceding``; each
    open one from another (or an unknown) installer, or approved by the same installer with a main fuse other than
    ``n``'s fuse before, is a conflict; the first MAX_CONFLICTS_LISTED are named, the rest counted."""
    conflicts, count = [], 0
    own = state.requests.get(n.notification_id)
    if revisions and own is not None and own.revision > n.revision:
        params = _request_params(own)
        params["newer"] = params.pop("revision")
        conflicts.append(msg("conflict_revision", **params, revision=n.revision))
        count += 1
    at_point = sorted((r for r in state.requests.values() if r.metering_point_id == n.metering_point_id),
                      key=lambda r: r.notification_id)  # fmt: skip
    others = [r for r in [*at_point, *preceding] if r.notification_id != n.notification_id]
    for other in others:
        if not other.open:
            continue
        if other.installer_id is None or other.installer_id != n.installer_id:
            count += 1
            if len(conflicts) < MAX_CONFLICTS_LISTED:
                conflicts.append(msg("conflict_open", **_request_params(other)))
        elif (
            other.status in APPROVED
            and other.fuse_after_a is not None
            and n.main_fuse_before_a is not None
            and abs(other.fuse_after_a - n.main_fuse_before_a) > 1e-9
        ):
            count += 1
            if len(conflicts) < MAX_CONFLICTS_LISTED:
                conflicts.append(msg("conflict_fuse", **_request_params(other), before=n.main_fuse_before_a,
                                     after=other.fuse_after_a))  # fmt: skip
    if count > len(conflicts):
        conflicts.append(msg("conflict_more", count=count - len(conflicts)))
    active = [o for o in others if o.status in ACTIVE]
    return tuple(conflicts), count, active, own.revision if own is not None else None


def _dumped(view):
    conflicts, count, active, revision = view
    return [m.model_dump() for m in conflicts], count, active, revision


def test_ledger_view_from_the_point_indexes_equals_the_walk(demo_region):
    """Random ledgers at a few metering points (every status, three installers and unknown ones, main fuses that
    match or contradict the notification's fuse before, its own earlier or newer revision, requests decided
    earlier in the batch): the conflicts named (in the same order), their count, the active requests and the
    revision are those of the walk -- also past the bound of named conflicts."""
    rng = np.random.default_rng(8)
    statuses = list(RequestStatus)
    points, installers = ["MP-A", "MP-B"], [None, "I-1", "I-2", "I-3"]
    fuses = [None, 25.0, 32.0, 40.0]
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    template = next(n for n in notes if n.main_fuse_before_a is not None)
    base = LedgerRequest(notification_id="X", revision=1, metering_point_id="MP-A", network_id=None, bus=None,
                         status=RequestStatus.PENDING)  # fmt: skip
    seen_more = seen_fuse = seen_revision = 0
    for trial in range(300):
        state = CapacityState.empty(demo_region)
        size = int(rng.integers(0, 16))
        for _ in range(size):
            state.put(replace(
                base, notification_id=f"R{int(rng.integers(0, 40)):02d}", revision=int(rng.integers(1, 4)),
                metering_point_id=str(rng.choice(points)), status=statuses[int(rng.integers(len(statuses)))],
                installer_id=installers[int(rng.integers(len(installers)))],
                fuse_after_a=fuses[int(rng.integers(len(fuses)))],
            ))  # fmt: skip
        own_id = str(rng.choice([f"R{k:02d}" for k in range(40)]))  # often one of the ledger's
        n = replaced(template, {
            "notification_id": own_id, "revision": int(rng.integers(1, 4)), "metering_point_id": str(rng.choice(points)),
            "installer_id": installers[1 + int(rng.integers(3))], "main_fuse_before_a": fuses[1 + int(rng.integers(3))],
        })  # fmt: skip
        preceding = [replace(base, notification_id=f"P{k}", metering_point_id=n.metering_point_id,
                             status=statuses[int(rng.integers(len(statuses)))],
                             installer_id=installers[int(rng.integers(len(installers)))],
                             fuse_after_a=fuses[int(rng.integers(len(fuses)))])
                     for k in range(int(rng.integers(0, 4)))]  # fmt: skip
        if rng.random() < 0.2:
            preceding.append(replace(base, notification_id=own_id, metering_point_id=n.metering_point_id))
        for revisions in (True, False):
            got = _ledger_view(n, state, preceding, revisions)
            want = _walked(n, state, preceding, revisions)
            assert _dumped(got) == _dumped(want), (trial, revisions)
            keys = [m.key for m in got[0]]
            seen_more += "conflict_more" in keys
            seen_fuse += "conflict_fuse" in keys
            seen_revision += "conflict_revision" in keys
    assert seen_more and seen_fuse and seen_revision  # the trials reached every kind of message
