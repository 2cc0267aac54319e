"""Voltage unbalance kernel by hand (against runpp_3ph: tests/quality/test_voltage.py)."""

import numpy as np
import pytest

from powercheck.quality.unbalance import unbalance_percent

A = np.array
R1, X1 = 0.10, 0.05


def test_unbalance_by_hand():
    # 7.4 kW at cos 0.99 -> S = 7474.7 VA; |Z1| = 0.11180; U = 400: 7474.7 * 0.11180 / 160000 = 0.52231 %
    vuf = unbalance_percent(A([7.4 / 0.99]), A([R1]), A([X1]), A([400.0]))
    assert vuf[0] == pytest.approx(0.52231, rel=1e-4)
