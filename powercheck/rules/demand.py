"""Stage 1: notification -> :class:`DemandCase` (what the job adds, where, on which connection).

Demand model (all numbers per notification; every assumption is named in the checks that
use it):

* New coincident demand. With a power budget: ``max_demand_kw``. Without one: the listed
  consuming appliances on top of the existing demand, and -- when the fuse changes --
  at least ``fuse_demand_factor`` x the new fuse's capacity at ``demand_cos_phi``.
* Increase ``dP = customer_coincidence * max(0, new - existing_peak_kw)``.
* Single-phase consuming appliances take their share of ``dP`` on their own connection
  (worst case: all on the same phase); the rest is balanced three-phase at
  ``demand_cos_phi``. A single-phase supply carries everything single-phase.
* Export: the budget's ``max_export_kw`` minus existing export, or the sum of the
  generating appliances; on a single-phase supply the export is single-phase too.

The result is one frozen :class:`DemandCase` per notification with the load and export
components (connection, kW, cos phi) the evaluation stage turns into currents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from heapq import merge
from itertools import islice
from operator import is_not

from powercheck.ledger.model import ACTIVE, APPROVED, LedgerRequest
from powercheck.ledger.state import CapacityState
from powercheck.models import (
    Appliance,
    ApplianceKind,
    Connection,
    Message,
    NetworkSystem,
    Notification,
    PowerBudget,
    Stage,
    SupplyPhases,
)
from powercheck.quality.codes import CONN_3PH, CONN_LL, CONN_LN, SQRT3, conn_code
from powercheck.records import maker, once
from powercheck.rules.accounting import (
    CONSUMING,
    GENERATING,
    AccountedAppliance,
    Accounting,
    AccountingInput,
    accounts,
    accounts_batch,
    make_accounted_appliance,
    notifiable,
    required_fuse_a,
)
from powercheck.rules.completeness import (
    FuseAfterJob,
    fuse_after_job,
    installed_appliances,
    missing_datasheet_values,
    missing_fields,
    requested_info,
)
from powercheck.rules.context import GridView
from powercheck.rules.devices import Device, device_of_record, resolve_device
from powercheck.rules.policy import PerPolicy, Policy, PolicyKey
from powercheck.texts import msg


@dataclass(frozen=True, slots=True)
class Component:
    """One load or export component: a power on one kind of connection."""

    conn: int
    """Connection code (:mod:`powercheck.quality.codes`)."""
    p_kw: float
    """Active power [kW]."""
    cos_phi: float
    """Power factor [-]."""


@dataclass(frozen=True)  # no __slots__: made by powercheck.records.maker
class ApplianceCase:
    """One appliance row of a notification with the policy defaults filled in."""

    index: int
    """Position in ``notification.appliances``."""
    appliance: Appliance
    conn: int
    cos_phi: float
    start_current_ratio: float
    cos_phi_start: float
    starts_per_hour: float
    """Starts per hour of all units of the row [1/h]."""
    start_duration_s: float | None
    """Duration of one start at the start current [s] (None: no start current)."""
    active_intervals: float
    """10-min intervals of a 2-h window in which it switches at its rate (operating pattern, for Plt) [-]."""
    defaults_used: tuple[str, ...]
    """Policy defaults used for missing values, as 'policy:appliance_defaults.<kind>.<field>'."""
    total_kw: float
    """Rated power of all units of the row [kW]."""
    label: str
    """``<kind>#<index>``, as checks, reasons and measures name the row (made once: the texts use it often)."""

    def accounted(self) -> AccountedAppliance:
        """What the accounting needs of the row (made once per row: a measure's variants share their base's
        unchanged rows)."""
        state = self.__dict__
        got = state.get("_accounted")
        if got is None:
            got = state["_accounted"] = make_accounted_appliance(
                label=self.label,
                kind=self.appliance.kind,
                conn=self.conn,
                total_kw=self.total_kw,
                unit_kw=self.appliance.rated_kw,
                cos_phi=self.cos_phi,
                start_current_ratio=self.start_current_ratio,
                start_duration_s=self.start_duration_s,
                defaults_used=self.defaults_used,
            )
        return got


@dataclass(frozen=True, slots=True)
class Location:
    """Where the metering point sits in the grid model."""

    cp_row: int
    """Customer-index row."""
    bus_row: int
    """Global bus row of the region arrays."""
    network_id: str
    bus: int
    """pandapower bus index in its network."""


@dataclass(frozen=True, slots=True)
class Completion:
    """A completion notice compared with the request the ledger approved under its notification id."""

    approved: LedgerRequest | None
    """The approved request (None: there is none to compare with)."""
    differences: tuple[str, ...] = ()
    """What the completed installation does differently (empty: it matches)."""
    why: str | None = None
    """Why there is nothing to compare with."""


def compare_completion(n: Notification, state: CapacityState | None, record_fuse_a: float | None) -> Completion:
    """Compare a completion notice with its approved request: fuse after, KV after, phases, appliances."""
    if state is None:
        return Completion(None, why="no capacity ledger to find the approved request in")
    approved = state.requests.get(n.notification_id)
    if approved is None:
        return Completion(None, why=f"no request {n.notification_id} in the ledger")
    if approved.status not in APPROVED:
        return Completion(None, why=f"request {n.notification_id} is {approved.status.value}, not approved")
    diffs = []
    fuse = fuse_after_job(n, record_fuse_a).rating_a
    if approved.fuse_after_a is not None and (fuse is None or abs(fuse - approved.fuse_after_a) > 1e-9):
        built = "none" if fuse is None else f"{fuse:g} A"
        diffs.append(f"main fuse after: approved {approved.fuse_after_a:g} A, built {built}")
    if approved.kv_after_a is not None:
        kv = n.kv_fuse_after_a
        if kv is None or abs(kv - approved.kv_after_a) > 1e-9:
            built = "none notified" if kv is None else f"{kv:g} A"
            diffs.append(f"KV after: approved {approved.kv_after_a:g} A, built {built}")
    phases = approved.reservation.supply_phases
    if phases is not None and phases != n.supply_phases.value:
        diffs.append(f"supply phases: approved {phases}, built {n.supply_phases.value}")
    if approved.reservation.supply_phases is not None:  # the request recorded its appliances
        was = list(approved.reservation.appliances)
        now = list(installed_appliances(n))
        for item in list(was):
            if item in now:
                now.remove(item)
                was.remove(item)

        def text(a: tuple) -> str:
            return f"{a[3]} x {a[0]} {a[1]:g} kW {a[2]}"

        diffs += [f"approved but not built: {text(a)}" for a in was]
        diffs += [f"built but not approved: {text(a)}" for a in now]
    return Completion(approved, tuple(diffs))


@dataclass(frozen=True)  # no __slots__: made by powercheck.records.maker
class DemandCase:
    """What one notification adds to the grid, ready for evaluation."""

    notification: Notification
    missing: tuple[Message, ...] = ()
    requested: tuple[Message, ...] = ()
    """Datasheet values and attachments the grid owner asks for (request_info), by name."""
    screening_defaults: tuple[Message, ...] = ()
    """Screening study only: the appliance defaults used in place of missing datasheet values (named)."""
    completion: Completion | None = None
    """A completion notice's comparison with its approved request (None: a pre-notification)."""
    location: Location | None = None
    system_mismatch: Message | None = None
    grid_problem: Message | None = None
    """Why the grid model cannot be computed at the bus (islanded, no transformer, ...); None: it can."""
    fuse_after_a: float | None = None
    """The fuse limiting the installation after the job [A] (see ``completeness.fuse_after_job``)."""
    fuse_changed: bool = False
    device: Device | None = None
    """The main protection (OV) after the job: gG fuse, MCB or adjustable breaker (:mod:`.devices`)."""
    kv_a: float | None = None
    """The short-circuit protection (KV, gG fuse) before the meter after the job [A] (None: none known)."""
    kv_origin: str = ""
    """Where :attr:`kv_a` comes from (the notification, a ledger request or the customer index)."""
    kv_changed: bool = False
    """True when the job sets a new KV (a kv_change)."""
    existing_kw: float = 0.0
    """The customer's existing peak in the base case [kW]."""
    d_p_kw: float = 0.0
    """Coincident demand increase [kW]."""
    export_kw: float = 0.0
    """Export increase at low load [kW]."""
    demand_cos_phi: float = 1.0
    """Power factor of the demand increase (the budget's, else the policy's demand_cos_phi)."""
    demand_assumptions: tuple[str, ...] = ()
    export_assumptions: tuple[str, ...] = ()
    appliances: tuple[ApplianceCase, ...] = ()
    loads: tuple[Component, ...] = ()
    exports: tuple[Component, ...] = ()
    s1_load_kva: float = 0.0
    """Single-phase share of the added load [kVA]."""
    s1_export_kva: float = 0.0
    """Single-phase share of the added export [kVA]."""
    accounting: Accounting | None = None
    """The installation after the job against its fuses (power accounting)."""
    accounting_before: Accounting | None = None
    """The same installation without what the job adds (the inverse answers scale between the two)."""
    meter_fuse_after_a: float | None = None
    """Meter fuse (MV) after the job when known [A]."""
    required_fuse_a: float | None = None
    """Smallest standard fuse that carries the installation after the job [A]."""
    notifiable: str | None = None
    """Why the job had to be notified (None: below every notification threshold)."""
    conflicts: tuple[Message, ...] = ()
    """Other ledger requests this one contradicts: the first :data:`MAX_CONFLICTS_LISTED` named, the rest counted
    in one ``conflict_more`` message."""
    conflict_count: int = 0
    """How many ledger requests this one contradicts (all of them, named or counted)."""
    ledger_revision: int | None = None
    """Revision of this notification already in the ledger (a replay when equal to this one)."""

    @once
    def evaluable(self) -> bool:
        """Complete, located and on the notified system: the grid checks run (worked out once per case: the
        case is frozen, and the stages ask it many times)."""
        return (
            not self.missing
            and not self.requested
            and self.completion is None
            and self.location is not None
            and self.system_mismatch is None
            and self.grid_problem is None
        )


_make_demand_case = maker(DemandCase)
_THREE = SupplyPhases.THREE
_make_appliance_case = maker(ApplianceCase)


def supply_conn(system: NetworkSystem, supply: SupplyPhases) -> int:
    """Connection code of the customer's service after the work."""
    if supply is SupplyPhases.THREE:
        return CONN_3PH
    return CONN_LN if system is NetworkSystem.TN_400 else CONN_LL


def fuse_capacity_kva(fuse_a: float, u_ll_v: float, conn: int) -> float:
    """Apparent power a fuse lets through at nominal voltage [kVA]."""
    if conn == CONN_3PH:
        return SQRT3 * u_ll_v * fuse_a / 1000.0
    if conn == CONN_LN:
        return u_ll_v / SQRT3 * fuse_a / 1000.0
    return u_ll_v * fuse_a / 1000.0


@dataclass(frozen=True, slots=True)
class _KindDefaults:
    """One appliance kind's ``appliance_defaults`` (None: the policy gives no default for the value)."""

    value: str
    cos_phi: float | None
    start_current_ratio: float | None
    starts_per_hour: float | None
    cos_phi_start: float | None
    start_duration_s: float | None
    active_intervals: float | None
    """From ``operating_minutes_per_2h``: 10-min intervals of a 2-h window (at most 12)."""
    named: dict[str, str]
    """Field -> 'policy:appliance_defaults.<kind>.<field>'."""


@dataclass(frozen=True, slots=True)
class DemandTables:
    """What the demand stage looks up in a policy, made once per policy (:func:`demand_tables`) instead of per
    notification."""

    demand_cos_phi: float
    customer_coincidence: float
    fuse_demand_factor: float
    flicker_active_intervals: float
    coincidence_assumptions: tuple[str, ...]
    cos_assumptions: tuple[str, ...]
    fuse_cos_assumptions: tuple[str, ...]
    velander_assumptions: tuple[str, ...]
    kinds: dict[ApplianceKind, _KindDefaults]


def _intervals(minutes: float) -> float:
    return float(min(12, math.ceil(minutes / 10.0 - 1e-9)))


def _make_demand_tables(policy: Policy) -> DemandTables:
    defaults: dict[str, dict[str, float]] = policy.value(PolicyKey.APPLIANCE_DEFAULTS)
    kinds = {}
    for kind in ApplianceKind:
        row = defaults.get(kind.value, {})

        def get(name: str, row=row) -> float | None:
            return float(row[name]) if name in row else None

        minutes = row.get("operating_minutes_per_2h")
        kinds[kind] = _KindDefaults(
            value=kind.value,
            cos_phi=get("cos_phi"),
            start_current_ratio=get("start_current_ratio"),
            starts_per_hour=get("starts_per_hour"),
            cos_phi_start=get("cos_phi_start"),
            start_duration_s=get("start_duration_s"),
            active_intervals=None if minutes is None else _intervals(minutes),
            named={
                name: f"policy:appliance_defaults.{kind.value}.{name}"
                for name in (
                    "cos_phi",
                    "start_current_ratio",
                    "starts_per_hour",
                    "cos_phi_start",
                    "start_duration_s",
                    "operating_minutes_per_2h",
                )
            },  # fmt: skip
        )
    keys = policy.assumption_keys
    return DemandTables(
        demand_cos_phi=policy.number(PolicyKey.DEMAND_COS_PHI),
        customer_coincidence=policy.number(PolicyKey.CUSTOMER_COINCIDENCE),
        fuse_demand_factor=policy.number(PolicyKey.FUSE_DEMAND_FACTOR),
        flicker_active_intervals=policy.number(PolicyKey.FLICKER_ACTIVE_INTERVALS),
        coincidence_assumptions=tuple(keys(PolicyKey.CUSTOMER_COINCIDENCE)),
        cos_assumptions=tuple(keys(PolicyKey.DEMAND_COS_PHI)),
        fuse_cos_assumptions=tuple(keys(PolicyKey.FUSE_DEMAND_FACTOR, PolicyKey.DEMAND_COS_PHI)),
        velander_assumptions=tuple(keys(PolicyKey.VELANDER_K1, PolicyKey.VELANDER_K2)),
        kinds=kinds,
    )


_DEMAND_TABLES = PerPolicy("demand.tables", _make_demand_tables)


def demand_tables(policy: Policy) -> DemandTables:
    """The policy's :class:`DemandTables` (made once per policy)."""
    return _DEMAND_TABLES(policy)


_CONN_OF = {c: conn_code(c.value) for c in Connection}


def appliance_case(index: int, appliance: Appliance, policy: Policy) -> ApplianceCase:
    """An appliance with the policy's defaults for the values the installer left out."""
    return _appliance_case(index, appliance, demand_tables(policy))


def _appliance_case(index: int, appliance: Appliance, tables: DemandTables) -> ApplianceCase:
    d = tables.kinds[appliance.kind]
    kind = d.value
    used: list[str] = []
    given = appliance.__dict__  # the model's field values (a frozen pydantic model)

    def default(name: str, value: float | None) -> float:
        if value is None:
            raise KeyError(f"policy appliance_defaults.{kind}.{name} is missing")
        used.append(d.named[name])
        return value

    value = given["cos_phi"]
    cos_phi = float(value) if value is not None else default("cos_phi", d.cos_phi)
    value = given["start_current_ratio"]
    ratio = float(value) if value is not None else default("start_current_ratio", d.start_current_ratio)
    value = given["starts_per_hour"]
    starts = float(value) if value is not None else default("starts_per_hour", d.starts_per_hour)
    value = given["cos_phi_start"]
    if value is not None:
        cos_start = float(value)
    elif ratio > 1.0 and d.cos_phi_start is not None:
        cos_start = default("cos_phi_start", d.cos_phi_start)
    else:
        cos_start = cos_phi
    duration = None
    if ratio > 1.0:
        value = given["start_duration_s"]
        if value is not None:
            duration = float(value)
        elif d.start_duration_s is not None:
            duration = default("start_duration_s", d.start_duration_s)
    value = given["operating_minutes_per_2h"]
    if value is not None:
        active = _intervals(value)
    elif d.active_intervals is not None:
        active = default("operating_minutes_per_2h", d.active_intervals)
    else:
        active = tables.flicker_active_intervals
    quantity = given["quantity"]
    return _make_appliance_case(
        index=index,
        active_intervals=active,
        appliance=appliance,
        conn=_CONN_OF[given["connection"]],
        cos_phi=cos_phi,
        start_current_ratio=ratio,
        cos_phi_start=cos_start,
        starts_per_hour=starts * quantity,
        start_duration_s=duration,
        defaults_used=tuple(used),
        total_kw=given["rated_kw"] * quantity,
        label=f"{kind}#{index}",
    )


def _locate(n: Notification, row: int, grid: GridView) -> tuple[Location | None, Message | None]:
    if row < 0:
        return None, None
    cust = grid.customers
    loc = Location(
        cp_row=int(row),
        bus_row=int(cust.bus_row[row]),
        network_id=str(cust.network_id[row]),
        bus=int(cust.bus[row]),
    )
    grid_tn = bool(grid.arrays.system_tn[loc.bus_row])
    if grid_tn == (n.network_system is NetworkSystem.TN_400):
        return loc, None
    actual = "TN_400" if grid_tn else "IT_230"
    return loc, msg("grid_system", notified=n.network_system.value, network=loc.network_id, actual=actual)


def _request_params(r: LedgerRequest) -> dict:
    by = msg("by_installer", installer=r.installer_id) if r.installer_id else ""
    return {"other": r.notification_id, "revision": r.revision, "status": r.status.value, "by": by}


MAX_CONFLICTS_LISTED = 5
"""Conflicts a decision names one by one; further ones are counted in one message. A metering point with
hundreds of open requests (a resubmitting client) still gives a readable decision, and the messages made per
notification stay bounded instead of growing with the requests at its point."""


_OPEN_CONFLICT = 1
_FUSE_CONFLICT = 2


def _conflict_kind(n: Notification, other: LedgerRequest) -> int:
    """Whether ``other`` conflicts with ``n`` at their metering point: :data:`_OPEN_CONFLICT` (open, from another
    installer or an unknown one), :data:`_FUSE_CONFLICT` (approved, from the same installer, setting a main fuse
    that contradicts ``n``'s fuse before) or 0 (none)."""
    if not other.open:
        return 0
    if other.installer_id is None or other.installer_id != n.installer_id:
        return _OPEN_CONFLICT
    if (
        other.status in APPROVED
        and other.fuse_after_a is not None
        and n.main_fuse_before_a is not None
        and abs(other.fuse_after_a - n.main_fuse_before_a) > 1e-9
    ):
        return _FUSE_CONFLICT
    return 0


def _conflict_message(kind: int, n: Notification, other: LedgerRequest) -> Message:
    if kind == _OPEN_CONFLICT:
        return msg("conflict_open", **_request_params(other))
    return msg("conflict_fuse", **_request_params(other), before=n.main_fuse_before_a, after=other.fuse_after_a)


def _ledger_view(
    n: Notification, state: CapacityState | None, preceding: Sequence[LedgerRequest] = (), revisions: bool = True
) -> tuple[tuple[Message, ...], int, list[LedgerRequest], int | None]:
    """Conflicts with the ledger (named up to :data:`MAX_CONFLICTS_LISTED`) and their count, the other active
    requests at the metering point, and this id's revision there.

    A conflict is a revision older than the one in the ledger (only with ``revisions``), an open request at the
    same metering point from another installer (or an unknown one), or a main fuse "before" that contradicts
    the fuse an approved request there sets. ``preceding`` are requests decided earlier in the same batch at
    the same point that the state does not hold yet.
    """
    if state is None:
        return (), 0, [], None
    conflicts: list[Message] = []
    count = 0
    own = state.requests.get(n.notification_id)
    if revisions and own is not None and own.revision > n.revision:
        params = _request_params(own)
        params["newer"] = params.pop("revision")
        conflicts.append(msg("conflict_revision", **params, revision=n.revision))
        count += 1
    mp, nid = n.metering_point_id, n.notification_id
    requests = state.requests
    # the ledger's requests at the point: open ones of other installers and the same installer's approvals with
    # another fuse, named in id order up to the bound and all counted, without walking the installer's own
    active = state.active_at(mp, excluding=nid)
    fuse_ids = [o.notification_id for o in active if _conflict_kind(n, o) == _FUSE_CONFLICT]
    named = merge(state.open_ids(mp, excluding=nid, installer=n.installer_id), fuse_ids)
    for other_id in islice(named, max(MAX_CONFLICTS_LISTED - len(conflicts), 0)):
        other = requests[other_id]
        conflicts.append(_conflict_message(_conflict_kind(n, other), n, other))
    count += state.open_count(mp, excluding=nid, installer=n.installer_id) + len(fuse_ids)
    # then the requests decided earlier in the batch
    for other in preceding:
        if other.notification_id == nid:
            continue
        kind = _conflict_kind(n, other)
        if kind:
            count += 1
            if len(conflicts) < MAX_CONFLICTS_LISTED:
                conflicts.append(_conflict_message(kind, n, other))
        if other.status in ACTIVE:
            active.append(other)
    if count > len(conflicts):
        conflicts.append(msg("conflict_more", count=count - len(conflicts)))
    return tuple(conflicts), count, active, own.revision if own is not None else None


def _appliance_kept(before: Appliance, after: Appliance) -> bool:
    """True when ``after`` (an appliance a measure changed) can miss no more values than ``before``: the same kind,
    no larger, no larger start current ratio, and every value ``before`` gives still given. Then the completeness
    rules (:func:`missing_fields`, :func:`requested_info`, which ask only for absent values of appliances above a
    size, and exempt a start power factor only below a start current ratio) find nothing new in it."""
    if after.kind is not before.kind or after.rated_kw > before.rated_kw:
        return False
    ratio = before.start_current_ratio
    if ratio is not None and (after.start_current_ratio is None or after.start_current_ratio > ratio):
        return False
    new = after.__dict__
    for name, value in before.__dict__.items():
        if value is None or value == {} or value == []:
            continue
        now = new[name]
        if now is None or now == {} or now == []:
            return False
    return True


def _variant_of(base: DemandCase, n: Notification) -> bool:
    """True when ``n`` is ``base``'s notification with appliances changed the way :func:`_appliance_kept` allows
    (every other field the same object): its completeness, location, ledger view, fuses, protection and KV are
    ``base``'s. A measure's variant (:mod:`powercheck.rules.measures`) of an evaluable notification usually is."""
    if not base.evaluable or base.accounting is None:
        return False
    b = base.notification
    if n is b:
        return True
    ours, theirs = n.__dict__, b.__dict__
    if len(ours) != len(theirs) or len(n.appliances) != len(b.appliances):
        return False
    if list(ours) == list(theirs):  # the fields in the same order (a model's): compared at C speed, by identity
        changed = sum(map(is_not, ours.values(), theirs.values()))
        if changed > (ours["appliances"] is not theirs["appliances"]):
            return False  # a field other than the appliances is another object
    else:
        get = theirs.get
        for name, value in ours.items():
            if value is not get(name, ours) and name != "appliances":
                return False
    for a, x in zip(n.appliances, b.appliances):
        if a is not x and not _appliance_kept(x, a):
            return False
    return True


def demand_case(
    n: Notification,
    row: int,
    grid: GridView,
    policy: Policy,
    state: CapacityState | None = None,
    preceding: Sequence[LedgerRequest] = (),
    screening: bool = False,
    base: DemandCase | None = None,
) -> DemandCase:
    """The demand case of one notification at customer-index ``row`` (-1: not in the index).

    ``screening``: a screening study -- challenging appliances without datasheet values are assessed on the
    policy's appliance defaults (named) instead of being answered with request_info.

    ``base``: the demand case of the notification ``n`` is a variant of (a measure's, at the same ``row`` with the
    same ``state`` and ``preceding``). When ``n`` only changes appliances within what :func:`_variant_of` allows,
    the site, completeness, fuse, protection and KV are taken from it and only what the appliances change is
    computed (the same case as without ``base``).
    """
    job = _job_of(n, row, grid, policy, state, preceding, screening, base)
    if isinstance(job, DemandCase):
        return job
    accounting, accounting_before = _accounts_of(job.site, policy)
    return _job_case(job, accounting, accounting_before, grid, policy)


def _job_of(
    n: Notification,
    row: int,
    grid: GridView,
    policy: Policy,
    state: CapacityState | None,
    preceding: Sequence[LedgerRequest],
    screening: bool,
    base: DemandCase | None,
) -> DemandCase | _Job:
    """:func:`demand_case` up to the power accounting: the final case when the grid checks cannot run, else the
    job whose accountings :func:`_job_case` needs."""
    if base is not None and _variant_of(base, n):
        defaults_used = ()
        if screening:
            defaults_used = tuple(
                msg("screening_defaults", index=i, kind=n.appliances[i].kind.value, fields=", ".join(fields))
                for i, fields in missing_datasheet_values(n, policy)
            )
        location = base.location
        conflicts, conflict_count, same_point, ledger_revision = _ledger_view(
            n, state, preceding, revisions=n.stage is not Stage.COMPLETION
        )
        fuse = FuseAfterJob(base.fuse_after_a, base.fuse_changed)
        device, kv_a, kv_origin, kv_changed = base.device, base.kv_a, base.kv_origin, base.kv_changed
        existing = base.existing_kw
        cp = location.cp_row
        u_ll = float(grid.arrays.u_ll_v[location.bus_row])
        existing_export = float(grid.customers.existing_export_kw[cp])
        supply = supply_conn(n.network_system, n.supply_phases)
        before = base.notification.appliances
        appliances = tuple(
            base.appliances[i] if a is before[i] else appliance_case(i, a, policy) for i, a in enumerate(n.appliances)
        )
    else:
        case = _site_case(n, row, grid, policy, state, preceding, screening)
        if isinstance(case, DemandCase):
            return case
        (defaults_used, location, conflicts, conflict_count, same_point, ledger_revision, fuse, device, kv_a,
         kv_origin, kv_changed, existing, u_ll, existing_export, supply) = case  # fmt: skip
        appliances = tuple(appliance_case(i, a, policy) for i, a in enumerate(n.appliances))
    return _prepare_job(n, policy, appliances, defaults_used, location, conflicts, conflict_count, same_point,
                        ledger_revision, fuse, device, kv_a, kv_origin, kv_changed, existing, u_ll, existing_export,
                        supply)  # fmt: skip


def _site_case(
    n: Notification,
    row: int,
    grid: GridView,
    policy: Policy,
    state: CapacityState | None,
    preceding: Sequence[LedgerRequest],
    screening: bool,
) -> DemandCase | tuple:
    """The notification's completeness, location, ledger view, fuses, protection and KV: the final case when
    the grid checks cannot run, else what :func:`_job_case` needs of them."""
    missing = tuple(missing_fields(n, policy))
    requested = () if missing else tuple(requested_info(n, policy, screening=screening))
    defaults_used = ()
    if screening:
        defaults_used = tuple(
            msg("screening_defaults", index=i, kind=n.appliances[i].kind.value, fields=", ".join(fields))
            for i, fields in missing_datasheet_values(n, policy)
        )
    location, mismatch = _locate(n, row, grid)
    # a completion notice may follow a newer revision of its request: no revision conflict there
    conflicts, conflict_count, same_point, ledger_revision = _ledger_view(
        n, state, preceding, revisions=n.stage is not Stage.COMPLETION
    )
    completion = None
    if n.stage is Stage.COMPLETION and not missing and not requested:
        record = float(grid.customers.main_fuse_a[location.cp_row]) if location is not None else None
        completion = compare_completion(n, state, record)
    problem = None
    if location is not None:
        why = grid.region.bus_problem(location.bus_row)
        if why is not None:
            problem = msg("grid_data", network=location.network_id, bus=location.bus, why=why)
    stop = missing or requested or completion is not None
    if stop or location is None or mismatch is not None or problem is not None:
        return _make_demand_case(
            notification=n,
            missing=missing,
            requested=requested,
            completion=completion,
            location=location,
            system_mismatch=mismatch,
            grid_problem=problem,
            conflicts=conflicts,
            conflict_count=conflict_count,
            ledger_revision=ledger_revision,
        )

    cust = grid.customers
    cp = location.cp_row
    u_ll = float(grid.arrays.u_ll_v[location.bus_row])
    existing = float(cust.existing_peak_kw[cp])
    existing_export = float(cust.existing_export_kw[cp])
    supply = supply_conn(n.network_system, n.supply_phases)
    record_fuse = cust.main_fuse_a[cp]
    record_device = None
    kv_record = float(cust.kv_fuse_a[cp])
    kv_a, kv_origin = (kv_record, "customer index") if math.isfinite(kv_record) else (None, "")
    for other in same_point:  # an approved fuse change at this point is the fuse before this job
        if other.fuse_after_a is not None:
            record_fuse = other.fuse_after_a
            record_device = device_of_record(other.device_after)
        if other.kv_after_a is not None:  # an approved KV change: the KV before this job
            kv_a, kv_origin = float(other.kv_after_a), f"ledger request {other.notification_id}"
    kv_changed = n.kv_fuse_after_a is not None
    if kv_changed:
        kv_a, kv_origin = float(n.kv_fuse_after_a), "notified (kv_fuse_after_a)"
    fuse = fuse_after_job(n, record_fuse)
    meter_only = n.main_fuse_after_a is None and n.meter_fuse_after_a is not None  # the fuse after is the MV
    device = resolve_device(
        n.main_device_after,
        fuse.rating_a,
        ledger=None if meter_only else record_device,
        code=None if meter_only else cust.main_device[cp],
        isd_multiple=float(cust.main_isd_multiple[cp]),
        ii_multiple=float(cust.main_ii_multiple[cp]),
    )
    return (defaults_used, location, conflicts, conflict_count, same_point, ledger_revision, fuse, device, kv_a,
            kv_origin, kv_changed, existing, u_ll, existing_export, supply)  # fmt: skip


@dataclass(slots=True)
class _Job:
    """A notification whose grid checks run, up to its power accounting (see :func:`_prepare_job`)."""

    notified: Notification
    n: Notification
    """The notification as the accounting sees it (a block notification's with its Velander budget)."""
    appliances: tuple[ApplianceCase, ...]
    accounted: list[AccountedAppliance]
    consuming: list[ApplianceCase]
    block_assumptions: tuple[str, ...]
    site: AccountingInput
    """What the accounting takes of the job."""
    defaults_used: tuple[Message, ...]
    location: Location
    conflicts: tuple[Message, ...]
    conflict_count: int
    ledger_revision: int | None
    fuse: FuseAfterJob
    device: Device | None
    kv_a: float | None
    kv_origin: str
    kv_changed: bool
    existing: float
    u_ll: float
    existing_export: float
    supply: int


def _prepare_job(
    n: Notification,
    policy: Policy,
    appliances: tuple[ApplianceCase, ...],
    defaults_used: tuple[Message, ...],
    location: Location,
    conflicts: tuple[Message, ...],
    conflict_count: int,
    same_point: list[LedgerRequest],
    ledger_revision: int | None,
    fuse: FuseAfterJob,
    device: Device | None,
    kv_a: float | None,
    kv_origin: str,
    kv_changed: bool,
    existing: float,
    u_ll: float,
    existing_export: float,
    supply: int,
) -> _Job:
    """The job on the site :func:`_site_case` found, ready for its power accounting."""
    t = demand_tables(policy)
    accounted = [a.accounted() for a in appliances]
    consuming = [r for r in appliances if r.appliance.kind in CONSUMING]
    notified = n
    block_assumptions: tuple[str, ...] = ()
    if n.block is not None and n.power_budget is None:
        # a block notification: the units' coincident peak by the policy's diversity rule (Velander), plus the
        # listed appliances, as the budget of the one connection
        block_kw = policy.velander_kw(n.block.annual_kwh)
        listed_kw = sum(r.total_kw for r in consuming)
        n = n.model_copy(update={"power_budget": PowerBudget(max_demand_kw=min(block_kw + listed_kw, 5000.0))})
        block_assumptions = t.velander_assumptions
    same_point_kw = sum(c.p_kw for o in same_point for c in o.reservation.load)
    site = AccountingInput(n, accounted, existing, existing_export, same_point_kw, supply, u_ll)
    return _Job(notified, n, appliances, accounted, consuming, block_assumptions, site, defaults_used, location,
                conflicts, conflict_count, ledger_revision, fuse, device, kv_a, kv_origin, kv_changed, existing, u_ll,
                existing_export, supply)  # fmt: skip


def _accounts_of(site: AccountingInput, policy: Policy) -> list[Accounting]:
    """The installation after the job and without what the job adds (one by one)."""
    return accounts(site.notification, site.appliances, existing_kw=site.existing_kw,
                    existing_export_kw=site.existing_export_kw, same_point_kw=site.same_point_kw, supply=site.supply,
                    u_ll_v=site.u_ll_v, policy=policy, scales=(1.0, 0.0))  # fmt: skip


def _job_case(
    job: _Job, accounting: Accounting, accounting_before: Accounting, grid: GridView, policy: Policy
) -> DemandCase:
    """What the job's appliances (or budget) add on the site :func:`_site_case` found, with its accountings (the
    installation after the job and without it): the demand and export increase and their components."""
    t = demand_tables(policy)
    policy_cos = t.demand_cos_phi
    n, appliances, consuming, accounted = job.n, job.appliances, job.consuming, job.accounted
    fuse, existing, existing_export, u_ll, supply = job.fuse, job.existing, job.existing_export, job.u_ll, job.supply
    device = job.device
    generating = [r for r in appliances if r.appliance.kind in GENERATING]
    appl_kw = sum(r.total_kw for r in consuming)

    # coincident demand increase
    assumptions = t.coincidence_assumptions + job.block_assumptions
    budget = n.power_budget
    demand_cos = (budget.cos_phi if budget is not None else None) or policy_cos
    if budget is not None:
        new_demand = budget.max_demand_kw
        if budget.cos_phi is None:
            assumptions += t.cos_assumptions
    else:
        new_demand = existing + appl_kw
        if fuse.changed and fuse.rating_a is not None:
            factor = t.fuse_demand_factor
            new_demand = max(new_demand, factor * fuse_capacity_kva(fuse.rating_a, u_ll, supply) * policy_cos)
            assumptions += t.fuse_cos_assumptions
        elif appl_kw > 0:
            assumptions += t.cos_assumptions
    d_p = t.customer_coincidence * max(0.0, new_demand - existing)

    # export increase
    gen_kw = sum(r.total_kw for r in generating)
    if budget is not None and budget.max_export_kw > 0:
        export_kw = max(0.0, budget.max_export_kw - existing_export)
    else:
        export_kw = gen_kw
    low_load = grid.region.defaults["low_load_scaling"]
    export_assumptions = ("grid:low_load_scaling",) if low_load.is_assumption else ()

    # load components: single-phase appliances first, the rest balanced (or on the single-phase supply)
    loads: list[Component] = []
    s1_load = 0.0
    one_phase = [r for r in consuming if r.conn != CONN_3PH]
    total_1ph = sum(r.total_kw for r in one_phase)
    share = min(1.0, d_p / total_1ph) if total_1ph > 0 else 0.0
    for r in one_phase:
        p_kw = share * r.total_kw
        loads.append(Component(r.conn, p_kw, r.cos_phi))
        s1_load += p_kw / r.cos_phi
    rest = max(0.0, d_p - share * total_1ph)
    if rest > 0:
        loads.append(Component(supply, rest, demand_cos))
        if supply != CONN_3PH:
            s1_load += rest / demand_cos

    # export components, shared over the generating appliances
    exports: list[Component] = []
    s1_export = 0.0
    if export_kw > 0 and gen_kw > 0:
        gshare = export_kw / gen_kw
        three = n.supply_phases is _THREE
        for r in generating:
            p_kw = gshare * r.total_kw
            conn = r.conn if three else supply
            exports.append(Component(conn, p_kw, r.cos_phi))
            if conn != CONN_3PH:
                s1_export += p_kw / r.cos_phi

    case = _make_demand_case(
        notification=job.notified,
        screening_defaults=job.defaults_used,
        location=job.location,
        accounting=accounting,
        accounting_before=accounting_before,
        meter_fuse_after_a=n.meter_fuse_after_a if n.meter_fuse_after_a is not None else n.meter_fuse_before_a,
        required_fuse_a=required_fuse_a(accounting, policy, device.spec if device is not None else None),
        notifiable=notifiable(n, accounted, u_ll, policy),
        conflicts=job.conflicts,
        conflict_count=job.conflict_count,
        ledger_revision=job.ledger_revision,
        fuse_after_a=fuse.rating_a,
        fuse_changed=fuse.changed,
        device=device,
        kv_a=job.kv_a,
        kv_origin=job.kv_origin,
        kv_changed=job.kv_changed,
        existing_kw=existing,
        d_p_kw=d_p,
        export_kw=export_kw,
        demand_cos_phi=demand_cos,
        demand_assumptions=assumptions,
        export_assumptions=export_assumptions,
        appliances=appliances,
        loads=tuple(loads),
        exports=tuple(exports),
        s1_load_kva=s1_load,
        s1_export_kva=s1_export,
    )
    return case


def demand_cases(
    notifications: Sequence[Notification],
    grid: GridView,
    policy: Policy,
    state: CapacityState | None = None,
    preceding: Sequence[Sequence[LedgerRequest]] | None = None,
    screening: bool = False,
    bases: Sequence[DemandCase | None] | None = None,
) -> list[DemandCase]:
    """The demand case of every notification (order preserved).

    ``preceding[k]``: open requests that earlier records of the batch will have made at record
    k's metering point (see :mod:`powercheck.rules.sequence`). ``bases[k]``: the case notification k is a
    measure's variant of (see :func:`demand_case`).
    """
    rows = grid.region.locate([n.metering_point_id for n in notifications])
    before = preceding or [()] * len(notifications)
    of = bases or [None] * len(notifications)
    cases = [
        _job_of(n, int(row), grid, policy, state, b, screening, c)
        for n, row, b, c in zip(notifications, rows, before, of)
    ]
    jobs = [k for k, job in enumerate(cases) if not isinstance(job, DemandCase)]
    if len(jobs) < BATCH_ACCOUNTING_MIN:
        for k in jobs:
            job = cases[k]
            accounting, accounting_before = _accounts_of(job.site, policy)
            cases[k] = _job_case(job, accounting, accounting_before, grid, policy)
        return cases
    inputs = [cases[k].site for k in jobs]
    for k, (accounting, accounting_before) in zip(jobs, accounts_batch(inputs, policy, scales=(1.0, 0.0))):
        cases[k] = _job_case(cases[k], accounting, accounting_before, grid, policy)
    return cases


BATCH_ACCOUNTING_MIN = 32
"""From this many notifications with grid checks on, :func:`demand_cases` works out their power accountings as
arrays (:func:`~powercheck.rules.accounting.accounts_batch`, the same accountings); below, one by one (the arrays'
fixed cost is larger than a few notifications' Python)."""
