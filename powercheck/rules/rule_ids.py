"""Rule ids: the names of the checks in a decision, and of the policy gates that are not checks."""

from __future__ import annotations

from enum import StrEnum


class RuleId(StrEnum):
    """Every rule id a decision can carry (``<GROUP>.<NAME>``)."""

    DATA_VALID = "DATA.VALID"
    """The record passes field validation (else reject_incomplete)."""
    DATA_COMPLETE = "DATA.COMPLETE"
    """Job-type and policy fields present (else reject_incomplete)."""
    GRID_LOCATED = "GRID.LOCATED"
    """Metering point in the customer index."""
    GRID_SYSTEM = "GRID.SYSTEM"
    """Notified IT/TN system matches the grid model."""
    GRID_DATA = "GRID.DATA"
    """The grid model can be computed at the metering point's bus (fed by a transformer, finite results)."""
    LEDGER_CONFLICT = "LEDGER.CONFLICT"
    """No other open request at the metering point contradicts this one."""
    LOAD_MAIN_FUSE = "LOAD.MAIN_FUSE"
    """Demand current per phase after the job <= main fuse (OV) after the job."""
    LOAD_METER_FUSE = "LOAD.METER_FUSE"
    """Demand current per phase after the job <= meter fuse (MV) after the job."""
    LOAD_EXPORT_FUSE = "LOAD.EXPORT_FUSE"
    """Export current per phase after the job <= the smaller of OV and MV."""
    PROT_START_CURRENT = "PROT.START_CURRENT"
    """Start current of the largest motor/compressor <= what the fuse carries for the start without melting."""
    PROT_SERVICE_CABLE = "PROT.SERVICE_CABLE"
    """Service cable ampacity >= new fuse."""
    PROT_SELECTIVITY = "PROT.SELECTIVITY"
    """Upstream fuse / new fuse >= the selectivity ratio."""
    PROT_FAULT_CURRENT = "PROT.FAULT_CURRENT"
    """Minimum fault current >= 5-s melting current of the new fuse."""
    THERMAL_LINE_PEAK = "THERMAL.LINE_PEAK"
    """Binding line on the path at peak with the added current."""
    THERMAL_TRAFO_PEAK = "THERMAL.TRAFO_PEAK"
    """Transformer at peak with the added current."""
    THERMAL_LINE_EXPORT = "THERMAL.LINE_EXPORT"
    """Binding line at low load with the added export."""
    THERMAL_TRAFO_EXPORT = "THERMAL.TRAFO_EXPORT"
    """Transformer at low load with the added export."""
    VOLT_PEAK_PLANNING = "VOLT.PEAK_PLANNING"
    """Voltage at peak with the added load >= voltage_planning_min_pu (planning limit: decides auto-approval)."""
    VOLT_PEAK_MIN = "VOLT.PEAK_MIN"
    """Voltage at peak with the added load >= voltage_min_pu (legal limit, FoL: below it no connection without grid
    measures)."""
    VOLT_LOW_PLANNING = "VOLT.LOW_PLANNING"
    """Voltage at low load with the added export <= voltage_planning_max_pu (planning limit)."""
    VOLT_LOW_MAX = "VOLT.LOW_MAX"
    """Voltage at low load with the added export <= voltage_max_pu (legal limit, FoL)."""
    PQ_RVC = "PQ.RVC_DACH"
    """Rapid voltage change per appliance start against the D-A-CH-CZ limit of its start rate (planning)."""
    PQ_RVC_FOL_MAX = "PQ.RVC_FOL_MAX"
    """FoL (legal): the largest step of a switching (dU_max) when it switches more often than 24 times a day."""
    PQ_RVC_STATIONARY = "PQ.RVC_FOL_STATIONARY"
    """FoL (legal): the stationary step per switching when it switches more often than 24 times a day."""
    PQ_FLICKER_PST = "PQ.FLICKER_PST"
    """Short-term flicker at the customer point, background included, against the FoL total (legal)."""
    PQ_FLICKER_PLT = "PQ.FLICKER_PLT"
    """Long-term flicker at the customer point (from the declared operating pattern) against the FoL total."""
    PQ_FLICKER_SHARE_PST = "PQ.FLICKER_SHARE_PST"
    """The customer's own Pst emission against its share of the total (emission)."""
    PQ_FLICKER_SHARE_PLT = "PQ.FLICKER_SHARE_PLT"
    """The customer's own Plt emission against its share of the total (emission)."""
    PQ_THD = "PQ.THD"
    """Total harmonic distortion with the appliances' harmonic currents."""
    PQ_THD_WEEK = "PQ.THD_WEEK"
    """THD of continuously running appliances against the 1-week limit."""
    PQ_HARMONIC = "PQ.HARMONIC"
    """The individual harmonic voltage closest to its limit."""
    PQ_UNBALANCE = "PQ.UNBALANCE"
    """Negative-sequence unbalance from single-phase load/export."""
    ENGINE_ERROR = "ENGINE.ERROR"
    """The assessment of this notification failed (an error in the engine or the grid data); escalated."""
    POLICY_JOB_TYPE = "POLICY.JOB_TYPE"
    """Gate: the job type is not auto-approvable."""
    POLICY_MAX_FUSE = "POLICY.MAX_FUSE"
    """Gate: the fuse after the job is above the auto-approval cap."""
    POLICY_MAX_FUSE_KVA = "POLICY.MAX_FUSE_KVA"
    """Gate: the fuse after the job lets through more apparent power than the auto-approval cap."""
    POLICY_TARIFF = "POLICY.TARIFF"
    """Gate: the fuse after the job crosses a tariff threshold (tariff class / metering change)."""
    POLICY_MARGIN = "POLICY.MARGIN"
    """Gate: a check passes with less than the auto-approval margin."""

    @property
    def group(self) -> str:
        """The part before the dot (DATA, GRID, LEDGER, LOAD, PROT, THERMAL, VOLT, PQ, POLICY)."""
        return self.value.split(".", 1)[0]


LEGAL_VOLTAGE_RULES = frozenset({RuleId.VOLT_PEAK_MIN, RuleId.VOLT_LOW_MAX})
"""Legal (FoL) voltage-band rules: a failure means the job cannot be connected without grid measures."""

PLANNING_VOLTAGE_RULES = frozenset({RuleId.VOLT_PEAK_PLANNING, RuleId.VOLT_LOW_PLANNING})
"""Planning voltage-band rules: a failure stops auto-approval (case handler or conditions)."""

GRID_RULE_GROUPS = frozenset({"PROT", "THERMAL", "VOLT", "PQ"})
"""Rule groups whose results depend on the grid model (and so on its completion defaults)."""
