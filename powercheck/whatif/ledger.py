"""Start a what-if study from the region with the capacity ledger's approved requests applied.

The requests whose reservations the screening applies before its next assessment (statuses
approved, approved with conditions and built: :data:`powercheck.ledger.ACTIVE`) add their
reserved load and export at their bus, at every studied step: the load scaled by the
feeder's base-load shape (peak 1), the export by the PV profile (peak 1). Approvals older
than the policy's validity period count as expired and are left out (the ledger file is
read only, never changed). A single-phase component goes on phase a (L-N) or the pair ab
(L-L): the ledger does not record the phase -- an assumption named in the study.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from powercheck.ledger.model import ACTIVE, APPROVED, LedgerRequest
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN

LEDGER_ASSUMPTION = (
    "whatif: ledger reservations follow the base-load shape (load) and the PV profile (export); single-phase "
    "components on phase a / pair ab (the ledger does not record the phase)"
)


@dataclass(frozen=True)
class LedgerLoad:
    """One reserved component of an active ledger request, at its network and bus."""

    notification_id: str
    network_id: str
    bus: int
    conn: int
    p_kw: float
    cos_phi: float
    export: bool


def read_ledger(path: str | Path, valid_days: float, now: datetime | None = None) -> list[LedgerRequest]:
    """The active requests of a ledger file, opened read-only; approvals older than ``valid_days`` left out."""
    from powercheck.ledger.store import LedgerStore

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--ledger: {path} not found")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        store = LedgerStore(connection=con)
        requests = store.list()
        con.close()
    except sqlite3.Error as exc:
        raise ValueError(f"--ledger: {path} is not a powercheck ledger ({exc})") from None
    now = now or datetime.now(UTC)
    limit = timedelta(days=valid_days)
    out = []
    for r in requests:
        if r.status not in ACTIVE:
            continue
        if r.status in APPROVED and r.decided_at is not None and now - r.decided_at > limit:
            continue  # expired: the screening would expire it before its next assessment
        out.append(r)
    return out


def ledger_loads(requests: list[LedgerRequest]) -> tuple[LedgerLoad, ...]:
    """The reserved components of ``requests`` that have a network and bus."""
    out = []
    for r in requests:
        if r.network_id is None or r.bus is None:
            continue
        for comps, export in ((r.reservation.load, False), (r.reservation.export, True)):
            for c in comps:
                out.append(LedgerLoad(r.notification_id, r.network_id, int(r.bus), c.conn, c.p_kw, c.cos_phi, export))
    return tuple(out)


def ledger_bus_power(
    loads: tuple[LedgerLoad, ...],
    network_id: str | None,
    bus_index: np.ndarray,
    load_shape: np.ndarray,
    pv_shape: np.ndarray,
    it: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per step, bus and phase: ``(wye_p, wye_q, delta_p, delta_q)`` of the ledger components of ``network_id``.

    ``load_shape`` and ``pv_shape`` are (T,) with peak 1 over the year; consumption positive [MW], [Mvar];
    an export component at cos phi < 1 absorbs reactive power.
    """
    t = load_shape.shape[0]
    n_bus = bus_index.shape[0]
    wye_p, wye_q = np.zeros((t, n_bus, 3)), np.zeros((t, n_bus, 3))
    delta_p, delta_q = np.zeros((t, n_bus, 3)), np.zeros((t, n_bus, 3))
    pos = {int(b): i for i, b in enumerate(bus_index)}
    for item in loads:
        if item.network_id != network_id:
            continue
        if item.bus not in pos:
            raise ValueError(f"--ledger: request {item.notification_id}: bus {item.bus} is not in network {network_id}")
        b = pos[item.bus]
        p = item.p_kw / 1000.0 * (pv_shape if item.export else load_shape)
        q = abs(p) * math.tan(math.acos(min(1.0, max(item.cos_phi, 1e-6))))
        p = -p if item.export else p
        if item.conn == CONN_3PH:
            (delta_p if it else wye_p)[:, b, :] += p[:, None] / 3.0
            (delta_q if it else wye_q)[:, b, :] += q[:, None] / 3.0
        elif item.conn == CONN_LN and not it:
            wye_p[:, b, 0] += p
            wye_q[:, b, 0] += q
        elif item.conn in (CONN_LL, CONN_LN):  # L-N in an IT network cannot exist: taken as L-L
            delta_p[:, b, 0] += p
            delta_q[:, b, 0] += q
        else:
            raise ValueError(f"--ledger: request {item.notification_id}: unknown connection code {item.conn}")
    return wye_p, wye_q, delta_p, delta_q
