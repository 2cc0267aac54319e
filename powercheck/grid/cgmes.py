"""CGMES networks through pandapower's ``from_cim``, wrapped so that nothing is lost silently.

pandapower's converter (``pandapower.converter.cim.cim2pp.from_cim``) drops classes it does not know without
an error: a ``Fuse`` leaves everything behind it unsupplied, per-phase classes (IEC 61968-13) vanish. This
module reads the raw XML first and either maps or refuses each such element, naming it:

=====================================  ===========================================================
class in the XML                       what happens
=====================================  ===========================================================
Fuse                                   mapped: a closed switch (``type = "fuse"``, ``in_ka`` from
                                       ``Switch.ratedCurrent``) plus a :class:`ProtectionDevice`
Jumper                                 mapped: a closed switch (``type = "jumper"``)
GroundDisconnector                     refused (an earthing switch has no place in the balanced model)
ACLineSegmentPhase, PerLengthPhase-    refused: per-phase data would be folded into a balanced
Impedance, EnergyConsumerPhase,        model without a word
SwitchPhase, ...Phase
=====================================  ===========================================================

and after the conversion:

* no slack (no ``ExternalNetworkInjection`` with referencePriority > 0 and an enabled voltage control):
  refused, or with ``slack_from_source`` the single source (an ENI or EnergySource the converter made a
  generator) becomes the slack, named in :attr:`CgmesImport.notes`;
* buses no source supplies (a disconnected terminal, an open switch): refused naming the buses and their
  ConnectivityNode mRIDs, or with ``allow_unsupplied`` listed in :attr:`CgmesImport.unsupplied` (the region
  then reports them as islanded);
* every file's ``md:Model.profile`` must be an ENTSO-E CGMES profile URI (EQ, SSH, TP, SV, DL, GL and
  boundaries); another URI is refused naming the file and the URI.

CGMES 2.4.15 (CIM16 namespace) is supported; 3.0 (CIM100) is experimental (a note says so). A source is a
``.zip`` of XML files or a directory of them (EQ/SSH/TP/SV), inside the region directory. The CIM mRIDs stay in
``origin_id``; :meth:`CgmesImport.mrid_to_bus` maps ConnectivityNode and EnergyConsumer mRIDs to buses.
"""

from __future__ import annotations

import logging
import re
import tempfile
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandapower as pp
import pandapower.topology as top
import pandas as pd

from powercheck.grid.networks import GridModelError

__all__ = ["CgmesError", "CgmesImport", "ProtectionDevice", "cgmes_sources", "import_cgmes", "is_cgmes_source"]

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
MD = "http://iec.ch/TC57/61970-552/ModelDescription/1#"
CIM16 = "http://iec.ch/TC57/2013/CIM-schema-cim16#"
CIM100 = "http://iec.ch/TC57/CIM100#"

KNOWN_PROFILES = (
    "/EquipmentCore/",
    "/EquipmentOperation/",
    "/EquipmentShortCircuit/",
    "/EquipmentBoundary/",
    "/EquipmentBoundaryOperation/",
    "/SteadyStateHypothesis/",
    "/StateVariables/",
    "/Topology/",
    "/TopologyBoundary/",
    "/DiagramLayout/",
    "/GeographicalLocation/",
    "/CoreEquipment-EU/",
    "/SteadyStateHypothesis-EU/",
    "/StateVariables-EU/",
    "/Topology-EU/",
    "/DiagramLayout-EU/",
    "/GeographicalLocation-EU/",
    "/EquipmentBoundary-EU/",
    "/Operation-EU/",
    "/ShortCircuit-EU/",
)
"""Profile URI parts pandapower's converter recognises (cim_classes.py); other URIs are refused."""

MAPPED = {"Fuse": "fuse", "Jumper": "jumper"}
"""Classes the converter drops that become closed switches (class -> switch type)."""
REFUSED = ("GroundDisconnector",)
PHASE = re.compile(r".+Phase$|PerLengthPhaseImpedance|PhaseImpedanceData")
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_FILES = 64
MAX_LISTED = 10


class CgmesError(GridModelError):
    """A CGMES network cannot be used; the message names the file, the class and the element ids."""


@dataclass(frozen=True)
class ProtectionDevice:
    """A fuse of the CGMES model, kept for the fuse checks."""

    mrid: str
    name: str
    rated_current_a: float | None
    switch: int
    """Index of the closed switch it became in ``net.switch``."""
    bus: int
    """The switch's first bus (source side in the file's terminal order)."""
    element: int


@dataclass
class CgmesImport:
    """The result of :func:`import_cgmes`."""

    net: pp.pandapowerNet
    version: str
    files: list[str]
    protection: list[ProtectionDevice] = field(default_factory=list)
    unsupplied: list[tuple[int, str, str]] = field(default_factory=list)
    """(bus, name, ConnectivityNode mRID) of buses no source supplies (with ``allow_unsupplied``)."""
    notes: list[str] = field(default_factory=list)
    """What the import did that a reader should know (slack set from the source, experimental version)."""

    def mrid_to_bus(self) -> dict[str, int]:
        """ConnectivityNode and EnergyConsumer mRIDs -> pandapower bus index."""
        out = {str(o): int(b) for b, o in self.net.bus.origin_id.items() if isinstance(o, str)}
        if len(self.net.load) and "origin_id" in self.net.load:
            out.update(
                {str(o): int(b) for o, b in zip(self.net.load.origin_id, self.net.load.bus) if isinstance(o, str)}
            )
        return out


def is_cgmes_source(path: Path) -> bool:
    """A ``.zip`` or a directory (of CGMES XML files)."""
    return path.suffix.lower() == ".zip" or path.is_dir()


def cgmes_sources(path: Path, workdir: Path, origin: str) -> list[Path]:
    """The XML files of a source (a zip is unpacked into ``workdir``, member names checked)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    elif path.suffix.lower() == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise CgmesError(f"{origin}: not a readable zip file ({exc})") from None
        files = []
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > MAX_FILES:
                raise CgmesError(f"{origin}: {len(members)} files in the zip (at most {MAX_FILES})")
            for m in members:
                name = Path(m.filename).name
                if not name.lower().endswith(".xml"):
                    raise CgmesError(f"{origin}: zip member {m.filename!r} is not an .xml file")
                if m.file_size > MAX_FILE_BYTES:
                    raise CgmesError(f"{origin}: zip member {m.filename!r} is larger than {MAX_FILE_BYTES} bytes")
                target = workdir / f"z{len(files)}_{re.sub(r'[^A-Za-z0-9._-]', '_', name)}"
                target.write_bytes(archive.read(m))
                files.append(target)
    else:
        raise CgmesError(f"{origin}: a CGMES source is a .zip or a directory of .xml files")
    if not files:
        raise CgmesError(f"{origin}: no .xml files")
    for f in files:
        if f.stat().st_size > MAX_FILE_BYTES:
            raise CgmesError(f"{origin}: {f.name} is larger than {MAX_FILE_BYTES} bytes")
    return files


@dataclass
class _Scan:
    profiles: list[str]
    version: str | None
    elements: dict[str, list[tuple[str, dict[str, str]]]]
    """class -> (rdf id, {field: text or resource}) of the classes the converter drops."""


def _scan(path: Path, origin: str) -> _Scan:
    """The profile URIs, CIM version and the dropped classes' elements of one XML file."""
    profiles: list[str] = []
    version = None
    elements: dict[str, list[tuple[str, dict[str, str]]]] = {}
    try:
        depth = 0
        for event, elem in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                depth += 1
                continue
            depth -= 1
            tag = elem.tag
            if not isinstance(tag, str) or not tag.startswith("{"):
                continue
            ns, local = tag[1:].split("}", 1)
            if ns == MD and local == "Model.profile":
                profiles.append((elem.text or "").strip())
            elif ns in (CIM16, CIM100) and depth == 1:  # a top-level object (child of rdf:RDF)
                version = version or ("2.4.15" if ns == CIM16 else "3.0")
                if local in MAPPED or local in REFUSED or PHASE.fullmatch(local):
                    rid = elem.get(f"{{{RDF}}}ID") or (elem.get(f"{{{RDF}}}about") or "").lstrip("#")
                    fields = {}
                    for child in elem:
                        ctag = child.tag.split("}", 1)[-1] if isinstance(child.tag, str) else ""
                        fields[ctag] = child.get(f"{{{RDF}}}resource") or (child.text or "").strip()
                    elements.setdefault(local, []).append((rid, fields))
            if depth == 1:
                elem.clear()  # keep memory flat on large files
    except ET.ParseError as exc:
        raise CgmesError(f"{origin}: {path.name} is not well-formed XML ({exc})") from None
    return _Scan(profiles, version, elements)


def _listed(ids: list[str]) -> str:
    more = f" (+{len(ids) - MAX_LISTED} more)" if len(ids) > MAX_LISTED else ""
    return ", ".join(ids[:MAX_LISTED]) + more


def import_cgmes(
    source: Path,
    *,
    origin: str | None = None,
    slack_from_source: bool = False,
    allow_unsupplied: bool = False,
) -> CgmesImport:
    """Import a CGMES network (see the module docstring).

    Raises
    ------
    CgmesError
        An unknown profile URI (file and URI), a refused class (class and element ids), no slack,
        unsupplied buses (names and mRIDs), or a converter failure.
    """
    from pandapower.converter.cim.cim2pp.from_cim import from_cim

    origin = origin or f"CGMES source {source}"
    with tempfile.TemporaryDirectory(prefix="powercheck-cgmes-") as tmp:
        work = Path(tmp)
        files = cgmes_sources(source, work, origin)
        scans = {f: _scan(f, origin) for f in files}
        notes: list[str] = []
        versions = {s.version for s in scans.values() if s.version}
        if len(versions) > 1:
            raise CgmesError(f"{origin}: the files mix CIM versions {sorted(versions)}")
        version = versions.pop() if versions else "2.4.15"
        if version == "3.0":
            notes.append("CGMES 3.0 (CIM100) is experimental in powercheck")
        for f, s in scans.items():
            if not s.profiles:
                raise CgmesError(f"{origin}: {f.name} has no md:FullModel with a Model.profile")
            for uri in s.profiles:
                if not any(part in uri for part in KNOWN_PROFILES):
                    raise CgmesError(
                        f"{origin}: {f.name} Model.profile {uri!r} is not a CGMES profile URI "
                        "(EquipmentCore, SteadyStateHypothesis, Topology, StateVariables, ...)"
                    )
        found: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for s in scans.values():
            for cls, items in s.elements.items():
                found.setdefault(cls, []).extend(items)
        for cls in sorted(found):
            if cls in REFUSED or PHASE.fullmatch(cls):
                ids = sorted({rid for rid, _ in found[cls]})
                why = (
                    "per-phase data (IEC 61968-13) has no place in the balanced model"
                    if cls not in REFUSED
                    else ("an earthing switch has no place in the balanced model")
                )
                raise CgmesError(f"{origin}: {cls} is not supported ({why}): {_listed(ids)}")
        mapped_eq: dict[str, tuple[str, dict[str, str]]] = {}
        for cls in MAPPED:
            for rid, fields in found.get(cls, []):
                if "IdentifiedObject.name" in fields or "Switch.normalOpen" in fields:
                    mapped_eq[rid] = (cls, fields)
        # rewrite the dropped classes to cim:Switch so the converter keeps them
        inputs = []
        for f in files:
            text = f.read_bytes()
            if any(cls in scans[f].elements for cls in MAPPED):
                for cls in MAPPED:
                    text = re.sub(rb"<(/?)([A-Za-z0-9_]+):" + cls.encode() + rb"([\s>])", rb"<\1\2:Switch\3", text)
                out = work / f"mapped_{f.name}"
                out.write_bytes(text)
                inputs.append(out)
            else:
                inputs.append(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            level = logging.root.manager.disable
            logging.disable(logging.WARNING)
            try:
                net = from_cim(file_list=[str(p) for p in inputs], cgmes_version=version)
            except Exception as exc:
                raise CgmesError(
                    f"{origin}: pandapower's CGMES converter failed ({type(exc).__name__}: {exc})"
                ) from None
            finally:
                logging.disable(level)

    protection: list[ProtectionDevice] = []
    if len(net.switch) and mapped_eq:
        for idx, row in net.switch.iterrows():
            mrid = str(row.get("origin_id", ""))
            if mrid not in mapped_eq:
                continue
            cls, fields = mapped_eq[mrid]
            net.switch.at[idx, "type"] = MAPPED[cls]
            rated = fields.get("Switch.ratedCurrent")
            rated_a = float(rated) if rated not in (None, "") else None
            if rated_a is not None:
                net.switch.at[idx, "in_ka"] = rated_a / 1000.0
            if cls == "Fuse":
                protection.append(
                    ProtectionDevice(mrid, str(row.get("name", "")), rated_a, int(idx), int(row.bus), int(row.element))
                )
        missing = sorted(set(mapped_eq) - set(net.switch.get("origin_id", pd.Series(dtype=str)).astype(str)))
        if missing:
            raise CgmesError(f"{origin}: these mapped elements were not converted to switches: {_listed(missing)}")

    _ensure_slack(net, origin, slack_from_source, notes)
    unsupplied = _unsupplied(net)
    if unsupplied and not allow_unsupplied:
        listed = [f"{name} ({mrid})" for _, name, mrid in unsupplied]
        raise CgmesError(f"{origin}: {len(unsupplied)} bus(es) no source supplies: {_listed(listed)}")
    return CgmesImport(
        net=net,
        version=version,
        files=[f.name for f in files],
        protection=protection,
        unsupplied=unsupplied,
        notes=notes,
    )


def _ensure_slack(net: pp.pandapowerNet, origin: str, slack_from_source: bool, notes: list[str]) -> None:
    if len(net.ext_grid) and net.ext_grid.in_service.astype(bool).any():
        return
    sources = []
    for table in ("gen", "sgen"):
        if len(net[table]) and "origin_class" in net[table]:
            hit = net[table][net[table].origin_class.isin(["ExternalNetworkInjection", "EnergySource"])]
            sources.extend((table, idx, row) for idx, row in hit.iterrows())
    if not slack_from_source:
        found = f"; the file has a source ({', '.join(str(r.origin_id) for _, _, r in sources)})" if sources else ""
        raise CgmesError(
            f"{origin}: no slack (no ExternalNetworkInjection with referencePriority > 0 and an enabled voltage "
            f"control){found}; set slack_from_source = true to use it"
        )
    if len(sources) != 1:
        raise CgmesError(f"{origin}: no slack, and {len(sources)} sources to set one from (need exactly one)")
    table, idx, row = sources[0]
    pp.create_ext_grid(net, int(row.bus), vm_pu=1.0, name=str(row.get("name", "source")), origin_id=row.origin_id)
    for col in ("s_sc_max_mva", "s_sc_min_mva", "rx_max", "rx_min", "r0x0_max", "x0x_max"):
        if col in row and pd.notna(row[col]):
            net.ext_grid.loc[net.ext_grid.index[-1], col] = row[col]
    net[table] = net[table].drop(index=idx)
    notes.append(f"slack set from the source {row.origin_id} ({table} {idx} of the converter)")


def _unsupplied(net: pp.pandapowerNet) -> list[tuple[int, str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buses = sorted(top.unsupplied_buses(net))
    return (
        [
            (int(b), str(net.bus.at[b, "name"]), str(net.bus.at[b, "origin_id"]) if "origin_id" in net.bus else "")
            for b in buses
            if bool(net.bus.at[b, "in_service"])
        ]
        if buses
        else []
    )
