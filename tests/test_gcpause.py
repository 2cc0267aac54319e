"""The engine pauses the cyclic garbage collector during a batch and restores it (powercheck.gcpause)."""

import gc
import os
import threading
import weakref
from pathlib import Path

import pytest

from powercheck.demo import demo_notifications_path, demo_region_dir
from powercheck.gcpause import collect_on_resume, gc_paused, paused, start_up
from powercheck.grid.region import GridRegion
from powercheck.io import read_notifications
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import load_policy


@pytest.fixture(autouse=True)
def _restore_gc():
    was = gc.isenabled()
    yield
    gc.unfreeze()  # start_up freezes what exists: give it back to the collector after each test
    (gc.enable if was else gc.disable)()


def test_nested_pauses_end_with_the_outermost():
    gc.enable()
    with gc_paused():
        assert not gc.isenabled() and paused()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block ending does not restart the collector
    assert gc.isenabled() and not paused()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_pause_ends_on_error():
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled() and not paused()


def test_overlapping_pauses_in_threads_end_with_the_last():
    gc.enable()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with gc_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with gc_paused():
            second_in.set()
            first_out.wait(5)
            seen["during"] = gc.isenabled()  # the first thread's pause has ended, this one has not
        seen["after"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"during": False, "after": True}


def test_cycles_made_during_a_pause_are_collected_after_it():
    gc.enable()
    gc.collect()

    class Node:
        pass

    with gc_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        del a, b
        assert probe() is not None  # a cycle: reference counting alone does not free it
    assert probe() is None  # collected when the pause ended


def test_without_collect_on_resume_cycles_wait_for_the_threshold():
    """collect_on_resume(False) (the service): the pause's end does not collect; the collector's own threshold
    does, once enough allocations have piled up."""
    gc.enable()
    gc.collect()
    threshold = gc.get_threshold()

    class Node:
        pass

    collect_on_resume(False)
    try:
        gc.set_threshold(100_000)
        with gc_paused():
            a, b = Node(), Node()
            a.other, b.other = b, a
            probe = weakref.ref(a)
            del a, b
        assert gc.isenabled() and not paused()
        assert probe() is not None  # not collected at the end of the pause
        gc.set_threshold(10)
        keep = [[] for _ in range(50)]  # tracked allocations past the threshold: the collector runs on its own
        assert probe() is None
        del keep
    finally:
        collect_on_resume(True)
        gc.set_threshold(*threshold)


def test_engine_batch_restores_the_collector(tmp_path):
    cache = Path(os.environ.get("POWERCHECK_TEST_CACHE") or tmp_path)
    region = GridRegion.load(demo_region_dir(), cache_dir=cache)
    notes = [r.notification for r in read_notifications(demo_notifications_path()) if r.ok][:5]
    gc.enable()
    Assessor(region, load_policy()).assess_recorded(notes)
    assert gc.isenabled() and not paused()


def test_screen_file_pauses_per_chunk_and_restores_the_collector(tmp_path):
    """screen_file decides each chunk inside one pause (the chunk's objects are freed before it ends): the
    collector is on again afterwards and no pause is left open, also when a chunk raises."""
    from powercheck.screen import screen_file

    cache = Path(os.environ.get("POWERCHECK_TEST_CACHE") or tmp_path)
    region = GridRegion.load(demo_region_dir(), cache_dir=cache)
    assessor = Assessor(region, load_policy())
    gc.enable()
    summary = screen_file(demo_notifications_path(), assessor, tmp_path / "d.parquet", chunk_size=64)
    assert summary.records == sum(1 for line in open(demo_notifications_path(), encoding="utf-8") if line.strip())
    assert gc.isenabled() and not paused()

    def broken(notifications):
        assert paused()  # the chunk's pause is on while it is decided
        raise RuntimeError("boom")

    assessor.assess_isolated = broken
    with pytest.raises(RuntimeError):
        screen_file(demo_notifications_path(), assessor, tmp_path / "e.parquet", chunk_size=64)
    assert gc.isenabled() and not paused()


class _Node:
    pass


def _cycle() -> weakref.ref:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_start_up_pauses_then_freezes_what_exists_and_restores_the_collector():
    """Objects made during the start-up go to the permanent generation: no collection walks them (and a cycle
    made then is kept); the collector is on again afterwards and collects cycles made later."""
    gc.enable()
    gc.collect()
    gc.unfreeze()
    with start_up():
        assert not gc.isenabled() and paused()
        kept = [_Node() for _ in range(1000)]
        start_cycle = _cycle()
    assert gc.isenabled() and not paused()
    assert gc.get_freeze_count() >= len(kept)
    tracked = {id(o) for o in gc.get_objects()}  # generations 0-2: the frozen objects are not among them
    assert not any(id(o) in tracked for o in kept)
    gc.collect()
    assert start_cycle() is not None  # frozen: kept although unreachable
    later = _cycle()
    gc.collect()
    assert later() is None  # made after the start-up: collected


def test_start_up_keeps_a_disabled_collector_disabled_and_an_outer_pause_open():
    gc.disable()
    with start_up():
        pass
    assert not gc.isenabled()
    gc.enable()
    with gc_paused():
        with start_up():
            pass
        assert not gc.isenabled() and paused()  # the outer pause is still on
    assert gc.isenabled() and not paused()
