"""Durable decision store: SQLite in WAL mode.

One row per (notification_id, revision) with the input hash, the policy and grid-model
versions and the full decision JSON. Writes are committed (``synchronous=FULL``) before
the HTTP response is sent, so a decision the client received is on disk; a batch commits
chunk by chunk, so a crash mid-batch keeps every chunk already decided and a retry of the
batch replays them.

Idempotency: storing a decision for a key that exists returns the stored row instead
(``INSERT ... ON CONFLICT DO NOTHING`` and a read in the same transaction); the caller
compares input hashes to tell a replay from a conflicting resubmission.

The capacity ledger lives in the same database (:attr:`DecisionStore.ledger`, on the same
connection): a decision and the request it records are committed in one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from powercheck.decision_json import DecisionRecord, record_of
from powercheck.ledger.model import LedgerRequest
from powercheck.ledger.store import LedgerStore
from powercheck.models import Decision

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    notification_id    TEXT    NOT NULL,
    revision           INTEGER NOT NULL,
    input_hash         TEXT    NOT NULL,
    outcome            TEXT    NOT NULL,
    policy_id          TEXT    NOT NULL,
    policy_version     TEXT    NOT NULL,
    policy_hash        TEXT    NOT NULL,
    grid_model_version TEXT,
    client             TEXT,
    stored_at          TEXT    NOT NULL,
    decision_json      TEXT    NOT NULL,
    PRIMARY KEY (notification_id, revision)
);
CREATE INDEX IF NOT EXISTS decisions_outcome ON decisions (outcome);
"""

_SELECT = (
    "SELECT notification_id, revision, input_hash, outcome, policy_version, grid_model_version, client, "
    "stored_at, decision_json FROM decisions"
)
"""The columns of :class:`StoredDecision`, in its field order."""


@dataclass(frozen=True)
class StoredDecision:
    notification_id: str
    revision: int
    input_hash: str
    outcome: str
    policy_version: str
    grid_model_version: str | None
    client: str | None
    stored_at: str
    decision_json: str


class DecisionStore:
    """Thread-safe SQLite decision store (one connection, serialised writes)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(SCHEMA)
        self.ledger = LedgerStore(self.path, connection=self._conn, lock=self._lock)
        self._readers = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []

    @property
    def journal_mode(self) -> str:
        with self._lock:
            return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            for con in self._reader_conns:
                con.close()
            self._reader_conns.clear()

    def get(self, notification_id: str, revision: int) -> StoredDecision | None:
        with self._lock:
            row = self._conn.execute(
                f"{_SELECT} WHERE notification_id = ? AND revision = ?", (notification_id, revision)
            ).fetchone()
        return StoredDecision(*row) if row else None

    def latest(self, notification_id: str) -> StoredDecision | None:
        """The stored decision with the highest revision of a notification."""
        with self._lock:
            row = self._conn.execute(
                f"{_SELECT} WHERE notification_id = ? ORDER BY revision DESC LIMIT 1", (notification_id,)
            ).fetchone()
        return StoredDecision(*row) if row else None

    def get_many(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], StoredDecision]:
        with self._lock:
            return _select_many(self._conn, list(keys))

    def get_committed(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], StoredDecision]:
        """:meth:`get_many` on a read-only connection of the calling thread: committed rows only, and never waiting
        for the store lock (WAL readers do not wait for the writer), so a lookup is not held up by a group commit's
        fsync. A row is visible here as soon as its transaction's ``COMMIT`` has returned."""
        con = getattr(self._readers, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0, check_same_thread=False)
            con.execute("PRAGMA busy_timeout=30000")
            self._readers.con = con
            with self._lock:
                self._reader_conns.append(con)
        return _select_many(con, list(keys))

    def put_many(
        self,
        decisions: list[Decision | DecisionRecord],
        client: str | None,
        requests: list[LedgerRequest | None] | None = None,
    ) -> list[tuple[StoredDecision, bool]]:
        """Store decisions (and the ledger requests they record) in one transaction.

        A decision is a :class:`Decision` (written as its ``model_dump_json``) or a
        :class:`~powercheck.decision_json.DecisionRecord` (its JSON made from the decided batch's columns, the same
        text without the Decision: what the service hands in).

        Returns, per decision, the stored row and whether it is this one. A key that already
        exists keeps its first decision: then the flag is False, the row is the earlier
        decision and its request is not written.
        """
        return self.put_groups([(decisions, client, requests)])[0]

    def put_groups(
        self, groups: list[tuple[list[Decision | DecisionRecord], str | None, list[LedgerRequest | None] | None]]
    ) -> list[list[tuple[StoredDecision, bool]]]:
        """Several callers' :meth:`put_many` in one transaction (group commit): one commit, one fsync, for all.

        Either every group is committed or none (the exception propagates); each group's rows are written in
        order, the result per group as :meth:`put_many` returns it.
        """
        now = datetime.now(UTC).isoformat()
        prepared = [
            (
                [
                    (
                        r.notification_id,
                        r.revision,
                        r.input_hash or "",
                        r.outcome,
                        r.policy_id,
                        r.policy_version,
                        r.policy_hash,
                        r.grid_model_version,
                        client,
                        now,
                        r.json,
                    )
                    for r in map(record_of, decisions)
                ],
                client,
                requests,
            )
            for decisions, client, requests in groups
        ]
        out: list[list[tuple[StoredDecision, bool]]] = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # one read of the keys that exist, one insert of the new rows, one ledger write per client: every
                # SQLite call gives the GIL to the engine thread, and getting it back can take a switch interval
                keys = list(dict.fromkeys((w[0], w[1]) for rows, _, _ in prepared for w in rows))
                existing = _select_many(self._conn, keys)
                inserts = []
                for rows, _, _ in prepared:
                    stored = []
                    for w in rows:
                        key = (w[0], w[1])
                        row = existing.get(key)
                        if row is None:  # ours: the row as it is written
                            row = existing[key] = StoredDecision(w[0], w[1], w[2], w[3], w[5], w[7], w[8], w[9], w[10])
                            inserts.append(w)
                            stored.append((row, True))
                        else:  # the key was stored before (or earlier in this transaction): that row stays
                            stored.append((row, False))
                    out.append(stored)
                self._conn.executemany(
                    "INSERT INTO decisions (notification_id, revision, input_hash, outcome, policy_id, "
                    "policy_version, policy_hash, grid_model_version, client, stored_at, decision_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    inserts,
                )
                runs: list[tuple[str, list[LedgerRequest]]] = []  # consecutive groups of one client: one write
                for (_, client, requests), stored in zip(prepared, out):
                    if requests is not None:
                        ours = [r for r, (_, mine) in zip(requests, stored) if r is not None and mine]
                        actor = client or "engine"
                        if runs and runs[-1][0] == actor:
                            runs[-1][1].extend(ours)
                        else:
                            runs.append((actor, ours))
                for actor, ours in runs:
                    self.ledger.write(self._conn, ours, actor=actor)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return out

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])

    def _reader(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)

    def count_unlocked(self) -> int:
        """Decisions stored, read on a connection of its own: WAL readers never wait for the store lock."""
        con = self._reader()
        try:
            return int(con.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])
        finally:
            con.close()

    def journal_mode_unlocked(self) -> str:
        con = self._reader()
        try:
            return str(con.execute("PRAGMA journal_mode").fetchone()[0])
        finally:
            con.close()

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _select_many(con: sqlite3.Connection, keys: list[tuple[str, int]]) -> dict[tuple[str, int], StoredDecision]:
    out: dict[tuple[str, int], StoredDecision] = {}
    for i in range(0, len(keys), 400):
        chunk = keys[i : i + 400]
        where = " OR ".join("(notification_id = ? AND revision = ?)" for _ in chunk)
        params = [v for key in chunk for v in key]
        for row in con.execute(f"{_SELECT} WHERE {where}", params):
            stored = StoredDecision(*row)
            out[(stored.notification_id, stored.revision)] = stored
    return out
