"""One page per request: the decision as an installer and a case handler read it.

Outcome, reasons, conditions, network data at the connection point, every check colour-coded with
its value against its limit (the binding check marked), the largest sizes that pass, the measures
with their effect, and the feeder path from the transformer to the customer point with the voltage
along it (base case, with the ledger's approved requests, with this request). Text in English or
Norwegian bokmål from :mod:`powercheck.texts`.
"""

from __future__ import annotations

import math

from powercheck.html import HLine, Series, esc, kv_table, line_chart, number, page, table
from powercheck.models import CheckResult, CheckStatus, Decision
from powercheck.texts import label, localize, template, title

COLORS = {"base": "#80868b", "ledger": "#1a56a6", "request": "#b3261e", "low": "#e37400", "limit": "#3c4043"}


def binding_check(decision: Decision) -> CheckResult | None:
    """The evaluated check closest to (or furthest beyond) its limit: the smallest relative margin."""
    evaluated = [c for c in decision.checks if c.status != CheckStatus.NOT_EVALUATED and c.relative_margin is not None]
    return min(evaluated, key=lambda c: c.relative_margin) if evaluated else None


def _header(d: Decision, lang: str) -> str:
    outcome = str(d.outcome)
    rows = [
        (label("request", lang), f"{esc(d.notification_id)} ({label('revision', lang)} {d.revision})"),
        (label("metering_point", lang), esc(d.metering_point_id)),
        (label("job_type", lang), esc(d.job_type)),
        (label("network", lang), f"{esc(d.network_id)} / {label('bus', lang)} {esc(d.bus)}" if d.network_id else ""),
        (label("score", lang), number(d.score, 3)),
    ]
    return (
        f"<h1>{label('decision', lang)}: {esc(d.notification_id)}</h1>"
        f'<p><span class="badge {esc(outcome)}" id="outcome">{esc(template("outcome." + outcome, lang))}</span></p>'
        + kv_table(rows, "request")
    )


def _list(heading: str, items: list[str], element_id: str) -> str:
    if not items:
        return ""
    return f'<h2>{heading}</h2><ul id="{element_id}">' + "".join(f"<li>{esc(x)}</li>" for x in items) + "</ul>"


def _network_data(d: Decision, lang: str) -> str:
    nd = d.network_data
    if nd is None:
        return ""
    kind = label("ik_min_tn" if nd.ik_min_kind.startswith("1") else "ik_min_it", lang)
    loop = ""
    if nd.loop_r_ohm is not None and nd.loop_x_ohm is not None:
        loop = f"{number(nd.loop_r_ohm)} + j{number(nd.loop_x_ohm)} Ω"
    rows = [
        (label("system", lang), f"{esc(nd.system)} {number(nd.u_nominal_v)} V"),
        (label("ik_max", lang), f"{number(nd.ik_max_3ph_a)} A" if nd.ik_max_3ph_a is not None else ""),
        (f"{label('ik_min', lang)} {kind}", f"{number(nd.ik_min_a)} A" if nd.ik_min_a is not None else ""),
        (label("loop_impedance", lang), loop),
        (label("voltage_peak", lang), f"{number(nd.voltage_peak_pu)} pu" if nd.voltage_peak_pu is not None else ""),
    ]
    return f"<h2>{label('network_data', lang)}</h2>" + kv_table(rows, "network-data")


def _checks(d: Decision, lang: str) -> str:
    if not d.checks:
        return ""
    binding = binding_check(d)
    rows, classes = [], []
    for c in d.checks:
        is_binding = c is binding
        tag = f' <span class="tag">{label("binding", lang)}</span>' if is_binding else ""
        name = esc(title(c.rule_id, lang)) + tag
        status = str(c.status)
        rows.append(
            (
                f"{name}<br><span class='meta'>{esc(c.rule_id)}</span>",
                f'<td class="num">{number(c.value)}</td>',
                f'<td class="num">{"≥ " if str(c.limit_kind) == "min" else "≤ "}{number(c.limit)}</td>'
                if c.limit is not None
                else "<td></td>",
                esc(c.unit),
                f'<td class="num">{number(c.relative_margin, 3)}</td>',
                f'<td class="status">{label(status, lang)}</td>',
            )
        )
        classes.append(status + (" binding" if is_binding else ""))
    header = [label("checks", lang), label("value", lang), label("limit", lang), "", label("margin", lang),
              label("status", lang)]  # fmt: skip
    return f'<h2>{label("checks", lang)}</h2><div id="checks">' + table(header, rows, classes) + "</div>"


def _limits(d: Decision, lang: str) -> str:
    if not d.limits:
        return ""
    rows = [
        (
            esc(x.quantity),
            f'<td class="num">{number(x.notified)} {esc(x.unit)}</td>',
            f'<td class="num">{number(x.smallest)}{" " + esc(x.unit) if x.smallest is not None else ""}</td>',
            f'<td class="num">{number(x.largest) + " " + esc(x.unit) if x.largest is not None else label("none", lang)}'
            "</td>",
            esc(title(x.binding_rule, lang)) if x.binding_rule else "",
        )
        for x in d.limits
    ]
    header = [label("quantity", lang), label("notified", lang), label("smallest", lang), label("largest", lang),
              label("binding", lang)]  # fmt: skip
    return f'<h2>{label("limits", lang)}</h2><div id="limits">' + table(header, rows) + "</div>"


def _measures(d: Decision, lang: str) -> str:
    if not d.measures:
        return f'<h2>{label("measures", lang)}</h2><p id="measures">{label("no_measures", lang)}</p>'
    rows = [
        (label(f"by_{m.by}", lang), esc(m.text), esc(m.effect), label("yes" if m.sufficient else "no", lang))
        for m in d.measures
    ]
    header = [label("by", lang), label("measures", lang), label("effect", lang), label("sufficient", lang)]
    return f'<h2>{label("measures", lang)}</h2><div id="measures">' + table(header, rows) + "</div>"


def _limit_of(d: Decision, rule: str) -> float:
    for c in d.checks:
        if c.rule_id == rule and c.limit is not None:
            return float(c.limit)
    return float("nan")


def _path(d: Decision, lang: str) -> str:
    heading = f"<h2>{label('path', lang)}</h2>"
    if not d.path:
        return heading + f'<p id="path">{label("no_path", lang)}</p>'
    x = [p.distance_km for p in d.path]
    hover = [f"{label('bus', lang)} {p.bus}, {p.distance_km:.3f} km" for p in d.path]
    peak, low = label("peak", lang), label("low_load", lang)
    series = [Series(f"{peak}: {label('base', lang)}", x, [p.v_peak_base_pu for p in d.path], COLORS["base"],
                     hover=hover)]  # fmt: skip
    series.append(Series(f"{peak}: {label('with_request', lang)}", x, [p.v_peak_pu for p in d.path],
                         COLORS["request"], hover=hover))  # fmt: skip
    if any(abs(p.v_peak_ledger_pu - p.v_peak_base_pu) > 1e-9 for p in d.path):
        # drawn over the request's line, which it equals where the request adds no load (export only)
        series.append(Series(f"{peak}: {label('ledger', lang)}", x, [p.v_peak_ledger_pu for p in d.path],
                             COLORS["ledger"], dash="6 3", hover=hover))  # fmt: skip
    if any(abs(p.v_low_pu - p.v_low_base_pu) > 1e-9 for p in d.path):
        series.append(Series(f"{low}: {label('base', lang)}", x, [p.v_low_base_pu for p in d.path], COLORS["base"],
                             dash="2 2", hover=hover))  # fmt: skip
        series.append(Series(f"{low}: {label('with_request', lang)}", x, [p.v_low_pu for p in d.path], COLORS["low"],
                             hover=hover))  # fmt: skip
    hlines = [
        HLine(label("voltage_min", lang), _limit_of(d, "VOLT.PEAK_MIN"), COLORS["limit"]),
        HLine(label("voltage_max", lang), _limit_of(d, "VOLT.LOW_MAX"), COLORS["limit"]),
    ]
    chart = line_chart(series, hlines, x_label=label("distance_km", lang), y_label=label("voltage_pu", lang))
    rows = [
        (
            f'<td class="num">{p.bus}</td>',
            f'<td class="num">{p.distance_km:.3f}</td>',
            f'<td class="num">{p.v_peak_base_pu:.4f}</td>',
            f'<td class="num">{p.v_peak_ledger_pu:.4f}</td>',
            f'<td class="num">{p.v_peak_pu:.4f}</td>',
            f'<td class="num">{p.v_low_pu:.4f}</td>',
        )
        for p in d.path
    ]
    header = [label("bus", lang), label("distance_km", lang), f"{peak}: {label('base', lang)}",
              f"{peak}: {label('ledger', lang)}", f"{peak}: {label('with_request', lang)}",
              f"{low}: {label('with_request', lang)}"]  # fmt: skip
    return heading + f'<div id="path">{chart}' + table(header, rows) + "</div>"


def render_report(decision: Decision, lang: str | None = None) -> str:
    """The HTML page of one decision, in ``lang`` (default: the decision's language)."""
    lang = lang or decision.language
    d = localize(decision, lang)
    footer = (
        f'<p class="meta">{label("policy", lang)}: {esc(d.policy_id)} {esc(d.policy_version)} '
        f"({esc(d.policy_hash[:12])}) · {label('grid_model', lang)}: {esc(d.grid_model_version)} · "
        f"{label('engine', lang)}: {esc(d.engine_version)} · {label('generated', lang)}: "
        f"{esc(d.decided_at.isoformat())}</p>"
    )
    assumptions = (
        f'<p class="meta">{label("assumptions", lang)}: {esc(", ".join(d.assumptions))}</p>' if d.assumptions else ""
    )
    body = "".join(
        [
            _header(d, lang),
            _list(label("reasons", lang), list(d.reasons), "reasons"),
            _list(label("conditions", lang), list(d.conditions), "conditions"),
            _network_data(d, lang),
            _checks(d, lang),
            _limits(d, lang),
            _measures(d, lang),
            _path(d, lang),
            assumptions,
            footer,
        ]
    )
    return page(f"{label('decision', lang)} {d.notification_id}", body, lang)


CAPACITY_COLORS = {"ev_1ph": "#1a56a6", "ev_3ph": "#7b1fa2", "pv": "#e37400", "heat_pump": "#1e7d32",
                   "motor": "#b3261e"}  # fmt: skip


def _kw_cell(value, rule, lang: str) -> str:
    if value is None:
        return f'<td class="num">{label("not_evaluated", lang)}</td>'
    if math.isinf(value):
        return f'<td class="num">{label("none", lang)}</td>'
    tip = esc(title(rule, lang)) if rule else ""
    return f'<td class="num" title="{tip}">{value:.1f}<br><span class="meta">{esc(rule or "")}</span></td>'


def render_capacity(data, lang: str = "en", *, heading: str = "") -> str:
    """The capacity map as one page: per network a plot of the largest sizes along the feeder and a table.

    ``data``: an Arrow table of :func:`powercheck.io.capacity_table` (columns ``<probe>_kw_max`` and
    ``<probe>_binding`` per probe).
    """
    cols = data.to_pydict()
    probes = [k[: -len("_kw_max")] for k in cols if k.endswith("_kw_max")]
    n = data.num_rows
    by_net: dict[str, list[int]] = {}
    for i, nid in enumerate(cols["network_id"]):
        by_net.setdefault(nid, []).append(i)
    meta = {k.decode(): v.decode() for k, v in (data.schema.metadata or {}).items()}
    info = [(label("points", lang), str(n)), (label("network_summary", lang), str(len(by_net)))]
    info += [(esc(k), esc(v)) for k, v in meta.items()]
    body = [f"<h1>{label('capacity', lang)}{': ' + esc(heading) if heading else ''}</h1>", kv_table(info, "map-info")]
    summary_rows = []
    for nid, rows in by_net.items():
        cells = [f'<td><a href="#net-{esc(nid)}">{esc(nid)}</a></td>', f'<td class="num">{len(rows)}</td>']
        for p in probes:
            vals = [cols[f"{p}_kw_max"][i] for i in rows if cols[f"{p}_kw_max"][i] is not None]
            finite = [v for v in vals if math.isfinite(v)]
            cells.append(f'<td class="num">{min(finite):.1f} – {max(finite):.1f}</td>' if finite
                         else f'<td class="num">{label("none", lang)}</td>')  # fmt: skip
        summary_rows.append(cells)
    head = [label("network", lang), label("points", lang)] + [f"{label(p, lang)} [kW]" for p in probes]
    body.append(f"<h2>{label('network_summary', lang)}</h2>" + table(head, summary_rows))
    for nid, rows in by_net.items():
        order = sorted(rows, key=lambda i: (cols["distance_km"][i] or 0.0, cols["bus"][i]))
        series = []
        for p in probes:
            xs, ys, tips = [], [], []
            for i in order:
                v = cols[f"{p}_kw_max"][i]
                if v is None or not math.isfinite(v):
                    continue
                xs.append(cols["distance_km"][i])
                ys.append(v)
                tips.append(f"{cols['metering_point_id'][i]}: {v:.1f} kW ({cols[f'{p}_binding'][i]})")
            series.append(Series(label(p, lang), xs, ys, CAPACITY_COLORS.get(p, "#3c4043"), line=False, hover=tips))
        chart = line_chart(series, x_label=label("distance_km", lang), y_label=label("largest_kw", lang))
        rows_html = []
        for i in order:
            cells = [f"<td>{esc(cols['metering_point_id'][i])}</td>", f'<td class="num">{cols["bus"][i]}</td>',
                     f'<td class="num">{number(cols["distance_km"][i], 3)}</td>',
                     f'<td class="num">{number(cols["main_fuse_a"][i], 3)}</td>']  # fmt: skip
            evaluated = cols["evaluated"][i]
            for p in probes:
                cells.append(_kw_cell(cols[f"{p}_kw_max"][i] if evaluated else None, cols[f"{p}_binding"][i], lang))
            fuse = cols["main_fuse_max_a"][i]
            cells.append(f'<td class="num">{number(fuse, 4) if fuse is not None else ""}<br>'
                         f'<span class="meta">{esc(cols["main_fuse_binding"][i] or "")}</span></td>')  # fmt: skip
            rows_html.append(cells)
        head = [label("metering_point", lang), label("bus", lang), label("distance_km", lang),
                label("main_fuse", lang) + " [A]"] + [f"{label(p, lang)} [kW]" for p in probes] + [
                label("largest_fuse", lang) + " [A]"]  # fmt: skip
        body.append(f'<section id="net-{esc(nid)}"><h2>{label("network", lang)} {esc(nid)}</h2>{chart}'
                    + table(head, rows_html) + "</section>")  # fmt: skip
    return page(label("capacity", lang), "".join(body), lang)
