"""Flicker of voltage steps by the analytic method of IEC 61000-3-3.

:func:`pst_analytic` uses the flicker impression time ``t_f = 2.3 (F d_max)^3.2`` [s] per
voltage change (``d_max`` in %) and ``Pst = (sum t_f / T_p)^(1/3.2)``. The constants 2.3
and 3.2 are **unverified recall** ([R] in the project's research notes) and are exposed as
keyword parameters.

The method is vectorised over any number of cases (numba kernel, arrays in and arrays
out); the rule engine uses it for appliance starts. The full IEC 61000-4-15 flickermeter is
:mod:`powercheck.quality.flickermeter`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from powercheck.jit import njit
from powercheck.quality.flicker_statistics import PST_INTERVAL_S, check_positive

__all__ = ["plt_analytic", "pst_analytic"]


@njit
def _pst_analytic_kernel(d_max, n_changes, shape, t_p_s, coeff, expo):
    """Pst per case: ``(n t_f / T_p)^(1/expo)`` with ``t_f = coeff |F d_max|^expo`` [s]."""
    n = d_max.shape[0]
    out = np.empty(n)
    for i in range(n):
        fd = shape[i] * d_max[i]
        if fd < 0.0:
            fd = -fd
        t_f = coeff * fd**expo
        out[i] = (n_changes[i] * t_f / t_p_s) ** (1.0 / expo)
    return out


def pst_analytic(
    d_max_percent: npt.ArrayLike,
    n_changes: npt.ArrayLike,
    shape_factor: npt.ArrayLike = 1.0,
    *,
    t_p_s: float = 600.0,
    t_f_coeff: float = 2.3,
    t_f_exponent: float = 3.2,
) -> np.ndarray:
    """Pst by the IEC 61000-3-3 analytical method, vectorised over many cases.

    Per voltage change the flicker impression time is ``t_f = t_f_coeff (F d_max)^t_f_exponent``
    [s] and ``Pst = (n t_f / T_p)^(1 / t_f_exponent)`` for ``n`` equal changes in ``T_p``.
    The defaults 2.3 and 3.2 are **unverified recall** ([R] in the research notes), as is the
    method's validity range (intervals between changes of about 1 s or more); on rectangular
    steps the meter agrees within a few % up to ~40 changes/min and the method is
    conservative above (see tests). The constants describe the 230 V lamp: on the 120 V/60 Hz
    Table 5 signals they overestimate the (120 V) meter by 12-98 %.

    Parameters
    ----------
    d_max_percent : array_like of float
        Maximum relative voltage change per event [%].
    n_changes : array_like of float
        Number of voltage changes in the observation period ``t_p_s`` (for a rate ``r`` per
        minute: ``r * t_p_s / 60``). Broadcast with the other arrays.
    shape_factor : array_like of float
        Shape factor ``F`` [-]: 1 for rectangular steps (the only shape provided here).
    t_p_s : float
        Observation period ``T_p`` [s] (600 s for Pst).
    t_f_coeff, t_f_exponent : float
        Constants of the ``t_f`` formula ([R]).

    Returns
    -------
    ndarray of float64
        Pst [-], broadcast shape of the inputs.
    """
    d, r, f = np.broadcast_arrays(
        np.asarray(d_max_percent, dtype=np.float64),
        np.asarray(n_changes, dtype=np.float64),
        np.asarray(shape_factor, dtype=np.float64),
    )
    for arr, name in ((d, "d_max_percent"), (r, "n_changes"), (f, "shape_factor")):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: contains non-finite values")
    if np.any(r < 0.0):
        raise ValueError("n_changes: must be >= 0")
    if np.any(f < 0.0):
        raise ValueError("shape_factor: must be >= 0")
    t_p = check_positive(t_p_s, "t_p_s")
    coeff = check_positive(t_f_coeff, "t_f_coeff")
    expo = check_positive(t_f_exponent, "t_f_exponent")
    out = _pst_analytic_kernel(
        np.array(d, dtype=np.float64).ravel(),
        np.array(r, dtype=np.float64).ravel(),
        np.array(f, dtype=np.float64).ravel(),
        t_p,
        coeff,
        expo,
    )
    return out.reshape(d.shape)


def plt_analytic(
    d_max_percent: npt.ArrayLike,
    n_changes_per_10min: npt.ArrayLike,
    shape_factor: npt.ArrayLike = 1.0,
    *,
    active_intervals: npt.ArrayLike = 12,
    t_f_coeff: float = 2.3,
    t_f_exponent: float = 3.2,
) -> np.ndarray:
    """Plt of a constant-rate process active in ``active_intervals`` of the 12 10-min intervals.

    ``Plt = (sum Pst_i^3 / 12)^(1/3) = Pst * (active_intervals / 12)^(1/3)`` with ``Pst`` from
    :func:`pst_analytic` for ``n_changes_per_10min`` changes in 600 s; a process running for
    the whole 2 h has ``Plt = Pst``.

    Parameters
    ----------
    d_max_percent, n_changes_per_10min, shape_factor : array_like of float
        As in :func:`pst_analytic` with ``t_p_s = 600``.
    active_intervals : array_like of int
        Number of 10-minute intervals (0-12) of the 2 h in which the process runs.
    t_f_coeff, t_f_exponent : float
        Constants of the ``t_f`` formula ([R]).

    Returns
    -------
    ndarray of float64
        Plt [-].
    """
    k = np.asarray(active_intervals, dtype=np.float64)
    if np.any((k < 0) | (k > 12)) or not np.all(np.isfinite(k)):
        raise ValueError("active_intervals: must be between 0 and 12")
    p = pst_analytic(
        d_max_percent,
        n_changes_per_10min,
        shape_factor,
        t_p_s=PST_INTERVAL_S,
        t_f_coeff=t_f_coeff,
        t_f_exponent=t_f_exponent,
    )
    return p * np.cbrt(k / 12.0)
