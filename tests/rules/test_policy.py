from pathlib import Path

import pytest

from powercheck.params import Tag
from powercheck.rules.policy import REQUIRED_PARAMS, PolicyError, load_policy, parse_policy

DEFAULT = (Path(__file__).parents[2] / "powercheck" / "rules" / "policy_default.toml").read_text(encoding="utf-8")


def test_default_policy_has_every_required_param(policy):
    assert set(REQUIRED_PARAMS) <= set(policy.params)
    assert policy.id == "powercheck-default"
    assert len(policy.hash) == 12


@pytest.mark.parametrize(
    ("key", "value", "tag"),
    [
        # FoL §3-3 via NVE: +-10 % of nominal as 1-min average (sourced)
        ("voltage_min_pu", 0.90, Tag.SOURCED),
        ("voltage_max_pu", 1.10, Tag.SOURCED),
        # D-A-CH-CZ d_max 3 % for 0.01 <= r < 0.1 /min (sourced via CIMApplication)
        ("rvc_frequent_max_percent", 3.0, Tag.SOURCED),
        ("rvc_rare_rate_per_min", 0.01, Tag.SOURCED),
        # FoL spenningssprang thresholds and counts: recall only
        ("rvc_stationary_max_percent", 3.0, Tag.RECALL),
        ("rvc_rare_max_percent", 5.0, Tag.RECALL),
        ("rvc_max_events_per_day", 24, Tag.RECALL),
        # FoL §3-6 unbalance 2 %: recall
        ("unbalance_max_percent", 2.0, Tag.RECALL),
        # gG discrimination 1.6:1 (lawsonfuses, sourced)
        ("selectivity_ratio_min", 1.6, Tag.SOURCED),
        # IEC 60909 c_min for LV with a +/-10 % tolerance, as pandapower (lv_tol_percent=10)
        ("sc_c_min", 0.90, Tag.SOURCED),
    ],
)
def test_limits_match_research_notes_and_tags(policy, key, value, tag):
    assert policy.value(key) == pytest.approx(value)
    assert policy.param(key).tag is tag


def test_tables_from_sources(policy):
    # Elvia: budget required above 40 A (400 V) and 63 A (230 V)
    assert policy.value("budget_required_above_fuse_a") == {"TN_400": 40, "IT_230": 63}
    # Lyse/L-nett: installer self-service up to 80 A
    assert policy.value("auto_approve_max_fuse_a") == {"TN_400": 80, "IT_230": 80}
    # IEC 60269-1 gG I_max(5 s) gates (recall): 16 A 65 A, 63 A 320 A, 160 A 950 A
    assert policy.fuse_melting_5s(16) == 65
    assert policy.fuse_melting_5s(63) == 320
    assert policy.fuse_melting_5s(160) == 950
    # 35 A: log-log between the 32 A and 40 A gates, I_max rounded up: 150 (190/150)^(ln(35/32)/ln(40/32)) = 164.9
    assert policy.fuse_melting_5s(35) == 165
    assert policy.fuse_melting_5s(10) is None  # no gate for 10 A: the rules name it as missing data
    assert policy.param("fuse_gg_gates_a").tag is Tag.RECALL
    # I_min(10 s) carries a start of up to 10 s, I_min(0.1 s) a shorter one; nothing tabulated beyond 10 s
    assert policy.fuse_no_melt(25, 5.0) == 52 and policy.fuse_no_melt(25, 0.05) == 150
    assert policy.fuse_no_melt(25, 30.0) is None


def test_assumptions_are_exactly_the_recall_params(policy):
    recall = {k for k, p in policy.params.items() if p.tag is Tag.RECALL}
    assert set(policy.assumptions()) == recall
    assert policy.summary()["assumptions"] == sorted(recall)
    assert policy.assumption_keys("fuse_gg_gates_a", "voltage_min_pu") == ["policy:fuse_gg_gates_a"]


def test_unknown_key_raises_naming_it(policy):
    with pytest.raises(KeyError, match="no_such_limit"):
        policy.value("no_such_limit")


def test_missing_required_param_is_named():
    text = DEFAULT.replace("[param.unbalance_max_percent]", "[param.unbalance_max_percent_typo]")
    with pytest.raises(PolicyError, match=r"param\.unbalance_max_percent: missing"):
        parse_policy(text)


def test_wrong_type_is_named():
    text = DEFAULT.replace("value = 1.6\n", 'value = "1.6"\n', 1)
    with pytest.raises(PolicyError, match=r"param\.selectivity_ratio_min\.value"):
        parse_policy(text)


def test_bad_tag_is_named():
    text = DEFAULT.replace('tag = "S"\nsource = "gG fuse-links', 'tag = "X"\nsource = "gG fuse-links', 1)
    with pytest.raises(PolicyError, match=r"param\.selectivity_ratio_min\.tag"):
        parse_policy(text)


def test_malformed_and_unknown_tables():
    with pytest.raises(PolicyError, match="malformed"):
        parse_policy("[policy\n")
    with pytest.raises(PolicyError, match="surprise"):
        parse_policy(DEFAULT + "\n[surprise]\nx = 1\n")


def test_same_version_other_numbers_changes_hash(tmp_path):
    changed = DEFAULT.replace('value = 2.0\nunit = "%"', 'value = 1.5\nunit = "%"', 1)
    path = tmp_path / "p.toml"
    path.write_text(changed, encoding="utf-8")
    other = load_policy(path)
    assert other.version == load_policy().version
    assert other.hash != load_policy().hash
    assert other.value("unbalance_max_percent") == 1.5


# ------------------------------------------------------------------------ issue 12, item 6: every key has a range

import tomllib  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from powercheck.rules.policy import PARAM_SCHEMA, PolicyKey  # noqa: E402
from tests.helpers.toml_write import toml_tables  # noqa: E402

DEFAULT_DATA = tomllib.loads(DEFAULT)


def _with(**values) -> str:
    data = tomllib.loads(DEFAULT)
    for key, value in values.items():
        data["param"][key]["value"] = value
    return toml_tables(data)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("demand_cos_phi", 0, r"0 is outside the allowed range \[0\.5, 1\]"),  # ZeroDivisionError before
        ("customer_coincidence", -1, r"-1 is outside the allowed range \(0, 1\]"),  # turned escalations into approvals
        ("voltage_min_pu", -0.9, r"-0\.9 is outside the allowed range"),
        ("unbalance_max_percent", -2.0, r"-2\.0 is outside the allowed range \(0, 20\]"),
        ("operating_hours_per_day", 0, r"0 is outside the allowed range \(0, 24\]"),
        ("auto_approve_job_types", [1, 2], r"\[0\]: 1 is not a job type"),
        ("line_loading_max_percent", float("nan"), r"nan is outside the allowed range"),
        ("flicker_pst_max", True, r"expected a number, got bool"),
    ],
)
def test_out_of_range_policy_values_are_refused_naming_key_value_and_range(key, value, message, tmp_path, capsys):
    text = _with(**{key: value})
    with pytest.raises(PolicyError, match=rf"param\.{key}\.value.*{message}|{message}"):
        parse_policy(text)
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    from powercheck.cli import main

    assert main(["policy", "--policy", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"param.{key}" in err


def test_related_limits_are_checked_together():
    with pytest.raises(PolicyError, match=r"param\.sc_c_min\.value: 1\.05 must not exceed sc_c_max 1\.0"):
        parse_policy(_with(sc_c_min=1.05, sc_c_max=1.0))
    with pytest.raises(PolicyError, match=r"param\.voltage_min_pu\.value: 1\.0 must be below voltage_max_pu 1\.0"):
        parse_policy(_with(voltage_min_pu=1.0, voltage_max_pu=1.0))


def test_every_policy_key_has_a_range_or_a_check():
    assert set(PARAM_SCHEMA) == set(PolicyKey)
    for key, spec in PARAM_SCHEMA.items():
        assert spec.range is not None or spec.check is not None, key


TOML_SCALAR = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
TOML_VALUE = st.recursive(
    TOML_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(sorted(PARAM_SCHEMA)), value=TOML_VALUE)
def test_fuzzed_policy_values_are_refused_naming_the_key_or_lie_in_range(key, value):
    try:
        policy = parse_policy(_with(**{key: value}))
    except PolicyError as exc:
        assert str(key) in str(exc), str(exc)
        return
    spec = PARAM_SCHEMA[key]
    if spec.range is not None:
        assert spec.range.contains(float(policy.value(key)))


@settings(max_examples=100, deadline=None)
@given(
    table=st.sampled_from(sorted(DEFAULT_DATA["param"])),
    field=st.sampled_from(["unit", "tag", "source", "extra"]),
    value=TOML_VALUE,
)
def test_fuzzed_param_fields_are_refused_naming_the_key(table, field, value):
    data = tomllib.loads(DEFAULT)
    data["param"][table][field] = value
    try:
        parse_policy(toml_tables(data))
    except PolicyError as exc:
        assert f"param.{table}" in str(exc), str(exc)


def test_recall_values_stay_tagged_and_configurable(policy):
    """[R] values are assumptions a grid owner can change: a policy may set them (in range), keeping the tag."""
    recall = [k for k, p in policy.params.items() if p.is_assumption]
    assert "unbalance_max_percent" in recall and "customer_coincidence" in recall
    changed = parse_policy(_with(unbalance_max_percent=1.5))
    assert changed.value("unbalance_max_percent") == 1.5 and changed.param("unbalance_max_percent").is_assumption


def test_every_param_is_in_a_group_and_the_fol_limits_are_legal(policy):
    from powercheck.params import Group

    grouped = policy.grouped()
    assert sum(len(g) for g in grouped.values()) == len(policy.params)
    legal = set(grouped[Group.LEGAL])
    # FoL / EN 50160 limits (standards.md section 1): voltage band, spenningssprang counts, unbalance, THD 8 % and
    # its 1-week 5 %, the individual harmonics; IEC 61000-3-3/-3-11 flicker values are equipment emission limits
    assert {"voltage_min_pu", "voltage_max_pu", "rvc_stationary_max_percent", "rvc_max_events_per_day",
            "unbalance_max_percent", "thd_max_percent", "thd_week_max_percent",
            "harmonic_voltage_max_percent"} <= legal  # fmt: skip
    assert {"flicker_pst_max", "flicker_plt_max"} <= set(grouped[Group.EMISSION])
    # D-A-CH-CZ voltage-change values are planning values, the auto-approval rules the grid owner's
    assert {"rvc_frequent_max_percent", "auto_approve_job_types", "auto_approve_max_fuse_a"} <= set(
        grouped[Group.PLANNING]
    )
    assert {"fuse_gg_gates_a", "selectivity_ratio_min"} <= set(grouped[Group.PROTECTION])
    assert policy.value("thd_max_order") == 40 and policy.param("thd_week_max_percent").tag is Tag.RECALL


def test_a_policy_param_without_group_is_refused():
    text = DEFAULT.replace('group = "legal"\n', "", 1)
    with pytest.raises(PolicyError, match=r"param\.voltage_min_pu\.group: missing"):
        parse_policy(text)
    with pytest.raises(PolicyError, match=r"param\.voltage_min_pu\.group"):
        parse_policy(DEFAULT.replace('group = "legal"\n', 'group = "nonsense"\n', 1))


def test_cli_policy_lists_legal_planning_and_emission_limits_apart(capsys):
    from powercheck.cli import main

    assert main(["policy"]) == 0
    out = capsys.readouterr().out
    sections = [line for line in out.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert [s.split(" ")[0].rstrip(":") for s in sections] == ["Legal", "Planning", "Emission", "Protection", "Model"]
    legal = out[out.index("Legal limits") : out.index("Planning values")]
    assert "voltage_min_pu = 0.9" in legal and "source: FoL" in legal and "flicker_pst_max" not in legal
    emission = out[out.index("Emission limits") : out.index("Protection:")]
    assert "flicker_plt_max = 0.65" in emission
    # the FoL flicker totals and counts are legal (recall, named as assumptions); the planning voltage band, the
    # D-A-CH-CZ per-start limits and the workflow rules are planning; a customer's flicker share is emission
    planning = out[out.index("Planning values") : out.index("Emission limits")]
    assert "[R] flicker_grid_pst_max = 1.2 -  ASSUMPTION" in legal and "flicker_grid_plt_max = 1.0" in legal
    assert "rvc_max_step_percent = 5.0" in legal and "source: FoL spenningssprang" in legal
    assert "[P] voltage_planning_min_pu = 0.93 pu" in planning and "voltage_min_pu = 0.9 " not in planning
    assert (
        "source: Planning (D-A-CH-CZ)" in planning and "job_types" in planning and "challenging_appliances" in planning
    )
    assert "[P] flicker_customer_pst_max = 0.8" in emission and "flicker_grid_pst_max = " not in emission


def test_planning_voltage_band_must_lie_inside_the_legal_band():
    with pytest.raises(PolicyError, match=r"param\.voltage_planning_min_pu\.value: the planning band"):
        parse_policy(_with(voltage_planning_min_pu=0.88))  # below the legal 0.90
    with pytest.raises(PolicyError, match=r"must lie inside the legal band"):
        parse_policy(_with(voltage_planning_max_pu=1.12))


def test_a_customers_flicker_share_cannot_exceed_the_grid_total():
    with pytest.raises(PolicyError, match=r"param\.flicker_customer_pst_max\.value: a customer's share 1\.5"):
        parse_policy(_with(flicker_customer_pst_max=1.5))


def test_start_behaviour_and_job_types_are_validated():
    data = tomllib.loads(DEFAULT)
    data["param"]["start_behaviour"]["value"]["ev_charger"] = "soft"
    with pytest.raises(PolicyError, match=r"start_behaviour\.value\.ev_charger: 'soft' is not a start behaviour"):
        parse_policy(toml_tables(data))
    data = tomllib.loads(DEFAULT)
    del data["param"]["job_types"]["value"]["block_notification"]
    with pytest.raises(PolicyError, match=r"job_types\.value\.block_notification: missing"):
        parse_policy(toml_tables(data))
    data = tomllib.loads(DEFAULT)
    data["param"]["job_types"]["value"]["kv_change"]["required"] = ["kv_after"]
    with pytest.raises(PolicyError, match=r"job_types\.value\.kv_change\.required: expected a list of names"):
        parse_policy(toml_tables(data))
    data = tomllib.loads(DEFAULT)
    data["param"]["job_types"]["value"]["pv"]["checks"] = ["flicker"]
    with pytest.raises(PolicyError, match=r"job_types\.value\.pv\.checks"):
        parse_policy(toml_tables(data))


def test_velander_rule_by_hand(policy):
    """P = k1 W + k2 sqrt(W): 10 flats of 5000 kWh/year, W = 50000: 0.00025 x 50000 + 0.03 x 223.607 = 19.208 kW."""
    assert policy.velander_kw(50000.0) == pytest.approx(12.5 + 0.03 * 50000**0.5, rel=1e-12)
    assert policy.velander_kw(50000.0) == pytest.approx(19.2082, abs=1e-4)
    assert policy.param("velander_k1").tag == Tag.RECALL and policy.param("velander_k2").tag == Tag.RECALL


def test_per_policy_tables_are_made_once_per_policy_and_follow_the_policy_asked_for():
    from powercheck.rules.policy import PerPolicy

    made = []

    def make(policy):
        made.append(policy)
        return {"cos": policy.number(PolicyKey.DEMAND_COS_PHI)}

    tables = PerPolicy("test.per_policy", make)
    first, second = load_policy(), load_policy()  # two policy objects (equal content)
    a = tables(first)
    assert tables(first) is a and made == [first]
    b = tables(second)
    assert b is not a and made == [first, second]
    again = tables(first)  # back to the first: Policy.derived's value (remade only if its bounded memo was cleared)
    assert again == a == {"cos": first.number(PolicyKey.DEMAND_COS_PHI)}
    assert tables(first) is again  # the last policy asked for: at hand
