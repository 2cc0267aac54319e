"""Input and output models: what an installer notifies and what powercheck decides.

``Notification`` mirrors what Nordic DSOs receive from installers through
Elsmart-style systems ("melding om installasjonsarbeid"): the job type, the
customer point (18-digit GS1 metering point id), the network system, the main
fuse (OV, overbelastningsvern) and meter fuse (MV, målervern) before and after
the work, an optional power budget (effektbudsjett) and the appliances the job
adds.

Field-level validation is strict (types, ranges, GS1 check digit, a neutral-less
IT system cannot take L-N loads). Whether a *valid* notification carries
everything its job type needs is a policy question answered by
``powercheck.rules``: missing data gives ``reject_incomplete``, never an approval.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from powercheck.gs1 import validate_gsrn
from powercheck.protection_device import MainDevice


class JobType(StrEnum):
    """Notification (melding) types the engine understands."""

    NEW_CONNECTION = "new_connection"
    """Ny tilknytning: a new customer point."""
    OV_MV_CHANGE = "ov_mv_change"
    """Endring av OV/MV: main fuse and/or meter fuse size change (incl. 1- to 3-phase)."""
    EV_CHARGER = "ev_charger"
    """EV charger (notifiable above 20 A single phase)."""
    PV = "pv"
    """PV / production (notifiable above 800 W inverter AC output)."""
    BATTERY = "battery"
    """Battery storage (usually with PV)."""
    HEAT_PUMP = "heat_pump"
    MOTOR = "motor"
    """Motor or other challenging appliance (utfordrende elektrisk apparat)."""
    TEMPORARY_SUPPLY = "temporary_supply"
    """Temporary construction supply (byggestrøm)."""
    RECONNECTION = "reconnection"
    """Reconnection of an installation disconnected for more than 3 years."""
    METER_WORK = "meter_work"
    """Arbeid i målepunkt: meter change or moving the meter; the load, the fuses and the service stay as they are."""
    NEW_METERING_POINT = "new_metering_point"
    """Nytt målepunkt: a new metering point (meter and its fuses) in an existing installation or building."""
    KV_CHANGE = "kv_change"
    """Endring av KV: change of the short-circuit protection (kortslutningsvern) before the meter."""
    INTERCONNECTION = "interconnection"
    """Sammenkobling: two or more installations joined into one (one metering point, one main fuse)."""
    BACKUP_SUPPLY = "backup_supply"
    """Reservestrøm: a backup generator or battery that supplies the installation when the grid is out (no
    parallel operation: a changeover switch keeps it from feeding the grid)."""
    SERVICE_CABLE_MOVE = "service_cable_move"
    """Flytting av stikkledning: the service cable is moved or re-laid; the load stays as it is."""
    DISCONNECTION = "disconnection"
    """Riving/frakobling: the installation is disconnected or removed (capacity is released)."""
    BLOCK_NOTIFICATION = "block_notification"
    """Blokkmelding: many units in one building (an apartment block) notified and assessed as one connection,
    their coincident demand from the policy's diversity rule (Velander)."""


class Stage(StrEnum):
    """Where a notification is in the workflow: forhåndsmelding -> decision -> ferdigmelding."""

    PRE_NOTIFICATION = "pre_notification"
    """Forhåndsmelding: notified before the work; assessed against the grid."""
    COMPLETION = "completion"
    """Ferdigmelding: the work is done; compared with what was approved and marked built in the ledger."""


class NetworkSystem(StrEnum):
    """Norwegian LV distribution systems."""

    IT_230 = "IT_230"
    """230 V IT: 3 wires, no neutral, single-phase loads connected line-to-line."""
    TN_400 = "TN_400"
    """400/230 V TN: 4 wires, single-phase loads line-to-neutral at 230 V."""


class Connection(StrEnum):
    """How an appliance is connected."""

    L_N = "L-N"
    L_L = "L-L"
    THREE_PHASE = "3ph"


class SupplyPhases(StrEnum):
    """Phases of the customer's service connection after the work."""

    SINGLE = "1ph"
    """Two conductors: L-L in IT 230 V, L-N in TN 400 V."""
    THREE = "3ph"


class ApplianceKind(StrEnum):
    EV_CHARGER = "ev_charger"
    PV_INVERTER = "pv_inverter"
    BATTERY_INVERTER = "battery_inverter"
    HEAT_PUMP = "heat_pump"
    MOTOR = "motor"
    WATER_HEATER = "water_heater"
    WELDER = "welder"
    OTHER = "other"

    @property
    def generates(self) -> bool:
        """True for kinds that can export power to the grid."""
        return self in (ApplianceKind.PV_INVERTER, ApplianceKind.BATTERY_INVERTER)

    @property
    def consumes(self) -> bool:
        """True for kinds that draw power (a battery does both)."""
        return self is not ApplianceKind.PV_INVERTER


NOTIFICATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
"""Notification ids: 1-64 letters, digits, ``.``, ``_``, ``:`` or ``-``, starting with a letter or digit (an id
is a URL path segment of the service: no ``/``, no ``.`` or ``..``)."""

MAX_REVISION = 10_000
"""Highest revision of a notification."""


def _no_bool(value: Any) -> Any:
    """Numbers are numbers: JSON true/false is not 1/0."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FUSE_MAX_A = 4000
"""Largest fuse rating a notification may state [A] (:data:`FuseAmps`)."""
FuseAmps = Annotated[float, Field(gt=0, le=FUSE_MAX_A, allow_inf_nan=False, description="Fuse rating [A]")]


class Appliance(BaseModel):
    """One appliance (or a group of identical ones) that the job adds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ApplianceKind
    rated_kw: PositiveFloat = Field(
        le=2000, description="Rated active power [kW]; for PV/battery the inverter AC rating"
    )
    connection: Connection
    cos_phi: float | None = Field(
        default=None, gt=0, le=1, allow_inf_nan=False, description="Power factor at rated power [-]"
    )
    start_current_ratio: float | None = Field(
        default=None, ge=1, le=20, allow_inf_nan=False, description="Starting current / rated current [-]"
    )
    cos_phi_start: float | None = Field(
        default=None, gt=0, le=1, allow_inf_nan=False, description="Power factor during start [-]"
    )
    starts_per_hour: float | None = Field(
        default=None, ge=0, le=3600, allow_inf_nan=False, description="Starts or switching events per hour [1/h]"
    )
    start_duration_s: float | None = Field(
        default=None, gt=0, le=60, allow_inf_nan=False, description="Duration of a start at the start current [s]"
    )
    operating_minutes_per_2h: float | None = Field(
        default=None,
        gt=0,
        le=120,
        allow_inf_nan=False,
        description="Declared operating pattern for long-term flicker: minutes of any 2 h in which the appliance "
        "switches at starts_per_hour [min] (Plt from the 10-min intervals it covers)",
    )
    quantity: int = Field(default=1, ge=1, le=1000)
    harmonic_current_percent: dict[int, float] | None = Field(
        default=None,
        description="Manufacturer harmonic current spectrum: order (2-50) -> % of rated current; "
        "replaces the policy's spectrum for the appliance kind",
    )
    description: str | None = Field(default=None, max_length=200)

    _numbers_not_bools = field_validator(
        "rated_kw", "cos_phi", "start_current_ratio", "cos_phi_start", "starts_per_hour", "start_duration_s",
        "quantity", "operating_minutes_per_2h", mode="before",
    )(_no_bool)  # fmt: skip

    @field_validator("harmonic_current_percent", mode="before")
    @classmethod
    def _spectrum_numbers(cls, spectrum: Any) -> Any:
        if isinstance(spectrum, dict):
            for value in spectrum.values():
                _no_bool(value)
        return spectrum

    @field_validator("harmonic_current_percent")
    @classmethod
    def _check_spectrum(cls, spectrum: dict[int, float] | None) -> dict[int, float] | None:
        if spectrum is None:
            return None
        for order, value in spectrum.items():
            if not 2 <= order <= 50:
                raise ValueError(f"order {order} is outside 2..50")
            if not (0.0 <= value <= 200.0) or value != value:
                raise ValueError(f"order {order}: {value} is not a percentage in 0..200")
        return spectrum


class BlockUnits(BaseModel):
    """The units of a block notification (blokkmelding): how many, and the annual energy of one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    units: int = Field(ge=2, le=2000, description="Units (dwellings) behind the one connection [-]")
    annual_kwh_per_unit: float = Field(
        gt=0, le=100_000, allow_inf_nan=False, description="Expected annual energy of one unit [kWh/year]"
    )

    _numbers_not_bools = field_validator("units", "annual_kwh_per_unit", mode="before")(_no_bool)

    @property
    def annual_kwh(self) -> float:
        """Annual energy of all units [kWh/year]."""
        return self.units * self.annual_kwh_per_unit


class AttachmentKind(StrEnum):
    """Documents a notification can carry (what the policy's ``job_types`` and workflow rules require)."""

    DATASHEET = "datasheet"
    """Manufacturer datasheet of an appliance (name the appliance by its index)."""
    SINGLE_LINE_DIAGRAM = "single_line_diagram"
    """Single-line diagram showing KV, OV and MV and the meter placement (enlinjeskjema)."""
    DECLARATION_OF_CONFORMITY = "declaration_of_conformity"
    """The installer's declaration of conformity (samsvarserklæring), at completion."""
    SITE_PLAN = "site_plan"
    """Site plan with the service cable route and the connection point (situasjonsplan)."""
    OWNER_CONSENT = "owner_consent"
    """Consent of the co-owners (borettslag, sameie) where installations or a service cable are shared."""
    CHANGEOVER_DESCRIPTION = "changeover_description"
    """How a backup supply is kept from feeding the grid (changeover switch, interlocking)."""


class Attachment(BaseModel):
    """A document attached to the notification."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AttachmentKind
    appliance: int | None = Field(
        default=None, ge=0, le=199, description="Index in appliances[] of the appliance it documents (datasheet)"
    )
    name: str | None = Field(default=None, max_length=200, description="File name or reference")

    _numbers_not_bools = field_validator("appliance", mode="before")(_no_bool)


BUDGET_MAX_KW = 5000
"""Largest demand or export a power budget may state [kW] (:class:`PowerBudget`)."""


class PowerBudget(BaseModel):
    """The installer's power budget (effektbudsjett) for the installation after the work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_demand_kw: float = Field(
        ge=0, le=BUDGET_MAX_KW, allow_inf_nan=False, description="Expected maximum demand [kW]"
    )
    max_export_kw: float = Field(
        default=0.0, ge=0, le=BUDGET_MAX_KW, allow_inf_nan=False, description="Expected maximum export [kW]"
    )
    cos_phi: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)

    _numbers_not_bools = field_validator("max_demand_kw", "max_export_kw", "cos_phi", mode="before")(_no_bool)


class Notification(BaseModel):
    """A notification from an installer, as received by the DSO."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    notification_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=NOTIFICATION_ID_PATTERN,
        description="1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
    )
    revision: int = Field(default=1, ge=1, le=MAX_REVISION)
    stage: Stage = Stage.PRE_NOTIFICATION
    job_type: JobType
    metering_point_id: str = Field(description="18-digit GS1 metering point id (målepunkt-ID)")
    network_system: NetworkSystem
    supply_phases: SupplyPhases = SupplyPhases.THREE
    main_fuse_before_a: FuseAmps | None = None
    main_fuse_after_a: FuseAmps | None = None
    meter_fuse_before_a: FuseAmps | None = None
    meter_fuse_after_a: FuseAmps | None = None
    main_device_after: MainDevice | None = Field(
        default=None,
        description="The main protection (OV) after the job: gG fuse, MCB B/C/D or adjustable breaker with its "
        "settings; its current is main_fuse_after_a (None: a gG fuse, or the device on record when the job sets none)",
    )
    service_cable_ampacity_a: float | None = Field(
        default=None,
        gt=0,
        le=6300,
        allow_inf_nan=False,
        description="Ampacity of a new service cable (stikkledning) the job lays [A]; else the one on record",
    )
    power_budget: PowerBudget | None = None
    appliances: list[Appliance] = Field(default_factory=list, max_length=200)
    submitted_at: datetime | None = None
    installer_id: str | None = Field(default=None, max_length=64)
    comment: str | None = Field(default=None, max_length=2000)
    kv_fuse_after_a: FuseAmps | None = Field(
        default=None, description="Short-circuit protection (KV) before the meter after a kv_change [A]"
    )
    block: BlockUnits | None = Field(default=None, description="The units of a block notification (blokkmelding)")
    installation_condition_confirmed: bool | None = Field(
        default=None,
        strict=True,
        description="The installer confirms the condition of the installation (required to reconnect an "
        "installation disconnected for more than 3 years)",
    )
    attachments: list[Attachment] = Field(default_factory=list, max_length=100)
    merged_metering_point_ids: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Metering points joined into this one by an interconnection (sammenkobling)",
    )

    _numbers_not_bools = field_validator(
        "kv_fuse_after_a",
        "revision", "main_fuse_before_a", "main_fuse_after_a", "meter_fuse_before_a", "meter_fuse_after_a",
        "service_cable_ampacity_a", mode="before",
    )(_no_bool)  # fmt: skip

    @field_validator("metering_point_id")
    @classmethod
    def _check_gsrn(cls, value: str) -> str:
        return validate_gsrn(value)

    @field_validator("main_device_after")
    @classmethod
    def _device_has_current(cls, device: MainDevice | None, info: ValidationInfo) -> MainDevice | None:
        if device is not None and info.data.get("main_fuse_after_a") is None:
            raise ValueError("needs main_fuse_after_a: the device's rated current (Ir of an adjustable breaker)")
        return device

    @field_validator("merged_metering_point_ids")
    @classmethod
    def _check_merged(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        out = []
        for i, value in enumerate(values):
            try:
                out.append(validate_gsrn(value))
            except ValueError as exc:
                raise ValueError(f"[{i}]: {exc}") from None
        return out

    @field_validator("appliances")
    @classmethod
    def _connections_fit_system(cls, appliances: list[Appliance], info: ValidationInfo) -> list[Appliance]:
        system = info.data.get("network_system")
        if system is NetworkSystem.IT_230:
            for i, appliance in enumerate(appliances):
                if appliance.connection is Connection.L_N:
                    raise ValueError(
                        f"appliances[{i}].connection: L-N is impossible in an IT 230 V system "
                        "(no neutral); single-phase appliances are connected L-L"
                    )
        return appliances

    @field_validator("attachments")
    @classmethod
    def _attachments_name_appliances(cls, attachments: list[Attachment], info: ValidationInfo) -> list[Attachment]:
        count = len(info.data.get("appliances") or [])
        for i, attachment in enumerate(attachments):
            if attachment.appliance is not None and attachment.appliance >= count:
                raise ValueError(
                    f"[{i}].appliance: {attachment.appliance} names no appliance (the notification lists {count})"
                )
        return attachments

    @property
    def key(self) -> tuple[str, int]:
        return (self.notification_id, self.revision)

    def input_hash(self) -> str:
        """SHA-256 of the canonical JSON form of the notification."""
        data = self.model_dump(mode="json")
        if data.get("main_device_after") is None:  # hashes of records without a device stay as they were
            data.pop("main_device_after", None)
        payload = _CANONICAL_JSON(data)
        return hashlib.sha256(payload.encode()).hexdigest()


def json_encoder(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode`` for trusted acyclic values, with the C encoder built once instead of once per call (as
    ``encode`` does: half of the time of encoding a small dict). The text is the same as ``encoder.encode``'s;
    without the C accelerator, ``encoder.encode`` itself."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None:
        return encoder.encode
    strings = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
    chunks = make(
        None,  # no circular-reference markers: the values are trusted data
        encoder.default,
        strings,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )
    join = "".join

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return strings(value)
        return join(chunks(value, 0))

    return encode


_CANONICAL_JSON = json_encoder(json.JSONEncoder(sort_keys=True, separators=(",", ":")))
"""``json.dumps(..., sort_keys=True, separators=(",", ":"))`` without a new encoder per call."""


class Outcome(StrEnum):
    AUTO_APPROVE = "auto_approve"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    """Approved on conditions the installer carries out (measures); every check passes with them."""
    ESCALATE = "escalate"
    REQUEST_INFO = "request_info"
    """A challenging appliance lacks its datasheet values, or a required attachment is missing: the decision
    names exactly which values and attachments are needed (nothing is decided on appliance defaults)."""
    REJECT_INCOMPLETE = "reject_incomplete"


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_EVALUATED = "not_evaluated"
    """The check applies but could not be computed (missing grid data etc.): never approves."""


class LimitKind(StrEnum):
    MAX = "max"
    """value must not exceed limit; margin = limit - value."""
    MIN = "min"
    """value must reach limit; margin = value - limit."""


class CheckResult(BaseModel):
    """One rule evaluated for one notification."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    name: str
    status: CheckStatus
    value: float | None = None
    limit: float | None = None
    limit_kind: LimitKind = LimitKind.MAX
    margin: float | None = Field(default=None, description="Distance to the limit in the unit; >= 0 passes")
    unit: str = ""
    margin_scale: float | None = Field(
        default=None,
        description="What the margin is measured against for relative_margin (default |limit|; "
        "for voltage-band checks the distance from nominal to the limit)",
    )
    limit_key: str | None = Field(default=None, description="Policy key the limit comes from")
    assumptions: list[str] = Field(
        default_factory=list, description="Policy/grid keys of unsourced ([R]) values this result depends on"
    )
    detail: str = ""

    @property
    def relative_margin(self) -> float | None:
        """margin / margin_scale (default |limit|): 0 at the limit, negative beyond it."""
        if self.margin is None or self.limit is None:
            return None
        scale = self.margin_scale if self.margin_scale is not None else abs(self.limit)
        if scale == 0:
            return None
        return self.margin / scale


_ModelT = TypeVar("_ModelT", bound=BaseModel)
_CONSTRUCTIBLE: dict[type, tuple[str, ...] | None] = {}
_set_attribute = object.__setattr__


def _constructible_fields(cls: type[BaseModel]) -> tuple[str, ...] | None:
    """The field names of a model :func:`construct` can build directly (None: one it leaves to pydantic)."""
    plain = (
        not cls.__pydantic_root_model__
        and cls.__pydantic_post_init__ is None
        and not cls.__private_attributes__
        and cls.model_config.get("extra") != "allow"
        and all(f.alias is None and f.validation_alias is None for f in cls.model_fields.values())
    )
    return tuple(cls.model_fields) if plain else None


def construct(cls: type[_ModelT], values: dict[str, Any]) -> _ModelT:
    """``cls.model_construct(**values)`` for trusted values that give every field in the model's order, without
    its per-field alias and default handling (the engine makes tens of thousands of messages per batch).

    The instance takes ``values`` as its ``__dict__``. Any other call (fields missing, extra or in another order,
    a model with aliases, extras, private attributes or a post-init) goes to ``model_construct``.
    """
    names = _CONSTRUCTIBLE.get(cls, ())
    if names == ():
        names = _CONSTRUCTIBLE[cls] = _constructible_fields(cls)
    if names is None or tuple(values) != names:
        return cls.model_construct(**values)
    m = cls.__new__(cls)
    _set_attribute(m, "__dict__", values)
    _set_attribute(m, "__pydantic_fields_set__", set(names))
    _set_attribute(m, "__pydantic_extra__", None)
    _set_attribute(m, "__pydantic_private__", None)
    return m


def replaced(model: _ModelT, update: dict[str, Any]) -> _ModelT:
    """``model.model_copy(update=update)`` (no validation, as there) of a model without extras or private
    attributes, without pydantic's generic ``__copy__``: a new instance with ``model``'s field values and
    ``update``'s, the fields set of both. Any other model goes to ``model_copy``."""
    cls = type(model)
    state = model.__dict__
    if model.__pydantic_extra__ is not None or model.__pydantic_private__ is not None:
        return model.model_copy(update=update)
    m = cls.__new__(cls)
    values = state.copy()
    values.update(update)
    _set_attribute(m, "__dict__", values)
    _set_attribute(m, "__pydantic_fields_set__", model.__pydantic_fields_set__ | update.keys())
    _set_attribute(m, "__pydantic_extra__", None)
    _set_attribute(m, "__pydantic_private__", None)
    return m


def construct_rows(cls: type[_ModelT], names: tuple[str, ...], rows: Iterable[Sequence[Any]]) -> list[_ModelT]:
    """``[construct(cls, dict(zip(names, row))) for row in rows]`` with the model's fields checked once for all
    rows (a decision's path has a point per bus): ``names`` must be every field in the model's order, else each
    row goes to :func:`construct` (and so to ``model_construct``)."""
    fields = _CONSTRUCTIBLE.get(cls, ())
    if fields == ():
        fields = _CONSTRUCTIBLE[cls] = _constructible_fields(cls)
    if fields is None or tuple(names) != fields:
        return [construct(cls, dict(zip(names, row))) for row in rows]
    new = cls.__new__
    out = []
    for row in rows:
        m = new(cls)
        _set_attribute(m, "__dict__", dict(zip(names, row)))
        _set_attribute(m, "__pydantic_fields_set__", set(names))
        _set_attribute(m, "__pydantic_extra__", None)
        _set_attribute(m, "__pydantic_private__", None)
        out.append(m)
    return out


class Message(BaseModel):
    """A text as a template key and its parameters (:mod:`powercheck.texts` renders it in en or nb)."""

    model_config = ConfigDict(frozen=True)

    key: str
    params: dict[str, Any] = Field(default_factory=dict)


def make_message(key: str, params: dict[str, Any]) -> Message:
    """``construct(Message, {"key": key, "params": params})`` spelled out (the engine makes tens of thousands of
    messages a batch): the same instance, half the time (``tests/test_models.py`` compares the two)."""
    m = _new_message(Message)
    _set_attribute(m, "__dict__", {"key": key, "params": params})
    _set_attribute(m, "__pydantic_fields_set__", {"key", "params"})
    _set_attribute(m, "__pydantic_extra__", None)
    _set_attribute(m, "__pydantic_private__", None)
    return m


_new_message = Message.__new__


class MeasureOption(BaseModel):
    """A measure that would help, who carries it out, and what it achieves."""

    model_config = ConfigDict(frozen=True)

    id: str
    by: str = Field(description="installer, grid_owner or case_handler")
    text: str = Field(description="The measure, in the decision's language")
    effect: str = Field(description="What it achieves, in the decision's language")
    sufficient: bool = Field(description="Every check passes with it (for an installer's measure: approvable)")
    resolves: list[str] = Field(default_factory=list, description="Rule ids it makes pass")
    remaining: list[str] = Field(default_factory=list, description="Rule ids that still fail with it")
    message: Message
    effect_message: Message
    source: str = Field(default="", description="Where the measure comes from (policy)")


class NetworkData(BaseModel):
    """Network data at the connection point, as grid owners give installers."""

    model_config = ConfigDict(frozen=True)

    system: str
    u_nominal_v: float
    ik_max_3ph_a: float | None = Field(description="Maximum 3-phase short-circuit current (IEC 60909, c_max) [A]")
    ik_min_a: float | None = Field(description="Minimum short-circuit current (1-phase in TN, 2-phase in IT) [A]")
    ik_min_kind: str
    loop_r_ohm: float | None = Field(description="Loop impedance of the minimum fault, resistance [ohm]")
    loop_x_ohm: float | None = Field(description="Loop impedance of the minimum fault, reactance [ohm]")
    voltage_peak_pu: float | None = Field(description="Base-case voltage at peak load [pu]")
    existing_peak_kw: float | None = Field(default=None, description="The customer's existing peak [kW]")
    load_basis: str | None = Field(
        default=None,
        description="Where the existing peak comes from: ams (smart-meter series), customer_index, velander",
    )
    base_case: str | None = Field(
        default=None, description="What the network's base-case load flows stand on (AMS hours or the grid model)"
    )


class SizeLimit(BaseModel):
    """How large a size of the job may be at this connection point (an inverse answer)."""

    model_config = ConfigDict(frozen=True)

    quantity: str = Field(description="The notification field it sizes, e.g. 'appliances[0].rated_kw', 'main_fuse_a'")
    notified: float | None = Field(default=None, description="The size notified")
    largest: float | None = Field(
        default=None, description="The largest size every grid check passes with (None: no grid check limits it)"
    )
    smallest: float | None = Field(default=None, description="The smallest size that works (main fuse)")
    unit: str = ""
    binding_rule: str | None = Field(default=None, description="The check that binds at the largest size")
    scale: float | None = Field(
        default=None, description="Largest factor on everything the job adds (appliances, budget increase, export)"
    )


class PathPoint(BaseModel):
    """One bus on the feeder path from the transformer to the connection point, with its voltages."""

    model_config = ConfigDict(frozen=True)

    bus: int = Field(description="pandapower bus index in the network")
    distance_km: float = Field(description="Line length from the transformer busbar [km]")
    v_peak_base_pu: float = Field(description="Base-case voltage at peak load [pu]")
    v_peak_ledger_pu: float = Field(description="At peak with the ledger's approved requests [pu]")
    v_peak_pu: float = Field(description="At peak with this request too [pu]")
    v_low_base_pu: float = Field(description="Base-case voltage at low load with generation [pu]")
    v_low_ledger_pu: float = Field(description="At low load with the ledger's approved requests [pu]")
    v_low_pu: float = Field(description="At low load with this request too [pu]")


class Decision(BaseModel):
    """The engine's answer for one notification."""

    model_config = ConfigDict(frozen=True)

    notification_id: str
    revision: int = 1
    metering_point_id: str | None = None
    job_type: str | None = None
    stage: str | None = Field(
        default=None,
        description="Workflow stage of the notification decided: pre_notification or completion (None: input that "
        "failed validation)",
    )
    outcome: Outcome
    reasons: list[str] = Field(default_factory=list, description="Why, in the decision's language")
    checks: list[CheckResult] = Field(default_factory=list)
    score: float | None = Field(
        default=None, description="Smallest relative margin over the evaluated checks (< 0: a limit is exceeded)"
    )
    policy_id: str
    policy_version: str
    policy_hash: str
    grid_model_version: str | None = None
    network_id: str | None = None
    bus: int | None = None
    assumptions: list[str] = Field(default_factory=list)
    required_main_fuse_a: float | None = Field(
        default=None, description="Smallest standard fuse that carries the installation after the job [A]"
    )
    notifiable: bool | None = Field(default=None, description="Whether the job crosses a notification threshold")
    notifiable_reason: str | None = None
    limits: list[SizeLimit] = Field(
        default_factory=list, description="Inverse answers: the largest size each quantity may have here"
    )
    conditions: list[str] = Field(
        default_factory=list, description="Conditions of an approval with conditions, in the decision's language"
    )
    measures: list[MeasureOption] = Field(default_factory=list, description="Measures that would help")
    network_data: NetworkData | None = None
    path: list[PathPoint] = Field(
        default_factory=list, description="Feeder path from the transformer to the connection point, with voltages"
    )
    language: str = Field(default="en", description="Language of reasons, conditions and measures (en, nb)")
    messages: list[Message] = Field(default_factory=list, description="The reasons as template messages")
    condition_messages: list[Message] = Field(default_factory=list)
    ledger_status: str | None = Field(
        default=None,
        description="Status of the request in the capacity ledger after this decision (None: not recorded)",
    )
    input_hash: str | None = None
    engine_version: str
    decided_at: datetime

    def check(self, rule_id: str) -> CheckResult:
        """The first check with this rule id (KeyError if absent)."""
        for check in self.checks:
            if check.rule_id == rule_id:
                return check
        raise KeyError(rule_id)

    def checks_for(self, rule_id: str) -> list[CheckResult]:
        return [c for c in self.checks if c.rule_id == rule_id]


def describe_validation_error(exc: Any) -> list[str]:
    """Turn a pydantic ValidationError into 'field.path: message' strings."""
    messages = []
    for err in exc.errors():
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"]).replace(".[", "[")
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        messages.append(f"{loc or '(root)'}: {msg}")
    return messages
