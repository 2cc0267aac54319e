"""AMS series and Velander as the load basis: a crafted feeder where the base case changes by hand calculation.

Feeder (tests/helpers/grids.py ``feeder``): 400 V TN, 315 kVA Dyn, 3 x 100 m NAYY 4x150 main cable with a
30 m NAYY 4x50 branch to each house, 5 kW (cos phi 1) per house in the grid model. Metering points:

* ``END``  at house_3: typed-in peak 5 kW, and an AMS series of three hours 2 / 20 / 4 kWh import;
* ``MID``  at house_2: no typed-in peak, 20 000 kWh a year, household -> Velander;
* ``NEAR`` at house_1: typed-in peak 5 kW.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from powercheck.grid.networks import GridModelError
from powercheck.grid.region import GridRegion
from powercheck.gs1 import make_gsrn
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from tests.helpers.grids import BRANCH, bus_named, feeder, region_row, to_json
from tests.helpers.mini import FIXED_TIME

END = make_gsrn("70705750088000001")
MID = make_gsrn("70705750088000002")
NEAR = make_gsrn("70705750088000003")
HOURS = pd.date_range("2025-01-15T10:00Z", periods=3, freq="h")
END_KWH = [2.0, 20.0, 4.0]


def build(root, *, with_ams: bool, mid_peak: float | None = None, category="household"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "networks").mkdir(exist_ok=True)
    net = feeder(0.4, s_sc_mva=1e6, load_kw=5.0, n_main=3)
    to_json(net, root / "networks" / "f.json")
    manifest = '[region]\nname = "basis"\ncustomer_points = "cp.parquet"\n'
    if with_ams:
        manifest += 'ams = "ams.csv"\n'
    manifest += '[[network]]\nid = "f"\nsystem = "TN_400"\nsource = "networks/f.json"\n'
    (root / "region.toml").write_text(manifest)
    pd.DataFrame(
        {
            "metering_point_id": [END, MID, NEAR],
            "network_id": ["f"] * 3,
            "bus": [bus_named(net, "house_3"), bus_named(net, "house_2"), bus_named(net, "house_1")],
            "existing_peak_kw": [5.0, mid_peak, 5.0],
            "main_fuse_a": [25.0] * 3,
            "annual_energy_kwh": [np.nan, 20000.0, np.nan],
            "customer_category": [None, category, None],
        }
    ).to_parquet(root / "cp.parquet", index=False)
    pd.DataFrame(
        {
            "metering_point_id": END,
            "timestamp_utc": HOURS.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resolution": "PT60M",
            "kwh": END_KWH,
            "direction": "import",
            "quality": "measured",
        }
    ).to_csv(root / "ams.csv", index=False)
    return net


def v_receiving(v1: float, p_w: float, r: float, x: float, q_var: float = 0.0) -> float:
    """Receiving-end line-to-line voltage of a line with series impedance R + jX feeding P + jQ (3-phase totals).

    From V1^2 = V2^2 + 2 (P R + Q X) + (P^2 + Q^2)(R^2 + X^2) / V2^2:
    V2^2 = (a + sqrt(a^2 - 4 (P^2 + Q^2)(R^2 + X^2))) / 2 with a = V1^2 - 2 (P R + Q X).
    """
    a = v1**2 - 2 * (p_w * r + q_var * x)
    return math.sqrt((a + math.sqrt(a**2 - 4 * (p_w**2 + q_var**2) * (r**2 + x**2))) / 2)


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    root = tmp_path_factory.mktemp("basis")
    net = build(root / "ams", with_ams=True)
    build(root / "plain", with_ams=False)
    cache = root / "cache"
    return (
        net,
        GridRegion.load(root / "ams", cache_dir=cache),
        GridRegion.load(root / "plain", cache_dir=cache),
    )


def test_customer_peaks_come_from_ams_index_and_velander(regions):
    _, region, plain = regions
    c = region.customers.set_index("metering_point_id")
    # END: measured peak = max(2, 20, 4) kWh in one hour = 20 kW (not the typed-in 5 kW)
    assert c.at[END, "existing_peak_kw"] == pytest.approx(20.0)
    assert c.at[END, "peak_basis"] == "ams"
    assert c.at[END, "ams_tariff_kw"] == pytest.approx(20.0)  # one local day: its maximum
    # MID: Velander 2.5e-4 x 20000 + 0.03 x sqrt(20000) = 5.0 + 4.2426 = 9.2426 kW
    assert c.at[MID, "existing_peak_kw"] == pytest.approx(5.0 + 0.03 * math.sqrt(20000.0))
    assert c.at[MID, "peak_basis"] == "velander"
    assert c.at[MID, "peak_assumptions"] == "grid:velander_household_k1,grid:velander_household_k2"
    assert c.at[NEAR, "existing_peak_kw"] == 5.0 and c.at[NEAR, "peak_basis"] == "customer_index"
    assert plain.customers.set_index("metering_point_id").at[END, "peak_basis"] == "customer_index"


def test_base_case_uses_the_metered_hours(regions):
    net, region, plain = regions
    r = 0.030 * BRANCH["r_ohm_per_km"]
    x = 0.030 * BRANCH["x_ohm_per_km"]
    house, cab = bus_named(net, "house_3"), bus_named(net, "cabinet_3")
    for reg, p_peak_kw, p_low_kw in ((region, 20.0, 2.0), (plain, 5.0, 5.0 * 0.0)):
        arr = reg.arrays
        h, c = region_row(reg, "f", house), region_row(reg, "f", cab)
        # peak: the metered bus carries its coincident-peak hour's 20 kWh/h (grid model: 5 kW x peak scaling 1)
        v1 = 400.0 * arr.vm_peak_pu[c]
        assert 400.0 * arr.vm_peak_pu[h] == pytest.approx(v_receiving(v1, 1000 * p_peak_kw, r, x), rel=1e-7)
        branch = int(np.flatnonzero(arr.line_ids == int(net.line.index[net.line.name == "branch_3"][0]))[0])
        # I = P / (sqrt3 V2)
        assert arr.line_i_peak_a[branch] == pytest.approx(
            1000 * p_peak_kw / (math.sqrt(3) * 400 * arr.vm_peak_pu[h]), rel=1e-6
        )
        # low load: the metered bus at its low hour (2 kW); unmetered loads x low_load_scaling
        low_scaling = float(reg.defaults["low_load_scaling"].value)
        p_low = 1000 * (p_low_kw if reg is region else 5.0 * low_scaling)
        v1 = 400.0 * arr.vm_low_pu[c]
        assert 400.0 * arr.vm_low_pu[h] == pytest.approx(v_receiving(v1, p_low, r, x), rel=1e-7)
    m = region.measured["f"]
    assert (m.peak_hour, m.low_hour) == ("2025-01-15T11:00Z", "2025-01-15T10:00Z")
    assert region.base_case_basis("f").startswith("ams: coincident peak 2025-01-15T11:00Z")
    assert "1 of 3 points metered" in region.base_case_basis("f")
    assert plain.base_case_basis("f") == "grid model loads x peak_load_scaling 1"
    # the feeder's peak voltage is lower with the measured 20 kW than with the typed-in 5 kW
    h = region_row(region, "f", house)
    assert region.arrays.vm_peak_pu[h] < plain.arrays.vm_peak_pu[h]


def test_each_decision_names_its_load_basis(regions, policy):
    _, region, plain = regions

    def ev(mp):
        return Notification.model_validate(
            {
                "notification_id": f"N-{mp[-4:]}",
                "job_type": "ev_charger",
                "metering_point_id": mp,
                "network_system": "TN_400",
                "main_fuse_before_a": 25,
                "main_fuse_after_a": 25,
                "appliances": [{"kind": "ev_charger", "rated_kw": 11.0, "connection": "3ph"}],
            }
        )

    assessor = Assessor(region, policy, clock=lambda: FIXED_TIME)
    d_end, d_mid, d_near = (assessor.assess(ev(mp)) for mp in (END, MID, NEAR))
    assert d_end.network_data.load_basis == "ams" and d_end.network_data.existing_peak_kw == pytest.approx(20.0)
    assert d_mid.network_data.load_basis == "velander"
    assert {"grid:velander_household_k1", "grid:velander_household_k2"} <= set(d_mid.assumptions)
    assert "grid:velander_household_k1" not in d_end.assumptions
    assert d_near.network_data.load_basis == "customer_index"
    assert d_end.network_data.base_case.startswith("ams: coincident peak")
    d_plain = Assessor(plain, policy, clock=lambda: FIXED_TIME).assess(ev(END))
    assert d_plain.network_data.load_basis == "customer_index"
    # the same EV charger sees a lower base-case voltage on the metered feeder
    assert d_end.check("VOLT.PEAK_MIN").value < d_plain.check("VOLT.PEAK_MIN").value


def test_customer_without_a_peak_basis_is_named(tmp_path):
    build(tmp_path / "a", with_ams=False, category="barn")
    with pytest.raises(GridModelError, match=r"row 1 customer_category: 'barn' has no Velander constants"):
        GridRegion.load(tmp_path / "a", cache_dir=tmp_path / "cache")
    build(tmp_path / "b", with_ams=False, category=None)
    with pytest.raises(GridModelError, match=r"row 1 customer_category: missing; needed for Velander"):
        GridRegion.load(tmp_path / "b", cache_dir=tmp_path / "cache")


def test_region_velander_category_override(tmp_path):
    build(tmp_path / "a", with_ams=False, category="cabin")
    manifest = tmp_path / "a" / "region.toml"
    manifest.write_text(
        manifest.read_text()
        + '[defaults.velander_cabin_k1]\nvalue = 1e-4\ntag = "P"\nsource = "own AMS study"\n'
        + '[defaults.velander_cabin_k2]\nvalue = 0.05\ntag = "P"\nsource = "own AMS study"\n'
    )
    region = GridRegion.load(tmp_path / "a", cache_dir=tmp_path / "cache")
    c = region.customers.set_index("metering_point_id")
    # 1e-4 x 20000 + 0.05 x 141.42 = 2 + 7.0711 kW; tag P: not an assumption
    assert c.at[MID, "existing_peak_kw"] == pytest.approx(2.0 + 0.05 * math.sqrt(20000.0))
    assert c.at[MID, "peak_assumptions"] == ""


def test_ams_with_unknown_point_refuses_the_region(tmp_path):
    build(tmp_path, with_ams=True)
    other = make_gsrn("70705750088000009")
    text = (tmp_path / "ams.csv").read_text().replace(END, other, 1)
    (tmp_path / "ams.csv").write_text(text)
    with pytest.raises(
        GridModelError, match=rf"ams.csv: row 0 metering_point_id: {other} is not in the customer index"
    ):
        GridRegion.load(tmp_path, cache_dir=tmp_path / "cache")


def test_warm_load_keeps_the_load_basis_and_a_changed_ams_file_rebuilds_it(tmp_path):
    net = build(tmp_path / "a", with_ams=True)
    cache = tmp_path / "cache"
    cold = GridRegion.load(tmp_path / "a", cache_dir=cache)
    warm = GridRegion.load(tmp_path / "a", cache_dir=cache)
    assert warm.version == cold.version and warm.ams is None  # the customer index came from the Arrow cache
    for col in ("existing_peak_kw", "peak_basis", "peak_assumptions", "ams_tariff_kw"):
        assert warm.customers[col].equals(cold.customers[col]), col
    m, w = cold.measured["f"], warm.measured["f"]
    assert (w.peak_hour, w.low_hour) == (m.peak_hour, m.low_hour)
    assert np.array_equal(w.buses, m.buses) and np.array_equal(w.peak_import_kw, m.peak_import_kw)
    assert warm.base_case_basis("f") == cold.base_case_basis("f")
    # END's hours now 2 / 30 / 4 kWh: a new version, its peak 30 kW, and the base case at the metered bus changes
    ams = pd.read_csv(tmp_path / "a" / "ams.csv")
    ams["kwh"] = [2.0, 30.0, 4.0]
    ams.to_csv(tmp_path / "a" / "ams.csv", index=False)
    changed = GridRegion.load(tmp_path / "a", cache_dir=cache)
    assert changed.version != cold.version
    assert changed.customers.set_index("metering_point_id").at[END, "existing_peak_kw"] == pytest.approx(30.0)
    assert changed.measured["f"].peak_import_kw.max() == pytest.approx(30.0)
    h = region_row(changed, "f", bus_named(net, "house_3"))
    assert changed.arrays.vm_peak_pu[h] < cold.arrays.vm_peak_pu[h]
