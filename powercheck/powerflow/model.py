"""The compact radial model of a network (:class:`RadialModel`) and the errors of the power flow.

Built by :func:`powercheck.powerflow.build.build_radial_model`, solved by
:mod:`powercheck.powerflow.solve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from powercheck.grid.networks import GridModelError

__all__ = ["ElementTable", "RadialModel", "RadialModelError"]


class RadialModelError(GridModelError):
    """The network cannot be turned into a radial model; the message names the element."""


@dataclass(frozen=True, eq=False)
class ElementTable:
    """PQ elements of one pandapower table, all rows in table order.

    Attributes
    ----------
    table : str
        pandapower table ("load", "sgen", "storage", "asymmetric_load", "asymmetric_sgen").
    index : ndarray of int64
        pandapower indices (all rows).
    pos : ndarray of int64
        Internal bus of every element; -1 = out of service or not supplied.
    delta : ndarray of bool
        Phase-to-phase connection (``type == "delta"``; used by the unbalanced solver).
    sign : float
        +1 consumption, -1 generation.
    p_mw, q_mvar : ndarray of float, shape (n,) or (n, 3) for asymmetric tables
        Static values including ``scaling`` [MW], [Mvar].
    """

    table: str
    index: np.ndarray
    pos: np.ndarray
    delta: np.ndarray
    sign: float
    p_mw: np.ndarray
    q_mvar: np.ndarray


@dataclass(frozen=True, eq=False)
class RadialModel:
    """Compact radial model of a pandapower network (see :mod:`powercheck.powerflow.build`).

    Attributes
    ----------
    sn_mva : float
        Power base [MVA].
    parent : ndarray of int64, shape (n,)
        Parent of each internal bus in topological order; bus 0 is the slack.
    node_bus : ndarray of int64, shape (n,)
        Representative pandapower bus index of each internal bus.
    vn_kv : ndarray of float, shape (n,)
        Nominal voltage of each internal bus [kV].
    bus_index : ndarray of int64
        pandapower bus indices (``net.bus.index``) in result order.
    bus_pos : ndarray of int64
        Internal bus of each entry of ``bus_index``; -1 = not supplied.
    load_index, sgen_index, storage_index, asym_load_index, asym_sgen_index : ndarray
        pandapower indices of the PQ elements, i.e. the columns of the power
        arrays passed to :func:`~powercheck.powerflow.solve.run_batch` /
        :func:`~powercheck.powerflow.solve.run_batch_3ph`.
    v_slack : complex
        Slack voltage ``vm_pu * exp(j va_degree)`` [pu].
    ypp, ypc, ycp, ycc : ndarray of complex, shape (3, n)
        Two-port of the branch(es) above each bus per sequence (0, 1, 2),
        parent/child orientation [pu on ``sn_mva``].
    ysh : ndarray of complex, shape (3, n)
        Constant shunt admittance per bus and sequence (branches open at one
        end) [pu].
    y_slack : ndarray of complex, shape (3,)
        Slack-to-ground admittance in the zero and negative sequence [pu].
    m, kup : ndarray of complex, shape (3, n)
        Sweep factors (:func:`powercheck.powerflow.kernels.sweep_factors`).
    zero_seq_floating : bool
        An unearthed transformer LV winding feeds the network (IT): only
        phase-to-phase loads are possible in the unbalanced power flow.
    line_index, trafo_index : ndarray of int64
        pandapower line / trafo indices (all rows): the result rows are the lines, then the
        transformers.
    br_f, br_t : ndarray of int64, shape (n_line + n_trafo,)
        Internal bus of the from (HV) and to (LV) end of every result row (both ends at one
        bus when the row is open at one end; 0 for out-of-service rows, whose admittances
        are 0).
    br_y : ndarray of complex, shape (3, 4, n_line + n_trafo)
        ``yff, yft, ytf, ytt`` per sequence (0, 1, 2) of every result row [pu].
    br_ibase_f, br_ibase_t : ndarray of float
        Current base of the from and to end [kA per pu].
    line_imax_ka : ndarray of float
        ``max_i_ka * df * parallel`` per line [kA].
    trafo_sn_mva, trafo_vn_hv_kv, trafo_vn_lv_kv : ndarray of float
        Rated power [MVA] and rated voltages [kV] per transformer.
    trafo_rating_factor : ndarray of float
        ``parallel * df`` per transformer [-].
    elements : dict of str to ElementTable
        The PQ elements by pandapower table.
    three_phase_error : str or None
        Why the model cannot be used for the unbalanced power flow (None = it can).
    root_children : ndarray of int64
        Internal buses whose parent is the slack (for the slack power).
    """

    sn_mva: float
    parent: np.ndarray
    node_bus: np.ndarray
    vn_kv: np.ndarray
    bus_index: np.ndarray
    bus_pos: np.ndarray
    v_slack: complex
    # per sequence (0, 1, 2) tree-edge two-ports, parent/child orientation, and factors
    ypp: np.ndarray
    ypc: np.ndarray
    ycp: np.ndarray
    ycc: np.ndarray
    ysh: np.ndarray
    y_slack: np.ndarray
    m: np.ndarray
    kup: np.ndarray
    zero_seq_floating: bool
    # branch results
    line_index: np.ndarray
    trafo_index: np.ndarray
    br_f: np.ndarray
    br_t: np.ndarray
    br_y: np.ndarray  # complex [3, 4, n_branch]: yff, yft, ytf, ytt per sequence
    br_ibase_f: np.ndarray  # [kA per pu]
    br_ibase_t: np.ndarray
    line_imax_ka: np.ndarray
    trafo_sn_mva: np.ndarray
    trafo_vn_hv_kv: np.ndarray
    trafo_vn_lv_kv: np.ndarray
    trafo_rating_factor: np.ndarray  # parallel * df
    elements: dict[str, ElementTable] = field(repr=False)
    three_phase_error: str | None = None
    root_children: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_bus(self) -> int:
        """Number of supplied (internal) buses."""
        return int(self.parent.shape[0])

    @property
    def load_index(self) -> np.ndarray:
        """``net.load`` indices: the element axis of the corresponding power arrays."""
        return self.elements["load"].index

    @property
    def sgen_index(self) -> np.ndarray:
        """``net.sgen`` indices: the element axis of the corresponding power arrays."""
        return self.elements["sgen"].index

    @property
    def storage_index(self) -> np.ndarray:
        """``net.storage`` indices: the element axis of the corresponding power arrays."""
        return self.elements["storage"].index

    @property
    def asym_load_index(self) -> np.ndarray:
        """``net.asymmetric_load`` indices: the element axis of the corresponding power arrays."""
        return self.elements["asymmetric_load"].index

    @property
    def asym_sgen_index(self) -> np.ndarray:
        """``net.asymmetric_sgen`` indices: the element axis of the corresponding power arrays."""
        return self.elements["asymmetric_sgen"].index
