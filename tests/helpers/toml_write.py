"""A small TOML writer for tests that rewrite policy and region files (no TOML writer is a dependency)."""

from __future__ import annotations

import json
import math
from typing import Any


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes, non-ASCII kept, DEL escaped)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_tables(data: dict[str, Any]) -> str:
    """``{"policy": {...}, "param": {"key": {...}}}`` as TOML: one [a] or [a.b] table per nested table."""
    lines: list[str] = []

    def table(prefix: str, body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not (isinstance(v, dict) and _is_table(v))}
        lines.append(f"[{prefix}]")
        lines.extend(f"{_string(k)} = {toml_value(v)}" for k, v in scalars.items())
        for k, v in body.items():
            if k not in scalars:
                table(f"{prefix}.{_string(k)}", v)

    for name, body in data.items():
        if isinstance(body, list):  # an array of tables
            for item in body:
                lines.append(f"[[{name}]]")
                lines.extend(f"{_string(k)} = {toml_value(v)}" for k, v in item.items())
        else:
            table(_string(name), body)
    return "\n".join(lines) + "\n"


def _is_table(v: dict) -> bool:
    """Nested tables of a policy or manifest ([param.<key>], [defaults.<key>]) -- not a value's inline table."""
    return "value" in v or any(isinstance(x, dict) and "value" in x for x in v.values())
