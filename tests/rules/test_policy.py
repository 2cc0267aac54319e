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
    assert policy.fuse_melting_5s(35) is None
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
