"""Arrow arrays built from NumPy buffers and Python values without ``pyarrow.array``.

``pyarrow.array`` imports pandas on its first call (to ask whether the input is a pandas object), about
0.3 s: the screening path builds its decision tables here instead (``tests/test_arrow_build.py`` checks the
arrays equal ``pyarrow.array``'s). Numbers come from NumPy buffers as they are; strings, lists and structs are
assembled from offsets and child arrays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa

_NUMERIC = {
    pa.float64(): np.float64,
    pa.int64(): np.int64,
    pa.int32(): np.int32,
    pa.int8(): np.int8,
}


def _validity(valid: np.ndarray | None) -> pa.Buffer | None:
    if valid is None or valid.all():
        return None
    return pa.py_buffer(np.packbits(valid.astype(bool), bitorder="little"))


FLOAT64 = pa.float64()


def numbers(values: np.ndarray, type_: pa.DataType = FLOAT64, valid: np.ndarray | None = None) -> pa.Array:
    """A numeric array from a NumPy array; float NaN is null unless ``valid`` says otherwise."""
    dtype = _NUMERIC[type_]
    data = np.ascontiguousarray(values, dtype=dtype)
    if valid is None and dtype is np.float64:
        valid = ~np.isnan(data)
    mask = _validity(valid)
    n = int(data.shape[0])
    null_count = 0 if mask is None else int(n - np.count_nonzero(valid))
    return pa.Array.from_buffers(type_, n, [mask, pa.py_buffer(data)], null_count=null_count)


def booleans(values: Sequence[bool | None]) -> pa.Array:
    valid = np.array([v is not None for v in values], dtype=bool)
    bits = np.packbits(np.array([bool(v) for v in values], dtype=bool), bitorder="little")
    n = len(values)
    return pa.Array.from_buffers(pa.bool_(), n, [_validity(valid), pa.py_buffer(bits)], null_count=int(n - valid.sum()))


def strings(values: Sequence[str | None]) -> pa.Array:
    """A string array (None is null): the values are joined and encoded in one call; byte offsets come from the
    string lengths when the text is ASCII (one byte per character), else from each value's encoding."""
    n = len(values)
    valid = None
    null_count = 0
    if None in values:
        valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
        null_count = int(n - np.count_nonzero(valid))
        values = ["" if v is None else v for v in values]
    text = "".join(values)
    data = text.encode("utf-8")
    if len(data) == len(text):
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    else:
        lengths = np.fromiter(map(len, map(str.encode, values)), dtype=np.int64, count=n)  # UTF-8, str's default
    offsets = np.zeros(n + 1, dtype=np.int32)
    if n:
        np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(),
        n,
        [_validity(valid), pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=null_count,
    )


def lists(offsets: np.ndarray, child: pa.Array, type_: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """A list array: row k holds ``child[offsets[k]:offsets[k+1]]``."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int32)
    n = int(offsets.shape[0] - 1)
    mask = _validity(valid)
    null_count = 0 if mask is None else int(n - np.count_nonzero(valid))
    return pa.Array.from_buffers(type_, n, [mask, pa.py_buffer(offsets)], null_count=null_count, children=[child])


def structs(children: Sequence[pa.Array], type_: pa.StructType, valid: np.ndarray | None = None) -> pa.Array:
    n = len(children[0]) if children else 0
    mask = _validity(valid)
    null_count = 0 if mask is None else int(n - np.count_nonzero(valid))
    return pa.Array.from_buffers(type_, n, [mask], null_count=null_count, children=list(children))


def timestamps(values: Sequence[datetime | None], type_: pa.TimestampType) -> pa.Array:
    """Microsecond timestamps (naive datetimes are taken as UTC)."""
    ints = np.array(
        [0 if v is None else ((v if v.tzinfo else v.replace(tzinfo=UTC)) - _EPOCH) // _MICRO for v in values],
        dtype=np.int64,
    )
    valid = np.array([v is not None for v in values], dtype=bool)
    n = len(values)
    return pa.Array.from_buffers(type_, n, [_validity(valid), pa.py_buffer(ints)], null_count=int(n - valid.sum()))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def from_python(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """An array of ``type_`` from Python values (dicts for structs, lists for lists, None for null)."""
    if pa.types.is_string(type_):
        return strings(values)
    if type_ in _NUMERIC:
        dtype = _NUMERIC[type_]
        valid = np.array([v is not None for v in values], dtype=bool)
        data = np.array([0 if v is None else v for v in values], dtype=dtype)
        return numbers(data, type_, valid)
    if pa.types.is_boolean(type_):
        return booleans(values)
    if pa.types.is_timestamp(type_):
        return timestamps(values, type_)
    if pa.types.is_list(type_):
        valid = np.array([v is not None for v in values], dtype=bool)
        lengths = [0 if v is None else len(v) for v in values]
        offsets = np.zeros(len(values) + 1, dtype=np.int64)
        if values:
            np.cumsum(lengths, out=offsets[1:])
        flat = [x for v in values if v is not None for x in v]
        return lists(offsets, from_python(flat, type_.value_type), type_, valid)
    if pa.types.is_struct(type_):
        valid = np.array([v is not None for v in values], dtype=bool)
        rows = values if valid.all() else [{} if v is None else v for v in values]
        children = [from_python(_field(rows, f.name), f.type) for f in type_]
        return structs(children, type_, valid)
    raise TypeError(f"no builder for Arrow type {type_}")


def _field(rows: Sequence[Any], name: str) -> list:
    """``[row.get(name) for row in rows]`` (the rows dicts), without a Python loop when they are all dicts."""
    try:
        return list(map(dict.get, rows, repeat(name)))
    except TypeError:  # a mapping that is not a dict
        return [row.get(name) for row in rows]


def table(columns: dict[str, pa.Array], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` from its columns (every column of the schema present)."""
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def json_text(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) as the decisions file stores message parameters."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
