"""Synthesis flow: the OSU 0.18 um Liberty (fetched at synth time, never committed) and flat
Yosys synthesis through pyosys, returning cells, flip-flops, area and the critical path.

The Liberty comes from Debian's ``qflow-tech-osu018`` (GPL): ``apt-get download`` and
``dpkg-deb -x`` (:func:`synth.tools.fetch_deb`), copied into ``build/liberty/``, without
installing the package.
Areas are in um^2 of these cells, which are 3-4x larger than commercial 180 nm cells: use them
for relative comparisons between variants. The delay is ABC's ``stime`` of the mapped logic
(the longest register-to-register combinational path, Liberty timing, no wire load).
"""
import functools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

from hw import paths
from hw.generate import TOP, generate_verilog

from .tools import fetch_deb, source

LIBDIR = paths.BUILD / "liberty"
LIBERTY = LIBDIR / "osu018_stdcells.lib"
#: The Debian package of the OSU 0.18 um cells (Liberty, Verilog models, LEF).
CELL_PACKAGE = "qflow-tech-osu018"


#: Yosys' default ABC mapping for a Liberty library, then buffering of high-fanout nets and
#: ``stime -p`` (the timing report). No timing-driven gate sizing: it would upsize each leaf
#: block for its own critical path and so make a composed array larger than the flat one
#: (``synth.compose``); areas are at minimum sizing, as under a relaxed clock.
ABC_SCRIPT = ("+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf;"
              "&put;buffer,-p;stime,-p")


def fetch_liberty():
    """Return the path of the OSU018 Liberty, fetching the Debian package once
    (:func:`synth.tools.fetch_deb`; :class:`synth.tools.ToolUnavailable` if it cannot be had)."""
    if LIBERTY.exists():
        return LIBERTY
    d = fetch_deb(CELL_PACKAGE)  # ToolUnavailable (one line) if it cannot be had
    LIBDIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(next(d.rglob("osu018_stdcells.lib")), LIBERTY)
    (LIBDIR / "source.txt").write_text(source(CELL_PACKAGE) + "\n")
    return LIBERTY


def fetch_cell_models():
    """Return the path of the OSU018 cells' Verilog models (``specify`` blocks, UDP flops), from
    the same package as the Liberty, with the cells' time precision raised from 10 ps to 1 fs
    (SDF delays are rounded to the precision of the module they annotate; OpenSTA writes them
    to 1 fs)."""
    models = LIBDIR / "osu018_stdcells_1fs.v"
    if models.exists():
        return models
    d = fetch_deb(CELL_PACKAGE)
    text = next(d.rglob("osu018_stdcells.v")).read_text()
    LIBDIR.mkdir(parents=True, exist_ok=True)
    tmp = models.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text.replace("`timescale 1ns/10ps", "`timescale 1ns/1fs"))
    tmp.replace(models)
    return models


def liberty_source():
    """The Debian package file the Liberty came from (for the report)."""
    f = LIBDIR / "source.txt"
    return f.read_text().strip() if f.exists() else "qflow-tech-osu018"


#: Bumped when the flow changes in a way the cached results (``result.json``) must not survive.
FLOW_VERSION = 3

#: A line of our Yosys scripts that :func:`run_yosys` expands: ``wreduce; opt_clean`` repeated
#: until ``wreduce`` removes no more bits (at most :data:`WREDUCE_ROUNDS` rounds).
WREDUCE_FIXPOINT = "wreduce_fixpoint"
WREDUCE_ROUNDS = 64


def synth_steps(top):
    """Yosys' ``synth -flatten -top top`` with its one ``wreduce`` run to a fixed point.

    One ``wreduce`` pass narrows a chain of sums only as far as its work list happens to
    reach (cells are visited by name: four rows of a WS column, or fewer where ``pe_10``
    sorts before ``pe_2``), so the flip-flops of a sum depended on names and on what else
    was in the design. At the fixed point every sum of sign-extended operands keeps only its
    significant bits, whatever the design around it: the flat netlist and the composed
    leaves (:mod:`synth.leaves`) then agree by construction."""
    return [f"hierarchy -check -top {top}", "proc", "check", "flatten", "opt_expr", "check",
            "opt_clean", "opt -nodffe -nosdff", "fsm", "opt", WREDUCE_FIXPOINT, "peepopt",
            "opt_clean", "alumacc", "share", "opt", "memory -nomap", "opt_clean",
            f"synth -top {top} -run fine:check"]


def synthesize(verilog_path, workdir, top=TOP):
    """Flat synthesis of ``verilog_path`` mapped to OSU018; return a dict of figures. The mapped
    netlist is left in ``workdir/netlist.json`` (Yosys JSON) for the power estimate, the Yosys
    script in ``synth.ys`` and its log in ``yosys.log``.

    Every run is a fresh Python process: Yosys keeps global state between designs in one
    process (its counters of generated names), and ABC's result depends on those names, so
    in-process runs of the same Verilog differed by up to about 1 % in area. In a fresh
    process the same Verilog gives the same netlist, whatever the directory."""
    lib = fetch_liberty()
    workdir = pathlib.Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    script = [f"read_verilog {pathlib.Path(verilog_path).resolve()}",
              *synth_steps(top), f"dfflibmap -liberty {lib}",
              f"tee -q -o abc.log abc -liberty {lib} -script {ABC_SCRIPT}",
              "opt_clean", f"tee -q -o stat.json stat -json -liberty {lib}",
              "write_json netlist.json"]
    (workdir / "synth.ys").write_text("\n".join(script) + "\n")
    run_yosys(workdir, "synth", verilog_path)
    return figures(workdir)


#: Runs a script line by line in one design, expanding :data:`WREDUCE_FIXPOINT`.
_RUNNER = f"""
import sys
from pyosys import libyosys as ys
design = ys.Design()
for line in open(sys.argv[1]).read().splitlines():
    if line != {WREDUCE_FIXPOINT!r}:
        ys.run_pass(line, design)
        continue
    for _ in range({WREDUCE_ROUNDS}):
        ys.run_pass("tee -q -o wreduce.log wreduce", design)
        ys.run_pass("opt_clean", design)
        if "Removed top" not in open("wreduce.log").read():
            break
"""


def run_yosys(workdir, name, what):
    """Run ``workdir/<name>.ys`` in a fresh Python process (log ``<name>.log``, or ``yosys.log``
    for the main flow); ``RuntimeError`` with the log's tail if Yosys fails."""
    log_path = workdir / ("yosys.log" if name == "synth" else f"{name}.log")
    with open(log_path, "w") as log:
        r = subprocess.run([sys.executable, "-c", _RUNNER, f"{name}.ys"], cwd=workdir,
                           stdout=log, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = log_path.read_text().splitlines()[-15:]
        raise RuntimeError(f"Yosys failed on {what} (log: {log_path}):\n" + "\n".join(tail))


def count_flops(verilog_text, workdir, top=TOP):
    """Flip-flops of ``verilog_text`` after Yosys' generic ``synth -flatten`` (its ABC pass
    included, no Liberty): the flip-flops :func:`synthesize` keeps (its mapping only maps
    them) in about two thirds of the time, for checks that need no area."""
    workdir = pathlib.Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{top}.v").write_text(verilog_text)
    script = [f"read_verilog {top}.v", *synth_steps(top), "tee -q -o flops.json stat -json"]
    (workdir / "flops.ys").write_text("\n".join(script) + "\n")
    run_yosys(workdir, "flops", workdir / f"{top}.v")
    cells = json.loads((workdir / "flops.json").read_text())["design"]["num_cells_by_type"]
    return sum(n for cell, n in cells.items() if "DFF" in cell.upper())


def figures(workdir):
    """Cells, flip-flops, area and critical path from a synthesis run's ``stat.json`` and
    ``abc.log``."""
    workdir = pathlib.Path(workdir)
    mod = json.loads((workdir / "stat.json").read_text())["design"]
    cells = mod.get("num_cells_by_type", {})
    delay = re.findall(r"Delay\s*=\s*([0-9.]+)\s*ps", (workdir / "abc.log").read_text())
    return {"cells": mod["num_cells"], "area_um2": mod.get("area", 0.0),
            "flops": sum(n for c, n in cells.items() if c.startswith("DFF")),
            "delay_ps": float(delay[-1]) if delay else None}


def synthesize_cached(verilog_text, workdir, top=TOP):
    """:func:`synthesize` ``verilog_text`` in ``workdir``, or return the figures of an earlier
    run on the same text with the same ABC script (``workdir/result.json``)."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    src, result = workdir / f"{top}.v", workdir / "result.json"
    if src.exists() and result.exists() and src.read_text() == verilog_text:
        cached = json.loads(result.read_text())
        if (cached.get("abc_script") == ABC_SCRIPT and cached.get("flow") == FLOW_VERSION
                and (workdir / "netlist.json").exists()):
            return cached
    src.write_text(verilog_text)
    figures = {**synthesize(src, workdir, top=top), "abc_script": ABC_SCRIPT,
               "flow": FLOW_VERSION}
    result.write_text(json.dumps(figures, indent=1) + "\n")
    return figures


@functools.lru_cache(maxsize=64)
def config_verilog(config):
    """The Verilog of ``config`` (the generator the tests simulate), generated once per
    process: the sweep, the composition check and the power estimate all ask for it."""
    return generate_verilog(config)


def synthesize_config(config, workdir):
    """Synthesize the Verilog of ``config`` (cached)."""
    return synthesize_cached(config_verilog(config), workdir)
