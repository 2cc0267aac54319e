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

METRICS = [
    ("v_min_pu", "lowest voltage [pu]"),
    ("v_max_pu", "highest voltage [pu]"),
    ("unbalance_max_percent", "highest unbalance [%]"),
    ("line_loading_max_percent", "highest cable loading [%]"),
    ("trafo_loading_max_percent", "highest transformer loading [%]"),
]


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
    "any": "a limit is violated when it is exceeded at any studied step (strict)",
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
) -> pd.DataFrame:
    """Largest share (EV or PV) up to which the violation probability stays within ``max_probability``.

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
        for share, p in zip(part[along], part.violation_probability):
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
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def plot_feeder(results: pd.DataFrame, feeder: str) -> str:
    """One figure per feeder (base64 PNG): violation probability and metrics against EV share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = results[results.feeder == feeder]
    pv_values = sorted(df.pv_share.unique())
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    ax = axes[0, 0]
    for pv in pv_values:
        prob = df[df.pv_share == pv].groupby("ev_share").violation.mean()
        ax.plot(prob.index, prob.values, marker="o", label=f"PV share {pv:g}")
    ax.set_xlabel("EV share of customers")
    ax.set_ylabel("violation probability")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("hosting capacity: EV")
    ax.legend(fontsize=8)
    for k, (metric, label) in enumerate(METRICS):
        ax = axes.flat[k + 1]
        for pv in pv_values:
            part = df[df.pv_share == pv].groupby("ev_share")[metric]
            med, lo, hi = part.median(), part.min(), part.max()
            ax.plot(med.index, med.values, marker=".", label=f"PV share {pv:g}")
            ax.fill_between(med.index, lo.values, hi.values, alpha=0.15)
        ax.set_xlabel("EV share of customers")
        ax.set_ylabel(label)
    fig.suptitle(f"{feeder}: median and range over samples")
    png = _png(fig)
    plt.close(fig)
    return png


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0, classes="t")


def write_report(
    results: pd.DataFrame,
    path: Any,
    *,
    title: str = "powercheck what-if study",
    meta: dict[str, Any] | None = None,
    max_probability: float = 0.05,
    criterion: str = "any",
    feeders_info: Sequence[dict[str, Any]] = (),
) -> None:
    """A self-contained HTML report (plots embedded as PNG)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1300px} table.t{border-collapse:collapse}"
        " table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
        " img{max-width:100%} code{background:#f4f4f4}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if meta:
        parts.append("<h2>Study</h2><table class='t'>")
        for key, value in meta.items():
            parts.append(f"<tr><th>{html.escape(str(key))}</th><td><code>{html.escape(str(value))}</code></td></tr>")
        parts.append("</table>")
    if feeders_info:
        parts.append("<h2>Feeders</h2>" + _table(pd.DataFrame(list(feeders_info))))
    hc_ev = hosting_capacity(results, "ev_share", max_probability, criterion=criterion)
    hc_pv = hosting_capacity(results, "pv_share", max_probability, criterion=criterion)
    for warning in sample_warnings(
        int(results.groupby(["feeder", "ev_share", "pv_share"]).size().min()), max_probability
    ):
        parts.append(f"<p class='warn'>{html.escape(warning)}</p>")
    prob = violation_probability(results, None, criterion)
    parts.append(
        "<h3>Violation probability with 95 % Wilson intervals</h3>"
        + _table(
            prob[
                [
                    "feeder",
                    "pv_share",
                    "ev_share",
                    "violations",
                    "samples",
                    "violation_probability",
                    "ci_low",
                    "ci_high",
                ]
            ]
        )
    )
    parts.append(
        f"<h2>Hosting capacity</h2><p>Largest studied share with a violation probability of at most "
        f"{max_probability:g} (and all smaller shares too).</p>"
    )
    parts.append("<h3>EV, per PV share</h3>" + _table(hc_ev))
    parts.append("<h3>PV, per EV share</h3>" + _table(hc_pv))
    summary = (
        results.groupby(["feeder", "ev_share", "pv_share"])
        .agg(
            samples=("sample", "size"),
            violation_probability=("violation", "mean"),
            v_min_pu=("v_min_pu", "min"),
            v_max_pu=("v_max_pu", "max"),
            unbalance_max_percent=("unbalance_max_percent", "max"),
            line_loading_max_percent=("line_loading_max_percent", "max"),
            trafo_loading_max_percent=("trafo_loading_max_percent", "max"),
        )
        .reset_index()
    )
    for feeder in sorted(results.feeder.unique()):
        parts.append(f"<h2>{html.escape(feeder)}</h2>")
        parts.append(f"<img alt='{html.escape(feeder)}' src='data:image/png;base64,{plot_feeder(results, feeder)}'>")
        parts.append(_table(summary[summary.feeder == feeder]))
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
