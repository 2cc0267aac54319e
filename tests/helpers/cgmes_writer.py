"""A small CGMES 2.4.15 (CIM16) writer for test fixtures: EQ, SSH, TP and SV files of a pandapower LV feeder.

Dev-only (the fixtures it writes are committed under tests/data/cgmes/). It writes exactly what pandapower's
``from_cim`` reads for the elements a small LV feeder has, and nothing it does not know:

* every bus -> ConnectivityNode (+ one TopologicalNode per bus in TP, SvVoltage 1 pu in SV);
* ext_grid -> ExternalNetworkInjection with a voltage RegulatingControl (slack: referencePriority 1) and
  its short-circuit data (maxInitialSymShCCurrent [A] = s_sc / (sqrt3 U), R/X, R0/X0, Z0/Z1);
* line -> ACLineSegment with total r, x, r0, x0 [ohm], length [km], shortCircuitEndTemperature and a
  CurrentLimit [A] on its first terminal;
* trafo -> PowerTransformer with two PowerTransformerEnds (r, x, r0, x0 and the magnetizing g, b from pfe_kw and
  i0_percent on the HV end in ohm / siemens at ratedU, connectionKind D/Yn, phaseAngleClock; no tap changer: the
  tap stays at its neutral position);
* load -> EnergyConsumer (p, q in SSH);
* switch (bus-bus) -> Breaker, or Fuse when ``net.switch.type == "fuse"`` (CIM16 Fuse: pandapower drops it).

Why not pypowsybl: it is ~250 MB, turns the source into a non-slack generator, writes lines as 1 km of total
ohms and has no fuse; this writer keeps the fixture's numbers the feeder's own.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

CIM = "http://iec.ch/TC57/2013/CIM-schema-cim16#"
ENTSOE = "http://entsoe.eu/CIM/SchemaExtension/3/1#"
PROFILES = {
    "EQ": "http://entsoe.eu/CIM/EquipmentCore/3/1",
    "SSH": "http://entsoe.eu/CIM/SteadyStateHypothesis/1/1",
    "TP": "http://entsoe.eu/CIM/Topology/4/1",
    "SV": "http://entsoe.eu/CIM/StateVariables/4/1",
}
EQ_SC = "http://entsoe.eu/CIM/EquipmentShortCircuit/3/1"


def _id(kind: str, key: object, ns: uuid.UUID) -> str:
    return "_" + str(uuid.uuid5(ns, f"{kind}:{key}"))


class _Doc:
    def __init__(self, profile: str, model_id: str):
        self.parts = [
            '<?xml version="1.0" encoding="utf-8"?>\n',
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:cim="{CIM}" '
            f'xmlns:md="http://iec.ch/TC57/61970-552/ModelDescription/1#" xmlns:entsoe="{ENTSOE}">\n',
            f'  <md:FullModel rdf:about="urn:uuid:{model_id}">\n',
            "    <md:Model.created>2026-12-07T00:00:00Z</md:Model.created>\n",
            "    <md:Model.scenarioTime>2026-12-07T00:00:00Z</md:Model.scenarioTime>\n",
            "    <md:Model.version>1</md:Model.version>\n",
            "    <md:Model.modelingAuthoritySet>http://powercheck.test/fixtures</md:Model.modelingAuthoritySet>\n",
        ]
        for uri in profile.split("|"):
            self.parts.append(f"    <md:Model.profile>{uri}</md:Model.profile>\n")
        self.parts.append("  </md:FullModel>\n")

    def obj(self, cls: str, rid: str, fields: dict, about: bool = False) -> None:
        head = f'rdf:about="#{rid}"' if about else f'rdf:ID="{rid}"'
        self.parts.append(f"  <cim:{cls} {head}>\n")
        for key, value in fields.items():
            if value is None:
                continue
            tag = key if ":" in key else f"cim:{key}"
            if isinstance(value, tuple):  # reference
                self.parts.append(f'    <{tag} rdf:resource="{value[0]}"/>\n')
            elif isinstance(value, bool):
                self.parts.append(f"    <{tag}>{str(value).lower()}</{tag}>\n")
            elif isinstance(value, float):
                self.parts.append(f"    <{tag}>{value!r}</{tag}>\n")
            else:
                self.parts.append(f"    <{tag}>{escape(str(value))}</{tag}>\n")
        self.parts.append(f"  </cim:{cls}>\n")

    def text(self) -> str:
        return "".join(self.parts) + "</rdf:RDF>\n"


def _ref(rid: str) -> tuple[str]:
    return (f"#{rid}",)


def write_cgmes(net, out_dir: Path, name: str, *, seed: str = "powercheck") -> dict[str, Path]:
    """Write ``<name>_EQ.xml``, ``_SSH.xml``, ``_TP.xml``, ``_SV.xml`` of ``net`` into ``out_dir``.

    mRIDs are uuid5 of the element's table and index (deterministic). Returns the paths by profile.
    """
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{name}")
    eq = _Doc(PROFILES["EQ"] + "|" + EQ_SC, str(uuid.uuid5(ns, "EQ")))
    ssh = _Doc(PROFILES["SSH"], str(uuid.uuid5(ns, "SSH")))
    tp = _Doc(PROFILES["TP"], str(uuid.uuid5(ns, "TP")))
    sv = _Doc(PROFILES["SV"], str(uuid.uuid5(ns, "SV")))

    region, subregion = _id("region", 0, ns), _id("subregion", 0, ns)
    eq.obj("GeographicalRegion", region, {"IdentifiedObject.name": "region"})
    eq.obj(
        "SubGeographicalRegion",
        subregion,
        {"IdentifiedObject.name": "sub", "SubGeographicalRegion.Region": _ref(region)},
    )
    sub = _id("substation", 0, ns)
    eq.obj("Substation", sub, {"IdentifiedObject.name": name, "Substation.Region": _ref(subregion)})
    base_v, vlevel = {}, {}
    for kv in sorted(set(float(v) for v in net.bus.vn_kv)):
        bv, vl = _id("bv", kv, ns), _id("vl", kv, ns)
        base_v[kv], vlevel[kv] = bv, vl
        eq.obj("BaseVoltage", bv, {"IdentifiedObject.name": f"{kv:g} kV", "BaseVoltage.nominalVoltage": kv})
        eq.obj(
            "VoltageLevel",
            vl,
            {
                "IdentifiedObject.name": f"{kv:g} kV",
                "VoltageLevel.BaseVoltage": _ref(bv),
                "VoltageLevel.Substation": _ref(sub),
            },
        )
    cn, tn = {}, {}
    for b, row in net.bus.iterrows():
        kv = float(row.vn_kv)
        cn[b], tn[b] = _id("cn", b, ns), _id("tn", b, ns)
        eq.obj(
            "ConnectivityNode",
            cn[b],
            {"IdentifiedObject.name": str(row["name"]), "ConnectivityNode.ConnectivityNodeContainer": _ref(vlevel[kv])},
        )
        tp.obj(
            "TopologicalNode",
            tn[b],
            {
                "IdentifiedObject.name": str(row["name"]),
                "TopologicalNode.ConnectivityNodeContainer": _ref(vlevel[kv]),
                "TopologicalNode.BaseVoltage": _ref(base_v[kv]),
            },
        )
        tp.obj("ConnectivityNode", cn[b], {"ConnectivityNode.TopologicalNode": _ref(tn[b])}, about=True)
        sv.obj(
            "SvVoltage",
            _id("sv", b, ns),
            {"SvVoltage.v": kv, "SvVoltage.angle": 0.0, "SvVoltage.TopologicalNode": _ref(tn[b])},
        )

    def terminal(kind: str, key: object, bus: int, equipment: str, seq: int) -> str:
        rid = _id(f"t-{kind}", f"{key}-{seq}", ns)
        eq.obj(
            "Terminal",
            rid,
            {
                "IdentifiedObject.name": f"{kind} {key} T{seq}",
                "Terminal.ConductingEquipment": _ref(equipment),
                "Terminal.ConnectivityNode": _ref(cn[bus]),
                "ACDCTerminal.sequenceNumber": seq,
            },
        )
        ssh.obj("Terminal", rid, {"ACDCTerminal.connected": True}, about=True)
        tp.obj("Terminal", rid, {"Terminal.TopologicalNode": _ref(tn[bus])}, about=True)
        return rid

    for i, row in net.ext_grid.iterrows():
        rid, rc = _id("eni", i, ns), _id("rc", i, ns)
        kv = float(net.bus.vn_kv[row.bus])
        z0z1 = float(row.get("x0x_max", 1.0)) * abs(complex(row.get("r0x0_max", 0.1), 1)) / abs(complex(row.rx_max, 1))
        eq.obj(
            "ExternalNetworkInjection",
            rid,
            {
                "IdentifiedObject.name": f"source {i}",
                "Equipment.EquipmentContainer": _ref(vlevel[kv]),
                "RegulatingCondEq.RegulatingControl": _ref(rc),
                "ExternalNetworkInjection.governorSCD": 0.0,
                "ExternalNetworkInjection.maxP": 1000.0,
                "ExternalNetworkInjection.minP": -1000.0,
                "ExternalNetworkInjection.maxQ": 1000.0,
                "ExternalNetworkInjection.minQ": -1000.0,
                "ExternalNetworkInjection.maxInitialSymShCCurrent": float(row.s_sc_max_mva) / (math.sqrt(3) * kv) * 1e3,
                "ExternalNetworkInjection.minInitialSymShCCurrent": float(row.s_sc_min_mva) / (math.sqrt(3) * kv) * 1e3,
                "ExternalNetworkInjection.maxR1ToX1Ratio": float(row.rx_max),
                "ExternalNetworkInjection.minR1ToX1Ratio": float(row.rx_min),
                "ExternalNetworkInjection.maxR0ToX0Ratio": float(row.get("r0x0_max", 0.1)),
                "ExternalNetworkInjection.maxZ0ToZ1Ratio": z0z1,
            },
        )
        t = terminal("eni", i, int(row.bus), rid, 1)
        eq.obj(
            "RegulatingControl",
            rc,
            {
                "IdentifiedObject.name": f"source {i} voltage",
                "RegulatingControl.mode": (f"{CIM}RegulatingControlModeKind.voltage",),
                "RegulatingControl.Terminal": _ref(t),
            },
        )
        ssh.obj(
            "RegulatingControl",
            rc,
            {
                "RegulatingControl.discrete": False,
                "RegulatingControl.enabled": True,
                "RegulatingControl.targetDeadband": 0.0,
                "RegulatingControl.targetValue": float(row.vm_pu) * kv,
                "RegulatingControl.targetValueUnitMultiplier": (f"{CIM}UnitMultiplier.k",),
            },
            about=True,
        )
        ssh.obj(
            "ExternalNetworkInjection",
            rid,
            {
                "RegulatingCondEq.controlEnabled": True,
                "ExternalNetworkInjection.referencePriority": 1,
                "ExternalNetworkInjection.p": 0.0,
                "ExternalNetworkInjection.q": 0.0,
            },
            about=True,
        )

    for i, row in net.line.iterrows():
        rid = _id("line", i, ns)
        kv = float(net.bus.vn_kv[row.from_bus])
        length = float(row.length_km)
        omega = 2 * math.pi * float(net.f_hz)
        eq.obj(
            "ACLineSegment",
            rid,
            {
                "IdentifiedObject.name": str(row["name"]),
                "Equipment.EquipmentContainer": _ref(vlevel[kv]),
                "ConductingEquipment.BaseVoltage": _ref(base_v[kv]),
                "Conductor.length": length,
                "ACLineSegment.r": float(row.r_ohm_per_km) * length,
                "ACLineSegment.x": float(row.x_ohm_per_km) * length,
                "ACLineSegment.bch": float(row.c_nf_per_km) * 1e-9 * omega * length,
                "ACLineSegment.gch": 0.0,
                "ACLineSegment.r0": float(row.r0_ohm_per_km) * length,
                "ACLineSegment.x0": float(row.x0_ohm_per_km) * length,
                "ACLineSegment.b0ch": float(row.c0_nf_per_km) * 1e-9 * omega * length,
                "ACLineSegment.g0ch": 0.0,
                "ACLineSegment.shortCircuitEndTemperature": float(row.endtemp_degree),
            },
        )
        t1 = terminal("line", i, int(row.from_bus), rid, 1)
        terminal("line", i, int(row.to_bus), rid, 2)
        ols, olt, lim = _id("ols", i, ns), _id("olt", 0, ns), _id("lim", i, ns)
        eq.obj(
            "OperationalLimitSet", ols, {"IdentifiedObject.name": "ratings", "OperationalLimitSet.Terminal": _ref(t1)}
        )
        eq.obj(
            "CurrentLimit",
            lim,
            {
                "IdentifiedObject.name": "PATL",
                "OperationalLimit.OperationalLimitSet": _ref(ols),
                "OperationalLimit.OperationalLimitType": _ref(olt),
                "CurrentLimit.value": float(row.max_i_ka) * 1000.0,
            },
        )
    if len(net.line):
        eq.obj(
            "OperationalLimitType",
            _id("olt", 0, ns),
            {
                "IdentifiedObject.name": "PATL",
                "OperationalLimitType.limitType": (f"{ENTSOE}LimitTypeKind.patl",),
                "OperationalLimitType.direction": (f"{CIM}OperationalLimitDirectionKind.absoluteValue",),
            },
        )

    for i, row in net.trafo.iterrows():
        rid = _id("trafo", i, ns)
        tap = row.get("tap_pos", np.nan)
        assert not np.isfinite(tap) or tap == row.get("tap_neutral", 0), "the writer knows neutral taps only"
        eq.obj(
            "PowerTransformer",
            rid,
            {"IdentifiedObject.name": str(row["name"]), "Equipment.EquipmentContainer": _ref(sub)},
        )
        sn, uh, ul = float(row.sn_mva), float(row.vn_hv_kv), float(row.vn_lv_kv)
        zk = float(row.vk_percent) / 100 * uh**2 / sn
        rk = float(row.vkr_percent) / 100 * uh**2 / sn
        xk = math.sqrt(zk**2 - rk**2)
        z0 = float(row.vk0_percent) / 100 * uh**2 / sn
        r0 = float(row.vkr0_percent) / 100 * uh**2 / sn
        x0 = math.sqrt(z0**2 - r0**2)
        # magnetizing branch on the HV end [S at ratedU]: g from the iron losses, |y| from the no-load current
        # (pandapower's from_cim: pfe_kw = g U^2 1e3, i0_percent = |g + jb| U^2 100 / S)
        g = float(row.pfe_kw) / 1000 / uh**2
        b = math.sqrt(max((float(row.i0_percent) / 100 * sn / uh**2) ** 2 - g**2, 0.0))
        group = str(row.vector_group)
        kinds = ("D" if group[0] == "D" else "Yn" if group[:2] == "YN" else "Y", "Yn" if "n" in group[1:] else "D")
        for end, (bus, u, kind) in enumerate(((row.hv_bus, uh, kinds[0]), (row.lv_bus, ul, kinds[1])), start=1):
            t = terminal("trafo", i, int(bus), rid, end)
            eq.obj(
                "PowerTransformerEnd",
                _id("pte", f"{i}-{end}", ns),
                {
                    "IdentifiedObject.name": f"{row['name']} end {end}",
                    "PowerTransformerEnd.PowerTransformer": _ref(rid),
                    "TransformerEnd.endNumber": end,
                    "TransformerEnd.Terminal": _ref(t),
                    "TransformerEnd.BaseVoltage": _ref(base_v[float(net.bus.vn_kv[bus])]),
                    "PowerTransformerEnd.ratedS": sn,
                    "PowerTransformerEnd.ratedU": u,
                    "PowerTransformerEnd.r": rk if end == 1 else 0.0,
                    "PowerTransformerEnd.x": xk if end == 1 else 0.0,
                    "PowerTransformerEnd.r0": r0 if end == 1 else 0.0,
                    "PowerTransformerEnd.x0": x0 if end == 1 else 0.0,
                    "PowerTransformerEnd.b": b if end == 1 else 0.0,
                    "PowerTransformerEnd.g": g if end == 1 else 0.0,
                    "PowerTransformerEnd.b0": 0.0,
                    "PowerTransformerEnd.g0": 0.0,
                    "PowerTransformerEnd.connectionKind": (f"{CIM}WindingConnection.{kind}",),
                    "PowerTransformerEnd.phaseAngleClock": 0
                    if end == 1
                    else int(round(float(row.shift_degree) / 30)) % 12,
                    "TransformerEnd.grounded": kind == "Yn",
                },
            )

    for i, row in net.load.iterrows():
        rid = _id("load", i, ns)
        kv = float(net.bus.vn_kv[row.bus])
        eq.obj(
            "EnergyConsumer",
            rid,
            {
                "IdentifiedObject.name": str(row["name"]),
                "Equipment.EquipmentContainer": _ref(vlevel[kv]),
                "ConductingEquipment.BaseVoltage": _ref(base_v[kv]),
            },
        )
        terminal("load", i, int(row.bus), rid, 1)
        ssh.obj(
            "EnergyConsumer",
            rid,
            {
                "EnergyConsumer.p": float(row.p_mw) * float(row.scaling),
                "EnergyConsumer.q": float(row.q_mvar) * float(row.scaling),
            },
            about=True,
        )

    for i, row in net.switch.iterrows():
        assert row.et == "b", "the writer knows bus-bus switches only"
        cls = "Fuse" if str(row.type) == "fuse" else "Breaker"
        rid = _id("switch", i, ns)
        kv = float(net.bus.vn_kv[row.bus])
        eq.obj(
            cls,
            rid,
            {
                "IdentifiedObject.name": str(row["name"]),
                "Equipment.EquipmentContainer": _ref(vlevel[kv]),
                "ConductingEquipment.BaseVoltage": _ref(base_v[kv]),
                "Switch.normalOpen": not bool(row.closed),
                "Switch.retained": False,
                "Switch.ratedCurrent": float(row.in_ka) * 1000.0 if np.isfinite(row.get("in_ka", np.nan)) else None,
            },
        )
        terminal("switch", i, int(row.bus), rid, 1)
        terminal("switch", i, int(row.element), rid, 2)
        ssh.obj(cls, rid, {"Switch.open": not bool(row.closed)}, about=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for profile, doc in (("EQ", eq), ("SSH", ssh), ("TP", tp), ("SV", sv)):
        path = out_dir / f"{name}_{profile}.xml"
        path.write_text(doc.text(), encoding="utf-8")
        paths[profile] = path
    return paths
