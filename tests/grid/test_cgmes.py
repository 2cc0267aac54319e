"""CGMES 2.4.15 networks: the imported feeder equals the same feeder built in pandapower, dropped classes are
mapped or refused by name, every mutant fixture gives a named error, and a CGMES region decides as its JSON twin.

Fixtures: tests/data/cgmes/ (written by ``python -m tests.data.cgmes.generate`` with tests/helpers/cgmes_writer.py).
"""

from __future__ import annotations

import copy
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.shortcircuit as sc
import pandas as pd
import pytest

from powercheck.grid.cgmes import CgmesError, import_cgmes
from powercheck.grid.networks import GridModelError, complete_network, load_grid_defaults
from powercheck.grid.region import GridRegion, parse_manifest
from powercheck.gs1 import make_gsrn
from powercheck.models import Notification
from powercheck.rules.engine import Assessor
from tests.data.cgmes.generate import demo_feeder
from tests.helpers.grids import to_json
from tests.helpers.mini import FIXED_TIME

DATA = Path(__file__).parents[1] / "data" / "cgmes"
FEEDERS = [("tn_feeder", 0.4, 5.0), ("it_feeder", 0.23, 3.0)]
REL = 1e-9
"""Stated tolerance of the CGMES round trip (relative): the XML holds the feeder's numbers in repr precision."""


def by_name(net, table, res, column):
    return getattr(net, res).set_index(getattr(net, table).name)[column]


@pytest.mark.parametrize(("name", "kv", "kw"), FEEDERS)
def test_imported_feeder_equals_the_pandapower_feeder(name, kv, kw):
    imported = import_cgmes(DATA / name).net
    direct = demo_feeder(kv, kw)
    defaults = load_grid_defaults()
    assert complete_network(imported, defaults) == complete_network(direct, defaults)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for net in (imported, direct):
            pp.runpp(net)
        vm_i, vm_d = by_name(imported, "bus", "res_bus", "vm_pu"), by_name(direct, "bus", "res_bus", "vm_pu")
        np.testing.assert_allclose(vm_i.reindex(vm_d.index), vm_d, rtol=REL)
        i_i, i_d = by_name(imported, "line", "res_line", "i_ka"), by_name(direct, "line", "res_line", "i_ka")
        np.testing.assert_allclose(i_i.reindex(i_d.index), i_d, rtol=REL)
        for case, fault in (("max", "3ph"), ("min", "3ph"), ("min", "1ph"), ("min", "2ph")):
            for net in (imported, direct):
                sc.calc_sc(net, case=case, fault=fault)
            ik_i = by_name(imported, "bus", "res_bus_sc", "ikss_ka")
            ik_d = by_name(direct, "bus", "res_bus_sc", "ikss_ka")
            np.testing.assert_allclose(ik_i.reindex(ik_d.index), ik_d, rtol=REL, err_msg=f"{case} {fault}")
    # the lines keep their lengths and ratings; the mRIDs stay in origin_id
    assert imported.line.set_index("name").length_km.to_dict() == pytest.approx(
        direct.line.set_index("name").length_km.to_dict()
    )
    assert imported.line.set_index("name").max_i_ka.to_dict() == pytest.approx(
        direct.line.set_index("name").max_i_ka.to_dict()
    )
    assert imported.bus.origin_id.str.startswith("_").all()


def test_fuses_are_mapped_to_closed_switches_with_protection_records():
    from pandapower.converter.cim.cim2pp.from_cim import from_cim

    files = sorted(str(p) for p in (DATA / "tn_feeder").glob("*.xml"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = from_cim(file_list=files, cgmes_version="2.4.15")
        pp.runpp(plain)
    # pandapower alone drops the fuses: everything behind them is unsupplied, without an error
    assert len(plain.switch) == 1
    assert plain.res_bus.set_index(plain.bus.name).vm_pu[["house_1", "house_2", "house_3"]].isna().all()
    imp = import_cgmes(DATA / "tn_feeder")
    fuses = imp.net.switch[imp.net.switch.type == "fuse"]
    assert sorted(fuses.name) == ["F1", "F2", "F3"] and fuses.closed.all()
    assert fuses.in_ka.tolist() == pytest.approx([0.063] * 3)
    assert sorted((p.name, p.rated_current_a) for p in imp.protection) == [("F1", 63.0), ("F2", 63.0), ("F3", 63.0)]
    # the fuse version decides the same load flow as the version with breakers
    breaker = import_cgmes(DATA / "fuse_as_breaker").net
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(imp.net)
        pp.runpp(breaker)
    np.testing.assert_allclose(
        by_name(imp.net, "bus", "res_bus", "vm_pu").sort_index(),
        by_name(breaker, "bus", "res_bus", "vm_pu").sort_index(),
    )


@pytest.mark.parametrize(
    ("mutant", "pattern"),
    [
        (
            "no_slack",
            r"no_slack: no slack \(no ExternalNetworkInjection with referencePriority > 0.*the file has a source \(_",
        ),
        (
            "wrong_profile",
            r"wrong_profile_EQ\.xml Model\.profile 'http://example\.org/CIM/EquipmentCorez/3/1' is not a CGMES profile URI",
        ),
        ("unsupplied", r"unsupplied: 1 bus\(es\) no source supplies: house_3 \(_[0-9a-f-]+\)"),
        ("phase", r"ACLineSegmentPhase is not supported \(per-phase data .*\): _phase-a-of-main-1"),
    ],
)
def test_every_mutant_gives_a_named_error(mutant, pattern):
    with pytest.raises(CgmesError, match=pattern):
        import_cgmes(DATA / mutant)


def test_mutants_load_when_the_region_allows_it():
    imp = import_cgmes(DATA / "no_slack", slack_from_source=True)
    assert len(imp.net.ext_grid) == 1 and imp.notes[0].startswith("slack set from the source _")
    imp = import_cgmes(DATA / "unsupplied", allow_unsupplied=True)
    assert [name for _, name, _ in imp.unsupplied] == ["house_3"]


def test_ground_disconnector_and_bad_zip_are_refused(tmp_path):
    src = tmp_path / "gd"
    shutil.copytree(DATA / "tn_feeder", src)
    eq = src / "tn_feeder_EQ.xml"
    eq.write_text(eq.read_text().replace("</rdf:RDF>", '  <cim:GroundDisconnector rdf:ID="_gd1"/>\n</rdf:RDF>'))
    with pytest.raises(CgmesError, match=r"GroundDisconnector is not supported .*: _gd1"):
        import_cgmes(src)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../evil.txt", "x")
    with pytest.raises(CgmesError, match=r"zip member '../evil.txt' is not an .xml file"):
        import_cgmes(bad)


CUSTOMERS = {"house_1": make_gsrn("70705750077000001"), "house_3": make_gsrn("70705750077000003")}


def _region(root: Path, kind: str) -> Path:
    """A region with the TN and IT feeders from CGMES ('cgmes': a directory and a zip) or from pandapower JSON."""
    (root / "networks").mkdir(parents=True)
    manifest = '[region]\nname = "cgmes"\ncustomer_points = "cp.parquet"\n'
    rows = []
    for name, kv, kw in FEEDERS:
        if kind == "cgmes":
            if name == "tn_feeder":
                shutil.copytree(DATA / name, root / "networks" / name)
                source = f"networks/{name}"
            else:
                with zipfile.ZipFile(root / "networks" / f"{name}.zip", "w") as z:
                    for f in sorted((DATA / name).glob("*.xml")):
                        z.write(f, f.name)
                source = f"networks/{name}.zip"
            net = import_cgmes(DATA / name).net
        else:
            net = demo_feeder(kv, kw)
            to_json(net, root / "networks" / f"{name}.json")
            source = f"networks/{name}.json"
        system = "TN_400" if kv == 0.4 else "IT_230"
        manifest += f'[[network]]\nid = "{name}"\nsystem = "{system}"\nsource = "{source}"\n'
        for house, mp in CUSTOMERS.items():
            bus = int(net.bus.index[net.bus.name == house][0])
            rows.append({"metering_point_id": mp[:-3] + ("1" if kv == 0.4 else "2") + mp[-2:-1], "network_id": name,
                         "bus": bus, "existing_peak_kw": kw, "main_fuse_a": 25.0})  # fmt: skip
    (root / "region.toml").write_text(manifest)
    df = pd.DataFrame(rows)
    df["metering_point_id"] = [make_gsrn(m[:17]) for m in df.metering_point_id]
    df.to_parquet(root / "cp.parquet", index=False)
    return root


def test_cgmes_region_decides_as_its_pandapower_json_twin(tmp_path, policy):
    cg = GridRegion.load(_region(tmp_path / "cg", "cgmes"), cache_dir=tmp_path / "cache")
    js = GridRegion.load(_region(tmp_path / "js", "json"), cache_dir=tmp_path / "cache")
    assert [s.source for s in cg.specs.values()] == ["networks/tn_feeder", "networks/it_feeder.zip"]
    # the fuse ratings of the grid model fill the customers' upstream fuse (63 A, from the CGMES Fuse)
    assert (cg.customers.upstream_fuse_a == 63.0).all() and (cg.customers.upstream_fuse_source == "grid_model").all()
    for mp, system in zip(cg.customers.metering_point_id, ["TN_400", "TN_400", "IT_230", "IT_230"]):
        n = Notification.model_validate(
            {"notification_id": "C", "job_type": "heat_pump", "metering_point_id": mp, "network_system": system,
             "main_fuse_before_a": 25, "main_fuse_after_a": 32,
             "appliances": [{"kind": "heat_pump", "rated_kw": 6.0, "connection": "3ph",
                             "start_current_ratio": 1.2, "starts_per_hour": 2}]}
        )  # fmt: skip
        a = Assessor(cg, policy, clock=lambda: FIXED_TIME).assess(n)
        b = Assessor(js, policy, clock=lambda: FIXED_TIME).assess(copy.deepcopy(n))
        assert a.outcome == b.outcome
        assert [c.rule_id for c in a.checks] == [c.rule_id for c in b.checks]
        for ca, cb in zip(a.checks, b.checks):
            assert ca.status == cb.status, ca.rule_id
            if ca.value is not None:
                assert ca.value == pytest.approx(cb.value, rel=1e-6), ca.rule_id
        # the selectivity check uses the CGMES fuse (63 A upstream of the 32 A main fuse: 63 / 32 >= 1.6)
        assert a.check("PROT.SELECTIVITY").value == pytest.approx(63.0 / 32.0)


def test_manifest_cgmes_flags(tmp_path):
    root = _region(tmp_path / "r", "cgmes")
    text = (root / "region.toml").read_text()
    (root / "region.toml").write_text(
        text.replace('source = "networks/tn_feeder"\n', 'source = "networks/tn_feeder"\nslack_from_source = "yes"\n')
    )
    with pytest.raises(GridModelError, match=r"network\[0\]\.slack_from_source must be true or false"):
        parse_manifest(root)
    (root / "region.toml").write_text(
        text.replace('source = "networks/tn_feeder"\n', 'source = "networks/tn_feeder"\nallow_unsupplied = true\n')
    )
    assert parse_manifest(root).networks[0].allow_unsupplied
    shutil.rmtree(root / "networks" / "tn_feeder")
    shutil.copytree(DATA / "unsupplied", root / "networks" / "tn_feeder")
    region = GridRegion.load(root, cache_dir=tmp_path / "cache")
    problems = {(p["network"], p["problem"]) for p in region.grid_problems()}
    assert ("tn_feeder", "islanded") in problems
    notes = region.summary()["networks"][0]["import_notes"]
    assert len(notes) == 1 and notes[0].startswith("unsupplied bus house_3 (_")
    # a model without a slack, loaded with slack_from_source: the summary says what was done
    shutil.rmtree(root / "networks" / "tn_feeder")
    shutil.copytree(DATA / "no_slack", root / "networks" / "tn_feeder")
    (root / "region.toml").write_text(
        text.replace('source = "networks/tn_feeder"\n', 'source = "networks/tn_feeder"\nslack_from_source = true\n')
    )
    region = GridRegion.load(root, cache_dir=tmp_path / "cache")
    assert region.summary()["networks"][0]["import_notes"][0].startswith("slack set from the source _")


def test_cim_mrids_join_the_customer_index_through_a_mapping_table(tmp_path):
    root = tmp_path / "r"
    (root / "networks").mkdir(parents=True)
    shutil.copytree(DATA / "tn_feeder", root / "networks" / "tn_feeder")
    net = import_cgmes(DATA / "tn_feeder").net
    house_1 = net.bus.origin_id[net.bus.name == "house_1"].iloc[0]  # a ConnectivityNode
    load_3 = net.load.origin_id[net.load.name == "load_3"].iloc[0]  # an EnergyConsumer at house_3
    a, b = make_gsrn("70705750066000001"), make_gsrn("70705750066000002")
    (root / "region.toml").write_text(
        '[region]\nname = "m"\ncustomer_points = "cp.parquet"\ncim_map = "cim_map.csv"\n'
        '[[network]]\nid = "tn"\nsystem = "TN_400"\nsource = "networks/tn_feeder"\n'
    )
    pd.DataFrame({"metering_point_id": [a, b], "network_id": ["tn", "tn"], "bus": [None, None],
                  "existing_peak_kw": [5.0, 5.0]}).to_parquet(root / "cp.parquet", index=False)  # fmt: skip
    (root / "cim_map.csv").write_text(f"metering_point_id,network_id,mrid\n{a},tn,{house_1}\n{b},tn,{load_3}\n")
    region = GridRegion.load(root, cache_dir=tmp_path / "cache")
    buses = region.customers.set_index("metering_point_id").bus
    assert buses[a] == int(net.bus.index[net.bus.name == "house_1"][0])
    assert buses[b] == int(net.bus.index[net.bus.name == "house_3"][0])
    (root / "cim_map.csv").write_text(f"metering_point_id,network_id,mrid\n{a},tn,{house_1}\n{b},tn,_nope\n")
    with pytest.raises(
        GridModelError, match=r"cim_map\.csv: row 1 mrid: '_nope' is not a ConnectivityNode or EnergyConsumer of 'tn'"
    ):
        GridRegion.load(root, cache_dir=tmp_path / "cache")


def test_fixtures_are_what_the_generator_writes(tmp_path):
    from tests.data.cgmes.generate import generate

    generate(tmp_path)
    for f in sorted(DATA.rglob("*.xml")):
        assert (tmp_path / f.relative_to(DATA)).read_bytes() == f.read_bytes(), f
