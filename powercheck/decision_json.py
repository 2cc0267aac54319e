"""A decided batch row as the JSON of its :class:`~powercheck.models.Decision`, without the Decision (issue 13).

The service stores (and answers) every decision as ``Decision.model_dump_json()``. Made through the object, a
decision costs a :class:`~powercheck.models.CheckResult` per check and a :class:`~powercheck.models.PathPoint` per
bus of its feeder path (about 35 pydantic objects, 0.6 ms) before pydantic walks them again to write the JSON.
Here the row's fields come from :meth:`DecisionBatch.decision_fields <powercheck.rules.decide.DecisionBatch>` (the
one mapping of a batch row to a Decision's fields) with the checks and path taken from the batch's columns as plain
dicts, and :func:`pydantic_core.to_json` writes them: the same serializer, so the same float formatting
(``0.00001``, ``1e+16``), ISO times and escapes; NaN and infinities as ``null`` (the models' ``ser_json_inf_nan``).
A float field is given a Python ``float`` (pydantic writes an int in a float field as ``63.0``), an int field an
``int``. Messages, limits, measures and network data are the engine's own model objects, written by their own
serializers as inside a Decision.

``tests/test_decision_json.py`` compares the bytes with ``model_dump_json`` of the Decision on every demo
notification and every rule case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic_core import to_json

from powercheck.models import CheckResult, Decision, PathPoint
from powercheck.rules.checks.base import STATUSES, CheckTable
from powercheck.rules.decide import DecisionBatch
from powercheck.rules.path import PATH_COLUMNS
from powercheck.rules.sequence import DecisionRef
from powercheck.texts import DEFAULT_LANGUAGE

CHECK_KEYS = tuple(CheckResult.model_fields)
"""The keys of a check, in :class:`CheckResult` field order."""
_STATUS_TEXT = [s.value for s in STATUSES]
_FLOAT_PATH = tuple(name for name in PATH_COLUMNS if name != "bus")

assert CHECK_KEYS == (
    "rule_id", "name", "status", "value", "limit", "limit_kind", "margin", "unit", "margin_scale", "limit_key",
    "assumptions", "detail",
), "CheckResult's fields changed: update _checks"  # fmt: skip
assert PATH_COLUMNS == tuple(PathPoint.model_fields) and PATH_COLUMNS[0] == "bus"


def _checks(table: CheckTable, row: int) -> list[dict[str, Any]]:
    """The checks of notification ``row`` of ``table`` as :meth:`CheckTable.result` gives them, as dicts."""
    a, b = int(table.indptr[row]), int(table.indptr[row + 1])
    if a == b:
        return []
    status = [_STATUS_TEXT[s] for s in table.status[a:b].tolist()]
    columns = zip(
        map(str, table.rule_id[a:b]),
        table.name[a:b],
        status,
        table.value[a:b].tolist(),  # NaN is written as null, as result()'s None
        table.limit[a:b].tolist(),
        map(str, table.limit_kind[a:b]),
        table.margin[a:b].tolist(),
        table.unit[a:b],
        table.margin_scale[a:b].tolist(),
        table.limit_key[a:b],
        map(list, table.assumptions[a:b]),
        table.detail[a:b],
    )
    return [dict(zip(CHECK_KEYS, values)) for values in columns]


def _path(path: Sequence) -> list:
    """A path as dicts in :class:`PathPoint` field order (a list of PathPoint objects as it is)."""
    columns = getattr(path, "columns", None)
    if columns is None:
        return list(path)
    if not len(path):
        return []
    values = [np.asarray(columns["bus"]).astype(np.int64, copy=False).tolist()]
    values += [np.asarray(columns[name], dtype=float).tolist() for name in _FLOAT_PATH]
    return [dict(zip(PATH_COLUMNS, point)) for point in zip(*values)]


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _int(x: Any) -> int | None:
    return None if x is None else int(x)


def decision_fields_json(batch: DecisionBatch, k: int, lang: str = DEFAULT_LANGUAGE, ledger_status: str | None = None,
                         input_hash: str | None = None) -> tuple[dict[str, Any], str]:  # fmt: skip
    """Row ``k``'s light fields (:meth:`DecisionBatch.decision_fields` without checks and path) and the JSON of its
    :class:`Decision` (``batch.decision(k, lang, ledger_status=...).model_dump_json()``); ``input_hash``: its
    notification's input hash when the caller has it (else it is computed)."""
    fields = batch.decision_fields(k, lang, heavy=False, ledger_status=ledger_status, input_hash=input_hash)
    of, row = batch.check_overrides.get(k, (batch, k))
    out = dict(fields)
    out["checks"] = _checks(of.checks, row)
    out["score"] = _float(fields["score"])
    out["bus"] = _int(fields["bus"])
    out["revision"] = int(fields["revision"])
    out["required_main_fuse_a"] = _float(fields["required_main_fuse_a"])
    out["path"] = _path(of.paths[row]) if of.paths else []
    return fields, to_json(out, inf_nan_mode="null").decode()


def decision_json(batch: DecisionBatch, k: int, lang: str = DEFAULT_LANGUAGE, ledger_status: str | None = None) -> str:
    """The JSON of row ``k``'s :class:`Decision`, byte for byte its ``model_dump_json()``."""
    return decision_fields_json(batch, k, lang, ledger_status)[1]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the decision store writes of a decision: its key, the columns beside the JSON, and the JSON."""

    notification_id: str
    revision: int
    input_hash: str | None
    outcome: str
    policy_id: str
    policy_version: str
    policy_hash: str
    grid_model_version: str | None
    json: str


def record_of(
    entry: DecisionRef | Decision | DecisionRecord, lang: str = DEFAULT_LANGUAGE, input_hash: str | None = None
) -> DecisionRecord:
    """The stored row of a batch row (its JSON made from the batch's columns) or of a :class:`Decision` (one made
    outside a batch: an engine error, an invalid record). ``input_hash``: the batch row's notification's input hash
    when the caller has it (a Decision carries its own)."""
    if isinstance(entry, DecisionRecord):
        return entry
    if isinstance(entry, DecisionRef):
        f, text = decision_fields_json(entry.batch, entry.k, lang, entry.ledger_status, input_hash)
    else:
        f, text = vars(entry), entry.model_dump_json()
    return DecisionRecord(
        f["notification_id"],
        f["revision"],
        f["input_hash"],
        str(f["outcome"]),
        f["policy_id"],
        f["policy_version"],
        f["policy_hash"],
        f["grid_model_version"],
        text,
    )


def records(
    entries: Sequence[DecisionRef | Decision], lang: str = DEFAULT_LANGUAGE, input_hashes: Sequence[str] | None = None
) -> list[DecisionRecord]:
    """:func:`record_of` each entry (an :class:`~powercheck.rules.sequence.Assessment`'s ``entries``);
    ``input_hashes``: the input hashes of the entries' notifications (in entry order) when the caller has them."""
    if input_hashes is None:
        return [record_of(e, lang) for e in entries]
    return [record_of(e, lang, h) for e, h in zip(entries, input_hashes, strict=True)]
