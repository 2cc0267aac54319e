"""Generate the CGMES 2.4.15 test fixtures (dev-only): ``python -m tests.data.cgmes.generate``.

Two demo feeders, written by tests/helpers/cgmes_writer.py from the pandapower networks built here, and
their mutants:

* ``tn_feeder``: 400 V TN, 11/0.4 kV 315 kVA Dyn; a breaker at the busbar, three 100 m NAYY 4x150 main-cable
  sections, at each cabinet a fuse and a 30 m NAYY 4x50 house branch with a 5 kW load;
* ``it_feeder``: the same at 230 V (IT), 3 kW per house.

Mutants (of ``tn_feeder``): ``fuse_as_breaker`` is the breaker version of every fuse (plain ``from_cim``
input); ``no_slack`` has the source's referencePriority 0 and no voltage control; ``wrong_profile`` has an
EQ profile URI no converter knows; ``unsupplied`` has house_3's branch terminal disconnected; ``phase``
adds an IEC 61968-13 ACLineSegmentPhase.
"""

from __future__ import annotations

from pathlib import Path

import pandapower as pp

from tests.helpers.cgmes_writer import write_cgmes
from tests.helpers.grids import BRANCH, MAIN, add_line

HERE = Path(__file__).parent


def demo_feeder(vn_kv: float, load_kw: float, *, fuses: bool = True) -> pp.pandapowerNet:
    """The feeder of the CGMES fixtures (see the module docstring); bus names are kept by the import."""
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 11.0, name="mv")
    pp.create_ext_grid(
        net, mv, s_sc_max_mva=100.0, s_sc_min_mva=50.0, rx_max=0.1, rx_min=0.1, r0x0_max=0.1, x0x_max=1.0
    )
    busbar = pp.create_bus(net, vn_kv, name="busbar")
    pp.create_transformer_from_parameters(
        net, mv, busbar, sn_mva=0.315, vn_hv_kv=11.0, vn_lv_kv=vn_kv, vk_percent=4.5, vkr_percent=1.2,
        pfe_kw=0.0, i0_percent=0.0, vector_group="Dyn", shift_degree=150, vk0_percent=4.5, vkr0_percent=1.2,
        mag0_percent=100, mag0_rx=0, si0_hv_partial=0.9, name="T1",
    )  # fmt: skip
    start = pp.create_bus(net, vn_kv, name="feeder_start")
    pp.create_switch(net, busbar, start, et="b", closed=True, type="CB", name="Q1", in_ka=0.4)
    prev = start
    for i in range(1, 4):
        cab = pp.create_bus(net, vn_kv, name=f"cabinet_{i}")
        add_line(net, prev, cab, 0.100, MAIN, f"main_{i}")
        tap = pp.create_bus(net, vn_kv, name=f"tap_{i}")
        pp.create_switch(net, cab, tap, et="b", closed=True, type="fuse" if fuses else "CB", name=f"F{i}", in_ka=0.063)
        house = pp.create_bus(net, vn_kv, name=f"house_{i}")
        add_line(net, tap, house, 0.030, BRANCH, f"branch_{i}")
        pp.create_load(net, house, p_mw=load_kw / 1000.0, q_mvar=0.0, name=f"load_{i}")
        prev = cab
    return net


def _mutate(src: Path, dst: Path, old: str, new: str, count: int = 1) -> None:
    text = src.read_text(encoding="utf-8")
    assert text.count(old) >= count, (src, old)
    dst.write_text(text.replace(old, new, count), encoding="utf-8")


def generate(out: Path = HERE) -> None:
    for name, kv, kw in (("tn_feeder", 0.4, 5.0), ("it_feeder", 0.23, 3.0)):
        write_cgmes(demo_feeder(kv, kw), out / name, name)
    write_cgmes(demo_feeder(0.4, 5.0, fuses=False), out / "fuse_as_breaker", "fuse_as_breaker")
    tn = out / "tn_feeder"
    for mutant in ("no_slack", "wrong_profile", "unsupplied", "phase"):
        (out / mutant).mkdir(exist_ok=True)
        for profile in ("EQ", "SSH", "TP", "SV"):
            (out / mutant / f"{mutant}_{profile}.xml").write_text(
                (tn / f"tn_feeder_{profile}.xml").read_text(encoding="utf-8"), encoding="utf-8"
            )
    m = out / "no_slack"
    _mutate(m / "no_slack_SSH.xml", m / "no_slack_SSH.xml", "<cim:ExternalNetworkInjection.referencePriority>1<",
            "<cim:ExternalNetworkInjection.referencePriority>0<")  # fmt: skip
    _mutate(m / "no_slack_SSH.xml", m / "no_slack_SSH.xml", "<cim:RegulatingControl.enabled>true<",
            "<cim:RegulatingControl.enabled>false<")  # fmt: skip
    m = out / "wrong_profile"
    _mutate(m / "wrong_profile_EQ.xml", m / "wrong_profile_EQ.xml", "http://entsoe.eu/CIM/EquipmentCore/3/1",
            "http://example.org/CIM/EquipmentCorez/3/1")  # fmt: skip
    _mutate(m / "wrong_profile_EQ.xml", m / "wrong_profile_EQ.xml", "http://entsoe.eu/CIM/EquipmentShortCircuit/3/1",
            "http://example.org/CIM/EquipmentShortCircuitz/3/1")  # fmt: skip
    m = out / "unsupplied"
    ssh = (m / "unsupplied_SSH.xml").read_text(encoding="utf-8")
    eq = (m / "unsupplied_EQ.xml").read_text(encoding="utf-8")
    # the terminal 1 of branch_3 (tap_3 side): connected = false in SSH
    anchor = eq.index("<cim:IdentifiedObject.name>line 5 T1</cim:IdentifiedObject.name>")
    rid = eq[:anchor].rsplit('rdf:ID="', 1)[1].split('"', 1)[0]
    block = f'<cim:Terminal rdf:about="#{rid}">\n    <cim:ACDCTerminal.connected>true<'
    assert block in ssh
    (m / "unsupplied_SSH.xml").write_text(ssh.replace(block, block.replace(">true<", ">false<")), encoding="utf-8")
    m = out / "phase"
    _mutate(m / "phase_EQ.xml", m / "phase_EQ.xml", "</rdf:RDF>",
            '  <cim:ACLineSegmentPhase rdf:ID="_phase-a-of-main-1">\n    <cim:IdentifiedObject.name>main_1 A'
            "</cim:IdentifiedObject.name>\n  </cim:ACLineSegmentPhase>\n</rdf:RDF>")  # fmt: skip


if __name__ == "__main__":
    generate()
    print(f"CGMES fixtures written to {HERE}")
