"""The connection policy: limits and assumptions, each with its source.

A policy is a TOML file (see ``policy_default.toml``) with a ``[policy]`` header
(id, version) and a ``[param.<key>]`` table per number or table the rules use.
Every parameter says where it comes from (``tag`` S/D/R/P and ``source``); the
``R`` ones are unverified recall and every decision that depends on one names it.

Load with :func:`load_policy` (a path, or ``None`` for the packaged default).
Parameters are read with :meth:`Policy.value`; asking for a key the policy does
not define raises ``KeyError`` naming the key, so a rule can never silently fall
back to a hidden default.
"""

from __future__ import annotations

import hashlib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from powercheck.params import Param

DEFAULT_POLICY_RESOURCE = "policy_default.toml"


class PolicyHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""


# Keys the rules read, with the Python type their value must have.
REQUIRED_PARAMS: dict[str, type | tuple[type, ...]] = {
    "voltage_min_pu": (int, float),
    "voltage_max_pu": (int, float),
    "rvc_rare_max_percent": (int, float),
    "rvc_rare_rate_per_min": (int, float),
    "rvc_frequent_max_percent": (int, float),
    "rvc_flicker_rate_per_min": (int, float),
    "rvc_stationary_max_percent": (int, float),
    "rvc_max_events_per_day": (int, float),
    "operating_hours_per_day": (int, float),
    "unbalance_max_percent": (int, float),
    "background_unbalance_percent": (int, float),
    "line_loading_max_percent": (int, float),
    "transformer_loading_max_percent": (int, float),
    "customer_coincidence": (int, float),
    "demand_cos_phi": (int, float),
    "fuse_demand_factor": (int, float),
    "selectivity_ratio_min": (int, float),
    "sc_c_min": (int, float),
    "fuse_melting_5s_a": dict,
    "standard_fuse_sizes_a": list,
    "budget_required_above_fuse_a": dict,
    "auto_approve_max_fuse_a": dict,
    "auto_approve_job_types": list,
    "auto_approve_min_relative_margin": (int, float),
    "required_appliance_fields": dict,
    "appliance_defaults": dict,
}


class PolicyError(ValueError):
    """The policy file is malformed; the message names the key."""


class Policy(BaseModel):
    """A loaded, validated policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: PolicyHeader
    params: dict[str, Param]
    sha256: str
    source_path: str | None = None

    @property
    def id(self) -> str:
        return self.header.id

    @property
    def version(self) -> str:
        return self.header.version

    @property
    def hash(self) -> str:
        """Short content hash: two policies with the same version but other numbers differ here."""
        return self.sha256[:12]

    def param(self, key: str) -> Param:
        try:
            return self.params[key]
        except KeyError:
            raise KeyError(f"policy {self.id} {self.version} has no parameter {key!r}") from None

    def value(self, key: str) -> Any:
        return self.param(key).value

    def assumption_keys(self, *keys: str) -> list[str]:
        """Those of ``keys`` that are [R] assumptions, as 'policy:<key>'."""
        return [f"policy:{k}" for k in keys if self.param(k).is_assumption]

    def assumptions(self) -> dict[str, Param]:
        """All [R] parameters of the policy."""
        return {k: p for k, p in self.params.items() if p.is_assumption}

    def fuse_melting_5s(self, fuse_a: float) -> float | None:
        """5-s melting current [A] of a gG fuse of rating ``fuse_a``, or None if not tabulated."""
        table: dict[str, float] = self.value("fuse_melting_5s_a")
        for rating, current in table.items():
            if abs(float(rating) - fuse_a) < 1e-9:
                return float(current)
        return None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view (used by `GET /v1/policy` and the CLI)."""
        return {
            "id": self.id,
            "version": self.version,
            "hash": self.hash,
            "description": self.header.description,
            "params": {k: p.model_dump(mode="json") for k, p in self.params.items()},
            "assumptions": sorted(self.assumptions()),
        }


def _validate_params(raw: dict[str, Any]) -> dict[str, Param]:
    params: dict[str, Param] = {}
    for key, table in raw.items():
        if not isinstance(table, dict):
            raise PolicyError(f"param.{key}: expected a table with value/unit/tag/source")
        try:
            params[key] = Param.model_validate(table)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise PolicyError(f"param.{key}.{where}: {first['msg']}") from None
    for key, kind in REQUIRED_PARAMS.items():
        if key not in params:
            raise PolicyError(f"param.{key}: missing (the rules need it)")
        value = params[key].value
        if isinstance(value, bool) or not isinstance(value, kind):
            raise PolicyError(f"param.{key}.value: expected {kind}, got {type(value).__name__}")
    for key in ("fuse_melting_5s_a",):
        for rating, current in params[key].value.items():
            try:
                float(rating)
            except ValueError:
                raise PolicyError(f"param.{key}.value: rating {rating!r} is not a number") from None
            if not isinstance(current, (int, float)) or current <= 0:
                raise PolicyError(f"param.{key}.value.{rating}: must be a positive number")
    return params


def parse_policy(text: str, *, source_path: str | None = None) -> Policy:
    """Parse and validate policy TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy TOML is malformed: {exc}") from None
    if "policy" not in data:
        raise PolicyError("policy: missing [policy] header table")
    try:
        header = PolicyHeader.model_validate(data["policy"])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PolicyError(f"policy.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    unknown = set(data) - {"policy", "param"}
    if unknown:
        raise PolicyError(f"{sorted(unknown)[0]}: unknown top-level table (expected [policy] and [param.*])")
    params = _validate_params(data.get("param", {}))
    return Policy(
        header=header,
        params=params,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        source_path=source_path,
    )


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file, or the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files("powercheck.rules").joinpath(DEFAULT_POLICY_RESOURCE).read_text(encoding="utf-8")
        return parse_policy(text, source_path=f"powercheck.rules/{DEFAULT_POLICY_RESOURCE}")
    path = Path(path)
    return parse_policy(path.read_text(encoding="utf-8"), source_path=str(path))
