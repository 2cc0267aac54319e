"""The customer-index schema and its validation: errors name the file, the row and the column."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from powercheck.grid import customers as customers_mod
from powercheck.grid.customers import (
    CUSTOMER_COLUMNS,
    CUSTOMER_SCHEMA,
    REQUIRED_CUSTOMER_COLUMNS,
    normalise_customer_points,
    read_customer_points,
    schema_table,
    synthesize_customer_points,
)
from powercheck.grid.networks import GridModelError
from powercheck.grid.region import GridRegion
from powercheck.gs1 import make_gsrn
from tests.helpers.grids import feeder

# two networks of 3 and 2 LV buses (only bus_ids and n_bus are read)
NETWORKS = {
    "a": SimpleNamespace(bus_ids=np.array([10, 11, 12]), n_bus=3),
    "b": SimpleNamespace(bus_ids=np.array([5, 6]), n_bus=2),
}


def _index(**columns):
    base = {
        "metering_point_id": [make_gsrn(f"70705750098{i:06d}") for i in range(3)],
        "network_id": ["a", "b", "a"],
        "bus": [12, 5, 10],
        "existing_peak_kw": [2.0, 5.5, 0.0],
    }
    base.update(columns)
    return pd.DataFrame(base)


def _copy_region(src, dst):
    (dst / "region.toml").write_text((src / "region.toml").read_text())
    (dst / "networks").mkdir()
    for g in (src / "networks").iterdir():
        (dst / "networks" / g.name).write_bytes(g.read_bytes())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda df: df.assign(metering_point_id=["707057500000000011"] + list(df.metering_point_id[1:])),
            r"row 0 metering_point_id: .*check digit",
        ),
        (lambda df: df.assign(network_id=["nowhere"] + list(df.network_id[1:])), r"row 0 network_id: 'nowhere'"),
        (lambda df: df.assign(bus=[0] + list(df.bus[1:])), r"row 0 bus: 0 is not an in-service LV bus"),
        (lambda df: df.assign(existing_peak_kw=[-1.0] + list(df.existing_peak_kw[1:])), r"row 0 existing_peak_kw"),
        (lambda df: pd.concat([df, df.iloc[[1]]], ignore_index=True), r"metering_point_id: duplicated"),
        (lambda df: df.drop(columns=["bus"]), r"column 'bus' is missing"),
    ],
)
def test_customer_index_errors_name_row_and_column(mini_region_dir, tmp_path, cache_dir, mutate, message):
    _copy_region(mini_region_dir, tmp_path)
    df = pd.read_parquet(mini_region_dir / "customer_points.parquet")
    mutate(df).to_parquet(tmp_path / "customer_points.parquet", index=False)
    with pytest.raises(GridModelError, match=message):
        GridRegion.load(tmp_path, cache_dir=cache_dir)


def test_schema_table_declares_every_column_once():
    names = [c.name for c in CUSTOMER_SCHEMA]
    assert len(names) == len(set(names))
    assert list(CUSTOMER_COLUMNS) == names
    assert REQUIRED_CUSTOMER_COLUMNS == ("metering_point_id", "network_id", "bus", "existing_peak_kw")
    for c in CUSTOMER_SCHEMA:
        assert c.dtype in ("string", "int64", "float64") and c.description
        assert c.unit == {"_kw": "kW", "_kwh": "kWh", "_a": "A"}.get("_" + c.name.rsplit("_", 1)[-1], "")
    # the documentation is generated from the table
    table = schema_table()
    for c in CUSTOMER_SCHEMA:
        assert c.name in table and c.name in customers_mod.__doc__
    assert "(0, 6300] A" in table and "[0, 2000] kW" in table


def test_normalise_adds_optional_columns_fills_export_and_finds_bus_rows():
    df = _index(extra=["x", "y", "z"])
    out = normalise_customer_points(df, NETWORKS, "test index")
    assert out.bus_row.tolist() == [2, 3, 0]  # a: rows 0-2, b: rows 3-4
    assert out.existing_export_kw.tolist() == [0.0, 0.0, 0.0]  # missing = 0
    assert out.main_fuse_a.isna().all() and out.upstream_fuse_a.isna().all()
    assert out.extra.tolist() == ["x", "y", "z"]  # other columns are kept
    assert str(out.metering_point_id.dtype) == "string" and out.bus.dtype == np.int64
    assert list(df.columns) == ["metering_point_id", "network_id", "bus", "existing_peak_kw", "extra"]  # not modified


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"existing_peak_kw": [2.0, 5000.0, 1.0]},
            r"^idx.parquet: row 1 existing_peak_kw: 5000 kW is out of range \[0, 2000\] kW$",
        ),
        ({"existing_peak_kw": [2.0, 1.0, np.nan]}, r"row 2 existing_peak_kw: missing, must be in \[0, 2000\] kW"),
        (
            {"existing_export_kw": [-1.0, np.nan, 0.0]},
            r"row 0 existing_export_kw: -1 kW is out of range \[0, 2000\] kW$",
        ),
        ({"main_fuse_a": [25.0, 0.0, np.nan]}, r"row 1 main_fuse_a: 0 A is out of range \(0, 6300\] A$"),
        (
            {"service_cable_ampacity_a": [np.nan, -63.0, 1e5]},
            r"row 1 service_cable_ampacity_a: -63 A .*; row 2 service_cable_ampacity_a: 100000 A",
        ),
        ({"upstream_fuse_a": [np.nan, 7000.0, 100.0]}, r"row 1 upstream_fuse_a: 7000 A is out of range \(0, 6300\] A"),
        ({"bus": [12, "five", 10]}, r"^idx.parquet: row 1 bus: 'five' cannot be read as int64$"),
        ({"bus": [12.0, np.nan, 10.0]}, r"^idx.parquet: row 1 bus: missing, must be int64$"),
        ({"network_id": ["a", "c", "a"]}, r"row 1 network_id: 'c' is not a network of the region"),
        ({"bus": [12, 7, 10]}, r"row 1 bus: 7 is not an in-service LV bus of network 'b'"),
        (
            {"metering_point_id": [make_gsrn("70705750098000001")] * 3},
            r"rows \[0, 1, 2\] metering_point_id: duplicated",
        ),
    ],
)
def test_errors_name_origin_row_and_column(columns, message):
    with pytest.raises(GridModelError, match=message):
        normalise_customer_points(_index(**columns), NETWORKS, "idx.parquet")


def test_many_problems_are_listed_up_to_a_limit():
    df = _index(existing_peak_kw=[-1.0, -2.0, -3.0], main_fuse_a=[0.0, 0.0, 0.0], upstream_fuse_a=[0.0, 0.0, 0.0])
    df = pd.concat([df] * 2, ignore_index=True)
    df["metering_point_id"] = [make_gsrn(f"70705750097{i:06d}") for i in range(6)]
    with pytest.raises(GridModelError, match=r"row 0 existing_peak_kw: -1 kW .* \(\+\d+ more\)$"):
        normalise_customer_points(df, NETWORKS, "idx")


def test_read_customer_points_names_the_file(tmp_path):
    path = tmp_path / "cp.parquet"
    _index().drop(columns=["network_id"]).to_parquet(path, index=False)
    with pytest.raises(GridModelError, match=rf"customer index {path}: column 'network_id' is missing"):
        read_customer_points(path)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(GridModelError, match="bad.parquet: not a Parquet file"):
        read_customer_points(tmp_path / "bad.parquet")
    with pytest.raises(GridModelError, match="missing.parquet not found"):
        read_customer_points(tmp_path / "missing.parquet")
    _index().to_parquet(path, index=False)
    assert list(read_customer_points(path).columns) == list(CUSTOMER_COLUMNS)


def test_region_error_names_the_customer_file(mini_region_dir, tmp_path, cache_dir):
    _copy_region(mini_region_dir, tmp_path)
    df = pd.read_parquet(mini_region_dir / "customer_points.parquet")
    df.loc[3, "main_fuse_a"] = -25.0
    df.to_parquet(tmp_path / "customer_points.parquet", index=False)
    with pytest.raises(GridModelError, match=r"customer_points.parquet: row 3 main_fuse_a: -25 A is out of range"):
        GridRegion.load(tmp_path, cache_dir=cache_dir)


def test_demo_index_is_within_the_schema_ranges(demo_region):
    cust = demo_region.customers
    assert len(cust) == 285
    for c in CUSTOMER_SCHEMA:
        if c.min is not None or c.max is not None:
            assert not c.out_of_range(cust[c.name].to_numpy(dtype=float)).any(), c.name


def test_synthesized_points_have_the_required_columns_and_export():
    net = feeder(0.4, load_kw=5.0)
    points = synthesize_customer_points("tn", 7, net)
    assert list(points.columns) == [*REQUIRED_CUSTOMER_COLUMNS, "existing_export_kw"]
    assert points.existing_peak_kw.tolist() == pytest.approx([5.0, 5.0, 5.0])
    assert points.metering_point_id[0] == make_gsrn("70705750007000001")
