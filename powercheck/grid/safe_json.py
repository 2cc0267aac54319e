"""pandapower JSON from a region is untrusted input: only plain data types may be in it.

pandapower's reader turns every JSON object with ``_module`` and ``_class`` keys into an
instance of that class, importing the module first. Before pandapower 3.5.4 any module and
class could be named (arbitrary code execution, e2nIEE/pandapower#3049); 3.5.4 checks the
class against an allow-list, but still imports the module before the check, so a network file
can make the process import any module on the path (and run its import-time code).

:func:`read_network_json` therefore reads the file itself, walks every object of it -- also the
JSON strings pandapower decodes again (the ``_object`` of a DataFrame) -- and refuses the file
when an object names a type outside :data:`ALLOWED_TYPES` (the pandapower network, pandas
frames, series and indexes, numpy arrays and scalars, and the builtin containers pandapower
writes), naming the type and where it is. Only then is the text handed to pandapower, which
requires at least :data:`MIN_PANDAPOWER`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from powercheck.grid.networks import GridModelError
from powercheck.lazy import lazy_module

pp = lazy_module("pandapower")

MIN_PANDAPOWER = (3, 5, 4)
"""The first pandapower release with its own allow-list for JSON types (e2nIEE/pandapower#3061)."""

READER_VERSION = 1
"""Part of the grid cache key: arrays cached by an earlier (unchecked) reader are never reused."""

MAX_NETWORK_BYTES = 200_000_000
"""Largest network file read [bytes] (an LV network is a few MB)."""

ALLOWED_TYPES: frozenset[tuple[str, str]] = frozenset(
    {
        ("pandapower.auxiliary", "pandapowerNet"),
        ("pandas.core.frame", "DataFrame"),
        ("pandas.core.series", "Series"),
        ("pandas.core.indexes.base", "Index"),
        ("pandas.core.indexes.range", "RangeIndex"),
        ("pandas.core.indexes.multi", "MultiIndex"),
        ("pandas.core.indexes.datetimes", "DatetimeIndex"),
        ("numpy", "array"),
        ("builtins", "tuple"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
    }
)
"""``(_module, _class)`` pairs a network file may name; numpy scalar types (``numpy.float64`` ...) too."""

ALLOWED_NET = ("pandapower.auxiliary", "pandapowerNet")
"""The type of the top-level object."""


def pandapower_version() -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", pp.__version__)[:3])


def require_safe_pandapower() -> None:
    """Refuse to read network files with a pandapower older than :data:`MIN_PANDAPOWER`."""
    if pandapower_version() < MIN_PANDAPOWER:
        need = ".".join(map(str, MIN_PANDAPOWER))
        raise GridModelError(
            f"pandapower {pp.__version__} reads network files unsafely (e2nIEE/pandapower#3049); "
            f"install pandapower>={need} to load network JSON files"
        )


def _allowed(module: Any, cls: Any) -> bool:
    if not isinstance(module, str) or not isinstance(cls, str):
        return False
    if (module, cls) in ALLOWED_TYPES:
        return True
    if module == "numpy":  # numpy scalar types, looked up without importing anything
        kind = getattr(np, cls, None)
        return isinstance(kind, type) and issubclass(kind, np.generic)
    return False


def check_network_objects(data: Any, origin: str) -> None:
    """Raise :class:`GridModelError` when an object of decoded network JSON names a type not allowed.

    Strings that pandapower decodes again (``_object`` of a pandas type) are decoded and checked too.
    """
    stack: list[tuple[Any, str]] = [(data, "$")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        if "_module" in value or "_class" in value:
            module, cls = value.get("_module"), value.get("_class")
            if not _allowed(module, cls):
                raise GridModelError(
                    f"{origin}: {where} is a {module}.{cls} object; a network file may hold only pandapower, "
                    "pandas and numpy data types -- refused"
                )
            inner = value.get("_object")
            if isinstance(inner, str) and inner.lstrip()[:1] in ("{", "["):
                try:
                    inner = json.loads(inner)
                except (ValueError, RecursionError):
                    raise GridModelError(f"{origin}: {where}._object is not readable JSON") from None
                stack.append((inner, f"{where}._object"))
                continue
        stack.extend((v, f"{where}.{k}") for k, v in value.items())


def read_network_json(path: Path, origin: str) -> pp.pandapowerNet:
    """A pandapower network from an untrusted JSON file (see the module docstring)."""
    require_safe_pandapower()
    size = path.stat().st_size
    if size > MAX_NETWORK_BYTES:
        raise GridModelError(f"{origin}: {size} bytes, more than a network file may have ({MAX_NETWORK_BYTES})")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise GridModelError(f"{origin}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise GridModelError(f"{origin}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (RecursionError, ValueError) as exc:
        raise GridModelError(f"{origin}: not readable JSON ({type(exc).__name__})") from None
    if not (isinstance(data, dict) and (data.get("_module"), data.get("_class")) == ALLOWED_NET):
        raise GridModelError(f"{origin}: not a pandapower network (the top level must be a pandapowerNet object)")
    check_network_objects(data, origin)
    try:
        net = pp.from_json_string(text, convert=True)
    except Exception as exc:
        raise GridModelError(f"{origin}: not a pandapower JSON network ({type(exc).__name__}: {exc})") from None
    if not isinstance(net, pp.pandapowerNet):
        raise GridModelError(f"{origin}: not a pandapower network")
    return net
