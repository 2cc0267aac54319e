"""Decisions as Arrow tables straight from the engine's columns (issue 13).

The object path materialises a :class:`~powercheck.models.Decision` per notification with a
:class:`~powercheck.models.CheckResult` per check and a :class:`~powercheck.models.PathPoint` per bus of its
feeder path, then dumps them to dicts for Parquet. Here the check results come from the batch's
:class:`~powercheck.rules.checks.base.CheckTable` arrays and the path from its
:class:`~powercheck.rules.path.PathRows` columns; only the per-decision fields (ids, outcome, reasons,
measures, limits) go through a light decision without checks and path, so a field another stage adds to
:class:`Decision` is written here too. Two tables come out of a chunk:

* the decisions, in :data:`~powercheck.io.DECISION_SCHEMA` (the same rows the object path writes:
  ``tests/test_columnar.py`` compares them on the demo and on every rule case);
* the checks, long: one row per notification x check (:data:`CHECKS_SCHEMA`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from powercheck import arrow
from powercheck.gcpause import gc_paused
from powercheck.io import CHECK_TYPE, DECISION_SCHEMA, PATH_POINT_TYPE, _measure_row, _message_row, decision_row
from powercheck.models import Decision, MeasureOption
from powercheck.rules.checks.base import FAIL, NOT_EVALUATED, STATUSES, CheckTable
from powercheck.rules.decide import DecisionBatch
from powercheck.rules.path import PATH_COLUMNS
from powercheck.rules.sequence import DecisionRef

STATUS_TEXT = np.array([str(s) for s in STATUSES], dtype=object)

CHECKS_SCHEMA = pa.schema(
    [
        ("notification_id", pa.string()),
        ("revision", pa.int64()),
        ("source_line", pa.int64()),
        ("position", pa.int32()),
        *[(f.name, f.type) for f in CHECK_TYPE],
    ]
)
"""The long checks table: one row per notification x check, ``position`` its place in the decision's checks."""


Entry = DecisionRef | Decision
"""A decision to write: a batch row, or a decision made outside a batch (invalid record, engine error)."""


class _Checks:
    """The check results of the rows of a chunk, gathered column by column.

    Consecutive rows of one check table (a batch's rows in order, the common case) are gathered as one range,
    so the columns are sliced once per run of rows instead of once per notification.
    """

    def __init__(self) -> None:
        self.parts: list[list | tuple[list]] = []
        """``[table, start, stop]`` (a range of a check table) or ``(checks,)`` (CheckResult objects)."""
        self.counts: list[int] = []

    def add_table(self, table: CheckTable, start: int, stop: int) -> None:
        last = self.parts[-1] if self.parts else None
        if last is not None and len(last) == 3 and last[0] is table and last[2] == start:
            last[2] = stop
        else:
            self.parts.append([table, start, stop])
        self.counts.append(stop - start)

    def add_objects(self, checks: list) -> None:
        self.parts.append((list(checks),))
        self.counts.append(len(checks))

    def columns(self) -> dict[str, Any]:
        rule_id: list[str] = []
        name: list[str] = []
        status: list[np.ndarray] = []
        value: list[np.ndarray] = []
        limit: list[np.ndarray] = []
        margin: list[np.ndarray] = []
        scale: list[np.ndarray] = []
        kind: list[str] = []
        unit: list[str] = []
        key: list[str | None] = []
        assumptions: list[Sequence[str]] = []
        detail: list[str] = []
        for part in self.parts:
            if len(part) == 3:
                t, a, b = part
                if a == b:
                    continue
                rule_id.extend(map(str, t.rule_id[a:b]))
                name.extend(t.name[a:b])
                status.append(t.status[a:b].astype(np.int64))
                value.append(t.value[a:b])
                limit.append(t.limit[a:b])
                margin.append(t.margin[a:b])
                scale.append(t.margin_scale[a:b])
                kind.extend(map(str, t.limit_kind[a:b]))
                unit.extend(t.unit[a:b])
                key.extend(t.limit_key[a:b])
                assumptions.extend(t.assumptions[a:b])
                detail.extend(t.detail[a:b])
            else:
                (part,) = part
                codes = {str(s): i for i, s in enumerate(STATUSES)}

                def nan(x):
                    return np.nan if x is None else x

                for c in part:
                    rule_id.append(c.rule_id)
                    name.append(c.name)
                    kind.append(str(c.limit_kind))
                    unit.append(c.unit)
                    key.append(c.limit_key)
                    assumptions.append(c.assumptions)
                    detail.append(c.detail)
                if part:
                    status.append(np.array([codes[str(c.status)] for c in part], dtype=np.int64))
                    value.append(np.array([nan(c.value) for c in part], dtype=float))
                    limit.append(np.array([nan(c.limit) for c in part], dtype=float))
                    margin.append(np.array([nan(c.margin) for c in part], dtype=float))
                    scale.append(np.array([nan(c.margin_scale) for c in part], dtype=float))

        def cat(parts: list[np.ndarray], dtype) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        codes_all = cat(status, np.int64)
        lengths = np.fromiter(map(len, assumptions), dtype=np.int64, count=len(assumptions))
        a_offsets = np.zeros(len(assumptions) + 1, dtype=np.int64)
        np.cumsum(lengths, out=a_offsets[1:])
        return {
            "rule_id": arrow.strings(rule_id),
            "name": arrow.strings(name),
            "status": arrow.strings(STATUS_TEXT[codes_all].tolist()),
            "value": arrow.numbers(cat(value, float)),
            "limit": arrow.numbers(cat(limit, float)),
            "limit_kind": arrow.strings(kind),
            "margin": arrow.numbers(cat(margin, float)),
            "unit": arrow.strings(unit),
            "margin_scale": arrow.numbers(cat(scale, float)),
            "limit_key": arrow.strings(key),
            "assumptions": arrow.lists(
                a_offsets, arrow.strings(list(chain.from_iterable(assumptions))), pa.list_(pa.string())
            ),
            "detail": arrow.strings(detail),
            "_codes": codes_all,
        }


def _paths(paths: list) -> pa.Array:
    """The ``path`` column: per row a :class:`PathRows` (columns) or a list of :class:`PathPoint`."""
    offsets = np.zeros(len(paths) + 1, dtype=np.int64)
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in PATH_COLUMNS}
    for i, path in enumerate(paths):
        columns = getattr(path, "columns", None)
        if columns is None:
            columns = {name: np.array([getattr(p, name) for p in path]) for name in PATH_COLUMNS}
        for name in PATH_COLUMNS:
            pieces[name].append(np.asarray(columns[name]))
        offsets[i + 1] = offsets[i] + len(path)
    children = []
    for f in PATH_POINT_TYPE:
        dtype = np.int64 if pa.types.is_integer(f.type) else float
        values = np.concatenate(pieces[f.name]).astype(dtype) if paths else np.zeros(0, dtype=dtype)
        children.append(arrow.numbers(values, f.type, np.ones(values.shape[0], dtype=bool)))
    return arrow.lists(offsets, arrow.structs(children, PATH_POINT_TYPE), pa.list_(PATH_POINT_TYPE))


LIGHT_COLUMNS = tuple(
    name for name in DECISION_SCHEMA.names if name not in ("checks", "path", "n_fail", "n_not_evaluated")
)


def _plain_dump(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump()`` of a model whose fields are all scalars (str, float, int, bool, None: a
    :class:`SizeLimit`, :class:`NetworkData`): its field values as they are, without pydantic's serializer."""
    return dict(model.__dict__)


def _measure_row_of(m: MeasureOption) -> dict[str, Any]:
    """:func:`~powercheck.io._measure_row` of a measure option whose fields are str and bool and whose rule lists
    are lists of str (the engine's: their own JSON form), without pydantic's JSON dump; any other goes to
    ``_measure_row`` (``tests/test_columnar.py`` compares the two on the demo's and the rule cases' measures)."""
    d = m.__dict__
    if not (
        type(m) is MeasureOption
        and type(d["sufficient"]) is bool
        and _strings(d["resolves"])
        and _strings(d["remaining"])
        and type(d["id"]) is str
        and type(d["by"]) is str
        and type(d["text"]) is str
        and type(d["effect"]) is str
        and type(d["source"]) is str
    ):
        return _measure_row(m)
    return {
        "id": d["id"],
        "by": d["by"],
        "text": d["text"],
        "effect": d["effect"],
        "sufficient": d["sufficient"],
        "resolves": list(d["resolves"]),
        "remaining": list(d["remaining"]),
        "source": d["source"],
        "message": _message_row(d["message"]),
        "effect_message": _message_row(d["effect_message"]),
    }


def _strings(values: Any) -> bool:
    """``values`` is a list of exact str."""
    return type(values) is list and (not values or set(map(type, values)) == _STR)


_STR = {str}


def _light_row(batch: DecisionBatch, k: int, lang: str, ledger_status, source_line: int | None) -> dict[str, Any]:
    """The :data:`LIGHT_COLUMNS` of batch row ``k``: what :func:`~powercheck.io.decision_row` writes of its
    decision (:meth:`DecisionBatch.decision` without checks and path, with ``ledger_status``), made from the
    decision's fields (:meth:`DecisionBatch.decision_fields`) without the :class:`Decision` in between
    (``tests/test_columnar.py`` compares the two)."""
    row = batch.decision_fields(k, lang, heavy=False, ledger_status=ledger_status)
    network_data = row["network_data"]
    row.update(
        source_line=source_line,
        outcome=str(row["outcome"]),
        messages=[_message_row(m) for m in row["messages"]],
        assumptions=list(row["assumptions"]),
        condition_messages=[_message_row(m) for m in row["condition_messages"]],
        measures=[_measure_row_of(m) for m in row["measures"]],
        limits=[_plain_dump(limit) for limit in row["limits"]],
        network_data=None if network_data is None else _plain_dump(network_data),
    )
    return row


def decision_tables(
    entries: Sequence[Entry], source_lines: Sequence[int | None], lang: str = "en"
) -> tuple[pa.Table, pa.Table]:
    """The decisions (:data:`DECISION_SCHEMA`) and the long checks table (:data:`CHECKS_SCHEMA`) of a chunk."""
    with gc_paused():
        return _decision_tables(entries, source_lines, lang)


def _decision_tables(
    entries: Sequence[Entry], source_lines: Sequence[int | None], lang: str
) -> tuple[pa.Table, pa.Table]:
    light: dict[str, list] = {name: [] for name in LIGHT_COLUMNS}
    checks = _Checks()
    paths: list = []
    for entry, line in zip(entries, source_lines):
        if isinstance(entry, DecisionRef):
            batch, k = entry.batch, entry.k
            row_dict = _light_row(batch, k, lang, entry.ledger_status, line)
            of, row = batch.check_overrides.get(k, (batch, k))
            checks.add_table(of.checks, int(of.checks.indptr[row]), int(of.checks.indptr[row + 1]))
            paths.append(of.paths[row] if of.paths else [])
        else:
            row_dict = decision_row(entry, line)
            checks.add_objects(entry.checks)
            paths.append(entry.path)
        for name in LIGHT_COLUMNS:
            light[name].append(row_dict[name])
    columns: dict[str, pa.Array] = {
        name: arrow.from_python(values, DECISION_SCHEMA.field(name).type) for name, values in light.items()
    }
    check_columns = checks.columns()
    codes = check_columns.pop("_codes")
    counts = np.asarray(checks.counts, dtype=np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    owner = np.repeat(np.arange(len(counts)), counts)
    columns["checks"] = arrow.lists(
        offsets, arrow.structs([check_columns[f.name] for f in CHECK_TYPE], CHECK_TYPE), pa.list_(CHECK_TYPE)
    )
    columns["n_fail"] = arrow.numbers(np.bincount(owner[codes == FAIL], minlength=len(counts)), pa.int64())
    columns["n_not_evaluated"] = arrow.numbers(
        np.bincount(owner[codes == NOT_EVALUATED], minlength=len(counts)), pa.int64()
    )
    columns["path"] = _paths(paths)
    decisions = arrow.table(columns, DECISION_SCHEMA)
    ids = np.array(light["notification_id"], dtype=object)[owner].tolist() if owner.size else []
    revisions = np.array(light["revision"], dtype=np.int64)[owner] if owner.size else np.zeros(0, np.int64)
    lines = np.array([-1 if x is None else x for x in light["source_line"]], dtype=np.int64)[owner]
    position = (np.arange(owner.size) - offsets[owner]).astype(np.int32)
    long = {
        "notification_id": arrow.strings(ids),
        "revision": arrow.numbers(revisions, pa.int64()),
        "source_line": arrow.numbers(lines, pa.int64(), lines >= 0),
        "position": arrow.numbers(position, pa.int32()),
        **check_columns,
    }
    return decisions, arrow.table(long, CHECKS_SCHEMA)
