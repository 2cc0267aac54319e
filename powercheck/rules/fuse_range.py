"""The range of main fuses a customer point takes: the largest standard size the service cable, selectivity to the
upstream fuse and the minimum fault current allow, as arrays over points (the inverse answers and the capacity map)."""

from __future__ import annotations

import numpy as np

from powercheck.rules.context import GridView
from powercheck.rules.policy import Policy, PolicyKey
from powercheck.rules.rule_ids import RuleId


def main_fuse_range(
    ampacity_a: np.ndarray, upstream_a: np.ndarray, ik_min_a: np.ndarray, policy: Policy
) -> tuple[np.ndarray, list[str | None]]:
    """The largest standard main fuse the service cable, selectivity and the minimum fault current allow.

    Sizes are tried in ascending order; the first that fails ends the search with its first reason
    (service cable, selectivity, fault current) as the binding rule. An untabulated size whose only
    failure is that its melting current is unknown does not end it. NaN ampacity/upstream: no limit
    from them. Returns the largest size [A] (NaN: none) and the binding rule id (None: no size failed).
    """
    amp = np.asarray(ampacity_a, dtype=float)
    up = np.asarray(upstream_a, dtype=float)
    ik = np.asarray(ik_min_a, dtype=float)
    n = amp.shape[0]
    largest = np.full(n, np.nan)
    rule = np.full(n, -1, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    sel = policy.number(PolicyKey.SELECTIVITY_RATIO_MIN)
    reasons = (RuleId.PROT_SERVICE_CABLE, RuleId.PROT_SELECTIVITY, RuleId.PROT_FAULT_CURRENT)
    for size in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A):
        size = float(size)
        cable = np.isfinite(amp) & (size > amp + 1e-9)
        with np.errstate(invalid="ignore"):
            selectivity = np.isfinite(up) & (up / size < sel)
        i5 = policy.fuse_melting_5s(size)
        fault = np.ones(n, dtype=bool) if i5 is None else ~np.isfinite(ik) | (ik < i5)
        fails = cable | selectivity | fault
        skip = fails & ~cable & ~selectivity & (i5 is None)
        stop = ~done & fails & ~skip
        first = np.where(cable, 0, np.where(selectivity, 1, 2))
        rule = np.where(stop, first, rule)
        done |= stop
        largest = np.where(~done & ~fails, size, largest)
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
    line_max = np.append(arr.line_i_max_a, np.nan)  # row -1 -> NaN
    srow = arr.service_line_row[bus]
    amp = np.where(np.isfinite(amp), amp, line_max[srow])
    up = cust.upstream_fuse_a[rows].astype(float)
    rated = line_max[arr.feeder_line_row[bus]]
    return amp, up, rated


def upstream_from_feeder(up: np.ndarray, rated: np.ndarray, policy: Policy) -> np.ndarray:
    """The upstream fuse on record, else the largest standard size up to the feeder line's rating [A]."""
    sizes = np.sort(np.asarray(policy.value(PolicyKey.STANDARD_FUSE_SIZES_A), dtype=float))
    pos = np.searchsorted(sizes, rated + 1e-9, side="right") - 1
    fallback = np.where(np.isfinite(rated) & (pos >= 0), sizes[np.maximum(pos, 0)], np.nan)
    return np.where(np.isfinite(up), up, fallback)
