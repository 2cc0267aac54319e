"""Structural comparison of stored results: floats to a relative 1e-9 or 1e-7 absolute, everything else exact.

Golden files and rule-case data hold floats at ``repr`` precision from the machine that wrote them.
The numba kernels are compiled for the host CPU (fused multiply-add and vector width differ between
machines) and the cached base cases come from iterative load flows (converged to 1e-8 pu), so the
last digits of a float may differ from one machine to the next while every outcome, status, rule id
and string stays the same. A margin is a difference of two such values, so its relative error is
larger: ``1e-7`` absolute (A, V, kW, pu, % alike) covers it and is still far below any value a
decision acts on.
"""

from __future__ import annotations

import math

REL = 1e-9
ABS = 1e-7


def differences(got, want, path: str = "") -> list[str]:
    """Where ``got`` and ``want`` differ, as ``path: got != want`` lines (empty when they agree)."""
    if isinstance(want, bool) or isinstance(got, bool) or want is None or got is None:
        return [] if got is want or got == want and type(got) is type(want) else [f"{path}: {got!r} != {want!r}"]
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if isinstance(want, int) and isinstance(got, int):
            return [] if got == want else [f"{path}: {got!r} != {want!r}"]
        if math.isnan(want) or math.isnan(got):
            return [] if math.isnan(want) and math.isnan(got) else [f"{path}: {got!r} != {want!r}"]
        return [] if math.isclose(got, want, rel_tol=REL, abs_tol=ABS) else [f"{path}: {got!r} != {want!r}"]
    if isinstance(want, dict) and isinstance(got, dict):
        if set(got) != set(want):
            return [f"{path}: keys {sorted(set(got) ^ set(want))} differ"]
        return [d for k in want for d in differences(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        if len(got) != len(want):
            return [f"{path}: length {len(got)} != {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in differences(g, w, f"{path}[{i}]")]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]
