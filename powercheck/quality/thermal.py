"""Thermal headroom along the radial path from a bus to its transformer.

A current added at a bus of a radial feeder flows through every line on the
path to the transformer. The binding element is the one with the least
headroom ``limit_frac * I_max - I_base - I_reserved``; adding ``dI`` there gives the
highest loading on the path.
"""

from __future__ import annotations

import numpy as np

from powercheck.jit import njit


def path_bottleneck(path_indptr, path_lines, bus_rows, line_i_max_a, line_i_base_a, limit_frac):
    """Least-headroom line on each bus's path (no reserved current): see :func:`path_headroom`.

    Returns ``line_row, i_base_a, i_limit_a``.
    """
    row, base, _, limit = path_headroom(
        path_indptr, path_lines, bus_rows, line_i_max_a, line_i_base_a, np.zeros_like(line_i_base_a), limit_frac
    )
    return row, base, limit


@njit
def path_headroom(path_indptr, path_lines, bus_rows, line_i_max_a, line_i_base_a, line_i_reserved_a, limit_frac):
    """Least-headroom line on each bus's path.

    Parameters
    ----------
    path_indptr, path_lines : ndarray of int64
        CSR lists of line rows on the path of every bus (bus row ``b`` uses
        ``path_lines[path_indptr[b]:path_indptr[b + 1]]``).
    bus_rows : ndarray of int64
        Bus rows to evaluate.
    line_i_max_a : ndarray of float64
        Rated current of every line [A].
    line_i_base_a : ndarray of float64
        Base-case current magnitude of every line [A].
    line_i_reserved_a : ndarray of float64
        Current already reserved on every line by approved requests [A] (adds to the base).
    limit_frac : float
        Allowed loading as a fraction of rated current [-].

    Returns
    -------
    line_row : ndarray of int64
        Binding line row (-1 when the bus has no line on its path).
    i_base_a, i_reserved_a, i_limit_a : ndarray of float64
        Base current, reserved current and allowed current of that line [A] (NaN without a line).
    """
    n = bus_rows.shape[0]
    line_row = np.full(n, -1, dtype=np.int64)
    i_base = np.full(n, np.nan)
    i_reserved = np.full(n, np.nan)
    i_limit = np.full(n, np.nan)
    for k in range(n):
        b = bus_rows[k]
        best = np.inf
        for p in range(path_indptr[b], path_indptr[b + 1]):
            li = path_lines[p]
            headroom = limit_frac * line_i_max_a[li] - line_i_base_a[li] - line_i_reserved_a[li]
            if headroom < best:
                best = headroom
                line_row[k] = li
        if line_row[k] >= 0:
            i_base[k] = line_i_base_a[line_row[k]]
            i_reserved[k] = line_i_reserved_a[line_row[k]]
            i_limit[k] = limit_frac * line_i_max_a[line_row[k]]
    return line_row, i_base, i_reserved, i_limit
