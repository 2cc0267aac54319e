"""Flickermeter throughput as multiples of real time, against a scipy baseline in the same run.

Run with ``pytest benchmarks/ --benchmark-only``. No absolute timings are asserted: each
benchmark records in ``extra_info``

* ``realtime_multiple``: seconds of 3-phase signal processed per second of wall time
  (numba meter, best round),
* ``baseline_realtime_multiple``: the same for a straightforward vectorised implementation
  of the identical chain (``scipy.signal.lfilter``/``sosfilt`` + ``np.percentile``), timed in
  the same process,
* ``speedup_vs_baseline``: baseline time / numba time,

and asserts only that both implementations give the same Pst.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import signal

from powercheck.quality import flickermeter as fl
from powercheck.quality.flicker import pst_analytic
from powercheck.quality.flicker_filters import design_filters

FS = 2000.0
F0 = 50.0
FS_RMS = 100.0
DURATION_S = 600.0
ROUNDS = 3


def _three_phase_record() -> np.ndarray:
    """10 minutes of 3-phase voltage [V] at 2000 Hz with different fluctuations per phase."""
    t = np.arange(int(DURATION_S * FS)) / FS
    mods = (
        0.894 / 200.0 * np.where(np.sin(2 * np.pi * 39 / 120 * (t - 2.0)) >= 0, 1.0, -1.0),  # Table 5, 39 cpm
        0.250 / 200.0 * np.sin(2 * np.pi * 8.8 * t),  # Table 1 reference
        0.0 * t,
    )
    return np.array(
        [230 * math.sqrt(2) * np.sin(2 * np.pi * F0 * t - k * 2 * np.pi / 3) * (1 + m) for k, m in enumerate(mods)]
    )


@pytest.fixture(scope="module")
def record() -> np.ndarray:
    return _three_phase_record()


@pytest.fixture(scope="module")
def rms_record(record) -> np.ndarray:
    nh = int(FS / (2 * F0))
    return np.sqrt((record**2).reshape(3, -1, nh).mean(axis=-1))


def _stats_from_pinst(p: np.ndarray, fs: float) -> np.ndarray:
    n = int(DURATION_S * fs)
    lv = dict(
        zip(fl.PST_PERCENTILES, np.percentile(p[:, :n], 100.0 - np.array(fl.PST_PERCENTILES), axis=1), strict=True)
    )
    p1s = (lv[0.7] + lv[1.0] + lv[1.5]) / 3
    p3s = (lv[2.2] + lv[3.0] + lv[4.0]) / 3
    p10s = (lv[6.0] + lv[8.0] + lv[10.0] + lv[13.0] + lv[17.0]) / 5
    p50s = (lv[30.0] + lv[50.0] + lv[80.0]) / 3
    return np.sqrt(0.0314 * lv[0.1] + 0.0525 * p1s + 0.0657 * p3s + 0.28 * p10s + 0.08 * p50s)


def _fade(x: np.ndarray, fs: float) -> None:
    n = int(round(fl.FADE_S * fs))
    x[:, :n] *= 0.5 * (1.0 - np.cos(np.pi * np.arange(n) / n))


def scipy_pst(u: np.ndarray, fs: float) -> np.ndarray:
    """Baseline: the same blocks 1-5 written with numpy/scipy vector operations."""
    sos_band, sos_smooth = design_filters(fs, F0, "230V")
    n_half = int(round(fs / (2 * F0)))
    n_ch, n = u.shape
    u2 = u * u
    ms = u2[:, : n // n_half * n_half].reshape(n_ch, -1, n_half).mean(axis=-1)
    ref0 = u2[:, : int(fs) // n_half * n_half].mean(axis=1)
    alpha = 1.0 - math.exp(-n_half / fs / 60.0)
    ref, _ = signal.lfilter([alpha], [1.0, alpha - 1.0], ms, axis=1, zi=(1.0 - alpha) * ref0[:, None])
    ref = np.repeat(np.concatenate([ref0[:, None], ref[:, :-1]], axis=1), n_half, axis=1)
    x = u2[:, : ref.shape[1]] / ref - 1.0
    _fade(x, fs)
    y = signal.sosfilt(sos_band, x, axis=1)
    p = fl.calibration_gain(fs) * signal.sosfilt(sos_smooth, y * y, axis=1)
    return _stats_from_pinst(p, fs)


def scipy_pst_rms(v: np.ndarray, fs_rms: float) -> np.ndarray:
    """Baseline RMS meter: zero-stuffing + sosfilt at the internal rate + np.percentile."""
    r_up, _ = fl.rms_setup(fs_rms, 0.0, F0)
    fs_int = r_up * fs_rms
    sos_band, sos_smooth = design_filters(fs_int, F0, "230V")
    v2 = v * v
    ref0 = v2[:, : int(fs_rms)].mean(axis=1)
    alpha = 1.0 - math.exp(-1.0 / fs_rms / 60.0)
    ref, _ = signal.lfilter([alpha], [1.0, alpha - 1.0], v2, axis=1, zi=(1.0 - alpha) * ref0[:, None])
    ref = np.concatenate([ref0[:, None], ref[:, :-1]], axis=1)
    x = v2 / ref - 1.0
    _fade(x, fs_rms)
    up = np.zeros((v.shape[0], v.shape[1] * r_up))
    up[:, ::r_up] = r_up * x
    y = signal.sosfilt(sos_band, up, axis=1)
    p = fl.calibration_gain(fs_int) * signal.sosfilt(sos_smooth, y * y, axis=1)
    return _stats_from_pinst(p[:, r_up - 1 :: r_up], fs_rms)


def _best_of(fn, *args, rounds=ROUNDS) -> float:
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def _record(benchmark, t_base: float, n_ch: int) -> None:
    t_fast = benchmark.stats.stats.min
    benchmark.extra_info["signal_s_per_channel"] = DURATION_S
    benchmark.extra_info["channels"] = n_ch
    benchmark.extra_info["realtime_multiple"] = round(DURATION_S / t_fast, 1)
    benchmark.extra_info["baseline_realtime_multiple"] = round(DURATION_S / t_base, 1)
    benchmark.extra_info["speedup_vs_baseline"] = round(t_base / t_fast, 2)


def test_bench_pst_waveform_3phase(benchmark, record):
    res = benchmark.pedantic(fl.pst, args=(record, FS), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    np.testing.assert_allclose(res.pst[:, 0], scipy_pst(record, FS), rtol=1e-6, atol=1e-6)
    _record(benchmark, _best_of(scipy_pst, record, FS), 3)


def test_bench_pst_rms_3phase(benchmark, rms_record):
    res = benchmark.pedantic(fl.pst_rms, args=(rms_record, FS_RMS), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    np.testing.assert_allclose(res.pst[:, 0], scipy_pst_rms(rms_record, FS_RMS), rtol=1e-6, atol=1e-6)
    _record(benchmark, _best_of(scipy_pst_rms, rms_record, FS_RMS), 3)


def test_bench_pst_analytic_1e6_notifications(benchmark):
    rng = np.random.default_rng(0)
    d = rng.uniform(0.1, 5.0, 1_000_000)
    n = rng.uniform(0.0, 500.0, 1_000_000)
    f = rng.uniform(0.3, 1.0, 1_000_000)

    def numpy_baseline():
        return (n * 2.3 * (f * d) ** 3.2 / 600.0) ** (1.0 / 3.2)

    got = benchmark.pedantic(pst_analytic, args=(d, n, f), rounds=5, iterations=1, warmup_rounds=1)
    np.testing.assert_allclose(got, numpy_baseline(), rtol=1e-12)
    t_base = _best_of(numpy_baseline, rounds=3)
    benchmark.extra_info["notifications"] = d.size
    benchmark.extra_info["notifications_per_s"] = round(d.size / benchmark.stats.stats.min)
    benchmark.extra_info["speedup_vs_baseline"] = round(t_base / benchmark.stats.stats.min, 2)
