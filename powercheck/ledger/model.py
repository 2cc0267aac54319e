"""Requests in the capacity ledger: statuses, legal transitions and what a request reserves.

A request is a decided notification (one per ``notification_id``; a later revision replaces
the earlier one). Its :class:`Reservation` -- the load it adds at peak and the export it adds
at low load, as components on a connection -- is held against the grid while the request is
*active* (approved, approved with conditions, built but not yet in the grid model), so that
the next notification is assessed on the network as it will be.

==========================  ==========================================================
status                      meaning
==========================  ==========================================================
``pending``                 decided as escalate: a case handler has to look at it
``approved``                auto-approved, or approved by a case handler
``approved_with_conditions``approved with measures the installer must carry out
``built``                   completion notice received; not yet in the grid model
``closed``                  built and now part of the grid model (its load is in the
                            customer index / network): no longer reserved
``cancelled``               withdrawn by the installer or the grid owner
``expired``                 an approval not built within the policy's validity period
==========================  ==========================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    BUILT = "built"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ACTIVE = frozenset({RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS, RequestStatus.BUILT})
"""Statuses whose reservation is applied to the grid before the next assessment."""
OPEN = frozenset({RequestStatus.PENDING, RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS})
"""Statuses of a request still in progress at its metering point (a second one there is a conflict)."""
APPROVED = frozenset({RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS})
"""Statuses that expire after the policy's validity period when not built."""

TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.PENDING: frozenset(
        {
            RequestStatus.APPROVED,
            RequestStatus.APPROVED_WITH_CONDITIONS,
            RequestStatus.CANCELLED,
            RequestStatus.EXPIRED,
        }
    ),
    RequestStatus.APPROVED: frozenset({RequestStatus.BUILT, RequestStatus.CANCELLED, RequestStatus.EXPIRED}),
    RequestStatus.APPROVED_WITH_CONDITIONS: frozenset(
        {RequestStatus.BUILT, RequestStatus.CANCELLED, RequestStatus.EXPIRED}
    ),
    RequestStatus.BUILT: frozenset({RequestStatus.CLOSED}),
    RequestStatus.CLOSED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
    RequestStatus.EXPIRED: frozenset(),
}


class IllegalTransition(ValueError):
    """A status change the ledger does not allow; names both states."""

    def __init__(self, notification_id: str, current: RequestStatus, wanted: RequestStatus):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final state)"
        super().__init__(
            f"request {notification_id}: cannot change status from {current.value} to {wanted.value} "
            f"(allowed from {current.value}: {allowed})"
        )
        self.current = current
        self.wanted = wanted


class UnknownRequest(KeyError):
    """No request with this id in the ledger."""

    def __str__(self) -> str:
        return f"no request {self.args[0]!r} in the ledger"


@dataclass(frozen=True, slots=True)
class ReservedComponent:
    """One load (or export) component of a reservation."""

    conn: int
    """Connection code (:mod:`powercheck.quality.codes`)."""
    p_kw: float
    """Active power [kW]."""
    cos_phi: float
    """Power factor [-]."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What an active request adds to the grid: load at peak and export at low load."""

    load: tuple[ReservedComponent, ...] = ()
    export: tuple[ReservedComponent, ...] = ()
    s1_load_kva: float = 0.0
    """Single-phase share of the load [kVA] (unbalance)."""
    s1_export_kva: float = 0.0
    """Single-phase share of the export [kVA]."""
    demand_after_kw: float = 0.0
    """The customer's coincident demand after the job [kW] (power accounting at the metering point)."""
    supply_phases: str | None = None
    """The service's phases the request approved ("1ph", "3ph"; None: not recorded)."""
    appliances: tuple[tuple[str, float, str, int], ...] = ()
    """The appliances the request approved: (kind, rated kW, connection, quantity) -- what a completion notice
    is compared with."""

    @property
    def empty(self) -> bool:
        return not self.load and not self.export

    def to_json(self) -> str:
        return json.dumps(
            {
                "load": [[c.conn, c.p_kw, c.cos_phi] for c in self.load],
                "export": [[c.conn, c.p_kw, c.cos_phi] for c in self.export],
                "s1_load_kva": self.s1_load_kva,
                "s1_export_kva": self.s1_export_kva,
                "demand_after_kw": self.demand_after_kw,
                "supply_phases": self.supply_phases,
                "appliances": [list(a) for a in self.appliances],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Reservation:
        data: dict[str, Any] = json.loads(text)
        return cls(
            load=tuple(ReservedComponent(int(c), float(p), float(f)) for c, p, f in data.get("load", ())),
            export=tuple(ReservedComponent(int(c), float(p), float(f)) for c, p, f in data.get("export", ())),
            s1_load_kva=float(data.get("s1_load_kva", 0.0)),
            s1_export_kva=float(data.get("s1_export_kva", 0.0)),
            demand_after_kw=float(data.get("demand_after_kw", 0.0)),
            supply_phases=data.get("supply_phases"),
            appliances=tuple((str(k), float(kw), str(conn), int(q)) for k, kw, conn, q in data.get("appliances", ())),
        )


@dataclass(frozen=True, slots=True)
class LedgerRequest:
    """One request of the ledger (slots: a long run's in-memory ledger holds one per recorded request)."""

    notification_id: str
    revision: int
    metering_point_id: str
    network_id: str | None
    bus: int | None
    status: RequestStatus
    job_type: str | None = None
    installer_id: str | None = None
    submitted_at: datetime | None = None
    decided_at: datetime | None = None
    fuse_after_a: float | None = None
    device_after: dict | None = None
    """The main protection after the job: type, rating_a, characteristic / settings (None: not recorded)."""
    kv_after_a: float | None = None
    """The short-circuit protection (KV) a kv_change sets [A] (None: the job does not change the KV)."""
    reservation: Reservation = field(default_factory=Reservation)
    conditions: tuple[str, ...] = ()
    """Measures an approval with conditions requires (rule texts)."""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def open(self) -> bool:
        return self.status in OPEN

    def describe(self) -> str:
        who = f" by installer {self.installer_id}" if self.installer_id else ""
        return f"request {self.notification_id} (revision {self.revision}, {self.status.value}{who})"
