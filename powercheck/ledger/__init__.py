"""The capacity ledger: requests decided but not yet part of the grid model, and the capacity they reserve.

* :mod:`~powercheck.ledger.model` -- statuses, legal transitions, reservations;
* :mod:`~powercheck.ledger.store` -- the durable ledger (SQLite);
* :mod:`~powercheck.ledger.state` -- the reservations applied to a region's arrays, read by the rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from powercheck.ledger.model import (
    ACTIVE,
    OPEN,
    TRANSITIONS,
    IllegalTransition,
    LedgerRequest,
    RequestStatus,
    Reservation,
    ReservedComponent,
    UnknownRequest,
)
from powercheck.ledger.state import CapacityState

if TYPE_CHECKING:
    from powercheck.ledger.store import LedgerStore

__all__ = [
    "ACTIVE",
    "OPEN",
    "TRANSITIONS",
    "CapacityState",
    "IllegalTransition",
    "LedgerRequest",
    "LedgerStore",
    "RequestStatus",
    "Reservation",
    "ReservedComponent",
    "UnknownRequest",
    "open_ledger",
]


def __getattr__(name: str) -> Any:
    # the SQLite store (and sqlite3) is imported when first used: a screening run without --ledger needs neither
    if name == "LedgerStore":
        from powercheck.ledger.store import LedgerStore

        return LedgerStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_ledger(
    path: str | Path | None, region, *, valid_days: float, now: datetime | None = None
) -> tuple[LedgerStore, CapacityState]:
    """Open (or create) a ledger file -- in memory when ``path`` is None -- and build its state on ``region``.

    Approvals older than ``valid_days`` expire first.
    """
    from powercheck.ledger.store import LedgerStore

    store = LedgerStore(path if path is not None else ":memory:")
    store.expire(now or datetime.now(UTC), valid_days)
    return store, CapacityState.of(region, store.list())
