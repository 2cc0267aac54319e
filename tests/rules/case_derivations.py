"""Hand calculations behind the rule cases in ``tests/data/rules/<case>/``.

Each case is a function (in ``tests/rules/cases_*.py``) that returns the notification and the
expected decision: the outcome, the rule ids that fail or cannot be evaluated, and the key
check values. Every number is computed from pandapower results of the case region's networks
(``calc_sc(case="min")`` Thevenin impedances, ``runpp`` base cases) and formulas written out in
:mod:`tests.rules.case_model` and the case function -- never from powercheck's rule engine. The
function's docstring is the case's explanation; it is copied into ``expected.json``
("derivation").

Regenerate the data files after changing a derivation::

    python -m tests.rules.case_derivations
"""

from __future__ import annotations

import inspect
import json

from tests.rules import cases_fuse, cases_grid, cases_jobs, cases_pq, cases_protection  # noqa: F401  (register the cases)
from tests.rules.case_model import CASES, CASES_DIR

__all__ = ["CASES", "CASES_DIR", "render", "write_all"]


def render(name: str) -> tuple[dict, dict]:
    """The notification and the expected decision of a case, as written to its folder."""
    data = CASES[name]()
    expected = dict(data["expected"])
    if "ledger" in data:
        expected["ledger"] = data["ledger"]
    if "conditional_checks" in data:
        expected["conditional_checks"] = data["conditional_checks"]
    expected["derivation"] = inspect.cleandoc(CASES[name].__doc__ or "").splitlines()
    expected["source"] = f"tests/rules/{CASES[name].__module__.rsplit('.', 1)[1]}.py::{name}"
    return data["notification"], expected


def write_all() -> None:
    for name in CASES:
        folder = CASES_DIR / name
        folder.mkdir(parents=True, exist_ok=True)
        notification, expected = render(name)
        (folder / "notification.json").write_text(json.dumps(notification, indent=2) + "\n", encoding="utf-8")
        (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_all()
    print(f"wrote {len(CASES)} cases to {CASES_DIR}")
