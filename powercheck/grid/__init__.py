"""The screening grid model: networks, topology, per-bus precomputation, customer index, region + cache.

:mod:`~powercheck.grid.networks`
    Network sources (pandapower JSON, pandapower's LV networks), completion from the grid
    defaults (``grid_defaults.toml``).
:mod:`~powercheck.grid.topology`
    Switch semantics, bridges and meshes, radial trees and paths (also used by
    :mod:`powercheck.powerflow`).
:mod:`~powercheck.grid.precompute`
    Per-bus short-circuit impedances, base-case load flows and paths of one network
    (:class:`~powercheck.grid.precompute.NetworkArrays`) and their cache files.
:mod:`~powercheck.grid.customers`
    The customer index schema and its validation.
:mod:`~powercheck.grid.region`
    :class:`~powercheck.grid.region.GridRegion`: a region's networks, concatenated arrays
    and customer index.
"""
