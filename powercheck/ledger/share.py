"""One object per distinct value among the requests a long run's in-memory capacity ledger keeps.

The ledger state (:class:`~powercheck.ledger.state.CapacityState`) holds one
:class:`~powercheck.ledger.model.LedgerRequest` per decided notification for the whole run, and most requests repeat
values that others hold: the same reservation (components, appliance list, single-phase shares, demand after the
job), the same main device after the job, the same fuse rating. The functions here hand out the first object made for
a value instead, from bounded tables that are emptied when full (sharing is an economy, never a meaning: an object not
shared is only a copy).

A value is shared only with an object of the same type and the same digits -- an int never stands for an equal
float, -0.0 never for 0.0, and NaN (equal to nothing) is never shared -- so nothing a request is compared with,
written as or computed from changes. Shared objects are read-only: the requests are frozen, their tuples immutable,
and the ``device_after`` dicts (shared too) are only read (:func:`powercheck.rules.devices.device_of_record`, the
ledger's writers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable
from typing import TypeVar

from powercheck.ledger.model import Reservation

T = TypeVar("T")

MAX_ENTRIES = 1 << 16
"""Entries of a table before it is emptied (the objects already shared stay shared)."""

_VALUES: dict = {}
"""Value -> its first object: load components and their tuples, appliance lists, conditions, reservations."""
_FLOATS: dict[float, float] = {}
_INTS: dict[int, int] = {}
_MADE: dict = {}
"""Key -> the object made for it: reservations and devices by their stored JSON text, device records by device."""
_TABLES = (_VALUES, _FLOATS, _INTS, _MADE)


def _put(table: dict, key, value):
    if len(table) >= MAX_ENTRIES:
        table.clear()
    table[key] = value
    return value


def shared(value: T) -> T:
    """The first object equal to ``value`` (a hashable immutable value whose equality is exact: tuples of strings,
    load components and their tuples, appliance lists)."""
    got = _VALUES.get(value)
    return _put(_VALUES, value, value) if got is None else got


def exact(x) -> bool:
    """A float that equal floats can stand for: not NaN and not -0.0."""
    return type(x) is float and x == x and (x != 0.0 or math.copysign(1.0, x) > 0.0)


def reservation(value: Reservation) -> Reservation:
    """The first reservation equal to ``value`` whose numbers are the same floats (else ``value`` itself)."""
    if exact(value.s1_load_kva) and exact(value.s1_export_kva) and exact(value.demand_after_kw):
        return shared(value)
    return value


def rating(x: float | None) -> float | None:
    """The first float object equal to ``x`` (a fuse or KV rating; ints, NaN and numbers <= 0 are left as they are)."""
    if type(x) is not float or not x > 0.0:
        return x
    got = _FLOATS.get(x)
    return _put(_FLOATS, x, x) if got is None else got


def number(x: int | None) -> int | None:
    """The first int object equal to ``x`` (a bus number; CPython shares only -5..256 itself)."""
    if type(x) is not int:
        return x
    got = _INTS.get(x)
    return _put(_INTS, x, x) if got is None else got


def made(key: Hashable, make: Callable[[], T]) -> T:
    """The object made by ``make()`` for the first ``key`` equal to ``key`` (``make`` runs only for a new key; the
    key must determine the object exactly)."""
    got = _MADE.get(key)
    return _put(_MADE, key, make()) if got is None else got


def reservation_json(text: str) -> Reservation:
    """:meth:`Reservation.from_json` of a stored text, one object per distinct text."""
    return made(("reservation", text), lambda: Reservation.from_json(text))


def device_json(text: str | None) -> dict | None:
    """A stored device (JSON text; None or empty: none), one dict per distinct text (read-only)."""
    return made(("device", text), lambda: json.loads(text)) if text else None


def clear() -> None:
    """Empty every table (tests)."""
    for table in _TABLES:
        table.clear()
