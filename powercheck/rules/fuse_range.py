"""The range of main fuses (or breakers of one kind) a customer point takes: the largest standard size the service
cable, selectivity to the upstream fuse and the KV and the minimum fault current allow, as arrays over points (the
inverse answers and the capacity map)."""

from __future__ import annotations

import numpy as np

from powercheck.protection_device import DeviceType, MainDevice
from powercheck.rules.context import GridView
from powercheck.rules.devices import Device, disconnection_current, fuse_rating_value
from powercheck.rules.policy import Policy, PolicyKey
from powercheck.rules.rule_ids import RuleId


def _per_rating(values: np.ndarray, lookup) -> np.ndarray:
    """``lookup(rating)`` for every element (NaN where the rating is NaN or has no data)."""
    out = np.full(values.shape, np.nan)
    # sorted(set()) rather than np.unique, which imports numpy.ma (~6 ms of a short `powercheck screen`)
    for rating in sorted(set(values[np.isfinite(values)].tolist())):
        got = lookup(float(rating))
        if got is not None:
            out[values == rating] = got
    return out


class _SizeTable(tuple):
    """The policy's standard sizes in its order, each as ``(size, disconnection current or None)``, with the same as
    read-only arrays made once: ``sizes``, ``has_trip`` and ``trips`` (NaN where unknown)."""

    sizes: np.ndarray
    has_trip: np.ndarray
    trips: np.ndarray


def _size_table(rows) -> _SizeTable:
    table = _SizeTable(rows)
    table.sizes = np.array([size for size, _ in table], dtype=float)
    table.has_trip = np.array([trip is not None for _, trip in table], dtype=bool)
    table.trips = np.array([np.nan if trip is None else trip for _, trip in table], dtype=float)
    for a in (table.sizes, table.has_trip, table.trips):
        a.flags.writeable = False
    return table


def _size_trips(spec: MainDevice, policy: Policy) -> _SizeTable:
    """The policy's standard sizes in its order, each with the current at which ``spec`` of that size disconnects
    (:func:`~powercheck.rules.devices.disconnection_current`; None: unknown), and the same as arrays (made once per
    policy and device, not on every :func:`main_fuse_range` call)."""
    per_device: dict[MainDevice, _SizeTable] = policy.derived("fuse_range.size tables", lambda _: {})
    got = per_device.get(spec)
    if got is None:
        got = per_device[spec] = _size_table(
            (float(size), disconnection_current(Device(spec, float(size), "range"), policy).value)
            for size in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A)
        )
    return got


def main_fuse_range(
    ampacity_a: np.ndarray,
    upstream_a: np.ndarray,
    ik_min_a: np.ndarray,
    policy: Policy,
    *,
    device: MainDevice | None = None,
    kv_a: np.ndarray | None = None,
    ik_max_a: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str | None]]:
    """The largest standard main protection the service cable, selectivity and the minimum fault current allow.

    ``device``: the kind of main protection (None: a gG fuse); for a breaker the sizes are its rated
    currents (Ir of an adjustable breaker) with the device's own criteria (:mod:`powercheck.rules.devices`):
    the fault current must reach its instantaneous trip current, and the upstream fuse and the KV
    (``kv_a``, NaN: none) must not melt before it trips (I_min(0.1 s)) nor below its let-through I2t at
    ``ik_max_a`` (NaN or None: not checked). Above a gG fuse: the rating ratio.

    Sizes are tried in ascending order; the first that fails ends the search with its first reason
    (service cable, selectivity, KV selectivity, fault current) as the binding rule. An untabulated
    size whose only failure is that its disconnection current is unknown does not end it. NaN
    ampacity/upstream: no limit from them. Returns the largest size [A] (NaN: none) and the binding
    rule id (None: no size failed).
    """
    spec = device or MainDevice(type=DeviceType.GG_FUSE)
    amp = np.asarray(ampacity_a, dtype=float)
    up = np.asarray(upstream_a, dtype=float)
    ik = np.asarray(ik_min_a, dtype=float)
    n = amp.shape[0]
    kv = np.full(n, np.nan) if kv_a is None else np.asarray(kv_a, dtype=float)
    ikx = np.full(n, np.nan) if ik_max_a is None else np.asarray(ik_max_a, dtype=float)
    largest = np.full(n, np.nan)
    sel = policy.number(PolicyKey.SELECTIVITY_RATIO_MIN)
    reasons = (
        RuleId.PROT_SERVICE_CABLE,
        RuleId.PROT_SELECTIVITY,
        RuleId.PROT_KV_SELECTIVITY,
        RuleId.PROT_FAULT_CURRENT,
    )
    fuse = spec.type is DeviceType.GG_FUSE
    if not fuse:  # what the fuses above carry for 0.1 s, their pre-arcing I2t and the breaker's let-through
        no_melt = [_per_rating(a, lambda r: policy.fuse_no_melt(r, 0.1)) for a in (up, kv)]
        prearc = [_per_rating(a, lambda r: fuse_rating_value(policy, PolicyKey.FUSE_GG_PREARC_I2T_A2S, r))
                  for a in (up, kv)]  # fmt: skip
        let = (
            np.full(n, float(spec.let_through_i2t_a2s))
            if spec.let_through_i2t_a2s is not None
            else ikx * ikx * policy.number(PolicyKey.BREAKER_LET_THROUGH_TIME_S)
        )
    table = _size_trips(spec, policy)
    if not table or n == 0:
        return largest, [None] * n
    # every size at once (points x sizes), the sizes in the policy's order
    sizes, has_trip, trips = table.sizes, table.has_trip, table.trips
    with np.errstate(invalid="ignore", divide="ignore"):
        cable = np.isfinite(amp)[:, None] & (sizes[None, :] > (amp + 1e-9)[:, None])
        if fuse:
            above = [np.isfinite(a)[:, None] & (a[:, None] / sizes[None, :] < sel) for a in (up, kv)]
        else:
            trip0 = np.where(has_trip, trips, 0.0)
            above = [
                (np.isfinite(nm)[:, None] & has_trip[None, :] & (nm[:, None] < trip0[None, :]))
                | (np.isfinite(pa) & (pa < let))[:, None]
                for nm, pa in zip(no_melt, prearc)
            ]
        selectivity, kv_selectivity = above
        fault = np.where(has_trip[None, :], ~np.isfinite(ik)[:, None] | (ik[:, None] < trips[None, :]), True)
    fails = cable | selectivity | kv_selectivity | fault
    skip = fails & ~cable & ~selectivity & ~kv_selectivity & ~has_trip[None, :]
    stops = fails & ~skip
    stopped = np.cumsum(stops, axis=1) > 0  # a size failed at or before this one: the search ended
    first_stop = np.argmax(stops, axis=1)
    any_stop = stops.any(axis=1)
    at = np.arange(n)
    c, s_, k = cable[at, first_stop], selectivity[at, first_stop], kv_selectivity[at, first_stop]
    first = np.where(c, 0, np.where(s_, 1, np.where(k, 2, 3)))
    rule = np.where(any_stop, first, -1)
    ok = ~stopped & ~fails
    last_ok = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
    largest = np.where(ok.any(axis=1), sizes[last_ok], np.nan)
    return largest, [str(reasons[r]) if r >= 0 else None for r in rule]


def fuse_inputs_of_points(
    grid: GridView, rows: np.ndarray, service_cable_a: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Service cable ampacity, upstream fuse on record and feeder line rating of customer points [A].

    ``service_cable_a``: a new service cable's ampacity where a job lays one (NaN: the record's).
    Without a record, the ampacity is the rating of the point's service line (NaN where the grid
    has none); the upstream fuse falls back to the feeder's rating in :func:`upstream_from_feeder`.
    """
    arr = grid.arrays
    cust = grid.customers
    bus = cust.bus_row[rows]
    amp = cust.service_cable_ampacity_a[rows].astype(float)
    if service_cable_a is not None:
        amp = np.where(np.isfinite(service_cable_a), service_cable_a, amp)
    line_max = grid.derived("line ratings and NaN", _line_max)  # row -1 -> NaN
    srow = arr.service_line_row[bus]
    amp = np.where(np.isfinite(amp), amp, line_max[srow])
    up = cust.upstream_fuse_a[rows].astype(float)
    rated = line_max[arr.feeder_line_row[bus]]
    return amp, up, rated


def _line_max(grid: GridView) -> np.ndarray:
    """Every line's rating with a NaN appended (line row -1 reads it), once per region."""
    return np.append(grid.arrays.line_i_max_a, np.nan)


def upstream_from_feeder(up: np.ndarray, rated: np.ndarray, policy: Policy) -> np.ndarray:
    """The upstream fuse on record, else the largest standard size up to the policy's share of the feeder line's
    rating (``upstream_fuse_from_feeder_cable``, an [R] assumption) [A]."""
    sizes = np.sort(np.asarray(policy.value(PolicyKey.STANDARD_FUSE_SIZES_A), dtype=float))
    limit = policy.number(PolicyKey.UPSTREAM_FUSE_FROM_FEEDER_CABLE) * rated
    pos = np.searchsorted(sizes, limit + 1e-9, side="right") - 1
    fallback = np.where(np.isfinite(limit) & (pos >= 0), sizes[np.maximum(pos, 0)], np.nan)
    return np.where(np.isfinite(up), up, fallback)


def ik_max_of_buses(grid: GridView, policy: Policy, bus_rows: np.ndarray) -> np.ndarray:
    """Maximum 3-phase fault current at bus rows: c_max U / (sqrt3 |Z1 max|) [A] (NaN without an impedance)."""
    arr = grid.arrays
    z = np.hypot(arr.rk1_max[bus_rows], arr.xk1_max[bus_rows])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = policy.number(PolicyKey.SC_C_MAX) * arr.u_ll_v[bus_rows] / (np.sqrt(3.0) * z)
    return np.where(z > 0, out, np.nan)
