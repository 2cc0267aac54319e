"""Integer codes the kernels use instead of enums (numba works on plain arrays)."""

from __future__ import annotations

import numpy as np

CONN_3PH = 0
"""Three-phase balanced load; impedance = positive sequence, reference = phase voltage."""
CONN_LN = 1
"""Single phase line-to-neutral (TN only); loop impedance (2 Z1 + Z0)/3 = Z_phase + Z_neutral."""
CONN_LL = 2
"""Single phase line-to-line (IT 230 V, or 400 V appliances in TN); loop impedance 2 Z1."""

SYSTEM_TN = 0
"""Earthed system with neutral (TN 400/230 V): minimum fault is line-to-neutral."""
SYSTEM_IT = 1
"""Unearthed IT 230 V: no fault current for the first earth fault; minimum fault is line-to-line."""

SQRT3 = float(np.sqrt(3.0))


_CONN_CODES = {"3ph": CONN_3PH, "L-N": CONN_LN, "L-L": CONN_LL}


def conn_code(connection: str) -> int:
    """Map a ``powercheck.models.Connection`` value ('3ph', 'L-N', 'L-L') to its code."""
    try:
        return _CONN_CODES[str(connection)]
    except KeyError:
        raise ValueError(f"connection must be '3ph', 'L-N' or 'L-L', got {connection!r}") from None


def system_code(system: str) -> int:
    """Map a ``powercheck.models.NetworkSystem`` value to its code."""
    try:
        return {"TN_400": SYSTEM_TN, "IT_230": SYSTEM_IT}[str(system)]
    except KeyError:
        raise ValueError(f"network system must be 'TN_400' or 'IT_230', got {system!r}") from None
