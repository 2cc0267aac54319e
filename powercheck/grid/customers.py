"""The customer index: one row per metering point, mapping it to a bus of a network.

A region's customer index is a Parquet file (or is derived from the networks' loads, see
:func:`synthesize_customer_points`). Its columns are declared once, in
:data:`CUSTOMER_SCHEMA` (name, dtype, unit, required or optional, allowed range,
description), and everything that reads or checks an index is driven by that table:

{schema_table}

Optional columns may be absent or hold missing values (NaN); a missing
``existing_export_kw`` counts as 0. Ranges apply to the values that are present; a
required column must have a value in every row. Errors name the file (or origin), the
row (0-based, in file order) and the column, e.g.
``customer_points.parquet: row 3 main_fuse_a: 0 A is out of range (0, 6300] A``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from powercheck.grid.networks import GridModelError
from powercheck.gs1 import make_gsrn, validate_gsrn
from powercheck.lazy import lazy_module
from powercheck.protection_device import DEVICE_CODES, II_MULTIPLE_RANGE, ISD_MULTIPLE_RANGE, check_device_code

pd = lazy_module("pandas")

if TYPE_CHECKING:
    import pandapower as pp

    from powercheck.grid.precompute import NetworkArrays

__all__ = [
    "CUSTOMER_COLUMNS",
    "CUSTOMER_SCHEMA",
    "MAX_CURRENT_A",
    "MAX_POWER_KW",
    "REQUIRED_CUSTOMER_COLUMNS",
    "CustomerColumn",
    "conform_customer_points",
    "normalise_customer_points",
    "read_customer_points",
    "schema_table",
    "synthesize_customer_points",
]

MAX_POWER_KW = 2000.0
"""Upper bound of a customer's existing demand or export [kW].

The largest LV supplies (a 2500-3150 A main breaker at 400 V) are about 2 MVA; a larger
value is a data error, most often a value in W instead of kW."""

MAX_CURRENT_A = 6300.0
"""Upper bound of a fuse rating or cable ampacity in the index [A] (the largest LV breaker frame)."""

MAX_ANNUAL_KWH = MAX_POWER_KW * 8760.0
"""Upper bound of a customer's annual energy [kWh] (the largest supply all year)."""

MAX_ERRORS = 10
"""At most this many problems are listed in one error message."""

MAX_ROWS_PER_PROBLEM = 5
"""At most this many rows are listed per column and kind of problem."""


@dataclass(frozen=True)
class CustomerColumn:
    """One column of the customer index.

    Attributes
    ----------
    name : str
        Column name.
    dtype : str
        pandas dtype the column is read as.
    unit : str
        Unit of the values ("" for none).
    required : bool
        The column must exist and have a value in every row.
    description : str
        Meaning, for the documentation.
    min, max : float or None
        Allowed range of present values (None: unbounded on that side).
    min_exclusive : bool
        ``min`` itself is not allowed (e.g. a fuse rating must be > 0).
    fill : float or None
        Value that replaces a missing entry after validation (None: stays missing).
    unique : bool
        No two rows may have the same value.
    check : callable or None
        Per-value check that raises ValueError with the reason (e.g. the GS1 check digit).
    """

    name: str
    dtype: str
    unit: str
    required: bool
    description: str
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    fill: float | None = None
    unique: bool = False
    check: Callable[[str], Any] | None = None
    missing_if: str | None = None
    """A required column's value may be missing in rows where this other column has a value."""

    @property
    def range_text(self) -> str:
        """The allowed range as text, e.g. ``(0, 6300] A`` ("" when unbounded)."""
        if self.min is None and self.max is None:
            return ""
        low = "(" if self.min_exclusive or self.min is None else "["
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        high = ")" if self.max is None else "]"
        return f"{low}{lo}, {hi}{high}" + (f" {self.unit}" if self.unit else "")

    def out_of_range(self, values: np.ndarray) -> np.ndarray:
        """Mask of present values outside the allowed range."""
        with np.errstate(invalid="ignore"):
            bad = np.zeros(values.shape, dtype=bool)
            if self.min is not None:
                bad |= (values <= self.min) if self.min_exclusive else (values < self.min)
            if self.max is not None:
                bad |= values > self.max
        return bad & ~np.isnan(values)


CUSTOMER_SCHEMA: tuple[CustomerColumn, ...] = (
    CustomerColumn(
        "metering_point_id",
        "string",
        "",
        True,
        "18-digit GS1 id (GSRN), check digit validated",
        unique=True,
        check=validate_gsrn,
    ),
    CustomerColumn("network_id", "string", "", True, "a ``[[network]].id`` of the region manifest"),
    CustomerColumn("bus", "int64", "", True, "pandapower bus index in that network (an in-service LV bus)"),
    CustomerColumn(
        "existing_peak_kw",
        "float64",
        "kW",
        True,
        "the customer's demand already in the base case; may be missing where annual_energy_kwh is given "
        "(Velander), replaced by the measured peak where the region has AMS data",
        min=0.0,
        max=MAX_POWER_KW,
        missing_if="annual_energy_kwh",
    ),
    CustomerColumn(
        "existing_export_kw",
        "float64",
        "kW",
        False,
        "generation already in the base case (missing = 0)",
        min=0.0,
        max=MAX_POWER_KW,
        fill=0.0,
    ),
    CustomerColumn(
        "main_fuse_a",
        "float64",
        "A",
        False,
        "main fuse (OV) on record",
        min=0.0,
        max=MAX_CURRENT_A,
        min_exclusive=True,
    ),
    CustomerColumn(
        "service_cable_ampacity_a",
        "float64",
        "A",
        False,
        "service cable ampacity; overrides the grid model's service line",
        min=0.0,
        max=MAX_CURRENT_A,
        min_exclusive=True,
    ),
    CustomerColumn(
        "upstream_fuse_a",
        "float64",
        "A",
        False,
        "the fuse upstream of the main fuse (selectivity)",
        min=0.0,
        max=MAX_CURRENT_A,
        min_exclusive=True,
    ),
    CustomerColumn(
        "annual_energy_kwh",
        "float64",
        "kWh",
        False,
        "annual energy W for Velander's peak k1 W + k2 sqrt(W), used when existing_peak_kw is missing",
        min=0.0,
        max=MAX_ANNUAL_KWH,
    ),
    CustomerColumn(
        "customer_category",
        "string",
        "",
        False,
        "Velander category (grid defaults velander_<category>_k1/k2), e.g. household",
    ),
    CustomerColumn(
        "main_device",
        "string",
        "",
        False,
        "main protection (OV) on record: " + ", ".join(DEVICE_CODES) + " (missing: gG_fuse)",
        check=check_device_code,
    ),
    CustomerColumn(
        "main_isd_multiple",
        "float64",
        "",
        False,
        "short-time pickup Isd / Ir (a multiple) of an adjustable_breaker on record",
        min=ISD_MULTIPLE_RANGE[0],
        max=ISD_MULTIPLE_RANGE[1],
    ),
    CustomerColumn(
        "main_ii_multiple",
        "float64",
        "",
        False,
        "instantaneous pickup Ii / Ir (a multiple) of an adjustable_breaker on record",
        min=II_MULTIPLE_RANGE[0],
        max=II_MULTIPLE_RANGE[1],
    ),
    CustomerColumn(
        "kv_fuse_a",
        "float64",
        "A",
        False,
        "short-circuit protection before the meter (KV, kortslutningsvern), a gG fuse",
        min=0.0,
        max=MAX_CURRENT_A,
        min_exclusive=True,
    ),
)
"""The columns of the customer index, in file order."""

CUSTOMER_COLUMNS: dict[str, str] = {c.name: c.dtype for c in CUSTOMER_SCHEMA}
"""Column name -> pandas dtype."""

REQUIRED_CUSTOMER_COLUMNS: tuple[str, ...] = tuple(c.name for c in CUSTOMER_SCHEMA if c.required)
"""Columns every index must have."""


def schema_table() -> str:
    """:data:`CUSTOMER_SCHEMA` as a reStructuredText table (the one in this module's docstring)."""
    head = ("column", "dtype", "unit", "required", "range", "meaning")
    rows = [
        (c.name, c.dtype, c.unit or "-", "yes" if c.required else "no", c.range_text or "-", c.description)
        for c in CUSTOMER_SCHEMA
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()

    return "\n".join([rule, line(head), rule, *(line(r) for r in rows), rule])


if __doc__ is not None:
    __doc__ = __doc__.replace("{schema_table}", schema_table())


def _fail(origin: str, problems: list[str]) -> GridModelError:
    more = f" (+{len(problems) - MAX_ERRORS} more)" if len(problems) > MAX_ERRORS else ""
    return GridModelError(f"{origin}: " + "; ".join(problems[:MAX_ERRORS]) + more)


def _first_unreadable(values: pd.Series, dtype: str) -> int | None:
    """Position of the first value that cannot be read as ``dtype`` (None if none is found)."""
    for row, value in enumerate(values):
        try:
            pd.Series([value]).astype(dtype)
        except (ValueError, TypeError, OverflowError):
            return row
    return None


def conform_customer_points(df: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Check the columns of an index against :data:`CUSTOMER_SCHEMA` and read them as its dtypes.

    Returns a copy with every schema column (absent optional ones added as missing), each
    read as its dtype; other columns are kept as they are.

    Raises
    ------
    GridModelError
        A required column is absent, or a value cannot be read as its column's dtype
        (names the row and the column).
    """
    for col in REQUIRED_CUSTOMER_COLUMNS:
        if col not in df.columns:
            raise GridModelError(f"{origin}: column {col!r} is missing")
    df = df.copy()
    for column in CUSTOMER_SCHEMA:
        col, dtype = column.name, column.dtype
        if col not in df.columns:
            df[col] = np.nan if dtype == "float64" else None
        try:
            df[col] = df[col].astype(dtype)
        except (ValueError, TypeError, OverflowError) as exc:
            row = _first_unreadable(df[col], dtype)
            if row is None:
                raise GridModelError(f"{origin}: column {col!r} cannot be read as {dtype} ({exc})") from None
            value = df[col].iloc[row]
            if pd.isna(value):
                raise GridModelError(f"{origin}: row {row} {col}: missing, must be {dtype}") from None
            shown = value.item() if isinstance(value, np.generic) else value
            raise GridModelError(f"{origin}: row {row} {col}: {shown!r} cannot be read as {dtype}") from None
    return df


def _row_problems(df: pd.DataFrame) -> list[str]:
    """Per-value problems of a conformed index: checks, duplicates, missing required values, ranges."""
    problems: list[str] = []
    for column in CUSTOMER_SCHEMA:
        if column.check is None:
            continue
        for row, value in enumerate(df[column.name]):
            if not column.required and pd.isna(value):
                continue
            try:
                column.check(str(value))
            except ValueError as exc:
                problems.append(f"row {row} {column.name}: {exc}")
    device = df["main_device"].astype(object).where(df["main_device"].notna(), "gG_fuse").to_numpy()
    settings = df["main_isd_multiple"].notna().to_numpy() | df["main_ii_multiple"].notna().to_numpy()
    for row in np.flatnonzero((device == "adjustable_breaker") & ~settings)[:MAX_ROWS_PER_PROBLEM]:
        problems.append(f"row {row} main_device: an adjustable_breaker needs main_isd_multiple or main_ii_multiple")
    for row in np.flatnonzero((device != "adjustable_breaker") & settings)[:MAX_ROWS_PER_PROBLEM]:
        problems.append(f"row {row} main_isd_multiple/main_ii_multiple: settings of a {device[row]}, only an "
                        "adjustable_breaker has them")  # fmt: skip
    for column in CUSTOMER_SCHEMA:
        if column.unique:
            dup = df[column.name].duplicated(keep=False).to_numpy()
            if dup.any():
                rows = [int(r) for r in np.flatnonzero(dup)[:MAX_ROWS_PER_PROBLEM]]
                problems.append(f"rows {rows} {column.name}: duplicated")
    return problems


def _range_problems(df: pd.DataFrame) -> list[str]:
    problems: list[str] = []
    for column in CUSTOMER_SCHEMA:
        if column.min is None and column.max is None:
            continue
        values = df[column.name].to_numpy(dtype=float)
        missing = np.isnan(values) if column.required else np.zeros(values.shape, dtype=bool)
        if column.missing_if is not None:
            missing &= df[column.missing_if].isna().to_numpy()
        bad = missing | column.out_of_range(values)
        unit = f" {column.unit}" if column.unit else ""
        for row in np.flatnonzero(bad)[:MAX_ROWS_PER_PROBLEM]:
            value = values[row]
            if math.isnan(value):
                alt = f" (or give {column.missing_if})" if column.missing_if else ""
                problems.append(f"row {row} {column.name}: missing, must be in {column.range_text}{alt}")
            else:
                problems.append(f"row {row} {column.name}: {value:g}{unit} is out of range {column.range_text}")
    return problems


def normalise_customer_points(df: pd.DataFrame, networks: Mapping[str, NetworkArrays], origin: str) -> pd.DataFrame:
    """Validate an index against the schema and the networks; return it with a global ``bus_row`` column.

    ``bus_row`` is the row of the customer's bus in the region's concatenated bus arrays
    (networks in the order of ``networks``).

    Parameters
    ----------
    df : DataFrame
        The index (one row per metering point).
    networks : mapping of network id to NetworkArrays
        The region's networks, in region order (only ``bus_ids`` and ``n_bus`` are used).
    origin : str
        Where the index comes from (file name), the start of every error message.

    Raises
    ------
    GridModelError
        Naming the first bad rows (row number and column).
    """
    df = conform_customer_points(df, origin)
    problems = _row_problems(df)
    offsets = {}
    offset = 0
    for nid, arrays in networks.items():
        offsets[nid] = (offset, {int(b): i for i, b in enumerate(arrays.bus_ids)})
        offset += arrays.n_bus
    bus_row = np.full(len(df), -1, dtype=np.int64)
    for row, (nid, bus) in enumerate(zip(df.network_id, df.bus)):
        if nid not in offsets:
            problems.append(f"row {row} network_id: {nid!r} is not a network of the region")
            continue
        start, lookup = offsets[nid]
        local = lookup.get(int(bus))
        if local is None:
            problems.append(f"row {row} bus: {bus} is not an in-service LV bus of network {nid!r}")
            continue
        bus_row[row] = start + local
    problems.extend(_range_problems(df))
    if problems:
        raise _fail(origin, problems)
    for column in CUSTOMER_SCHEMA:
        if column.fill is not None:
            df[column.name] = df[column.name].fillna(column.fill)
    df["bus_row"] = bus_row
    return df.reset_index(drop=True)


def read_customer_points(path: Path, bus_of: Callable[[pd.DataFrame, str], pd.DataFrame] | None = None) -> pd.DataFrame:
    """Read a customer index (Parquet) and conform it to :data:`CUSTOMER_SCHEMA`.

    ``bus_of(df, origin)``, when given, fills the ``bus`` column first (a CIM mRID mapping table,
    :func:`powercheck.grid.region.cim_bus_join`).

    Raises
    ------
    GridModelError
        The file is missing or not Parquet, or a column is missing or unreadable (names
        the file, row and column).
    """
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise GridModelError(f"customer index {path} not found") from None
    except pa.ArrowInvalid as exc:
        raise GridModelError(f"customer index {path}: not a Parquet file ({exc})") from None
    df = table.to_pandas()
    if bus_of is not None:
        df = bus_of(df, f"customer index {path}")
    return conform_customer_points(df, f"customer index {path}")


def synthesize_customer_points(network_id: str, network_no: int, net: pp.pandapowerNet) -> pd.DataFrame:
    """One metering point per in-service load bus, with deterministic GS1 ids.

    The id is ``707057500`` (a Norwegian GS1 company prefix) + 2-digit network number
    + 6-digit sequence + check digit. ``existing_peak_kw`` is the bus's load (``p * scaling``,
    balanced and asymmetric loads), ``existing_export_kw`` its static generation; the
    other (optional) columns of :data:`CUSTOMER_SCHEMA` are left out.
    """
    rows = []
    loads = []
    for table in ("load", "asymmetric_load"):
        if table in net and len(net[table]):
            df = net[table][net[table].in_service.astype(bool)]
            if table == "load":
                p = df.p_mw * df.scaling
            else:
                p = (df.p_a_mw + df.p_b_mw + df.p_c_mw) * df.scaling
            loads.append(pd.DataFrame({"bus": df.bus.astype(int), "p_kw": 1000.0 * p}))
    if not loads:
        raise GridModelError(f"network {network_id}: no loads to derive customer points from")
    per_bus = pd.concat(loads).groupby("bus", sort=True).p_kw.sum()
    exports = pd.Series(0.0, index=per_bus.index)
    if "sgen" in net and len(net.sgen):
        sg = net.sgen[net.sgen.in_service.astype(bool)]
        exports = exports.add((1000.0 * sg.p_mw * sg.scaling).groupby(sg.bus).sum(), fill_value=0.0)
    for seq, (bus, p_kw) in enumerate(per_bus.items(), start=1):
        data17 = f"707057500{network_no:02d}{seq:06d}"
        rows.append(
            {
                "metering_point_id": make_gsrn(data17),
                "network_id": network_id,
                "bus": int(bus),
                "existing_peak_kw": float(p_kw),
                "existing_export_kw": float(exports.get(bus, 0.0)),
            }
        )
    return pd.DataFrame(rows)
