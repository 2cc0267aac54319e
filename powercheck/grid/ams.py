"""Smart-meter (AMS) series: the canonical reader and the peaks derived from it.

File format
-----------
One row per metering point, direction and interval (long format), Parquet or CSV:

=================  ==========================  =====================================================
column             type                        meaning
=================  ==========================  =====================================================
metering_point_id  string, 18 digits           GS1 GSRN, check digit validated (:mod:`powercheck.gs1`)
timestamp_utc      timestamp (UTC)             start of the interval; Parquet: a timezone-aware
                                               timestamp; CSV: ISO 8601 with ``Z`` or an offset
resolution         ``PT60M`` or ``PT15M``      the interval length (Elhub ``Resolution``)
kwh                float, [0, 2000 x hours]    energy in the interval [kWh]
direction          ``import`` or ``export``    from the grid / into the grid
quality            ``measured``, ``estimated``  Elhub-style quality of the value
                   or ``revised``
=================  ==========================  =====================================================

Each (metering point, direction) series must have one resolution, timestamps aligned to it,
no duplicate and no gap between its first and last value. Since the timestamps are UTC, a
continuous 15-minute series has 92 values on the local (Europe/Oslo) spring DST day, 100 on
the autumn one and 96 otherwise; the daily maxima below are taken over local days.

Every problem is named with the file, the 0-based row (file order) and the column, e.g.
``ams.parquet: row 17 kwh: -1 is out of range [0, 2000] kWh``; at most
:data:`MAX_ERRORS` are listed in one :class:`AmsDataError`.

Derived values (:class:`AmsSummary`)
------------------------------------
Per metering point:

* ``peak_import_kw``: the largest interval energy over the interval length (kWh/h = kW, at the
  series' own resolution: a 15-minute peak for PT15M);
* ``tariff_kw``: the capacity-tariff value (kapasitetsledd): per local calendar month, the mean
  of the 3 highest *daily maxima* of hourly energy (each local day counts once; a quarter-hour
  series is summed to clock hours first), and the largest of these monthly values;
* ``peak_export_kw``: the largest export interval energy over the interval length.

Per group (a network), from the hourly net import ``sum(import) - sum(export)`` of its points:

* ``coincident_peak_kw`` and the hour it occurs (``peak_hour``);
* the low-load / high-export hour (``low_hour``: the smallest net import, i.e. the largest net
  export), and its net import ``low_net_kw``;
* each point's hourly import and export at those two hours (``at_peak_*``, ``at_low_*``), for the
  base-case load flows.

Memory
------
Large Parquet files are read in record batches; a file must then list each metering point in
one contiguous block (sorted by metering point, as an export per point is), which is checked.
Only per-point values, per-point daily maxima of the current block and per-group hourly sums
are kept; the values at the groups' peak hours come from a second, filtered pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from powercheck.grid.networks import GridModelError
from powercheck.gs1 import validate_gsrn
from powercheck.lazy import lazy_module

pd = lazy_module("pandas")
# only reading AMS files (building a grid cache) needs these; a screening run on a warm cache does not import them
pc = lazy_module("pyarrow.compute")
pacsv = lazy_module("pyarrow.csv")

__all__ = [
    "AMS_COLUMNS",
    "AmsDataError",
    "AmsSummary",
    "read_ams",
    "velander_kw",
]

AMS_COLUMNS = ("metering_point_id", "timestamp_utc", "resolution", "kwh", "direction", "quality")
"""The columns of an AMS file, in order."""

RESOLUTIONS = {"PT60M": 3600, "PT15M": 900}
"""Allowed resolutions and their interval length [s]."""

DIRECTIONS = ("import", "export")
QUALITIES = ("measured", "estimated", "revised")

MAX_POWER_KW = 2000.0
"""Largest mean power of one interval [kW] (the customer index's bound)."""

MAX_ERRORS = 10
LOCAL_TZ = "Europe/Oslo"
BATCH_ROWS = 1 << 21
"""Rows per record batch when reading Parquet."""


class AmsDataError(GridModelError):
    """An AMS file cannot be used; the message names the file, the rows and the columns."""


def velander_kw(annual_kwh: np.ndarray | float, k1: float, k2: float) -> np.ndarray:
    """Velander's peak estimate ``P = k1 * W + k2 * sqrt(W)``.

    Parameters
    ----------
    annual_kwh : array
        Annual energy ``W`` [kWh].
    k1 : float
        [kW per kWh/a].
    k2 : float
        [kW per sqrt(kWh/a)].

    Returns
    -------
    array
        The peak demand ``P`` [kW].
    """
    w = np.asarray(annual_kwh, dtype=float)
    return k1 * w + k2 * np.sqrt(w)


@dataclass(frozen=True)
class AmsSummary:
    """What an AMS file says about its metering points and their groups (networks).

    Per-point arrays have one entry per point of ``metering_point_id``; per-group arrays one per
    group (``group_names``). Hours are UTC hours since the Unix epoch (``hour * 3600`` = seconds).
    """

    origin: str
    metering_point_id: np.ndarray
    """Metering point ids (object array of str), in order of first appearance in the file."""
    group: np.ndarray
    """int64: the point's group (-1 when no groups were given)."""
    resolution_s: np.ndarray
    """int64: interval length of the point's import series [s] (of its export series when it has no import)."""
    n_values: np.ndarray
    """int64: values of the point (both directions)."""
    n_estimated: np.ndarray
    """int64: values with quality ``estimated``."""
    first_hour: np.ndarray
    last_hour: np.ndarray
    peak_import_kw: np.ndarray
    """Largest import interval energy / interval length [kW] (NaN: no import series)."""
    tariff_kw: np.ndarray
    """Largest monthly mean of the 3 highest local daily maxima of hourly import [kW]."""
    tariff_month: np.ndarray
    """object: the local month ('YYYY-MM') of ``tariff_kw``."""
    peak_export_kw: np.ndarray
    """Largest export interval energy / interval length [kW] (0: no export series)."""
    group_names: tuple[str, ...]
    coincident_peak_kw: np.ndarray
    """Per group: largest hourly net import [kW] (NaN: the group has no data)."""
    peak_hour: np.ndarray
    """Per group: the hour of ``coincident_peak_kw`` (-1: no data)."""
    low_net_kw: np.ndarray
    """Per group: smallest hourly net import [kW] (negative: net export)."""
    low_hour: np.ndarray
    """Per group: the hour of ``low_net_kw``."""
    at_peak_import_kw: np.ndarray
    at_peak_export_kw: np.ndarray
    at_low_import_kw: np.ndarray
    at_low_export_kw: np.ndarray
    """Per point: hourly import / export [kW] at its group's peak hour and low hour."""

    def __len__(self) -> int:
        return int(self.metering_point_id.shape[0])

    def frame(self) -> pd.DataFrame:
        """The per-point values as a table."""
        return pd.DataFrame(
            {
                "metering_point_id": self.metering_point_id,
                "resolution_s": self.resolution_s,
                "n_values": self.n_values,
                "peak_import_kw": self.peak_import_kw,
                "tariff_kw": self.tariff_kw,
                "tariff_month": self.tariff_month,
                "peak_export_kw": self.peak_export_kw,
            }
        )

    @staticmethod
    def hour_text(hour: int) -> str:
        """An hour as ISO 8601 UTC."""
        if hour < 0:
            return ""
        return pd.Timestamp(int(hour) * 3600, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%MZ")


# ---------------------------------------------------------------------------------------------- reading


def _fail(origin: str, problems: list[str]) -> AmsDataError:
    more = f" (+{len(problems) - MAX_ERRORS} more)" if len(problems) > MAX_ERRORS else ""
    return AmsDataError(f"{origin}: " + "; ".join(problems[:MAX_ERRORS]) + more)


def _rows(mask: np.ndarray, row0: int, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)[:limit] + row0
    text = ", ".join(str(int(r)) for r in idx)
    return f"row {text}" if idx.shape[0] == 1 else f"rows {text}" + (" ..." if mask.sum() > limit else "")


def _read_csv(path: Path, origin: str) -> pa.Table:
    opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in AMS_COLUMNS}, strings_can_be_null=True)
    try:
        return pacsv.read_csv(path, convert_options=opts)
    except FileNotFoundError:
        raise AmsDataError(f"AMS file {path} not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise AmsDataError(f"{origin}: not a readable CSV file ({exc})") from None


def _batches(path: Path, origin: str, columns: Sequence[str] = AMS_COLUMNS) -> Iterator[pa.RecordBatch]:
    """Record batches of the file's AMS columns (CSV read whole; Parquet in batches)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _read_csv(path, origin)
        missing = [c for c in AMS_COLUMNS if c not in table.column_names]
        if missing:
            raise AmsDataError(f"{origin}: column {missing[0]!r} is missing (columns: {', '.join(AMS_COLUMNS)})")
        yield from table.select(list(columns)).to_batches(max_chunksize=BATCH_ROWS)
        return
    if suffix != ".parquet":
        raise AmsDataError(f"{origin}: an AMS file is .parquet or .csv")
    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise AmsDataError(f"AMS file {path} not found") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise AmsDataError(f"{origin}: not a Parquet file ({exc})") from None
    names = pf.schema_arrow.names
    missing = [c for c in AMS_COLUMNS if c not in names]
    if missing:
        raise AmsDataError(f"{origin}: column {missing[0]!r} is missing (columns: {', '.join(AMS_COLUMNS)})")
    yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=list(columns))


def _codes(column: pa.Array, allowed: Sequence[str], name: str, origin_rows: tuple[int, list[str]]) -> np.ndarray:
    """Codes of a categorical string column (-1 for an unknown or missing value, reported)."""
    row0, problems = origin_rows
    if pa.types.is_dictionary(column.type) and pa.types.is_string(column.dictionary.type):
        table = np.asarray(pc.index_in(column.dictionary, value_set=pa.array(list(allowed))).fill_null(-1))
        indices = np.asarray(column.indices.fill_null(-1), dtype=np.int64)
        codes = np.where(indices >= 0, np.r_[table, -1][indices], -1).astype(np.int64)
        values = column
    else:
        values = column.cast(pa.string()) if column.type != pa.string() else column
        codes = np.asarray(pc.index_in(values, value_set=pa.array(list(allowed))).fill_null(-1), dtype=np.int64)
    bad = codes < 0
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        value = values[first].as_py()
        shown = "missing" if value is None else f"{value!r:.40}"
        problems.append(f"{_rows(bad, row0)} {name}: {shown} is not one of {', '.join(allowed)}")
    return codes


def _timestamps(column: pa.Array, row0: int, problems: list[str]) -> np.ndarray:
    """Seconds since the epoch (UTC) of a timestamp column; naive or unreadable values are reported."""
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            problems.append(
                f"{_rows(np.ones(len(column), bool), row0)} timestamp_utc: a timestamp without time zone; "
                "the file must hold timezone-aware UTC timestamps"
            )
            return np.zeros(len(column), dtype=np.int64)
        secs = pc.cast(column, pa.timestamp("s", tz=column.type.tz), safe=False)
        nulls = np.asarray(secs.is_null())
        out = np.asarray(secs.cast(pa.int64()).fill_null(0), dtype=np.int64)
        if nulls.any():
            problems.append(f"{_rows(nulls, row0)} timestamp_utc: missing")
        return out
    text = pd.Series(column.to_pandas(), dtype=object)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    has_zone = text.fillna("").str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).to_numpy()
    naive = ~bad & ~has_zone
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        problems.append(f"{_rows(bad, row0)} timestamp_utc: {text.iloc[first]!r:.40} is not an ISO 8601 timestamp")
    if naive.any():
        first = int(np.flatnonzero(naive)[0])
        problems.append(
            f"{_rows(naive, row0)} timestamp_utc: {text.iloc[first]!r:.40} has no time zone (write Z for UTC)"
        )
    filled = parsed.fillna(pd.Timestamp(0, tz="UTC")).dt.tz_convert(None)
    return filled.to_numpy().astype("datetime64[s]").astype(np.int64)


@dataclass
class _Batch:
    point: np.ndarray  # int64 point code (-1 unknown)
    ts: np.ndarray  # int64 seconds
    res: np.ndarray  # int64 seconds
    kwh: np.ndarray
    export: np.ndarray  # bool
    estimated: np.ndarray  # bool
    row: np.ndarray  # int64 file row

    def take(self, idx: np.ndarray) -> _Batch:
        return _Batch(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    @staticmethod
    def concat(a: _Batch, b: _Batch) -> _Batch:
        return _Batch(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in a.__dataclass_fields__))


class _Points:
    """Metering point id -> code, checking GS1 and (when given) membership of a known set."""

    def __init__(self, known: Sequence[str] | None, origin: str):
        self.origin = origin
        self.known = None if known is None else pd.Index([str(k) for k in known])
        self.ids: list[str] = [] if known is None else [str(k) for k in known]
        self.lookup: dict[str, int] = {} if known is None else {k: i for i, k in enumerate(self.ids)}
        self.checked: dict[str, str | None] = {}

    def codes(self, column: pa.Array, row0: int, problems: list[str]) -> np.ndarray:
        if pa.types.is_dictionary(column.type):
            enc = column
            if not pa.types.is_string(enc.dictionary.type):
                enc = pc.dictionary_encode(column.cast(pa.string()))
        else:
            col = column.cast(pa.string()) if column.type != pa.string() else column
            enc = pc.dictionary_encode(col)
        dictionary = enc.dictionary.to_pylist()
        indices = np.asarray(enc.indices.fill_null(-1), dtype=np.int64)
        mapped = np.full(len(dictionary) + 1, -1, dtype=np.int64)
        for j, mp in enumerate(dictionary):
            if mp not in self.checked:
                try:
                    validate_gsrn(mp)
                    self.checked[mp] = None
                except ValueError as exc:
                    self.checked[mp] = str(exc)
            why = self.checked[mp]
            if why is not None:
                problems.append(f"{_rows(indices == j, row0)} metering_point_id: {why}")
                continue
            code = self.lookup.get(mp)
            if code is None:
                if self.known is not None:
                    problems.append(f"{_rows(indices == j, row0)} metering_point_id: {mp} is not in the customer index")
                    continue
                code = len(self.ids)
                self.ids.append(mp)
                self.lookup[mp] = code
            mapped[j] = code
        if (indices < 0).any():
            problems.append(f"{_rows(indices < 0, row0)} metering_point_id: missing")
        return mapped[indices]


def _decode(batch: pa.RecordBatch, row0: int, points: _Points, origin: str) -> _Batch:
    problems: list[str] = []
    cols = {name: batch.column(name) for name in batch.schema.names}
    point = points.codes(cols["metering_point_id"], row0, problems)
    ts = _timestamps(cols["timestamp_utc"], row0, problems)
    res_code = _codes(cols["resolution"], tuple(RESOLUTIONS), "resolution", (row0, problems))
    res = np.asarray(list(RESOLUTIONS.values()), dtype=np.int64)[np.maximum(res_code, 0)]
    direction = _codes(cols["direction"], DIRECTIONS, "direction", (row0, problems))
    quality = _codes(cols["quality"], QUALITIES, "quality", (row0, problems))
    kwh_col = cols["kwh"]
    try:
        kwh_arr = kwh_col.cast(pa.float64()) if kwh_col.type != pa.float64() else kwh_col
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        kwh_arr = pa.array(pd.to_numeric(kwh_col.to_pandas(), errors="coerce"), type=pa.float64())
    kwh = np.asarray(kwh_arr.fill_null(np.nan), dtype=float)
    hours = res / 3600.0
    bad = ~np.isfinite(kwh)
    if bad.any():
        problems.append(f"{_rows(bad, row0)} kwh: missing or not a number")
    out = np.isfinite(kwh) & ((kwh < 0) | (kwh > MAX_POWER_KW * hours))
    if out.any():
        first = int(np.flatnonzero(out)[0])
        problems.append(
            f"{_rows(out, row0)} kwh: {kwh[first]:g} is out of range [0, {MAX_POWER_KW * hours[first]:g}] kWh "
            f"(a mean power up to {MAX_POWER_KW:g} kW)"
        )
    misaligned = (ts % np.where(res_code >= 0, res, 1)) != 0
    if misaligned.any():
        first = int(np.flatnonzero(misaligned)[0])
        problems.append(f"{_rows(misaligned, row0)} timestamp_utc: {_iso(ts[first])} is not aligned to its resolution")
    if problems:
        raise _fail(origin, problems)
    return _Batch(
        point=point,
        ts=ts,
        res=res,
        kwh=kwh,
        export=direction == 1,
        estimated=quality == 1,
        row=np.arange(row0, row0 + len(point), dtype=np.int64),
    )


# ---------------------------------------------------------------------------------------------- per block


class _Accumulator:
    """Per-point results and per-group hourly sums, filled block by block."""

    def __init__(self, origin: str, groups: np.ndarray | None, n_groups: int):
        self.origin = origin
        self.groups = groups
        self.n_groups = max(n_groups, 1)
        self.per_point: dict[str, list] = {k: [] for k in _POINT_FIELDS}
        self.done: set[int] = set()
        self.hour0: int | None = None
        self.net = np.zeros((self.n_groups, 0))
        self.has = np.zeros((self.n_groups, 0), dtype=bool)
        self._local: dict[int, tuple[int, int]] = {}

    def _grow(self, lo: int, hi: int) -> None:
        if self.hour0 is None:
            self.hour0 = lo
            self.net = np.zeros((self.n_groups, hi - lo + 1))
            self.has = np.zeros((self.n_groups, hi - lo + 1), dtype=bool)
            return
        start = min(lo, self.hour0)
        end = max(hi, self.hour0 + self.net.shape[1] - 1)
        if start == self.hour0 and end == self.hour0 + self.net.shape[1] - 1:
            return
        net = np.zeros((self.n_groups, end - start + 1))
        has = np.zeros_like(net, dtype=bool)
        off = self.hour0 - start
        net[:, off : off + self.net.shape[1]] = self.net
        has[:, off : off + self.has.shape[1]] = self.has
        self.net, self.has, self.hour0 = net, has, start

    def local_days(self, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local (Europe/Oslo) day number and month key (year*12 + month - 1) of UTC hours."""
        lo = int(hours.min())
        span = np.arange(lo, int(hours.max()) + 1, dtype=np.int64)  # a table over the hours' range, O(n) lookup
        local = pd.DatetimeIndex(span * 3600 * 10**9, tz="UTC").tz_convert(LOCAL_TZ)
        day = (local.tz_localize(None).normalize().asi8 // (86400 * 10**9)).astype(np.int64)
        month = (local.year.to_numpy() * 12 + local.month.to_numpy() - 1).astype(np.int64)
        return day[hours - lo], month[hours - lo]

    def block(self, b: _Batch) -> None:
        """Every row of the points of ``b`` (complete blocks)."""
        if len(b.point) == 0:
            return
        series = b.point * 2 + b.export
        if len(series) > 1 and not _in_order(series, b.ts):
            order = np.lexsort((b.ts, b.export, b.point))
            b = b.take(order)
            series = b.point * 2 + b.export
        start = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])
        end = np.r_[start[1:], len(series)]
        problems: list[str] = []
        same = np.r_[False, series[1:] == series[:-1]]
        step = np.r_[0, np.diff(b.ts)]
        # one resolution per series
        res_changes = same & (np.r_[0, np.diff(b.res)] != 0)
        for i in np.flatnonzero(res_changes)[:3]:
            problems.append(
                f"row {b.row[i]} resolution: {b.res[i] // 60} min differs from row {b.row[i - 1]} "
                f"({b.res[i - 1] // 60} min) of the same metering point and direction"
            )
        dup = same & (step == 0)
        for i in np.flatnonzero(dup)[:3]:
            problems.append(
                f"rows {b.row[i - 1]} and {b.row[i]} timestamp_utc: duplicate value for "
                f"{self._mp(b.point[i])} {DIRECTIONS[int(b.export[i])]} at {_iso(b.ts[i])}"
            )
        gap = same & (step > b.res) & ~res_changes
        for i in np.flatnonzero(gap)[:3]:
            missing = int(step[i] // b.res[i]) - 1
            problems.append(
                f"rows {b.row[i - 1]}-{b.row[i]} timestamp_utc: gap of {missing} value{'s' * (missing != 1)} for "
                f"{self._mp(b.point[i])} {DIRECTIONS[int(b.export[i])]} from {_iso(b.ts[i - 1] + b.res[i])} "
                f"to {_iso(b.ts[i] - b.res[i])}"
            )
        if problems:
            raise _fail(self.origin, problems)

        kw = b.kwh / (b.res / 3600.0)
        s_point = b.point[start]
        s_export = b.export[start]
        s_peak = np.maximum.reduceat(kw, start)
        s_res = b.res[start]
        s_n = end - start
        s_est = np.add.reduceat(b.estimated.astype(np.int64), start)
        s_first = b.ts[start] // 3600
        s_last = b.ts[end - 1] // 3600

        # hourly energy per series (rows are sorted by time within a series)
        hour = b.ts // 3600
        hkey_new = np.r_[True, (series[1:] != series[:-1]) | (hour[1:] != hour[:-1])]
        h_start = np.flatnonzero(hkey_new)
        h_kwh = np.add.reduceat(b.kwh, h_start)
        h_hour = hour[h_start]
        h_series = np.searchsorted(start, h_start, side="right") - 1
        h_export = s_export[h_series]

        # capacity tariff on import: local daily maxima, top 3 per local month
        imp = ~h_export
        tariff = np.full(len(start), np.nan)
        tariff_month = np.full(len(start), -1, dtype=np.int64)
        if imp.any():
            hi_series, hi_hour, hi_kwh = h_series[imp], h_hour[imp], h_kwh[imp]
            day, month = self.local_days(hi_hour)
            d_new = np.r_[True, (hi_series[1:] != hi_series[:-1]) | (day[1:] != day[:-1])]
            d_start = np.flatnonzero(d_new)
            d_max = np.maximum.reduceat(hi_kwh, d_start)
            d_series, d_month = hi_series[d_start], month[d_start]
            order = np.lexsort((-d_max, d_month, d_series))
            d_max, d_series, d_month = d_max[order], d_series[order], d_month[order]
            m_new = np.r_[True, (d_series[1:] != d_series[:-1]) | (d_month[1:] != d_month[:-1])]
            m_start = np.flatnonzero(m_new)
            rank = np.arange(len(d_max)) - np.repeat(m_start, np.diff(np.r_[m_start, len(d_max)]))
            top = rank < 3
            m_id = np.cumsum(m_new) - 1
            m_sum = np.bincount(m_id[top], weights=d_max[top], minlength=len(m_start))
            m_cnt = np.bincount(m_id[top], minlength=len(m_start))
            m_mean = m_sum / m_cnt
            m_series, m_month = d_series[m_start], d_month[m_start]
            # largest monthly value per series (first month on ties)
            o2 = np.lexsort((m_month, -m_mean, m_series))
            first = np.r_[True, m_series[o2][1:] != m_series[o2][:-1]]
            tariff[m_series[o2][first]] = m_mean[o2][first]
            tariff_month[m_series[o2][first]] = m_month[o2][first]

        # per point (one or two series)
        p_new = np.r_[True, s_point[1:] != s_point[:-1]]
        p_start = np.flatnonzero(p_new)
        p_ids = s_point[p_start]
        for mp in p_ids:
            if int(mp) in self.done:
                rows = b.row[b.point == mp]
                raise _fail(
                    self.origin,
                    [
                        f"row {int(rows.min())} metering_point_id: {self._mp(mp)} appears again after its block "
                        "ended; a large Parquet file must list each metering point in one block "
                        "(sort by metering_point_id)"
                    ],
                )
        self.done.update(int(mp) for mp in p_ids)
        seg = np.cumsum(p_new) - 1
        n_p = len(p_ids)
        peak_imp = np.full(n_p, np.nan)
        peak_exp = np.zeros(n_p)
        res_p = np.zeros(n_p, dtype=np.int64)
        tar = np.full(n_p, np.nan)
        tar_m = np.full(n_p, -1, dtype=np.int64)
        imp_s = ~s_export
        peak_imp[seg[imp_s]] = s_peak[imp_s]
        tar[seg[imp_s]] = tariff[imp_s]
        tar_m[seg[imp_s]] = tariff_month[imp_s]
        peak_exp[seg[~imp_s]] = s_peak[~imp_s]
        res_p[seg[~imp_s]] = s_res[~imp_s]
        res_p[seg[imp_s]] = s_res[imp_s]
        acc = self.per_point
        acc["point"].append(p_ids)
        acc["resolution_s"].append(res_p)
        acc["n_values"].append(np.bincount(seg, weights=s_n, minlength=n_p).astype(np.int64))
        acc["n_estimated"].append(np.bincount(seg, weights=s_est, minlength=n_p).astype(np.int64))
        acc["first_hour"].append(np.minimum.reduceat(s_first, p_start))
        acc["last_hour"].append(np.maximum.reduceat(s_last, p_start))
        acc["peak_import_kw"].append(peak_imp)
        acc["tariff_kw"].append(tar)
        acc["tariff_month"].append(tar_m)
        acc["peak_export_kw"].append(peak_exp)

        # group hourly net import
        if self.groups is not None:
            g = self.groups[s_point[h_series]]
            keep = g >= 0
            self._grow(int(h_hour.min()), int(h_hour.max()))
            col = h_hour[keep] - self.hour0
            signed = np.where(h_export[keep], -h_kwh[keep], h_kwh[keep])
            np.add.at(self.net, (g[keep], col), signed)
            self.has[g[keep], col] = True

    def _mp(self, code: int) -> str:
        return self.ids[int(code)] if int(code) < len(self.ids) else str(code)


_POINT_FIELDS = (
    "point",
    "resolution_s",
    "n_values",
    "n_estimated",
    "first_hour",
    "last_hour",
    "peak_import_kw",
    "tariff_kw",
    "tariff_month",
    "peak_export_kw",
)


def _in_order(series: np.ndarray, ts: np.ndarray) -> bool:
    """Rows already sorted by series, then time (an export per point usually is)."""
    ds = np.diff(series)
    return bool((ds >= 0).all() and ((ds != 0) | (np.diff(ts) > 0)).all())


def _iso(ts: int) -> str:
    return pd.Timestamp(int(ts), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%MZ")


def _month_text(key: int) -> str:
    return "" if key < 0 else f"{key // 12:04d}-{key % 12 + 1:02d}"


def read_ams(
    path: str | Path,
    *,
    known: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
    group_names: Sequence[str] = (),
    origin: str | None = None,
) -> AmsSummary:
    """Read and check an AMS file and derive the peaks (see the module docstring).

    Parameters
    ----------
    path : path
        A ``.parquet`` or ``.csv`` file.
    known : sequence of str, optional
        The metering points of the customer index: any other id in the file is an error
        ("unknown metering point"). Without it, every valid id is taken.
    groups : int array, optional
        For each id of ``known`` (same order), its group (network) number, -1 for none.
    group_names : sequence of str
        The names of the groups (networks).
    origin : str, optional
        How errors name the file (default: the path).

    Raises
    ------
    AmsDataError
        Naming the file, the rows and the columns of the first problems.
    """
    path = Path(path)
    origin = origin or f"AMS file {path}"
    if groups is not None and known is None:
        raise ValueError("groups need the known metering points")
    points = _Points(known, origin)
    n_groups = len(group_names) if groups is not None else 0
    acc = _Accumulator(origin, None if groups is None else np.asarray(groups, dtype=np.int64), n_groups)
    acc.ids = points.ids
    carry: _Batch | None = None
    row0 = 0
    for rb in _batches(path, origin):
        decoded = _decode(rb, row0, points, origin)
        row0 += rb.num_rows
        if carry is not None:
            decoded = _Batch.concat(carry, decoded)
        if len(decoded.point) == 0:
            continue
        last = decoded.point[-1]
        tail = decoded.point == last
        # the last point's rows of this batch may continue in the next one
        contiguous_tail = tail & (np.arange(len(tail)) >= np.flatnonzero(~tail).max(initial=-1) + 1)
        carry = decoded.take(np.flatnonzero(contiguous_tail))
        acc.block(decoded.take(np.flatnonzero(~contiguous_tail)))
    if carry is not None:
        acc.block(carry)
    if row0 == 0:
        raise AmsDataError(f"{origin}: the file has no values")
    pp_ = {k: np.concatenate(v) if v else np.array([]) for k, v in acc.per_point.items()}
    order = np.argsort(pp_["point"], kind="stable")
    pp_ = {k: v[order] for k, v in pp_.items()}
    code = pp_["point"].astype(np.int64)
    ids = np.array([points.ids[c] for c in code], dtype=object)
    group = acc.groups[code] if acc.groups is not None else np.full(len(code), -1, dtype=np.int64)

    n_g = len(group_names) if groups is not None else 0
    peak_kw = np.full(n_g, np.nan)
    low_kw = np.full(n_g, np.nan)
    peak_hour = np.full(n_g, -1, dtype=np.int64)
    low_hour = np.full(n_g, -1, dtype=np.int64)
    for g in range(n_g):
        if acc.hour0 is None or not acc.has[g].any():
            continue
        cols = np.flatnonzero(acc.has[g])
        values = acc.net[g, cols]
        i_max, i_min = int(np.argmax(values)), int(np.argmin(values))
        peak_kw[g], peak_hour[g] = values[i_max], acc.hour0 + cols[i_max]
        low_kw[g], low_hour[g] = values[i_min], acc.hour0 + cols[i_min]
    at = _values_at_hours(path, origin, points, code, group, peak_hour, low_hour) if n_g else None
    nan = np.full(len(code), np.nan)
    return AmsSummary(
        origin=origin,
        metering_point_id=ids,
        group=group,
        resolution_s=pp_["resolution_s"].astype(np.int64),
        n_values=pp_["n_values"].astype(np.int64),
        n_estimated=pp_["n_estimated"].astype(np.int64),
        first_hour=pp_["first_hour"].astype(np.int64),
        last_hour=pp_["last_hour"].astype(np.int64),
        peak_import_kw=pp_["peak_import_kw"].astype(float),
        tariff_kw=pp_["tariff_kw"].astype(float),
        tariff_month=np.array([_month_text(int(m)) for m in pp_["tariff_month"]], dtype=object),
        peak_export_kw=pp_["peak_export_kw"].astype(float),
        group_names=tuple(group_names),
        coincident_peak_kw=peak_kw,
        peak_hour=peak_hour,
        low_net_kw=low_kw,
        low_hour=low_hour,
        at_peak_import_kw=at[0] if at else nan,
        at_peak_export_kw=at[1] if at else nan,
        at_low_import_kw=at[2] if at else nan,
        at_low_export_kw=at[3] if at else nan,
    )


def _values_at_hours(
    path: Path,
    origin: str,
    points: _Points,
    code: np.ndarray,
    group: np.ndarray,
    peak_hour: np.ndarray,
    low_hour: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Second pass: each point's hourly import and export at its group's peak and low hours [kW]."""
    n_codes = len(points.ids)
    slot = np.full(n_codes, -1, dtype=np.int64)
    slot[code] = np.arange(len(code))
    g_of = np.full(n_codes, -1, dtype=np.int64)
    g_of[code] = group
    out = [np.zeros(len(code)) for _ in range(4)]
    ph = np.r_[peak_hour, -2]  # index -1 -> no hour
    lh = np.r_[low_hour, -2]
    silent = _Points(None, origin)
    silent.ids, silent.lookup, silent.checked = points.ids, points.lookup, points.checked
    silent.known = points.known
    for rb in _batches(path, origin, ("metering_point_id", "timestamp_utc", "kwh", "direction")):
        problems: list[str] = []
        c = silent.codes(rb.column("metering_point_id"), 0, problems)
        ts = _timestamps(rb.column("timestamp_utc"), 0, problems)
        kwh = np.asarray(rb.column("kwh").cast(pa.float64()).fill_null(0.0), dtype=float)
        export = _codes(rb.column("direction"), DIRECTIONS, "direction", (0, problems)) == 1
        hour = ts // 3600
        g = np.where(c >= 0, g_of[np.maximum(c, 0)], -1)
        s = np.where(c >= 0, slot[np.maximum(c, 0)], -1)
        for k, hours in ((0, ph), (2, lh)):
            hit = (s >= 0) & (hour == hours[g])
            imp_hit, exp_hit = hit & ~export, hit & export
            np.add.at(out[k], s[imp_hit], kwh[imp_hit])
            np.add.at(out[k + 1], s[exp_hit], kwh[exp_hit])
    return tuple(out)


def local_day_counts(timestamps_utc: np.ndarray) -> pd.Series:
    """Number of values per local (Europe/Oslo) day of UTC timestamps [s] (92/96/100 for PT15M days)."""
    local = pd.DatetimeIndex(np.asarray(timestamps_utc, dtype=np.int64) * 10**9, tz="UTC").tz_convert(LOCAL_TZ)
    return pd.Series(1, index=local.date).groupby(level=0).sum()


def finite_or(value: float, other: float) -> float:
    """``value`` unless it is NaN."""
    return other if math.isnan(value) else value
