"""IEC 61000-4-15 flickermeter (waveform and RMS input) and IEC 61000-3-3 analytic flicker.

Flickermeter blocks
-------------------
The waveform meter (:func:`flickermeter`, :func:`pst`) follows the block structure of
IEC 61000-4-15 (Ed.2 numbering):

Block 1, input voltage adaptor
    The squared samples are divided by a slowly varying reference mean square
    ``U_ref^2``. The reference is the half-period mean square of ``u`` (windows of
    ``round(fs / (2 f_nominal))`` samples, i.e. no zero-crossing detection) smoothed by a
    first-order low-pass with time constant ``adaptor_tau_s`` (default 60 s; the
    1-minute constant is recalled from the standard, **[R]**; it matters: a fixed
    reference taken at the upper or lower level of a Table 5 rectangle moves Pst at
    1 change/min by -/+2.7 %, the 60 s reference reproduces the table within 0.2 %). The
    adaptor makes the meter independent of the voltage level. The samples must be free of a
    DC offset (not removed here: it would put a fundamental-frequency term into ``u^2``).
Block 2, squaring demodulator
    ``x = u^2 / U_ref^2``. A relative RMS modulation ``m(t)`` appears as
    ``(1 + m)^2 - 1 ~ 2 m`` plus a carrier at ``2 f_nominal``.
Block 3a, band-pass
    First-order Butterworth high-pass at 0.05 Hz and sixth-order Butterworth low-pass at
    35 Hz (50 Hz systems) or 42 Hz (60 Hz systems).
Block 3b, lamp-eye weighting filter
    ``F(s) = k w1 s / (s^2 + 2 lam s + w1^2) * (1 + s/w2) / ((1 + s/w3)(1 + s/w4))`` with
    the 230 V or 120 V lamp constants (:data:`LAMP_CONSTANTS`).
Block 4, squaring and smoothing
    Square, first-order low-pass with time constant 300 ms, multiply by the calibration
    gain (see below). The output is the instantaneous flicker sensation ``Pinst``.
Block 5, statistics
    Per complete 10-minute interval the exceedance levels ``P_x`` (level exceeded during
    ``x`` % of the time) are the exact linear-interpolated quantiles ``1 - x/100`` of all
    Pinst samples (no classifier quantisation; equal to ``np.quantile``, computed by a
    histogram selection kernel that avoids a full sort) and

    ``Pst = sqrt(0.0314 P0.1 + 0.0525 P1s + 0.0657 P3s + 0.28 P10s + 0.08 P50s)``

    with ``P1s = (P0.7 + P1 + P1.5)/3``, ``P3s = (P2.2 + P3 + P4)/3``,
    ``P10s = (P6 + P8 + P10 + P13 + P17)/5``, ``P50s = (P30 + P50 + P80)/3`` and ``P0.1``
    unsmoothed.

All analog prototypes are discretised with the bilinear transform (scipy, at set-up).
The sample loops are numba kernels with explicit second-order-section (direct form II
transposed) state, one call for any number of channels.

Calibration of the block-4 gain
-------------------------------
The gain is derived, not copied: it is the value for which the reference modulation of
Table 1 -- a sinusoidal RMS modulation of 0.250 % peak-to-peak (relative amplitude
``a = 0.00125``) at 8.8 Hz -- gives ``max(Pinst) = 1`` with the *230 V lamp* filter.
After the demodulator the reference is ``2 a sin(2 pi 8.8 t)`` (the ``a^2`` term is a
0.05 % effect and neglected). With the discrete frequency responses ``H`` of blocks 3a
and 3b at 8.8 Hz and ``S`` of the 300 ms smoothing filter at 17.6 Hz, the squared,
smoothed signal is ``A^2/2 (1 - |S| cos(...))`` with ``A = 2 a |H|``, hence

``gain = 2 / (A^2 (1 + |S(17.6 Hz)|))``  (about 3.1e5, see :func:`calibration_gain`).

It is computed for the actual sampling rate, so the bilinear warping at 8.8 Hz is
absorbed. The same gain is used for the 120 V lamp: its constant ``k = 1.6357`` already
encodes the lower sensitivity of the 120 V lamp (``|F(8.8 Hz)| = 0.78``), and with the
230 V gain the 120 V Table 1 value at 8.8 Hz (0.321 %) comes out as ``Pinst = 1``
(checked in the tests). Re-normalising the 120 V filter to a unit peak, as some codes do,
would be wrong by a factor 1/0.78^2.

The RMS meter
-------------
:func:`flickermeter_rms` / :func:`pst_rms` take RMS voltage values (e.g. load-flow
results or half-cycle RMS sampled at 100 Hz, ``fs_rms >= MIN_FS_RMS``). The squared
relative RMS ``(U/U_ref)^2`` is exactly what the waveform meter sees after block 2 and the
35 Hz low-pass, so the RMS meter reuses blocks 1 and 3-5 unchanged: each RMS sample is
zero-stuffed to an internal rate ``R * fs_rms >= 1000 Hz`` and the block-3a low-pass acts as
the interpolation filter (it has a flat pass band where a sample-and-hold would droop by
10 % at 25 Hz, and a weighting filter discretised at 100 Hz would respond at 25 Hz like
the analog one at 31.8 Hz). Pinst is returned at ``fs_rms``. The calibration gain is the
same derivation at the internal rate, so the RMS and waveform meters agree (Table 5 within
1.5 %, tested).

RMS values that are averages over a half-cycle starting at a zero crossing
(``window_s = 1 / (2 f_nominal)``) weight the envelope with ``1 - cos(2 pi t / T)``; the
resulting droop (4 % in amplitude at 25 Hz) is compensated to second order by a 3-tap FIR
``[-c, 1 + 2c, -c]`` with ``c = fs_rms^2 T^2 (1/12 - 1/(2 pi^2)) / 2``. Limits at 100 values/s:
sinusoidal fluctuations are within 3 % of the waveform meter up to 25 Hz (33 1/3 Hz: -7.5 %
for half-cycle RMS, -3 % for point values); a rectangular fluctuation above ~20 Hz is not
representable (its 3rd harmonic aliases into the band; 25 Hz reads +14 %).

Start-up and settling
---------------------
The meter assumes the voltage was steady before the record: all filter states start at
rest, the adaptor reference starts at the mean square of the first second, and the
demodulated fluctuation ``x - 1`` is faded in with a raised-cosine window over the first
``FADE_S`` = 1 s, so the abrupt start of the record (the 2 f carrier and any initial offset)
does not ring through the band-pass. Pinst is therefore underestimated during the first
second. :func:`pst` evaluates the complete 10-minute intervals that start ``settle_s`` after
the record start (default 0 s); the standard's test procedure (and e.g. the
``flicker_sim`` verification script) charges the filters for 120 s, which is
``settle_s=120`` here. With the fade, 0 s and 120 s agree within 1 % on the Table 5 signals
(tested).

Analytic method (IEC 61000-3-3)
-------------------------------
:func:`pst_analytic` uses the flicker impression time ``t_f = 2.3 (F d_max)^3.2`` [s] per
voltage change (``d_max`` in %) and ``Pst = (sum t_f / T_p)^(1/3.2)``. The constants 2.3
and 3.2 are **unverified recall** ([R] in the project's research notes) and are exposed as
keyword parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal

from powercheck.jit import njit

__all__ = [
    "FADE_S",
    "LAMP_CONSTANTS",
    "MIN_FS_RMS",
    "MIN_SAMPLES_PER_CYCLE",
    "PST_INTERVAL_S",
    "PST_PERCENTILES",
    "FlickerResult",
    "calibration_gain",
    "flickermeter",
    "flickermeter_rms",
    "plt",
    "plt_analytic",
    "pst",
    "pst_analytic",
    "pst_from_pinst",
    "pst_rms",
]

# --------------------------------------------------------------------------- constants

LAMP_CONSTANTS: dict[str, dict[str, float]] = {
    "230V": {
        "k": 1.74802,
        "lam": 2.0 * math.pi * 4.05981,
        "w1": 2.0 * math.pi * 9.15494,
        "w2": 2.0 * math.pi * 2.27979,
        "w3": 2.0 * math.pi * 1.22535,
        "w4": 2.0 * math.pi * 21.9,
    },
    "120V": {
        "k": 1.6357,
        "lam": 2.0 * math.pi * 4.167375,
        "w1": 2.0 * math.pi * 9.077169,
        "w2": 2.0 * math.pi * 2.939902,
        "w3": 2.0 * math.pi * 1.394468,
        "w4": 2.0 * math.pi * 17.31512,
    },
}
"""Block-3b weighting-filter constants (k [-], lam/w1..w4 [rad/s]) per lamp."""

LOWPASS_HZ = {50.0: 35.0, 60.0: 42.0}
"""Block-3a sixth-order Butterworth cut-off [Hz] per nominal frequency [Hz]."""

HIGHPASS_HZ = 0.05
"""Block-3a first-order high-pass cut-off [Hz]."""

SMOOTHING_TAU_S = 0.3
"""Block-4 first-order low-pass time constant [s]."""

REFERENCE_FREQ_HZ = 8.8
REFERENCE_DVV_PERCENT = 0.250
"""Table 1 reference point: 0.250 % peak-to-peak sinusoidal modulation at 8.8 Hz -> Pinst,max = 1."""

PST_INTERVAL_S = 600.0
"""Pst observation interval [s]."""

PST_PERCENTILES = (0.1, 0.7, 1.0, 1.5, 2.2, 3.0, 4.0, 6.0, 8.0, 10.0, 13.0, 17.0, 30.0, 50.0, 80.0)
"""Exceedance levels [% of time] used by block 5, in the order of ``FlickerResult.percentiles``."""

MIN_SAMPLES_PER_CYCLE = 20
"""Waveform meter: minimum samples per nominal cycle (fs >= 1000 Hz at 50 Hz, 1200 Hz at 60 Hz).

Keeps the half-period RMS window at >= 10 samples and the squared carrier (2 f) and the
squared low-order harmonics below the Nyquist frequency, so that block 3a sees them at their
true frequency (multiples of 2 f) and not aliased into the 0.05-35 Hz band."""

MIN_FS_RMS = 100.0
"""RMS meter: minimum sampling rate of the RMS values [Hz].

At 100 Hz (half-cycle RMS at 50 Hz) the Nyquist frequency (50 Hz) is above the block-3a
cut-off (35/42 Hz) and above the highest Table 1 frequency (33 1/3 Hz); the zero-stuffing
image of a 25 Hz fluctuation (at 75 Hz) is attenuated by the 35 Hz low-pass by 40 dB.
One-cycle RMS at 50 Hz would fold 20 Hz fluctuations onto 30 Hz and is rejected."""

RMS_INTERNAL_MIN_HZ = 1000.0
"""RMS meter: minimum internal (zero-stuffed) rate [Hz] at which blocks 3-4 run."""

FADE_S = 1.0
"""Raised-cosine fade-in of the demodulated fluctuation at the record start [s]."""

_PST_WEIGHTS = (0.0314, 0.0525, 0.0657, 0.28, 0.08)

N_BAND_SECTIONS = 6
"""Second-order sections of blocks 3a+3b: high-pass 1, Butterworth low-pass 3, weighting 2."""


# --------------------------------------------------------------------------- filter design


def _check_lamp(lamp: str) -> dict[str, float]:
    if lamp not in LAMP_CONSTANTS:
        raise ValueError(f"lamp: unknown lamp {lamp!r}, expected one of {sorted(LAMP_CONSTANTS)}")
    return LAMP_CONSTANTS[lamp]


def _check_f_nominal(f_nominal: float) -> float:
    f = float(f_nominal)
    if f not in LOWPASS_HZ:
        raise ValueError(f"f_nominal: must be 50.0 or 60.0 Hz, got {f_nominal!r}")
    return f


def _zpk_to_sos(z, p, k) -> np.ndarray:
    return signal.zpk2sos(np.asarray(z, complex), np.asarray(p, complex), k)


def _analog_blocks(f_nominal: float, lamp: str):
    """Analog (z, p, k) prototypes of blocks 3a (high-pass, low-pass), 3b and 4 [rad/s]."""
    c = _check_lamp(lamp)
    wh = 2.0 * math.pi * HIGHPASS_HZ
    hp = ([0.0], [-wh], 1.0)
    lp = signal.butter(6, 2.0 * math.pi * LOWPASS_HZ[f_nominal], analog=True, output="zpk")
    # F(s) = k w1 w3 w4 / w2 * s (s + w2) / ((s^2 + 2 lam s + w1^2)(s + w3)(s + w4))
    lam, w1 = c["lam"], c["w1"]
    pr = np.roots([1.0, 2.0 * lam, w1 * w1])
    wf = ([0.0, -c["w2"]], [pr[0], pr[1], -c["w3"], -c["w4"]], c["k"] * w1 * c["w3"] * c["w4"] / c["w2"])
    sm = ([], [-1.0 / SMOOTHING_TAU_S], 1.0 / SMOOTHING_TAU_S)
    return hp, lp, wf, sm


def _design(fs: float, f_nominal: float, lamp: str) -> tuple[np.ndarray, np.ndarray]:
    """Digital SOS of blocks 3a+3b (``sos_band``, 6 sections) and block-4 smoothing (1 section)."""
    hp, lp, wf, sm = _analog_blocks(f_nominal, lamp)
    sos = []
    for z, p, k in (hp, lp, wf):
        zd, pd, kd = signal.bilinear_zpk(z, p, k, fs)
        sos.append(_zpk_to_sos(zd, pd, kd))
    zd, pd, kd = signal.bilinear_zpk(*sm, fs)
    sos_band = np.ascontiguousarray(np.vstack(sos))
    sos_smooth = np.ascontiguousarray(_zpk_to_sos(zd, pd, kd))
    assert sos_band.shape == (N_BAND_SECTIONS, 6) and sos_smooth.shape == (1, 6)
    return sos_band, sos_smooth


def _sos_response(sos: np.ndarray, f_hz: float, fs: float) -> complex:
    _, h = signal.sosfreqz(sos, worN=[f_hz], fs=fs)
    return complex(h[0])


def calibration_gain(fs: float, *, f_nominal: float = 50.0) -> float:
    """Block-4 gain for which the Table 1 reference point gives ``max(Pinst) = 1``.

    The reference is 0.250 % peak-to-peak sinusoidal modulation at 8.8 Hz with the 230 V lamp
    (see the module docstring for the derivation). The gain applies to both lamps.

    Parameters
    ----------
    fs : float
        Rate [Hz] at which blocks 3 and 4 run (the waveform sampling rate, or the internal
        rate of the RMS meter).
    f_nominal : float
        Nominal system frequency [Hz], 50 or 60 (selects the 35/42 Hz low-pass).

    Returns
    -------
    float
        Gain [-] multiplying the smoothed square of the block-3 output, whose input is
        ``u^2 / U_ref^2 - 1``.
    """
    f_nominal = _check_f_nominal(f_nominal)
    fs = _check_positive(fs, "fs")
    sos_band, sos_smooth = _design(fs, f_nominal, "230V")
    a = REFERENCE_DVV_PERCENT / 100.0 / 2.0
    amp = 2.0 * a * abs(_sos_response(sos_band, REFERENCE_FREQ_HZ, fs))
    ripple = abs(_sos_response(sos_smooth, 2.0 * REFERENCE_FREQ_HZ, fs))
    return 2.0 / (amp * amp * (1.0 + ripple))


# --------------------------------------------------------------------------- kernels


# The kernels keep every state in a local scalar (direct form II transposed) so that the
# per-sample recursion stays in registers; a generic loop over an (n_sections, 2) state
# array measured about 2x slower.


@njit
def _biquad(x, z0, z1, c):
    """One DF-II-T second-order section; ``c = (b0, b1, b2, a1, a2)``. Returns (y, z0, z1)."""
    y = c[0] * x + z0
    return y, c[1] * x - c[3] * y + z1, c[2] * x - c[4] * y


@njit
def _coeffs(sos, s):
    return (sos[s, 0], sos[s, 1], sos[s, 2], sos[s, 4], sos[s, 5])


@njit
def _waveform_kernel(u, n_half, alpha, ref2_0, n_fade, sos_band, sos_smooth, gain):
    """Blocks 1-4 on waveform samples ``u`` (n_channels, n_samples) -> Pinst (same shape)."""
    n_ch, n = u.shape
    out = np.empty((n_ch, n))
    c0 = _coeffs(sos_band, 0)
    c1 = _coeffs(sos_band, 1)
    c2 = _coeffs(sos_band, 2)
    c3 = _coeffs(sos_band, 3)
    c4 = _coeffs(sos_band, 4)
    c5 = _coeffs(sos_band, 5)
    cs = _coeffs(sos_smooth, 0)
    for c in range(n_ch):
        a0 = a1 = b0 = b1 = d0 = d1 = e0 = e1 = f0 = f1 = g0 = g1 = s0 = s1 = 0.0
        ref2 = ref2_0[c]
        inv = 1.0 / ref2
        acc = 0.0
        cnt = 0
        for i in range(n):
            v = u[c, i]
            v2 = v * v
            x = v2 * inv - 1.0  # blocks 1 + 2
            acc += v2
            cnt += 1
            if cnt == n_half:  # half-period mean square -> slow reference
                ref2 += alpha * (acc / n_half - ref2)
                inv = 1.0 / ref2
                acc = 0.0
                cnt = 0
            if i < n_fade:
                x *= 0.5 * (1.0 - math.cos(math.pi * i / n_fade))
            x, a0, a1 = _biquad(x, a0, a1, c0)  # block 3a high-pass
            x, b0, b1 = _biquad(x, b0, b1, c1)  # block 3a low-pass (3 sections)
            x, d0, d1 = _biquad(x, d0, d1, c2)
            x, e0, e1 = _biquad(x, e0, e1, c3)
            x, f0, f1 = _biquad(x, f0, f1, c4)  # block 3b weighting (2 sections)
            x, g0, g1 = _biquad(x, g0, g1, c5)
            x, s0, s1 = _biquad(x * x, s0, s1, cs)  # block 4
            out[c, i] = gain * x
    return out


@njit
def _rms_kernel(rms, r_up, alpha, ref2_0, c_fir, n_fade, sos_band, sos_smooth, gain):
    """Blocks 1 and 3-4 on RMS values (n_channels, n) -> Pinst at the RMS rate (same shape).

    Each RMS sample is zero-stuffed ``r_up`` times (value ``r_up * x`` then zeros); the
    block-3a low-pass interpolates. ``c_fir`` > 0 applies the window-droop compensation
    ``[-c, 1 + 2c, -c]`` (one sample of delay).
    """
    n_ch, n = rms.shape
    out = np.empty((n_ch, n))
    c0 = _coeffs(sos_band, 0)
    c1 = _coeffs(sos_band, 1)
    c2 = _coeffs(sos_band, 2)
    c3 = _coeffs(sos_band, 3)
    c4 = _coeffs(sos_band, 4)
    c5 = _coeffs(sos_band, 5)
    cs = _coeffs(sos_smooth, 0)
    for c in range(n_ch):
        a0 = a1 = b0 = b1 = d0 = d1 = e0 = e1 = f0 = f1 = g0 = g1 = s0 = s1 = 0.0
        ref2 = ref2_0[c]
        w1 = 1.0
        w2 = 1.0
        for i in range(n):
            v = rms[c, i]
            v2 = v * v
            w = v2 / ref2
            ref2 += alpha * (v2 - ref2)
            if c_fir > 0.0:
                x = (1.0 + 2.0 * c_fir) * w1 - c_fir * (w2 + w) - 1.0
                w2 = w1
                w1 = w
            else:
                x = w - 1.0
            if i < n_fade:
                x *= 0.5 * (1.0 - math.cos(math.pi * i / n_fade))
            xin = r_up * x
            p = 0.0
            for j in range(r_up):
                x = xin if j == 0 else 0.0
                x, a0, a1 = _biquad(x, a0, a1, c0)
                x, b0, b1 = _biquad(x, b0, b1, c1)
                x, d0, d1 = _biquad(x, d0, d1, c2)
                x, e0, e1 = _biquad(x, e0, e1, c3)
                x, f0, f1 = _biquad(x, f0, f1, c4)
                x, g0, g1 = _biquad(x, g0, g1, c5)
                p, s0, s1 = _biquad(x * x, s0, s1, cs)
            out[c, i] = gain * p
    return out


@njit
def _pst_analytic_kernel(d_max, n_changes, shape, t_p_s, coeff, expo):
    n = d_max.shape[0]
    out = np.empty(n)
    for i in range(n):
        fd = shape[i] * d_max[i]
        if fd < 0.0:
            fd = -fd
        t_f = coeff * fd**expo
        out[i] = (n_changes[i] * t_f / t_p_s) ** (1.0 / expo)
    return out


# --------------------------------------------------------------------------- helpers


def _as_channels(values: npt.ArrayLike, name: str) -> tuple[np.ndarray, bool]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name}: expected shape (n_samples,) or (n_channels, n_samples), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values (NaN or inf)")
    squeeze = arr.ndim == 1
    return np.ascontiguousarray(np.atleast_2d(arr)), squeeze


def _check_positive(value: float, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name}: must be a positive finite number, got {value!r}")
    return v


def _initial_ref2(x: np.ndarray, n_init: int, name: str) -> np.ndarray:
    ref2 = np.mean(x[:, :n_init] ** 2, axis=1)
    if np.any(ref2 <= 0.0):
        raise ValueError(f"{name}: zero voltage during the first second, no reference level")
    return ref2


# --------------------------------------------------------------------------- meters


def flickermeter(
    samples: npt.ArrayLike,
    fs: float,
    *,
    f_nominal: float = 50.0,
    lamp: str = "230V",
    adaptor_tau_s: float = 60.0,
) -> np.ndarray:
    """Instantaneous flicker sensation Pinst from voltage waveform samples (blocks 1-4).

    Parameters
    ----------
    samples : array_like of float
        Instantaneous voltage [V] (any unit: the adaptor normalises), shape ``(n_samples,)``
        or ``(n_channels, n_samples)``, free of DC offset, at least 1 s long.
    fs : float
        Sampling rate [Hz], at least ``MIN_SAMPLES_PER_CYCLE * f_nominal``.
    f_nominal : float
        Nominal system frequency [Hz], 50 or 60.
    lamp : {"230V", "120V"}
        Weighting-filter lamp.
    adaptor_tau_s : float
        Time constant of the block-1 reference [s] (default 60 s, [R]).

    Returns
    -------
    ndarray of float64
        Pinst [-] at rate ``fs``, same shape as ``samples``.
    """
    f_nominal = _check_f_nominal(f_nominal)
    _check_lamp(lamp)
    fs = _check_positive(fs, "fs")
    if fs < MIN_SAMPLES_PER_CYCLE * f_nominal:
        raise ValueError(
            f"fs: {fs:g} Hz is too low for the {LOWPASS_HZ[f_nominal]:g} Hz path; need at least "
            f"{MIN_SAMPLES_PER_CYCLE * f_nominal:g} Hz ({MIN_SAMPLES_PER_CYCLE} samples per cycle)"
        )
    tau = _check_positive(adaptor_tau_s, "adaptor_tau_s")
    u, squeeze = _as_channels(samples, "samples")
    n_init = int(round(fs))
    if u.shape[1] < n_init:
        raise ValueError(f"samples: need at least 1 s of data ({n_init} samples), got {u.shape[1]}")
    n_half = max(1, int(round(fs / (2.0 * f_nominal))))
    n_init = n_half * (n_init // n_half)
    alpha = 1.0 - math.exp(-n_half / fs / tau)
    sos_band, sos_smooth = _design(fs, f_nominal, lamp)
    gain = calibration_gain(fs, f_nominal=f_nominal)
    out = _waveform_kernel(
        u,
        n_half,
        alpha,
        _initial_ref2(u, n_init, "samples"),
        int(round(FADE_S * fs)),
        sos_band,
        sos_smooth,
        gain,
    )
    return out[0] if squeeze else out


def _rms_setup(fs_rms: float, window_s: float, f_nominal: float) -> tuple[int, float]:
    """Zero-stuffing factor and window-droop FIR coefficient ``c`` of the RMS meter."""
    if fs_rms < MIN_FS_RMS:
        raise ValueError(
            f"fs_rms: {fs_rms:g} Hz is below the minimum {MIN_FS_RMS:g} Hz of the RMS meter "
            "(fluctuations up to 35 Hz must be representable; use half-cycle RMS)"
        )
    w = float(window_s)
    half = 0.5 / f_nominal
    c_fir = 0.0
    if not math.isfinite(w) or not (w == 0.0 or abs(w - half) <= 1e-9):
        raise ValueError(f"window_s: must be 0 (point values) or one half-cycle ({half:g} s), got {window_s!r}")
    if w > 0.0:
        # The mean of u^2 over a half-cycle that starts at a zero crossing weights the envelope
        # with 1 - cos(2 pi t / T): time variance T^2 (1/12 - 1/(2 pi^2)). The FIR
        # [-c, 1 + 2c, -c] cancels the resulting droop 1 - (2 pi f)^2 var / 2 to second order.
        var = w * w * (1.0 / 12.0 - 1.0 / (2.0 * math.pi**2))
        c_fir = 0.5 * fs_rms * fs_rms * var
    r_up = max(1, math.ceil(RMS_INTERNAL_MIN_HZ / fs_rms - 1e-9))
    return r_up, c_fir


def flickermeter_rms(
    rms_values: npt.ArrayLike,
    fs_rms: float,
    *,
    f_nominal: float = 50.0,
    lamp: str = "230V",
    window_s: float = 0.0,
    adaptor_tau_s: float = 60.0,
) -> np.ndarray:
    """Pinst from an RMS voltage series (blocks 1, 3, 4 of the meter on the RMS envelope).

    Parameters
    ----------
    rms_values : array_like of float
        RMS voltage [V] (any unit), shape ``(n,)`` or ``(n_channels, n)``, at least 1 s long.
    fs_rms : float
        Rate of the RMS values [Hz], at least :data:`MIN_FS_RMS` (100 Hz).
    f_nominal : float
        Nominal system frequency [Hz], 50 or 60 (selects the 35/42 Hz low-pass).
    lamp : {"230V", "120V"}
        Weighting-filter lamp.
    window_s : float
        Averaging window of each RMS value [s]: 0 for point values of the envelope (e.g.
        load-flow time steps), or one half-cycle (0.01 s at 50 Hz) for half-cycle RMS that
        starts at zero crossings; its droop is compensated (module docstring).
    adaptor_tau_s : float
        Time constant of the block-1 reference [s].

    Returns
    -------
    ndarray of float64
        Pinst [-] at rate ``fs_rms``, same shape as ``rms_values``.
    """
    f_nominal = _check_f_nominal(f_nominal)
    _check_lamp(lamp)
    fs_rms = _check_positive(fs_rms, "fs_rms")
    r_up, c_fir = _rms_setup(fs_rms, window_s, f_nominal)
    tau = _check_positive(adaptor_tau_s, "adaptor_tau_s")
    v, squeeze = _as_channels(rms_values, "rms_values")
    n_init = int(round(fs_rms))
    if v.shape[1] < n_init:
        raise ValueError(f"rms_values: need at least 1 s of data ({n_init} values), got {v.shape[1]}")
    fs_int = r_up * fs_rms
    sos_band, sos_smooth = _design(fs_int, f_nominal, lamp)
    gain = calibration_gain(fs_int, f_nominal=f_nominal)
    alpha = 1.0 - math.exp(-1.0 / fs_rms / tau)
    out = _rms_kernel(
        v,
        r_up,
        alpha,
        _initial_ref2(v, n_init, "rms_values"),
        c_fir,
        int(round(FADE_S * fs_rms)),
        sos_band,
        sos_smooth,
        gain,
    )
    return out[0] if squeeze else out


# --------------------------------------------------------------------------- block 5


@dataclass(frozen=True)
class FlickerResult:
    """Result of :func:`pst` / :func:`pst_rms`.

    Attributes
    ----------
    pst : ndarray
        Pst [-] per complete 10-minute interval, shape ``(n_intervals,)`` or
        ``(n_channels, n_intervals)``.
    percentiles : ndarray
        Exceedance levels ``P_x`` [-] for ``x`` in :data:`PST_PERCENTILES`, shape
        ``pst.shape + (15,)``.
    interval_start_s : ndarray
        Start of each interval relative to the record start [s], shape ``(n_intervals,)``.
    pinst : ndarray
        The full Pinst series [-] (including the settling part), shape of the input.
    fs_pinst : float
        Rate of ``pinst`` [Hz].
    """

    pst: np.ndarray
    percentiles: np.ndarray
    interval_start_s: np.ndarray
    pinst: np.ndarray
    fs_pinst: float


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
def _order_statistics(rows, ranks):
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


def _exceedance_levels(blocks: np.ndarray) -> np.ndarray:
    """``P_x`` for :data:`PST_PERCENTILES` along the last axis (quantile ``1 - x/100``).

    Equal to ``np.quantile(..., method="linear")`` (tested), computed from exact order
    statistics by :func:`_order_statistics`.
    """
    n = blocks.shape[-1]
    h = (n - 1) * (1.0 - np.asarray(PST_PERCENTILES) / 100.0)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    ranks = np.unique(np.concatenate([lo, hi]))
    rows = np.ascontiguousarray(blocks.reshape(-1, n))
    stats, flagged = _order_statistics(rows, ranks)
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
    fs_pinst = _check_positive(fs_pinst, "fs_pinst")
    settle = _check_settle(settle_s)
    p, squeeze = _as_channels(pinst, "pinst")
    pst_v, perc, starts = _block5(p, fs_pinst, settle, "pinst")
    if squeeze:
        return pst_v[0], perc[0], starts
    return pst_v, perc, starts


def _check_settle(settle_s: float) -> float:
    settle = float(settle_s)
    if not math.isfinite(settle) or settle < 0.0:
        raise ValueError(f"settle_s: must be >= 0 [s], got {settle_s!r}")
    return settle


def _block5(p: np.ndarray, fs: float, settle: float, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    perc = _exceedance_levels(blocks)  # (n_ch, n_int, 15)
    lv = dict(zip(PST_PERCENTILES, np.moveaxis(perc, -1, 0), strict=True))
    p1s = (lv[0.7] + lv[1.0] + lv[1.5]) / 3.0
    p3s = (lv[2.2] + lv[3.0] + lv[4.0]) / 3.0
    p10s = (lv[6.0] + lv[8.0] + lv[10.0] + lv[13.0] + lv[17.0]) / 5.0
    p50s = (lv[30.0] + lv[50.0] + lv[80.0]) / 3.0
    k = _PST_WEIGHTS
    pst_v = np.sqrt(k[0] * lv[0.1] + k[1] * p1s + k[2] * p3s + k[3] * p10s + k[4] * p50s)
    starts = (i0 + n_per * np.arange(n_int)) / fs
    return pst_v, perc, starts


def _result(pinst: np.ndarray, fs_pinst: float, settle: float, name: str) -> FlickerResult:
    p = np.atleast_2d(pinst)
    pst_v, perc, starts = _block5(p, fs_pinst, settle, name)
    if pinst.ndim == 1:
        pst_v, perc = pst_v[0], perc[0]
    return FlickerResult(pst=pst_v, percentiles=perc, interval_start_s=starts, pinst=pinst, fs_pinst=fs_pinst)


def pst(
    samples: npt.ArrayLike,
    fs: float,
    *,
    f_nominal: float = 50.0,
    lamp: str = "230V",
    settle_s: float = 0.0,
    adaptor_tau_s: float = 60.0,
) -> FlickerResult:
    """Short-term flicker severity from voltage waveform samples (full IEC 61000-4-15 meter).

    Parameters
    ----------
    samples : array_like of float
        Instantaneous voltage [V], shape ``(n_samples,)`` or ``(n_channels, n_samples)``;
        must hold ``settle_s`` + at least one 600 s interval.
    fs : float
        Sampling rate [Hz] (>= 20 samples per nominal cycle).
    f_nominal : float
        Nominal system frequency [Hz], 50 or 60.
    lamp : {"230V", "120V"}
        Weighting-filter lamp.
    settle_s : float
        Initial part excluded from the statistics [s] (see "Start-up and settling" in the
        module docstring; 120 s reproduces the standard's test procedure).
    adaptor_tau_s : float
        Time constant of the block-1 reference [s].

    Returns
    -------
    FlickerResult
        Pst per complete 10-minute interval, percentiles, and the Pinst series at ``fs``.
    """
    settle = _check_settle(settle_s)
    pinst = flickermeter(samples, fs, f_nominal=f_nominal, lamp=lamp, adaptor_tau_s=adaptor_tau_s)
    return _result(pinst, float(fs), settle, "samples")


def pst_rms(
    rms_values: npt.ArrayLike,
    fs_rms: float,
    *,
    f_nominal: float = 50.0,
    lamp: str = "230V",
    window_s: float = 0.0,
    settle_s: float = 0.0,
    adaptor_tau_s: float = 60.0,
) -> FlickerResult:
    """Short-term flicker severity from an RMS voltage series (see :func:`flickermeter_rms`).

    Parameters
    ----------
    rms_values : array_like of float
        RMS voltage [V], shape ``(n,)`` or ``(n_channels, n)``.
    fs_rms : float
        Rate of the RMS values [Hz], >= :data:`MIN_FS_RMS`.
    f_nominal : float
        Nominal system frequency [Hz], 50 or 60.
    lamp : {"230V", "120V"}
        Weighting-filter lamp.
    window_s : float
        Averaging window of each RMS value [s]: 0 (point values) or one half-cycle.
    settle_s : float
        Initial part excluded from the statistics [s].
    adaptor_tau_s : float
        Time constant of the block-1 reference [s].

    Returns
    -------
    FlickerResult
        Pst per complete 10-minute interval, percentiles, and Pinst at ``fs_rms``.
    """
    settle = _check_settle(settle_s)
    pinst = flickermeter_rms(
        rms_values, fs_rms, f_nominal=f_nominal, lamp=lamp, window_s=window_s, adaptor_tau_s=adaptor_tau_s
    )
    return _result(pinst, float(fs_rms), settle, "rms_values")


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


# --------------------------------------------------------------------------- analytic method


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
    t_p = _check_positive(t_p_s, "t_p_s")
    coeff = _check_positive(t_f_coeff, "t_f_coeff")
    expo = _check_positive(t_f_exponent, "t_f_exponent")
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
