"""Pure numeric power-quality kernels (arrays in, arrays out, numba).

Nothing in this package does I/O, touches pandapower or knows about the
pydantic models: callers convert to numpy arrays first.

:mod:`~powercheck.quality.impedance`, :mod:`~powercheck.quality.voltage`,
:mod:`~powercheck.quality.unbalance`, :mod:`~powercheck.quality.thermal`,
:mod:`~powercheck.quality.harmonics`
    The connection checks' kernels (loop impedance and fault current, voltage change,
    unbalance, path headroom, harmonic voltages).
:mod:`~powercheck.quality.flicker`
    Pst/Plt of voltage steps by the analytic method of IEC 61000-3-3.
:mod:`~powercheck.quality.flickermeter`
    The IEC 61000-4-15 flickermeter (waveform and RMS input), with its filter design in
    :mod:`~powercheck.quality.flicker_filters` and block 5 (Pst, Plt) in
    :mod:`~powercheck.quality.flicker_statistics`.
"""
