"""Hosting-capacity curves and the HTML report of a what-if study."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

Z95 = 1.959963984540054
"""Two-sided 95 % standard normal quantile."""

LIMIT_NAMES = {
    "v_low": "undervoltage",
    "v_high": "overvoltage",
    "unbalance": "voltage unbalance",
    "line": "cable loading",
    "trafo": "transformer loading",
}
CRITERIA = {
    "any": "a limit is violated when it is exceeded at any studied step (strict, as FoL §3-3 asks of every "
    "1-min value; the 15-min steps studied here smooth peaks shorter than 15 min)",
    "p95": "a limit is violated when it is exceeded at more than 5 % of the studied steps "
    "(EN 50160 style: 95 % of the values within the limit; here 15-min values of the studied days)",
}


def wilson_interval(k: Any, n: Any, z: float = Z95) -> tuple[Any, Any]:
    """Wilson score interval of a binomial proportion ``k / n`` (arrays or numbers).

    ``(p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``p = k/n``.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def samples_needed(max_probability: float, z: float = Z95) -> int:
    """Fewest samples for which 0 violations give a Wilson upper bound below ``max_probability``.

    The upper bound at ``k = 0`` is ``z^2 / (n + z^2)``; it is below ``p`` for ``n > z^2 (1 - p) / p``.
    """
    return int(math.floor(z * z * (1.0 - max_probability) / max_probability)) + 1


def sample_warnings(samples: int, max_probability: float) -> list[str]:
    """Warnings when ``samples`` are too few for the violation-probability threshold ``max_probability``."""
    out = []
    if 1.0 / samples >= max_probability:
        out.append(
            f"With {samples} samples per share, one sample moves the violation probability by 1/{samples} = "
            f"{1.0 / samples:.3g}, at least the threshold {max_probability:g}: each hosting capacity is decided by a "
            "single sample."
        )
    need = samples_needed(max_probability)
    if samples < need:
        lo, hi = wilson_interval(0, samples)
        out.append(
            f"Even with no violating sample the 95 % confidence interval of the violation probability reaches "
            f"{float(hi):.3g} (> {max_probability:g}); at least {need} samples per share are needed to show a "
            f"probability below {max_probability:g}."
        )
    return out


def scenario_violation(results: pd.DataFrame, limit: str | None = None, criterion: str = "any") -> pd.Series:
    """Whether each scenario violates ``limit`` (None: any limit) under ``criterion`` ("any" or "p95").

    A step that did not converge counts as a violation of every limit.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {', '.join(CRITERIA)}, got {criterion!r}")
    limits = [limit] if limit else list(LIMIT_NAMES)
    bad = results["steps_not_converged"] > 0
    for name in limits:
        steps = results[f"steps_{name}"]
        bad = bad | ((steps > 0) if criterion == "any" else (steps > 0.05 * results["n_steps"]))
    return bad


def violation_probability(
    results: pd.DataFrame, limit: str | None = None, criterion: str = "any", along: str = "ev_share"
) -> pd.DataFrame:
    """Violation probability with its 95 % Wilson interval per feeder, other share and ``along`` share."""
    other = "pv_share" if along == "ev_share" else "ev_share"
    df = results.assign(_v=scenario_violation(results, limit, criterion))
    g = df.groupby(["feeder", other, along], sort=True)
    out = g.agg(
        violations=("_v", "sum"),
        samples=("_v", "size"),
        ev_count=("n_ev", "mean"),
        ev_kw=("ev_kw", "mean"),
        pv_count=("n_pv", "mean"),
        pv_kwp=("pv_kwp", "mean"),
    ).reset_index()
    out["violations"] = out["violations"].astype(int)
    out["violation_probability"] = out.violations / out.samples
    out["ci_low"], out["ci_high"] = wilson_interval(out.violations, out.samples)
    return out


def hosting_capacity(
    results: pd.DataFrame,
    along: str = "ev_share",
    max_probability: float = 0.05,
    *,
    limit: str | None = None,
    criterion: str = "any",
    upper_bound: bool = False,
) -> pd.DataFrame:
    """Largest share (EV or PV) up to which the violation probability stays within ``max_probability``.

    With ``upper_bound`` the 95 % Wilson upper bound of the probability must stay within it: the
    capacity the samples show with 95 % confidence (conservative; it grows with the samples).

    For each feeder and value of the other share, walks up the studied shares and stops at
    the first one whose violation probability (of ``limit``, None: any limit) exceeds
    ``max_probability``; the hosting capacity is the share before it (NaN if already the
    smallest share violates). ``reached`` tells whether any studied share exceeded it (False:
    the capacity is at least the largest studied share).
    """
    other = "pv_share" if along == "ev_share" else "ev_share"
    prob = violation_probability(results, limit, criterion, along)
    rows = []
    for (feeder, fixed), part in prob.groupby(["feeder", other], sort=True):
        capacity = float("nan")
        reached = False
        for share, p in zip(part[along], part.ci_high if upper_bound else part.violation_probability):
            if p > max_probability:
                reached = True
                break
            capacity = float(share)
        rows.append(
            {
                "feeder": feeder,
                other: fixed,
                f"hosting_capacity_{along}": capacity,
                "reached": reached,
                "max_share_studied": float(part[along].max()),
                "max_violation_probability": max_probability,
            }
        )
    return pd.DataFrame(rows)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def capacity_words(capacity: float, reached: bool, smallest: float, largest: float) -> str:
    """A hosting capacity in words: NaN and 'never exceeded' are not numbers an analyst should decode."""
    if not math.isfinite(capacity):
        return f"violated already at share {smallest:g}"
    if not reached:
        return f"not reached up to share {largest:g}"
    return f"{capacity:g}"


def feeder_summary(results: pd.DataFrame, along: str, max_probability: float, criterion: str) -> pd.DataFrame:
    """Per feeder (at the smallest studied other share): hosting capacity per limit and overall, and the binding
    limit (the one with the smallest capacity; ties: the one violated most often at the next share)."""
    other = "pv_share" if along == "ev_share" else "ev_share"
    base = results[results[other] == results.groupby("feeder")[other].transform("min")]
    rows = []
    for feeder, part in base.groupby("feeder", sort=True):
        smallest, largest = float(part[along].min()), float(part[along].max())
        row: dict[str, Any] = {"feeder": feeder, other: float(part[other].iloc[0])}
        caps = {}
        for limit, name in LIMIT_NAMES.items():
            hc = hosting_capacity(part, along, max_probability, limit=limit, criterion=criterion).iloc[0]
            cap = hc[f"hosting_capacity_{along}"]
            caps[limit] = (-1.0 if not math.isfinite(cap) else cap) + (0.0 if hc.reached else 10.0)
            row[name] = capacity_words(cap, bool(hc.reached), smallest, largest)
        hc = hosting_capacity(part, along, max_probability, criterion=criterion).iloc[0]
        row["all limits"] = capacity_words(hc[f"hosting_capacity_{along}"], bool(hc.reached), smallest, largest)
        sure = hosting_capacity(part, along, max_probability, criterion=criterion, upper_bound=True).iloc[0]
        cap = sure[f"hosting_capacity_{along}"]
        n = int(part.groupby(along).size().min())
        row["all limits, 95 % sure"] = (
            f"not shown with {n} samples"
            if not math.isfinite(cap)
            else capacity_words(cap, bool(sure.reached), 0, largest)
        )
        if hc.reached or not math.isfinite(hc[f"hosting_capacity_{along}"]):
            lowest = min(caps.values())
            tied = [k for k, v in caps.items() if v == lowest]
            if len(tied) > 1:
                rate = {k: scenario_violation(part, k, criterion).mean() for k in tied}
                tied = [max(rate, key=lambda k: rate[k])]
            row["binding limit"] = LIMIT_NAMES[tied[0]]
        else:
            row["binding limit"] = "none within the studied shares"
        rows.append(row)
    return pd.DataFrame(rows)


def _tick_labels(prob: pd.DataFrame, along: str) -> list[str]:
    if along == "ev_share":
        return [f"{s:g}\n{c:.0f} EV\n{k:.0f} kW" for s, c, k in zip(prob[along], prob.ev_count, prob.ev_kw)]
    return [f"{s:g}\n{c:.0f} PV\n{k:.0f} kWp" for s, c, k in zip(prob[along], prob.pv_count, prob.pv_kwp)]


def plot_feeder(
    results: pd.DataFrame,
    feeder: str,
    along: str = "ev_share",
    *,
    max_probability: float = 0.05,
    criterion: str = "any",
    limits: dict[str, float] | None = None,
) -> str:
    """Violation probability per limit (95 % Wilson bars, the threshold as a line) and the worst values (median and
    5-95 % of the samples, the limits as lines) against the share, with the device count and power under each share
    (base64 PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    other = "pv_share" if along == "ev_share" else "ev_share"
    df = results[results.feeder == feeder]
    df = df[df[other] == df[other].min()]
    limits = limits or {}
    fig, axes = plt.subplots(2, 3, figsize=(14, 8), constrained_layout=True)
    ax = axes[0, 0]
    prob_all = violation_probability(df, None, criterion, along)
    for limit, name in LIMIT_NAMES.items():
        prob = violation_probability(df, limit, criterion, along)
        err = [prob.violation_probability - prob.ci_low, prob.ci_high - prob.violation_probability]
        ax.errorbar(prob[along], prob.violation_probability, yerr=err, marker="o", ms=3, capsize=2, label=name)
    ax.axhline(max_probability, color="red", ls="--", lw=1, label=f"threshold {max_probability:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("violation probability (95 % CI)")
    ax.set_title(f"violation probability per limit ({criterion})")
    ax.legend(fontsize=7)
    label = "EV" if along == "ev_share" else "PV"
    metrics = [
        ("v_min_pu", "lowest voltage [pu]", limits.get("v_min_pu")),
        ("v_max_pu", "highest voltage [pu]", limits.get("v_max_pu")),
        ("unbalance_max_percent", "highest unbalance [%]", limits.get("unbalance_max_percent")),
        ("line_loading_max_percent", "highest cable loading [%]", limits.get("line_loading_max_percent")),
        ("trafo_loading_max_percent", "highest transformer loading [%]", limits.get("trafo_loading_max_percent")),
    ]
    for k, (metric, name, lim) in enumerate(metrics):
        ax = axes.flat[k + 1]
        part = df.groupby(along)[metric]
        med, lo, hi = part.median(), part.quantile(0.05), part.quantile(0.95)
        ax.plot(med.index, med.values, marker=".", label="median")
        ax.fill_between(med.index, lo.values, hi.values, alpha=0.2, label="5-95 % of samples")
        if lim is not None:
            ax.axhline(lim, color="red", ls="--", lw=1, label=f"limit {lim:g}")
        ax.set_title(name)
        ax.legend(fontsize=7)
    for ax in axes.flat:
        ax.set_xticks(prob_all[along].to_numpy())
        ax.set_xticklabels(_tick_labels(prob_all, along), fontsize=7)
        ax.set_xlabel(f"{label} share of customer points (mean count, {'kW' if label == 'EV' else 'kWp'})", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{feeder}: {label} uptake at {other.replace('_', ' ')} {df[other].min():g}")
    png = _png(fig)
    plt.close(fig)
    return png


def time_of_day(results: pd.DataFrame, along: str = "ev_share", steps_per_day: int = 96) -> pd.DataFrame:
    """Share of studied days with a violation at each time of day, per share (rows) and step of the day (columns).

    A day of a scenario counts as violated at a step of the day when any limit is violated then
    (strict rule); the denominator is samples x studied days.
    """
    rows = {}
    for share, part in results.groupby(along, sort=True):
        counts = np.zeros(steps_per_day)
        days = 0
        for steps, n in zip(part.violating_steps, part.n_steps):
            days += int(n) // steps_per_day
            if len(steps):
                np.add.at(counts, np.asarray(steps, dtype=np.int64) % steps_per_day, 1)
        rows[share] = counts / max(days, 1)
    return pd.DataFrame.from_dict(rows, orient="index")


def plot_time_of_day(tod: pd.DataFrame, feeder: str, label: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(13, 0.5 + 0.35 * max(len(tod), 3)), constrained_layout=True)
    im = ax.imshow(tod.to_numpy(), aspect="auto", cmap="Reds", vmin=0, vmax=1, extent=(0, 24, len(tod), 0))
    ax.set_yticks(np.arange(len(tod)) + 0.5)
    ax.set_yticklabels([f"{s:g}" for s in tod.index])
    ax.set_xticks(range(0, 25, 2))
    ax.set_xlabel("time of day [h]")
    ax.set_ylabel(f"{label} share")
    ax.set_title(f"{feeder}: share of studied days with a violation at each time of day")
    fig.colorbar(im, ax=ax, label="share of days")
    png = _png(fig)
    plt.close(fig)
    return png


def bus_hosting_capacity(
    results: pd.DataFrame, buses: Sequence[int], along: str = "ev_share", max_probability: float = 0.05
) -> pd.DataFrame:
    """Hosting capacity at each bus: the largest share up to which the probability that the bus itself sees a
    voltage or unbalance violation (any step) stays within ``max_probability``.

    Returns one row per bus: ``bus``, ``hosting_capacity`` (NaN: violated at the smallest share), ``reached``.
    """
    other = "pv_share" if along == "ev_share" else "ev_share"
    df = results[results[other] == results[other].min()]
    shares = sorted(df[along].unique())
    prob = {}
    for share in shares:
        part = df[df[along] == share]
        counts: dict[int, int] = {}
        for buses_hit in part.violating_buses:
            for b in buses_hit:
                counts[int(b)] = counts.get(int(b), 0) + 1
        prob[share] = (counts, len(part))
    rows = []
    for bus in buses:
        cap, reached = float("nan"), False
        for share in shares:
            counts, n = prob[share]
            if counts.get(int(bus), 0) / n > max_probability:
                reached = True
                break
            cap = float(share)
        rows.append({"bus": int(bus), "hosting_capacity": cap, "reached": reached})
    return pd.DataFrame(rows)


def plot_bus_capacity(table: pd.DataFrame, feeder: str, label: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(13, 3.5), constrained_layout=True)
    top = table.max_share.max() if len(table) else 1.0
    y = np.where(np.isnan(table.hosting_capacity), -0.05, table.hosting_capacity)
    y = np.where(table.reached | np.isnan(table.hosting_capacity), y, top + 0.05)
    colors = np.where(np.isnan(table.hosting_capacity), "black", np.where(table.reached, "tab:blue", "tab:green"))
    ax.scatter(table.distance_km * 1000, y, c=colors, s=14)
    ax.set_xlabel("distance from the transformer along the cables [m]")
    ax.set_ylabel(f"{label} hosting capacity")
    ax.set_title(
        f"{feeder}: hosting capacity at each customer bus (green above the line: not reached; black below 0: "
        "violated already at the smallest share)",
        fontsize=9,
    )
    ax.axhline(top, color="grey", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    png = _png(fig)
    plt.close(fig)
    return png


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0, classes="t", na_rep="-")


def write_report(
    results: pd.DataFrame,
    path: Any,
    *,
    title: str = "powercheck what-if study",
    meta: dict[str, Any] | None = None,
    max_probability: float = 0.05,
    criterion: str = "any",
    feeders_info: Sequence[dict[str, Any]] = (),
    limits: dict[str, float] | None = None,
    bus_distances: dict[str, pd.Series] | None = None,
) -> None:
    """A self-contained HTML report (plots embedded as PNG): the summary first, the raw configuration last.

    ``bus_distances`` maps a feeder to its customer buses' distance from the transformer [km]
    (index: bus), for the hosting capacity along the feeder.
    """
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em 2em;max-width:1300px;color:#222}"
        " table.t{border-collapse:collapse;margin:.5em 0} table.t td,table.t th{padding:3px 9px;"
        "border-bottom:1px solid #ddd;text-align:right} table.t th{background:#f2f4f7}"
        " .warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.4em .8em}"
        " img{max-width:100%} pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:12px}"
        " #summary{border:1px solid #c8d3e0;border-radius:6px;padding:.2em 1em 1em;background:#fbfcfe}</style>"
        "</head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    shares_ev = sorted(results.ev_share.unique())
    shares_pv = sorted(results.pv_share.unique())
    n_min = int(results.groupby(["feeder", "ev_share", "pv_share"]).size().min())
    parts.append("<section id='summary'><h2>Summary</h2>")
    parts.append(
        f"<p>Hosting capacity: the largest studied share at which the probability of a violation stays at or below "
        f"{max_probability:g}, at that share and every smaller one. Criterion: {e(CRITERIA[criterion])}. "
        f"{n_min} random placements per share combination; violation probabilities carry 95 % Wilson intervals.</p>"
    )
    for warning in sample_warnings(n_min, max_probability):
        parts.append(f"<p class='warn'>{e(warning)}</p>")
    if meta and meta.get("recalled_assumptions", "none") != "none":
        parts.append(
            f"<p class='warn'>Assumptions tagged R (recalled, not verified) in use: "
            f"{e(str(meta['recalled_assumptions']))}. See the assumptions at the end.</p>"
        )
    if len(shares_ev) > 1:
        parts.append(f"<h3>EV hosting capacity per limit (PV share {min(shares_pv):g})</h3>")
        parts.append(_table(feeder_summary(results, "ev_share", max_probability, criterion)))
    if len(shares_pv) > 1:
        parts.append(f"<h3>PV hosting capacity per limit (EV share {min(shares_ev):g})</h3>")
        parts.append(_table(feeder_summary(results, "pv_share", max_probability, criterion)))
    parts.append("</section>")
    if feeders_info:
        parts.append("<h2>Feeders</h2>" + _table(pd.DataFrame(list(feeders_info))))
    for feeder in sorted(results.feeder.unique()):
        df = results[results.feeder == feeder]
        parts.append(f"<h2>{e(feeder)}</h2>")
        for along, label, shares in (("ev_share", "EV", shares_ev), ("pv_share", "PV", shares_pv)):
            if len(shares) < 2:
                continue
            png = plot_feeder(
                results, feeder, along, max_probability=max_probability, criterion=criterion, limits=limits
            )
            parts.append(f"<h3>{label} uptake</h3><img alt='{e(feeder)} {label}' src='data:image/png;base64,{png}'>")
            other = "pv_share" if along == "ev_share" else "ev_share"
            sub = df[df[other] == df[other].min()]
            tod = time_of_day(sub, along)
            parts.append(
                f"<h4>When: time of day of the violations</h4><img alt='{e(feeder)} {label} time of day' "
                f"src='data:image/png;base64,{plot_time_of_day(tod, feeder, label)}'>"
            )
            if bus_distances and feeder in bus_distances:
                dist = bus_distances[feeder]
                table = bus_hosting_capacity(sub, list(dist.index), along, max_probability)
                table["distance_km"] = dist.reindex(table.bus).to_numpy()
                table["max_share"] = float(max(shares))
                png = plot_bus_capacity(table, feeder, label)
                words = [
                    capacity_words(c, r, float(min(shares)), float(max(shares)))
                    for c, r in zip(table.hosting_capacity, table.reached)
                ]
                shown = table.assign(hosting_capacity=words, distance_m=(table.distance_km * 1000).round(0))
                parts.append(
                    f"<h4>Where: hosting capacity along the feeder (voltage and unbalance at each customer bus)</h4>"
                    f"<img alt='{e(feeder)} {label} per bus' src='data:image/png;base64,{png}'>"
                    f"<details><summary>per bus</summary>{_table(shown[['bus', 'distance_m', 'hosting_capacity']])}"
                    "</details>"
                )
        prob = violation_probability(df, None, criterion)
        worst = df.groupby(["ev_share", "pv_share"]).binding_limit.agg(lambda x: x.value_counts().index[0])
        prob = prob.merge(worst.rename("most frequent binding limit").reset_index(), on=["ev_share", "pv_share"])
        cols = ["pv_share", "ev_share", "ev_count", "ev_kw", "pv_count", "pv_kwp", "violations", "samples"]
        cols += ["violation_probability", "ci_low", "ci_high", "most frequent binding limit"]
        parts.append(f"<details><summary>violation probability per share</summary>{_table(prob[cols])}</details>")
        worst_rows = df.sort_values("binding_utilisation", ascending=False).head(10)
        worst_cols = ["ev_share", "pv_share", "sample", "binding_limit", "binding_utilisation"]
        worst_cols += ["v_min_pu", "v_min_element", "v_min_step", "unbalance_max_percent", "unbalance_element"]
        worst_cols += ["unbalance_step", "line_loading_max_percent", "line_element", "line_step"]
        parts.append(
            f"<details><summary>the 10 worst scenarios, with where (element) and when (step of the year)"
            f"</summary>{_table(worst_rows[worst_cols])}</details>"
        )
    if meta:
        parts.append("<h2>Configuration (raw)</h2><table class='t'>")
        for key, value in meta.items():
            if key == "assumptions":
                continue
            parts.append(
                f"<tr><th>{e(str(key))}</th><td style='text-align:left'><code>{e(str(value))}</code></td></tr>"
            )
        parts.append("</table>")
        if meta.get("assumptions"):
            parts.append(f"<h3>Assumptions ({e(str(meta.get('assumptions_source', '')))})</h3>")
            parts.append(f"<pre>{e(str(meta['assumptions']))}</pre>")
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
