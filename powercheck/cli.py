"""Command line: ``powercheck screen|report|capacity|ledger|serve|whatif|policy|region|kernels``."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from powercheck import __version__


def _load(args: argparse.Namespace):
    from powercheck import aot
    from powercheck.demo import demo_region_dir
    from powercheck.grid.region import GridRegion
    from powercheck.rules.policy import load_policy

    aot.set_cache_dir(args.cache_dir)  # the kernels compiled ahead of time are looked for there too
    policy = load_policy(args.policy)
    grid = Path(args.grid) if args.grid else demo_region_dir()

    def say(message: str) -> None:
        if not args.quiet:
            print(f"grid model: {message}", file=sys.stderr)

    region = GridRegion.load(grid, cache_dir=args.cache_dir, progress=say, allow_outside=args.allow_outside_region)
    warn_grid_problems(region)
    return region, policy


def warn_grid_problems(region, shown: int = 5) -> None:
    """One line per bus that cannot be assessed (the first few), on stderr: notifications there are escalated."""
    problems = region.grid_problems()
    if not problems:
        return
    networks = sorted({p["network"] for p in problems})
    print(
        f"grid model: {len(problems)} buses in {len(networks)} networks cannot be assessed; "
        "notifications there are escalated (GRID.DATA):",
        file=sys.stderr,
    )
    for p in problems[:shown]:
        print(f"  network {p['network']} bus {p['bus']}: {p['why']}", file=sys.stderr)
    if len(problems) > shown:
        print(f"  ... and {len(problems) - shown} more (powercheck region lists them all)", file=sys.stderr)


def cmd_screen(args: argparse.Namespace) -> int:
    from powercheck.gcpause import start_up

    with start_up():  # what is imported and loaded here lives for the whole run: see powercheck.gcpause
        from powercheck.io import check_notifications_file, check_writable
        from powercheck.ledger import CapacityState, open_ledger
        from powercheck.rules.engine import Assessor
        from powercheck.rules.policy import PolicyKey
        from powercheck.screen import ProgressBar, count_records, screen_file, stop_on_signals

    path = Path(args.notifications)
    if not path.is_file():
        print(f"powercheck screen: notifications file {path} not found", file=sys.stderr)
        return 2
    # every argument checked before any work: no grid is loaded, no file written for a bad one
    check_notifications_file(path)
    check_writable(args.out, "--out")
    if args.checks_out:
        check_writable(args.checks_out, "--checks-out")
    if args.ledger:
        check_ledger_file(Path(args.ledger))
    with stop_on_signals() as stop:
        with start_up():
            region, policy = _load(args)
            if args.ledger:
                valid_days = policy.number(PolicyKey.APPROVAL_VALID_DAYS)
                store, state = open_ledger(args.ledger, region, valid_days=valid_days)
            else:  # the in-memory state alone is the run's ledger: an in-memory SQLite copy would never be read
                store, state = None, CapacityState.of(region, [])
            assessor = Assessor(region, policy, ledger=state, language=args.lang, screening=args.appliance_defaults)
        show = not args.quiet and not args.no_progress  # the records are counted only for a progress bar shown
        bar = ProgressBar(count_records(path) if show else None, enabled=show)
        try:
            with stop.screening():
                summary = screen_file(
                    path,
                    assessor,
                    args.out,
                    chunk_size=args.chunk_size,
                    progress=bar.update,
                    ledger=store,
                    stop=stop,
                    checks_out=args.checks_out,
                )
        finally:
            bar.close()
            if store is not None:
                store.close()
    print(f"region {region.name} ({region.version}), policy {policy.id} {policy.version} ({policy.hash})")
    if args.ledger:
        print(f"capacity ledger {args.ledger}")
    print(summary.table())
    if summary.interrupted:
        print(f"powercheck screen: {summary.table().splitlines()[-1]}", file=sys.stderr)
        return 128 + int(stop.signum)
    return 0


def check_ledger_file(path: Path) -> None:
    """Refuse a ledger path that is not (and cannot become) a SQLite database, before any work."""
    import sqlite3

    from powercheck.io import check_writable

    check_writable(path, "--ledger")
    if path.is_file() and path.stat().st_size > 0:
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                con.execute("PRAGMA schema_version").fetchone()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise ValueError(f"--ledger {path}: not a SQLite database ({exc})") from None


def cmd_report(args: argparse.Namespace) -> int:
    from powercheck.io import DecisionNotFound, check_writable, read_decision
    from powercheck.report import render_report

    path = Path(args.decisions)
    if not path.is_file():
        print(f"powercheck report: decisions file {path} not found", file=sys.stderr)
        return 2
    check_writable(args.out, "--out")
    try:
        decision = read_decision(path, args.notification_id, args.revision)
    except DecisionNotFound as exc:
        print(f"powercheck report: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(decision, args.lang), encoding="utf-8")
    print(f"{decision.notification_id} revision {decision.revision}: {decision.outcome} -> {out}")
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    import time

    from powercheck.io import capacity_table, write_table_atomic
    from powercheck.ledger import open_ledger
    from powercheck.rules.capacity import capacity_map
    from powercheck.rules.context import GridView
    from powercheck.rules.policy import PolicyKey

    if args.ledger and not Path(args.ledger).is_file():
        print(f"powercheck capacity: ledger file {args.ledger} not found", file=sys.stderr)
        return 2
    region, policy = _load(args)
    store, state = open_ledger(args.ledger, region, valid_days=policy.number(PolicyKey.APPROVAL_VALID_DAYS))
    try:
        grid = GridView.of(region)
        start = time.perf_counter()
        cmap = capacity_map(grid, policy, state if args.ledger else None)
        seconds = time.perf_counter() - start
    finally:
        store.close()
    meta = {"region": f"{region.name} ({region.version})", "policy": f"{policy.id} {policy.version} ({policy.hash})",
            "ledger": str(args.ledger) if args.ledger else "none"}  # fmt: skip
    tbl = capacity_table(cmap.columns(grid), meta)
    write_table_atomic(tbl, args.out)
    n = tbl.num_rows
    print(f"region {region.name} ({region.version}), policy {policy.id} {policy.version} ({policy.hash})")
    rate = n / max(seconds, 1e-9)
    print(f"capacity map of {n} customer points in {seconds:.2f} s ({rate:,.0f} points/s) -> {args.out}")
    if args.html:
        from powercheck.report import render_capacity

        Path(args.html).write_text(render_capacity(tbl, args.lang, heading=region.name), encoding="utf-8")
        print(f"HTML -> {args.html}")
    return 0


def _request_json(r) -> dict:
    return {
        "notification_id": r.notification_id,
        "revision": r.revision,
        "metering_point_id": r.metering_point_id,
        "network_id": r.network_id,
        "bus": r.bus,
        "status": r.status.value,
        "job_type": r.job_type,
        "installer_id": r.installer_id,
        "submitted_at": r.submitted_at.isoformat() if r.submitted_at else None,
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "fuse_after_a": r.fuse_after_a,
        "device_after": r.device_after,
        "kv_after_a": r.kv_after_a,
        "reservation": json.loads(r.reservation.to_json()),
        "conditions": list(r.conditions),
    }


def _device_record(record):
    """A ledger file's device (type, rating_a, characteristic/settings), validated; None when absent."""
    if record is None:
        return None
    from powercheck.rules.devices import device_of_record

    if not isinstance(record, dict) or not isinstance(record.get("rating_a"), (int, float)):
        raise ValueError("device_after: expected a table with type and rating_a")
    try:
        spec = device_of_record(record)
    except ValueError as exc:
        raise ValueError(f"device_after: {exc}") from None
    return {"rating_a": float(record["rating_a"]), **spec.model_dump(mode="json", exclude_none=True)}


def _kv_record(value):
    """A ledger file's KV after a kv_change [A], validated (a fuse rating); None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 4000:
        raise ValueError(f"kv_after_a: expected a fuse rating in (0, 4000] A, got {value!r}")
    return float(value)


def _request_from_json(data: dict):
    from datetime import datetime

    from powercheck.ledger import LedgerRequest, RequestStatus, Reservation

    def ts(value):
        return datetime.fromisoformat(value) if value else None

    return LedgerRequest(
        notification_id=str(data["notification_id"]),
        revision=int(data["revision"]),
        metering_point_id=str(data["metering_point_id"]),
        network_id=data.get("network_id"),
        bus=data.get("bus"),
        status=RequestStatus(data["status"]),
        job_type=data.get("job_type"),
        installer_id=data.get("installer_id"),
        submitted_at=ts(data.get("submitted_at")),
        decided_at=ts(data.get("decided_at")),
        fuse_after_a=data.get("fuse_after_a"),
        device_after=_device_record(data.get("device_after")),
        kv_after_a=_kv_record(data.get("kv_after_a")),
        reservation=Reservation.from_json(json.dumps(data.get("reservation") or {})),
        conditions=tuple(data.get("conditions") or ()),
    )


def cmd_ledger(args: argparse.Namespace) -> int:
    from powercheck.ledger import LedgerStore

    store = LedgerStore(args.ledger)
    try:
        if args.action == "list":
            rows = store.list(network_id=args.network, status=args.status)
            if args.json:
                for r in rows:
                    print(json.dumps(_request_json(r)))
                return 0
            print(
                f"{'notification':<20} {'rev':>3} {'status':<25} {'network':<18} {'bus':>5} {'metering point':<19} job"
            )
            for r in rows:
                print(
                    f"{r.notification_id:<20} {r.revision:>3} {r.status.value:<25} {str(r.network_id):<18} "
                    f"{str(r.bus):>5} {r.metering_point_id:<19} {r.job_type or ''}"
                )
            print(f"{len(rows)} requests")
            return 0
        if args.action == "set-status":
            before, after = store.set_status(args.id, args.status, actor=args.actor, note=args.note)
            print(f"{after.notification_id}: {before.status.value} -> {after.status.value}")
            return 0
        # import
        from powercheck.io import MAX_RECORD_BYTES, _lines, decode_record

        requests = []
        with open(args.file, "rb") as fh:  # all or nothing: the first bad line stops the import, named
            for number, line in _lines(fh, MAX_RECORD_BYTES):
                if line is None:
                    raise ValueError(f"{args.file} line {number}: longer than {MAX_RECORD_BYTES} bytes")
                if number == 1:
                    line = line.removeprefix(b"\xef\xbb\xbf")
                if not line.strip():
                    continue
                try:
                    requests.append(_request_from_json(decode_record(line)))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise ValueError(f"{args.file} line {number}: not a ledger request ({exc})") from None
        store.put(requests, actor=args.actor or "import")
        print(f"imported {len(requests)} requests into {args.ledger}")
        return 0
    finally:
        store.close()


def cmd_policy(args: argparse.Namespace) -> int:
    from powercheck.rules.policy import load_policy

    policy = load_policy(args.policy)
    summary = policy.summary()
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    from powercheck.params import Group

    headings = {
        Group.LEGAL: "Legal limits (FoL, EN 50160): exceeding one means the job cannot be connected as notified",
        Group.PLANNING: "Planning values and rules of the grid owner (auto-approval, margins, workflow)",
        Group.EMISSION: "Emission limits of one appliance or customer",
        Group.PROTECTION: "Protection: fuses, breakers (MCB B/C/D, adjustable), KV, short-circuit factors, selectivity",
        Group.MODEL: "Model constants and assumptions (defaults for missing data)",
    }
    print(f"policy {policy.id} {policy.version} (hash {policy.hash}) from {policy.source_path}")
    for group, params in policy.grouped().items():
        if not params:
            continue
        print(f"\n{headings[group]}:")
        for key, param in params.items():
            table = group is Group.PROTECTION and isinstance(param.value, dict)  # device data: every row shown
            short = not isinstance(param.value, (dict, list)) or len(str(param.value)) < 60
            value = "" if table else param.value if short else "{...}"
            flag = "  ASSUMPTION" if param.is_assumption else ""
            print(f"  [{param.tag.value:>1}] {key} = {value} {param.unit}{flag}")
            if table:
                for label, row in param.value.items():
                    print(f"        {label} = {row}")
            print(f"        source: {param.source}")
    print()
    print(f"unverified assumptions ([R]): {', '.join(summary['assumptions'])}")
    return 0


def cmd_region(args: argparse.Namespace) -> int:
    from powercheck import aot

    region, _ = _load(args)
    print(json.dumps(region.summary(), indent=2))
    if not args.quiet and aot.enabled() and not aot.is_built():
        hint = "kernels: not compiled ahead of time; `powercheck kernels build` makes `screen` start faster"
        print(hint, file=sys.stderr)
    return 0


def cmd_kernels(args: argparse.Namespace) -> int:
    """``powercheck kernels build|status``: the kernels compiled ahead of time (:mod:`powercheck.aot`)."""
    from powercheck import aot

    aot.set_cache_dir(args.cache_dir)
    path, _ = aot.module_paths()
    if args.action == "status":
        if not aot.enabled():
            state = "not used (POWERCHECK_AOT=0 or NUMBA_DISABLE_JIT=1)"
        elif aot.loaded_module() is not None:
            state = "built"
        elif path.exists():
            state = "present but not loadable (stale, corrupt or unreadable): run `powercheck kernels build --force`"
        else:
            state = "not built: run `powercheck kernels build`"
        print(f"kernels compiled ahead of time: {state}\n  {path}")
        return 0
    if aot.is_built() and not args.force:
        if not args.quiet:
            print(f"powercheck kernels: up to date ({path})", file=sys.stderr)
        return 0
    if not args.quiet:
        n = sum(map(len, aot.SIGNATURES.values()))
        print(
            f"powercheck kernels: compiling {len(aot.SIGNATURES)} kernels ({n} signatures) into {path} ...",
            file=sys.stderr,
        )
    try:
        built = aot.build(force=args.force)
    except aot.KernelBuildError as exc:
        print(f"powercheck kernels build: {exc}; the kernels are compiled just in time instead", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"powercheck kernels: built {built}", file=sys.stderr)
    return 0


def service_limits(args: argparse.Namespace):
    """The service's limits from ``powercheck serve`` options: :class:`~powercheck.service.limits.ServiceLimits`'s
    defaults for those not given (the parser leaves them None, so that it need not import the service)."""
    from powercheck.service.limits import ServiceLimits

    given = {
        "max_body_bytes": None if args.max_body_mb is None else int(args.max_body_mb * 1024 * 1024),
        "max_batch": args.max_batch,
        "max_appliances": args.max_appliances,
        "header_timeout_s": args.header_timeout,
        "body_timeout_s": args.body_timeout,
    }
    return ServiceLimits(**{name: value for name, value in given.items() if value is not None})


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from powercheck import aot
    from powercheck.demo import demo_region_dir
    from powercheck.service import generated_token, load_tokens
    from powercheck.service.app import ServiceConfig, create_app
    from powercheck.service.limits import guarded_protocol

    aot.set_cache_dir(args.cache_dir)  # the kernels compiled ahead of time are looked for there too
    limits = service_limits(args)
    tokens = load_tokens(args.tokens_file) or generated_token()
    config = ServiceConfig(
        grid=Path(args.grid) if args.grid else demo_region_dir(),
        db=Path(args.db),
        tokens=tokens,
        policy=Path(args.policy) if args.policy else None,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        chunk_size=args.chunk_size,
        allow_outside_region=args.allow_outside_region,
        allow_screening=args.allow_screening,
        telemetry=args.otel,
        limits=limits,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning" if args.quiet else "info",
        http=guarded_protocol(limits.header_timeout_s, args.http),
        loop=args.loop,
        timeout_keep_alive=5,
    )
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    import importlib.util
    import json

    from powercheck.whatif.args import ArgumentError, StudyProgress, check_whatif_args, local_scheduler_advice

    # every argument checked before pandapower, dask or matplotlib is imported
    try:
        checked = check_whatif_args(args)
    except ArgumentError as exc:
        print(f"powercheck whatif: {exc}", file=sys.stderr)
        return 2
    missing = [
        m
        for m in ("simbench", "matplotlib") + (("distributed",) if checked.scheduler else ())
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        print(f"powercheck whatif: needs {', '.join(missing)}: pip install 'powercheck[whatif]'", file=sys.stderr)
        return 2
    from powercheck.whatif.assumptions import AssumptionsError, load_assumptions

    try:
        assumptions = load_assumptions(args.assumptions)
    except AssumptionsError as exc:
        print(f"powercheck whatif: --assumptions: {exc}", file=sys.stderr)
        return 2
    if checked.scheduler == "local":
        advice = local_scheduler_advice(os.cpu_count())
        if advice:
            print(f"powercheck whatif: note: {advice}", file=sys.stderr)
    bar = StudyProgress(enabled=not args.quiet)
    bar("starting", 0, 1, "importing pandapower, numba, matplotlib")

    import pyarrow as pa
    import pyarrow.parquet as pq

    from powercheck.rules.policy import load_policy
    from powercheck.whatif.feeders import customer_bus_distance_km, parse_feeders
    from powercheck.whatif.report import sample_warnings, write_report
    from powercheck.whatif.study import StudyConfig, cached_feeder, run_study

    bar("starting", 1, 1)
    policy = load_policy(args.policy)
    specs = parse_feeders(args.feeders)
    ledger_items: tuple = ()
    ledger_note = ""
    if args.ledger:
        from powercheck.rules.policy import PolicyKey
        from powercheck.whatif.ledger import LEDGER_ASSUMPTION, ledger_loads, read_ledger

        requests = read_ledger(args.ledger, policy.number(PolicyKey.APPROVAL_VALID_DAYS))
        studied = {s.network_id for s in specs if s.kind == "region"}
        used = [r for r in requests if r.network_id in studied]
        ledger_items = ledger_loads(used)
        ledger_note = (
            f"{args.ledger}: {len(used)} active requests applied on the studied networks "
            f"({len(requests) - len(used)} on other networks); {LEDGER_ASSUMPTION}"
        )
        if not args.quiet:
            print(f"powercheck whatif: ledger {ledger_note}", file=sys.stderr)
    config = StudyConfig.from_policy(
        policy,
        ledger=ledger_items,
        assumptions=assumptions,
        ev_shares=checked.ev_shares,
        pv_shares=checked.pv_shares,
        samples=checked.samples,
        days=checked.days,
        seed=checked.seed,
        chunk=checked.chunk,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        results = run_study(
            specs,
            config,
            scheduler=checked.scheduler,
            cache_dir=args.cache_dir,
            progress=bar,
            scheduler_timeout=checked.scheduler_timeout,
        )
    finally:
        bar.close()
    feeders_info = []
    bus_distances = {}
    for spec in specs:
        f = cached_feeder(spec, args.cache_dir, assumptions.profiles_file)
        bus_distances[spec.name] = customer_bus_distance_km(f)
        feeders_info.append(
            {
                "feeder": spec.name,
                "system": spec.system,
                "customers": f.n_customers,
                "lv_buses": int(f.lv_bus_mask.sum()),
                "base_load_factor": f.base_load_factor,
                "assumptions": "; ".join(f.assumptions),
            }
        )
    meta = {
        "engine_version": __version__,
        "policy": f"{policy.id} {policy.version} ({policy.hash})",
        "config": json.dumps(config.to_dict()),
        "feeders": json.dumps([s.to_dict() for s in specs]),
        "ledger": ledger_note or "none",
        "assumptions_source": assumptions.source,
        "recalled_assumptions": "; ".join(assumptions.recalled_in_use()) or "none",
        "assumptions": assumptions.text,
    }
    table = pa.Table.from_pandas(results, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), **{f"powercheck.{k}": v for k, v in meta.items()}}
    )
    pq.write_table(table, out / "whatif.parquet")
    for warning in sample_warnings(config.samples, checked.max_probability):
        print(f"powercheck whatif: warning: {warning}", file=sys.stderr)
    bar("writing report", 0, 1, str(out / "report.html"))
    write_report(
        results,
        out / "report.html",
        meta=meta,
        feeders_info=feeders_info,
        max_probability=checked.max_probability,
        criterion=checked.criterion,
        limits={
            "v_min_pu": config.v_min_pu,
            "v_max_pu": config.v_max_pu,
            "unbalance_max_percent": config.unbalance_max_percent,
            "line_loading_max_percent": config.line_loading_max_percent,
            "trafo_loading_max_percent": config.trafo_loading_max_percent,
        },
        bus_distances=bus_distances,
    )
    bar("writing report", 1, 1)
    bar.close()
    print(f"{len(results)} scenarios -> {out / 'whatif.parquet'}, {out / 'report.html'}")
    prob = results.groupby(["feeder", "pv_share", "ev_share"]).violation.mean().unstack("ev_share")
    print("violation probability (rows: feeder, PV share; columns: EV share)")
    print(prob.round(2).to_string())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="powercheck", description=__doc__)
    parser.add_argument("--version", action="version", version=f"powercheck {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--grid", help="region directory with region.toml (default: the embedded demo region)")
        p.add_argument("--policy", help="policy TOML (default: the packaged policy)")
        p.add_argument("--cache-dir", help="where precomputed grid arrays are cached (default: ~/.cache/powercheck)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        p.add_argument(
            "--allow-outside-region",
            action="store_true",
            help="let region.toml name network files and a customer index outside the region directory",
        )

    screen = sub.add_parser("screen", help="decide a file of notifications (.jsonl or .parquet)")
    screen.add_argument("notifications", help="notifications file (.jsonl or .parquet)")
    screen.add_argument("--out", default="decisions.parquet", help="decisions Parquet file (default: %(default)s)")
    screen.add_argument(
        "--checks-out", default=None, help="also write the checks as a long Parquet table (one row per check)"
    )
    screen.add_argument("--chunk-size", type=int, default=512, help="notifications decided per vectorised batch")
    screen.add_argument("--no-progress", action="store_true", help="no progress bar")
    screen.add_argument("--lang", choices=("en", "nb"), default="en", help="language of reasons and measures")
    screen.add_argument(
        "--ledger",
        help="capacity ledger (SQLite): approvals reserve capacity across runs; without it the batch keeps "
        "an in-memory ledger (still cumulative within the run)",
    )
    screen.add_argument(
        "--appliance-defaults",
        action="store_true",
        help="screening study: assess challenging appliances without datasheet values on the policy's appliance "
        "defaults (each named in the decision) instead of answering request_info",
    )
    common(screen)
    screen.set_defaults(func=cmd_screen)

    rep = sub.add_parser("report", help="one HTML page of a decision: checks, measures, the feeder path")
    rep.add_argument("notification_id", help="notification id")
    rep.add_argument("--decisions", default="decisions.parquet", help="decisions file of `powercheck screen`")
    rep.add_argument("--revision", type=int, help="this revision (default: the latest in the file)")
    rep.add_argument("--lang", choices=("en", "nb"), help="language (default: the decision's)")
    rep.add_argument("--out", default="report.html", help="HTML file (default: %(default)s)")
    rep.set_defaults(func=cmd_report)

    cap = sub.add_parser("capacity", help="largest EV/PV/heat-pump/motor size and main fuse at every customer point")
    cap.add_argument("--out", default="capacity.parquet", help="capacity map Parquet file (default: %(default)s)")
    cap.add_argument("--html", help="also write the map as an HTML page")
    cap.add_argument("--ledger", help="capacity ledger (SQLite): the map with its approved requests applied")
    cap.add_argument("--lang", choices=("en", "nb"), default="en", help="language of the HTML page")
    common(cap)
    cap.set_defaults(func=cmd_capacity)

    led = sub.add_parser("ledger", help="list, change or import requests of a capacity ledger")
    led_sub = led.add_subparsers(dest="action", required=True)
    led_list = led_sub.add_parser("list", help="requests of the ledger")
    led_list.add_argument("--network", help="only this network")
    led_list.add_argument("--status", help="only this status")
    led_list.add_argument("--json", action="store_true", help="one JSON object per line (the import format)")
    led_set = led_sub.add_parser("set-status", help="move a request to a status (built, cancelled, ...)")
    led_set.add_argument("id", help="notification id")
    led_set.add_argument("status", help="new status")
    led_set.add_argument("--note", help="why (kept in the request's history)")
    led_imp = led_sub.add_parser("import", help="import requests (JSON lines as `ledger list --json` prints)")
    led_imp.add_argument("file", help="JSON lines file of requests")
    for p_ in (led_list, led_set, led_imp):
        p_.add_argument("--ledger", required=True, help="ledger file (SQLite)")
        p_.add_argument("--actor", default=None, help="who makes the change (kept in the history)")
    led.set_defaults(func=cmd_ledger)

    pol = sub.add_parser("policy", help="show the active policy and its assumptions")
    pol.add_argument("--policy", help="policy TOML (default: the packaged policy)")
    pol.add_argument("--json", action="store_true")
    pol.set_defaults(func=cmd_policy)

    serve = sub.add_parser("serve", help="run the HTTP rule service (default: on the embedded demo region)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    serve.add_argument("--db", default="powercheck-decisions.sqlite", help="SQLite decision store (WAL mode)")
    serve.add_argument("--tokens-file", help="API tokens, one 'name:token' per line (also POWERCHECK_API_TOKENS)")
    serve.add_argument("--chunk-size", type=int, default=256, help="batch items decided and committed together")
    # no default here: the service's own (ServiceLimits) apply to what is not given, and the parser does not
    # import the service for every command
    serve.add_argument("--max-body-mb", type=float, help="largest request body [MiB] (413)")
    serve.add_argument("--max-batch", type=int, help="notifications per batch (422)")
    serve.add_argument("--max-appliances", type=int, help="appliance rows per notification (422)")
    serve.add_argument("--header-timeout", type=float, help="seconds to send request headers")
    serve.add_argument("--body-timeout", type=float, help="seconds to send a request body (408)")
    serve.add_argument(
        "--otel",
        action="store_true",
        help="FastAPI's OpenTelemetry spans and metrics when a provider is configured (off by default: it costs "
        "a provider lookup per request)",
    )
    serve.add_argument(
        "--http",
        choices=("auto", "httptools", "h11"),
        default="auto",
        help="HTTP parser (default auto: httptools when installed, else h11)",
    )
    serve.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop (default auto: uvloop when installed, else asyncio)",
    )
    serve.add_argument(
        "--allow-screening",
        action="store_true",
        help="let clients ask for screening decisions (?screening=true): challenging appliances without datasheet "
        "values assessed on the policy's appliance defaults, named; never stored or recorded in the ledger. Off by "
        "default: production decisions never use appliance defaults",
    )
    common(serve)
    serve.set_defaults(func=cmd_serve)

    whatif = sub.add_parser("whatif", help="Monte Carlo study of EV and PV uptake on LV feeders")
    whatif.add_argument(
        "--feeders",
        nargs="+",
        required=True,
        help="SimBench LV codes (e.g. 1-LV-rural1--0-sw, add @IT for 230 V IT), simbench:lv, "
        "demo, demo:<network> or region:<dir>[#<network>]",
    )
    whatif.add_argument(
        "--ev-share", default="0:1:0.1", help="EV shares: start:stop:step or a,b,c (default %(default)s)"
    )
    whatif.add_argument("--pv-share", default="0", help="PV shares, as --ev-share (default %(default)s)")
    whatif.add_argument("--samples", default="10", help="random placements per share combination (default %(default)s)")
    whatif.add_argument("--days", default="4", help="days studied: N critical days (load peak, PV peak) or 'all'")
    whatif.add_argument("--seed", default="2026", help="random seed (default %(default)s)")
    whatif.add_argument("--chunk", default="8", help="scenarios per task (one batched power flow; default %(default)s)")
    whatif.add_argument(
        "--scheduler",
        help="run on dask: 'local' (a LocalCluster; pays from about 4 cores) or a scheduler address tcp://host:8786",
    )
    whatif.add_argument(
        "--scheduler-timeout", default="5", help="seconds to wait for the scheduler to answer (default %(default)s)"
    )
    whatif.add_argument(
        "--max-probability",
        default="0.05",
        help="violation probability a hosting capacity may reach (default %(default)s)",
    )
    whatif.add_argument(
        "--criterion",
        default="any",
        help="a limit is violated when exceeded at any step (any) or at more than 5 %% of the steps (p95, "
        "EN 50160 style); default %(default)s",
    )
    whatif.add_argument(
        "--assumptions",
        help="device assumptions TOML (EV mix, smart charging, PV, heat pumps, batteries, base-load unbalance, own "
        "profiles; default: the packaged powercheck/whatif/assumptions.toml)",
    )
    whatif.add_argument(
        "--ledger",
        help="capacity ledger (SQLite, read only): start from the region with its approved requests applied "
        "(approvals older than the policy's validity left out)",
    )
    whatif.add_argument("--policy", help="policy TOML for the limits (default: the packaged policy)")
    whatif.add_argument("--cache-dir", help="grid and SimBench cache (default: ~/.cache/powercheck)")
    whatif.add_argument("--out", default="whatif-out", help="output directory (whatif.parquet, report.html)")
    whatif.add_argument("-q", "--quiet", action="store_true")
    whatif.set_defaults(func=cmd_whatif)

    reg = sub.add_parser("region", help="load a region (building its cache) and show a summary")
    common(reg)
    reg.set_defaults(func=cmd_region)

    ker = sub.add_parser("kernels", help="compile the screening's numeric kernels ahead of time (faster start-up)")
    ker.add_argument("action", choices=("build", "status"), help="build the module, or say whether it is built")
    ker.add_argument("--cache-dir", help="where the module is written (default: ~/.cache/powercheck)")
    ker.add_argument("--force", action="store_true", help="rebuild even if a valid module is there")
    ker.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    ker.set_defaults(func=cmd_kernels)
    return parser


def _input_errors() -> tuple[type[BaseException], ...]:
    """Errors reported as one line: bad input files, paths that cannot be written, a ledger file SQLite refuses
    (sqlite3 is imported only by commands that use a ledger: without it no ``sqlite3.Error`` can occur)."""
    sqlite3 = sys.modules.get("sqlite3")
    return (ValueError, OSError, KeyError) + ((sqlite3.Error,) if sqlite3 is not None else ())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except _input_errors() as exc:
        # bad input files (policy, region, notifications), paths that cannot be written: one clear line, no traceback
        print(f"powercheck {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C (or SIGTERM) outside a screening chunk: no traceback
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"powercheck {args.command}: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + int(signum)
    except Exception as exc:  # a bug: one line, the traceback on request
        if os.environ.get("POWERCHECK_TRACEBACK"):
            raise
        print(
            f"powercheck {args.command}: unexpected error ({type(exc).__name__}: {exc}); "
            "set POWERCHECK_TRACEBACK=1 for the traceback",
            file=sys.stderr,
        )
        return 70


def run() -> NoReturn:
    """The ``powercheck`` command as a process (console script, ``python -m powercheck``): :func:`main`, then
    :func:`end_process`.

    OpenBLAS starts single-threaded unless ``OPENBLAS_NUM_THREADS`` is set: no command does BLAS work that threads
    would speed up (the numeric kernels are numba loops; pandapower's grids here are small), and each OpenBLAS
    library loaded (numpy's, and SciPy's, which numba imports) starts a worker thread per core that spins for a
    while before it sleeps -- about 0.1 s of CPU time per ``powercheck screen`` taken from the other work on a
    2-core machine.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported (this module does not import it)
    end_process(main())


def end_process(code: int) -> NoReturn:
    """End the process with exit status ``code`` once the command is done, without the interpreter's teardown.

    The outputs are flushed and the exit handlers run as at a normal exit (``atexit``: logging's flush,
    ``weakref.finalize`` callbacks such as temporary directories, the libraries' own); what is skipped is
    freeing every module and object one by one and the last garbage collections, about 50 ms after a screening
    run (numpy, pyarrow, pydantic and numba loaded) that nothing reads. Commands close their files themselves.
    With other threads still running, a failed flush (a closed pipe) or no ``atexit._run_exitfuncs`` the process
    exits the normal way (``sys.exit``).
    """
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if threading.active_count() > 1 or run_exit_handlers is None:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or stream: the normal exit reports it
        sys.exit(code)
    run_exit_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
