"""What the rule stages read from the grid region, gathered once per assessor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from powercheck.grid.region import GridRegion
from powercheck.memo import IdentityMemo


@dataclass(frozen=True)
class CustomerArrays:
    """The customer index as plain arrays (row = customer-index row)."""

    bus_row: np.ndarray
    """Global bus row of the region arrays [-]."""
    bus: np.ndarray
    """pandapower bus index in its network [-]."""
    network_id: np.ndarray
    """Network id (object array of str)."""
    existing_peak_kw: np.ndarray
    """Demand already in the base case [kW]."""
    existing_export_kw: np.ndarray
    """Generation already in the base case [kW]."""
    main_fuse_a: np.ndarray
    """Main fuse (OV) on record [A]; NaN when unknown."""
    service_cable_ampacity_a: np.ndarray
    """Service cable ampacity on record [A]; NaN when unknown."""
    upstream_fuse_a: np.ndarray
    """Fuse upstream of the main fuse on record [A]; NaN when unknown."""
    main_device: np.ndarray
    """Main protection on record (object array of device codes, None where not recorded)."""
    main_isd_multiple: np.ndarray
    """Isd / Ir of an adjustable breaker on record; NaN when not recorded."""
    main_ii_multiple: np.ndarray
    """Ii / Ir of an adjustable breaker on record; NaN when not recorded."""
    kv_fuse_a: np.ndarray
    """Short-circuit protection before the meter (KV, gG fuse) on record [A]; NaN when unknown."""
    peak_basis: np.ndarray
    """Where the existing peak comes from: ams, customer_index or velander (object array)."""
    peak_assumptions: np.ndarray
    """The [R] keys behind the existing peak, comma-separated 'grid:<key>' ('' for none; object array)."""


_DERIVED = IdentityMemo(limit=16)
"""Per region arrays object: :meth:`GridView.derived` values."""


@dataclass(frozen=True)
class GridView:
    """The region, its arrays and its customers as the rules use them."""

    region: GridRegion
    customers: CustomerArrays
    grid_assumptions: dict[str, tuple[str, ...]]
    """Per network: the [R] grid defaults applied to it, as 'grid:<key>'."""
    bus_bounds: np.ndarray
    """Bus rows of network k: ``bus_bounds[k]:bus_bounds[k+1]``."""

    @property
    def arrays(self):
        return self.region.arrays

    def derived(self, key, make: Callable[[GridView], Any]) -> Any:
        """``make(self)``, made once per region arrays object under ``key``: arrays the engine derives from the
        (never written) grid arrays, such as zeros or a value per bus of the whole region, that a batch of a few
        notifications would otherwise rebuild on every call. Callers only read what they get (an array is made
        read-only)."""
        memo = _DERIVED.of(self.region.arrays)
        got = memo.get(key)
        if got is None:
            got = make(self)
            if isinstance(got, np.ndarray):
                got.flags.writeable = False  # shared by every later batch: a write would change their inputs
            memo[key] = got
        return got

    @classmethod
    def of(cls, region: GridRegion) -> GridView:
        col = region.customer_column
        customers = CustomerArrays(
            bus_row=col("bus_row", np.int64),
            bus=col("bus", np.int64),
            network_id=np.array([str(v) for v in col("network_id")], dtype=object),
            existing_peak_kw=col("existing_peak_kw", float),
            existing_export_kw=col("existing_export_kw", float),
            main_fuse_a=col("main_fuse_a", float),
            service_cable_ampacity_a=col("service_cable_ampacity_a", float),
            upstream_fuse_a=col("upstream_fuse_a", float),
            main_device=col("main_device"),
            main_isd_multiple=col("main_isd_multiple", float),
            main_ii_multiple=col("main_ii_multiple", float),
            kv_fuse_a=col("kv_fuse_a", float),
            peak_basis=col("peak_basis"),
            peak_assumptions=col("peak_assumptions"),
        )
        assumptions = {nid: tuple(region.assumptions_for_network(nid)) for nid in region.networks}
        arr = region.arrays
        counts = np.bincount(arr.network_index, minlength=len(region.network_order))
        return cls(
            region=region,
            customers=customers,
            grid_assumptions=assumptions,
            bus_bounds=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        )
