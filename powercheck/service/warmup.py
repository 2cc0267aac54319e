"""Warm-up of the service before it reports ready (issue 13).

The engine's numba kernels are compiled once into numba's on-disk cache, but each process still loads every kernel
(and builds the dispatcher's type machinery) on its first call: about 0.4-0.5 s spread over the first request's
stages. The service pays that in its lifespan start-up instead -- uvicorn accepts no connection (``/healthz`` does
not answer) until it is done -- by deciding a small set of synthetic notifications: per network of the region, one
per appliance kind (with the datasheet values that make the power-quality checks run), a main-fuse change and a
new single-phase connection, and the variants the measures stage tries.

They are decided by a separate :class:`~powercheck.rules.engine.Assessor` on an *empty* capacity ledger of its
own: nothing is stored, nothing is recorded in the service's ledger, and the decisions are dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from datetime import UTC, datetime

from powercheck.decision_json import records
from powercheck.ledger import CapacityState, RequestStatus
from powercheck.models import Appliance, ApplianceKind, Connection, JobType, Notification, SupplyPhases
from powercheck.rules.engine import Assessor

log = logging.getLogger("powercheck.service")

WARMUP_ID_PREFIX = "WARMUP-"

_KIND_JOB = {
    ApplianceKind.EV_CHARGER: JobType.EV_CHARGER,
    ApplianceKind.PV_INVERTER: JobType.PV,
    ApplianceKind.BATTERY_INVERTER: JobType.BATTERY,
    ApplianceKind.HEAT_PUMP: JobType.HEAT_PUMP,
    ApplianceKind.MOTOR: JobType.MOTOR,
}


def _appliance(kind: ApplianceKind, connection: Connection, spectrum: dict[int, float] | None = None) -> Appliance:
    """An appliance with datasheet values, so the flicker and harmonics checks evaluate rather than ask for them."""
    return Appliance(
        kind=kind,
        rated_kw=7.0,
        connection=connection,
        cos_phi=0.95,
        start_current_ratio=3.0,
        cos_phi_start=0.4,
        starts_per_hour=6,
        start_duration_s=0.5,
        harmonic_current_percent=spectrum,
    )


def warmup_notifications(assessor: Assessor) -> list[Notification]:
    """Synthetic notifications at the first metering point of each network of the region (see the module
    docstring); none when the customer index is empty."""
    table = assessor.region.customers_table
    ids = table.column("metering_point_id").to_pylist()
    networks = table.column("network_id").to_pylist()
    first: dict[str, str] = {}
    for mp, net in zip(ids, networks):
        first.setdefault(net, mp)
    at = datetime(2000, 1, 1, tzinfo=UTC)
    out: list[Notification] = []

    def add(mp: str, system: str, **fields) -> None:
        out.append(
            Notification(
                notification_id=f"{WARMUP_ID_PREFIX}{len(out)}",
                revision=1,
                metering_point_id=mp,
                network_system=system,
                submitted_at=at,
                **fields,
            )
        )

    for net, mp in first.items():
        system = str(assessor.region.networks[net].system)
        one_phase = Connection.L_L if system == "IT_230" else Connection.L_N
        for kind in ApplianceKind:
            add(
                mp,
                system,
                job_type=_KIND_JOB.get(kind, JobType.MOTOR),
                appliances=[_appliance(kind, Connection.THREE_PHASE)],
            )
        add(mp, system, job_type=JobType.EV_CHARGER, appliances=[_appliance(ApplianceKind.EV_CHARGER, one_phase)])
        pv = _appliance(ApplianceKind.PV_INVERTER, Connection.THREE_PHASE, {5: 4.0, 7: 3.0})
        add(mp, system, job_type=JobType.PV, appliances=[pv])
        add(mp, system, job_type=JobType.OV_MV_CHANGE, main_fuse_before_a=25.0, main_fuse_after_a=63.0)
        add(
            mp,
            system,
            job_type=JobType.NEW_CONNECTION,
            supply_phases=SupplyPhases.SINGLE,
            main_fuse_after_a=25.0,
            appliances=[_appliance(ApplianceKind.HEAT_PUMP, one_phase)],
        )
    return out


def loaded_kernels() -> dict[str, int]:
    """Loaded signatures per kernel of the imported powercheck modules (name -> count): those numba compiled or
    loaded from its cache, and those of the module compiled ahead of time once a kernel has looked it up."""
    from powercheck.jit import kernels

    return {kernel.name: kernel.loaded_signatures() for kernel in kernels()}


def warm_up(assessor: Assessor) -> float:
    """Decide :func:`warmup_notifications` on an empty ledger of their own (nothing stored or recorded in
    ``assessor``'s ledger) and drop the decisions, as JSON like the service stores them; returns the seconds taken.

    A failure is logged and ignored: the warm-up only moves the first request's loading time to start-up.
    """
    t0 = time.perf_counter()
    try:
        notifications = warmup_notifications(assessor)
        if notifications:
            ledger = CapacityState.of(assessor.region, []) if assessor.ledger is not None else None
            study = Assessor(assessor.region, assessor.policy, clock=assessor.clock, ledger=ledger,
                             language=assessor.language)  # fmt: skip
            # twice: before the second pass the first one's requests are approved in the study's ledger, so their
            # reservations are applied to the grid (kernels of their own) as an approved request's are
            for revision in (1, 2):
                again = [n.model_copy(update={"revision": revision}) for n in notifications]
                assessed = study.assess_isolated(again)
                records(assessed.entries, assessed.language)  # the JSON of the stored rows, made as the service does
                if ledger is not None:
                    for request in list(ledger.requests.values()):
                        ledger.put(dataclasses.replace(request, status=RequestStatus.APPROVED))
    except Exception:  # noqa: BLE001 - a warm-up failure must not stop the service
        log.warning("warm-up failed (the first requests load the engine instead)", exc_info=sys.exc_info())
    return time.perf_counter() - t0
