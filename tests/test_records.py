"""powercheck.records.maker: the same frozen record as the dataclass's __init__, and the same refusals."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from powercheck.records import maker
from powercheck.rules.accounting import Accounting


@dataclass(frozen=True)
class _Row:
    a: int
    b: tuple[str, ...] = ()
    c: float | None = None


def test_a_made_record_equals_the_initialised_one_and_stays_frozen():
    make = maker(_Row)
    made = make(a=1, c=2.5)
    assert made == _Row(1, c=2.5) and hash(made) == hash(_Row(1, c=2.5)) and repr(made) == repr(_Row(1, c=2.5))
    assert made.b == () and dataclasses.replace(made, b=("x",)) == _Row(1, ("x",), 2.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.a = 3
    values = dict(demand_after_kw=10.0, phase_current_a=14.5, export_after_kw=0.0, export_phase_current_a=0.0,
                  start_current_a=None, start_duration_s=None, start_label=None, assumptions=("policy:x",))  # fmt: skip
    assert maker(Accounting)(**values) == Accounting(**values)


def test_unknown_or_missing_fields_and_slotted_classes_are_refused():
    make = maker(_Row)
    with pytest.raises(TypeError, match=r"unknown fields \['d'\]"):
        make(a=1, d=2)
    with pytest.raises(TypeError, match=r"missing fields \['a'\]"):
        make(b=())

    @dataclass(frozen=True, slots=True)
    class Slotted:
        a: int

    with pytest.raises(TypeError, match="__slots__"):
        maker(Slotted)

    @dataclass(frozen=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a")

    with pytest.raises(TypeError, match="__post_init__"):
        maker(Checked)


def test_once_is_worked_out_on_first_read_and_kept():
    from dataclasses import dataclass

    from powercheck.records import maker, once

    calls = []

    @dataclass(frozen=True)
    class Rec:
        a: int

        @once
        def double(self) -> int:
            """Twice a."""
            calls.append(self.a)
            return 2 * self.a

    r = maker(Rec)(a=3)
    assert (r.double, r.double, calls) == (6, 6, [3])  # worked out once, then read from the instance
    assert r == Rec(3) and repr(r) == "test_once_is_worked_out_on_first_read_and_kept.<locals>.Rec(a=3)"
    assert Rec.double.__doc__ == "Twice a." and Rec(4).double == 8 and calls == [3, 4]
