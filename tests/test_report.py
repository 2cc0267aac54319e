"""The report page of a decision: what it shows is the decision (checks, binding check, measures, path),
in the asked language, escaped; rendered in a real browser (headless Chromium)."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest

from powercheck.cli import main
from powercheck.demo import demo_notifications_path
from powercheck.html import HLine, Series, line_chart
from powercheck.io import read_notifications
from powercheck.ledger import CapacityState
from powercheck.report import binding_check, render_report
from powercheck.rules.engine import Assessor
from powercheck.texts import label, localize, template, title
from tests.helpers import browser
from tests.helpers.mini import FIXED_TIME


class _Page(HTMLParser):
    """Rows of every table by the id of the element around it; the texts of the outcome badge; SVG polylines."""

    def __init__(self) -> None:
        super().__init__()
        self.section: list[str | None] = []
        self.rows: dict[str, list[tuple[str, list[str]]]] = {}
        self.cell: list[str] | None = None
        self.row: tuple[str, list[str]] | None = None
        self.polylines: list[str] = []
        self.ids: dict[str, str] = {}
        self._text_of: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("div", "table", "ul", "p", "span"):
            self.section.append(a.get("id") or (self.section[-1] if self.section else None))
            if a.get("id"):
                self.ids[a["id"]] = ""
                self._text_of = a["id"]
        if tag == "tr":
            self.row = (a.get("class", ""), [])
        if tag in ("td", "th") and self.row is not None:
            self.cell = []
        if tag == "polyline":
            self.polylines.append(a["points"])

    def handle_endtag(self, tag):
        if tag in ("div", "table", "ul", "p", "span") and self.section:
            self.section.pop()
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row[1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        if tag == "tr" and self.row is not None:
            key = next((s for s in reversed(self.section) if s), "")
            self.rows.setdefault(key, []).append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        if self._text_of is not None:
            self.ids[self._text_of] += data
            if self._text_of == "outcome":
                self._text_of = None


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def demo_decisions(demo_region, policy):
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok]
    assessor = Assessor(demo_region, policy, clock=lambda: FIXED_TIME, ledger=CapacityState.empty(demo_region))
    return assessor.assess_many(notes)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@pytest.mark.parametrize("lang", ["en", "nb"])
def test_report_shows_every_check_the_binding_one_the_measures_and_the_path(demo_decisions, lang):
    shown = 0
    for d in demo_decisions:
        if str(d.outcome) not in ("escalate", "approved_with_conditions", "auto_approve") or not d.path:
            continue
        if not d.checks:  # a job type without checks here (disconnection; a KV change that sets no fuse)
            assert d.job_type in ("disconnection", "kv_change")
            continue
        page = _parse(render_report(d, lang))
        assert page.ids["outcome"] == template(f"outcome.{d.outcome}", lang)
        checks = [r for r in page.rows["checks"] if r[0]]  # data rows carry a status class
        assert len(checks) == len(d.checks)
        binding = binding_check(d)
        for (cls, cells), c in zip(checks, d.checks, strict=True):
            assert cls.split()[0] == str(c.status)
            assert cells[0].startswith(title(c.rule_id, lang)) and cells[0].endswith(c.rule_id)
            assert cells[1] == _fmt(c.value)
            assert cells[2].endswith(_fmt(c.limit))
            assert ("binding" in cls) == (c is binding)
            assert cells[5] == label(str(c.status), lang)
        # the binding check is the one with the smallest relative margin
        margins = [
            c.relative_margin for c in d.checks if c.relative_margin is not None and str(c.status) != "not_evaluated"
        ]
        assert binding.relative_margin == min(margins)
        measures = page.rows.get("measures", [])[1:]
        assert [m[1][1] for m in measures] == [" ".join(m.text.split()) for m in localize(d, lang).measures]
        # one polyline per drawn series, one vertex per path bus; the request's line ends at the point's voltage
        assert page.polylines and all(len(p.split()) == len(d.path) for p in page.polylines)
        path_rows = page.rows["path"][1:]
        assert [int(r[1][0]) for r in path_rows] == [p.bus for p in d.path]
        assert float(path_rows[-1][1][4]) == pytest.approx(d.path[-1].v_peak_pu, abs=5e-5)
        shown += 1
    assert shown > 150


def test_escalation_report_in_norwegian_names_the_failed_check_and_measures(demo_decisions):
    d = next(d for d in demo_decisions if str(d.outcome) == "escalate" and d.measures and d.path)
    html = render_report(d, "nb")
    assert 'lang="nb"' in html and "Sendt til saksbehandler" in html and "Tiltak" in html
    en = render_report(d, "en")
    assert "Sent to a case handler" in en and "Measures" in en
    failing = [c for c in d.checks if str(c.status) == "fail"]
    assert failing and title(failing[0].rule_id, "nb") in html


def test_report_escapes_what_the_installer_wrote(demo_decisions):
    d = demo_decisions[0].model_copy(update={"notification_id": "<script>alert(1)</script>", "reasons": ["a<b"]})
    html = render_report(d.model_copy(update={"messages": []}), "en")
    assert "<script>" not in html and "&lt;script&gt;" in html and "a&lt;b" in html


def test_rejected_record_has_a_report_without_path(demo_decisions):
    d = next(d for d in demo_decisions if str(d.outcome) == "reject_incomplete")
    page = _parse(render_report(d, "en"))
    assert page.ids["outcome"] == template("outcome.reject_incomplete", "en")
    assert label("no_path", "en") in page.ids["path"]


def test_line_chart_places_points_by_hand_calculation():
    # plot area: left 64, top 16, width 760-64-16 = 680, height 320-16-44 = 260; x from 0 to 2,
    # y from 0.9 to 1.0 padded by 8 % of 0.1 on both sides -> 0.892 .. 1.008
    svg = line_chart([Series("s", [0.0, 1.0, 2.0], [1.0, 0.95, 0.9], "#000")], [HLine("min", 0.9, "#111")],
                     x_label="km", y_label="pu")  # fmt: skip
    points = re.search(r'<polyline points="([^"]+)"', svg).group(1).split()
    x = [float(p.split(",")[0]) for p in points]
    y = [float(p.split(",")[1]) for p in points]
    assert x == pytest.approx([64.0, 64.0 + 340.0, 64.0 + 680.0], abs=0.05)
    span = 1.008 - 0.892
    assert y == pytest.approx([16 + (1.008 - v) / span * 260 for v in (1.0, 0.95, 0.9)], abs=0.05)
    assert not math.isnan(y[0]) and "min" in svg


def test_cli_report_from_a_decisions_file(tmp_path, cache_dir, capsys):
    out = tmp_path / "decisions.parquet"
    assert main(["screen", str(demo_notifications_path()), "--out", str(out), "--cache-dir", str(cache_dir), "-q",
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    page = tmp_path / "r" / "report.html"
    assert main(["report", "ELS-2026-100021", "--decisions", str(out), "--lang", "nb", "--out", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "ELS-2026-100021" in html and 'lang="nb"' in html and "<svg" in html
    assert main(["report", "NO-SUCH-ID", "--decisions", str(out), "--out", str(page)]) == 2
    assert "NO-SUCH-ID" in capsys.readouterr().err
    assert main(["report", "X", "--decisions", str(tmp_path / "missing.parquet")]) == 2
    assert "missing.parquet" in capsys.readouterr().err


@pytest.mark.skipif(browser.chromium() is None, reason=browser.SKIP_REASON)
def test_report_renders_in_chromium(demo_decisions, tmp_path):
    """Chromium lays the page out (DOM after parsing has the tables and the chart) and paints it: the
    screenshot shows the outcome badge's colour and the request's voltage line."""
    from PIL import Image

    d = next(d for d in demo_decisions if str(d.outcome) == "escalate" and d.path and d.measures)
    page = tmp_path / "report.html"
    page.write_text(render_report(d, "nb"), encoding="utf-8")
    dom = browser.dump_dom(page)
    assert 'id="checks"' in dom and "<svg" in dom and "polyline" in dom and d.notification_id in dom
    png = browser.screenshot(page, tmp_path / "report.png")
    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 2400)
    colours = image.getcolors(maxcolors=1 << 20)
    counts = {rgb: n for n, rgb in colours}
    # the escalation badge (#b3261e) and the request's line (same red) are painted; so is the grey base line
    assert counts.get((0xB3, 0x26, 0x1E), 0) > 500
    assert counts.get((0x80, 0x86, 0x8B), 0) > 50
    # the page is not blank: most of it is white, the rest text, tables and the chart
    assert 0.3 < counts.get((255, 255, 255), 0) / (1200 * 2400) < 0.99
