"""Inverse kernels: the largest scale of an injection before a limit is reached, where no closed form exists.

Both functions are monotone in the scale ``s`` and are solved by bisection on ``[0, s_max]``
(60 halvings: the answer is exact to ``s_max 2^-60``); ``s_max`` is returned where the limit is
not reached, 0 where it is exceeded already.
"""

from __future__ import annotations

import math

import numpy as np

from powercheck.jit import njit


@njit
def _unbalance_at(s, base, a0, v_b, d, d1):
    d0 = s * d / 100.0
    disc = v_b * v_b - 4.0 * d0
    if disc < 0.0:
        return np.inf
    v = 0.5 * (v_b + math.sqrt(disc))
    v1 = v_b - s * d1 / 100.0
    if v <= 0.0 or v1 <= 0.0:
        return np.inf
    return base + s * a0 / (v * v1)


@njit
def unbalance_scale(base, a0, v_b, d, d1, limit, s_max):
    """Largest ``s`` with ``base + s a0 / (v(s) v1(s)) <= limit`` at the connection point.

    ``v(s)`` solves ``v^2 - v_b v + s d / 100 = 0`` (constant power; ``d`` [%] > 0 for a load, < 0
    for export) and ``v1(s) = v_b - s d1 / 100`` is the positive-sequence voltage (``d1`` [%], same
    sign convention). ``a0`` is the unbalance of the unscaled single-phase power at nominal voltage
    [%] (``S |Z1| / U^2``), ``base`` the background and reserved unbalance [%].

    Parameters
    ----------
    base, a0, v_b, d, d1 : ndarray of float64, shape (n,)
    limit, s_max : float

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    n = base.shape[0]
    out = np.full(n, np.inf)
    for k in range(n):
        if a0[k] <= 0.0:
            continue
        if _unbalance_at(s_max, base[k], a0[k], v_b[k], d[k], d1[k]) <= limit:
            out[k] = s_max
            continue
        lo, hi = 0.0, s_max
        if _unbalance_at(lo, base[k], a0[k], v_b[k], d[k], d1[k]) > limit:
            out[k] = 0.0
            continue
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if _unbalance_at(mid, base[k], a0[k], v_b[k], d[k], d1[k]) <= limit:
                lo = mid
            else:
                hi = mid
        out[k] = lo
    return out


@njit
def _thd_at(s, emission, background, alpha):
    acc = 0.0
    for h in range(emission.shape[0]):
        a = alpha[h]
        x = s * emission[h]
        if a == 1.0:
            total = x + background[h]
            acc += total * total
        elif a == 2.0:
            acc += x * x + background[h] * background[h]
        else:
            total = (x**a + background[h] ** a) ** (1.0 / a)
            acc += total * total
    return math.sqrt(acc)


@njit
def thd_scale(emission, background, alpha, thd_max, s_max):
    """Largest ``s`` with ``THD(s) = sqrt(sum_h ((s e_h)^a_h + bg_h^a_h)^(2/a_h)) <= thd_max`` per row.

    ``THD(s)`` grows monotonically with ``s`` and ``THD(s) >= s |e|`` (each order at least its own
    emission), so ``[0, thd_max / |e|]`` brackets the root; the Illinois variant of regula falsi
    narrows it to a relative width of 1e-13 (a few evaluations instead of a bisection's 60). The
    lower end is returned: ``THD(result) <= thd_max`` always holds.

    Parameters
    ----------
    emission : ndarray of float64, shape (n, n_orders)
        Harmonic voltage of the unscaled emission per order [%].
    background, alpha : ndarray of float64, shape (n_orders,)
        Background level [%] and IEC 61000-3-6 summation exponent per order.
    thd_max, s_max : float
        THD limit [%]; scales from ``s_max`` up count as unlimited (``s_max`` is returned).
    """
    n = emission.shape[0]
    out = np.full(n, np.inf)
    for k in range(n):
        e = emission[k]
        if e.max() <= 0.0:
            continue
        if _thd_at(s_max, e, background, alpha) <= thd_max:
            out[k] = s_max
            continue
        lo = 0.0
        f_lo = _thd_at(lo, e, background, alpha) - thd_max
        if f_lo > 0.0:
            out[k] = 0.0
            continue
        hi = min(s_max, thd_max / math.sqrt(np.sum(e * e)))
        f_hi = _thd_at(hi, e, background, alpha) - thd_max
        if f_hi <= 0.0:  # exactly at the limit (the bound is tight without background)
            out[k] = hi
            continue
        side = 0
        for _ in range(200):
            if hi - lo <= 1e-13 * hi:
                break
            m = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
            if not (lo < m < hi):
                m = 0.5 * (lo + hi)
            f_m = _thd_at(m, e, background, alpha) - thd_max
            if f_m <= 0.0:
                lo, f_lo = m, f_m
                if side == -1:
                    f_hi *= 0.5
                side = -1
            else:
                hi, f_hi = m, f_m
                if side == 1:
                    f_lo *= 0.5
                side = 1
        out[k] = lo
    return out
