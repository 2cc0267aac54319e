"""Check results as columns: a :class:`CheckBlock` per rule and check function, a :class:`CheckTable` per batch.

A check function reads the demand cases and the evaluation of a whole batch and returns
blocks of results -- one row per (notification, check) -- instead of one object per
check. :class:`CheckTable` concatenates the blocks of every function of the check table
in decision order; :meth:`CheckTable.result` materialises one row as the
:class:`~powercheck.models.CheckResult` of the public API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from operator import itemgetter

import numpy as np

from powercheck.models import CheckResult, CheckStatus, LimitKind, construct
from powercheck.records import maker
from powercheck.rules.context import GridView
from powercheck.rules.demand import DemandCase
from powercheck.rules.evaluate import Evaluation
from powercheck.rules.policy import Policy, PolicyKey
from powercheck.rules.rule_ids import RuleId

PASS, FAIL, NOT_EVALUATED = 0, 1, 2
"""Status codes of the columns (``STATUSES[code]`` is the enum; :func:`measured` relies on PASS 0, FAIL 1)."""
STATUSES = (CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.NOT_EVALUATED)
MISSING_DETAIL = "could not be computed: input data missing"


@dataclass(frozen=True)
class CheckInput:
    """What every check function reads."""

    cases: Sequence[DemandCase]
    evaluation: Evaluation
    grid: GridView
    policy: Policy
    rows: np.ndarray
    """The evaluable notification rows (the grid checks run only there)."""
    lean: bool = False
    """Only what decides: status, value, limit, margin and margin scale of every result, in the same rows and order;
    check functions may leave names, details and assumptions empty (a measure's variants, :mod:`~powercheck.rules.
    measures`, whose texts are never read unless the variant approves -- and then it is assessed again in full)."""


@dataclass(frozen=True)
class CheckBlock:
    """Results of one rule for some notifications of a batch (one row per result)."""

    rule_id: RuleId
    row: np.ndarray
    """Notification row of each result."""
    seq: np.ndarray
    """Order of the result among those of the same check function for the same notification."""
    name: list[str]
    status: np.ndarray
    """Status codes (PASS, FAIL, NOT_EVALUATED)."""
    value: np.ndarray
    """NaN where there is no value."""
    limit: np.ndarray
    margin: np.ndarray
    margin_scale: np.ndarray
    limit_kind: LimitKind
    unit: str
    limit_key: list[str | None]
    assumptions: list[tuple[str, ...]]
    detail: list[str]

    def __len__(self) -> int:
        return int(self.row.shape[0])

    def subset(self, keep: np.ndarray) -> CheckBlock:
        """The results where ``keep`` (a mask over the results) is true."""
        if keep.all():
            return self
        idx = np.flatnonzero(keep)
        pick = _taker(idx)

        return _block(
            rule_id=self.rule_id,
            row=self.row[idx],
            seq=self.seq[idx],
            name=pick(self.name),
            status=self.status[idx],
            value=self.value[idx],
            limit=self.limit[idx],
            margin=self.margin[idx],
            margin_scale=self.margin_scale[idx],
            limit_kind=self.limit_kind,
            unit=self.unit,
            limit_key=pick(self.limit_key),
            assumptions=pick(self.assumptions),
            detail=pick(self.detail),
        )


_block = maker(CheckBlock)
"""``CheckBlock(**values)`` without the frozen dataclass's per-field ``__init__`` (:mod:`powercheck.records`; the
check functions make thousands of blocks per batch)."""


def _taker(index: np.ndarray) -> Callable[[Sequence], list]:
    """A function that picks ``values[i] for i in index`` from a list (one C-level itemgetter for all columns)."""
    positions = index.tolist()
    if len(positions) < 2:  # itemgetter of one position returns the item, of none is an error
        return lambda values: [values[i] for i in positions]
    getter = itemgetter(*positions)
    return lambda values: list(getter(values))


def _sorted_sets(assumptions, n: int) -> list[tuple[str, ...]]:
    """Per row the sorted, distinct assumption keys (one tuple shared by all rows when given once)."""
    if isinstance(assumptions, list):
        if len(assumptions) != n:
            raise ValueError(f"expected {n} per-row values, got {len(assumptions)}")
        cache: dict[tuple, tuple[str, ...]] = {}
        out = []
        for a in assumptions:
            key = tuple(a)
            got = cache.get(key)
            if got is None:
                got = cache[key] = tuple(sorted(set(key)))
            out.append(got)
        return out
    return [tuple(sorted(set(assumptions)))] * n


def _per_row(value, n: int) -> list:
    if isinstance(value, list):
        if len(value) != n:
            raise ValueError(f"expected {n} per-row values, got {len(value)}")
        return value
    return [value] * n


_NAN = float("nan")
"""The one NaN object the shared margin-scale columns are keyed by (NaN != NaN: a fresh NaN would never match)."""
_EMPTY_F = np.zeros(0)
_EMPTY_I = np.zeros(0, dtype=np.int64)


_EMPTY_BLOCKS: dict[tuple[RuleId, LimitKind, str], CheckBlock] = {}


def _empty_block(rule_id: RuleId, kind: LimitKind, unit: str) -> CheckBlock:
    """A block without rows (one per rule, kind and unit, made once: it is frozen and its arrays are never
    written)."""
    key = (rule_id, kind, unit)
    block = _EMPTY_BLOCKS.get(key)
    if block is None:
        block = _EMPTY_BLOCKS[key] = _new_empty_block(rule_id, kind, unit)
    return block


def _new_empty_block(rule_id: RuleId, kind: LimitKind, unit: str) -> CheckBlock:
    return CheckBlock(rule_id=rule_id, row=_EMPTY_I, seq=_EMPTY_I, name=[], status=np.zeros(0, np.int8),
                      value=_EMPTY_F, limit=_EMPTY_F, margin=_EMPTY_F, margin_scale=_EMPTY_F, limit_kind=kind,
                      unit=unit, limit_key=[], assumptions=[], detail=[])  # fmt: skip


def _full(n: int, value, dtype=float) -> np.ndarray:
    """``np.full(n, value, dtype)`` for a scalar, in fewer steps (the check functions make thousands of small
    columns per batch)."""
    out = np.empty(n, dtype=dtype)
    out.fill(value)
    return out


def _column(values, n: int, dtype=float) -> np.ndarray:
    """A new array of ``n`` values: a scalar repeated, or ``n`` values (a sequence or an array) copied."""
    kind = type(values)
    if kind is float or (kind is int and dtype is not float):  # the common scalars: no 0-d array first
        return _full(n, values, dtype)
    arr = np.array(values, dtype=dtype)  # a new array (copies an array)
    if arr.shape == (n,):  # the common case: no reshape
        return arr
    if arr.ndim == 0:
        return _full(n, arr, dtype)
    if arr.size == n:
        return arr.reshape(n)
    return np.broadcast_to(arr, (n,)).copy()  # e.g. one value in a 1-element array (a mismatch raises)


_CONSTANTS: dict[tuple[int, object, type], np.ndarray] = {}


def _constant(n: int, value, dtype=float) -> np.ndarray:
    """A read-only column of ``n`` equal values (a block's default sequence or margin scale), shared by the small
    blocks of every batch: blocks are never written (concatenation and subsets copy), and a write would raise."""
    if n > 64:
        return _full(n, value, dtype)
    key = (n, value, dtype)
    got = _CONSTANTS.get(key)
    if got is None:
        got = _full(n, value, dtype)
        got.flags.writeable = False
        _CONSTANTS[key] = got
    return got


def measured(
    rule_id: RuleId,
    rows: Sequence[int] | np.ndarray,
    value: Sequence[float] | np.ndarray,
    limit: Sequence[float] | np.ndarray | float,
    kind: LimitKind,
    unit: str,
    *,
    name: str | list[str],
    detail: str | list[str] = "",
    assumptions: tuple[str, ...] | list[tuple[str, ...]] = (),
    limit_key: str | None | list[str | None] = None,
    margin_scale: float | Sequence[float] | None = None,
    seq: int | Sequence[int] = 0,
) -> CheckBlock:
    """Results that compare a value with a limit; NaN in either gives NOT_EVALUATED.

    ``margin = limit - value`` for a MAX limit and ``value - limit`` for a MIN limit;
    a result passes when the margin is >= 0.
    """
    row = np.asarray(rows, dtype=np.int64)
    n = row.shape[0]
    if n == 0:  # the check applies to no row of the batch (common for single requests): no array work
        for per_row in (name, detail, assumptions, limit_key):
            _per_row(per_row, 0)
        return _empty_block(rule_id, kind, unit)
    value_arr = np.array(value, dtype=float)  # copies: the block never shares the caller's arrays
    if value_arr.shape != (n,):
        value_arr = value_arr.reshape(n)
    limit_arr = _column(limit, n)
    finite_value = np.isfinite(value_arr)
    finite_limit = np.isfinite(limit_arr)
    ok = finite_value & finite_limit
    margin = (limit_arr - value_arr) if kind is LimitKind.MAX else (value_arr - limit_arr)
    details = _per_row(detail, n)
    if np.count_nonzero(ok) == n:  # the common case, in fewer array operations
        status = (margin < 0).view(np.int8)  # PASS 0 where margin >= 0, FAIL 1 (a new bool array, read as int8)
    else:
        margin = np.where(ok, margin, np.nan)
        status = np.where(ok, np.where(margin >= 0, PASS, FAIL), NOT_EVALUATED).astype(np.int8)
        value_arr = np.where(finite_value, value_arr, np.nan)
        limit_arr = np.where(finite_limit, limit_arr, np.nan)
        missing = (~ok).tolist()
        details = [MISSING_DETAIL if (m and not d) else d for d, m in zip(details, missing)]
    return _block(
        rule_id=rule_id,
        row=row,
        seq=_constant(n, seq, np.int64) if type(seq) is int else _column(seq, n, np.int64),
        name=_per_row(name, n),
        status=status,
        value=value_arr,
        limit=limit_arr,
        margin=margin,
        margin_scale=_constant(n, _NAN) if margin_scale is None else _column(margin_scale, n),
        limit_kind=kind,
        unit=unit,
        limit_key=_per_row(limit_key, n),
        assumptions=_sorted_sets(assumptions, n),
        detail=details,
    )


def _policy_limit(policy: Policy, key: PolicyKey) -> tuple[float, tuple[str, ...], str]:
    """The policy value ``key`` as a limit: the number, its assumption keys ('policy:<key>' when [R]) and the key's
    name, looked up once per policy and key (the checks ask for about thirty limits per batch)."""
    memo = policy.derived("check limits", lambda _: {})
    got = memo.get(key)
    if got is None:
        got = memo[key] = (policy.number(key), tuple(policy.assumption_keys(key)), str(key))
    return got


def policy_limited(
    policy: Policy,
    rule_id: RuleId,
    rows: Sequence[int] | np.ndarray,
    value: Sequence[float] | np.ndarray,
    limit_key: PolicyKey | list[PolicyKey],
    kind: LimitKind,
    unit: str,
    *,
    name: str | list[str],
    detail: str | list[str] = "",
    assumptions: tuple[str, ...] | list[tuple[str, ...]] = (),
    margin_scale: float | None = None,
    seq: int | Sequence[int] = 0,
) -> CheckBlock:
    """Results whose limit is the policy value ``limit_key``; an [R] limit is named as an assumption."""
    n = len(rows)
    if isinstance(limit_key, list):
        keys = _per_row(limit_key, n)
        of_key = {key: _policy_limit(policy, key) for key in set(keys)}
        limits = [of_key[key][0] for key in keys] if n else np.zeros(0)
        rows_assumptions = [(*a, *of_key[key][1]) for a, key in zip(_per_row(assumptions, n), keys)]
        key_names = [of_key[key][2] for key in keys]
    else:  # one key for every row: one policy lookup
        limits, extra_one, name_one = _policy_limit(policy, limit_key)
        if isinstance(assumptions, list):
            rows_assumptions = [(*a, *extra_one) for a in _per_row(assumptions, n)]
        else:
            rows_assumptions = (*assumptions, *extra_one)
        key_names = [name_one] * n
    return measured(
        rule_id,
        rows,
        value,
        limits,
        kind,
        unit,
        name=name,
        detail=detail,
        assumptions=rows_assumptions,
        limit_key=key_names,
        margin_scale=margin_scale,
        seq=seq,
    )


def not_evaluated(
    rule_id: RuleId,
    rows: Sequence[int] | np.ndarray,
    *,
    name: str | list[str],
    detail: str | list[str],
    assumptions: tuple[str, ...] | list[tuple[str, ...]] = (),
    seq: int | Sequence[int] = 0,
) -> CheckBlock:
    """Results of a check that applies but cannot be computed (no value, no limit)."""
    row = np.asarray(rows, dtype=np.int64)
    n = row.shape[0]
    if n == 0:
        for per_row in (name, detail, assumptions):
            _per_row(per_row, 0)
        return _empty_block(rule_id, LimitKind.MAX, "")
    nan = np.full(n, np.nan)
    return _block(
        rule_id=rule_id,
        row=row,
        seq=np.broadcast_to(np.asarray(seq, dtype=np.int64), (n,)).copy(),
        name=_per_row(name, n),
        status=np.full(n, NOT_EVALUATED, dtype=np.int8),
        value=nan,
        limit=nan,
        margin=nan,
        margin_scale=nan,
        limit_kind=LimitKind.MAX,
        unit="",
        limit_key=[None] * n,
        assumptions=[tuple(sorted(set(a))) for a in _per_row(assumptions, n)],
        detail=_per_row(detail, n),
    )


def failed_gate(
    rule_id: RuleId, rows: Sequence[int], *, name: str, counts: Sequence[int], unit: str, detail: list[str]
) -> CheckBlock:
    """A gate that failed (count of missing/invalid fields against 0)."""
    return measured(rule_id, rows, np.asarray(counts, dtype=float), 0.0, LimitKind.MAX, unit, name=name, detail=detail)


@dataclass(frozen=True)
class CheckTable:
    """All check results of a batch, ordered by notification and then by the check table."""

    rule_id: list[RuleId]
    name: list[str]
    status: np.ndarray
    value: np.ndarray
    limit: np.ndarray
    margin: np.ndarray
    margin_scale: np.ndarray
    limit_kind: list[LimitKind]
    unit: list[str]
    limit_key: list[str | None]
    assumptions: list[tuple[str, ...]]
    detail: list[str]
    indptr: np.ndarray
    """Results of notification k: ``indptr[k]:indptr[k+1]``."""

    @classmethod
    def concat(cls, n: int, blocks_by_slot: Sequence[Sequence[CheckBlock]]) -> CheckTable:
        """Concatenate blocks; ``blocks_by_slot[i]`` are the blocks of the i-th check function."""
        blocks: list[CheckBlock] = []
        slots: list[int] = []
        sizes: list[int] = []
        for slot, group in enumerate(blocks_by_slot):
            for b in group:
                size = b.row.shape[0]
                if size:
                    blocks.append(b)
                    slots.append(slot)
                    sizes.append(size)
        if not blocks:
            empty = np.zeros(0)
            return cls([], [], np.zeros(0, np.int8), empty, empty, empty, empty, [], [], [], [], [],
                       np.zeros(n + 1, dtype=np.int64))  # fmt: skip
        # one array operation per column for all blocks (a small batch has about 20 blocks of a few rows each):
        # the slot and block of each result repeated from the block sizes, the four float columns of every block
        # joined and reordered at once
        lengths = np.array(sizes, dtype=np.int64)
        row = np.concatenate([b.row for b in blocks])
        seq = np.concatenate([b.seq for b in blocks])
        slot_of = np.repeat(np.array(slots, dtype=np.int64), lengths)
        block_of = np.repeat(np.arange(len(blocks), dtype=np.int64), lengths)
        order = np.lexsort((block_of, seq, slot_of, row))
        floats = np.concatenate(
            [b.value for b in blocks] + [b.limit for b in blocks] + [b.margin for b in blocks]
            + [b.margin_scale for b in blocks]
        ).reshape(4, row.shape[0])  # fmt: skip
        value, limit, margin, margin_scale = np.take(floats, order, axis=1)  # (a gather faster than [:, order])
        take = _taker(order)
        owner = block_of[order]  # the block of each result, in table order

        def per_block(attr: str) -> list:
            """A block's value (rule, kind, unit) for each of its results: one C-level gather of the blocks'."""
            per = np.empty(len(blocks), dtype=object)
            per[:] = [getattr(b, attr) for b in blocks]
            return per[owner].tolist()

        def lists(attr: str) -> list:
            return take(list(chain.from_iterable(getattr(b, attr) for b in blocks)))

        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=n), out=indptr[1:])
        return cls(
            rule_id=per_block("rule_id"),
            name=lists("name"),
            status=np.concatenate([b.status for b in blocks])[order],
            value=value,
            limit=limit,
            margin=margin,
            margin_scale=margin_scale,
            limit_kind=per_block("limit_kind"),
            unit=per_block("unit"),
            limit_key=lists("limit_key"),
            assumptions=lists("assumptions"),
            detail=lists("detail"),
            indptr=indptr,
        )

    def __len__(self) -> int:
        return int(self.status.shape[0])

    def rows_of(self, k: int) -> range:
        return range(int(self.indptr[k]), int(self.indptr[k + 1]))

    def relative_margin(self) -> np.ndarray:
        """margin / margin_scale (default |limit|) per result; NaN where undefined."""
        scale = np.where(np.isnan(self.margin_scale), np.abs(self.limit), self.margin_scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            rm = self.margin / scale
        return np.where((scale == 0) | np.isnan(self.limit), np.nan, rm)

    @cached_property
    def _python_columns(self) -> tuple[list, list, list, list, list]:
        """The status enums and the optional numbers (None for NaN) of every result as Python lists, read once
        from the arrays the first time a result is materialised (:meth:`result`)."""

        def optional(values: np.ndarray) -> list[float | None]:
            return [None if v != v else v for v in values.astype(float, copy=False).tolist()]  # v != v: NaN

        statuses = [STATUSES[code] for code in self.status.tolist()]
        return statuses, optional(self.value), optional(self.limit), optional(self.margin), optional(self.margin_scale)

    def result(self, i: int) -> CheckResult:
        """Result ``i`` as the public :class:`CheckResult` (the model's fields in its order, made without the
        per-field checks of ``model_construct``: :func:`powercheck.models.construct`)."""
        status, value, limit, margin, margin_scale = self._python_columns
        return construct(
            CheckResult,
            {
                "rule_id": str(self.rule_id[i]),
                "name": self.name[i],
                "status": status[i],
                "value": value[i],
                "limit": limit[i],
                "limit_kind": self.limit_kind[i],
                "margin": margin[i],
                "unit": self.unit[i],
                "margin_scale": margin_scale[i],
                "limit_key": self.limit_key[i],
                "assumptions": list(self.assumptions[i]),
                "detail": self.detail[i],
            },
        )
