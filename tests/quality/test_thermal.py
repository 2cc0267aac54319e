"""Thermal headroom along the radial path, by hand."""

import numpy as np
import pytest

from powercheck.quality.thermal import path_bottleneck

A = np.array


def test_path_bottleneck_by_hand():
    # bus 0: path lines [0, 1]; bus 1: path [2]; bus 2: no line (busbar)
    indptr = A([0, 2, 3, 3], dtype=np.int64)
    lines = A([0, 1, 2], dtype=np.int64)
    i_max = A([100.0, 270.0, 142.0])
    i_base = A([60.0, 200.0, 10.0])
    row, base, limit = path_bottleneck(indptr, lines, A([0, 1, 2], dtype=np.int64), i_max, i_base, 1.0)
    # headrooms: line0 40 A, line1 70 A -> line 0 binds; bus1: line2 132 A
    assert list(row) == [0, 2, -1]
    np.testing.assert_allclose(base[:2], [60.0, 10.0])
    np.testing.assert_allclose(limit[:2], [100.0, 142.0])
    assert np.isnan(base[2])
    row80, _, limit80 = path_bottleneck(indptr, lines, A([0], dtype=np.int64), i_max, i_base, 0.8)
    # at 80 %: line0 80 - 60 = 20 A, line1 216 - 200 = 16 A -> line 1 binds
    assert row80[0] == 1 and limit80[0] == pytest.approx(216.0)
