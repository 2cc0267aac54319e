"""Protection devices in the rules: which main protection (OV) a job leaves, and how each device disconnects.

The OV after a job is the notification's ``main_device_after`` when given, else the device on
record (an approved request in the ledger, else the customer index) when the job keeps its kind,
else a gG fuse. Its current is the fuse after the job (:attr:`DemandCase.fuse_after_a`).

Criteria (every number from the policy, named in the checks that use it):

* **Disconnection at the minimum fault current** (``PROT.FAULT_CURRENT``, ``PROT.KV_FAULT_CURRENT``):
  gG fuse: melts within 5 s above I_max(5 s) (``fuse_gg_gates_a``); MCB: trips instantaneously
  above the upper bound of its characteristic x In (``mcb_magnetic_trip_multiples``, B 5, C 10,
  D 20); adjustable breaker: above ``breaker_pickup_tolerance`` x the lowest pickup (Isd or Ii) x Ir.
* **Start current** (``PROT.START_CURRENT``): what the device carries for the start without
  tripping or melting: gG I_min(0.1 s)/I_min(10 s); MCB the lower bound x In for starts up to
  0.1 s, ``mcb_thermal_no_trip`` (2.55 In for 1 s) up to its time; adjustable breaker
  ``1 / tolerance`` (0.8) x the lowest pickup for starts up to 0.1 s. Longer: not evaluated.
* **Selectivity of a gG fuse above the OV** (``PROT.SELECTIVITY`` upstream/OV, ``PROT.KV_SELECTIVITY``
  KV/OV): above a gG fuse the rating ratio >= ``selectivity_ratio_min`` (1.6). Above a breaker,
  (1) the fuse does not melt within 0.1 s below its I_min(0.1 s), which must reach the breaker's
  instantaneous trip current (the breaker clears first in the overload and time-delayed range), and
  (2) the fuse's minimum pre-arcing I2t (``fuse_gg_prearc_i2t_a2s``) must exceed the breaker's
  let-through I2t at the maximum fault current: the datasheet value when notified, else
  Ik_max^2 x ``breaker_let_through_time_s`` (no current limitation, conservative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from powercheck.protection_device import DeviceType, MainDevice, device_from_code
from powercheck.rules.policy import Policy, PolicyKey


@dataclass(frozen=True, slots=True)
class Device:
    """The main protection after the job: what it is, its current and where that comes from."""

    spec: MainDevice
    rating_a: float
    """Rated current In (fuse, MCB) or current setting Ir (adjustable breaker) [A]."""
    origin: str
    """notification, ledger, customer index or default (a gG fuse)."""

    @property
    def type(self) -> DeviceType:
        return self.spec.type

    @property
    def is_fuse(self) -> bool:
        return self.spec.type is DeviceType.GG_FUSE

    @property
    def label(self) -> str:
        """E.g. '63 A gG fuse', 'C 40 A MCB', 'adjustable breaker Ir 100 A (Isd 6 x Ir)'."""
        s = self.spec
        if s.type is DeviceType.GG_FUSE:
            return f"{self.rating_a:g} A gG fuse"
        if s.type is DeviceType.MCB:
            return f"{s.characteristic.value} {self.rating_a:g} A MCB"
        settings = [f"{name} {v:g} x Ir" for name, v in (("Isd", s.isd_multiple), ("Ii", s.ii_multiple)) if v]
        return f"adjustable breaker Ir {self.rating_a:g} A ({', '.join(settings)})"

    def record(self) -> dict:
        """The device as the ledger stores it (type, rating, characteristic, settings)."""
        return {"rating_a": self.rating_a, **self.spec.model_dump(mode="json", exclude_none=True)}


def breaker_of_size(device: Device | None, size_a: float) -> str | None:
    """The label of ``device``'s kind at another rating ('C 50 A MCB'); None for a gG fuse (or no device)."""
    if device is None or device.is_fuse:
        return None
    return Device(device.spec, float(size_a), device.origin).label


def device_of_record(record: dict | None) -> MainDevice | None:
    """The device a ledger record holds (None: none recorded)."""
    if not record:
        return None
    return MainDevice.model_validate({k: v for k, v in record.items() if k != "rating_a"})


def resolve_device(
    notified: MainDevice | None,
    rating_a: float | None,
    *,
    ledger: MainDevice | None = None,
    code: str | None = None,
    isd_multiple: float = math.nan,
    ii_multiple: float = math.nan,
) -> Device | None:
    """The OV after the job (see the module docstring); None without a current."""
    if rating_a is None:
        return None
    if notified is not None:
        return Device(notified, float(rating_a), "notification")
    if ledger is not None:
        return Device(ledger, float(rating_a), "ledger")
    if code is not None:
        spec = _device_of_code(
            code,
            None if math.isnan(isd_multiple) else float(isd_multiple),
            None if math.isnan(ii_multiple) else float(ii_multiple),
        )
        return Device(spec, float(rating_a), "customer index")
    return Device(_GG_FUSE, float(rating_a), "default")


_GG_FUSE = MainDevice(type=DeviceType.GG_FUSE)


@lru_cache(maxsize=1024)
def _device_of_code(code: str, isd_multiple: float | None, ii_multiple: float | None) -> MainDevice:
    """:func:`device_from_code`, made once per code and settings (a frozen model: the cases share it; a code that
    does not fit raises each time, as lru_cache keeps no exceptions)."""
    return device_from_code(code, isd_multiple=isd_multiple, ii_multiple=ii_multiple)


def fuse_rating_value(policy: Policy, key: PolicyKey, fuse_a: float, column: int | None = None) -> float | None:
    """A per-rating value of a fuse table of the policy (None: the rating has no data)."""
    table = policy.value(key)
    for rating, value in table.items():
        if abs(float(rating) - fuse_a) < 1e-9:
            return float(value if column is None else value[column])
    return None


@dataclass(frozen=True, slots=True)
class Criterion:
    """A current (or energy) a check holds a value against, with where it comes from."""

    value: float | None
    """None: the policy has no data for this device (named in ``text``)."""
    key: PolicyKey
    text: str
    assumptions: tuple[str, ...] = ()


def _lowest_pickup(spec: MainDevice) -> float:
    return min(v for v in (spec.isd_multiple, spec.ii_multiple) if v is not None)


def disconnection_current(device: Device, policy: Policy) -> Criterion:
    """The current at which the device disconnects within its time (fuse 5 s, breaker instantaneous) [A]."""
    s, rating = device.spec, device.rating_a
    if s.type is DeviceType.GG_FUSE:
        key = PolicyKey.FUSE_GG_GATES_A
        i5 = policy.fuse_melting_5s(rating)
        if i5 is None:
            text = f"missing data: no 5-s melting current of a {rating:g} A gG fuse in policy {key}"
            return Criterion(None, key, text)
        text = f"I_max(5 s) = {i5:g} A of a {rating:g} A gG fuse"
        return Criterion(i5, key, text, tuple(policy.assumption_keys(key)))
    if s.type is DeviceType.MCB:
        key = PolicyKey.MCB_MAGNETIC_TRIP_MULTIPLES
        upper = float(policy.value(key)[s.characteristic.value][1])
        return Criterion(
            upper * rating,
            key,
            f"{upper:g} x In = {upper * rating:g} A trips a {device.label} instantaneously",
            tuple(policy.assumption_keys(key)),
        )
    key = PolicyKey.BREAKER_PICKUP_TOLERANCE
    tol = policy.number(key)
    pickup = _lowest_pickup(s)
    current = tol * pickup * rating
    return Criterion(
        current,
        key,
        f"{tol:g} x {pickup:g} x Ir = {current:g} A trips the {device.label} on its short-circuit release",
        tuple(policy.assumption_keys(key)),
    )


def no_trip_current(device: Device, duration_s: float, policy: Policy) -> Criterion:
    """The largest current the device carries for ``duration_s`` without tripping or melting [A]."""
    s, rating = device.spec, device.rating_a
    if s.type is DeviceType.GG_FUSE:
        key = PolicyKey.FUSE_GG_GATES_A
        carries = policy.fuse_no_melt(rating, duration_s)
        gate = "I_min(0.1 s)" if duration_s <= 0.1 else "I_min(10 s)"
        if carries is None:
            text = f"missing data: no gG gate of a {rating:g} A fuse for {duration_s:g} s in policy {key}"
            return Criterion(None, key, text)
        text = f"{gate} = {carries:g} A of a {rating:g} A gG fuse"
        return Criterion(carries, key, text, tuple(policy.assumption_keys(key)))
    if s.type is DeviceType.MCB:
        key = PolicyKey.MCB_MAGNETIC_TRIP_MULTIPLES
        lower = float(policy.value(key)[s.characteristic.value][0])
        if duration_s <= 0.1:
            return Criterion(
                lower * rating,
                key,
                f"{lower:g} x In = {lower * rating:g} A: the {device.label} does not trip instantaneously below it",
                tuple(policy.assumption_keys(key)),
            )
        tkey = PolicyKey.MCB_THERMAL_NO_TRIP
        multiple, seconds = (float(v) for v in policy.value(tkey))
        if duration_s <= seconds:
            current = min(lower, multiple) * rating
            text = f"{current:g} A for at most {seconds:g} s does not trip the {device.label}"
            return Criterion(current, tkey, text, tuple(policy.assumption_keys(tkey)))
        return Criterion(
            None,
            tkey,
            f"missing data: no no-trip current of the {device.label} for a {duration_s:g} s "
            f"start (policy {tkey} covers {seconds:g} s)",
        )
    key = PolicyKey.BREAKER_PICKUP_TOLERANCE
    if duration_s <= 0.1:
        tol = policy.number(key)
        current = _lowest_pickup(s) * rating / tol
        return Criterion(
            current,
            key,
            f"{current:g} A (the lowest pickup / {tol:g}) does not trip the {device.label}",
            tuple(policy.assumption_keys(key)),
        )
    return Criterion(
        None,
        key,
        f"missing data: the long-time delay of the {device.label} is not notified, so a "
        f"{duration_s:g} s start cannot be checked",
    )


@dataclass(frozen=True, slots=True)
class SelectivityResult:
    """One selectivity criterion between a gG fuse above and the OV below."""

    value: float
    """NaN: not evaluated (``text`` says why)."""
    limit: float
    unit: str
    key: PolicyKey
    name: str
    text: str
    assumptions: tuple[str, ...] = ()


def fuse_above_device(
    fuse_a: float, device: Device, ik_max_a: float, policy: Policy, *, what: str
) -> list[SelectivityResult]:
    """Selectivity between a gG fuse of ``fuse_a`` above ``device`` (see the module docstring).

    ``what`` names the fuse above ('upstream fuse', 'KV'). One result above a gG fuse (the
    rating ratio), two above a breaker (time-current, then I2t at ``ik_max_a``).
    """
    if device.is_fuse:
        key = PolicyKey.SELECTIVITY_RATIO_MIN
        return [
            SelectivityResult(
                fuse_a / device.rating_a,
                policy.number(key),
                "ratio",
                key,
                f"{what} discriminates with the main fuse (rating ratio)",
                f"{what} {fuse_a:g} A / {device.label}",
                tuple(policy.assumption_keys(key)),
            )
        ]
    gates = PolicyKey.FUSE_GG_GATES_A
    trip = disconnection_current(device, policy)
    no_melt = policy.fuse_no_melt(fuse_a, 0.1)
    name = f"{what} does not melt before the breaker trips"
    if no_melt is None:
        text = f"missing data: no I_min(0.1 s) of a {fuse_a:g} A gG fuse ({what}) in policy {gates}"
        first = SelectivityResult(math.nan, math.nan, "A", gates, name, text)
    else:
        first = SelectivityResult(
            no_melt,
            math.nan if trip.value is None else trip.value,
            "A",
            gates,
            name,
            f"{what} {fuse_a:g} A gG does not melt within 0.1 s below I_min(0.1 s) = {no_melt:g} A; {trip.text}",
            tuple(policy.assumption_keys(gates)) + trip.assumptions,
        )
    i2t_key = PolicyKey.FUSE_GG_PREARC_I2T_A2S
    pre = fuse_rating_value(policy, i2t_key, fuse_a)
    name2 = f"{what} pre-arcing I2t above the breaker's let-through I2t"
    given = device.spec.let_through_i2t_a2s
    if pre is None:
        return [
            first,
            SelectivityResult(
                math.nan,
                math.nan,
                "A^2 s",
                i2t_key,
                name2,
                f"missing data: no pre-arcing I2t of a {fuse_a:g} A gG fuse ({what}) in policy {i2t_key}",
            ),
        ]
    if given is not None:
        let, text, used = float(given), f"let-through {given:g} A^2 s from the breaker's datasheet", ()
    else:
        tkey = PolicyKey.BREAKER_LET_THROUGH_TIME_S
        t = policy.number(tkey)
        let = ik_max_a * ik_max_a * t
        text = f"let-through bound Ik_max^2 x {t:g} s = {ik_max_a:.0f}^2 x {t:g} = {let:.0f} A^2 s (no datasheet value)"
        used = tuple(policy.assumption_keys(tkey))
    return [
        first,
        SelectivityResult(
            pre,
            let,
            "A^2 s",
            i2t_key,
            name2,
            f"{what} {fuse_a:g} A gG pre-arcing I2t {pre:g} A^2 s; {text}",
            tuple(policy.assumption_keys(i2t_key)) + used,
        ),
    ]
