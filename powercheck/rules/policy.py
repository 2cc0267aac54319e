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
    "flicker_pst_max": (int, float),
    "flicker_plt_max": (int, float),
    "flicker_min_changes_per_hour": (int, float),
    "flicker_background_pst": (int, float),
    "flicker_summation_alpha": (int, float),
    "flicker_shape_factor": (int, float),
    "flicker_tf_coeff": (int, float),
    "flicker_tf_exponent": (int, float),
    "flicker_active_intervals": (int, float),
    "thd_max_percent": (int, float),
    "harmonic_voltage_max_percent": dict,
    "harmonic_summation_alpha": list,
    "harmonic_skin_exponent": (int, float),
    "harmonic_background_percent": dict,
    "harmonic_class_of_kind": dict,
    "harmonic_spectra": dict,
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

    def harmonic_alpha(self, order: int) -> float:
        """IEC 61000-3-6 summation exponent for a harmonic order."""
        for max_order, alpha in self.value("harmonic_summation_alpha"):
            if order <= max_order:
                return float(alpha)
        return float(self.value("harmonic_summation_alpha")[-1][1])

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
    for key in ("fuse_melting_5s_a", "harmonic_voltage_max_percent", "harmonic_background_percent"):
        _numeric_table(key, params[key].value)
    for name, spectrum in params["harmonic_spectra"].value.items():
        if not isinstance(spectrum, dict):
            raise PolicyError(f"param.harmonic_spectra.value.{name}: expected a table of order = percent")
        _numeric_table(f"harmonic_spectra.value.{name}", spectrum, allow_zero=True)
    classes = set(params["harmonic_spectra"].value) | {"none"}
    for kind, cls in params["harmonic_class_of_kind"].value.items():
        if cls not in classes:
            raise PolicyError(f"param.harmonic_class_of_kind.value.{kind}: unknown spectrum {cls!r}")
    alpha = params["harmonic_summation_alpha"].value
    if not alpha or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in p) for p in alpha
    ):
        raise PolicyError(
            "param.harmonic_summation_alpha.value: expected [[max_order, alpha], ...] with positive numbers"
        )
    return params


def _numeric_table(key: str, table: dict, *, allow_zero: bool = False) -> None:
    for label, number in table.items():
        try:
            float(label)
        except ValueError:
            raise PolicyError(f"param.{key}: key {label!r} is not a number") from None
        ok = isinstance(number, (int, float)) and not isinstance(number, bool)
        if not ok or number < 0 or (number == 0 and not allow_zero):
            raise PolicyError(f"param.{key}.{label}: must be a positive number")


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
