"""Coalescing of concurrent single assessments into one engine batch (issue 13).

A ``POST /v1/assess`` request hands its notification to the :class:`Coalescer` and waits. The coalescer's engine
thread takes every notification queued so far as one *group* and, under the service's engine lock:

1. sorts out the ones that need no decision: a key (id, revision) already stored is a replay (or a conflict, when
   the content differs); a key whose decision is handed to the group commit but not yet on disk, or that an earlier
   request of the same group carries, *follows* that decision and is answered from its stored row (a replay, or 409
   when the content differs) -- one id+revision is never decided twice;
2. decides the others with one :meth:`~powercheck.rules.engine.Assessor.assess_isolated` call: in submitted order on
   the capacity ledger (:func:`~powercheck.rules.sequence.assess_in_order`), so the ledger ends exactly as if they
   had been decided one after the other in that order, approvals in one group are jointly feasible, and one
   notification that makes the engine raise gets its ``ENGINE.ERROR`` escalation without failing the others;
3. hands each decision with the request it records to the group commit (:mod:`powercheck.service.commit`), in
   decision order, so the stored rows are in the order the decisions were taken.

The engine lock is then released and the next group is decided while the commit thread writes this one's rows; a
request is answered only when its transaction has committed (its decision is on disk). Screening requests are not
coalesced (they are studies on a copy of the ledger and never stored).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from powercheck.decision_json import records
from powercheck.models import Notification
from powercheck.rules.sequence import order_key
from powercheck.service.commit import Entry
from powercheck.service.store import StoredDecision

if TYPE_CHECKING:
    from powercheck.service.app import _State

log = logging.getLogger("powercheck.service")

Key = tuple[str, int]

LINGER_S = 0.010
"""Longest time the engine waits for more requests before deciding a group smaller than the current concurrency.

At concurrency 8 on the shared 2-core machine, 3 ms gave groups of 4.6 on average and 10 ms groups of 7.2: the engine
costs about 2.5 ms a notification in groups of 4 and 2.15 ms in groups of 8 (in process), so the longer wait paid for
itself in CPU (server 4.0 -> 3.3-3.5 ms a request) and in latency (p50 37.5 -> 30-31 ms). A lone client never waits
(the target is the recent concurrency)."""


@dataclass(eq=False)
class Pending:
    """One waiting request: its notification and client, and the future its answer is set on."""

    notification: Notification
    client: str
    future: asyncio.Future

    @property
    def key(self) -> Key:
        return (self.notification.notification_id, self.notification.revision)


class Coalescer:
    """Decides the single requests queued while the engine was busy as one batch (see the module docstring).

    :meth:`assess` returns ``(stored row, replay)``: the row stored for the request's id+revision and whether it was
    stored before (or by another request); the caller compares input hashes to tell a replay from a conflict.
    """

    def __init__(self, state: _State, loop: asyncio.AbstractEventLoop, max_group: int = 256):
        self.state = state
        self.loop = loop
        self.max_group = max(1, max_group)
        self._cond = threading.Condition()
        self._queue: list[Pending] = []
        self._closed = False
        self._outstanding = 0
        """Requests handed in and not yet answered (queued, being decided or being committed)."""
        self._lingering_for: int | None = None
        """While the engine lingers: the queue length it waits for (it is woken only then, or at its deadline)."""
        self._recent: list[int] = []
        """Requests outstanding when each of the last groups was taken (the current concurrency)."""
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.groups = 0
        """Groups decided (for tests)."""
        self.largest_group = 0
        self._engine = threading.Thread(target=self._engine_loop, name="powercheck-engine", daemon=True)
        self._committer = threading.Thread(target=self._commit_loop, name="powercheck-answers", daemon=True)
        self._engine.start()
        self._committer.start()

    async def assess(self, notification: Notification, client: str) -> tuple[StoredDecision, bool]:
        future = self.loop.create_future()
        with self._cond:
            self._outstanding += 1
        try:
            self._enqueue([Pending(notification, client, future)])
            return await future
        finally:
            with self._cond:
                self._outstanding -= 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._engine.join(timeout=60)
        self._jobs.put(None)
        self._committer.join(timeout=60)

    # ------------------------------------------------------------------ engine thread

    def _enqueue(self, items: list[Pending]) -> None:
        with self._cond:
            self._queue.extend(items)
            # a lingering engine is not woken for every request (each wake-up takes the interpreter lock from the
            # event loop only to wait again), only once its group is complete
            if self._lingering_for is None or len(self._queue) >= self._lingering_for:
                self._cond.notify()

    def _engine_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                self._linger()
                group, self._queue = self._queue[: self.max_group], self._queue[self.max_group :]
            try:
                self._decide(group)
            except BaseException as exc:  # noqa: BLE001 - every request of the group is answered with it
                log.exception("a coalesced group of %d failed", len(group))
                self._answer([(item, exc) for item in group])

    def _linger(self) -> None:
        """Wait (at most :data:`LINGER_S`, the caller holds ``_cond``) until as many requests are queued as were
        outstanding lately: the clients answered by the previous group are about to send their next requests, and
        deciding them together costs far less than deciding one now and the rest as the next group (the engine's
        fixed cost per batch is about two notifications' worth)."""
        self._recent = [*self._recent[-7:], self._outstanding]
        target = min(self.max_group, max(self._recent))
        if len(self._queue) >= target:
            return
        deadline = time.monotonic() + LINGER_S
        self._lingering_for = target
        try:
            while len(self._queue) < target and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        finally:
            self._lingering_for = None

    def _decide(self, group: list[Pending]) -> None:
        st = self.state
        self.groups += 1
        self.largest_group = max(self.largest_group, len(group))
        with st.lock:
            while True:
                if st.commits.needs_reload():
                    st.reload_ledger()
                    st.commits.reloaded()
                first: dict[Key, Pending] = {}
                follow: list[tuple[Pending, Entry | Pending]] = []
                for item in group:
                    key = item.key
                    if key in first:
                        follow.append((item, first[key]))  # a repeat inside the group: answered from the first
                        continue
                    entry = st.commits.inflight(key)  # checked before the store: entries leave it once committed
                    if entry is not None:
                        follow.append((item, entry))
                    else:
                        first[key] = item
                stored = st.store.get_committed(first) if first else {}
                answers: list[tuple[Pending, object]] = [(item, (stored[key], True)) for key, item in first.items()
                                                         if key in stored]  # fmt: skip
                todo = [item for key, item in first.items() if key not in stored]
                if not todo:
                    entries: list[Entry] = []
                    break
                assessed = st.assessor.assess_isolated([item.notification for item in todo])
                order = sorted(range(len(todo)), key=lambda i: order_key(todo[i].notification, i))
                # the stored rows' JSON straight from the decided batch (no Decision objects on this path)
                decisions, requests = records(assessed.entries, assessed.language), assessed.requests
                submitted = st.commits.submit_many([([decisions[i]], todo[i].client, [requests[i]]) for i in order])
                if submitted is not None:
                    entries = submitted
                    todo = [todo[i] for i in order]
                    break
                # a commit failed while deciding: these decisions saw the lost state; decide again on the rebuilt one
        answered_first = {item.key: (item, stored[item.key]) for item, _ in answers}
        followers: list[tuple[Pending, Entry | Pending]] = []
        for item, source in follow:
            if isinstance(source, Pending) and source.key in answered_first:
                answers.append((item, (answered_first[source.key][1], True)))
            else:
                followers.append((item, source))
        if answers:
            self._answer(answers)
        if entries or followers:
            self._jobs.put((list(zip(todo, entries)), followers))

    def commit_soon(self, entry: Entry) -> None:
        """Have the commit thread write ``entry`` (its caller waits for it later with ``GroupCommit.wait``): the batch
        endpoint decides its next chunk while the previous one is committed."""
        self._jobs.put(entry)

    # ------------------------------------------------------------------ commit thread

    def _commit_loop(self) -> None:
        commits = self.state.commits
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if isinstance(job, Entry):  # another caller's entry, committed here while that caller decides on
                try:
                    commits.wait(job)
                except Exception:  # noqa: BLE001 - its caller waits for it too and reports the error
                    pass
                continue
            own, followers = job
            answers: list[tuple[Pending, object]] = []
            by_item: dict[int, Entry] = {}
            for item, entry in own:
                by_item[id(item)] = entry
                try:
                    row, ours = commits.wait(entry)[0]
                    answers.append((item, (row, not ours)))
                except BaseException as exc:  # noqa: BLE001 - the request is answered with its commit's error
                    answers.append((item, exc))
            again: list[Pending] = []
            for item, source in followers:
                entry = by_item.get(id(source)) if isinstance(source, Pending) else source
                try:
                    assert entry is not None
                    row = next(r for r, _ in commits.wait(entry) if (r.notification_id, r.revision) == item.key)
                    answers.append((item, (row, True)))
                except Exception:  # noqa: BLE001 - that request reports its failure; this one is decided again
                    again.append(item)
            if answers:
                self._answer(answers)
            if again:
                self._enqueue(again)

    # ------------------------------------------------------------------ answers (any thread)

    def _answer(self, answers: list[tuple[Pending, object]]) -> None:
        def settle() -> None:
            for item, result in answers:
                if item.future.done():  # the client went away
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # pragma: no cover - the event loop is closed (shutdown)
            pass
