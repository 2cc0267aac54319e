"""Issue 12, item 6: every grid default has a type and a range; a bad region override is refused at load."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powercheck.cli import main
from powercheck.grid.networks import GRID_DEFAULT_SCHEMA, GridModelError, load_grid_defaults
from powercheck.grid.region import GridRegion
from powercheck.params import Range, Tag
from tests.helpers.toml_write import toml_value


def _manifest(key: str, value) -> str:
    return (
        '[region]\nname = "d"\n[[network]]\nid = "a"\nsystem = "TN_400"\nsource = "pandapower:kerber_landnetz_kabel_1"\n'
        f'[defaults.{key}]\nvalue = {toml_value(value)}\ntag = "P"\nsource = "grid owner"\n'
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ext_grid_s_sc_max_mva", -100.0, r"-100\.0 is outside the allowed range \(0, 1e\+06\]"),
        ("ext_grid_s_sc_min_mva", 0.0, r"0\.0 is outside the allowed range \(0, 1e\+06\]"),
        ("low_load_scaling", -0.5, r"-0\.5 is outside the allowed range \[0, 1\]"),
        ("peak_load_scaling", 0, r"0 is outside the allowed range \(0, 10\]"),
        ("line_endtemp_degree", 1e9, r"1000000000\.0 is outside the allowed range \[20, 250\]"),
        ("line_r0_r1_ratio", float("inf"), r"inf is outside the allowed range"),
        ("ext_grid_rx", "low", r"expected a number, got str"),
        ("trafo_vk0_ratio", True, r"expected a number, got bool"),
        ("trafo_vector_group", "Zzz", r"'Zzz' is not one of Dyn"),
        ("ext_grid_s_sc_min_mva", 500.0, r"500\.0 must not exceed ext_grid_s_sc_max_mva 100\.0"),
        # the packaged minimum is 50 MVA: a maximum set below it names the key the region set
        ("ext_grid_s_sc_max_mva", 1.0, r"1\.0 must not be below ext_grid_s_sc_min_mva 50\.0"),
    ],
)
def test_bad_grid_defaults_are_refused_naming_file_key_value_and_range(tmp_path, key, value, message, capsys):
    (tmp_path / "region.toml").write_text(_manifest(key, value), encoding="utf-8")
    with pytest.raises(GridModelError, match=rf"region\.toml: defaults\.{key}\.value: {message}"):
        GridRegion.load(tmp_path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # refused before any work
    assert main(["region", "--grid", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"defaults.{key}.value" in err and "Traceback" not in err


def test_every_grid_default_has_a_schema_and_the_packaged_values_lie_in_it():
    defaults = load_grid_defaults()
    assert set(defaults) == set(GRID_DEFAULT_SCHEMA)
    for key, param in defaults.items():
        allowed = GRID_DEFAULT_SCHEMA[key]
        assert allowed.contains(param.value) if isinstance(allowed, Range) else param.value in allowed, key
    # the unverified ones stay assumptions a region can override (and decisions name them)
    assert defaults["ext_grid_s_sc_max_mva"].tag is Tag.RECALL
    over = load_grid_defaults({"ext_grid_s_sc_max_mva": {"value": 250.0, "tag": "P", "source": "DSO data"}})
    assert over["ext_grid_s_sc_max_mva"].value == 250.0 and not over["ext_grid_s_sc_max_mva"].is_assumption


VALUES = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(sorted(GRID_DEFAULT_SCHEMA) + ["unknown_key"]),
    field=st.sampled_from(["value", "value", "value", "tag", "source", "unit", "surprise"]),
    value=VALUES,
)
def test_fuzzed_grid_default_overrides_are_refused_naming_the_key_or_lie_in_range(key, field, value):
    table = {"value": 1.0, "tag": "P", "source": "grid owner"}
    table[field] = value
    try:
        defaults = load_grid_defaults({key: table}, origin="region.toml")
    except GridModelError as exc:
        assert str(exc).startswith(f"region.toml: defaults.{key}"), str(exc)
        return
    allowed = GRID_DEFAULT_SCHEMA[key]
    got = defaults[key].value
    assert allowed.contains(float(got)) if isinstance(allowed, Range) else got in allowed
