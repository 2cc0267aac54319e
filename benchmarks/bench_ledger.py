"""Screening with a growing capacity ledger against stateless screening, in the same run.

10,000 notifications (the demo mix, each with its own id, installer and submission time) on the
demo region, decided in chunks of 512 as ``powercheck screen`` does:

* stateless: ``Assessor.assess_many`` without a ledger (every notification judged alone);
* with the ledger: ``Assessor.assess_recorded`` on an in-memory ledger that starts empty and
  grows with every decision (approvals reserve capacity for the records after them).

``extra_info`` reports both rates and the ratio; the target is a ratio of at most 2.
No absolute timing is asserted.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.grid.region import GridRegion
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import load_policy

N = 10_000
CHUNK = 512


@pytest.fixture(scope="module")
def region() -> GridRegion:
    return GridRegion.load(demo_region_dir())


@pytest.fixture(scope="module")
def notifications() -> list[Notification]:
    valid = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        valid[i % len(valid)].model_copy(
            update={
                "notification_id": f"L-{i}",
                "installer_id": f"INST-{i % 97}",
                "submitted_at": t0 + timedelta(minutes=5 * i),
            }
        )
        for i in range(N)
    ]


def _stateless(assessor: Assessor, notes: list[Notification]) -> int:
    return sum(len(assessor.assess_many(notes[i : i + CHUNK])) for i in range(0, len(notes), CHUNK))


def _with_ledger(region: GridRegion, policy, notes: list[Notification]) -> tuple[int, CapacityState]:
    state = CapacityState.empty(region)
    assessor = Assessor(region, policy, ledger=state)
    done = sum(len(assessor.assess_recorded(notes[i : i + CHUNK]).decisions) for i in range(0, len(notes), CHUNK))
    return done, state


def test_ledger_screening_rate_vs_stateless(benchmark, region, notifications):
    policy = load_policy()
    stateless = Assessor(region, policy)
    _stateless(stateless, notifications[:600])  # compile / warm up both paths
    _with_ledger(region, policy, notifications[:600])
    rounds = []
    for _ in range(2):
        start = time.perf_counter()
        _stateless(stateless, notifications)
        rounds.append(time.perf_counter() - start)
    stateless_s = min(rounds)

    done, state = benchmark.pedantic(_with_ledger, args=(region, policy, notifications), rounds=2, iterations=1)
    assert done == N
    ledger_s = benchmark.stats.stats.min
    benchmark.extra_info.update(
        notifications=N,
        stateless_notifications_per_s=round(N / stateless_s, 1),
        ledger_notifications_per_s=round(N / ledger_s, 1),
        ledger_over_stateless_time=round(ledger_s / stateless_s, 2),
        ledger_requests=len(state.requests),
        reserving_requests=len(state.applied),
        target="ledger_over_stateless_time <= 2",
    )
