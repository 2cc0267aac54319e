"""IEC 61000-3-3 analytic flicker method (Pst and Plt of voltage steps) by hand calculation."""

from __future__ import annotations

import numpy as np
import pytest

from powercheck.quality import flicker as fl
from powercheck.quality.flicker_statistics import plt


def test_pst_analytic_hand_calculation():
    # d = 3 %, F = 1, one change in 10 min:
    #   t_f = 2.3 * 3^3.2 = 2.3 * 33.635 = 77.36 s
    #   Pst = (77.36 / 600)^(1/3.2) = 0.12893^0.3125 = 0.5272
    assert fl.pst_analytic(3.0, 1.0)[()] == pytest.approx(0.5272, abs=1e-4)
    # 39 changes/min of d = 0.9 %: t_f = 2.3 * 0.9^3.2 = 2.3 * 0.7138 = 1.6417 s,
    #   n = 390 per 10 min -> (390 * 1.6417 / 600)^(1/3.2) = 1.06711^0.3125 = 1.0205
    assert fl.pst_analytic(0.9, 390.0)[()] == pytest.approx(1.0205, abs=1e-4)
    # shape factor 0.5 on 6 % equals F = 1 on 3 %; the constants are keywords
    assert fl.pst_analytic(6.0, 1.0, 0.5)[()] == pytest.approx(0.5272, abs=1e-4)
    assert fl.pst_analytic(3.0, 1.0, t_f_coeff=4.6)[()] == pytest.approx(0.5272 * 2 ** (1 / 3.2), abs=1e-4)


def test_pst_analytic_vectorised_and_plt():
    rng = np.random.default_rng(1)
    d = rng.uniform(0.1, 5.0, 1000)
    n = rng.integers(0, 200, 1000).astype(float)
    f = rng.uniform(0.2, 1.0, 1000)
    got = fl.pst_analytic(d, n, f)
    expected = (n * 2.3 * (f * d) ** 3.2 / 600.0) ** (1 / 3.2)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert fl.pst_analytic(d.reshape(10, 100), 20.0).shape == (10, 100)
    # constant rate over 2 h: Plt = Pst; active in 3 of 12 intervals: Pst * (3/12)^(1/3)
    p = fl.pst_analytic(2.0, 10.0)
    assert fl.plt_analytic(2.0, 10.0)[()] == pytest.approx(p[()])
    assert fl.plt_analytic(2.0, 10.0, active_intervals=3)[()] == pytest.approx(p[()] * 0.25 ** (1 / 3))
    # consistent with the cube-mean Plt of the 12 Pst values
    assert plt(np.r_[np.full(3, p), np.zeros(9)])[0] == pytest.approx(p[()] * 0.25 ** (1 / 3))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda: fl.pst_analytic(np.nan, 1.0), "d_max_percent"),
        (lambda: fl.pst_analytic(1.0, -1.0), "n_changes"),
        (lambda: fl.pst_analytic(1.0, 1.0, -0.5), "shape_factor"),
        (lambda: fl.pst_analytic(1.0, 1.0, t_p_s=0.0), "t_p_s"),
        (lambda: fl.plt_analytic(1.0, 1.0, active_intervals=13), "active_intervals"),
    ],
)
def test_bad_input_names_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        call()


def test_pst_analytic_of_a_pair_equals_each_alone():
    """The inverse answers work out a start's and a stop's Pst in one call: each element is the same float as
    its own call gives (the kernel is elementwise)."""
    rng = np.random.default_rng(13)
    for d_start, d_stop, rate, shape in rng.uniform([0.01, 0.01, 0.0, 0.5], [8.0, 4.0, 30.0, 1.5], size=(200, 4)):
        pair = fl.pst_analytic(np.array([d_start, d_stop]), rate, np.array([shape, 1.0]))
        alone = [float(fl.pst_analytic(d_start, rate, shape)), float(fl.pst_analytic(d_stop, rate, 1.0))]
        assert pair.tolist() == alone
