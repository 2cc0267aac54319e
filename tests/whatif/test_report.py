"""The what-if HTML report: summary first (hosting capacity per limit, in words where it is not a number), plots,
raw configuration last; rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from powercheck.cli import main
from powercheck.whatif.report import bus_hosting_capacity, capacity_words, feeder_summary, time_of_day


@pytest.fixture(scope="module")
def report(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("whatif-report")
    code = main(
        [
            "whatif",
            "--feeders",
            "demo:it-landnetz-luft",
            "--ev-share",
            "0,0.5,1",
            "--pv-share",
            "0,1",
            "--samples",
            "2",
            "--days",
            "1",
            "--cache-dir",
            str(cache_dir),
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    return out / "report.html"


def test_report_starts_with_the_summary_and_ends_with_the_raw_configuration(report):
    text = report.read_text(encoding="utf-8")
    headings = re.findall(r"<h2>(.*?)</h2>", text)
    assert headings[0] == "Summary" and headings[-1] == "Configuration (raw)"
    summary = text[text.index("<section id='summary'>") : text.index("</section>")]
    for limit in ("undervoltage", "overvoltage", "voltage unbalance", "cable loading", "transformer loading"):
        assert limit in summary
    assert "binding limit" in summary and ">nan<" not in summary.lower()
    assert "at least 73 samples" in summary  # 2 samples: the warning is in the summary
    # the default PV cos phi(P) curve is a recalled value: named in the summary
    assert "Assumptions tagged R (recalled, not verified) in use: pv.cosphi_p" in summary
    # the assumptions TOML is printed at the end
    assert text.index("[ev.smart_charging]") > text.index("Configuration (raw)")
    # plots: EV and PV uptake, time of day, per bus
    assert len(re.findall(r"data:image/png;base64,", text)) == 6


def test_capacity_words_and_summary_by_hand():
    assert capacity_words(float("nan"), True, 0.0, 1.0) == "violated already at share 0"
    assert capacity_words(1.0, False, 0.0, 1.0) == "not reached up to share 1"
    assert capacity_words(0.4, True, 0.0, 1.0) == "0.4"
    rows = []
    # undervoltage from share 0.5 in every sample, unbalance from share 1.0, lines never, trafo at share 0 already
    for share in (0.0, 0.5, 1.0):
        for s in range(2):
            rows.append(
                {
                    "feeder": "f",
                    "ev_share": share,
                    "pv_share": 0.0,
                    "sample": s,
                    "n_steps": 96,
                    "steps_v_low": int(share >= 0.5),
                    "steps_v_high": 0,
                    "steps_unbalance": int(share >= 1.0),
                    "steps_line": 0,
                    "steps_trafo": 0,
                    "steps_not_converged": 0,
                    "n_ev": 0,
                    "ev_kw": 0.0,
                    "n_pv": 0,
                    "pv_kwp": 0.0,
                    "violating_buses": [7] if share >= 0.5 else [],
                    "violating_steps": [96 + 72] if share >= 0.5 else [],
                }
            )
    df = pd.DataFrame(rows)
    row = feeder_summary(df, "ev_share", 0.05, "any").iloc[0]
    assert row["undervoltage"] == "0" and row["voltage unbalance"] == "0.5"
    assert row["cable loading"] == "not reached up to share 1" and row["binding limit"] == "undervoltage"
    assert row["all limits, 95 % sure"] == "not shown with 2 samples"  # 0/2: upper bound 0.658 > 0.05
    df.loc[df.ev_share == 0.0, "steps_trafo"] = 3
    row = feeder_summary(df, "ev_share", 0.05, "any").iloc[0]
    assert row["transformer loading"] == "violated already at share 0" and row["binding limit"] == "transformer loading"
    # per bus: bus 7 violates from share 0.5, bus 9 never
    per_bus = bus_hosting_capacity(df, [7, 9], "ev_share", 0.05)
    assert per_bus.hosting_capacity.tolist() == [0.0, 1.0] and per_bus.reached.tolist() == [True, False]
    # time of day: step 72 of the day is 18:00; 2 samples x 1 day at shares 0.5 and 1.0, all violated then
    tod = time_of_day(df, "ev_share")
    assert tod.loc[0.5, 72] == 1.0 and tod.loc[0.0].sum() == 0.0 and np.count_nonzero(tod.loc[1.0]) == 1


def test_report_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    # the rendered document: the title, then the summary before any other section
    body = dom[dom.index("<body>") :]
    first = re.search(r"<(h2|section)[^>]*>", body[body.index("</h1>") :])
    assert first.group(0) == '<section id="summary">'
    shot = tmp_path / "top.png"
    subprocess.run(
        [*flags, "--window-size=1200,700", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    assert img.shape[:2] == (700, 1200)
    # the summary box (background #fbfcfe, border #c8d3e0) is on the first screen
    assert (np.abs(img - [0xC8, 0xD3, 0xE0]).sum(axis=2) == 0).sum() > 500
    assert (img.sum(axis=2) < 200).sum() > 1000  # text was drawn
