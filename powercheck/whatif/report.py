"""Hosting-capacity curves and the HTML report of a what-if study."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

METRICS = [
    ("v_min_pu", "lowest voltage [pu]"),
    ("v_max_pu", "highest voltage [pu]"),
    ("unbalance_max_percent", "highest unbalance [%]"),
    ("line_loading_max_percent", "highest cable loading [%]"),
    ("trafo_loading_max_percent", "highest transformer loading [%]"),
]


def violation_probability(results: pd.DataFrame) -> pd.DataFrame:
    """Share of samples with a violation per feeder, EV share and PV share."""
    grouped = results.groupby(["feeder", "pv_share", "ev_share"], sort=True)
    return grouped.violation.mean().rename("violation_probability").reset_index()


def hosting_capacity(results: pd.DataFrame, along: str = "ev_share", max_probability: float = 0.05) -> pd.DataFrame:
    """Largest share (EV or PV) up to which the violation probability stays within ``max_probability``.

    For each feeder and value of the other share, walks up the studied shares and stops at
    the first one whose violation probability exceeds ``max_probability``; the hosting
    capacity is the share before it (NaN if already the smallest share violates).
    """
    other = "pv_share" if along == "ev_share" else "ev_share"
    prob = results.groupby(["feeder", other, along], sort=True).violation.mean()
    rows = []
    for (feeder, fixed), series in prob.groupby(level=[0, 1], sort=True):
        shares = series.index.get_level_values(along).to_numpy()
        values = series.to_numpy()
        capacity = float("nan")
        for share, p in zip(shares, values):
            if p > max_probability:
                break
            capacity = float(share)
        rows.append(
            {
                "feeder": feeder,
                other: fixed,
                f"hosting_capacity_{along}": capacity,
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
    hc_ev = hosting_capacity(results, "ev_share", max_probability)
    hc_pv = hosting_capacity(results, "pv_share", max_probability)
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
