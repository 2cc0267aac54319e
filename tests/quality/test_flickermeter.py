"""IEC 61000-4-15 flickermeter (waveform + RMS input): Tables 1, 2 and 5, meter properties.

References for the expected values (independent of the implementation):

* IEC 61000-4-15 Tables 1, 2 and 5 as tabulated in the CMI/TÜBİTAK ``verify_flicker_sim.m``
  (qwtb/qwtb, alg_flicker_sim), Ed.1+A1 (2003) and Ed.2 (2010) columns; see
  /work/shared/research/code_anchors.md section 1.4 and standards.md section 2.1.
* The test signals follow that script: ``u = sqrt(2) U sin(2 pi f0 t) (1 + dV/V / 2 * m(t))``
  with ``m = sin`` or ``sign(sin)`` of the modulation (``f_mod = cpm / 120``), changes anywhere
  in the carrier period.
* Sampling rate of the waveform meter: 2000 Hz at 50 Hz (2400 Hz at 60 Hz), i.e. 40 samples
  per cycle. Pst on the Table 5 signals changes by < 0.1 % between 1000 and 4000 Hz, so this
  rate does not limit the accuracy; the bilinear warping of the weighting filter at 25 Hz is
  0.05 % at 2000 Hz.
* Pinst,max (Tables 1 and 2) is a steady-state quantity, so those signals are 40 s long and
  the maximum is taken over the last 20 s; Pst (Table 5) uses full 10-minute intervals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from powercheck.quality import flickermeter as fmeter
from powercheck.quality.flicker import pst_analytic
from powercheck.quality.flicker_filters import design_filters

FS = 2000.0
FS60 = 2400.0
PASS = 0.05  # Tables 1, 2 (Ed.1) and 5: result = 1 +- 5 %

# --------------------------------------------------------------------------- test tables

# Table 1, sinusoidal modulation, Pinst,max = 1: f_mod [Hz] -> dV/V [%]
T1_ED2_230_50 = {0.5: 2.325, 1: 1.397, 2: 0.879, 4: 0.497, 8.8: 0.250, 13: 0.351, 20: 0.704, 25: 1.037}
T1_ED1_230_50 = {0.5: 2.340, 1: 1.432, 2: 0.882, 4: 0.500, 8.8: 0.250, 13: 0.348, 20: 0.700, 25: 1.042}
T1_ED2_120_60 = {0.5: 2.453, 1: 1.465, 2: 0.942, 4: 0.570, 8.8: 0.321, 13: 0.469, 20: 0.977, 25: 1.464}
# Table 2, rectangular modulation, Pinst,max = 1 (Ed.2, 230 V / 50 Hz)
T2_ED2_230_50 = {
    0.5: 0.509,
    1: 0.467,
    2: 0.398,
    4: 0.332,
    6: 0.248,
    8: 0.199,
    8.8: 0.196,
    10: 0.203,
    13: 0.272,
    20: 0.553,
    25: 0.764,
    100 / 3: 1.671,
}
# Table 5, rectangular modulation, Pst = 1: changes per minute and dV/V [%]
T5_CPM = np.array([1.0, 2.0, 7.0, 39.0, 110.0, 1620.0])
T5_ED1A1_230_50 = np.array([2.724, 2.211, 1.459, 0.906, 0.725, 0.402])
T5_ED2_230_50 = np.array([2.715, 2.191, 1.450, 0.894, 0.722, 0.407])
T5_ED2_120_60 = np.array([3.181, 2.564, 1.694, 1.040, 0.844, 0.548])


# --------------------------------------------------------------------------- signal helpers


def _modulation(f_mod, t, kind, t_zero=0.0, edge_offset=0.0):
    if kind == "sin":
        return np.sin(2.0 * np.pi * f_mod * (t - t_zero))
    # Rectangle with exactly 50 % duty. The edges are moved off the sample instants by
    # ``edge_offset``: with sign(sin) an edge that falls on a sample is assigned by rounding,
    # which changes the duty cycle by one sample; at 33 1/3 Hz the resulting 2nd harmonic
    # (66.7 Hz) mixes with the 100 Hz carrier onto 33.3 Hz and moves Pinst by ~9 %.
    return np.where(np.sin(2.0 * np.pi * f_mod * (t - t_zero + edge_offset)) >= 0.0, 1.0, -1.0)


def am_waveform(f_mods, dvv, duration_s, *, kind, fs=FS, f0=50.0, u_rms=230.0, t_zero=0.0):
    """Modulated waveforms, one channel per (f_mod, dV/V) pair [V]."""
    t = np.arange(int(round(duration_s * fs))) / fs
    carrier = u_rms * math.sqrt(2.0) * np.sin(2.0 * np.pi * f0 * t)
    out = np.empty((len(f_mods), t.size))
    for i, (fm, d) in enumerate(zip(f_mods, dvv, strict=True)):
        out[i] = carrier * (1.0 + d / 200.0 * _modulation(fm, t, kind, t_zero, 0.25 / fs))
    return out


def envelope(f_mods, dvv, duration_s, *, kind, fs_rms=100.0, u_rms=230.0, t_zero=0.0):
    """Point samples of the RMS envelope (load-flow style RMS input) [V]."""
    t = np.arange(int(round(duration_s * fs_rms))) / fs_rms
    return np.array(
        [
            u_rms * (1.0 + d / 200.0 * _modulation(fm, t, kind, t_zero, 0.25 / fs_rms))
            for fm, d in zip(f_mods, dvv, strict=True)
        ]
    )


def half_cycle_rms(u, fs=FS, f0=50.0):
    """RMS over consecutive half-cycles starting at a zero crossing (rate 2 f0) [V]."""
    nh = int(round(fs / (2.0 * f0)))
    n = u.shape[-1] // nh * nh
    return np.sqrt((u[..., :n] ** 2).reshape(u.shape[:-1] + (-1, nh)).mean(axis=-1))


def pinst_max_steady(pinst, fs, last_s=20.0):
    return pinst[..., -int(last_s * fs) :].max(axis=-1)


# --------------------------------------------------------------------------- reference point


def test_reference_point_pinst_is_one_for_both_meters():
    u = am_waveform([8.8], [0.25], 40.0, kind="sin")
    assert pinst_max_steady(fmeter.flickermeter(u, FS), FS)[0] == pytest.approx(1.0, abs=0.005)
    r = envelope([8.8], [0.25], 40.0, kind="sin")
    assert pinst_max_steady(fmeter.flickermeter_rms(r, 100.0), 100.0)[0] == pytest.approx(1.0, abs=0.005)


# --------------------------------------------------------------------------- Table 1 / 2


def test_table1_sinusoidal_waveform_meter_ed2():
    table = T1_ED2_230_50
    u = am_waveform(list(table), list(table.values()), 40.0, kind="sin")
    pmax = pinst_max_steady(fmeter.flickermeter(u, FS), FS)
    np.testing.assert_allclose(pmax, 1.0, atol=PASS)


def test_table1_sinusoidal_waveform_meter_ed1():
    table = T1_ED1_230_50
    u = am_waveform(list(table), list(table.values()), 40.0, kind="sin")
    pmax = dict(zip(table, pinst_max_steady(fmeter.flickermeter(u, FS), FS), strict=True))
    np.testing.assert_allclose([v for f, v in pmax.items() if f != 1], 1.0, atol=PASS)
    # Ed.1 lists 1.432 % at 1 Hz; Ed.2 corrected it to 1.397 %. The meter follows Ed.2, so the
    # Ed.1 amplitude gives (1.432 / 1.397)^2 = 1.051, just outside Ed.1's +-5 %.
    assert pmax[1] == pytest.approx((1.432 / 1.397) ** 2, rel=0.01)


def test_table1_sinusoidal_waveform_meter_120v_60hz():
    u = am_waveform(list(T1_ED2_120_60), list(T1_ED2_120_60.values()), 40.0, kind="sin", fs=FS60, f0=60.0, u_rms=120.0)
    # The 120 V lamp uses the same block-4 gain as the 230 V lamp (module docstring).
    pmax = pinst_max_steady(fmeter.flickermeter(u, FS60, f_nominal=60.0, lamp="120V"), FS60)
    np.testing.assert_allclose(pmax, 1.0, atol=PASS)


def test_table1_sinusoidal_rms_meter():
    f, d = list(T1_ED2_230_50), list(T1_ED2_230_50.values())
    # point values of the envelope at 100 Hz (load-flow time series)
    p_env = pinst_max_steady(fmeter.flickermeter_rms(envelope(f, d, 40.0, kind="sin"), 100.0), 100.0)
    np.testing.assert_allclose(p_env, 1.0, atol=PASS)
    # measured half-cycle RMS of the Table 1 waveform, window droop compensated
    r = half_cycle_rms(am_waveform(f, d, 40.0, kind="sin"))
    p_hc = pinst_max_steady(fmeter.flickermeter_rms(r, 100.0, window_s=0.01), 100.0)
    np.testing.assert_allclose(p_hc, 1.0, atol=PASS)
    # without the compensation the 10 ms window loses ~9 % at 25 Hz (shows the FIR is needed)
    p_raw = pinst_max_steady(fmeter.flickermeter_rms(r, 100.0), 100.0)
    assert p_raw[-1] < 0.93


def test_table2_rectangular_waveform_meter():
    u = am_waveform(list(T2_ED2_230_50), list(T2_ED2_230_50.values()), 40.0, kind="rect")
    pmax = pinst_max_steady(fmeter.flickermeter(u, FS), FS)
    np.testing.assert_allclose(pmax, 1.0, atol=PASS)


def test_table2_rectangular_rms_meter_up_to_20hz():
    # At 100 RMS values/s a rectangular modulation above ~20 Hz is not representable (its
    # 3rd harmonic aliases into the pass band: 25 Hz gives ~1.14), so the RMS meter is
    # checked up to 20 Hz.
    table = {f: d for f, d in T2_ED2_230_50.items() if f <= 20}
    r = half_cycle_rms(am_waveform(list(table), list(table.values()), 40.0, kind="rect"))
    pmax = pinst_max_steady(fmeter.flickermeter_rms(r, 100.0, window_s=0.01), 100.0)
    np.testing.assert_allclose(pmax, 1.0, atol=PASS)


# --------------------------------------------------------------------------- Table 5


def _table5(dvv, *, duration_s, settle_s, t_zero, fs=FS, f0=50.0, u_rms=230.0, lamp="230V"):
    """Pst of the Table 5 set by the waveform meter, the RMS meter on half-cycle RMS and on
    point values of the envelope. The modulation phase is 0 at ``t_zero`` (standard's note:
    modulation starts within the first 5 s of the evaluated 10 minutes)."""
    u = am_waveform(T5_CPM / 120.0, dvv, duration_s, kind="rect", fs=fs, f0=f0, u_rms=u_rms, t_zero=t_zero)
    res = fmeter.pst(u, fs, f_nominal=f0, lamp=lamp, settle_s=settle_s)
    fs_rms = 2.0 * f0
    hc = fmeter.pst_rms(
        half_cycle_rms(u, fs, f0), fs_rms, f_nominal=f0, lamp=lamp, window_s=0.5 / f0, settle_s=settle_s
    )
    del u
    env = envelope(T5_CPM / 120.0, dvv, duration_s, kind="rect", fs_rms=fs_rms, u_rms=u_rms, t_zero=t_zero)
    pt = fmeter.pst_rms(env, fs_rms, f_nominal=f0, lamp=lamp, settle_s=settle_s)
    assert res.pst.shape == hc.pst.shape == pt.pst.shape == (6, 1)
    return {"wave": res.pst[:, 0], "rms_half_cycle": hc.pst[:, 0], "rms_point": pt.pst[:, 0]}


@pytest.fixture(scope="module")
def t5_ed1a1():
    # the standard's procedure: 720 s, the first 120 s charge the filters
    return _table5(T5_ED1A1_230_50, duration_s=720.0, settle_s=120.0, t_zero=122.0)


@pytest.fixture(scope="module")
def t5_ed2():
    # a bare 10-minute record, no settling (steady-state start, module docstring)
    return _table5(T5_ED2_230_50, duration_s=600.0, settle_s=0.0, t_zero=2.0)


@pytest.mark.parametrize("meter", ["wave", "rms_half_cycle", "rms_point"])
def test_table5_ed1a1(t5_ed1a1, meter):
    np.testing.assert_allclose(t5_ed1a1[meter], 1.0, atol=PASS)


@pytest.mark.parametrize("meter", ["wave", "rms_half_cycle", "rms_point"])
def test_table5_ed2(t5_ed2, meter):
    np.testing.assert_allclose(t5_ed2[meter], 1.0, atol=PASS)


def test_table5_rms_meter_matches_waveform_meter(t5_ed1a1, t5_ed2):
    # Achieved: <= 0.8 % (half-cycle RMS) and <= 1.2 % (point values, edges on a 10 ms grid).
    for res in (t5_ed1a1, t5_ed2):
        np.testing.assert_allclose(res["rms_half_cycle"], res["wave"], rtol=0.015)
        # point values put the edges on the 10 ms grid: at 1620 cpm (period 7.4 samples) the
        # duty cycle jitters, worth ~2 % in Pst
        np.testing.assert_allclose(res["rms_point"], res["wave"], rtol=0.025)


def test_table5_ed2_120v_60hz():
    res = _table5(T5_ED2_120_60, duration_s=600.0, settle_s=0.0, t_zero=2.0, fs=FS60, f0=60.0, u_rms=120.0, lamp="120V")
    for meter in ("wave", "rms_half_cycle", "rms_point"):
        np.testing.assert_allclose(res[meter], 1.0, atol=PASS, err_msg=meter)


def test_settling_choice_does_not_matter(t5_ed2):
    # Same Ed.2 set evaluated the standard's way (720 s, 120 s settling) vs the bare 600 s.
    u = am_waveform(T5_CPM / 120.0, T5_ED2_230_50, 720.0, kind="rect", t_zero=122.0)
    p720 = fmeter.pst(u, FS, settle_s=120.0).pst[:, 0]
    np.testing.assert_allclose(p720, t5_ed2["wave"], rtol=0.01)


# --------------------------------------------------------------------------- meter properties


def test_steady_voltage_gives_no_flicker_even_at_record_start():
    t = np.arange(int(610 * FS)) / FS
    u = 230 * math.sqrt(2) * np.sin(2 * np.pi * 50 * t + 0.7)
    u_harm = u + 11.5 * math.sqrt(2) * (np.sin(2 * np.pi * 150 * t) + np.sin(2 * np.pi * 250 * t + 1.0))
    res = fmeter.pst(np.array([u, u_harm]), FS)
    # residual of the 100 Hz carrier: Pinst ~ 2e-4 everywhere, including the first second
    assert res.pinst.max() < 1e-3
    assert np.all(res.pst < 0.02)


def test_adaptor_makes_result_level_independent_and_channels_independent():
    u = am_waveform([8.8, 2.0], [0.25, 0.879], 20.0, kind="sin")
    p = fmeter.flickermeter(u, FS)
    np.testing.assert_allclose(fmeter.flickermeter(u * 1000.0, FS), p, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fmeter.flickermeter(u[1], FS), p[1], rtol=1e-12, atol=1e-15)


def test_kernel_matches_scipy_sosfilt_chain():
    """The numba recursion equals scipy's sosfilt on the same design (fixed reference level)."""
    u = am_waveform([7.0], [0.5], 10.0, kind="rect")[0]
    tau = 1e12  # adaptor reference frozen at the first second's mean square
    p = fmeter.flickermeter(u, FS, adaptor_tau_s=tau)
    sos_band, sos_smooth = design_filters(FS, 50.0, "230V")
    x = u * u / np.mean(u[: int(FS)] ** 2) - 1.0
    n_fade = int(fmeter.FADE_S * FS)
    x[:n_fade] *= 0.5 * (1.0 - np.cos(np.pi * np.arange(n_fade) / n_fade))
    y = signal.sosfilt(sos_band, x)
    ref = fmeter.calibration_gain(FS) * signal.sosfilt(sos_smooth, y * y)
    np.testing.assert_allclose(p, ref, rtol=1e-7, atol=1e-9)


# --------------------------------------------------------------------------- analytic method against the meter


def test_analytic_method_vs_flickermeter_on_table5_steps(t5_ed1a1, t5_ed2):
    """Rectangular voltage changes (F = 1) at the Table 5 rates: analytic Pst / meter Pst.

    Found (Ed.1+A1 / Ed.2 amplitudes): 1 cpm 0.98/0.98, 2 cpm 0.98/0.98, 7 cpm 0.96/0.96,
    39 cpm 1.01/1.01, 110 cpm 1.13/1.13, 1620 cpm 1.48/1.48. The t_f formula describes single
    steps whose responses do not overlap; up to 39 changes/min (>= 1.5 s apart) it agrees with
    the meter within 5 %, non-conservative by up to ~4 %; at higher rates the responses
    overlap and the analytic method overestimates (conservative), by ~50 % at 1620 cpm.
    """
    for dvv, res in ((T5_ED1A1_230_50, t5_ed1a1), (T5_ED2_230_50, t5_ed2)):
        ratio = pst_analytic(dvv, T5_CPM * 10.0) / res["wave"]
        low = T5_CPM <= 39
        np.testing.assert_allclose(ratio[low], 1.0, atol=0.05)
        assert np.all(ratio[~low] > 1.08)
        assert np.all(ratio[~low] < 1.6)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda: fmeter.pst(np.r_[np.ones(5000), np.nan, np.ones(5000)], FS), "samples"),
        (lambda: fmeter.pst(np.sin(np.arange(int(FS * 599)) * 0.157), FS), "samples"),
        (lambda: fmeter.pst(np.ones((2, 3, 4)), FS), "samples"),
        (lambda: fmeter.flickermeter(np.ones(100), FS), "samples"),
        (lambda: fmeter.flickermeter(np.zeros(4000), FS), "samples"),
        (lambda: fmeter.flickermeter(np.ones(4000), 800.0), "fs"),
        (lambda: fmeter.flickermeter(np.ones(4000), -1.0), "fs"),
        (lambda: fmeter.flickermeter(np.ones(4000), FS, lamp="LED"), "lamp"),
        (lambda: fmeter.flickermeter(np.ones(4000), FS, f_nominal=55.0), "f_nominal"),
        (lambda: fmeter.pst(np.ones(int(FS * 700)), FS, settle_s=-1.0), "settle_s"),
        (lambda: fmeter.pst(np.ones(int(FS * 700)), FS, settle_s=120.0), "samples"),
        (lambda: fmeter.pst_rms(np.ones(60000), 50.0), "fs_rms"),
        (lambda: fmeter.pst_rms(np.full(60000, np.inf), 100.0), "rms_values"),
        (lambda: fmeter.pst_rms(np.ones(50000), 100.0), "rms_values"),
        (lambda: fmeter.flickermeter_rms(np.ones(200), 100.0, window_s=0.02), "window_s"),
        (lambda: fmeter.flickermeter_rms(np.ones(200), 100.0, lamp="230"), "lamp"),
    ],
)
def test_bad_input_names_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        call()
