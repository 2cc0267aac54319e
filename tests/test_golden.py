"""The demo screening reproduces the golden file of its decisions exactly.

``tests/data/golden/demo_decisions.jsonl`` holds, for every record of the embedded demo
notifications, the outcome, the ledger status, the score and every check's rule id, status,
value, limit and margin, as ``powercheck screen`` decides them (in submitted order, on a
ledger that starts empty). Floats are stored with ``repr`` precision and compared to a
relative 1e-9 or 1e-7 absolute (``tests/helpers/compare.py``: the numba kernels are compiled for the host CPU, so
the last digits differ between machines); everything else is compared exactly.

The file changes only on purpose: a commit that changes decisions regenerates it with
``POWERCHECK_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and says in its
message what changed and why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from powercheck.demo import demo_notifications_path
from powercheck.io import read_decisions
from powercheck.ledger import CapacityState
from powercheck.rules.engine import Assessor
from powercheck.screen import screen_file
from tests.helpers.compare import differences
from tests.helpers.mini import FIXED_TIME

GOLDEN = Path(__file__).parent / "data" / "golden" / "demo_decisions.jsonl"
CHECK_FIELDS = ("rule_id", "status", "value", "limit", "margin")


def golden_rows(table) -> list[dict]:
    """The compared part of each decision row of a decisions table."""
    rows = []
    for row in table.to_pylist():
        rows.append(
            {
                "notification_id": row["notification_id"],
                "revision": row["revision"],
                "outcome": row["outcome"],
                "ledger_status": row["ledger_status"],
                "score": row["score"],
                "checks": [[c[f] for f in CHECK_FIELDS] for c in row["checks"]],
            }
        )
    return rows


@pytest.fixture(scope="module")
def demo_screening(demo_region, policy, tmp_path_factory):
    out = tmp_path_factory.mktemp("golden") / "decisions.parquet"
    # as `powercheck screen` decides: in submitted order on a ledger that starts empty
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region))
    screen_file(demo_notifications_path(), assessor, out)
    return golden_rows(read_decisions(out))


def test_demo_screening_reproduces_the_golden_decisions(demo_screening):
    if os.environ.get("POWERCHECK_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in demo_screening), encoding="utf-8")
    expected = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert len(demo_screening) == len(expected) == 228
    for got, want in zip(demo_screening, expected):
        diff = differences(got, want)
        assert not diff, f"{want['notification_id']} differs from the golden file: {diff[:5]}"


def test_golden_file_covers_every_outcome_of_the_demo():
    rows = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    outcomes = {r["outcome"] for r in rows}
    assert {"auto_approve", "escalate", "reject_incomplete"} <= outcomes
    # every check of an evaluated decision carries a status the engine knows
    statuses = {c[1] for r in rows for c in r["checks"]}
    assert statuses <= {"pass", "fail", "not_evaluated"}
