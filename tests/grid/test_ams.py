"""The AMS reader: checks naming file/row/column, and peaks worked out by hand on small series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powercheck.grid import ams
from powercheck.grid.ams import AmsDataError, local_day_counts, read_ams, velander_kw
from powercheck.gs1 import make_gsrn

A = make_gsrn("70705750099000001")
B = make_gsrn("70705750099000002")
C = make_gsrn("70705750099000003")


def series(mp, start, values, *, res="PT60M", direction="import", quality="measured"):
    step = 3600 if res == "PT60M" else 900
    ts = pd.date_range(start, periods=len(values), freq=f"{step}s", tz="UTC")
    return pd.DataFrame(
        {
            "metering_point_id": mp,
            "timestamp_utc": ts,
            "resolution": res,
            "kwh": np.asarray(values, dtype=float),
            "direction": direction,
            "quality": quality,
        }
    )


def write(tmp_path, df, kind="parquet", name="ams"):
    path = tmp_path / f"{name}.{kind}"
    if kind == "parquet":
        df.to_parquet(path, index=False)
    else:
        out = df.copy()
        out["timestamp_utc"] = out.timestamp_utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.to_csv(path, index=False)
    return path


def tariff_series():
    """73 hours from 2025-01-06T23:00Z (= local 2025-01-07 00:00, CET = UTC+1), 1 kWh except:

    ====================  =============  ====
    UTC hour              local day      kWh
    ====================  =============  ====
    2025-01-07T08:00Z     Jan 7          4.5
    2025-01-07T16:00Z     Jan 7          5.0
    2025-01-07T23:00Z     Jan 8 (00:00)  3.0
    2025-01-09T22:00Z     Jan 9 (23:00)  4.0
    2025-01-09T23:00Z     Jan 10 (00:00) 6.0
    ====================  =============  ====
    """
    df = series(A, "2025-01-06T23:00Z", np.ones(73))
    for when, kwh in (
        ("2025-01-07T08:00Z", 4.5),
        ("2025-01-07T16:00Z", 5.0),
        ("2025-01-07T23:00Z", 3.0),
        ("2025-01-09T22:00Z", 4.0),
        ("2025-01-09T23:00Z", 6.0),
    ):
        df.loc[df.timestamp_utc == pd.Timestamp(when), "kwh"] = kwh
    return df


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_tariff_is_the_mean_of_the_three_highest_local_daily_maxima(tmp_path, kind):
    exp = series(A, "2025-01-06T23:00Z", np.zeros(73), direction="export")
    exp.loc[exp.timestamp_utc == pd.Timestamp("2025-01-08T12:00Z"), "kwh"] = 2.5
    summary = read_ams(write(tmp_path, pd.concat([tariff_series(), exp]), kind))
    assert summary.metering_point_id.tolist() == [A]
    # local daily maxima: Jan 7 max(4.5, 5.0) = 5 (one day counts once), Jan 8 3, Jan 9 4, Jan 10 6
    # top three: 6, 5, 4 -> (6 + 5 + 4) / 3 = 5.0 kW.
    # (With UTC days it would be Jan 6: 1, Jan 7: 5, Jan 8: 1, Jan 9: max(4, 6) = 6 -> (6 + 5 + 1) / 3 = 4.0.)
    assert summary.tariff_kw[0] == pytest.approx(5.0)
    assert summary.tariff_month[0] == "2025-01"
    assert summary.peak_import_kw[0] == pytest.approx(6.0)  # 6 kWh in one hour
    assert summary.peak_export_kw[0] == pytest.approx(2.5)
    assert summary.n_values[0] == 146
    assert summary.resolution_s[0] == 3600


def test_tariff_takes_the_largest_month(tmp_path):
    jan = tariff_series()  # January: 5.0 kW (above)
    rest = series(A, "2025-01-10T00:00Z", np.ones(24 * 25))  # continues to 2025-02-03T23:00Z
    for when, kwh in (("2025-02-01T12:00Z", 8.0), ("2025-02-02T12:00Z", 7.0), ("2025-02-03T12:00Z", 6.0)):
        rest.loc[rest.timestamp_utc == pd.Timestamp(when), "kwh"] = kwh
    summary = read_ams(write(tmp_path, pd.concat([jan, rest])))
    # February: (8 + 7 + 6) / 3 = 7.0 kW > January's 5.0 kW
    assert summary.tariff_kw[0] == pytest.approx(7.0)
    assert summary.tariff_month[0] == "2025-02"
    assert summary.peak_import_kw[0] == pytest.approx(8.0)


def test_quarter_hour_peak_and_hourly_tariff(tmp_path):
    values = np.full(96, 0.25)  # 1 kW for a whole local day 2025-01-15 (UTC 2025-01-14T23:00Z + 24 h)
    values[40] = 1.0  # one quarter-hour of 4 kW (index 40 = 2025-01-15T09:00Z)
    summary = read_ams(write(tmp_path, series(B, "2025-01-14T23:00Z", values, res="PT15M")))
    # peak at the series' resolution: 1.0 kWh / 0.25 h = 4 kW
    assert summary.peak_import_kw[0] == pytest.approx(4.0)
    # tariff on clock hours: that hour is 1.0 + 3 x 0.25 = 1.75 kWh; one day only -> 1.75 kW
    assert summary.tariff_kw[0] == pytest.approx(1.75)
    assert summary.resolution_s[0] == 900


def test_dst_days_have_92_and_100_quarter_hours_and_read_without_gaps(tmp_path):
    # local 2025-03-30 is 23 hours long: 2025-03-29T23:00Z .. 2025-03-30T22:00Z; local 2025-10-26 is 25 hours:
    # 2025-10-25T22:00Z .. 2025-10-26T23:00Z
    spring = series(A, "2025-03-29T23:00Z", np.full(92, 0.5), res="PT15M")
    autumn = series(B, "2025-10-25T22:00Z", np.full(100, 0.5), res="PT15M")
    ordinary = series(C, "2025-01-14T23:00Z", np.full(96, 0.5), res="PT15M")
    for df, n in ((spring, 92), (autumn, 100), (ordinary, 96)):
        counts = local_day_counts(df.timestamp_utc.astype("int64").to_numpy() // 10**9)
        assert counts.tolist() == [n]
    summary = read_ams(write(tmp_path, pd.concat([spring, autumn, ordinary])))
    assert summary.n_values.tolist() == [92, 100, 96]
    # 0.5 kWh per quarter-hour = 2 kW; hourly 2 kWh -> tariff 2 kW on every day
    assert summary.peak_import_kw.tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert summary.tariff_kw.tolist() == pytest.approx([2.0, 2.0, 2.0])


def test_group_coincident_peak_and_low_load_hour(tmp_path):
    start = "2025-06-01T10:00Z"
    df = pd.concat(
        [
            series(A, start, [1.0, 3.0, 2.0]),
            series(B, start, [2.0, 1.0, 1.0]),
            series(B, start, [0.0, 0.0, 4.0], direction="export"),
            series(C, start, [9.0, 9.0, 9.0]),  # another network
        ]
    )
    summary = read_ams(write(tmp_path, df), known=[A, B, C], groups=np.array([0, 0, 1]), group_names=["net-a", "net-b"])
    # net-a net import per hour: A + B_import - B_export = [1+2-0, 3+1-0, 2+1-4] = [3, 4, -1]
    assert summary.coincident_peak_kw.tolist() == pytest.approx([4.0, 27.0 / 3])
    assert summary.hour_text(summary.peak_hour[0]) == "2025-06-01T11:00Z"
    assert summary.low_net_kw[0] == pytest.approx(-1.0)
    assert summary.hour_text(summary.low_hour[0]) == "2025-06-01T12:00Z"
    assert summary.at_peak_import_kw.tolist() == pytest.approx([3.0, 1.0, 9.0])
    assert summary.at_peak_export_kw.tolist() == pytest.approx([0.0, 0.0, 0.0])
    assert summary.at_low_import_kw.tolist() == pytest.approx([2.0, 1.0, 9.0])
    assert summary.at_low_export_kw.tolist() == pytest.approx([0.0, 4.0, 0.0])


def test_large_files_are_read_in_batches_with_the_same_result(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    ids = [make_gsrn(f"707057500990{i:05d}") for i in range(7)]
    df = pd.concat([series(mp, "2025-02-01T00:00Z", rng.uniform(0, 3, 24 * 30)) for mp in ids])
    path = write(tmp_path, df)
    whole = read_ams(path, known=ids, groups=np.array([0, 0, 1, 1, 1, 0, 1]), group_names=["a", "b"])
    monkeypatch.setattr(ams, "BATCH_ROWS", 500)  # batches split points in the middle
    batched = read_ams(path, known=ids, groups=np.array([0, 0, 1, 1, 1, 0, 1]), group_names=["a", "b"])
    for field in ("peak_import_kw", "tariff_kw", "n_values", "coincident_peak_kw", "at_peak_import_kw"):
        np.testing.assert_allclose(getattr(batched, field), getattr(whole, field))
    # reference: the tariff by plain pandas
    frame = df[df.metering_point_id == ids[3]].set_index("timestamp_utc").kwh.tz_convert("Europe/Oslo")
    daily = frame.groupby(frame.index.date).max()
    months = pd.Series(daily.values, index=pd.to_datetime(daily.index)).groupby(lambda d: (d.year, d.month))
    expected = max(g.nlargest(3).mean() for _, g in months)
    assert whole.tariff_kw[3] == pytest.approx(expected)
    net_a = df[df.metering_point_id.isin([ids[0], ids[1], ids[5]])].groupby("timestamp_utc").kwh.sum()
    assert whole.coincident_peak_kw[0] == pytest.approx(net_a.max())


def test_ungrouped_large_file_is_refused_naming_the_row(tmp_path, monkeypatch):
    df = pd.concat([series(A, "2025-02-01T00:00Z", np.ones(10)), series(B, "2025-02-01T00:00Z", np.ones(10))])
    df = pd.concat([df, series(A, "2025-02-01T10:00Z", np.ones(10))])
    monkeypatch.setattr(ams, "BATCH_ROWS", 8)
    with pytest.raises(AmsDataError, match=rf"row 20 metering_point_id: {A} appears again after its block ended"):
        read_ams(write(tmp_path, df))


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda df: df.drop(index=5), r"rows 4-5 timestamp_utc: gap of 1 value for \d+ import from 2025-02-01T05:00Z"),
        (lambda df: pd.concat([df, df.iloc[[3]]]), r"rows 3 and 10 timestamp_utc: duplicate value for \d+ import"),
        (lambda df: df.assign(kwh=[1.0] * 7 + [-1.0] + [1.0] * 2), r"row 7 kwh: -1 is out of range \[0, 2000\] kWh"),
        (lambda df: df.assign(kwh=[1.0] * 7 + [np.nan] + [1.0] * 2), r"row 7 kwh: missing or not a number"),
        (
            lambda df: df.assign(direction=["import"] * 9 + ["both"]),
            r"row 9 direction: 'both' is not one of import, export",
        ),
        (lambda df: df.assign(resolution=["PT60M"] * 9 + ["PT5M"]), r"row 9 resolution: 'PT5M' is not one of PT60M"),
        (lambda df: df.assign(quality=["measured"] * 9 + ["guess"]), r"row 9 quality: 'guess' is not one of"),
        (
            lambda df: df.assign(metering_point_id=[A] * 9 + [A[:-1] + str((int(A[-1]) + 1) % 10)]),
            r"row 9 metering_point_id: metering point id \d+ fails the GS1 check digit",
        ),
        (
            lambda df: df.assign(timestamp_utc=df.timestamp_utc + pd.Timedelta(minutes=15)),
            r"rows 0, 1, 2, 3, 4 \.\.\. timestamp_utc: 2025-02-01T00:15Z is not aligned to its resolution",
        ),
    ],
)
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_bad_values_are_named_with_file_row_and_column(tmp_path, edit, pattern, kind):
    df = edit(series(A, "2025-02-01T00:00Z", np.ones(10)).reset_index(drop=True))
    path = write(tmp_path, df, kind)
    with pytest.raises(AmsDataError, match=rf"^AMS file .*ams\.{kind}: .*{pattern}"):
        read_ams(path)


def test_unknown_metering_point_is_named(tmp_path):
    df = pd.concat([series(A, "2025-02-01T00:00Z", np.ones(3)), series(C, "2025-02-01T00:00Z", np.ones(3))])
    with pytest.raises(AmsDataError, match=rf"rows 3, 4, 5 metering_point_id: {C} is not in the customer index"):
        read_ams(write(tmp_path, df), known=[A, B])


def test_csv_timestamp_without_zone_and_changed_resolution_are_refused(tmp_path):
    path = tmp_path / "ams.csv"
    path.write_text(
        "metering_point_id,timestamp_utc,resolution,kwh,direction,quality\n"
        f"{A},2025-02-01T00:00:00Z,PT60M,1,import,measured\n"
        f"{A},2025-02-01T01:00:00,PT60M,1,import,measured\n"
    )
    with pytest.raises(AmsDataError, match=r"row 1 timestamp_utc: '2025-02-01T01:00:00' has no time zone"):
        read_ams(path)
    path.write_text(
        "metering_point_id,timestamp_utc,resolution,kwh,direction,quality\n"
        f"{A},2025-02-01T00:00:00+01:00,PT60M,1,import,measured\n"
        f"{A},2025-02-01T00:00:00Z,PT15M,1,import,measured\n"
    )
    with pytest.raises(AmsDataError, match=r"row 1 resolution: 15 min differs from row 0 \(60 min\)"):
        read_ams(path)


def test_missing_column_and_wrong_suffix(tmp_path):
    df = series(A, "2025-02-01T00:00Z", np.ones(3)).drop(columns="quality")
    with pytest.raises(AmsDataError, match=r"column 'quality' is missing"):
        read_ams(write(tmp_path, df))
    bad = tmp_path / "ams.xlsx"
    bad.write_text("x")
    with pytest.raises(AmsDataError, match=r"an AMS file is \.parquet or \.csv"):
        read_ams(bad)


def test_velander_by_hand():
    # P = k1 W + k2 sqrt(W): W = 20 000 kWh, k1 = 2.5e-4, k2 = 0.03 -> 5.0 + 0.03 x 141.421 = 9.2426 kW
    assert velander_kw(20000.0, 2.5e-4, 0.03) == pytest.approx(5.0 + 0.03 * 141.4213562)
