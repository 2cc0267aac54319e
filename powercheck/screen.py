"""Batch screening: a file of notifications in, a Parquet file of decisions out."""

from __future__ import annotations

import signal
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from powercheck.columnar import CHECKS_SCHEMA, decision_tables
from powercheck.gcpause import gc_paused
from powercheck.io import (
    MAX_RECORD_BYTES,
    DecisionWriter,
    InputRecord,
    _lines,
    index_jsonl,
    read_jsonl_at,
    read_notifications,
)
from powercheck.models import CheckStatus, Decision
from powercheck.rules.engine import Assessor

if TYPE_CHECKING:
    from powercheck.ledger.store import LedgerStore


@dataclass
class ScreenSummary:
    """Counts from one screening run."""

    records: int = 0
    invalid: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_job: Counter = field(default_factory=Counter)
    failed_rules: Counter = field(default_factory=Counter)
    not_evaluated_rules: Counter = field(default_factory=Counter)
    duplicates: int = 0
    ledger: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    out: str = ""
    total: int = 0
    """Records in the input."""
    interrupted: str | None = None
    """The signal that stopped the run after a chunk (SIGINT, SIGTERM); None when every record was decided."""

    def add(self, decision: Decision) -> None:
        self.outcomes[str(decision.outcome)] += 1
        if decision.ledger_status:
            self.ledger[decision.ledger_status] += 1
        self.by_job[(decision.job_type or "(invalid)", str(decision.outcome))] += 1
        for check in decision.checks:
            if check.status is CheckStatus.FAIL:
                self.failed_rules[check.rule_id] += 1
            elif check.status is CheckStatus.NOT_EVALUATED:
                self.not_evaluated_rules[check.rule_id] += 1

    def add_table(self, decisions: pa.Table, checks: pa.Table) -> None:
        """Count the decisions of a chunk from its tables (:mod:`powercheck.columnar`)."""
        outcomes = decisions.column("outcome").to_pylist()
        self.outcomes.update(outcomes)
        self.ledger.update(s for s in decisions.column("ledger_status").to_pylist() if s)
        jobs = decisions.column("job_type").to_pylist()
        self.by_job.update((job or "(invalid)", outcome) for job, outcome in zip(jobs, outcomes))
        for rule, status in zip(checks.column("rule_id").to_pylist(), checks.column("status").to_pylist()):
            if status == "fail":
                self.failed_rules[rule] += 1
            elif status == "not_evaluated":
                self.not_evaluated_rules[rule] += 1

    def table(self) -> str:
        """A plain-text summary table."""
        outcomes = ("auto_approve", "approved_with_conditions", "escalate", "request_info", "reject_incomplete")
        jobs = sorted({job for job, _ in self.by_job})
        width = max([len("job type")] + [len(j) for j in jobs]) + 2
        lines = [f"{'job type':<{width}}" + "".join(f"{o:>26}" for o in outcomes) + f"{'total':>8}"]
        lines.append("-" * len(lines[0]))
        for job in jobs:
            counts = [self.by_job[(job, o)] for o in outcomes]
            lines.append(f"{job:<{width}}" + "".join(f"{c:>26}" for c in counts) + f"{sum(counts):>8}")
        lines.append("-" * len(lines[0]))
        totals = [self.outcomes[o] for o in outcomes]
        lines.append(f"{'total':<{width}}" + "".join(f"{c:>26}" for c in totals) + f"{sum(totals):>8}")
        if self.failed_rules:
            lines.append("")
            lines.append("failed checks: " + ", ".join(f"{r} {n}" for r, n in self.failed_rules.most_common()))
        if self.not_evaluated_rules:
            lines.append("not evaluated: " + ", ".join(f"{r} {n}" for r, n in self.not_evaluated_rules.most_common()))
        if self.invalid:
            lines.append(f"invalid records: {self.invalid} (reject_incomplete, field errors in 'reasons')")
        if self.duplicates:
            lines.append(f"repeated notification id+revision in the input: {self.duplicates}")
        if self.ledger:
            lines.append("ledger: " + ", ".join(f"{s} {n}" for s, n in sorted(self.ledger.items())))
        rate = self.records / self.seconds if self.seconds > 0 else float("nan")
        lines.append(f"{self.records} notifications in {self.seconds:.2f} s ({rate:.0f}/s) -> {self.out}")
        if self.interrupted:
            lines.append(
                f"interrupted by {self.interrupted}: {self.records} of {self.total} records decided and written "
                f"to {self.out} (a complete Parquet file); the ledger holds their requests"
            )
        return "\n".join(lines)


class Interrupted(KeyboardInterrupt):
    """A second SIGINT/SIGTERM (or one before screening started): stop now."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """Set by SIGINT/SIGTERM while screening: the run finishes the chunk it is deciding, then stops.

    Outside :meth:`screening` (loading the grid, say) and on a second signal the handler raises
    :class:`Interrupted` at once.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.active = False

    def __call__(self, signum: int, frame: object = None) -> None:
        if self.signum is not None or not self.active:
            self.signum = signum  # kept: raised inside a C callback (numba compiling a kernel) the exception is lost
            raise Interrupted(signum)
        self.signum = signum

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None

    @contextmanager
    def screening(self) -> Iterator[StopRequest]:
        if self.signum is not None:  # a signal before screening whose exception a C callback swallowed
            raise Interrupted(self.signum)
        self.active = True
        try:
            yield self
        finally:
            self.active = False


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Handle SIGINT and SIGTERM with a :class:`StopRequest` (main thread only), restoring the handlers after."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook

    def quiet(unraisable) -> None:
        # the handler's Interrupted raised inside a C callback is dropped there ("Exception ignored ... Traceback"):
        # the request is kept in `stop` and acted on when screening starts (StopRequest.screening), so no traceback
        if not isinstance(unraisable.exc_value, Interrupted):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        yield stop
    finally:
        sys.unraisablehook = hook
        for s, handler in previous.items():
            signal.signal(s, handler)


class ProgressBar:
    """A minimal text progress bar on a stream (stderr by default)."""

    def __init__(self, total: int | None, stream: TextIO = sys.stderr, width: int = 30, enabled: bool = True):
        self.total = total
        self.stream = stream
        self.width = width
        self.enabled = enabled
        self.start = time.perf_counter()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, done / self.total)
            filled = int(round(frac * self.width))
            bar = "#" * filled + "." * (self.width - filled)
            text = f"\rscreening [{bar}] {done}/{self.total} {rate:6.0f}/s"
        else:
            text = f"\rscreening {done} {rate:6.0f}/s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class ChecksWriter:
    """The long checks table of a screening run, streamed to Parquet (moved into place on close)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial_path = self.path.with_name(self.path.name + ".partial")
        self._writer = pq.ParquetWriter(self.partial_path, CHECKS_SCHEMA)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)

    def close(self, keep_partial: bool = False) -> None:
        self._writer.close()
        if not keep_partial:
            self.partial_path.replace(self.path)


def count_records(path: Path) -> int | None:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as fh:
        return sum(1 for _, line in _lines(fh, MAX_RECORD_BYTES) if line is None or line.strip())


def _order_key(record: InputRecord) -> tuple:
    """Records in submitted order (then line); records without a readable time last."""
    at = _submitted_at(record)
    return (at is None, at or datetime.min.replace(tzinfo=UTC), record.line)


def _submitted_at(record: InputRecord) -> datetime | None:
    at = record.notification.submitted_at if record.notification is not None else record.raw_submitted_at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class _Ordered:
    """The records of an input in submitted order, read a chunk at a time.

    A JSON Lines file is read twice: once for every record's order key, line and byte span (kept in flat
    arrays, 8 bytes a number, and the records themselves dropped), then chunk by chunk in that order, so a
    long file is never held whole as Python objects. A file of at most ``keep`` records keeps the records of
    the first pass instead of reading them again. A Parquet file is read whole.
    """

    KEEP_RECORDS = 4096
    """Records of a JSON Lines file kept from the first pass (a longer file is read again chunk by chunk)."""

    def __init__(self, path: Path, keep: int | None = None):
        self.path = path
        self.records: list[InputRecord] | None = None
        self.spans = np.empty((0, 3), dtype=np.int64)
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            keep = self.KEEP_RECORDS if keep is None else keep
            kept: list[InputRecord] | None = []
            missing, micros = array("b"), array("q")  # the order key: (no time, time in µs since 1970, line)
            lines, offsets, lengths = array("q"), array("q"), array("q")
            for rec, offset, length in index_jsonl(path):
                if kept is not None:
                    kept.append(rec)
                    if len(kept) > keep:
                        kept = None
                at = _submitted_at(rec)
                missing.append(at is None)
                micros.append(0 if at is None else (at - _EPOCH) // _MICROSECOND)
                lines.append(rec.line)
                offsets.append(offset)
                lengths.append(length)
            order = np.lexsort((np.frombuffer(lines, dtype=np.int64), np.frombuffer(micros, dtype=np.int64),
                                np.frombuffer(missing, dtype=np.int8)))  # fmt: skip
            spans = np.stack([np.frombuffer(a, dtype=np.int64) for a in (lines, offsets, lengths)], axis=1)
            self.spans = spans[order]
            if kept is not None:
                self.records = [kept[i] for i in order.tolist()]
        else:
            self.records = sorted(read_notifications(path), key=_order_key)

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else self.spans.shape[0]

    def chunk(self, first: int, size: int) -> list[InputRecord]:
        if self.records is not None:
            return self.records[first : first + size]
        return read_jsonl_at(self.path, self.spans[first : first + size].tolist())


class SeenKeys:
    """The notification id + revision of every record screened so far, to count repeats: one dict entry per id
    holding its revision (a set of them for an id seen with several), instead of a set of (id, revision) tuples --
    a run keeps it for every record, and the tuple was 56 bytes of it."""

    __slots__ = ("_revisions",)

    def __init__(self) -> None:
        self._revisions: dict[str, int | set[int]] = {}

    def add(self, notification_id: str, revision: int) -> bool:
        """Record the key; True when it was recorded before."""
        got = self._revisions.get(notification_id)
        if got is None:
            self._revisions[notification_id] = revision
            return False
        if type(got) is set:
            if revision in got:
                return True
            got.add(revision)
            return False
        if got == revision:
            return True
        self._revisions[notification_id] = {got, revision}
        return False

    def __len__(self) -> int:
        return sum(len(v) if type(v) is set else 1 for v in self._revisions.values())


def _ordered(path: Path) -> _Ordered:
    if not path.is_file():
        raise FileNotFoundError(f"notifications file {path} not found")
    return _Ordered(path)


def screen_file(
    notifications: str | Path,
    assessor: Assessor,
    out: str | Path,
    *,
    chunk_size: int = 512,
    progress: Callable[[int], None] | None = None,
    ledger: LedgerStore | None = None,
    stop: StopRequest | None = None,
    checks_out: str | Path | None = None,
) -> ScreenSummary:
    """Screen every record of ``notifications`` and write one decision per record to ``out``.

    Records are decided in ``submitted_at`` order; with a ledger state on the assessor every
    decision is recorded before the next record is assessed, so approvals add up (and with a
    ``ledger`` store the recorded requests are committed chunk by chunk). Invalid records
    become ``reject_incomplete`` decisions with the field errors. Decisions are written in the
    order they are made, with their input line.

    With a ``stop`` request that is set (SIGINT/SIGTERM, :func:`stop_on_signals`) the run ends
    after the chunk it is deciding: the decisions so far are in a complete Parquet file at
    ``out`` + ``.partial`` (``summary.out``) and ``summary.interrupted`` names the signal.

    Decisions are written from the engine's columns (:mod:`powercheck.columnar`); with ``checks_out`` the
    long checks table (one row per notification x check) is written there too.
    """
    summary = ScreenSummary(out=str(out))
    start = time.perf_counter()
    seen = SeenKeys()
    records = _ordered(Path(notifications))
    summary.total = len(records)
    checks_writer = ChecksWriter(checks_out) if checks_out is not None else None
    try:
        with DecisionWriter(out) as writer:
            for first in range(0, len(records), chunk_size):
                if stop:
                    summary.interrupted = stop.name
                    writer.close(keep_partial=True)
                    summary.out = str(writer.partial_path)
                    break
                with gc_paused():  # one pause per chunk, ended after its objects are freed (see below)
                    chunk = records.chunk(first, chunk_size)
                    valid = [r.notification for r in chunk if r.notification is not None]
                    assessed = assessor.assess_isolated(valid)
                    if ledger is not None:
                        ledger.put([r for r in assessed.requests if r is not None])
                    decided = iter(assessed.entries)
                    entries = []
                    for record in chunk:
                        if record.notification is not None:
                            entries.append(next(decided))
                            if seen.add(record.notification.notification_id, record.notification.revision):
                                summary.duplicates += 1
                        else:
                            summary.invalid += 1
                            entries.append(
                                assessor.invalid_decision(
                                    record.errors,
                                    notification_id=record.raw_id,
                                    revision=record.raw_revision,
                                    source=f"line {record.line}",
                                )
                            )
                    decisions, checks = decision_tables(entries, [r.line for r in chunk], assessor.language)
                    writer.write_table(decisions)
                    if checks_writer is not None:
                        checks_writer.write(checks)
                    summary.add_table(decisions, checks)
                    n_records = len(chunk)
                    # free the chunk's records, batch and decisions while the collector is paused: at the end of
                    # the pause it then only walks what survives (the ledger's new requests), not every object of
                    # the batch (about a tenth of a chunk's time when the pause ended with the batch alive)
                    del chunk, valid, assessed, decided, entries
                summary.records += n_records
                if progress:
                    progress(summary.records)
    finally:
        if checks_writer is not None:
            checks_writer.close(keep_partial=summary.interrupted is not None)
    summary.seconds = time.perf_counter() - start
    return summary
