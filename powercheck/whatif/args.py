"""Checks of the ``powercheck whatif`` arguments before any heavy import (standard library only).

Every bad argument is one :class:`ArgumentError` line naming the option; nothing is loaded,
computed or written before all of them pass. Full checks that need the grid model (a feeder
that cannot be modelled) come later and are one line too.
"""

from __future__ import annotations

import os
import re
import sys
import time
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from powercheck.whatif import parse_shares


class ArgumentError(ValueError):
    """A bad command-line argument (the message names the option)."""


SIMBENCH_SETS = ("simbench:lv",)
SCHEDULER_RE = re.compile(r"^(tcp|tls|ws|wss|inproc|ucx)://[^\s/:]+(:\d{1,5})?/?$")
MIN_CORES_FOR_LOCAL = 4


@dataclass(frozen=True)
class WhatifArgs:
    """The checked arguments."""

    ev_shares: tuple[float, ...]
    pv_shares: tuple[float, ...]
    samples: int
    days: int | str
    seed: int
    chunk: int
    max_probability: float
    criterion: str
    scheduler: str | None
    scheduler_timeout: float


def _int(name: str, text: Any, lo: int, hi: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ArgumentError(f"{name}: expected a whole number from {lo} to {hi}, got {text!r}") from None
    if not lo <= value <= hi:
        raise ArgumentError(f"{name}: expected a whole number from {lo} to {hi}, got {value}")
    return value


def _float(name: str, text: Any, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        value = float("nan")
    ok = value == value and (value > lo if open_lo else value >= lo) and (value < hi if open_hi else value <= hi)
    if not ok:
        span = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        raise ArgumentError(f"{name}: expected a number in {span}, got {text!r}")
    return value


def demo_dir() -> Path:
    """The demo region directory (as :func:`powercheck.demo.demo_region_dir`, without its imports)."""
    repo = Path(__file__).resolve().parent.parent.parent / "fixtures" / "demo_region"
    if (repo / "region.toml").is_file():
        return repo
    return Path(str(resources.files("powercheck").joinpath("fixtures"))) / "demo_region"


def _network_ids(directory: Path, item: str) -> list[str]:
    manifest = directory / "region.toml"
    if not manifest.is_file():
        raise ArgumentError(f"--feeders: {item!r}: {manifest} not found")
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ArgumentError(f"--feeders: {item!r}: {manifest} is not valid TOML ({exc})") from None
    networks = data.get("network", [])
    return [str(n.get("id")) for n in networks if isinstance(n, dict)]


def check_feeders(items: list[str]) -> None:
    """Feeder names (see :mod:`powercheck.whatif.feeders`), without loading anything."""
    if not items:
        raise ArgumentError("--feeders: at least one feeder is required")
    for item in items:
        if item in SIMBENCH_SETS:
            continue
        if item == "demo" or item.startswith("demo:") or item.startswith("region:"):
            if item.startswith("region:"):
                ref, _, nid = item[len("region:") :].partition("#")
                directory = Path(ref)
                if not directory.is_dir():
                    raise ArgumentError(f"--feeders: {item!r}: region directory {ref} not found")
            else:
                directory, nid = demo_dir(), item.partition(":")[2]
            ids = _network_ids(directory, item)
            if nid and nid not in ids:
                raise ArgumentError(f"--feeders: {item!r}: no network {nid!r} (networks: {', '.join(ids)})")
            continue
        code, _, suffix = item.partition("@")
        if suffix not in ("", "IT", "TN"):
            raise ArgumentError(f"--feeders: {item!r}: suffix must be @IT or @TN")
        if "-LV-" not in code:
            raise ArgumentError(
                f"--feeders: {item!r} is not a SimBench LV code, simbench:lv, demo[:network] or region:<dir>"
            )


def check_whatif_args(args: Any) -> WhatifArgs:
    """All ``whatif`` arguments, checked before any heavy import; raises :class:`ArgumentError`."""
    check_feeders(list(args.feeders))
    try:
        ev = parse_shares(args.ev_share, "--ev-share")
        pv = parse_shares(args.pv_share, "--pv-share")
    except ValueError as exc:
        raise ArgumentError(str(exc)) from None
    samples = _int("--samples", args.samples, 1, 1_000_000)
    days: int | str = "all" if str(args.days).strip() == "all" else 0
    if days != "all":
        try:
            days = _int("--days", args.days, 1, 366)
        except ArgumentError:
            raise ArgumentError(
                f"--days: expected a number of days from 1 to 366 or 'all', got {args.days!r}"
            ) from None
    seed = _int("--seed", args.seed, 0, 2**63 - 1)
    chunk = _int("--chunk", args.chunk, 1, 100_000)
    max_p = _float("--max-probability", args.max_probability, 0.0, 1.0, open_lo=True, open_hi=True)
    if args.criterion not in ("any", "p95"):
        raise ArgumentError(f"--criterion: expected 'any' or 'p95', got {args.criterion!r}")
    timeout = _float("--scheduler-timeout", args.scheduler_timeout, 0.0, 600.0, open_lo=True)
    scheduler = args.scheduler
    if scheduler is not None and scheduler != "local" and not SCHEDULER_RE.match(scheduler):
        raise ArgumentError(f"--scheduler: expected 'local' or an address like tcp://host:8786, got {scheduler!r}")
    for name in ("assumptions", "policy", "ledger"):
        value = getattr(args, name, None)
        if value is not None and not Path(value).is_file():
            raise ArgumentError(f"--{name}: {value} not found")
    if args.cache_dir is not None and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        raise ArgumentError(f"--cache-dir: {args.cache_dir} is not a directory")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ArgumentError(f"--out: {out} exists and is not a directory")
    parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not os.access(parent, os.W_OK):
        raise ArgumentError(f"--out: {parent} is not writable")
    return WhatifArgs(ev, pv, samples, days, seed, chunk, max_p, args.criterion, scheduler, timeout)


def local_scheduler_advice(cores: int | None) -> str | None:
    """A note when ``--scheduler local`` cannot beat the in-process run on this machine."""
    cores = cores or 1
    if cores >= MIN_CORES_FOR_LOCAL:
        return None
    return (
        f"--scheduler local on {cores} core{'s' if cores != 1 else ''} is usually slower than no --scheduler: the "
        "batched solver already uses every core through numba, and the workers add start-up, feeder loading and "
        f"data transfer; it pays from about {MIN_CORES_FOR_LOCAL} cores, or use a scheduler on other machines "
        "(--scheduler tcp://host:8786)"
    )


class StudyProgress:
    """A one-line progress bar on stderr with the elapsed time and an ETA, for feeder loading and for the tasks."""

    LABELS = {"feeders": "loading feeders", "tasks": "solving"}
    """Display names of the stages of :func:`powercheck.whatif.study.run_study` (others are shown as given)."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 24, enabled: bool = True):
        self.stream = stream
        self.width = width
        self.enabled = enabled
        self.stage: str | None = None
        self.start = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int, label: str = "") -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            if self.stage is not None:
                self.stream.write("\n")
            self.stage = stage
            self.start = time.perf_counter()
        elapsed = time.perf_counter() - self.start
        frac = min(1.0, done / total) if total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        eta = f"ETA {_duration(elapsed / done * (total - done))}" if done else "ETA --"
        if done >= total:
            eta = "done"
        text = f"\rwhat-if {self.LABELS.get(stage, stage)} [{bar}] {done}/{total} {_duration(elapsed)} {eta}"
        if label:
            text += f" {label}"
        self.stream.write(text[:160].ljust(100))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()
        self.stage = None


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
