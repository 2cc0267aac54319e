"""Fast construction of the engine's frozen per-notification records (demand cases, accountings, appliance rows).

A frozen dataclass's ``__init__`` sets every field through ``object.__setattr__`` (the class forbids assignment):
about 0.3 us a field, 9 us for a demand case of 28 fields -- tens of thousands of records per batch. The records
made here are frozen dataclasses without ``__slots__``; :func:`maker` gives a constructor that fills the
instance's ``__dict__`` in one update from the field defaults and the keyword values, so the record is the same
as its ``__init__`` makes (equality, hash, repr, ``dataclasses.replace`` and assignment errors unchanged) at a
fraction of the cost. Only the engine's trusted values go through it: no conversions, as ``__init__`` does none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    """A keyword-only constructor of the frozen dataclass ``cls`` (no ``__slots__``, default factories or
    ``__post_init__``) that raises ``TypeError`` for an unknown or a missing field, as ``cls(**values)`` would."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} has __slots__: its instances have no __dict__ to fill")
    names = tuple(f.name for f in fields(cls))
    if any(f.default_factory is not MISSING for f in fields(cls)):
        raise TypeError(f"{cls.__name__} has default factories")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__, which the constructor would skip")
    defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    count = len(names)
    new = object.__new__

    def make(**values: Any) -> T:
        obj = new(cls)
        state = obj.__dict__
        state.update(defaults)
        state.update(values)
        if len(state) != count:
            unknown = sorted(set(state) - set(names))
            missing = [name for name in names if name not in state]
            raise TypeError(f"{cls.__name__}: unknown fields {unknown}, missing fields {missing}")
        return obj

    make.__doc__ = f"A {cls.__name__} from keyword values (see :func:`powercheck.records.maker`)."
    return make


class once:
    """A property of a frozen record worked out on first read and kept in the instance's ``__dict__`` (as
    ``functools.cached_property``, without its per-call lock, which Python 3.11 takes on every first read: the
    engine reads such a property of tens of thousands of records a batch). Computing it twice in two threads at
    once gives the same value (the records are frozen), so no lock is needed."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value
