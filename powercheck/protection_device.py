"""The main protection (OV) as notified: a gG fuse, a miniature circuit breaker (MCB) or an adjustable breaker.

The OV's current (``main_fuse_after_a`` of the notification, ``main_fuse_a`` of the customer index)
is the device's rated current -- the fuse's or MCB's In, the current setting Ir of an adjustable
breaker -- whatever the device; it is what the power accounting holds the installation against.
:class:`MainDevice` says what the device is and how it disconnects a fault:

* ``gG_fuse`` (the default when no device is given): the fuse's IEC 60269-1 time-current gates;
* ``mcb`` with its IEC 60898-1 characteristic ``B``, ``C`` or ``D`` (instantaneous trip between
  3-5, 5-10, 10-20 x In; policy ``mcb_magnetic_trip_multiples``);
* ``adjustable_breaker`` (IEC 60947-2) with its short-time pickup ``isd_multiple`` and/or its
  instantaneous pickup ``ii_multiple``, both as multiples of Ir.

A breaker may carry its datasheet let-through energy ``let_through_i2t_a2s`` (at the maximum
fault current at the connection point); selectivity with an upstream fuse uses it instead of the
conservative bound (see :mod:`powercheck.rules.devices`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class DeviceType(StrEnum):
    """Kinds of main protection (OV)."""

    GG_FUSE = "gG_fuse"
    """General-purpose fuse-link (IEC 60269-1 gG)."""
    MCB = "mcb"
    """Miniature circuit breaker with a B, C or D characteristic (IEC 60898-1)."""
    ADJUSTABLE_BREAKER = "adjustable_breaker"
    """Circuit breaker with adjustable releases (IEC 60947-2): Ir, Isd and/or Ii."""


class McbCharacteristic(StrEnum):
    """IEC 60898-1 instantaneous tripping characteristics."""

    B = "B"
    C = "C"
    D = "D"


ISD_MULTIPLE_RANGE = (1.5, 10.0)
"""Short-time pickup Isd / Ir accepted [-] (the setting range of common LV breakers)."""
II_MULTIPLE_RANGE = (1.5, 15.0)
"""Instantaneous pickup Ii / Ir accepted [-]."""
LET_THROUGH_MAX_A2S = 1e8
"""Upper bound of a let-through energy [A^2 s] (a 630 A fuse's operating I2t is a few 10^6 A^2 s)."""


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


class MainDevice(BaseModel):
    """What the main protection (OV) after the job is (its current is ``main_fuse_after_a``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: DeviceType
    characteristic: McbCharacteristic | None = Field(
        default=None, description="MCB characteristic B, C or D (IEC 60898-1); MCBs only"
    )
    isd_multiple: float | None = Field(
        default=None,
        ge=ISD_MULTIPLE_RANGE[0],
        le=ISD_MULTIPLE_RANGE[1],
        allow_inf_nan=False,
        description="Short-time pickup Isd as a multiple of Ir (adjustable breakers)",
    )
    ii_multiple: float | None = Field(
        default=None,
        ge=II_MULTIPLE_RANGE[0],
        le=II_MULTIPLE_RANGE[1],
        allow_inf_nan=False,
        description="Instantaneous pickup Ii as a multiple of Ir (adjustable breakers; convert a setting in x In "
        "by In/Ir)",
    )
    let_through_i2t_a2s: float | None = Field(
        default=None,
        gt=0,
        le=LET_THROUGH_MAX_A2S,
        allow_inf_nan=False,
        description="Breaker let-through energy I2t at the maximum fault current, from its datasheet [A^2 s]",
    )

    _numbers_not_bools = field_validator("isd_multiple", "ii_multiple", "let_through_i2t_a2s", mode="before")(_no_bool)

    @model_validator(mode="after")
    def _fields_fit_type(self) -> MainDevice:
        t = self.type
        if t is DeviceType.MCB and self.characteristic is None:
            raise ValueError("characteristic: required for an mcb (B, C or D)")
        if t is not DeviceType.MCB and self.characteristic is not None:
            raise ValueError(f"characteristic: only an mcb has one, not a {t.value}")
        if t is DeviceType.ADJUSTABLE_BREAKER and self.isd_multiple is None and self.ii_multiple is None:
            raise ValueError("isd_multiple or ii_multiple: an adjustable_breaker needs at least one pickup setting")
        if t is not DeviceType.ADJUSTABLE_BREAKER:
            for name in ("isd_multiple", "ii_multiple"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only an adjustable_breaker has this setting, not a {t.value}")
        if t is DeviceType.GG_FUSE and self.let_through_i2t_a2s is not None:
            raise ValueError("let_through_i2t_a2s: a breaker's datasheet value, not a gG_fuse's")
        return self

    @property
    def code(self) -> str:
        """Short code as in the customer index: gG_fuse, mcb_B, mcb_C, mcb_D, adjustable_breaker."""
        return f"mcb_{self.characteristic.value}" if self.characteristic is not None else self.type.value


DEVICE_CODES = ("gG_fuse", "mcb_B", "mcb_C", "mcb_D", "adjustable_breaker")
"""The device codes of the customer index column ``main_device``."""


def check_device_code(value: str) -> str:
    """A customer-index device code, or ValueError naming the allowed ones."""
    if value not in DEVICE_CODES:
        raise ValueError(f"{value!r} is not a device ({', '.join(DEVICE_CODES)})")
    return value


def device_from_code(code: str, *, isd_multiple: float | None = None, ii_multiple: float | None = None) -> MainDevice:
    """The device of a customer-index record (code and settings); ValueError when they do not fit."""
    check_device_code(code)
    if code.startswith("mcb_"):
        return MainDevice(type=DeviceType.MCB, characteristic=McbCharacteristic(code[4:]))
    return MainDevice(type=DeviceType(code), isd_multiple=isd_multiple, ii_multiple=ii_multiple)
