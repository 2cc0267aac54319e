"""Protection checks of a new main protection (gG fuse or breaker) or a new KV: service cable, selectivity to the
upstream fuse and to the KV, selectivity of the upstream fuse above a new KV, disconnection at the minimum fault
current (the OV's and the KV's)."""

from __future__ import annotations

import math

from powercheck.models import LimitKind
from powercheck.rules.checks.base import CheckBlock, CheckInput, measured
from powercheck.rules.devices import disconnection_current, fuse_above_device
from powercheck.rules.policy import PolicyKey
from powercheck.rules.rule_ids import RuleId


def _fuse_rows(c: CheckInput) -> list[int]:
    """Notifications whose job sets a (new) fuse (found once per check input: six checks ask)."""
    state = c.__dict__  # a frozen dataclass's own dict: the rows are kept outside its fields
    rows = state.get("_fuse_rows")
    if rows is None:
        cases = c.cases
        rows = state["_fuse_rows"] = [
            int(k) for k in c.rows if cases[k].fuse_changed and cases[k].fuse_after_a is not None
        ]
    return list(rows)


def service_cable(c: CheckInput) -> list[CheckBlock]:
    """PROT.SERVICE_CABLE: the service cable carries the new fuse's rated current."""
    arr = c.grid.arrays
    rows = _fuse_rows(c)
    value, limit, detail = [], [], []
    for k in rows:
        case = c.cases[k]
        new_cable = case.notification.service_cable_ampacity_a
        ampacity = float(c.grid.customers.service_cable_ampacity_a[case.location.cp_row])
        text = "service cable ampacity from the customer index"
        if new_cable is not None:
            ampacity, text = float(new_cable), "ampacity of the new service cable in the notification"
        if not math.isfinite(ampacity):
            line_row = arr.service_line_row[case.location.bus_row]
            if line_row >= 0:
                ampacity = float(arr.line_i_max_a[line_row])
                text = f"service line {int(arr.line_ids[line_row])} of the grid model ({ampacity:.0f} A rated)"
            else:
                ampacity = math.nan
                text = "no service line between the bus and the transformer and none in the customer index"
        value.append(case.fuse_after_a)
        limit.append(ampacity)
        detail.append(text)
    return [
        measured(
            RuleId.PROT_SERVICE_CABLE,
            rows,
            value,
            limit,
            LimitKind.MAX,
            "A",
            name="Service cable ampacity at least the new main fuse",
            detail=detail,
        )
    ]


def _upstream_fuse(c: CheckInput, k: int) -> tuple[float, str, tuple[str, ...]]:
    """The upstream (feeder/transformer) fuse of notification ``k``: on record, else assumed from the feeder cable."""
    location = c.cases[k].location
    return upstream_fuse_text(c.grid, c.policy, location.cp_row, location.bus_row)


def upstream_fuse_of(grid, policy, cp_row: int, bus_row: int) -> float:
    """The upstream fuse at a customer point [A] (on record, else assumed from the feeder cable; NaN: unknown)."""
    return upstream_fuse_text(grid, policy, cp_row, bus_row)[0]


def upstream_fuse_text(grid, policy, cp_row: int, bus_row: int) -> tuple[float, str, tuple[str, ...]]:
    """The upstream fuse at a customer point [A], where it comes from, and the assumption it uses."""
    arr = grid.arrays
    upstream = float(grid.customers.upstream_fuse_a[cp_row])
    if math.isfinite(upstream):
        return upstream, f"upstream fuse {upstream:g} A from the customer index", ()
    feeder_row = arr.feeder_line_row[bus_row]
    if feeder_row < 0:
        text = "missing data: no upstream fuse in the customer index and no feeder cable in the grid model"
        return math.nan, text, ()
    key = PolicyKey.UPSTREAM_FUSE_FROM_FEEDER_CABLE
    share = policy.number(key)
    rated = float(arr.line_i_max_a[feeder_row])
    sizes = [s for s in policy.value(PolicyKey.STANDARD_FUSE_SIZES_A) if s <= share * rated + 1e-9]
    if not sizes:
        return math.nan, f"missing data: no standard fuse fits the {rated:.0f} A feeder cable", ()
    upstream = float(max(sizes))
    text = (
        f"upstream fuse {upstream:g} A assumed (not in the customer index): the largest standard size within "
        f"{share:g} x the {rated:.0f} A rating of feeder cable {int(arr.line_ids[feeder_row])} (policy {key})"
    )
    return upstream, text, (f"policy:{key}",)


def ik_max_a(c: CheckInput, k: int) -> float:
    """Maximum 3-phase fault current at the bus of notification ``k``: c_max U / (sqrt3 |Z1 max|) [A]."""
    arr = c.grid.arrays
    b = c.cases[k].location.bus_row
    z = math.hypot(float(arr.rk1_max[b]), float(arr.xk1_max[b]))
    return c.policy.number(PolicyKey.SC_C_MAX) * float(arr.u_ll_v[b]) / (math.sqrt(3.0) * z) if z > 0 else math.nan


def _selectivity_blocks(c: CheckInput, rule: RuleId, items: list[tuple[int, float, str, tuple[str, ...]]],
                        what: str) -> list[CheckBlock]:  # fmt: skip
    """Selectivity of a gG fuse above the OV of each (row, fuse [A], text, assumptions) item."""
    groups: dict[tuple[str, str], list] = {}
    for k, fuse_a, text, used in items:
        device = c.cases[k].device
        if not math.isfinite(fuse_a):
            groups.setdefault(("", "ratio"), []).append((k, math.nan, math.nan, None, text, used, 0, ""))
            continue
        results = fuse_above_device(fuse_a, device, ik_max_a(c, k), c.policy, what=what)
        for seq, r in enumerate(results):
            detail = f"{text}; {r.text}" if text else r.text
            groups.setdefault((r.name, r.unit), []).append(
                (k, r.value, r.limit, str(r.key), detail, used + r.assumptions, seq, r.name)
            )
    blocks = []
    for (_name, unit), rows in groups.items():
        blocks.append(
            measured(
                rule,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                LimitKind.MIN,
                unit,
                name=[r[7] or f"{what} discriminates with the main protection" for r in rows],
                limit_key=[r[3] for r in rows],
                assumptions=[r[5] for r in rows],
                detail=[r[4] for r in rows],
                seq=[r[6] for r in rows],
            )
        )
    return blocks


def selectivity(c: CheckInput) -> list[CheckBlock]:
    """PROT.SELECTIVITY: the upstream fuse discriminates with the new main protection (fuse or breaker)."""
    items = []
    for k in _fuse_rows(c):
        upstream, text, used = _upstream_fuse(c, k)
        items.append((k, upstream, text, used))
    return _selectivity_blocks(c, RuleId.PROT_SELECTIVITY, items, "upstream fuse")


def _kv_rows(c: CheckInput) -> list[tuple[int, float, str]]:
    """Notifications whose KV matters, with the KV after the job [A] and where it comes from: a job that sets a
    main protection at a point with a KV (customer index, or an approved kv_change in the ledger), and a kv_change
    (the new KV against the main protection on record or after)."""
    fuse_rows = set(_fuse_rows(c))
    out = []
    for k in c.rows:
        k = int(k)
        case = c.cases[k]
        if case.kv_a is None or not (k in fuse_rows or case.kv_changed):
            continue
        out.append((k, float(case.kv_a), f"KV {case.kv_a:g} A ({case.kv_origin})"))
    return out


def kv_selectivity(c: CheckInput) -> list[CheckBlock]:
    """PROT.KV_SELECTIVITY: the KV (short-circuit protection before the meter) discriminates with the OV after the
    job (the new OV, or the one on record under a new KV)."""
    items = []
    for k, kv, text in _kv_rows(c):
        if c.cases[k].device is None:
            text = f"missing data: {text}, but no main protection on record or notified to discriminate with"
            items.append((k, math.nan, text, ()))
        else:
            items.append((k, kv, text, ()))
    return _selectivity_blocks(c, RuleId.PROT_KV_SELECTIVITY, items, "KV")


def kv_upstream_selectivity(c: CheckInput) -> list[CheckBlock]:
    """PROT.KV_UPSTREAM_SELECTIVITY: the upstream (feeder) fuse discriminates with a new KV (gG above gG: the
    rating ratio, as PROT.SELECTIVITY); the upstream fuse assumed from the feeder cable is named when not on record."""
    key = PolicyKey.SELECTIVITY_RATIO_MIN
    ratio = c.policy.number(key)
    rows, value, detail, used = [], [], [], []
    ratio_keys = tuple(c.policy.assumption_keys(key))
    for k, kv, text in _kv_rows(c):
        if not c.cases[k].kv_changed:
            continue
        upstream, up_text, assumed = _upstream_fuse(c, k)
        rows.append(k)
        value.append(upstream / kv if math.isfinite(upstream) else math.nan)
        detail.append(f"{up_text}; {text}" if math.isfinite(upstream) else up_text)
        used.append(assumed + ratio_keys)
    return [
        measured(
            RuleId.PROT_KV_UPSTREAM_SELECTIVITY,
            rows,
            value,
            [ratio] * len(rows),
            LimitKind.MIN,
            "ratio",
            name="Upstream fuse discriminates with the new KV (rating ratio)",
            limit_key=str(key),
            assumptions=used,
            detail=detail,
        )
    ]


def kv_fault_current(c: CheckInput) -> list[CheckBlock]:
    """PROT.KV_FAULT_CURRENT: the minimum fault current melts the KV (gG) within 5 s."""
    rows, limit, detail, used = [], [], [], []
    key = PolicyKey.FUSE_GG_GATES_A
    keys = tuple(c.policy.assumption_keys(PolicyKey.SC_C_MIN, key))
    for k, kv, text in _kv_rows(c):
        i5 = c.policy.fuse_melting_5s(kv)
        rows.append(k)
        limit.append(math.nan if i5 is None else i5)
        detail.append(
            f"{text}, gG: I_max(5 s) = {i5:g} A"
            if i5 is not None
            else f"missing data: no 5-s melting current of a {kv:g} A gG fuse (KV) in policy {key}"
        )
        used.append(keys)
    return [
        measured(
            RuleId.PROT_KV_FAULT_CURRENT,
            rows,
            c.evaluation.ik_min_a[rows] if rows else [],
            limit,
            LimitKind.MIN,
            "A",
            name="Minimum fault current melts the KV within 5 s",
            limit_key=str(key),
            assumptions=used,
            detail=detail,
        )
    ]


def fault_current(c: CheckInput) -> list[CheckBlock]:
    """PROT.FAULT_CURRENT: the minimum fault current disconnects the new main protection (device's own criterion)."""
    arr = c.grid.arrays
    rows = _fuse_rows(c)
    limit, detail, keys, used = [], [], [], []
    sc_keys = tuple(c.policy.assumption_keys(PolicyKey.SC_C_MIN))
    for k in rows:
        case = c.cases[k]
        crit = disconnection_current(case.device, c.policy)
        kind = "line-to-neutral (TN)" if arr.system_tn[case.location.bus_row] else "line-to-line (IT)"
        limit.append(math.nan if crit.value is None else crit.value)
        keys.append(str(crit.key))
        where = f"minimum {kind} fault current at bus {case.location.bus}"
        detail.append(f"{where} against {crit.text}" if crit.value is not None else crit.text)
        used.append(sc_keys + crit.assumptions)
    return [
        measured(
            RuleId.PROT_FAULT_CURRENT,
            rows,
            c.evaluation.ik_min_a[rows] if rows else [],
            limit,
            LimitKind.MIN,
            "A",
            name="Minimum fault current disconnects the new main protection",
            limit_key=keys,
            assumptions=used,
            detail=detail,
        )
    ]
