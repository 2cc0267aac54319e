"""Batched power flow for radial LV feeders: pandapower net -> compact radial model -> numba sweep.

Organised as pandapower keeps its branch models, solver and result extraction apart:

:mod:`~powercheck.powerflow.build`
    :func:`build_radial_model`: a pandapower network -> :class:`RadialModel` (what is
    modelled, and how it matches pandapower, is described there).
:mod:`~powercheck.powerflow.branches`
    The branch models (line, transformer with taps and zero sequence, impedance switch).
:mod:`~powercheck.powerflow.model`
    :class:`RadialModel` and :class:`RadialModelError`.
:mod:`~powercheck.powerflow.solve`
    :func:`run_batch` (balanced), :func:`run_batch_3ph` (per phase), :class:`BatchPowerFlow`.
:mod:`~powercheck.powerflow.results`
    :class:`BatchResult`, :class:`BatchResult3ph`, :class:`PowerFlowNotConverged` and the
    branch-result extraction.
:mod:`~powercheck.powerflow.kernels`
    The numba backward/forward sweep (pure arrays).

The switch semantics and the radial tree come from :mod:`powercheck.grid.topology`.
"""

from powercheck.powerflow.build import build_radial_model
from powercheck.powerflow.model import RadialModel, RadialModelError
from powercheck.powerflow.results import BatchResult, BatchResult3ph, PowerFlowNotConverged
from powercheck.powerflow.solve import BatchPowerFlow, run_batch, run_batch_3ph

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
