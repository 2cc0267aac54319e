"""Group commit of the service's decisions (:mod:`powercheck.service.commit`): several callers' rows in one
transaction, each caller answered only after its own rows are on disk, and a failed transaction failing every
entry decided after it until the ledger is rebuilt."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from powercheck.demo import demo_notifications_path
from powercheck.io import read_notifications
from powercheck.service.commit import GroupCommit
from powercheck.service.store import DecisionStore


@pytest.fixture(scope="module")
def decisions(demo_assessor):
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:24]
    notes = [n.model_copy(update={"notification_id": f"GC-{i}"}) for i, n in enumerate(valid)]
    return demo_assessor.assess_many(notes)


def _on_disk(path) -> set[tuple[str, int]]:
    con = sqlite3.connect(path)
    try:
        return {(r[0], r[1]) for r in con.execute("SELECT notification_id, revision FROM decisions")}
    finally:
        con.close()


class SlowStore(DecisionStore):
    """A store whose transactions take a while, so that callers queue behind one; it can fail the next one."""

    fail_next = False

    def put_groups(self, groups):
        time.sleep(0.05)
        if self.fail_next:
            self.fail_next = False
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return super().put_groups(groups)


def test_concurrent_entries_share_transactions_and_are_on_disk_when_answered(tmp_path, decisions):
    store = SlowStore(tmp_path / "d.sqlite")
    commits = GroupCommit(store)
    engine = threading.Lock()
    answered: dict[str, tuple[str, bool, bool]] = {}

    def caller(d):
        with engine:  # as the service: hand in under the engine lock, wait outside it
            entry = commits.submit([d], "c", None)
        stored, ours = commits.wait(entry)[0]
        key = (d.notification_id, d.revision)
        answered[d.notification_id] = (stored.notification_id, ours, key in _on_disk(store.path))

    threads = [threading.Thread(target=caller, args=(d,)) for d in decisions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every caller got its own row back, written by itself, and it was readable from another connection
    assert answered == {d.notification_id: (d.notification_id, True, True) for d in decisions}
    assert _on_disk(store.path) == {(d.notification_id, d.revision) for d in decisions}
    # 24 entries, each transaction sleeping 50 ms: the callers that arrived meanwhile shared transactions
    assert 1 <= commits.transactions < len(decisions)
    store.close()


def test_a_failed_transaction_fails_its_entries_and_later_ones_until_reloaded(tmp_path, decisions):
    store = SlowStore(tmp_path / "d.sqlite")
    commits = GroupCommit(store)
    first = commits.submit([decisions[0]], "c", None)
    second = commits.submit([decisions[1]], "c", None)
    assert commits.inflight((decisions[1].notification_id, decisions[1].revision)) is second
    store.fail_next = True
    with pytest.raises(sqlite3.OperationalError, match="injected"):
        commits.wait(first)
    with pytest.raises(sqlite3.OperationalError, match="injected"):  # it was pending in the same transaction
        commits.wait(second)
    assert commits.needs_reload()
    assert commits.submit([decisions[2]], "c", None) is None  # decided on the lost state: refused
    assert commits.inflight((decisions[1].notification_id, decisions[1].revision)) is None
    assert _on_disk(store.path) == set()
    commits.reloaded()
    third = commits.submit([decisions[2]], "c", None)
    assert commits.wait(third)[0][1] is True
    assert _on_disk(store.path) == {(decisions[2].notification_id, decisions[2].revision)}
    store.close()


def test_a_key_written_twice_keeps_the_first_decision(tmp_path, decisions):
    store = DecisionStore(tmp_path / "d.sqlite")
    commits = GroupCommit(store)
    same_key = decisions[1].model_copy(update={"notification_id": decisions[0].notification_id})
    a = commits.submit([decisions[0]], "first", None)
    b = commits.submit([same_key], "second", None)
    commits.drain()
    (row_a, ours_a), (row_b, ours_b) = commits.wait(a)[0], commits.wait(b)[0]
    assert ours_a and not ours_b and row_b.client == "first" and row_a == row_b
    assert commits.transactions == 1
    store.close()
