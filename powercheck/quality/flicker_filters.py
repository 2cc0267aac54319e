"""IEC 61000-4-15 flickermeter, blocks 3 and 4: filter design and calibration gain.

Block 3a is a first-order Butterworth high-pass at 0.05 Hz and a sixth-order Butterworth
low-pass at 35 Hz (50 Hz systems) or 42 Hz (60 Hz systems); block 3b the lamp-eye
weighting filter (:data:`LAMP_CONSTANTS`); block 4 a first-order low-pass with time
constant 300 ms and the calibration gain. The sample loops that run these filters are in
:mod:`powercheck.quality.flickermeter`.

All analog prototypes are discretised with the bilinear transform (scipy, at set-up) into
second-order sections (:func:`design_filters`).

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
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from powercheck.quality.flicker_statistics import check_positive

__all__ = [
    "HIGHPASS_HZ",
    "LAMP_CONSTANTS",
    "LOWPASS_HZ",
    "N_BAND_SECTIONS",
    "REFERENCE_DVV_PERCENT",
    "REFERENCE_FREQ_HZ",
    "SMOOTHING_TAU_S",
    "analog_blocks",
    "calibration_gain",
    "check_f_nominal",
    "check_lamp",
    "design_filters",
    "sos_response",
]

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

N_BAND_SECTIONS = 6
"""Second-order sections of blocks 3a+3b: high-pass 1, Butterworth low-pass 3, weighting 2."""


# --------------------------------------------------------------------------- filter design


def check_lamp(lamp: str) -> dict[str, float]:
    if lamp not in LAMP_CONSTANTS:
        raise ValueError(f"lamp: unknown lamp {lamp!r}, expected one of {sorted(LAMP_CONSTANTS)}")
    return LAMP_CONSTANTS[lamp]


def check_f_nominal(f_nominal: float) -> float:
    f = float(f_nominal)
    if f not in LOWPASS_HZ:
        raise ValueError(f"f_nominal: must be 50.0 or 60.0 Hz, got {f_nominal!r}")
    return f


def zpk_to_sos(z, p, k) -> np.ndarray:
    return signal.zpk2sos(np.asarray(z, complex), np.asarray(p, complex), k)


def analog_blocks(f_nominal: float, lamp: str):
    """Analog (z, p, k) prototypes of blocks 3a (high-pass, low-pass), 3b and 4 [rad/s]."""
    c = check_lamp(lamp)
    wh = 2.0 * math.pi * HIGHPASS_HZ
    hp = ([0.0], [-wh], 1.0)
    lp = signal.butter(6, 2.0 * math.pi * LOWPASS_HZ[f_nominal], analog=True, output="zpk")
    # F(s) = k w1 w3 w4 / w2 * s (s + w2) / ((s^2 + 2 lam s + w1^2)(s + w3)(s + w4))
    lam, w1 = c["lam"], c["w1"]
    pr = np.roots([1.0, 2.0 * lam, w1 * w1])
    wf = ([0.0, -c["w2"]], [pr[0], pr[1], -c["w3"], -c["w4"]], c["k"] * w1 * c["w3"] * c["w4"] / c["w2"])
    sm = ([], [-1.0 / SMOOTHING_TAU_S], 1.0 / SMOOTHING_TAU_S)
    return hp, lp, wf, sm


def design_filters(fs: float, f_nominal: float, lamp: str) -> tuple[np.ndarray, np.ndarray]:
    """Digital SOS of blocks 3a+3b (``sos_band``, 6 sections) and block-4 smoothing (1 section)."""
    hp, lp, wf, sm = analog_blocks(f_nominal, lamp)
    sos = []
    for z, p, k in (hp, lp, wf):
        zd, pd, kd = signal.bilinear_zpk(z, p, k, fs)
        sos.append(zpk_to_sos(zd, pd, kd))
    zd, pd, kd = signal.bilinear_zpk(*sm, fs)
    sos_band = np.ascontiguousarray(np.vstack(sos))
    sos_smooth = np.ascontiguousarray(zpk_to_sos(zd, pd, kd))
    assert sos_band.shape == (N_BAND_SECTIONS, 6) and sos_smooth.shape == (1, 6)
    return sos_band, sos_smooth


def sos_response(sos: np.ndarray, f_hz: float, fs: float) -> complex:
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
    f_nominal = check_f_nominal(f_nominal)
    fs = check_positive(fs, "fs")
    sos_band, sos_smooth = design_filters(fs, f_nominal, "230V")
    a = REFERENCE_DVV_PERCENT / 100.0 / 2.0
    amp = 2.0 * a * abs(sos_response(sos_band, REFERENCE_FREQ_HZ, fs))
    ripple = abs(sos_response(sos_smooth, 2.0 * REFERENCE_FREQ_HZ, fs))
    return 2.0 / (amp * amp * (1.0 + ripple))
