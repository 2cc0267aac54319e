"""Harmonic voltage kernel against hand calculations (IEC 61000-3-6 summation written out)."""

import math

import numpy as np
import pytest

from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SYSTEM_IT, SYSTEM_TN
from powercheck.quality.harmonics import harmonic_voltages_percent, thd_percent

A = np.array
R1, X1, R0, X0 = 0.10, 0.05, 0.30, 0.15


def run(owner, conn, i_rated, spectra, orders, alpha, background, system=SYSTEM_TN, n_owners=1, beta=0.5):
    n = n_owners
    return harmonic_voltages_percent(
        A(owner, dtype=np.int64),
        n,
        A(conn, dtype=np.int64),
        A(i_rated, dtype=float),
        A(spectra, dtype=float),
        A([R1] * n),
        A([X1] * n),
        A([R0] * n),
        A([X0] * n),
        A([400.0] * n),
        A([system] * n, dtype=np.int64),
        A(orders, dtype=np.int64),
        A(alpha, dtype=float),
        A(background, dtype=float).reshape(n, len(orders)),
        beta,
    )


def test_single_three_phase_device_by_hand():
    # 20 A device with 30 % 5th harmonic: I5 = 6 A; Z1_5 = 0.1 sqrt(5) + j 5 * 0.05 = 0.22361 + j0.25
    # |Z| = 0.33541; V5 = 0.33541 * 6 / 230.94 = 0.87142 %
    total, emission = run([0], [CONN_3PH], [20.0], [[30.0]], [5], [1.4], [0.0])
    assert emission[0, 0] == pytest.approx(0.87142, rel=1e-4)
    assert total[0, 0] == pytest.approx(0.87142, rel=1e-4)


def test_summation_law_with_background_and_two_devices():
    # two L-N devices on one installation at order 11 (alpha = 2) and a 1.0 % background:
    # Z_LN,11 = ((2*0.1 + 0.3) sqrt(11) + j 11 (2*0.05 + 0.15)) / 3 = 0.55277 + j0.91667, |Z| = 1.07044
    # device a: 10 A * 5 % = 0.5 A -> 1.07044 * 0.5 / 230.94 = 0.23176 %
    # device b: 16 A * 2 % = 0.32 A -> 0.14833 %
    # emission = sqrt(0.23176^2 + 0.14833^2) = 0.27516 %; total = sqrt(0.27516^2 + 1.0^2) = 1.03717 %
    total, emission = run([0, 0], [CONN_LN, CONN_LN], [10.0, 16.0], [[5.0], [2.0]], [11], [2.0], [1.0])
    assert emission[0, 0] == pytest.approx(0.27516, rel=1e-4)
    assert total[0, 0] == pytest.approx(1.03717, rel=1e-4)
    # alpha = 1 adds arithmetically: 0.23176 + 0.14833 + 1.0
    total1, _ = run([0, 0], [CONN_LN, CONN_LN], [10.0, 16.0], [[5.0], [2.0]], [11], [1.0], [1.0])
    assert total1[0, 0] == pytest.approx(0.23176 + 0.14833 + 1.0, rel=1e-4)


def test_line_to_line_device_uses_2z1_and_u_ll():
    # Z_LL,7 = 2 (0.1 sqrt 7 + j 7 * 0.05) = 0.52915 + j0.7, |Z| = 0.87750; 10 A * 10 % = 1 A over 400 V
    _, emission = run([0], [CONN_LL], [10.0], [[10.0]], [7], [1.4], [0.0])
    assert emission[0, 0] == pytest.approx(100 * 0.87750 * 1.0 / 400, rel=1e-4)


def test_triplens_of_three_phase_devices_follow_the_system():
    # TN: zero-sequence path over the neutral, Z0_3 = 0.3 sqrt 3 + j 3 * 0.15 = 0.51962 + j0.45, |Z| = 0.68739
    _, tn = run([0], [CONN_3PH], [10.0], [[10.0]], [3], [1.0], [0.0], system=SYSTEM_TN)
    assert tn[0, 0] == pytest.approx(100 * 0.68739 * 1.0 / 230.94, rel=1e-4)
    # IT (3 wires): they cannot flow at all
    _, it = run([0], [CONN_3PH], [10.0], [[10.0]], [3], [1.0], [0.0], system=SYSTEM_IT)
    assert it[0, 0] == 0.0


def test_no_skin_effect_and_owner_separation():
    total, emission = run(
        [1, -1], [CONN_3PH, CONN_3PH], [20.0, 99.0], [[30.0], [50.0]], [5], [1.4], [0.0, 0.5], n_owners=2, beta=0.0
    )
    # beta 0: Z1_5 = 0.1 + j0.25 -> |Z| = 0.26926; V5 = 0.26926 * 6 / 230.94 = 0.69956 %
    assert emission[1, 0] == pytest.approx(0.69956, rel=1e-4)
    assert emission[0, 0] == 0.0 and total[0, 0] == 0.0  # the skipped device (owner -1) adds nothing
    assert total[1, 0] == pytest.approx((0.69956**1.4 + 0.5**1.4) ** (1 / 1.4), rel=1e-4)


def test_thd_by_hand():
    assert thd_percent(A([[3.0, 4.0], [0.0, 0.0]]))[0] == pytest.approx(5.0)
    assert thd_percent(A([[1.0, 2.0, 2.0]]))[0] == pytest.approx(3.0)
    assert math.isclose(thd_percent(A([[0.0, 0.0]]))[0], 0.0)
