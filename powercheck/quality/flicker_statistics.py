"""IEC 61000-4-15 block 5: exceedance levels, Pst and Plt from Pinst; input checks of the flicker modules.

Block 5, statistics
    Per complete 10-minute interval the exceedance levels ``P_x`` (level exceeded during
    ``x`` % of the time) are the exact linear-interpolated quantiles ``1 - x/100`` of all
    Pinst samples (no classifier quantisation; equal to ``np.quantile``, computed by a
    histogram selection kernel that avoids a full sort) and

    ``Pst = sqrt(0.0314 P0.1 + 0.0525 P1s + 0.0657 P3s + 0.28 P10s + 0.08 P50s)``

    with ``P1s = (P0.7 + P1 + P1.5)/3``, ``P3s = (P2.2 + P3 + P4)/3``,
    ``P10s = (P6 + P8 + P10 + P13 + P17)/5``, ``P50s = (P30 + P50 + P80)/3`` and ``P0.1``
    unsmoothed.

:func:`plt` is the cube mean of consecutive Pst values (2 h of 10-minute values).

The flickermeter (blocks 1-4, :mod:`powercheck.quality.flickermeter`) and the analytic
method (:mod:`powercheck.quality.flicker`) build on this module.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from powercheck.jit import njit

__all__ = [
    "PST_INTERVAL_S",
    "PST_PERCENTILES",
    "PST_WEIGHTS",
    "as_channels",
    "block5",
    "check_positive",
    "check_settle",
    "exceedance_levels",
    "order_statistics",
    "plt",
    "pst_from_pinst",
]

PST_INTERVAL_S = 600.0
"""Pst observation interval [s]."""

PST_PERCENTILES = (0.1, 0.7, 1.0, 1.5, 2.2, 3.0, 4.0, 6.0, 8.0, 10.0, 13.0, 17.0, 30.0, 50.0, 80.0)
"""Exceedance levels [% of time] used by block 5, in the order of ``FlickerResult.percentiles``."""

PST_WEIGHTS = (0.0314, 0.0525, 0.0657, 0.28, 0.08)
"""Weights of ``P0.1``, ``P1s``, ``P3s``, ``P10s``, ``P50s`` in the Pst formula [-]."""


# --------------------------------------------------------------------------- input checks


def as_channels(values: npt.ArrayLike, name: str) -> tuple[np.ndarray, bool]:
    """``values`` as a C-contiguous float64 (n_channels, n) array, and whether the input was 1-D.

    Raises ValueError naming ``name`` for other dimensions, an empty or a non-finite input.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name}: expected shape (n_samples,) or (n_channels, n_samples), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values (NaN or inf)")
    squeeze = arr.ndim == 1
    return np.ascontiguousarray(np.atleast_2d(arr)), squeeze


def check_positive(value: float, name: str) -> float:
    """``value`` as a float; ValueError naming ``name`` unless it is positive and finite."""
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name}: must be a positive finite number, got {value!r}")
    return v


def check_settle(settle_s: float) -> float:
    """``settle_s`` [s] as a float; ValueError unless it is finite and >= 0."""
    settle = float(settle_s)
    if not math.isfinite(settle) or settle < 0.0:
        raise ValueError(f"settle_s: must be >= 0 [s], got {settle_s!r}")
    return settle


# --------------------------------------------------------------------------- exact exceedance levels


_N_BINS = 8192
_N_PROBE = 8192


@njit
def _value_bin(v, a, b, scale, nb):
    """Bin of ``v``: 0 below ``a``, 1..nb linear on ``[a, b]``, nb + 1 above ``b`` (monotone)."""
    if v < a:
        return 0
    if v > b:
        return nb + 1
    return 1 + min(int((v - a) * scale), nb - 1)


@njit
def order_statistics(rows, ranks):
    """Exact order statistics (0-based ``ranks``, ascending) of each row of ``rows``.

    A selection instead of a full sort. A strided probe of ``_N_PROBE`` values guesses a value
    interval ``[a, b]`` around the wanted ranks (with a generous binomial margin); one pass
    histograms all values (one bin below ``a``, linear bins on ``[a, b]``, one bin above
    ``b``) and keeps each bin's min and max; a bin whose min equals its max (ties, e.g. an
    exactly periodic Pinst) gives its order statistics directly, the values of the other bins
    holding a wanted rank are collected in a second pass and sorted. The bin is monotone in
    the value, so a rank inside the collection follows from the counts: the result is exact
    whatever the probe guessed. Rows whose collection would exceed n/8 are flagged in the
    second output and left to a full sort by the caller.
    """
    n_rows, n = rows.shape
    n_r = ranks.shape[0]
    nb = _N_BINS
    out = np.empty((n_rows, n_r))
    flagged = np.zeros(n_rows, np.bool_)
    counts = np.empty(nb + 2, np.int64)
    bmin = np.empty(nb + 2)
    bmax = np.empty(nb + 2)
    bin_of = np.empty(n_r, np.int64)
    below = np.empty(n_r, np.int64)
    need = np.empty(nb + 2, np.bool_)
    step = max(1, n // _N_PROBE)
    for r in range(n_rows):
        x = rows[r]
        probe = np.sort(x[::step].copy())
        m = probe.shape[0]
        p_lo = ranks[0] / n
        p_hi = ranks[n_r - 1] / n
        i_a = int(p_lo * m - 5.0 * math.sqrt(m * p_lo * (1.0 - p_lo)) - 8.0)
        i_b = int(p_hi * m + 5.0 * math.sqrt(m * p_hi * (1.0 - p_hi)) + 8.0)
        a = probe[min(max(i_a, 0), m - 1)]
        b = probe[min(max(i_b, 0), m - 1)]
        scale = nb / (b - a) if b > a else 0.0
        counts[:] = 0
        bmin[:] = np.inf
        bmax[:] = -np.inf
        for i in range(n):
            v = x[i]
            j = _value_bin(v, a, b, scale, nb)
            counts[j] += 1
            bmin[j] = min(bmin[j], v)
            bmax[j] = max(bmax[j], v)
        cum = 0
        j = 0
        total = 0
        need[:] = False
        for k in range(n_r):
            while cum + counts[j] <= ranks[k]:
                cum += counts[j]
                j += 1
            bin_of[k] = j
            below[k] = cum
            if bmin[j] == bmax[j]:
                out[r, k] = bmin[j]
            elif not need[j]:
                need[j] = True
                total += counts[j]
        if total == 0:
            continue
        if total > n // 8:
            flagged[r] = True
            continue
        vals = np.empty(total)
        keys = np.empty(total, np.int64)
        q = 0
        for i in range(n):
            j = _value_bin(x[i], a, b, scale, nb)
            if need[j]:
                vals[q] = x[i]
                keys[q] = j
                q += 1
        vals = np.sort(vals)
        keys = np.sort(keys)  # monotone in the value: aligned with the sorted values
        for k in range(n_r):
            if need[bin_of[k]]:
                out[r, k] = vals[np.searchsorted(keys, bin_of[k]) + ranks[k] - below[k]]
    return out, flagged


def exceedance_levels(blocks: np.ndarray) -> np.ndarray:
    """``P_x`` for :data:`PST_PERCENTILES` along the last axis (quantile ``1 - x/100``).

    Equal to ``np.quantile(..., method="linear")`` (tested), computed from exact order
    statistics by :func:`order_statistics`.
    """
    n = blocks.shape[-1]
    h = (n - 1) * (1.0 - np.asarray(PST_PERCENTILES) / 100.0)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    ranks = np.unique(np.concatenate([lo, hi]))
    rows = np.ascontiguousarray(blocks.reshape(-1, n))
    stats, flagged = order_statistics(rows, ranks)
    if np.any(flagged):
        stats[flagged] = np.sort(rows[flagged], axis=-1)[:, ranks]
    stats = stats.reshape(blocks.shape[:-1] + (ranks.size,))
    v_lo = stats[..., np.searchsorted(ranks, lo)]
    v_hi = stats[..., np.searchsorted(ranks, hi)]
    return v_lo + (h - lo) * (v_hi - v_lo)


def pst_from_pinst(
    pinst: npt.ArrayLike, fs_pinst: float, *, settle_s: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block 5: Pst per complete 10-minute interval from a Pinst series.

    Parameters
    ----------
    pinst : array_like of float
        Pinst [-], shape ``(n,)`` or ``(n_channels, n)``.
    fs_pinst : float
        Rate of ``pinst`` [Hz].
    settle_s : float
        Initial part excluded from the statistics [s].

    Returns
    -------
    pst : ndarray
        Pst [-], shape ``(n_intervals,)`` or ``(n_channels, n_intervals)``.
    percentiles : ndarray
        ``P_x`` [-] for :data:`PST_PERCENTILES`, shape ``pst.shape + (15,)``.
    interval_start_s : ndarray
        Interval start times [s].
    """
    fs_pinst = check_positive(fs_pinst, "fs_pinst")
    settle = check_settle(settle_s)
    p, squeeze = as_channels(pinst, "pinst")
    pst_v, perc, starts = block5(p, fs_pinst, settle, "pinst")
    if squeeze:
        return pst_v[0], perc[0], starts
    return pst_v, perc, starts


def block5(p: np.ndarray, fs: float, settle: float, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pst, percentiles and interval starts of a validated (n_channels, n) Pinst array."""
    i0 = int(round(settle * fs))
    n_per = int(round(PST_INTERVAL_S * fs))
    n_int = (p.shape[1] - i0) // n_per
    if n_int < 1:
        need = (i0 + n_per) / fs
        raise ValueError(
            f"{name}: record too short for one 10-minute interval after settle_s={settle:g} s: "
            f"need {need:g} s, got {p.shape[1] / fs:g} s"
        )
    blocks = p[:, i0 : i0 + n_int * n_per].reshape(p.shape[0], n_int, n_per)
    perc = exceedance_levels(blocks)  # (n_ch, n_int, 15)
    lv = dict(zip(PST_PERCENTILES, np.moveaxis(perc, -1, 0), strict=True))
    p1s = (lv[0.7] + lv[1.0] + lv[1.5]) / 3.0
    p3s = (lv[2.2] + lv[3.0] + lv[4.0]) / 3.0
    p10s = (lv[6.0] + lv[8.0] + lv[10.0] + lv[13.0] + lv[17.0]) / 5.0
    p50s = (lv[30.0] + lv[50.0] + lv[80.0]) / 3.0
    k = PST_WEIGHTS
    pst_v = np.sqrt(k[0] * lv[0.1] + k[1] * p1s + k[2] * p3s + k[3] * p10s + k[4] * p50s)
    starts = (i0 + n_per * np.arange(n_int)) / fs
    return pst_v, perc, starts


# --------------------------------------------------------------------------- Plt


def plt(pst_values: npt.ArrayLike, *, n: int = 12, sliding: bool = False) -> np.ndarray:
    """Long-term flicker severity: cube mean of ``n`` consecutive Pst values (last axis).

    ``Plt = (sum_{i=1..n} Pst_i^3 / n)^(1/3)``, with ``n = 12`` (2 h of 10-minute values).

    Parameters
    ----------
    pst_values : array_like of float
        Pst [-], consecutive values along the last axis.
    n : int
        Number of Pst values per Plt (12 for the standard 2 h).
    sliding : bool
        False (default): non-overlapping blocks of ``n`` as in the standard's 2 h structure;
        an incomplete trailing block is dropped. True: a moving window advancing by one Pst.

    Returns
    -------
    ndarray of float64
        Plt [-], last axis of length ``len // n`` (blocks) or ``len - n + 1`` (sliding).
    """
    p = np.asarray(pst_values, dtype=np.float64)
    if p.ndim == 0:
        raise ValueError("pst_values: expected at least one dimension")
    if not np.all(np.isfinite(p)) or np.any(p < 0.0):
        raise ValueError("pst_values: must be finite and >= 0")
    if int(n) != n or n < 1:
        raise ValueError(f"n: must be a positive integer, got {n!r}")
    m = p.shape[-1]
    if m < n:
        raise ValueError(f"pst_values: need at least n={n} values along the last axis, got {m}")
    cubes = p**3
    if sliding:
        c = np.cumsum(cubes, axis=-1)
        c = np.concatenate([np.zeros(p.shape[:-1] + (1,)), c], axis=-1)
        means = (c[..., n:] - c[..., :-n]) / n
        return np.cbrt(np.maximum(means, 0.0))
    k = m // n
    blocks = cubes[..., : k * n].reshape(p.shape[:-1] + (k, n))
    return np.cbrt(blocks.mean(axis=-1))
