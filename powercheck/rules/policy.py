"""The connection policy: limits and assumptions, each with its source and its allowed range.

A policy is a TOML file (see ``policy_default.toml``) with a ``[policy]`` header
(id, version) and a ``[param.<key>]`` table per number or table the rules use.
Every parameter says where it comes from (``tag`` S/D/R/P and ``source``); the
``R`` ones are unverified recall and every decision that depends on one names it.

The keys the rules read are the members of :class:`PolicyKey`; no rule spells a
key as a string. :data:`PARAM_SCHEMA` gives each key its type, unit and allowed
range: a policy whose value lies outside the range is refused at load with the
key, the value and the range.

Load with :func:`load_policy` (a path, or ``None`` for the packaged default).
Parameters are read with :meth:`Policy.value`; asking for a key the policy does
not define raises ``KeyError`` naming the key, so a rule can never silently fall
back to a hidden default.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from powercheck.memo import IdentityMemo
from powercheck.models import Appliance, ApplianceKind, JobType, NetworkSystem, Notification
from powercheck.params import Group, Param, Range

DEFAULT_POLICY_RESOURCE = "policy_default.toml"


class PolicyKey(StrEnum):
    """Every policy parameter the rules read."""

    VOLTAGE_MIN_PU = "voltage_min_pu"
    VOLTAGE_MAX_PU = "voltage_max_pu"
    VOLTAGE_PLANNING_MIN_PU = "voltage_planning_min_pu"
    VOLTAGE_PLANNING_MAX_PU = "voltage_planning_max_pu"
    RVC_RARE_MAX_PERCENT = "rvc_rare_max_percent"
    RVC_RARE_RATE_PER_MIN = "rvc_rare_rate_per_min"
    RVC_FREQUENT_MAX_PERCENT = "rvc_frequent_max_percent"
    RVC_STATIONARY_MAX_PERCENT = "rvc_stationary_max_percent"
    RVC_MAX_EVENTS_PER_DAY = "rvc_max_events_per_day"
    RVC_MAX_STEP_PERCENT = "rvc_max_step_percent"
    START_BEHAVIOUR = "start_behaviour"
    OPERATING_HOURS_PER_DAY = "operating_hours_per_day"
    UNBALANCE_MAX_PERCENT = "unbalance_max_percent"
    BACKGROUND_UNBALANCE_PERCENT = "background_unbalance_percent"
    LINE_LOADING_MAX_PERCENT = "line_loading_max_percent"
    TRANSFORMER_LOADING_MAX_PERCENT = "transformer_loading_max_percent"
    CUSTOMER_COINCIDENCE = "customer_coincidence"
    APPLIANCE_DIVERSITY = "appliance_diversity"
    APPROVAL_VALID_DAYS = "approval_valid_days"
    NOTIFICATION_THRESHOLDS = "notification_thresholds"
    SOFT_START_MAX_RATIO = "soft_start_max_ratio"
    MEASURES = "measures"
    DEMAND_COS_PHI = "demand_cos_phi"
    FUSE_DEMAND_FACTOR = "fuse_demand_factor"
    SELECTIVITY_RATIO_MIN = "selectivity_ratio_min"
    SC_C_MIN = "sc_c_min"
    SC_C_MAX = "sc_c_max"
    FUSE_GG_GATES_A = "fuse_gg_gates_a"
    FUSE_GG_PREARC_I2T_A2S = "fuse_gg_prearc_i2t_a2s"
    MCB_MAGNETIC_TRIP_MULTIPLES = "mcb_magnetic_trip_multiples"
    MCB_THERMAL_NO_TRIP = "mcb_thermal_no_trip"
    BREAKER_PICKUP_TOLERANCE = "breaker_pickup_tolerance"
    BREAKER_LET_THROUGH_TIME_S = "breaker_let_through_time_s"
    UPSTREAM_FUSE_FROM_FEEDER_CABLE = "upstream_fuse_from_feeder_cable"
    STANDARD_FUSE_SIZES_A = "standard_fuse_sizes_a"
    BUDGET_REQUIRED_ABOVE_FUSE_A = "budget_required_above_fuse_a"
    AUTO_APPROVE_MAX_FUSE_A = "auto_approve_max_fuse_a"
    AUTO_APPROVE_JOB_TYPES = "auto_approve_job_types"
    AUTO_APPROVE_MAX_FUSE_KVA = "auto_approve_max_fuse_kva"
    TARIFF_THRESHOLDS_A = "tariff_thresholds_a"
    AUTO_APPROVE_MIN_RELATIVE_MARGIN = "auto_approve_min_relative_margin"
    REQUIRED_APPLIANCE_FIELDS = "required_appliance_fields"
    APPLIANCE_DEFAULTS = "appliance_defaults"
    FLICKER_PST_MAX = "flicker_pst_max"
    FLICKER_PLT_MAX = "flicker_plt_max"
    FLICKER_GRID_PST_MAX = "flicker_grid_pst_max"
    FLICKER_GRID_PLT_MAX = "flicker_grid_plt_max"
    FLICKER_CUSTOMER_PST_MAX = "flicker_customer_pst_max"
    FLICKER_CUSTOMER_PLT_MAX = "flicker_customer_plt_max"
    FLICKER_MIN_CHANGES_PER_HOUR = "flicker_min_changes_per_hour"
    FLICKER_BACKGROUND_PST = "flicker_background_pst"
    FLICKER_SUMMATION_ALPHA = "flicker_summation_alpha"
    FLICKER_SHAPE_FACTOR = "flicker_shape_factor"
    FLICKER_TF_COEFF = "flicker_tf_coeff"
    FLICKER_TF_EXPONENT = "flicker_tf_exponent"
    FLICKER_ACTIVE_INTERVALS = "flicker_active_intervals"
    THD_MAX_PERCENT = "thd_max_percent"
    THD_MAX_ORDER = "thd_max_order"
    THD_WEEK_MAX_PERCENT = "thd_week_max_percent"
    THD_WEEK_KINDS = "thd_week_kinds"
    HARMONIC_VOLTAGE_MAX_PERCENT = "harmonic_voltage_max_percent"
    HARMONIC_SUMMATION_ALPHA = "harmonic_summation_alpha"
    HARMONIC_SKIN_EXPONENT = "harmonic_skin_exponent"
    HARMONIC_BACKGROUND_PERCENT = "harmonic_background_percent"
    HARMONIC_CLASS_OF_KIND = "harmonic_class_of_kind"
    HARMONIC_SPECTRA = "harmonic_spectra"
    JOB_TYPES = "job_types"
    CHALLENGING_APPLIANCES = "challenging_appliances"
    SINGLE_LINE_DIAGRAM_ABOVE_FUSE_A = "single_line_diagram_above_fuse_a"
    COMPLETION_ATTACHMENTS = "completion_attachments"
    VELANDER_K1 = "velander_k1"
    VELANDER_K2 = "velander_k2"


class PolicyError(ValueError):
    """The policy file is malformed or out of range; the message names the key."""


# ----------------------------------------------------------------------------------------------
# schema: the type and range of every key
# ----------------------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(where: str, value: Any, rng: Range) -> None:
    if not _number(value):
        raise PolicyError(f"{where}: expected a number, got {type(value).__name__}")
    if not rng.contains(float(value)):
        raise PolicyError(f"{where}: {value!r} is outside the allowed range {rng}")


def _number_table(key_kind: str, rng: Range, *, key_range: Range | None = None) -> Callable[[str, Any], None]:
    """A table of ``label = number``; labels are numbers (``key_range``) or names."""

    def check(where: str, table: Any) -> None:
        if not isinstance(table, dict) or not table:
            raise PolicyError(f"{where}: expected a non-empty table of {key_kind} = number")
        for label, number in table.items():
            if key_range is not None:
                try:
                    numeric = float(label)
                except ValueError:
                    raise PolicyError(f"{where}: key {label!r} is not a number") from None
                if not key_range.contains(numeric):
                    raise PolicyError(f"{where}: key {label!r} is outside the allowed range {key_range}")
            _check_number(f"{where}.{label}", number, rng)

    return check


def _system_table(rng: Range) -> Callable[[str, Any], None]:
    def check(where: str, table: Any) -> None:
        _number_table("system", rng)(where, table)
        systems = {s.value for s in NetworkSystem}
        for label in table:
            if label not in systems:
                raise PolicyError(f"{where}: {label!r} is not a network system ({', '.join(sorted(systems))})")

    return check


def _fuse_sizes(where: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise PolicyError(f"{where}: expected a non-empty list of fuse ratings")
    for i, v in enumerate(value):
        _check_number(f"{where}[{i}]", v, Range(0, 10_000, lo_open=True))
    if any(b <= a for a, b in zip(value, value[1:])):
        raise PolicyError(f"{where}: ratings must be strictly increasing")


FUSE_GATES = ("no_melt_10s", "melt_5s", "no_melt_0_1s", "melt_0_1s")
"""Columns of the gG gate table: I_min(10 s), I_max(5 s), I_min(0.1 s), I_max(0.1 s)."""


def _gate_table(where: str, value: Any) -> None:
    if not isinstance(value, dict) or not value:
        raise PolicyError(
            f"{where}: expected a table of rating = [I_min(10 s), I_max(5 s), I_min(0.1 s), I_max(0.1 s)]"
        )
    for rating, gates in value.items():
        try:
            numeric = float(rating)
        except ValueError:
            raise PolicyError(f"{where}: key {rating!r} is not a fuse rating") from None
        if not Range(0, 10_000, lo_open=True).contains(numeric):
            raise PolicyError(f"{where}: rating {rating!r} is outside the allowed range (0, 10000]")
        if not isinstance(gates, list) or len(gates) != 4:
            raise PolicyError(
                f"{where}.{rating}: expected 4 currents [I_min(10 s), I_max(5 s), I_min(0.1 s), I_max(0.1 s)]"
            )
        for name, current in zip(FUSE_GATES, gates):
            _check_number(f"{where}.{rating}.{name}", current, Range(numeric, 1e6, lo_open=True))
        if not (gates[0] < gates[1] and gates[0] < gates[2] < gates[3] and gates[1] < gates[3]):
            raise PolicyError(f"{where}.{rating}: the gates must grow as I_min(10 s) < I_max(5 s) < I_max(0.1 s)")


def _thresholds(where: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected a table")
    expected = {
        "always",
        "single_phase_appliance_a",
        "pv_kw",
        "battery_kw",
        "motor_direct_on_line_kw",
        "motor_soft_start_kw",
        "inverter_kw",
    }
    missing = expected - set(value)
    if missing:
        raise PolicyError(f"{where}.{sorted(missing)[0]}: missing")
    _job_types(f"{where}.always", value["always"])
    for key in ("single_phase_appliance_a", "pv_kw", "battery_kw"):
        _check_number(f"{where}.{key}", value[key], Range(0, 10_000))
    for key in ("motor_direct_on_line_kw", "motor_soft_start_kw", "inverter_kw"):
        pair = value[key]
        if not isinstance(pair, list) or len(pair) != 2:
            raise PolicyError(f"{where}.{key}: expected [single-phase kW, three-phase kW]")
        for i, v in enumerate(pair):
            _check_number(f"{where}.{key}[{i}]", v, Range(0, 10_000))


def _job_types(where: str, value: Any) -> None:
    known = {j.value for j in JobType}
    if not isinstance(value, list):
        raise PolicyError(f"{where}: expected a list of job types")
    for i, item in enumerate(value):
        if not isinstance(item, str) or item not in known:
            raise PolicyError(f"{where}[{i}]: {item!r} is not a job type ({', '.join(sorted(known))})")


def _kind_keyed(where: str, value: Any, check_item: Callable[[str, Any], None]) -> None:
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected a table keyed by appliance kind")
    kinds = {k.value for k in ApplianceKind}
    for kind, item in value.items():
        if kind not in kinds:
            raise PolicyError(f"{where}.{kind}: not an appliance kind ({', '.join(sorted(kinds))})")
        check_item(f"{where}.{kind}", item)


def _required_fields(where: str, value: Any) -> None:
    fields = set(Appliance.model_fields)

    def item(w: str, names: Any) -> None:
        if not isinstance(names, list) or not all(isinstance(n, str) and n in fields for n in names):
            raise PolicyError(f"{w}: expected a list of appliance field names ({', '.join(sorted(fields))})")

    _kind_keyed(where, value, item)


APPLIANCE_DEFAULT_RANGES = {
    "cos_phi": Range(0, 1, lo_open=True),
    "start_current_ratio": Range(1, 20),
    "starts_per_hour": Range(0, 3600),
    "cos_phi_start": Range(0, 1, lo_open=True),
    "start_duration_s": Range(0, 60, lo_open=True),
    "operating_minutes_per_2h": Range(0, 120, lo_open=True),
}


def _appliance_defaults(where: str, value: Any) -> None:
    def item(w: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise PolicyError(f"{w}: expected a table of appliance values")
        for name, number in table.items():
            if name not in APPLIANCE_DEFAULT_RANGES:
                raise PolicyError(f"{w}.{name}: unknown appliance default ({', '.join(APPLIANCE_DEFAULT_RANGES)})")
            _check_number(f"{w}.{name}", number, APPLIANCE_DEFAULT_RANGES[name])

    _kind_keyed(where, value, item)


HARMONIC_ORDERS = Range(2, 50)
"""Harmonic orders a policy table may name."""


MEASURE_IDS = (
    "charging_current_limit",
    "three_phase",
    "export_limit",
    "reactive_power",
    "soft_starter",
    "frequency_converter",
    "main_fuse",
    "service_cable",
    "kv_fuse",
)
"""The measures the rules know how to apply (``rules/measures.py``)."""


def _measures(where: str, value: Any) -> None:
    if not isinstance(value, list):
        raise PolicyError(f"{where}: expected a list of measure tables")
    kinds = {k.value for k in ApplianceKind}
    seen = set()
    for i, m in enumerate(value):
        w = f"{where}[{i}]"
        if not isinstance(m, dict):
            raise PolicyError(f"{w}: expected a table")
        if m.get("id") not in MEASURE_IDS:
            raise PolicyError(f"{w}.id: {m.get('id')!r} is not a known measure ({', '.join(MEASURE_IDS)})")
        if m["id"] in seen:
            raise PolicyError(f"{w}.id: {m['id']!r} is listed twice")
        seen.add(m["id"])
        if m.get("tag") not in ("S", "S-partial", "D", "R", "P") or not isinstance(m.get("source"), str):
            raise PolicyError(f"{w}: every measure needs a tag (S/D/R/P) and a source")
        if not isinstance(m.get("kinds", []), list) or not set(m.get("kinds", [])) <= kinds:
            raise PolicyError(f"{w}.kinds: appliance kinds only ({', '.join(sorted(kinds))})")
        if "steps_a" in m:
            _fuse_sizes(f"{w}.steps_a", m["steps_a"])
        if "cos_phi" in m:
            _check_number(f"{w}.cos_phi", m["cos_phi"], Range(0.8, 1.0))
        if "start_current_ratio" in m:
            _check_number(f"{w}.start_current_ratio", m["start_current_ratio"], Range(1.0, 10.0))


def _alpha_steps(where: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise PolicyError(f"{where}: expected [[max_order, alpha], ...]")
    for i, pair in enumerate(value):
        if not (isinstance(pair, list) and len(pair) == 2 and all(_number(v) for v in pair)):
            raise PolicyError(f"{where}[{i}]: expected [max_order, alpha] with numbers")
        _check_number(f"{where}[{i}][0]", pair[0], HARMONIC_ORDERS)
        _check_number(f"{where}[{i}][1]", pair[1], Range(0.5, 5))


def _spectra(where: str, value: Any) -> None:
    if not isinstance(value, dict) or not value:
        raise PolicyError(f"{where}: expected a table of named spectra")
    for name, spectrum in value.items():
        if not isinstance(spectrum, dict):
            raise PolicyError(f"{where}.{name}: expected a table of order = percent")
        _number_table("order", Range(0, 200), key_range=HARMONIC_ORDERS)(f"{where}.{name}", spectrum)


CHECK_GROUPS = {"load": "LOAD", "protection": "PROT", "thermal": "THERMAL", "voltage": "VOLT", "power_quality": "PQ"}
"""Check groups a job type may apply (policy name -> rule-id group); the gates and the ledger always apply."""

ATTACHMENT_KINDS = (
    "datasheet",
    "single_line_diagram",
    "declaration_of_conformity",
    "site_plan",
    "owner_consent",
    "changeover_description",
)
"""Attachments the policy can require (``Notification.attachments[].kind``)."""


def _job_table(where: str, value: Any) -> None:
    """``job_types``: per job type the check groups that apply, the required fields and attachments."""
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected a table keyed by job type")
    jobs = {j.value for j in JobType}
    missing = sorted(jobs - set(value))
    if missing:
        raise PolicyError(f"{where}.{missing[0]}: missing (every job type states its checks and required fields)")
    fields = set(Notification.model_fields)
    for job, row in value.items():
        w = f"{where}.{job}"
        if job not in jobs:
            raise PolicyError(f"{w}: not a job type ({', '.join(sorted(jobs))})")
        if not isinstance(row, dict) or set(row) - {"checks", "required", "attachments"}:
            raise PolicyError(f"{w}: expected a table with checks, required and attachments")
        for key, allowed in (
            ("checks", set(CHECK_GROUPS)),
            ("required", fields),
            ("attachments", set(ATTACHMENT_KINDS)),
        ):
            names = row.get(key)
            if not isinstance(names, list) or not all(isinstance(x, str) and x in allowed for x in names):
                raise PolicyError(f"{w}.{key}: expected a list of names from {', '.join(sorted(allowed))}")


def _challenging(where: str, value: Any) -> None:
    """``challenging_appliances``: per kind the datasheet values it needs, above a rated power."""
    fields = set(Appliance.model_fields)

    def item(w: str, row: Any) -> None:
        if not isinstance(row, dict) or set(row) != {"fields", "above_kw"}:
            raise PolicyError(f"{w}: expected a table with fields (appliance field names) and above_kw")
        names = row["fields"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n in fields for n in names):
            raise PolicyError(f"{w}.fields: expected a list of appliance field names ({', '.join(sorted(fields))})")
        _check_number(f"{w}.above_kw", row["above_kw"], Range(0, 10_000))

    _kind_keyed(where, value, item)


def _attachment_list(where: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(x, str) and x in ATTACHMENT_KINDS for x in value):
        raise PolicyError(f"{where}: expected a list of attachment kinds ({', '.join(ATTACHMENT_KINDS)})")


@dataclass(frozen=True)
class ParamSpec:
    """Type and range of one policy key; ``check`` validates structured values."""

    unit: str
    range: Range | None = None
    check: Callable[[str, Any], None] | None = None
    description: str = ""

    def validate(self, key: str, value: Any) -> None:
        where = f"param.{key}.value"
        if self.check is not None:
            self.check(where, value)
        else:
            assert self.range is not None
            _check_number(where, value, self.range)


_PCT = Range(0, 100, lo_open=True)
_POS_PCT_SMALL = Range(0, 20, lo_open=True)

PARAM_SCHEMA: dict[PolicyKey, ParamSpec] = {
    PolicyKey.VOLTAGE_MIN_PU: ParamSpec("pu", Range(0.5, 1.0)),
    PolicyKey.VOLTAGE_MAX_PU: ParamSpec("pu", Range(1.0, 1.5)),
    PolicyKey.VOLTAGE_PLANNING_MIN_PU: ParamSpec("pu", Range(0.5, 1.0)),
    PolicyKey.VOLTAGE_PLANNING_MAX_PU: ParamSpec("pu", Range(1.0, 1.5)),
    PolicyKey.RVC_RARE_MAX_PERCENT: ParamSpec("%", _POS_PCT_SMALL),
    PolicyKey.RVC_RARE_RATE_PER_MIN: ParamSpec("1/min", Range(0, 60, lo_open=True)),
    PolicyKey.RVC_FREQUENT_MAX_PERCENT: ParamSpec("%", _POS_PCT_SMALL),
    PolicyKey.RVC_STATIONARY_MAX_PERCENT: ParamSpec("%", _POS_PCT_SMALL),
    PolicyKey.RVC_MAX_EVENTS_PER_DAY: ParamSpec("1/day", Range(0, 100_000)),
    PolicyKey.RVC_MAX_STEP_PERCENT: ParamSpec("%", _POS_PCT_SMALL),
    PolicyKey.START_BEHAVIOUR: ParamSpec("", check=lambda w, v: _kind_keyed(w, v, _start_behaviour)),
    PolicyKey.OPERATING_HOURS_PER_DAY: ParamSpec("h", Range(0, 24, lo_open=True)),
    PolicyKey.UNBALANCE_MAX_PERCENT: ParamSpec("%", _POS_PCT_SMALL),
    PolicyKey.BACKGROUND_UNBALANCE_PERCENT: ParamSpec("%", Range(0, 20)),
    PolicyKey.LINE_LOADING_MAX_PERCENT: ParamSpec("%", Range(0, 300, lo_open=True)),
    PolicyKey.TRANSFORMER_LOADING_MAX_PERCENT: ParamSpec("%", Range(0, 300, lo_open=True)),
    PolicyKey.CUSTOMER_COINCIDENCE: ParamSpec("-", Range(0, 1, lo_open=True)),
    PolicyKey.APPLIANCE_DIVERSITY: ParamSpec(
        "-", check=lambda w, v: _kind_keyed(w, v, lambda w2, x: _check_number(w2, x, Range(0, 1)))
    ),
    PolicyKey.APPROVAL_VALID_DAYS: ParamSpec("days", Range(1, 3650)),
    PolicyKey.NOTIFICATION_THRESHOLDS: ParamSpec("A / kW", check=_thresholds),
    PolicyKey.SOFT_START_MAX_RATIO: ParamSpec("-", Range(1, 10)),
    PolicyKey.MEASURES: ParamSpec("", check=_measures),
    PolicyKey.DEMAND_COS_PHI: ParamSpec("-", Range(0.5, 1)),
    PolicyKey.FUSE_DEMAND_FACTOR: ParamSpec("-", Range(0, 2, lo_open=True)),
    PolicyKey.SELECTIVITY_RATIO_MIN: ParamSpec("-", Range(1, 10)),
    PolicyKey.SC_C_MIN: ParamSpec("-", Range(0.8, 1.1)),
    PolicyKey.SC_C_MAX: ParamSpec("-", Range(1.0, 1.2)),
    PolicyKey.FUSE_GG_GATES_A: ParamSpec("A", check=_gate_table),
    PolicyKey.STANDARD_FUSE_SIZES_A: ParamSpec("A", check=_fuse_sizes),
    PolicyKey.FUSE_GG_PREARC_I2T_A2S: ParamSpec(
        "A^2 s", check=_number_table("rating", Range(0, 1e9, lo_open=True), key_range=Range(0, 10_000, lo_open=True))
    ),
    PolicyKey.MCB_MAGNETIC_TRIP_MULTIPLES: ParamSpec("x In", check=lambda w, v: _mcb_multiples(w, v)),
    PolicyKey.MCB_THERMAL_NO_TRIP: ParamSpec("[x In, s]", check=lambda w, v: _thermal_no_trip(w, v)),
    PolicyKey.BREAKER_PICKUP_TOLERANCE: ParamSpec("-", Range(1.0, 2.0)),
    PolicyKey.BREAKER_LET_THROUGH_TIME_S: ParamSpec("s", Range(0.001, 0.1)),
    PolicyKey.UPSTREAM_FUSE_FROM_FEEDER_CABLE: ParamSpec("-", Range(0.5, 2.0)),
    PolicyKey.BUDGET_REQUIRED_ABOVE_FUSE_A: ParamSpec("A", check=_system_table(Range(0, 10_000, lo_open=True))),
    PolicyKey.AUTO_APPROVE_MAX_FUSE_A: ParamSpec("A", check=_system_table(Range(0, 10_000, lo_open=True))),
    PolicyKey.AUTO_APPROVE_JOB_TYPES: ParamSpec("", check=_job_types),
    PolicyKey.AUTO_APPROVE_MAX_FUSE_KVA: ParamSpec("kVA", check=_system_table(Range(0, 10_000, lo_open=True))),
    PolicyKey.TARIFF_THRESHOLDS_A: ParamSpec("A", check=_system_table(Range(0, 10_000, lo_open=True))),
    PolicyKey.AUTO_APPROVE_MIN_RELATIVE_MARGIN: ParamSpec("-", Range(0, 1)),
    PolicyKey.REQUIRED_APPLIANCE_FIELDS: ParamSpec("", check=_required_fields),
    PolicyKey.APPLIANCE_DEFAULTS: ParamSpec("", check=_appliance_defaults),
    PolicyKey.FLICKER_PST_MAX: ParamSpec("-", Range(0, 10, lo_open=True)),
    PolicyKey.FLICKER_PLT_MAX: ParamSpec("-", Range(0, 10, lo_open=True)),
    PolicyKey.FLICKER_GRID_PST_MAX: ParamSpec("-", Range(0, 10, lo_open=True)),
    PolicyKey.FLICKER_GRID_PLT_MAX: ParamSpec("-", Range(0, 10, lo_open=True)),
    PolicyKey.FLICKER_CUSTOMER_PST_MAX: ParamSpec("-", Range(0, 10, lo_open=True)),
    PolicyKey.FLICKER_CUSTOMER_PLT_MAX: ParamSpec("-", Range(0, 10, lo_open=True)),
    PolicyKey.FLICKER_MIN_CHANGES_PER_HOUR: ParamSpec("1/h", Range(0, 3600)),
    PolicyKey.FLICKER_BACKGROUND_PST: ParamSpec("-", Range(0, 10)),
    PolicyKey.FLICKER_SUMMATION_ALPHA: ParamSpec("-", Range(1, 5)),
    PolicyKey.FLICKER_SHAPE_FACTOR: ParamSpec("-", Range(0, 2, lo_open=True)),
    PolicyKey.FLICKER_TF_COEFF: ParamSpec("s", Range(0, 10, lo_open=True)),
    PolicyKey.FLICKER_TF_EXPONENT: ParamSpec("-", Range(1, 5)),
    PolicyKey.FLICKER_ACTIVE_INTERVALS: ParamSpec("10-min intervals", Range(1, 12)),
    PolicyKey.THD_MAX_PERCENT: ParamSpec("%", Range(0, 50, lo_open=True)),
    PolicyKey.THD_MAX_ORDER: ParamSpec("-", check=lambda w, v: _integer(w, v, Range(25, 50))),
    PolicyKey.THD_WEEK_MAX_PERCENT: ParamSpec("%", Range(0, 50, lo_open=True)),
    PolicyKey.THD_WEEK_KINDS: ParamSpec("", check=lambda w, v: _kinds(w, v)),
    PolicyKey.HARMONIC_VOLTAGE_MAX_PERCENT: ParamSpec(
        "% of U1", check=_number_table("order", Range(0, 50, lo_open=True), key_range=HARMONIC_ORDERS)
    ),
    PolicyKey.HARMONIC_SUMMATION_ALPHA: ParamSpec("[max order, alpha]", check=_alpha_steps),
    PolicyKey.HARMONIC_SKIN_EXPONENT: ParamSpec("-", Range(0, 2)),
    PolicyKey.HARMONIC_BACKGROUND_PERCENT: ParamSpec(
        "% of U1", check=_number_table("order", Range(0, 50), key_range=HARMONIC_ORDERS)
    ),
    PolicyKey.HARMONIC_CLASS_OF_KIND: ParamSpec(
        "", check=lambda w, v: _kind_keyed(w, v, lambda w2, c: _check_str(w2, c))
    ),
    PolicyKey.HARMONIC_SPECTRA: ParamSpec("% of rated current per order", check=_spectra),
    PolicyKey.JOB_TYPES: ParamSpec("", check=_job_table),
    PolicyKey.CHALLENGING_APPLIANCES: ParamSpec("kW", check=_challenging),
    PolicyKey.SINGLE_LINE_DIAGRAM_ABOVE_FUSE_A: ParamSpec("A", check=_system_table(Range(0, 10_000, lo_open=True))),
    PolicyKey.COMPLETION_ATTACHMENTS: ParamSpec("", check=_attachment_list),
    PolicyKey.VELANDER_K1: ParamSpec("kW per kWh/year", Range(0, 0.01)),
    PolicyKey.VELANDER_K2: ParamSpec("kW per sqrt(kWh/year)", Range(0, 1)),
}

REQUIRED_PARAMS: tuple[PolicyKey, ...] = tuple(PARAM_SCHEMA)
"""Keys every policy must define."""


def _integer(where: str, value: Any, rng: Range) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise PolicyError(f"{where}: expected an integer, got {value!r}")
    _check_number(where, value, rng)


def _kinds(where: str, value: Any) -> None:
    kinds = {k.value for k in ApplianceKind}
    if not isinstance(value, list) or not all(isinstance(k, str) and k in kinds for k in value):
        raise PolicyError(f"{where}: expected a list of appliance kinds ({', '.join(sorted(kinds))})")


def _mcb_multiples(where: str, value: Any) -> None:
    """MCB characteristic -> [lower, upper] instantaneous trip multiple of In, for B, C and D."""
    if not isinstance(value, dict) or set(value) != {"B", "C", "D"}:
        raise PolicyError(f"{where}: expected a table B/C/D = [lower, upper] multiples of In")
    for name, pair in value.items():
        if not (isinstance(pair, list) and len(pair) == 2):
            raise PolicyError(f"{where}.{name}: expected [lower, upper] multiples of In")
        for i, v in enumerate(pair):
            _check_number(f"{where}.{name}[{i}]", v, Range(1, 50))
        if not pair[0] < pair[1]:
            raise PolicyError(f"{where}.{name}: the lower multiple {pair[0]} must be below the upper {pair[1]}")


def _thermal_no_trip(where: str, value: Any) -> None:
    if not (isinstance(value, list) and len(value) == 2):
        raise PolicyError(f"{where}: expected [multiple of In, seconds]")
    _check_number(f"{where}[0]", value[0], Range(1, 10))
    _check_number(f"{where}[1]", value[1], Range(0, 60, lo_open=True))


START_BEHAVIOURS = ("direct_on_line", "ramped")
"""How an appliance kind starts: a step at its start current, or a ramp (power electronics)."""


def _start_behaviour(where: str, value: Any) -> None:
    if value not in START_BEHAVIOURS:
        raise PolicyError(f"{where}: {value!r} is not a start behaviour ({', '.join(START_BEHAVIOURS)})")


def _check_str(where: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{where}: expected a name")


# ----------------------------------------------------------------------------------------------
# the policy
# ----------------------------------------------------------------------------------------------


class PolicyHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""


_MEMO = IdentityMemo(limit=32)
"""Per policy: lookups derived from it."""


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

    def param(self, key: PolicyKey | str) -> Param:
        try:
            return self.params[key]
        except KeyError:
            raise KeyError(f"policy {self.id} {self.version} has no parameter {str(key)!r}") from None

    def value(self, key: PolicyKey | str) -> Any:
        try:  # :meth:`param` inlined: the engine looks values up about 50 times per notification
            return self.params[key].value
        except KeyError:
            raise KeyError(f"policy {self.id} {self.version} has no parameter {str(key)!r}") from None

    def number(self, key: PolicyKey) -> float:
        """A scalar parameter as float."""
        return float(self.value(key))

    def _memo(self) -> dict:
        """Lookups derived from this (frozen) policy, kept outside the model so equality and dumps ignore them."""
        return _MEMO.of(self)

    def assumption_keys(self, *keys: PolicyKey | str) -> list[str]:
        """Those of ``keys`` that are [R] assumptions, as 'policy:<key>'."""
        memo = self._memo()
        got = memo.get(keys)
        if got is None:
            got = memo[keys] = tuple(f"policy:{k}" for k in keys if self.param(k).is_assumption)
        return list(got)

    def derived(self, name: str, make: Callable[[Policy], Any]) -> Any:
        """``make(self)``, made once per policy under ``name``: tables the engine derives from policy values
        (the policy is frozen, so they never go stale)."""
        memo = self._memo()
        key = ("derived", name)
        got = memo.get(key)
        if got is None:
            got = memo[key] = make(self)
        return got

    def assumptions(self) -> dict[str, Param]:
        """All [R] parameters of the policy."""
        return {k: p for k, p in self.params.items() if p.is_assumption}

    def fuse_gate(self, fuse_a: float, gate: str) -> float | None:
        """A gG gate current [A] of rating ``fuse_a`` (one of :data:`FUSE_GATES`), None if not tabulated."""
        column = FUSE_GATES.index(gate)
        table: dict[str, list[float]] = self.value(PolicyKey.FUSE_GG_GATES_A)
        memo = self._memo()
        exact = memo.get("fuse_gates")
        if exact is None:  # each tabulated rating -> the gates of the first row within 1e-9 of it (as the scan finds)
            rows = [(float(r), g) for r, g in table.items()]
            exact = memo["fuse_gates"] = {r: next(g for q, g in rows if abs(q - r) < 1e-9) for r, _ in reversed(rows)}
        gates = exact.get(fuse_a)
        if gates is not None:
            return float(gates[column])
        for rating, gates in table.items():
            if abs(float(rating) - fuse_a) < 1e-9:
                return float(gates[column])
        return None

    def fuse_melting_5s(self, fuse_a: float) -> float | None:
        """I_max(5 s): a gG fuse of rating ``fuse_a`` melts within 5 s at this current [A] (None if not tabulated)."""
        return self.fuse_gate(fuse_a, "melt_5s")

    def fuse_no_melt(self, fuse_a: float, duration_s: float) -> float | None:
        """The largest current a gG fuse carries for ``duration_s`` without melting [A].

        I_min(0.1 s) for events up to 0.1 s, I_min(10 s) up to 10 s; None beyond 10 s or when
        the rating is not tabulated.
        """
        if duration_s <= 0.1:
            return self.fuse_gate(fuse_a, "no_melt_0_1s")
        if duration_s <= 10.0:
            return self.fuse_gate(fuse_a, "no_melt_10s")
        return None

    def fuse_ratings(self) -> list[float]:
        """Ratings of the gG gate table, ascending [A]."""
        return sorted(float(r) for r in self.value(PolicyKey.FUSE_GG_GATES_A))

    def job(self, job_type: JobType | str) -> dict[str, list[str]]:
        """The ``job_types`` row of a job type: ``checks``, ``required``, ``attachments``."""
        return self.value(PolicyKey.JOB_TYPES)[str(job_type)]

    def velander_kw(self, annual_kwh: float) -> float:
        """Coincident peak of a group of units by Velander's rule: k1 W + k2 sqrt(W) [kW], W [kWh/year]."""
        return self.number(PolicyKey.VELANDER_K1) * annual_kwh + self.number(PolicyKey.VELANDER_K2) * annual_kwh**0.5

    def ramped(self, kind: str) -> bool:
        """True when the policy says appliances of ``kind`` ramp up (their start is no direct-on-line step)."""
        return self.value(PolicyKey.START_BEHAVIOUR).get(kind) == "ramped"

    def harmonic_alpha(self, order: int) -> float:
        """IEC 61000-3-6 summation exponent for a harmonic order."""
        memo = self._memo().setdefault("harmonic_alpha", {})
        alpha = memo.get(order)
        if alpha is None:
            alpha = memo[order] = self._harmonic_alpha(order)
        return alpha

    def _harmonic_alpha(self, order: int) -> float:
        steps = self.value(PolicyKey.HARMONIC_SUMMATION_ALPHA)
        for max_order, alpha in steps:
            if order <= max_order:
                return float(alpha)
        return float(steps[-1][1])

    def grouped(self) -> dict[Group, dict[str, Param]]:
        """The parameters by group (legal, planning, emission, protection, model), in policy order."""
        out: dict[Group, dict[str, Param]] = {g: {} for g in Group}
        for key, param in self.params.items():
            out[param.group or Group.MODEL][key] = param
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view (used by `GET /v1/policy` and the CLI)."""
        return {
            "id": self.id,
            "version": self.version,
            "hash": self.hash,
            "description": self.header.description,
            "params": {k: p.model_dump(mode="json") for k, p in self.params.items()},
            "assumptions": sorted(self.assumptions()),
            "groups": {g.value: list(params) for g, params in self.grouped().items()},
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
    for key, spec in PARAM_SCHEMA.items():
        if key not in params:
            raise PolicyError(f"param.{key}: missing (the rules need it)")
        spec.validate(key, params[key].value)
        if params[key].group is None:
            groups = ", ".join(g.value for g in Group)
            raise PolicyError(f"param.{key}.group: missing (one of {groups}: what kind of limit it is)")
    classes = set(params[PolicyKey.HARMONIC_SPECTRA].value) | {"none"}
    for kind, cls in params[PolicyKey.HARMONIC_CLASS_OF_KIND].value.items():
        if cls not in classes:
            raise PolicyError(f"param.harmonic_class_of_kind.value.{kind}: unknown spectrum {cls!r}")
    low = params[PolicyKey.VOLTAGE_MIN_PU].value
    high = params[PolicyKey.VOLTAGE_MAX_PU].value
    if not low < high:
        raise PolicyError(f"param.voltage_min_pu.value: {low} must be below voltage_max_pu {high}")
    plan_low = params[PolicyKey.VOLTAGE_PLANNING_MIN_PU].value
    plan_high = params[PolicyKey.VOLTAGE_PLANNING_MAX_PU].value
    if not low <= plan_low < plan_high <= high:
        raise PolicyError(
            f"param.voltage_planning_min_pu.value: the planning band [{plan_low}, {plan_high}] must lie inside "
            f"the legal band [{low}, {high}] (voltage_min_pu <= voltage_planning_min_pu < voltage_planning_max_pu "
            "<= voltage_max_pu)"
        )
    for share, total in ((PolicyKey.FLICKER_CUSTOMER_PST_MAX, PolicyKey.FLICKER_GRID_PST_MAX),
                         (PolicyKey.FLICKER_CUSTOMER_PLT_MAX, PolicyKey.FLICKER_GRID_PLT_MAX)):  # fmt: skip
        if params[share].value > params[total].value:
            raise PolicyError(
                f"param.{share}.value: a customer's share {params[share].value} exceeds the grid total "
                f"{total} {params[total].value}"
            )
    c_min, c_max = params[PolicyKey.SC_C_MIN].value, params[PolicyKey.SC_C_MAX].value
    if c_min > c_max:
        raise PolicyError(f"param.sc_c_min.value: {c_min} must not exceed sc_c_max {c_max}")
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


class PerPolicy:
    """``make(policy)`` made once per policy (:meth:`Policy.derived` under ``name``), with the last policy's value
    kept at hand: a batch asks for such tables per notification, and ``Policy.derived`` looks them up by the
    policy's id. The last (policy, value) pair is one tuple, replaced at once (safe to read from threads)."""

    def __init__(self, name: str, make: Callable[[Policy], Any]) -> None:
        self.name = name
        self.make = make
        self._last: tuple = (None, None)

    def __call__(self, policy: Policy) -> Any:
        last = self._last
        if last[0] is policy:
            return last[1]
        got = policy.derived(self.name, self.make)
        self._last = (policy, got)
        return got
