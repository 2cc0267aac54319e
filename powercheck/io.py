"""Reading notifications and writing decisions (JSON Lines and Parquet).

Reading never stops at a bad record: every input record comes back as an
:class:`InputRecord`, either with a validated ``Notification`` or with the
field-named validation errors, so a batch keeps everything that was valid and
reports the rest.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from powercheck.models import (
    MAX_REVISION,
    NOTIFICATION_ID_PATTERN,
    Decision,
    MeasureOption,
    Message,
    Notification,
    PathPoint,
    describe_validation_error,
    json_encoder,
)


@dataclass
class InputRecord:
    """One record of an input file."""

    line: int
    """1-based line (JSONL) or row (Parquet) number."""
    notification: Notification | None = None
    errors: list[str] = field(default_factory=list)
    raw_id: str | None = None
    raw_revision: int | None = None
    raw_submitted_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.notification is not None


def _drop_nulls(value: Any) -> Any:
    """Parquet gives None for absent optional fields: drop them so model defaults apply."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


_ID_PATTERN = re.compile(NOTIFICATION_ID_PATTERN)
_REVISIONS = range(1, MAX_REVISION + 1)
"""The revisions a notification may have (``Notification.revision``)."""

MAX_RECORD_BYTES = 1_000_000
"""Longest JSON Lines record read [bytes]; a longer line becomes an invalid record (``max_record_bytes``)."""

UTF8_BOM = b"\xef\xbb\xbf"


def _raw_id(value: Any) -> str | None:
    """The record's notification id when it is a valid one (an invalid record is named by its line otherwise)."""
    if isinstance(value, str) and 0 < len(value) <= 64 and _ID_PATTERN.fullmatch(value):
        return value
    return None


def parse_record(line: int, data: Any) -> InputRecord:
    """Validate one decoded record."""
    if not isinstance(data, dict):
        return InputRecord(line=line, errors=[f"(root): expected a JSON object, got {type(data).__name__}"])
    raw_rev = data.get("revision")
    record = InputRecord(
        line=line,
        raw_id=_raw_id(data.get("notification_id")),
        raw_revision=raw_rev if type(raw_rev) is int and raw_rev in _REVISIONS else None,
        raw_submitted_at=_timestamp(data.get("submitted_at")),
    )
    try:
        record.notification = Notification.model_validate(data)
    except ValidationError as exc:
        record.errors = describe_validation_error(exc)
    return record


def decode_record(raw: bytes) -> Any:
    """One JSON record from bytes; ``ValueError`` says what is wrong (encoding, syntax, nesting, number size)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ValueError(f"not valid JSON ({exc})") from None


def _lines(fh: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` of every line, ``None`` for a line longer than ``limit`` (skipped unread)."""
    number = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(1 << 20)
            yield number, None
            continue
        yield number, raw


def iter_jsonl(path: Path, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[InputRecord]:
    """Records of a JSON Lines file; a line that cannot be read becomes an invalid record with its line number.

    Blank lines are skipped; a UTF-8 byte order mark at the start is allowed.
    """
    with open(path, "rb") as fh:
        for number, raw in _lines(fh, max_record_bytes):
            if raw is None:
                yield InputRecord(line=number, errors=[f"(line {number}): longer than {max_record_bytes} bytes"])
                continue
            if number == 1 and raw.startswith(UTF8_BOM):
                raw = raw[len(UTF8_BOM) :]
            if not raw.strip():
                continue
            try:
                data = decode_record(raw)
            except ValueError as exc:
                yield InputRecord(line=number, errors=[f"(line {number}): {exc}"])
                continue
            yield parse_record(number, data)


def _jsonl_record(number: int, raw: bytes | None, max_record_bytes: int) -> InputRecord | None:
    """The record of one JSON Lines line (None for a blank line)."""
    if raw is None:
        return InputRecord(line=number, errors=[f"(line {number}): longer than {max_record_bytes} bytes"])
    if number == 1 and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    if not raw.strip():
        return None
    try:
        data = decode_record(raw)
    except ValueError as exc:
        return InputRecord(line=number, errors=[f"(line {number}): {exc}"])
    return parse_record(number, data)


def index_jsonl(path: Path, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[tuple[InputRecord, int, int]]:
    """Every record of a JSON Lines file with the byte offset and length of its line (for :func:`read_jsonl_at`)."""
    with open(path, "rb") as fh:
        number = 0
        offset = 0
        while True:
            raw = fh.readline(max_record_bytes + 1)
            if not raw:
                return
            number += 1
            start = offset
            offset += len(raw)
            if len(raw) > max_record_bytes and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):
                    raw = fh.readline(1 << 20)
                    offset += len(raw)
                raw = None
            record = _jsonl_record(number, raw, max_record_bytes)
            if record is not None:
                yield record, start, offset - start


def read_jsonl_at(
    path: Path, spans: Sequence[tuple[int, int, int]], max_record_bytes: int = MAX_RECORD_BYTES
) -> list[InputRecord]:
    """The records at ``(line number, offset, length)`` spans of :func:`index_jsonl`, in the order given."""
    out = []
    with open(path, "rb") as fh:
        for number, offset, length in spans:
            if length > max_record_bytes:
                raw = None
            else:
                fh.seek(offset)
                raw = fh.read(length)
            record = _jsonl_record(number, raw, max_record_bytes)
            if record is not None:
                out.append(record)
    return out


def iter_parquet(path: Path) -> Iterator[InputRecord]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield parse_record(number, _drop_nulls(row))


def read_notifications(path: str | Path) -> Iterator[InputRecord]:
    """Records of a ``.jsonl``/``.ndjson``/``.json`` (JSON Lines) or ``.parquet`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notifications file {path} not found")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return iter_jsonl(path)
    if suffix in (".parquet", ".pq"):
        return iter_parquet(path)
    raise ValueError(f"{path}: unknown notifications format {suffix!r} (use .jsonl or .parquet)")


def check_notifications_file(path: str | Path) -> Path:
    """Refuse, before any work, a notifications file that cannot be read (names the file and why)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notifications file {path} not found")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None
    elif suffix in (".jsonl", ".ndjson", ".json"):
        try:
            with open(path, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    else:
        raise ValueError(f"{path}: unknown notifications format {suffix!r} (use .jsonl or .parquet)")
    return path


def check_writable(path: str | Path, option: str) -> Path:
    """Refuse, before any work, an output path that cannot be written: a directory, a path under a file, a place
    where no file can be created. Creates the missing parent directories."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a directory; give a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{option} {path}: {ancestor} is a file, not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".powercheck-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def write_notifications_parquet(notifications: Sequence[Notification], path: str | Path) -> None:
    """Write notifications as Parquet with the nested structure of the JSON form."""
    rows = [n.model_dump(mode="json") for n in notifications]
    pq.write_table(pa.Table.from_pylist(rows), path)


CHECK_TYPE = pa.struct(
    [
        ("rule_id", pa.string()),
        ("name", pa.string()),
        ("status", pa.string()),
        ("value", pa.float64()),
        ("limit", pa.float64()),
        ("limit_kind", pa.string()),
        ("margin", pa.float64()),
        ("unit", pa.string()),
        ("margin_scale", pa.float64()),
        ("limit_key", pa.string()),
        ("assumptions", pa.list_(pa.string())),
        ("detail", pa.string()),
    ]
)

MESSAGE_TYPE = pa.struct([("key", pa.string()), ("params", pa.string())])
"""A text template key and its parameters (JSON), so a stored decision renders in either language."""

MEASURE_TYPE = pa.struct(
    [
        ("id", pa.string()),
        ("by", pa.string()),
        ("text", pa.string()),
        ("effect", pa.string()),
        ("sufficient", pa.bool_()),
        ("resolves", pa.list_(pa.string())),
        ("remaining", pa.list_(pa.string())),
        ("message", MESSAGE_TYPE),
        ("effect_message", MESSAGE_TYPE),
        ("source", pa.string()),
    ]
)

LIMIT_TYPE = pa.struct(
    [
        ("quantity", pa.string()),
        ("notified", pa.float64()),
        ("largest", pa.float64()),
        ("smallest", pa.float64()),
        ("unit", pa.string()),
        ("binding_rule", pa.string()),
        ("scale", pa.float64()),
    ]
)

NETWORK_DATA_TYPE = pa.struct(
    [
        ("system", pa.string()),
        ("u_nominal_v", pa.float64()),
        ("ik_max_3ph_a", pa.float64()),
        ("ik_min_a", pa.float64()),
        ("ik_min_kind", pa.string()),
        ("loop_r_ohm", pa.float64()),
        ("loop_x_ohm", pa.float64()),
        ("voltage_peak_pu", pa.float64()),
        ("existing_peak_kw", pa.float64()),
        ("load_basis", pa.string()),
        ("base_case", pa.string()),
    ]
)

PATH_POINT_TYPE = pa.struct([(name, pa.int64() if name == "bus" else pa.float64()) for name in PathPoint.model_fields])

DECISION_SCHEMA = pa.schema(
    [
        ("notification_id", pa.string()),
        ("revision", pa.int64()),
        ("source_line", pa.int64()),
        ("metering_point_id", pa.string()),
        ("job_type", pa.string()),
        ("stage", pa.string()),
        ("outcome", pa.string()),
        ("score", pa.float64()),
        ("reasons", pa.list_(pa.string())),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("checks", pa.list_(CHECK_TYPE)),
        ("n_fail", pa.int64()),
        ("n_not_evaluated", pa.int64()),
        ("network_id", pa.string()),
        ("bus", pa.int64()),
        ("assumptions", pa.list_(pa.string())),
        ("required_main_fuse_a", pa.float64()),
        ("notifiable", pa.bool_()),
        ("notifiable_reason", pa.string()),
        ("ledger_status", pa.string()),
        ("conditions", pa.list_(pa.string())),
        ("condition_messages", pa.list_(MESSAGE_TYPE)),
        ("measures", pa.list_(MEASURE_TYPE)),
        ("limits", pa.list_(LIMIT_TYPE)),
        ("network_data", NETWORK_DATA_TYPE),
        ("path", pa.list_(PATH_POINT_TYPE)),
        ("language", pa.string()),
        ("policy_id", pa.string()),
        ("policy_version", pa.string()),
        ("policy_hash", pa.string()),
        ("grid_model_version", pa.string()),
        ("input_hash", pa.string()),
        ("engine_version", pa.string()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""One row per decision; the nested columns hold everything :func:`decision_from_row` needs to rebuild it."""

_DERIVED = ("source_line", "n_fail", "n_not_evaluated")
"""Columns of the schema that are not fields of :class:`Decision`."""


_PARAMS_JSON = json_encoder(json.JSONEncoder(ensure_ascii=False, sort_keys=True))
"""``json.dumps(..., ensure_ascii=False, sort_keys=True)`` without a new encoder per call."""


def _plain(value: Any) -> bool:
    """A value the JSON dump of a message keeps as it is: str, int, bool, None or a finite float (exact types)."""
    kind = type(value)
    return kind is str or kind is int or kind is bool or value is None or (kind is float and math.isfinite(value))


def _message_row(message: Message) -> dict[str, str]:
    params = message.params
    if type(message) is not Message or not all(map(_plain, params.values())):
        # nested messages and lists of them (the engine's: "missing" with a message, the conditions of an approval),
        # as pydantic's JSON form writes them; enums, NaN, anything else: pydantic's JSON form itself (a plain dict of
        # scalars is its own JSON form)
        json_form = _json_form(params) if type(message) is Message else _NOT_PLAIN
        params = json_form if json_form is not _NOT_PLAIN else _pydantic_params(message)
    return {"key": message.key, "params": _PARAMS_JSON(params)}


_NOT_PLAIN = object()


def _pydantic_params(message: Message) -> dict[str, Any]:
    return Message.model_validate(message).model_dump(mode="json")["params"]


def _json_form(value: Any) -> Any:
    """pydantic's JSON form of a message parameter made only of plain values (:func:`_plain`), messages (exact
    :class:`Message`), lists and tuples of them and dicts of them by str keys; ``_NOT_PLAIN`` for anything else
    (``tests/test_io.py`` compares it with pydantic's)."""
    if _plain(value):
        return value
    kind = type(value)
    if kind is Message:
        params = _json_form(value.params)
        return _NOT_PLAIN if params is _NOT_PLAIN else {"key": value.key, "params": params}
    if kind is list or kind is tuple:
        out = [_json_form(v) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in out) else out
    if kind is dict and all(type(k) is str for k in value):
        out = {k: _json_form(v) for k, v in value.items()}
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in out.values()) else out
    return _NOT_PLAIN


def _message(row: dict[str, Any]) -> dict[str, Any]:
    return {"key": row["key"], "params": json.loads(row["params"])}


def _measure_row(m: MeasureOption) -> dict[str, Any]:
    return {
        **m.model_dump(mode="json", exclude={"message", "effect_message"}),
        "message": _message_row(m.message),
        "effect_message": _message_row(m.effect_message),
    }


def decision_row(decision: Decision, source_line: int | None = None) -> dict[str, Any]:
    """Flat dict of a decision matching ``DECISION_SCHEMA``."""
    row = decision.model_dump(mode="python", exclude={"messages", "condition_messages", "measures"})
    row["outcome"] = str(decision.outcome)
    row["checks"] = [c.model_dump(mode="json") for c in decision.checks]
    row["messages"] = [_message_row(m) for m in decision.messages]
    row["condition_messages"] = [_message_row(m) for m in decision.condition_messages]
    row["measures"] = [_measure_row(m) for m in decision.measures]
    row["source_line"] = source_line
    row["n_fail"] = sum(1 for c in decision.checks if str(c.status) == "fail")
    row["n_not_evaluated"] = sum(1 for c in decision.checks if str(c.status) == "not_evaluated")
    return row


def decision_from_row(row: dict[str, Any]) -> Decision:
    """The :class:`Decision` of a row of a decisions file (:data:`DECISION_SCHEMA`)."""
    data = {k: v for k, v in row.items() if k not in _DERIVED and k in Decision.model_fields}
    data["messages"] = [_message(m) for m in row.get("messages") or []]
    data["condition_messages"] = [_message(m) for m in row.get("condition_messages") or []]
    data["measures"] = [
        {**m, "message": _message(m["message"]), "effect_message": _message(m["effect_message"])}
        for m in row.get("measures") or []
    ]
    for key in ("reasons", "checks", "assumptions", "conditions", "limits", "path"):
        data[key] = data.get(key) or []
    return Decision.model_validate(data)


class DecisionWriter:
    """Streams decisions to a Parquet file in row groups (so a long batch is written as it goes).

    The file is written under a temporary name and moved into place by :meth:`close`,
    so a reader never sees a half-written file.
    """

    def __init__(self, path: str | Path, row_group_size: int = 1024):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._writer = pq.ParquetWriter(self._tmp, DECISION_SCHEMA)
        self._buffer: list[dict[str, Any]] = []
        self._tables: list[pa.Table] = []
        self._table_rows = 0
        self._row_group_size = row_group_size
        self.count = 0
        self.closed = False

    @property
    def partial_path(self) -> Path:
        """Where the file is written until :meth:`close` moves it into place."""
        return self._tmp

    def write(self, decision: Decision, source_line: int | None = None) -> None:
        if self._tables:
            self.flush()
        self._buffer.append(decision_row(decision, source_line))
        self.count += 1
        if len(self._buffer) >= self._row_group_size:
            self.flush()

    def write_table(self, table: pa.Table) -> None:
        """Write decisions already in :data:`DECISION_SCHEMA` (:mod:`powercheck.columnar`), in row groups of
        ``row_group_size`` as :meth:`write` does."""
        if self._buffer:
            self.flush()
        if table.num_rows:
            self._tables.append(table)
            self._table_rows += table.num_rows
            self.count += table.num_rows
        if self._table_rows >= self._row_group_size:
            self.flush()

    def flush(self) -> None:
        if self._tables:
            whole = pa.concat_tables(self._tables) if len(self._tables) > 1 else self._tables[0]
            for start in range(0, whole.num_rows, self._row_group_size):
                self._writer.write_table(whole.slice(start, self._row_group_size))
            self._tables, self._table_rows = [], 0
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=DECISION_SCHEMA))
            self._buffer = []

    def close(self, keep_partial: bool = False) -> None:
        """Write the footer; move the file into place unless ``keep_partial`` (an interrupted run)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
        finally:
            self._writer.close()  # the footer: the file is readable whatever happened
        if not keep_partial:
            self._tmp.replace(self.path)

    def __enter__(self) -> DecisionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        # on an error keep what was decided: the (readable) partial file stays next to the target
        self.close(keep_partial=exc[0] is not None)


def read_decisions(path: str | Path) -> pa.Table:
    return pq.read_table(path)


class DecisionNotFound(LookupError):
    """No decision of that notification in the file."""


def read_decision(path: str | Path, notification_id: str, revision: int | None = None) -> Decision:
    """The decision of one notification in a decisions file (its latest revision unless ``revision``).

    Raises :class:`DecisionNotFound` naming the id (and the revisions the file has) when it is absent,
    ``ValueError`` naming the file when it is not a decisions file.
    """
    path = Path(path)
    try:
        table = pq.read_table(path, filters=[("notification_id", "=", notification_id)])
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"{path}: not a readable decisions file ({exc})") from None
    missing = [name for name in ("notification_id", "revision", "outcome") if name not in table.column_names]
    if missing:
        raise ValueError(f"{path}: not a decisions file (no column {', '.join(missing)})")
    rows = table.to_pylist()
    if not rows:
        raise DecisionNotFound(f"{path}: no decision for notification_id {notification_id!r}")
    if revision is not None:
        picked = [r for r in rows if r["revision"] == revision]
        if not picked:
            have = sorted({r["revision"] for r in rows})
            raise DecisionNotFound(f"{path}: notification_id {notification_id!r} has no revision {revision} "
                                   f"(revisions: {have})")  # fmt: skip
        rows = picked
    # the latest revision; of repeated rows (a resubmission) the last written
    row = max(enumerate(rows), key=lambda ir: (ir[1]["revision"], ir[0]))[1]
    return decision_from_row(row)


CAPACITY_PROBE_COLUMNS = ("kw_max", "binding")


def capacity_schema(probes: Sequence[str], with_start: Sequence[str]) -> pa.Schema:
    """Columns of a capacity map file: the point, then per probe its largest kW and binding rule id."""
    fields = [
        pa.field("metering_point_id", pa.string(), nullable=False),
        pa.field("network_id", pa.string(), nullable=False),
        pa.field("bus", pa.int64(), nullable=False),
        pa.field("distance_km", pa.float64(), metadata={"unit": "km"}),
        pa.field("system", pa.string()),
        pa.field("main_fuse_a", pa.float64(), metadata={"unit": "A", "doc": "fuse before a job (ledger applied)"}),
        pa.field("existing_peak_kw", pa.float64(), metadata={"unit": "kW", "doc": "incl. the ledger's requests"}),
        pa.field("evaluated", pa.bool_(), metadata={"doc": "false: the point's bus has no finite grid data"}),
        pa.field("grid_problem", pa.string(), metadata={"doc": "why the grid model cannot be computed at the bus"}),
        pa.field("ik_min_a", pa.float64(), metadata={"unit": "A"}),
    ]
    doc = "largest rated power every grid check passes with; inf: no check limits it; null: not evaluated"
    for name in probes:
        fields.append(pa.field(f"{name}_kw_max", pa.float64(), metadata={"unit": "kW", "doc": doc}))
        fields.append(pa.field(f"{name}_binding", pa.string(), metadata={"doc": "rule id of the binding check"}))
        if name in with_start:
            start_doc = {"unit": "A", "doc": "start current at the largest size"}
            fields.append(pa.field(f"{name}_start_a", pa.float64(), metadata=start_doc))
    fields.append(pa.field("main_fuse_max_a", pa.float64(), metadata={"unit": "A"}))
    fields.append(pa.field("main_fuse_binding", pa.string()))
    return pa.schema(fields)


def capacity_table(columns: dict[str, Any], metadata: dict[str, str] | None = None) -> pa.Table:
    """The capacity map columns (:meth:`powercheck.rules.capacity.CapacityMap.columns`) as an Arrow table."""
    probes = [k[: -len("_kw_max")] for k in columns if k.endswith("_kw_max")]
    starts = [k[: -len("_start_a")] for k in columns if k.endswith("_start_a")]
    schema = capacity_schema(probes, starts)
    arrays = []
    for f in schema:
        values = columns[f.name]
        if pa.types.is_floating(f.type):
            values = np.asarray(values, dtype=float)
            arrays.append(pa.array(values, type=f.type, mask=np.isnan(values)))
        else:
            arrays.append(pa.array(values, type=f.type))
    meta = {k.encode(): v.encode() for k, v in (metadata or {}).items()}
    return pa.Table.from_arrays(arrays, schema=schema.with_metadata(meta))


def write_table_atomic(table: pa.Table, path: str | Path) -> None:
    """Write a Parquet file next to its target and rename it into place (never a half-written file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        pq.write_table(table, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
