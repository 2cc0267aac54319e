"""Pause Python's cyclic garbage collector while a batch allocates many short-lived objects.

A batch of notifications creates tens of thousands of small objects (demand cases, messages,
check rows) that live until the batch is written. The cyclic collector, triggered every few
hundred allocations, walks all of them again and again: measured on the demo mix, a 4,000
notification batch spends about a fifth of its time in collections that free nothing. Reference
counting still frees everything that is not in a cycle; the collector runs once when the
outermost pause ends, so cycles made during a batch are collected right after it.

The pause is process-wide (the collector is), counted so that nested and concurrent pauses
(service threads) end only when the last one does.

A long-running process that decides many small batches while their decisions are still alive (the service: a
group's decisions wait for their commit) can turn the collection at the end of a pause off with
:func:`collect_on_resume`: the collector then runs when its own threshold is reached, as it would without pauses
(cycles made during a pause are collected then), instead of once per batch over the still-alive decisions.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False
_collect_on_resume = True


def collect_on_resume(enabled: bool) -> None:
    """Whether the last pause to end collects the young generation at once (default) or leaves the next
    collection to the collector's threshold (``gc.set_threshold``)."""
    global _collect_on_resume
    _collect_on_resume = enabled


@contextmanager
def _pause(freeze: bool) -> Iterator[None]:
    """The counted pause both blocks share: the first to start disables the collector, the last to end restores
    it -- after freezing every object (``freeze``, :func:`start_up`) or followed by a young-generation collection
    (:func:`gc_paused`, unless :func:`collect_on_resume` turned that off)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            restore = _depth == 0 and _was_enabled
            if freeze:
                gc.freeze()
            if restore:
                gc.enable()
        if restore and not freeze and _collect_on_resume:
            gc.collect(0)


def gc_paused() -> AbstractContextManager[None]:
    """Disable the cyclic collector inside the block; the last block to end restores it and collects gen 0 (unless
    :func:`collect_on_resume` turned that off)."""
    return _pause(freeze=False)


def start_up() -> AbstractContextManager[None]:
    """Pause the collector while a command imports its modules and loads what it keeps for the whole run, then
    freeze every object that exists (``gc.freeze``: the collector's permanent generation) and restore it.

    Importing numpy, pyarrow, pydantic, numba and the engine creates a few hundred thousand objects that live
    until the process ends; the collector, triggered every 700 allocations, walked them again and again (about
    200 collections, 60 ms of a 1.2 s ``powercheck screen`` of the demo file), and every collection after the
    start-up would walk them again when they reach its generation. Frozen, they are never walked; the few cyclic
    garbage objects the imports leave (never more than once per process) are kept. Refcounting still frees
    everything else, and collections after the block (:func:`gc_paused`) cover what is created later.
    """
    return _pause(freeze=True)


def paused() -> bool:
    """True while a :func:`gc_paused` block is active."""
    return _depth > 0
