"""Group commit of the service's decisions (issue 13).

A decision is taken under the service's engine lock (the capacity ledger is shared) and its rows are handed to a
:class:`GroupCommit`; the engine lock is then released, so the next request is decided while this one's rows are
written. The first waiter that finds no transaction in progress becomes the leader: it takes every entry handed in
so far and writes them in one SQLite transaction (:meth:`~powercheck.service.store.DecisionStore.put_groups`, one
commit and one fsync with ``synchronous=FULL`` for all); the others wait for the transaction that holds their entry.
:meth:`GroupCommit.wait` returns only after that transaction has committed, so a response is never sent for a
decision that is not on disk.

Entries are committed in the order they were handed in (the order their decisions were taken on the ledger). When a
transaction fails, its entries and every entry handed in after it (decided on a ledger state that included the
failed ones) fail with its exception, and the committer is *poisoned* until the engine-lock holder has rebuilt the
ledger from the database (:meth:`GroupCommit.needs_reload` / :meth:`GroupCommit.reloaded`); :meth:`submit` refuses
entries meanwhile (returns None), so no decision taken on the lost state is ever written.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from powercheck.decision_json import DecisionRecord
from powercheck.ledger.model import LedgerRequest
from powercheck.models import Decision
from powercheck.service.store import DecisionStore, StoredDecision


@dataclass(eq=False)
class Entry:
    """One caller's rows: its decisions (as :class:`Decision` objects or, from the service, as the records of their
    JSON made without them) and the ledger requests they record."""

    decisions: list[Decision | DecisionRecord]
    client: str | None
    requests: list[LedgerRequest | None] | None
    rows: list[tuple[StoredDecision, bool]] | None = None
    error: BaseException | None = None
    done: bool = False
    keys: list[tuple[str, int]] = field(default_factory=list)

    def result(self) -> list[tuple[StoredDecision, bool]]:
        if self.error is not None:
            raise self.error
        assert self.rows is not None
        return self.rows


class GroupCommit:
    """Commits the entries handed in by many threads, several in one transaction (see the module docstring)."""

    def __init__(self, store: DecisionStore):
        self.store = store
        self._cond = threading.Condition()
        self._pending: list[Entry] = []
        self._committing = False
        self._inflight: dict[tuple[str, int], Entry] = {}
        self._poisoned = False
        self.transactions = 0
        """Transactions committed (for tests and the status of the group commit)."""

    def submit(
        self,
        decisions: list[Decision | DecisionRecord],
        client: str | None,
        requests: list[LedgerRequest | None] | None,
    ) -> Entry | None:
        """Hand in a decision's rows (the caller holds the engine lock); None while the committer is poisoned."""
        with self._cond:
            if self._poisoned:
                return None
            entry = Entry(decisions, client, requests, keys=[(d.notification_id, d.revision) for d in decisions])
            self._pending.append(entry)
            for key in entry.keys:
                self._inflight[key] = entry
            return entry

    def submit_many(
        self, groups: list[tuple[list[Decision | DecisionRecord], str | None, list[LedgerRequest | None] | None]]
    ) -> list[Entry] | None:
        """Several callers' rows handed in at once, in this order (the caller holds the engine lock); None (and
        nothing handed in) while the committer is poisoned."""
        with self._cond:
            if self._poisoned:
                return None
            entries = []
            for decisions, client, requests in groups:
                entry = Entry(decisions, client, requests, keys=[(d.notification_id, d.revision) for d in decisions])
                self._pending.append(entry)
                for key in entry.keys:
                    self._inflight[key] = entry
                entries.append(entry)
            return entries

    def inflight(self, key: tuple[str, int]) -> Entry | None:
        """The entry handed in but not yet committed that writes ``key`` (None: none)."""
        with self._cond:
            return self._inflight.get(key)

    def needs_reload(self) -> bool:
        with self._cond:
            return self._poisoned

    def reloaded(self) -> None:
        """The engine-lock holder has rebuilt the ledger from the database: entries are accepted again."""
        with self._cond:
            self._poisoned = False

    def wait(self, entry: Entry) -> list[tuple[StoredDecision, bool]]:
        """The stored rows of ``entry`` once its transaction has committed (raises its transaction's error)."""
        with self._cond:
            while not entry.done:
                if not self._committing and self._pending:
                    batch, self._pending = self._pending, []
                    self._committing = True
                    break
                self._cond.wait()
            else:
                return entry.result()
        self._commit(batch)
        return entry.result()

    def drain(self) -> None:
        """Wait until every entry handed in so far is committed or failed (errors are the entries' own)."""
        with self._cond:
            last = self._pending[-1] if self._pending else None
            while last is None and self._committing:
                self._cond.wait()
                last = self._pending[-1] if self._pending else None
        if last is not None:
            try:
                self.wait(last)
            except Exception:  # noqa: BLE001 - reported to the entry's own caller
                pass

    def _commit(self, batch: list[Entry]) -> None:
        try:
            results = self.store.put_groups([(e.decisions, e.client, e.requests) for e in batch])
            error = None
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter of the failed entries
            results, error = [], exc
        with self._cond:
            finished = batch
            if error is None:
                for e, rows in zip(batch, results):
                    e.rows = rows
                self.transactions += 1
            else:
                finished = batch + self._pending  # decided on the state the failed entries were part of
                self._pending = []
                for e in finished:
                    e.error = error
                self._poisoned = True
            for e in finished:
                e.done = True
                for key in e.keys:
                    if self._inflight.get(key) is e:
                        del self._inflight[key]
            self._committing = False
            self._cond.notify_all()
