"""The durable ledger: requests and their status history in SQLite.

The store works on a connection it is given (the service shares one with its decision store,
so that a decision and its request are committed in one transaction) or opens its own
(``":memory:"`` for a batch without a ledger file). Status changes follow
:data:`~powercheck.ledger.model.TRANSITIONS`; every change is kept in ``request_events``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from powercheck.ledger import share
from powercheck.ledger.model import (
    APPROVED,
    TRANSITIONS,
    IllegalTransition,
    LedgerRequest,
    RequestStatus,
    UnknownRequest,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    notification_id   TEXT PRIMARY KEY,
    revision          INTEGER NOT NULL,
    metering_point_id TEXT    NOT NULL,
    network_id        TEXT,
    bus               INTEGER,
    status            TEXT    NOT NULL,
    job_type          TEXT,
    installer_id      TEXT,
    submitted_at      TEXT,
    decided_at        TEXT,
    fuse_after_a      REAL,
    reservation_json  TEXT    NOT NULL,
    conditions_json   TEXT    NOT NULL DEFAULT '[]',
    device_json       TEXT,
    kv_after_a        REAL,
    updated_at        TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_mp ON requests (metering_point_id);
CREATE INDEX IF NOT EXISTS requests_network ON requests (network_id, status);
CREATE TABLE IF NOT EXISTS request_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT    NOT NULL,
    revision        INTEGER NOT NULL,
    from_status     TEXT,
    to_status       TEXT    NOT NULL,
    at              TEXT    NOT NULL,
    actor           TEXT,
    note            TEXT
);
CREATE INDEX IF NOT EXISTS request_events_id ON request_events (notification_id);
"""

_COLUMNS = (
    "notification_id, revision, metering_point_id, network_id, bus, status, job_type, installer_id, "
    "submitted_at, decided_at, fuse_after_a, reservation_json, conditions_json, device_json, kv_after_a"
)


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _row(row: tuple) -> LedgerRequest:
    return LedgerRequest(
        notification_id=row[0],
        revision=int(row[1]),
        metering_point_id=row[2],
        network_id=None if row[3] is None else sys.intern(row[3]),  # repeated values: one object each
        bus=None if row[4] is None else share.number(int(row[4])),
        status=RequestStatus(row[5]),
        job_type=None if row[6] is None else sys.intern(row[6]),
        installer_id=None if row[7] is None else sys.intern(row[7]),
        submitted_at=_dt(row[8]),
        decided_at=_dt(row[9]),
        fuse_after_a=share.rating(row[10]),
        reservation=share.reservation_json(row[11]),  # repeated values: one object each (powercheck.ledger.share)
        conditions=share.shared(tuple(json.loads(row[12] or "[]"))),
        device_after=share.device_json(row[13]),
        kv_after_a=share.rating(row[14]),
    )


class LedgerStore:
    """Requests and their history in SQLite; thread-safe through one lock per connection."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        connection: sqlite3.Connection | None = None,
        lock: threading.Lock | None = None,
    ):
        if connection is None:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
            if str(path) != ":memory:":
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=30000")
            self._owns = True
        else:
            self._owns = False
        self.path = str(path)
        self._conn = connection
        self._lock = lock or threading.Lock()
        with self._lock:
            self._conn.executescript(SCHEMA)
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(requests)")}
            if "device_json" not in columns:  # a ledger written before devices were stored
                self._conn.execute("ALTER TABLE requests ADD COLUMN device_json TEXT")
            if "kv_after_a" not in columns:  # a ledger written before KV changes were stored
                self._conn.execute("ALTER TABLE requests ADD COLUMN kv_after_a REAL")

    def close(self) -> None:
        if self._owns:
            with self._lock:
                self._conn.close()

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction on the store's connection (the caller may write its own rows too)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ reads
    def get(self, notification_id: str) -> LedgerRequest:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE notification_id = ?", (notification_id,)
            ).fetchone()
        if row is None:
            raise UnknownRequest(notification_id)
        return _row(row)

    def list(
        self, *, network_id: str | None = None, status: RequestStatus | str | None = None, limit: int | None = None
    ) -> list[LedgerRequest]:
        where, params = [], []
        if network_id is not None:
            where.append("network_id = ?")
            params.append(network_id)
        if status is not None:
            where.append("status = ?")
            params.append(str(status))
        sql = f"SELECT {_COLUMNS} FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY submitted_at, notification_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            return [_row(r) for r in self._conn.execute(sql, params)]

    def events(self, notification_id: str) -> list[dict]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT revision, from_status, to_status, at, actor, note FROM request_events "
                "WHERE notification_id = ? ORDER BY id",
                (notification_id,),
            ).fetchall()
        keys = ("revision", "from_status", "to_status", "at", "actor", "note")
        return [dict(zip(keys, r)) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])

    # ------------------------------------------------------------------ writes (inside a transaction)
    def write(self, conn: sqlite3.Connection, requests: Iterable[LedgerRequest], *, actor: str = "engine") -> None:
        """Insert or replace requests (a later revision replaces an earlier one), with an event each.

        Call inside :meth:`transaction` (or the caller's own transaction on the same connection).
        """
        now = datetime.now(UTC).isoformat()
        requests = list(requests)
        ids = list(dict.fromkeys(r.notification_id for r in requests))
        old: dict[str, tuple[int, str]] = {}  # one read for all (each SQLite call lets other threads run)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for nid, revision, status in conn.execute(
                f"SELECT notification_id, revision, status FROM requests WHERE notification_id IN ({marks})", chunk
            ):
                old[nid] = (int(revision), status)
        rows, events = [], []
        for r in requests:
            before = old.get(r.notification_id)
            if before is not None and before[0] > r.revision:
                continue  # an older revision never replaces a newer one
            rows.append(
                (
                    r.notification_id,
                    r.revision,
                    r.metering_point_id,
                    r.network_id,
                    r.bus,
                    r.status.value,
                    r.job_type,
                    r.installer_id,
                    _ts(r.submitted_at),
                    _ts(r.decided_at),
                    r.fuse_after_a,
                    r.reservation.to_json(),
                    json.dumps(list(r.conditions)),
                    json.dumps(r.device_after, sort_keys=True) if r.device_after else None,
                    r.kv_after_a,
                    now,
                )
            )
            events.append(
                (r.notification_id, r.revision, before[1] if before else None, r.status.value, now, actor, "decided")
            )
            old[r.notification_id] = (r.revision, r.status.value)  # a later row of the same id sees this one
        if rows:
            conn.executemany(
                f"INSERT OR REPLACE INTO requests ({_COLUMNS}, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO request_events (notification_id, revision, from_status, to_status, at, actor, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                events,
            )

    def put(self, requests: Iterable[LedgerRequest], *, actor: str = "engine") -> None:
        """Write requests in their own transaction."""
        with self.transaction() as conn:
            self.write(conn, requests, actor=actor)

    def set_status(
        self,
        notification_id: str,
        status: RequestStatus | str,
        *,
        actor: str | None = None,
        note: str | None = None,
        at: datetime | None = None,
    ) -> tuple[LedgerRequest, LedgerRequest]:
        """Move a request to ``status``; returns (before, after). Raises UnknownRequest / IllegalTransition."""
        wanted = RequestStatus(status)
        at = at or datetime.now(UTC)
        with self.transaction() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE notification_id = ?", (notification_id,)
            ).fetchone()
            if row is None:
                raise UnknownRequest(notification_id)
            before = _row(row)
            if wanted not in TRANSITIONS[before.status]:
                raise IllegalTransition(notification_id, before.status, wanted)
            conn.execute(
                "UPDATE requests SET status = ?, updated_at = ? WHERE notification_id = ?",
                (wanted.value, at.isoformat(), notification_id),
            )
            conn.execute(
                "INSERT INTO request_events (notification_id, revision, from_status, to_status, at, actor, note) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (notification_id, before.revision, before.status.value, wanted.value, at.isoformat(), actor, note),
            )
        return before, _replace_status(before, wanted)

    def expire(self, now: datetime, valid_days: float) -> list[str]:
        """Approvals older than ``valid_days`` (and not built) become expired; returns their ids."""
        limit = now - timedelta(days=valid_days)
        expired = []
        for r in self.list():
            if r.status in APPROVED and r.decided_at is not None and r.decided_at < limit:
                self.set_status(
                    r.notification_id, RequestStatus.EXPIRED, actor="ledger", note="approval lapsed", at=now
                )
                expired.append(r.notification_id)
        return expired


def _replace_status(request: LedgerRequest, status: RequestStatus) -> LedgerRequest:
    from dataclasses import replace

    return replace(request, status=status)
