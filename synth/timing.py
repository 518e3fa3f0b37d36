"""Timing characterization of one processing element as the array instantiates it: per-bit
static timing of its accumulator (OpenSTA), an SDF-annotated gate-level simulation of an operand
stream (Icarus Verilog), and, per cycle, what the accumulator's flip-flops would latch if the
clock were shorter. Method: docs/energy.md §1 (the characterization) and §4; the voltage model on
top is :mod:`synth.voltage`.

* **The PE.** One leaf of :func:`synth.leaves.leaves`: the PE class, widths, tied inputs,
  unread outputs and narrowed partial sums of one array position, as flat synthesis of the
  array sees it (by default the leaf most PEs of the array share; ``check=True`` a checksum
  PE). It is synthesized inside a :class:`Harness` that registers every input: in the array
  every data input of a PE comes from a flip-flop (a neighbour's register, a skew register),
  so the paths timed are register to register, with the launching flip-flop's clock-to-Q.
  (``w_load``/``drain`` come from the sequencer in the array, from a flip-flop here.)
  Synthesis is :func:`synth.flow.synthesize`, the project's one flow; the netlist is then
  renamed (flip-flops ``ffN``, other private names ``_N_``) so that the tools can name pins.
* **STA.** OpenSTA, one ideal clock, no input delays (so only register-to-register paths
  count): per accumulator bit, the latest data arrival at its flip-flop's D pin ending in a
  rising and in a falling edge, and the setup time of each; the shortest clock period of the
  whole PE. Run twice: with the Liberty's delays (the PE's STA; it writes the SDF), and with
  the SDF's delays (what the simulation uses; they differ by a few ps, the SDF holding one
  delay per arc and output edge where the Liberty timing distinguishes input edges of
  non-unate cells, XOR and XNOR). OpenSTA's ``(min::max)`` triples become ``(max:max:max)``
  for Icarus; its ``INTERCONNECT`` entries, which Icarus ignores, are all zero.
* **GLS.** Icarus (``-gspecify``, ``$sdf_annotate``) runs the netlist on the stream at a clock
  long enough for everything to settle, inputs driven at the falling edge, and logs every
  change of every accumulator D pin with its time, to 1 fs: the SDF's delays exactly (the
  cells' own 10 ps precision is raised, :func:`synth.flow.fetch_cell_models`). The settled
  value of every cycle is checked against the golden model (:mod:`golden.pe`).
* **Extraction** (:class:`Waveform`). Cycle ``c`` starts at its launching rising edge. Bit
  ``k``'s settle time is the time of its last change in the cycle (0 if none). With a clock
  period ``T``, its flip-flop latches the value after the latest change that meets setup (a
  rising change at ``t <= T - setup_rise``, a falling one at ``t <= T - setup_fall``), or the
  previous cycle's value if none does. ``errors(T)`` is, per cycle, the latched word minus
  the settled (correct) word, both signed ``acc_width``-bit integers.

An operand stream is a dict of integer arrays, one per input port of the PE (``i_a``, ``i_p``,
``i_w``, ``w_load`` for WS; ``i_a``, ``i_b``, ``i_c``, ``drain`` for OS; less the inputs the
array ties to 0), one value per cycle: :func:`uniform_stream` makes one; real operand streams
(e.g. captured from an LLM's GEMMs) are passed the same way.

Icarus' module path delays do not filter pulses, so glitches are, if anything, over-reported
(pessimistic); all cells get one delay scale (no voltage in the 1.8 V Liberty).
"""
import dataclasses
import functools
import os
import pathlib
import re
import shutil
import time

import numpy as np
from amaranth import Shape
from amaranth.lib import wiring

from hw.config import Abft, Dataflow

from .flow import fetch_cell_models
from .leaves import leaves
from .sta import Harness, Netlist, Sta, icarus_sdf, sta, synthesize_pe
from .tools import icarus
from .waveform import FS, Waveform

__all__ = ["Harness", "PE", "select_pe", "leaf_rows", "Netlist", "synthesize_pe", "Sta", "sta",
           "uniform_stream", "check_stream", "expected_acc", "Waveform", "simulate",
           "characterize", "settle_summary", "QUANTILES", "icarus_sdf", "FS"]

#: Quantiles of the settle-time summaries (docs/energy.md §1).
QUANTILES = (0.5, 0.99, 0.9999, 1.0)
#: Cycles of the uniform stream between weight reloads (WS) or drains (OS).
K_DEFAULT = 64


@dataclasses.dataclass(frozen=True)
class PE:
    """One PE leaf of an array: ``key`` names it (:mod:`synth.leaves`), ``count`` PEs of the
    array share it, ``at`` is the position characterized; ``build()`` makes the leaf."""

    config: object
    check: bool
    key: str
    count: int
    at: tuple
    build: object = dataclasses.field(compare=False, repr=False)

    @property
    def dataflow(self):
        return self.config.dataflow

    @property
    def pipelined(self):
        return "pipelinedTrue" in self.key

    @property
    def acc_width(self):
        return self.config.acc_width

    @property
    def name(self):
        """Short name for files and reports: ``<config id>-pe`` or ``-check``, and the
        position."""
        return f"{self.config.id}-{'check' if self.check else 'pe'}-r{self.at[0]}c{self.at[1]}"

    @functools.cached_property
    def _ports(self):
        leaf = self.build()
        for built in (leaf, getattr(leaf, "_inner", None)):  # built for the signature only
            if built is not None:
                built._MustUse__silence = True
        out = {}
        for name, member in leaf.signature.members.items():
            if member.flow is wiring.In:
                shape = Shape.cast(member.shape)
                out[name] = (shape.width, shape.signed)
        return out

    def inputs(self):
        """``{port: (width, signed)}`` of the leaf's inputs, in signature order."""
        return dict(self._ports)


def leaf_rows(pe):
    """(lo, hi): the array rows of the positions that share ``pe``'s netlist."""
    rows = [at[0] for key, _, part in leaves(pe.config) if key == pe.key for at in part.at]
    return min(rows), max(rows)


def select_pe(config, check=False, at=None):
    """The :class:`PE` of ``config`` at position ``at`` (``(row, col)``), or, by default, the
    leaf most PEs of the array share. ``check``: a checksum PE (WS column ``cols``, OS row
    ``rows``; the ``realm`` variant's if ``config`` has no ABFT: the checksum PEs of every
    variant are the same).

    The default on a tie of counts is the leaf whose positions reach furthest down (and
    right): its partial sums are the widest."""
    c = config.replace(fault_port=False)
    if check and c.abft is Abft.NONE:
        c = c.replace(abft=Abft.REALM)
    if c.acc_width > 62:
        raise ValueError(f"timing characterization handles acc_width up to 62, not "
                         f"{c.acc_width}")
    kind = "check pe" if check else "pe"
    found = {}
    for key, build, part in leaves(c):
        if part.kind != kind:
            continue
        count, _, where = found.get(key, (0, build, []))
        found[key] = (count + part.count, build, where + list(part.at))
    if at is not None:
        at = tuple(at)
        for key, (count, build, where) in found.items():
            if at in where:
                return PE(c, check, key, count, at, build)
        raise ValueError(f"there is no {'checksum ' if check else ''}PE at {at} in a "
                         f"{c.rows}x{c.cols} {c.dataflow} array")
    # the most shared leaf; between equals, the one reaching furthest down the array (its
    # partial sums are the widest)
    key, (count, build, where) = max(found.items(), key=lambda kv: (kv[1][0], max(kv[1][2])))
    return PE(c, check, key, count, where[0], build)



# ---------------------------------------------------------------------------------------------
# Operand streams and the golden accumulator.

def _uniform(rng, width, n, terms=1):
    """Sums of ``terms`` uniform signed ``width``-bit values."""
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    return rng.integers(lo, hi, size=(n, terms)).sum(axis=1)


def uniform_stream(pe, cycles, seed=1, k=K_DEFAULT):
    """A uniform-random operand stream of ``cycles`` cycles for ``pe``: operands uniform over
    the signed ``data_width``-bit range; the wide operands of a checksum PE (eᵀW, eᵀA) sums of
    ``cols`` (WS) or ``rows`` (OS) such operands; a WS partial sum in, the sum of the ``row``
    products of the PEs above; every ``k`` cycles one cycle of WS weight reload (``w_load``,
    a new weight on ``i_w``) or of OS ``drain`` (with ``i_c = 0``, as at the top of a column:
    the accumulation restarts from 0)."""
    c, row = pe.config, pe.at[0]
    rng = np.random.default_rng(seed)
    dw = c.data_width
    lanes = c.cols if c.dataflow is Dataflow.WS else c.rows
    pulse = (np.arange(cycles) % k) == k - 1
    out = {}
    for name, (width, _) in pe.inputs().items():
        if name in ("w_load", "drain"):
            out[name] = pulse.astype(np.int64)
        elif name == "i_c":
            out[name] = np.zeros(cycles, dtype=np.int64)
        elif name == "i_p":  # the products of the rows above (eᵀW x in the checksum column)
            x = _uniform(rng, dw, cycles * row).reshape(cycles, row)
            w = _uniform(rng, dw, cycles * row, lanes if pe.check else 1).reshape(cycles, row)
            out[name] = (x * w).sum(axis=1)
        elif width > dw:  # a checksum operand: a sum of lanes
            out[name] = _uniform(rng, dw, cycles, lanes)
        else:
            out[name] = _uniform(rng, dw, cycles)
    return check_stream(pe, out)


def check_stream(pe, stream):
    """``stream`` as int64 arrays of one length, checked against ``pe``'s inputs: every input
    present, nothing else, every value in its port's range; ``ValueError`` in one line."""
    ports = pe.inputs()
    if not isinstance(stream, dict):
        raise ValueError("an operand stream is a dict of arrays, one per PE input")
    extra = sorted(set(stream) - set(ports))
    missing = [p for p in ports if p not in stream]
    if extra or missing:
        raise ValueError(f"the operand stream must have exactly the PE's inputs "
                         f"{', '.join(ports)} (missing: {', '.join(missing) or 'none'}; "
                         f"unknown: {', '.join(extra) or 'none'})")
    out, length = {}, None
    for name, (width, signed) in ports.items():
        v = np.asarray(stream[name])
        if v.ndim != 1 or not np.issubdtype(v.dtype, np.integer):
            raise ValueError(f"operand stream {name} must be a 1-D integer array, not "
                             f"{v.dtype} of shape {v.shape}")
        if length is None:
            length = len(v)
        if len(v) != length:
            raise ValueError(f"operand stream {name} has {len(v)} cycles, not {length}")
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0,
                                                                             (1 << width) - 1)
        if len(v) and (v.min() < lo or v.max() > hi):
            raise ValueError(f"operand stream {name} must be within {lo}..{hi} "
                             f"({width} bits), not {int(v.min())}..{int(v.max())}")
        out[name] = v.astype(np.int64)
    if not length:
        raise ValueError("the operand stream has no cycle")
    return out


def expected_acc(pe, stream):
    """The accumulator's next value in every cycle of ``stream`` (the golden model,
    :mod:`golden.pe`, from the harness' reset state: every register 0)."""
    from golden.pe import os_pe_next, os_pe_pipelined_next, ws_pe_next, ws_pe_pipelined_next
    n = len(next(iter(stream.values())))
    get = {name: stream[name].tolist() if name in stream else [0] * n
           for name in ("i_a", "i_p", "i_w", "w_load", "i_b", "i_c", "drain")}
    aw = pe.acc_width
    out = np.zeros(n, dtype=np.int64)
    b = acc = p = 0
    ws = pe.dataflow is Dataflow.WS
    for c in range(n):
        i_a = get["i_a"][c]
        if ws and pe.pipelined:
            _, acc, b, p = ws_pe_pipelined_next(i_a, get["i_p"][c], get["i_w"][c],
                                                get["w_load"][c], b, p, aw)
        elif ws:
            _, acc, b = ws_pe_next(i_a, get["i_p"][c], get["i_w"][c], get["w_load"][c], b, aw)
        elif pe.pipelined:
            _, _, acc, p = os_pe_pipelined_next(i_a, get["i_b"][c], get["i_c"][c],
                                                get["drain"][c], acc, p, aw)
        else:
            _, _, acc = os_pe_next(i_a, get["i_b"][c], get["i_c"][c], get["drain"][c], acc, aw)
        out[c] = acc
    return out


# ---------------------------------------------------------------------------------------------
# Gate-level simulation and the waveform.

def _testbench(pe, netlist, ports, cycles, period, vcd):
    """The Icarus testbench (time unit 1 fs; ``period`` in fs): reset two cycles, then one
    stream vector per cycle at the falling edge; every change of an accumulator flip-flop's D
    pin logged as ``time flop value``, all of them once just before the first launching
    edge."""
    half = period // 2
    total = sum(w for w, _ in ports.values())
    conns, lo = [], 0
    for name, (w, _) in ports.items():
        conns.append(f".{name}(cur[{lo + w - 1}:{lo}])")
        lo += w
    flops = netlist.flops
    lines = ["`timescale 1fs/1fs", "module tb;",
             "  reg clk = 1'b0;", "  reg rst = 1'b1;", "  reg on = 1'b0;",
             f"  reg [{total - 1}:0] stim [0:{cycles - 1}];",
             f"  reg [{total - 1}:0] cur = {total}'d0;", "  integer f, c;",
             f"  top dut(.clk(clk), .rst(rst), {', '.join(conns)});",
             "  initial $sdf_annotate(\"top.sdf\", dut);",
             f"  always #{half} clk = ~clk;"]
    for j, ff in enumerate(flops):
        lines.append(f"  always @(dut.{ff}.D) if (on) $fwrite(f, \"%0d {j} %b\\n\", $time, "
                     f"dut.{ff}.D);")
    if vcd:
        bits = ", ".join(f"dut.{f}.D" if isinstance(f, str) else f"1'b{f}"
                         for f in reversed(netlist.acc_flops))
        lines += [f"  wire [{pe.acc_width - 1}:0] acc_d = {{{bits}}};",
                  "  initial begin $dumpfile(\"acc_d.vcd\"); $dumpvars(0, acc_d); end"]
    lines += ["  initial begin", "    $readmemh(\"stim.hex\", stim);",
              "    f = $fopen(\"events.txt\", \"w\");",
              f"    #{2 * period} rst = 1'b0;",
              "    for (c = 0; c < " + str(cycles) + "; c = c + 1) begin",
              "      cur = stim[c];",
              "      if (c == 0) begin",
              f"        #{half // 2} on = 1'b1;"]
    lines += [f"        $fwrite(f, \"%0d {j} %b\\n\", $time, dut.{ff}.D);"
              for j, ff in enumerate(flops)]
    lines += [f"        #{period - half // 2};", "      end else",
              f"        #{period};", "    end",
              f"    #{period} $fclose(f);", "    $finish;", "  end", "endmodule"]
    return "\n".join(lines) + "\n"


def _hex_stimulus(ports, stream):
    words = np.zeros(len(next(iter(stream.values()))), dtype=object)
    lo = 0
    for name, (w, _) in ports.items():
        words = words + [(int(v) & ((1 << w) - 1)) << lo for v in stream[name]]
        lo += w
    digits = (lo + 3) // 4
    return "".join(f"{int(x):0{digits}x}\n" for x in words)


def _gls_period(sta_):
    """A GLS clock period (ps) well beyond every path: twice the PE's shortest period, at least
    4 ns, rounded up to 1 ns."""
    need = 2 * sta_.min_period
    return int(max(4000, 1000 * np.ceil(need / 1000)))


def simulate(pe, netlist, sta_, stream, workdir, vcd=False, period=None):
    """Run the netlist annotated with ``sta_.sdf`` on ``stream`` with Icarus in ``workdir``;
    return the :class:`Waveform` (its settled values checked against :func:`expected_acc`;
    its setup times ``sta_``'s). ``vcd``: also dump the accumulator's D pins as one vector
    ``acc_d`` to ``acc_d.vcd``."""
    workdir = pathlib.Path(workdir).resolve()
    ports = pe.inputs()
    stream = check_stream(pe, stream)
    cycles = len(next(iter(stream.values())))
    period = int(period or _gls_period(sta_)) * FS
    tool = icarus()
    (workdir / "stim.hex").write_text(_hex_stimulus(ports, stream))
    (workdir / "tb.v").write_text(_testbench(pe, netlist, ports, cycles, period, vcd))
    models = fetch_cell_models()
    ivl = str(tool["ivl"])
    r = tool.run([str(tool["iverilog"]), "-B", ivl, "-gspecify", "-o", "sim.vvp", "tb.v",
                  str(netlist.verilog), str(models)], cwd=workdir, capture_output=True,
                 text=True)
    log = r.stdout + r.stderr
    if r.returncode == 0:
        r = tool.run([str(tool["vvp"]), "-M", ivl, "-n", "sim.vvp"], cwd=workdir,
                     capture_output=True, text=True)
        log += r.stdout + r.stderr
    (workdir / "gls.log").write_text(log)
    sdf_errors = [line for line in log.splitlines() if "SDF ERROR" in line
                  or "SDF WARNING" in line]
    if sdf_errors:
        raise RuntimeError(f"Icarus did not annotate the whole SDF (log: "
                           f"{workdir / 'gls.log'}): {sdf_errors[0]}")
    if r.returncode != 0:
        raise RuntimeError(f"Icarus failed (log: {workdir / 'gls.log'}): "
                           f"{(log.strip().splitlines() or [''])[-1]}")
    text = (workdir / "events.txt").read_text()
    if re.search(r" [xz]$", text, re.M):
        raise RuntimeError("the gate-level simulation drove X or Z onto the accumulator "
                           f"(a timing check failed? see {workdir / 'gls.log'})")
    ev = np.array(text.split(), dtype=np.int64).reshape(-1, 3)
    t0 = 5 * period // 2  # the first launching edge: two reset cycles, then half a period
    wave = Waveform(ev[:, 0], ev[:, 1], ev[:, 2], netlist.acc_flops, netlist.flops, period,
                    t0, cycles, sta_.setup_rise, sta_.setup_fall)
    want = expected_acc(pe, stream)
    bad = np.flatnonzero(wave.settled != want)
    if len(bad):
        c = int(bad[0])
        raise RuntimeError(f"the netlist's settled accumulator differs from the golden model "
                           f"in {len(bad)} of {cycles} cycles, first in cycle {c}: "
                           f"{int(wave.settled[c])}, not {int(want[c])}")
    late = wave.settle.max(axis=0) if cycles else np.zeros(0)
    if cycles and late.max() >= wave.period - sta_.setup:
        raise RuntimeError(f"a bit settled {late.max()} ps after its edge, too late for "
                           f"the simulation's {wave.period} ps clock")
    return wave


def settle_summary(wave, quantiles=QUANTILES):
    """Per accumulator bit: settle-time quantiles (ps) over the cycles, and the probability
    that the bit's settled value changes from one cycle to the next."""
    q = np.quantile(wave.settle, quantiles, axis=0, method="higher").T
    return [{"bit": k, "quantiles_ps": [round(float(x), 3) for x in q[k]],
             "toggle": round(float(wave.toggle[k]), 6)} for k in range(wave.acc_width)]


@dataclasses.dataclass
class Characterization:
    """A PE's static timing, :class:`Waveform` over ``stream``, and the wall times (s):
    ``sta`` with the Liberty's delays (the PE's STA), ``sta_sdf`` with the SDF's (the delays
    the simulation uses: per bit and edge, no simulated change is later)."""

    pe: PE
    netlist: Netlist
    sta: Sta
    sta_sdf: Sta
    wave: Waveform
    stream: dict
    stream_name: str
    seconds: dict

    def to_dict(self):
        return {"pe": {"config": self.pe.config.to_dict(), "leaf": self.pe.key,
                       "checksum": self.pe.check, "at": list(self.pe.at),
                       "count": self.pe.count, "pipelined": self.pe.pipelined},
                "synthesis": {**self.netlist.figures,
                              "note": "the PE with one launching flip-flop per input bit"},
                "sta": self.sta.to_dict(), "sta_sdf": self.sta_sdf.to_dict(),
                "gls": {"stream": self.stream_name, "cycles": self.wave.cycles,
                        "period_ps": self.wave.period, "max_settle_ps": self.wave.max_settle},
                "settle": settle_summary(self.wave),
                "seconds": self.seconds}


def characterize(pe, workdir, stream=None, cycles=20000, seed=1, k=K_DEFAULT, vcd=False,
                 stream_name=None):
    """Synthesize ``pe``, time it and simulate it on ``stream`` (default: a
    :func:`uniform_stream` of ``cycles`` cycles from ``seed``) in ``workdir``; return the
    :class:`Characterization`."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    seconds = {}
    t = time.perf_counter()
    netlist = synthesize_pe(pe, workdir)
    seconds["synthesis"] = time.perf_counter() - t
    t = time.perf_counter()
    liberty = sta(netlist, workdir)
    annotated = sta(netlist, workdir, sdf=liberty.sdf)
    seconds["sta"] = time.perf_counter() - t
    if stream is None:
        stream = uniform_stream(pe, cycles, seed, k)
        stream_name = stream_name or f"uniform (seed {seed}, k {k})"
    t = time.perf_counter()
    wave = simulate(pe, netlist, annotated, stream, workdir, vcd=vcd)
    seconds["gls"] = time.perf_counter() - t
    events = workdir / "events.txt"
    if events.exists():
        wave.save(workdir / "events.npz")
        os.remove(events)
    seconds = {k: round(v, 2) for k, v in seconds.items()}
    return Characterization(pe, netlist, liberty, annotated, wave, check_stream(pe, stream),
                            stream_name or "user stream", seconds)


def clean(workdir):
    """Remove the bulky intermediate files of a characterization from ``workdir``."""
    for name in ("sim.vvp", "stim.hex", "events.txt"):
        p = pathlib.Path(workdir) / name
        if p.exists():
            p.unlink()
    shutil.rmtree(pathlib.Path(workdir) / "__pycache__", ignore_errors=True)
