import re
from pathlib import Path

import pandas as pd

from powercheck.demo import build_demo_notifications, demo_notifications_path, demo_region_dir

ROOT = Path(__file__).parents[1]


def test_demo_notifications_are_reproducible():
    customers = pd.read_parquet(demo_region_dir() / "customer_points.parquet")
    lines = build_demo_notifications(customers)
    committed = demo_notifications_path().read_text(encoding="utf-8").splitlines()
    assert lines == committed


def test_demo_region_covers_both_systems(demo_region):
    systems = {a.system for a in demo_region.networks.values()}
    assert systems == {"IT_230", "TN_400"}
    assert len(demo_region.customers) > 250
    # healthy base case: the demo networks start inside the voltage band
    assert demo_region.arrays.vm_peak_pu.min() > 0.93


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick, flags=re.S)
    assert len(commands) == 2
    setup_main, setup_tests = commands
    assert "powercheck screen" in setup_main and "pip install" in setup_main
    assert "pytest" in setup_tests and "pip install" in setup_tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert setup_tests in ci


def test_every_package_is_packaged():
    """A non-editable install ships every subpackage (pyproject lists them explicitly)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "powercheck").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found <= listed, found - listed


def test_demo_ams_file_is_reproducible_from_simbench_profiles(tmp_path):
    from powercheck.demo import DEMO_AMS_NAME, build_demo_ams

    customers = pd.read_parquet(demo_region_dir() / "customer_points.parquet")
    build_demo_ams(tmp_path, customers)
    regenerated = pd.read_parquet(tmp_path / DEMO_AMS_NAME)
    committed = pd.read_parquet(demo_region_dir() / DEMO_AMS_NAME)
    pd.testing.assert_frame_equal(regenerated, committed)


def test_demo_region_uses_its_ams_file(demo_region):
    bases = demo_region.customers.peak_basis.value_counts().to_dict()
    assert set(bases) == {"ams", "customer_index"}
    assert 0.7 < bases["ams"] / len(demo_region.customers) < 0.9  # DEMO_AMS_METERED_SHARE 0.8
    assert set(demo_region.measured) == set(demo_region.network_order)
    metered = demo_region.customers[demo_region.customers.peak_basis == "ams"]
    assert (metered.existing_peak_kw == metered.ams_peak_import_kw).all()
    assert (metered.ams_tariff_kw <= metered.ams_peak_import_kw + 1e-12).all()
    assert (metered.existing_export_kw > 0).sum() >= 10  # PV customers export at noon
