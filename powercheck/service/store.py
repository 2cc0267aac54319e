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

    @property
    def journal_mode(self) -> str:
        with self._lock:
            return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

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
        keys = list(keys)
        out: dict[tuple[str, int], StoredDecision] = {}
        with self._lock:
            for i in range(0, len(keys), 400):
                chunk = keys[i : i + 400]
                where = " OR ".join("(notification_id = ? AND revision = ?)" for _ in chunk)
                params = [v for key in chunk for v in key]
                for row in self._conn.execute(f"{_SELECT} WHERE {where}", params):
                    stored = StoredDecision(*row)
                    out[(stored.notification_id, stored.revision)] = stored
        return out

    def put_many(
        self,
        decisions: list[Decision],
        client: str | None,
        requests: list[LedgerRequest | None] | None = None,
    ) -> list[tuple[StoredDecision, bool]]:
        """Store decisions (and the ledger requests they record) in one transaction.

        Returns, per decision, the stored row and whether it is this one. A key that already
        exists keeps its first decision: then the flag is False, the row is the earlier
        decision and its request is not written.
        """
        return self.put_groups([(decisions, client, requests)])[0]

    def put_groups(
        self, groups: list[tuple[list[Decision], str | None, list[LedgerRequest | None] | None]]
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
                        d.notification_id,
                        d.revision,
                        d.input_hash or "",
                        str(d.outcome),
                        d.policy_id,
                        d.policy_version,
                        d.policy_hash,
                        d.grid_model_version,
                        client,
                        now,
                        d.model_dump_json(),
                    )
                    for d in decisions
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
                for rows, client, requests in prepared:
                    self._conn.executemany(
                        "INSERT INTO decisions (notification_id, revision, input_hash, outcome, policy_id, "
                        "policy_version, policy_hash, grid_model_version, client, stored_at, decision_json) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (notification_id, revision) DO NOTHING",
                        rows,
                    )
                    stored = []
                    for written in rows:
                        row = self._conn.execute(
                            f"{_SELECT} WHERE notification_id = ? AND revision = ?", (written[0], written[1])
                        ).fetchone()
                        stored.append((StoredDecision(*row), row[-1] == written[-1]))
                    if requests is not None:
                        ours = [r for r, (_, mine) in zip(requests, stored) if r is not None and mine]
                        self.ledger.write(self._conn, ours, actor=client or "engine")
                    out.append(stored)
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
