"""Batched power flow for radial LV feeders (see :mod:`powercheck.powerflow.build`)."""

from powercheck.powerflow.build import (
    BatchPowerFlow,
    BatchResult,
    BatchResult3ph,
    PowerFlowNotConverged,
    RadialModel,
    RadialModelError,
    build_radial_model,
    run_batch,
    run_batch_3ph,
)

__all__ = [
    "BatchPowerFlow",
    "BatchResult",
    "BatchResult3ph",
    "PowerFlowNotConverged",
    "RadialModel",
    "RadialModelError",
    "build_radial_model",
    "run_batch",
    "run_batch_3ph",
]
