"""Synthesis and static timing of one PE for its timing characterization (:mod:`synth.timing`):
the PE in its input-registering harness through the project's flow, the flip-flop of every
accumulator bit, OpenSTA's per-bit rise and fall arrivals and setup times, and the SDF, made
readable by Icarus. Method: docs/energy.md §1 items 1-2."""
import dataclasses
import json
import pathlib
import re

from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring

from .flow import fetch_liberty, run_yosys, synthesize
from .tools import opensta

__all__ = ["Harness", "Netlist", "synthesize_pe", "Sta", "sta", "icarus_sdf"]


class Harness(wiring.Component):
    """``inner`` with every input registered (the launching flip-flops of the paths timed).

    The ports are ``inner``'s; the Amaranth ``sync`` domain adds ``clk`` and ``rst``."""

    def __init__(self, inner):
        self._inner = inner
        super().__init__(dict(inner.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe = pe = self._inner
        for name, member in pe.signature.members.items():
            if member.flow is wiring.In:
                launch = Signal.like(getattr(pe, name), name=f"in_{name}")
                m.d.sync += launch.eq(getattr(self, name))
                m.d.comb += getattr(pe, name).eq(launch)
            else:
                m.d.comb += getattr(self, name).eq(getattr(pe, name))
        return m


# ---------------------------------------------------------------------------------------------
# Synthesis.

@dataclasses.dataclass(frozen=True)
class Netlist:
    """A synthesized :class:`Harness`: ``verilog`` (top module ``top``), the flip-flop of each
    accumulator bit (``acc_flops[k]``: an instance name, or ``0``/``1`` for a constant bit) and
    the synthesis figures."""

    verilog: pathlib.Path
    acc_flops: tuple
    figures: dict

    @property
    def flops(self):
        """The distinct accumulator flip-flops, in bit order."""
        return tuple(dict.fromkeys(f for f in self.acc_flops if isinstance(f, str)))


def synthesize_pe(pe, workdir):
    """Synthesize ``pe`` in its :class:`Harness` into ``workdir``; return the :class:`Netlist`."""
    workdir = pathlib.Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    lib = fetch_liberty()
    src = workdir / "top.v"
    src.write_text(verilog.convert(Harness(pe.build()), name="top", emit_src=False))
    figures = synthesize(src, workdir, top="top")
    (workdir / "rename.ys").write_text("\n".join([
        f"read_liberty -lib {lib}", "read_json netlist.json",
        "rename -enumerate -pattern ff% t:DFFPOSX1", "rename -enumerate",
        "write_json netlist_named.json", "write_verilog -noattr -noexpr netlist.v"]) + "\n")
    run_yosys(workdir, "rename", src)
    module = json.loads((workdir / "netlist_named.json").read_text())["modules"]["top"]
    accs = [n for n in module["netnames"] if re.fullmatch(r"pe\.(inner\.)?acc", n)]
    if len(accs) != 1:
        raise RuntimeError(f"cannot find the accumulator in {workdir / 'netlist_named.json'} "
                           f"(nets named like acc: {accs})")
    q = {}
    for name, cell in module["cells"].items():
        if cell["type"] == "DFFPOSX1":
            q[cell["connections"]["Q"][0]] = name
    acc_flops = []
    for k, bit in enumerate(module["netnames"][accs[0]]["bits"]):
        if bit in ("0", "1"):
            acc_flops.append(int(bit))
        elif bit in q:
            acc_flops.append(q[bit])
        else:
            raise RuntimeError(f"accumulator bit {k} of {pe.key} has no flip-flop")
    if len(acc_flops) != pe.acc_width:
        raise RuntimeError(f"the accumulator has {len(acc_flops)} bits, not {pe.acc_width}")
    return Netlist(workdir / "netlist.v", tuple(acc_flops), figures)


# ---------------------------------------------------------------------------------------------
# Static timing.

@dataclasses.dataclass(frozen=True)
class Sta:
    """One OpenSTA run's figures, in ps.

    Per accumulator bit ``k`` (0 for a constant bit): ``rise[k]``/``fall[k]``, the latest
    data arrival at its flip-flop's D pin ending in a rising/falling edge, and
    ``setup_rise[k]``/``setup_fall[k]``, the flip-flop's setup times for them; ``min_period``:
    the shortest clock period of the whole PE (its worst register-to-register path plus
    setup), ending at ``critical_endpoint``; ``sdf``: the SDF file, written (Liberty timing) or
    read (SDF-annotated timing, the delays the gate-level simulation uses)."""

    rise: tuple
    fall: tuple
    setup_rise: tuple
    setup_fall: tuple
    min_period: float
    critical_endpoint: str
    sdf: pathlib.Path

    @property
    def arrival(self):
        """Per bit, the latest arrival, rising or falling."""
        return tuple(max(r, f) for r, f in zip(self.rise, self.fall))

    @property
    def acc_critical(self):
        """The latest accumulator arrival."""
        return max(self.arrival)

    @property
    def acc_period(self):
        """The shortest clock period at which every accumulator bit meets its setup."""
        return round(max(max(r + sr, f + sf) for r, f, sr, sf in
                         zip(self.rise, self.fall, self.setup_rise, self.setup_fall)), 3)

    @property
    def setup(self):
        """The largest setup time of the accumulator's flip-flops."""
        return max(self.setup_rise + self.setup_fall)

    def to_dict(self):
        return {"arrival_ps": list(self.arrival), "rise_ps": list(self.rise),
                "fall_ps": list(self.fall), "setup_rise_ps": list(self.setup_rise),
                "setup_fall_ps": list(self.setup_fall), "acc_critical_ps": self.acc_critical,
                "acc_period_ps": self.acc_period, "min_period_ps": self.min_period,
                "critical_endpoint": self.critical_endpoint}


#: The clock OpenSTA times against (ns): longer than any path, short enough for float32 slack.
_STA_PERIOD = 100.0
_END = re.compile(r"^(\S+)/D \(\w+\)\s+(-?[0-9.]+)\s+(-?[0-9.]+)\s+(-?[0-9.]+)", re.M)


def _ends(text):
    """``[(flip-flop, required_ns, arrival_ns, slack_ns)]`` of ``report_checks -format end``."""
    return [(f, float(r), float(a), float(s)) for f, r, a, s in _END.findall(text)]


def sta(netlist, workdir, sdf=None):
    """Run OpenSTA on ``netlist`` in ``workdir``; return the :class:`Sta`. One ideal clock
    and no input delays: only register-to-register paths are timed. Without ``sdf``, with
    the Liberty's delays, writing ``top.sdf`` for Icarus; with ``sdf``, with that file's
    delays (:func:`icarus_sdf`'s output)."""
    workdir = pathlib.Path(workdir).resolve()
    tool = opensta()
    flops = " ".join(netlist.flops)
    name = "sta_sdf" if sdf else "sta"
    script = [f"read_liberty {fetch_liberty()}", f"read_verilog {netlist.verilog}",
              "link_design top", *([f"read_sdf {sdf}"] if sdf else []),
              f"create_clock -name clk -period {_STA_PERIOD} [get_ports clk]",
              "puts \"== critical\"",
              "report_checks -path_delay max -digits 6 -format end",
              f"foreach ff {{{flops}}} {{",
              "  foreach edge {rise fall} {",
              "    puts \"== $edge $ff\"",
              "    report_checks -path_delay max -digits 6 -format end "
              "-${edge}_to [get_pins $ff/D]", "  }", "}",
              *([] if sdf else ["write_sdf -digits 6 sta.sdf"])]
    (workdir / f"{name}.tcl").write_text("\n".join(script) + "\n")
    r = tool.run([str(tool["sta"]), "-no_splash", "-exit", f"{name}.tcl"], cwd=workdir,
                 capture_output=True, text=True)
    log = workdir / f"{name}.log"
    log.write_text(r.stdout + r.stderr)
    if r.returncode != 0 or not (sdf or (workdir / "sta.sdf").exists()):
        raise RuntimeError(f"OpenSTA failed (log: {log}): "
                           f"{(r.stderr.strip().splitlines() or [''])[-1]}")
    if re.search(r"^(Error|Warning)", r.stdout + r.stderr, re.M):
        raise RuntimeError(f"OpenSTA complained (log: {log}): " + re.search(
            r"^(Error|Warning).*$", r.stdout + r.stderr, re.M).group(0))
    found = {}
    for block in r.stdout.split("== ")[1:]:
        head, _, body = block.partition("\n")
        ends = _ends(body)
        if len(ends) == 1:
            found[head.strip()] = ends[0]
    need = ["critical"] + [f"{e} {f}" for f in netlist.flops for e in ("rise", "fall")]
    missing = [n for n in need if n not in found]
    if missing:
        raise RuntimeError(f"OpenSTA reported no path for {missing[0]} (log: {log})")

    def per_bit(edge, setup=False):
        """Per accumulator bit: the arrival (or the setup time) of the path ending in
        ``edge``."""
        out = []
        for f in netlist.acc_flops:
            if isinstance(f, str):
                _, required, arrival, _ = found[f"{edge} {f}"]
                out.append(_ps(_STA_PERIOD - required if setup else arrival))
            else:
                out.append(0.0)
        return tuple(out)

    crit = found["critical"]
    if not sdf:
        sdf = workdir / "top.sdf"
        sdf.write_text(icarus_sdf((workdir / "sta.sdf").read_text()))
    return Sta(per_bit("rise"), per_bit("fall"), per_bit("rise", True), per_bit("fall", True),
               _ps(_STA_PERIOD - crit[3]), crit[0], pathlib.Path(sdf))


def _ps(ns):
    return round(1000 * ns, 3)


def icarus_sdf(text):
    """OpenSTA's SDF made readable by Icarus: ``(a::b)`` triples become ``(b:b:b)``. Icarus
    ignores ``INTERCONNECT`` delays; they are all zero without parasitics (a non-zero one is
    an error)."""
    for line in text.splitlines():
        if line.strip().startswith("(INTERCONNECT"):
            values = re.findall(r"-?[0-9.]+(?=[:)])", line.split(None, 3)[-1])
            if any(float(v) != 0.0 for v in values):
                raise ValueError(f"non-zero interconnect delay in the SDF: {line.strip()}")
    return re.sub(r"\((-?[0-9.]*)::(-?[0-9.]+)\)", r"(\2:\2:\2)", text)
