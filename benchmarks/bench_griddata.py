"""Loading grid-owner data: a region of CGMES feeders with a year of hourly AMS series, with peak memory.

Sizes: by default 10 feeders, 2,000 metering points and 4 weeks of hourly values (a quick run);
``POWERCHECK_BENCH_GRIDDATA_FULL=1``: 1,000 feeders, 100,000 points and 8,760 hours (876 million import
values plus 5 % of the points with an export series). The data are written once into
``$POWERCHECK_BENCH_GRIDDATA_DIR`` (default: a pytest temporary directory) and reused.

* Feeders: copies of the two fixture feeders (tests/data/cgmes/tn_feeder, it_feeder) under their own ids;
  the metering points are spread over their houses (several points per house bus, as in a block of flats).
* AMS: one Parquet file sorted by metering point, float32 kWh (seeded uniform 0-3 kWh).

Measured, each in a fresh process (peak RSS of that process, ``VmHWM``, next to the peak of a process
that only imports powercheck):

* ``ams``: :func:`powercheck.grid.ams.read_ams` of the whole file with the network groups (both passes);
* ``region``: ``GridRegion.load`` of the CGMES region with the AMS file, cold cache (import, short circuit,
  base cases at the metered hours, customer index);
* baselines in the same run, on the same sample: pandapower's plain ``from_cim`` against the wrapper
  (:func:`powercheck.grid.cgmes.import_cgmes`) on 20 feeders, and a pandas ``groupby`` of the measured peak
  against ``read_ams`` on the first 2,000 points (the pandas way holds the whole table in memory, which is
  why it is not the way for 876 million rows).

``extra_info`` carries the figures; no absolute time is asserted.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from powercheck.gs1 import make_gsrn

FULL = os.environ.get("POWERCHECK_BENCH_GRIDDATA_FULL") == "1"
N_FEEDERS = int(os.environ.get("POWERCHECK_BENCH_GRIDDATA_FEEDERS", 1000 if FULL else 10))
N_POINTS = int(os.environ.get("POWERCHECK_BENCH_GRIDDATA_POINTS", 100_000 if FULL else 2_000))
HOURS = int(os.environ.get("POWERCHECK_BENCH_GRIDDATA_HOURS", 8760 if FULL else 24 * 28))
PHASES = os.environ.get(
    "POWERCHECK_BENCH_GRIDDATA_PHASES", "imports,ams,region,from_cim,import_cgmes,pandas_peaks,read_ams_sample"
).split(",")
"""The measured phases (a subset can be run, e.g. the AMS phases alone at full size)."""
EXPORT_SHARE = 0.05
SAMPLE_FEEDERS = 20
SAMPLE_POINTS = 2_000
FIXTURES = Path(__file__).parents[1] / "tests" / "data" / "cgmes"
START = pd.Timestamp("2025-01-01T00:00Z")


def _mp(i: int) -> str:
    return make_gsrn(f"7070575009{i:07d}")


def _write_region(root: Path) -> None:
    """The region directory: feeders, customer index, AMS file (skipped when already complete)."""
    done = root / "complete.json"
    if done.is_file() and json.loads(done.read_text()) == [N_FEEDERS, N_POINTS, HOURS]:
        return
    if root.exists():
        shutil.rmtree(root)
    (root / "networks").mkdir(parents=True)
    manifest = ['[region]\nname = "bench"\ncustomer_points = "cp.parquet"\nams = "ams.parquet"\n']
    from powercheck.grid.cgmes import import_cgmes

    house_buses = {}
    for kind in ("tn_feeder", "it_feeder"):
        net = import_cgmes(FIXTURES / kind).net
        house_buses[kind] = [int(net.bus.index[net.bus.name == f"house_{h}"][0]) for h in (1, 2, 3)]
    for f in range(N_FEEDERS):
        kind = "tn_feeder" if f % 2 == 0 else "it_feeder"
        shutil.copytree(FIXTURES / kind, root / "networks" / f"f{f:04d}")
        system = "TN_400" if kind == "tn_feeder" else "IT_230"
        manifest.append(f'[[network]]\nid = "f{f:04d}"\nsystem = "{system}"\nsource = "networks/f{f:04d}"\n')
    (root / "region.toml").write_text("".join(manifest))
    feeder = np.arange(N_POINTS) % N_FEEDERS
    pd.DataFrame(
        {
            "metering_point_id": [_mp(i) for i in range(N_POINTS)],
            "network_id": [f"f{f:04d}" for f in feeder],
            "bus": [house_buses["tn_feeder" if f % 2 == 0 else "it_feeder"][i % 3] for i, f in enumerate(feeder)],
            "existing_peak_kw": 3.0,
            "main_fuse_a": 25.0,
        }
    ).to_parquet(root / "cp.parquet", index=False)
    rng = np.random.default_rng(15)
    ts = pa.array((START.value // 10**9 + 3600 * np.arange(HOURS)).astype("datetime64[s]"), pa.timestamp("s"))
    ts = ts.cast(pa.timestamp("s", tz="UTC"))
    schema = pa.schema(
        [
            ("metering_point_id", pa.dictionary(pa.int32(), pa.string())),
            ("timestamp_utc", pa.timestamp("s", tz="UTC")),
            ("resolution", pa.dictionary(pa.int8(), pa.string())),
            ("kwh", pa.float32()),
            ("direction", pa.dictionary(pa.int8(), pa.string())),
            ("quality", pa.dictionary(pa.int8(), pa.string())),
        ]
    )
    chunk = 100
    with pq.ParquetWriter(root / "ams.parquet", schema, compression="zstd") as writer:
        for first in range(0, N_POINTS, chunk):
            ids, stamps, kwh, direction = [], [], [], []
            for i in range(first, min(first + chunk, N_POINTS)):
                series = [("import", rng.uniform(0.0, 3.0, HOURS).astype(np.float32))]
                if rng.random() < EXPORT_SHARE:
                    series.append(("export", rng.uniform(0.0, 2.0, HOURS).astype(np.float32)))
                for d, values in series:
                    ids.append(np.full(HOURS, i))
                    stamps.append(ts)
                    kwh.append(values)
                    direction.append(np.full(HOURS, d == "export"))
            n = sum(len(k) for k in kwh)
            names = pa.array([_mp(i) for i in range(first, min(first + chunk, N_POINTS))])
            id_codes = pa.array(np.concatenate(ids) - first, pa.int32())
            table = pa.table(
                {
                    "metering_point_id": pa.DictionaryArray.from_arrays(id_codes, names),
                    "timestamp_utc": pa.concat_arrays(stamps),
                    "resolution": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array(["PT60M"])),
                    "kwh": pa.array(np.concatenate(kwh)),
                    "direction": pa.DictionaryArray.from_arrays(
                        pa.array(np.concatenate(direction).astype(np.int8)), pa.array(["import", "export"])
                    ),
                    "quality": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array(["measured"])),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=1 << 20)
    done.write_text(json.dumps([N_FEEDERS, N_POINTS, HOURS]))


# ---------------------------------------------------------------------------------------------- measured phases


def _phase(name: str, root: str, queue) -> None:
    t0 = time.perf_counter()
    out: dict = {}
    if name == "imports":
        import powercheck.grid.region  # noqa: F401
    elif name == "ams":
        from powercheck.grid.ams import read_ams

        cp = pd.read_parquet(Path(root) / "cp.parquet")
        nets = sorted(cp.network_id.unique())
        groups = pd.Index(nets).get_indexer(cp.network_id)
        summary = read_ams(Path(root) / "ams.parquet", known=cp.metering_point_id.tolist(), groups=groups,
                           group_names=nets)  # fmt: skip
        out = {"points": len(summary), "peak_kw_max": float(np.nanmax(summary.peak_import_kw))}
    elif name == "region":
        from powercheck.grid.region import GridRegion

        region = GridRegion.load(Path(root), cache_dir=Path(root) / "cache", use_cache=False)
        out = {"networks": len(region.network_order), "buses": region.arrays.n_bus, "points": len(region.customers)}
    elif name in ("from_cim", "import_cgmes"):
        import logging
        import warnings

        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        from pandapower.converter.cim.cim2pp.from_cim import from_cim

        from powercheck.grid.cgmes import import_cgmes

        feeders = sorted((Path(root) / "networks").iterdir())[:SAMPLE_FEEDERS]
        t0 = time.perf_counter()
        for f in feeders:
            if name == "from_cim":
                from_cim(file_list=sorted(str(p) for p in f.glob("*.xml")), cgmes_version="2.4.15")
            else:
                import_cgmes(f)
    elif name in ("pandas_peaks", "read_ams_sample"):
        sample = Path(root) / "sample.parquet"
        t0 = time.perf_counter()
        if name == "pandas_peaks":
            df = pd.read_parquet(sample)
            df["metering_point_id"] = df.metering_point_id.astype(str)
            peaks = df[df.direction == "import"].groupby("metering_point_id").kwh.max()
            out = {"points": int(len(peaks))}
        else:
            from powercheck.grid.ams import read_ams

            out = {"points": len(read_ams(sample))}
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_rss_mb()
    queue.put(out)


def _peak_rss_mb() -> float:
    """This process's peak RSS [MB]: VmHWM (reset by exec; ru_maxrss keeps the parent's peak at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(name: str, root: Path) -> dict:
    """Run a phase in a fresh process; its seconds and peak RSS [MB]."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_phase, args=(name, str(root), queue))
    proc.start()
    result = queue.get()
    proc.join()
    assert proc.exitcode == 0, name
    return result


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory) -> Path:
    base = os.environ.get("POWERCHECK_BENCH_GRIDDATA_DIR")
    root = Path(base) if base else tmp_path_factory.mktemp("griddata") / "region"
    _write_region(root)
    sample = root / "sample.parquet"
    if not sample.is_file():
        pf = pq.ParquetFile(root / "ams.parquet")
        rows, tables = 0, []
        keep = {_mp(i) for i in range(SAMPLE_POINTS)}
        for batch in pf.iter_batches(batch_size=1 << 20):
            t = pa.Table.from_batches([batch])
            ids = t.column("metering_point_id").cast(pa.string())
            mask = pa.compute.is_in(ids, value_set=pa.array(sorted(keep)))
            part = t.filter(mask)
            if part.num_rows == 0 and rows:
                break
            rows += part.num_rows
            tables.append(part)
        pq.write_table(pa.concat_tables(tables), sample)
    return root


def test_load_cgmes_region_with_a_year_of_ams(benchmark, region_dir):
    figures = {"size": {"feeders": N_FEEDERS, "points": N_POINTS, "hours": HOURS, "full": FULL}}

    def run():
        for phase in PHASES:
            figures[phase] = measure(phase, region_dir)

    benchmark.pedantic(run, rounds=1, iterations=1)
    if "import_cgmes" in figures and "from_cim" in figures:
        figures["ratio_wrapper_to_from_cim"] = figures["import_cgmes"]["seconds"] / figures["from_cim"]["seconds"]
    if "read_ams_sample" in figures and "pandas_peaks" in figures:
        figures["ratio_read_ams_to_pandas"] = figures["read_ams_sample"]["seconds"] / figures["pandas_peaks"]["seconds"]
        assert figures["read_ams_sample"]["points"] == figures["pandas_peaks"]["points"] == min(SAMPLE_POINTS, N_POINTS)
    if "ams" in figures:
        figures["ams"]["values_per_second"] = N_POINTS * HOURS * (1 + EXPORT_SHARE) / figures["ams"]["seconds"]
        assert figures["ams"]["points"] == N_POINTS
    if "region" in figures:
        assert figures["region"]["networks"] == N_FEEDERS and figures["region"]["points"] == N_POINTS
    benchmark.extra_info.update(figures)
    print(json.dumps(figures, indent=1))
