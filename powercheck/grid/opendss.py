"""OpenDSS models as balanced pandapower networks (optional extra ``powercheck[opendss]``).

pandapower's converter (:func:`pandapower.converter.opendss.from_opendss`, through OpenDSSDirect.py)
builds a balanced, positive-sequence model: a single-phase load keeps its kW but becomes a balanced
three-phase load, a single-phase line or transformer becomes a three-phase one, and PVSystem, Storage
and Generator elements are not mapped at all. It does this silently (only counts in
``net["opendss_import"]``); :func:`load_opendss` names every such element in a warning, which the
region summary shows as the network's ``import_notes``.

The model's files are untrusted: the master must be a ``.dss`` file inside the region directory, and
every ``Redirect``/``Compile`` it (transitively) names and every data file (``file=``, ``BusCoords``) must
stay inside that directory too; commands that write files or open an editor (``Export``, ``Save``,
``Show``, ``Set DataPath``...) are refused.
"""

from __future__ import annotations

import re
import threading
import warnings
from pathlib import Path

from powercheck.grid.networks import GridModelError
from powercheck.lazy import lazy_module

pp = lazy_module("pandapower")  # only when a model is imported (the fingerprint reads text only)

__all__ = ["OPENDSS_PREFIX", "MAX_DSS_BYTES", "load_opendss", "opendss_files"]

OPENDSS_PREFIX = "opendss:"
MAX_DSS_BYTES = 50_000_000
"""Largest accepted ``.dss`` file [bytes] (a large distribution feeder is a few MB)."""

MAX_DSS_FILES = 1000
"""Most files a model may ``Redirect``/``Compile`` in total."""

INSTALL_HINT = "install powercheck[opendss] (pip install 'powercheck[opendss]', which brings opendssdirect.py)"

_FOLDED_CLASSES = ("Load", "Line", "Transformer")
_SKIPPED_CLASSES = ("PVSystem", "Storage", "Generator")
_INCLUDE_COMMANDS = ("redirect", "compile")
_REFUSED_COMMANDS = ("export", "save", "show", "fileedit", "plot")
"""Commands that write files or open an editor: refused in an untrusted model. OpenDSS accepts any prefix of
a command (``red`` is ``Redirect``), so a first word that is a prefix of one of these counts as it."""
_REFUSED_OPTIONS = ("datapath", "editor", "casename")
"""``Set`` options that move where OpenDSS reads and writes (also as prefixes, ``Set datap=``)."""
_FIRST_WORD = re.compile(r"^\s*([A-Za-z?~]+)\b\s*(.*)$")
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=")
_TOKEN_SPLIT = re.compile(r"[\s=(),\[\]{}\"']+")


def _check_line(line: str, where: str, parent: Path, base: Path) -> Path | None:
    """The file a ``Redirect``/``Compile`` line includes (else None); refuses writing commands, data-path
    options and any path-like token (with ``/``, ``\\`` or ``..``) that resolves outside ``base``."""
    m = _FIRST_WORD.match(line)
    if not m:
        return None
    word, rest = m.group(1).lower(), m.group(2)
    for cmd in _REFUSED_COMMANDS:
        if cmd.startswith(word):
            raise GridModelError(f"{where}: the OpenDSS command {m.group(1)!r} ({cmd}) is not allowed here")
    if len(word) >= 2 and "set".startswith(word):
        for key in _KEY.findall(rest):
            if any(opt.startswith(key.lower()) for opt in _REFUSED_OPTIONS):
                raise GridModelError(f"{where}: the OpenDSS option 'Set {key}' is not allowed here")
    for token in _TOKEN_SPLIT.split(line):
        if "/" in token or "\\" in token or token == "..":
            if not (parent / token.replace("\\", "/")).resolve().is_relative_to(base):
                raise GridModelError(f"{where}: path {token!r} leads outside the region directory")
    if any(cmd.startswith(word) for cmd in _INCLUDE_COMMANDS):
        target = rest.strip()
        if target.lower().startswith("file"):
            target = target.split("=", 1)[-1].strip()
        target = target.strip("\"'()").strip()
        if target:
            return parent / target
    return None


# OpenDSSDirect.py holds one global circuit per process: one import at a time.
_DSS_LOCK = threading.Lock()


def opendss_files(master: Path, base_dir: Path) -> list[Path]:
    """The master and every file it ``Redirect``s/``Compile``s, transitively; each checked.

    Raises
    ------
    GridModelError
        A file that is missing, not ``.dss``, too large, or (for an included file) outside
        ``base_dir``, naming the file and, for an include, the line that names it.
    """
    base = base_dir.resolve()
    seen: list[Path] = []
    todo = [(master, None)]
    while todo:
        path, where = todo.pop()
        full = path.resolve()
        origin = f"{where}: " if where else ""
        if not full.is_relative_to(base):
            raise GridModelError(f"{origin}OpenDSS file {path} leads outside the region directory {base_dir}")
        if full in seen:
            continue
        if not full.is_file():
            raise GridModelError(f"{origin}OpenDSS file {path} not found")
        if full.suffix.lower() != ".dss":
            raise GridModelError(f"{origin}OpenDSS file {path} must be a .dss file")
        size = full.stat().st_size
        if size > MAX_DSS_BYTES:
            raise GridModelError(f"{origin}OpenDSS file {path} is {size} bytes, more than {MAX_DSS_BYTES}")
        seen.append(full)
        if len(seen) > MAX_DSS_FILES:
            raise GridModelError(f"OpenDSS model {master}: more than {MAX_DSS_FILES} files")
        text = full.read_text(encoding="utf-8", errors="replace")
        for no, line in enumerate(text.splitlines(), 1):
            line = line.split("!", 1)[0].split("//", 1)[0]
            where = f"{full} line {no}"
            target = _check_line(line, where, full.parent, base)
            if target is not None:
                todo.append((target, where))
    return seen


def _phase_count(token: str, declared: int) -> int:
    """Phase conductors of a bus spec (``b3.1`` -> 1, ``b3.0`` ignored); a bare name -> ``declared``."""
    nodes = [n for n in token.split(".")[1:] if n not in ("", "0")]
    return min(len(nodes), declared) if nodes else declared


def _folded_elements(dss) -> list[str]:
    """A warning per element the balanced import changes or leaves out (the compiled circuit)."""
    found = []
    for cls in _FOLDED_CLASSES + _SKIPPED_CLASSES:
        dss.Circuit.SetActiveClass(cls)
        for name in dss.ActiveClass.AllNames() if dss.ActiveClass.Count() else []:
            dss.Circuit.SetActiveElement(f"{cls}.{name}")
            declared = int(dss.CktElement.NumPhases())
            buses = list(dss.CktElement.BusNames())
            phases = min([_phase_count(b, declared) for b in buses] + [declared])
            kind = {1: "single-phase", 2: "two-phase"}.get(phases)
            where = ", ".join(buses)
            if cls in _SKIPPED_CLASSES:
                label = f"{kind} " if kind else ""
                found.append(
                    f"{label}{cls}.{name} at {where} is left out: pandapower's OpenDSS converter does not import {cls}"
                )
            elif kind:
                found.append(f"{kind} {cls}.{name} at {where} folded into a balanced three-phase {cls.lower()}")
    return found


def load_opendss(path: str | Path, base_dir: str | Path | None = None) -> tuple[pp.pandapowerNet, list[str]]:
    """Import an OpenDSS model (its master ``.dss`` file) as a balanced pandapower network.

    Parameters
    ----------
    path
        The master file, relative to ``base_dir`` when relative.
    base_dir
        The region directory the model's files must stay inside (default: the master's directory).

    Returns
    -------
    (net, warnings)
        The balanced network and one warning per element folded into a balanced one or left out
        (named ``Class.name at bus``), then the converter's own warnings (skipped elements, fixed taps).

    Raises
    ------
    GridModelError
        Naming the file: opendssdirect.py not installed, a bad path, or OpenDSS's own message when
        the model fails to compile or solve.
    """
    path = Path(path)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    base = Path(base_dir) if base_dir is not None else path.parent
    files = opendss_files(path, base)
    master = files[0]
    try:
        from pandapower.converter.opendss import from_dss
    except ImportError:  # pragma: no cover - pandapower without the converter
        raise GridModelError(f"OpenDSS model {master}: this pandapower has no OpenDSS converter") from None
    if not from_dss.opendssdirect_imported:
        raise GridModelError(f"OpenDSS model {master}: opendssdirect.py is not installed; {INSTALL_HINT}")
    dss = from_dss.dss
    with _DSS_LOCK:
        try:
            dss.Command("Clear")
            dss.Command(f'Redirect "{master}"')
            dss.Solution.Solve()
        except Exception as exc:  # OpenDSS's DSSException carries the file and line
            raise GridModelError(f"OpenDSS model {master} fails to compile: {exc}") from None
        if not dss.Solution.Converged():
            raise GridModelError(f"OpenDSS model {master}: OpenDSS's own power flow does not converge")
        folded = _folded_elements(dss)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = from_dss.from_opendss(str(master), solve=True)
        except Exception as exc:
            raise GridModelError(f"OpenDSS model {master}: pandapower's converter failed: {exc}") from None
    report = net.get("opendss_import", {})
    notes = folded + [f"OpenDSS import: {w}" for w in report.get("warnings", [])]
    if len(net.ext_grid):
        notes.append("OpenDSS import: the Vsource is an ideal ext_grid (its impedance is not imported)")
    return net, notes
