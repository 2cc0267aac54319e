"""Shared fixtures: the demo region, a small fully specified test region, a fixed clock."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from powercheck.demo import demo_region_dir
from powercheck.grid.region import GridRegion
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import load_policy
from tests.helpers.grids import bus_named, feeder, to_json
from tests.helpers.mini import (
    FIXED_TIME,
    MINI_POINTS,
    appliance_jobs_auto_approvable,
    mini_mp,
    without_measures,
    without_paperwork,
)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One grid cache for the whole session (POWERCHECK_TEST_CACHE reuses one across runs)."""
    env = os.environ.get("POWERCHECK_TEST_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("grid-cache")


@pytest.fixture(scope="session")
def policy():
    return load_policy()


@pytest.fixture(scope="session")
def demo_region(cache_dir):
    return GridRegion.load(demo_region_dir(), cache_dir=cache_dir)


@pytest.fixture(scope="session")
def mini_region_dir(tmp_path_factory) -> Path:
    """A region of two small feeders: TN 400 V and IT 230 V, 5 kW existing load per house."""
    root = tmp_path_factory.mktemp("mini-region")
    (root / "networks").mkdir()
    nets = {"tn": feeder(0.4, s_sc_mva=1e6, load_kw=5.0), "it": feeder(0.23, s_sc_mva=1e6, load_kw=5.0)}
    for nid, net in nets.items():
        to_json(net, root / "networks" / f"{nid}.json")
    (root / "region.toml").write_text(
        '[region]\nname = "mini"\ncustomer_points = "customer_points.parquet"\n'
        '[[network]]\nid = "tn"\nsystem = "TN_400"\nsource = "networks/tn.json"\n'
        '[[network]]\nid = "it"\nsystem = "IT_230"\nsource = "networks/it.json"\n',
        encoding="utf-8",
    )
    rows = []
    for key, (nid, bus_name, kw, fuse, amp, up) in MINI_POINTS.items():
        rows.append(
            {
                "metering_point_id": mini_mp(key),
                "network_id": nid,
                "bus": bus_named(nets[nid], bus_name),
                "existing_peak_kw": kw,
                "existing_export_kw": 0.0,
                "main_fuse_a": fuse,
                "service_cable_ampacity_a": amp,
                "upstream_fuse_a": up,
            }
        )
    pd.DataFrame(rows).to_parquet(root / "customer_points.parquet", index=False)
    return root


@pytest.fixture(scope="session")
def mini_region(mini_region_dir, cache_dir):
    return GridRegion.load(mini_region_dir, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def mini_assessor(mini_region, policy):
    """The mini region without the policy's measures and paperwork, appliance jobs auto-approvable: the checks of
    the notified job (physics tests; the default policy's job-type gate is tested in tests/rules/test_engine.py,
    the paperwork -- attachments, datasheet values -- in tests/rules/test_workflow.py)."""
    pol = without_paperwork(without_measures(appliance_jobs_auto_approvable(policy)))
    return Assessor(mini_region, pol, clock=lambda: FIXED_TIME)


@pytest.fixture(scope="session")
def demo_assessor(demo_region, policy):
    return Assessor(demo_region, policy, clock=lambda: FIXED_TIME)


@pytest.fixture(scope="session")
def case_region(tmp_path_factory, cache_dir):
    """The region of the rule cases (tests/helpers/case_region.py)."""
    from tests.helpers.case_region import build_case_region

    return GridRegion.load(build_case_region(tmp_path_factory.mktemp("case-region")), cache_dir=cache_dir)


@pytest.fixture(scope="session")
def bad_region_dir(tmp_path_factory) -> Path:
    """A region with an islanded bus, a network without transformer, one with it out of service and one with a
    zero-length line, next to a healthy network (tests/helpers/bad_region.py)."""
    from tests.helpers.bad_region import build_bad_region

    return build_bad_region(tmp_path_factory.mktemp("bad-region"))
