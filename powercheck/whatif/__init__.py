"""What-if studies of EV and solar uptake on LV feeders (Monte Carlo, batched per-phase power flow)."""

from __future__ import annotations


def parse_shares(text: str, name: str = "share") -> tuple[float, ...]:
    """``"0:1:0.1"`` (start:stop:step, stop included), ``"0,0.5,1"`` or ``"0.3"`` -> shares."""
    text = text.strip()
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            n = int(round((stop - start) / step))
            values = [round(start + i * step, 10) for i in range(n + 1)]
            if abs(values[-1] - stop) > 1e-9:
                raise ValueError
        else:
            values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(
            f"{name}: expected start:stop:step with stop a multiple of step, a list a,b,c or a number; got {text!r}"
        ) from None
    if any(not (0.0 <= v <= 1.0) for v in values):
        raise ValueError(f"{name}: shares must be between 0 and 1, got {text!r}")
    return tuple(values)
