"""Modules imported on first use: pandapower, pandas and matplotlib cost seconds to import, and a screening run
on a warm grid cache needs none of them (``tests/test_lazy_imports.py``).

``pp = lazy_module("pandapower")`` at the top of a module reads like an import; the module is imported when an
attribute of ``pp`` is first read (building a grid cache, a what-if study, a plot).
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for a module until one of its attributes is read."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_module", None)

    def _load(self) -> ModuleType:
        module = object.__getattribute__(self, "_module")
        if module is None:
            module = importlib.import_module(object.__getattribute__(self, "_name"))
            object.__setattr__(self, "_module", module)
        return module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {object.__getattribute__(self, '_name')!r}>"


def lazy_module(name: str) -> Any:
    """A stand-in for ``import name`` that imports on first attribute access."""
    return LazyModule(name)


@functools.cache
def installed_version(distribution: str) -> str:
    """The installed version of a distribution without importing it ('' when it is not installed); looked up once
    per process (every network's cache key names pandapower's version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return ""
