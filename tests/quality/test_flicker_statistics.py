"""IEC 61000-4-15 block 5 (exceedance levels, Pst from Pinst) and Plt."""

from __future__ import annotations

import math

import numpy as np
import pytest

from powercheck.quality import flicker_statistics as fs


def test_pst_intervals_and_percentiles_layout():
    # 1250 s of a constant Pinst = 0.5 -> two complete intervals, every percentile 0.5,
    # Pst = sqrt(0.5 * sum of weights) = sqrt(0.5 * 0.5096)
    pinst = np.full(int(1250 * 10), 0.5)
    pst_v, perc, starts = fs.pst_from_pinst(pinst, 10.0, settle_s=30.0)
    np.testing.assert_allclose(pst_v, math.sqrt(0.5 * (0.0314 + 0.0525 + 0.0657 + 0.28 + 0.08)))
    assert perc.shape == (2, 15)
    np.testing.assert_allclose(starts, [30.0, 630.0])
    # a ramp: P50 is the median, P0.1 the 99.9 % quantile
    ramp = np.linspace(0.0, 1.0, 6001)[:-1]
    _, perc, _ = fs.pst_from_pinst(ramp, 10.0)
    lv = dict(zip(fs.PST_PERCENTILES, perc[0], strict=True))
    assert lv[50.0] == pytest.approx(0.5, abs=2e-4)
    assert lv[0.1] == pytest.approx(0.999, abs=2e-4)


def test_plt_hand_calculation():
    # 6 x 0.5 and 6 x 1.0: sum of cubes = 6*0.125 + 6*1 = 6.75, /12 = 0.5625, cbrt = 0.82548
    assert fs.plt([0.5] * 6 + [1.0] * 6)[0] == pytest.approx(0.82548, abs=1e-5)
    # 11 x 0.2 and one 2.0: (11*0.008 + 8)/12 = 8.088/12 = 0.674; cbrt = 0.87677
    # -> one bad interval dominates the 2 h value
    assert fs.plt([0.2] * 11 + [2.0])[0] == pytest.approx(0.87677, abs=1e-5)
    # 25 values -> two complete 2 h blocks, the 25th is dropped
    vals = np.r_[np.full(12, 0.3), np.full(12, 0.6), 5.0]
    np.testing.assert_allclose(fs.plt(vals), [0.3, 0.6])
    # sliding: 13 values -> 2 windows; second = (11*0.3^3 + 0.6^3 ... ) by hand below
    vals = np.r_[np.full(12, 0.3), 0.6]
    sl = fs.plt(vals, sliding=True)
    assert sl.shape == (2,)
    assert sl[0] == pytest.approx(0.3)
    assert sl[1] == pytest.approx(((11 * 0.027 + 0.216) / 12) ** (1 / 3))  # 0.3537
    # vectorised over leading axes
    np.testing.assert_allclose(fs.plt(np.full((3, 24), 0.7)), np.full((3, 2), 0.7))


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(0).gamma(2.0, 0.3, (2, 3, 20001)),
        np.random.default_rng(1).integers(0, 3, (1, 2, 1001)).astype(float),  # many ties
        np.r_[np.zeros(10000), 1e9].reshape(1, 1, -1),  # one huge spike, all else in one bin
        np.ones((1, 1, 50)),
        np.array([[[0.3, 0.1, 0.2]]]),
        # 90 % distinct values inside one histogram bin -> the full-sort fallback
        np.random.default_rng(2)
        .permutation(
            np.r_[0.5 + 1e-9 * np.random.default_rng(3).random(9000), 1000.0 * np.random.default_rng(4).random(1000)]
        )
        .reshape(1, 1, -1),
        # exactly periodic (as Pinst of a steady voltage is): every bin holds one repeated value
        np.tile(np.random.default_rng(5).random(40), 3000).reshape(1, 1, -1),
    ],
    ids=["gamma", "ties", "spike", "constant", "three", "cluster", "periodic"],
)
def test_exceedance_levels_equal_numpy_quantile(data):
    if data.shape[-1] == 10000:  # "cluster": P80 inside the cluster, P0.1 far above it
        _, flagged = fs.order_statistics(data.reshape(1, -1), np.array([2000, 5000, 9990]))
        assert flagged[0]  # the case really exercises the fallback
    expected = np.moveaxis(np.quantile(data, 1.0 - np.array(fs.PST_PERCENTILES) / 100.0, axis=-1), 0, -1)
    np.testing.assert_allclose(fs.exceedance_levels(data), expected, rtol=1e-15, atol=1e-15)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda: fs.plt([1.0] * 5), "pst_values"),
        (lambda: fs.plt([1.0] * 11 + [np.nan]), "pst_values"),
    ],
)
def test_bad_input_names_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        call()
