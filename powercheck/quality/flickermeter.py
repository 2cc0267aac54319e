"""IEC 61000-4-15 flickermeter: Pinst and Pst from voltage waveforms or RMS series.

The analytic method of IEC 61000-3-3 (Pst of voltage steps) is :mod:`powercheck.quality.flicker`;
block 5 (exceedance levels, Pst, Plt) is :mod:`powercheck.quality.flicker_statistics`.

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
    gain (:func:`calibration_gain`). The output is the instantaneous flicker sensation ``Pinst``.
Block 5, statistics
    Per complete 10-minute interval the exceedance levels and Pst
    (:mod:`powercheck.quality.flicker_statistics`: :func:`pst_from_pinst`, :func:`plt`).

Blocks 3 and 4 are designed in :mod:`powercheck.quality.flicker_filters` (bilinear
transform of the analog prototypes, calibration gain derived from the Table 1 reference
point). The sample loops here are numba kernels with explicit second-order-section (direct
form II transposed) state, one call for any number of channels.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from powercheck.jit import njit
from powercheck.quality.flicker_filters import (
    LAMP_CONSTANTS,
    LOWPASS_HZ,
    calibration_gain,
    check_f_nominal,
    check_lamp,
    design_filters,
)
from powercheck.quality.flicker_statistics import (
    PST_INTERVAL_S,
    PST_PERCENTILES,
    as_channels,
    block5,
    check_positive,
    check_settle,
    plt,
    pst_from_pinst,
)

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
    "pst",
    "pst_from_pinst",
    "pst_rms",
    "rms_setup",
]

# --------------------------------------------------------------------------- constants

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
    f_nominal = check_f_nominal(f_nominal)
    check_lamp(lamp)
    fs = check_positive(fs, "fs")
    if fs < MIN_SAMPLES_PER_CYCLE * f_nominal:
        raise ValueError(
            f"fs: {fs:g} Hz is too low for the {LOWPASS_HZ[f_nominal]:g} Hz path; need at least "
            f"{MIN_SAMPLES_PER_CYCLE * f_nominal:g} Hz ({MIN_SAMPLES_PER_CYCLE} samples per cycle)"
        )
    tau = check_positive(adaptor_tau_s, "adaptor_tau_s")
    u, squeeze = as_channels(samples, "samples")
    n_init = int(round(fs))
    if u.shape[1] < n_init:
        raise ValueError(f"samples: need at least 1 s of data ({n_init} samples), got {u.shape[1]}")
    n_half = max(1, int(round(fs / (2.0 * f_nominal))))
    n_init = n_half * (n_init // n_half)
    alpha = 1.0 - math.exp(-n_half / fs / tau)
    sos_band, sos_smooth = design_filters(fs, f_nominal, lamp)
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


def rms_setup(fs_rms: float, window_s: float, f_nominal: float) -> tuple[int, float]:
    """Zero-stuffing factor and window-droop FIR coefficient ``c`` of the RMS meter.

    Parameters
    ----------
    fs_rms : float
        Rate of the RMS values [Hz] (>= :data:`MIN_FS_RMS`).
    window_s : float
        Averaging window of each RMS value [s]: 0 or one half-cycle.
    f_nominal : float
        Nominal system frequency [Hz].

    Returns
    -------
    r_up : int
        Zero-stuffing factor: blocks 3-4 run at ``r_up * fs_rms >= 1000 Hz``.
    c_fir : float
        Coefficient of the droop-compensating FIR ``[-c, 1 + 2c, -c]`` [-] (0 for point values).
    """
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
    f_nominal = check_f_nominal(f_nominal)
    check_lamp(lamp)
    fs_rms = check_positive(fs_rms, "fs_rms")
    r_up, c_fir = rms_setup(fs_rms, window_s, f_nominal)
    tau = check_positive(adaptor_tau_s, "adaptor_tau_s")
    v, squeeze = as_channels(rms_values, "rms_values")
    n_init = int(round(fs_rms))
    if v.shape[1] < n_init:
        raise ValueError(f"rms_values: need at least 1 s of data ({n_init} values), got {v.shape[1]}")
    fs_int = r_up * fs_rms
    sos_band, sos_smooth = design_filters(fs_int, f_nominal, lamp)
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


# --------------------------------------------------------------------------- Pst


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


def _result(pinst: np.ndarray, fs_pinst: float, settle: float, name: str) -> FlickerResult:
    p = np.atleast_2d(pinst)
    pst_v, perc, starts = block5(p, fs_pinst, settle, name)
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
    settle = check_settle(settle_s)
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
    settle = check_settle(settle_s)
    pinst = flickermeter_rms(
        rms_values, fs_rms, f_nominal=f_nominal, lamp=lamp, window_s=window_s, adaptor_tau_s=adaptor_tau_s
    )
    return _result(pinst, float(fs_rms), settle, "rms_values")
