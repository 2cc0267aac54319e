"""Time steps and synthetic device profiles for what-if studies (pure numpy, seeded).

EV charging: one session per EV and day. Arrival time ~ N(``arrival_mean_h``,
``arrival_sd_h``) clipped to [14 h, 23.75 h]; energy ~ U(``energy_kwh``); the EV
charges at its rated power from arrival until the energy is delivered. A session that
runs past midnight continues at 00:00 of the *same* day (studies use selected days, not
consecutive ones; the energy per day is kept exact). These distributions are
assumptions of the study, reported in its metadata, not measured data.

PV: a normalised profile (peak 1) scaled by each system's kWp.
"""

from __future__ import annotations

import numpy as np

STEPS_PER_DAY = 96
STEP_H = 0.25


def select_days(
    load_total: np.ndarray, pv_norm: np.ndarray, days: int | str, steps_per_day: int = STEPS_PER_DAY
) -> np.ndarray:
    """Indices of the time steps to study.

    ``days="all"`` keeps every step. An integer ``n`` keeps ``ceil(n/2)`` days with the
    highest daily peak of the total load (stress for under-voltage and loading) and
    ``floor(n/2)`` days with the most PV energy (stress for over-voltage), in time order.

    Parameters
    ----------
    load_total : ndarray, shape (n_steps,)
        Total base load per step [MW].
    pv_norm : ndarray, shape (n_steps,)
        Normalised PV profile [-].
    days : int or "all"
        Number of days to keep.
    """
    n_steps = load_total.shape[0]
    if days == "all":
        return np.arange(n_steps)
    n_days_total = n_steps // steps_per_day
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"days: expected a positive number or 'all', got {days!r}")
    if days >= n_days_total:
        return np.arange(n_days_total * steps_per_day)
    peak = load_total[: n_days_total * steps_per_day].reshape(n_days_total, steps_per_day).max(axis=1)
    pv = pv_norm[: n_days_total * steps_per_day].reshape(n_days_total, steps_per_day).sum(axis=1)
    n_load = (days + 1) // 2
    chosen: list[int] = []
    for d in np.argsort(-peak, kind="stable"):
        if len(chosen) == n_load:
            break
        chosen.append(int(d))
    for d in np.argsort(-pv, kind="stable"):
        if len(chosen) == days:
            break
        if int(d) not in chosen:
            chosen.append(int(d))
    chosen.sort()
    return np.concatenate([np.arange(d * steps_per_day, (d + 1) * steps_per_day) for d in chosen])


def ev_profiles(
    rated_kw: np.ndarray,
    step_of_day: np.ndarray,
    day_id: np.ndarray,
    rng: np.random.Generator,
    *,
    arrival_mean_h: float = 18.0,
    arrival_sd_h: float = 2.0,
    energy_kwh: tuple[float, float] = (4.0, 16.0),
    steps_per_day: int = STEPS_PER_DAY,
) -> np.ndarray:
    """Charging power of every EV at every time step [kW], shape (n_steps, n_ev).

    Parameters
    ----------
    rated_kw : ndarray, shape (n_ev,)
        Charging power of each EV [kW].
    step_of_day : ndarray of int, shape (n_steps,)
        Position of each step within its day (0..steps_per_day-1).
    day_id : ndarray of int, shape (n_steps,)
        Day of each step (steps of one day share an id).
    rng : numpy Generator
        Source of the arrival times and energies.
    """
    step_h = 24.0 / steps_per_day
    days = np.unique(day_id)
    n_ev = rated_kw.shape[0]
    out = np.zeros((step_of_day.shape[0], n_ev))
    for d in days:
        rows = np.flatnonzero(day_id == d)
        arrival = np.clip(rng.normal(arrival_mean_h, arrival_sd_h, n_ev), 14.0, 24.0 - step_h)
        energy = rng.uniform(energy_kwh[0], energy_kwh[1], n_ev)
        daily = np.zeros((steps_per_day, n_ev))
        start = np.floor(arrival / step_h).astype(int)
        full_steps = np.floor(energy / (rated_kw * step_h)).astype(int)
        rest_kw = (energy - full_steps * rated_kw * step_h) / step_h
        for e in range(n_ev):
            n_full = min(full_steps[e], steps_per_day)
            idx = (start[e] + np.arange(n_full)) % steps_per_day
            daily[idx, e] = rated_kw[e]
            if n_full < steps_per_day and rest_kw[e] > 0:
                daily[(start[e] + n_full) % steps_per_day, e] = rest_kw[e]
        out[rows] = daily[step_of_day[rows]]
    return out
