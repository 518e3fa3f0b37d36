"""Activity-based power estimate: toggles from a gate-level simulation (:mod:`synth.netsim`) of
the mapped netlist, weighted with the Liberty's capacitances and internal-power tables.

Energy model (all per lane; see ``synth/README.md`` for the limits):

* **switching**: ``C_load V^2 / 2`` per toggle of a net; ``C_load`` is the sum of the input
  capacitances of the cell pins the net drives (no wire load, no output-port load);
* **internal**: per toggle of a cell output, the Liberty ``internal_power`` energy, the mean of
  ``rise_power`` and ``fall_power`` over the pin's related pins, interpolated at the net's
  ``C_load`` and a nominal input transition of :data:`SLEW_NS`; per toggle of an input pin
  that has a pin-level (``related_pin``-free) table, e.g. a flop's ``D``, that table's mean;
* **clock**: every flop's ``CLK`` pin charged and discharged once per cycle
  (``C_CLK V^2``) plus its ``CLK`` rise and fall internal energy (no clock tree);
* **leakage**: the sum of ``cell_leakage_power``.

Power is energy per cycle times the clock frequency (:data:`CLOCK_MHZ`). Units: energies in pJ,
powers in uW.

:func:`config_power` runs a GEMM workload through the synthesized array with the testbench's
own :class:`golden.stimulus.Driver` and port mapping (:mod:`golden.ports`), and checks
every output port against :class:`golden.array.ArrayModel` on every cycle.
"""
import json
import math
import pathlib

import numpy as np

from . import liberty
from .netsim import Netlist, Simulator

#: Nominal input transition (ns) at which internal-power tables are read.
SLEW_NS = 0.1
#: Clock frequency (MHz) at which energy per cycle is turned into power.
CLOCK_MHZ = 100.0
#: The default workload seed.
SEED = 20250401


# ---------------------------------------------------------------------------------------------
# Energy per event.

class EnergyModel:
    """Energy of every event of ``netlist`` (one lane).

    Members
    -------
    switching : numpy.ndarray
        pJ per toggle of each net (``C_load V^2 / 2``).
    internal : numpy.ndarray
        pJ per toggle of each net, inside the cells it drives or enters.
    load_pf : numpy.ndarray
        ``C_load`` of each net.
    clock_pj : float
        pJ per clock cycle of the flops' clock pins.
    leakage_uw : float
    """

    def __init__(self, netlist, slew_ns=SLEW_NS):
        lib, v = netlist.library, netlist.library.voltage
        if not v > 0:
            raise ValueError(f"Liberty {lib.name} has no nom_voltage")
        n = netlist.n_nets
        self.voltage, self.slew_ns = v, slew_ns
        self.load_pf = np.zeros(n)
        self.internal = np.zeros(n)
        self.clock_pj = 0.0
        self.leakage_uw = sum(lib[t].leakage_nw for _, t, _ in netlist.cells) / 1000.0
        clock_nets = set()
        for _, t, conn in netlist.cells:
            cell = lib[t]
            for pin in cell.inputs:
                if pin.name in conn:
                    net = conn[pin.name]
                    if cell.flop and pin.name == cell.flop.clock:
                        clock_nets.add(net)
                        self.clock_pj += pin.capacitance * v * v + self._passive(pin, 2.0)
                        continue
                    self.load_pf[net] += pin.capacitance
                    self.internal[net] += self._passive(pin, 1.0)
        self.load_pf[:2] = 0.0  # constants never toggle
        for _, t, conn in netlist.cells:
            for pin in lib[t].outputs:
                net = conn[pin.name]
                tables = [p for p in pin.power if p.related_pin]
                if tables:
                    e = [self._table(p.rise, self.load_pf[net]) + self._table(p.fall,
                                                                             self.load_pf[net])
                         for p in tables]
                    self.internal[net] += sum(e) / (2 * len(e))
        self.switching = 0.5 * self.load_pf * v * v
        self.switching[list(clock_nets)] = 0.0

    def _table(self, table, load):
        return table.lookup(**{"total_output_net_capacitance": load,
                               "input_transition_time": self.slew_ns,
                               "input_net_transition": self.slew_ns}
                            ) if table.variables else table.values

    def _passive(self, pin, transitions):
        """Pin-level internal energy of ``transitions`` transitions (half rise, half fall)."""
        tables = [p for p in pin.power if not p.related_pin]
        return sum(transitions * (self._table(p.rise, 0.0) + self._table(p.fall, 0.0)) / 2
                   for p in tables)

    def report(self, toggles, cycles, lanes=1, clock_mhz=CLOCK_MHZ):
        """Power figures (uW, per lane averaged) of ``toggles`` (per net, summed over
        ``lanes``) accumulated over ``cycles`` cycles."""
        if cycles <= 0:
            raise ValueError("no cycle was simulated")
        toggles = np.asarray(toggles, dtype=np.float64)
        per_cycle = {"switching": float(self.switching @ toggles) / (cycles * lanes),
                     "internal": float(self.internal @ toggles) / (cycles * lanes),
                     "clock": self.clock_pj}
        per_cycle["leakage"] = self.leakage_uw / clock_mhz  # uW / MHz = pJ per cycle
        total = sum(per_cycle.values())
        power = {f"{k}_uw": e * clock_mhz for k, e in per_cycle.items()}
        power["total_uw"] = total * clock_mhz
        power["dynamic_uw"] = power["total_uw"] - power["leakage_uw"]
        return {"clock_mhz": clock_mhz, "voltage_v": self.voltage, "slew_ns": self.slew_ns,
                **power, "energy_per_cycle_pj": total,
                "cycles": cycles, "lanes": lanes, "toggles": int(toggles.sum())}


# ---------------------------------------------------------------------------------------------
# Netlists.

def load_netlist(verilog_or_netlist, top, workdir=None):
    """Return a :class:`Netlist`: ``verilog_or_netlist`` is a Yosys JSON netlist, or Verilog
    synthesized with :func:`synth.flow.synthesize` into ``workdir`` (reused while its
    ``netlist.json`` is newer than the Verilog)."""
    from .flow import fetch_liberty, synthesize
    path = pathlib.Path(verilog_or_netlist)
    lib = liberty.load(fetch_liberty())
    if path.suffix == ".json":
        return Netlist.load(path, top, lib)
    if workdir is None:
        raise ValueError("synthesizing Verilog needs a workdir")
    out = pathlib.Path(workdir) / "netlist.json"
    if not (out.exists() and out.stat().st_mtime > path.stat().st_mtime):
        synthesize(path, workdir, top)
    return Netlist.load(out, top, lib)


def config_netlist(config, workdir):
    """Synthesize ``config`` into ``workdir`` and load the netlist; an existing
    ``netlist.json`` is reused if it is newer than a Verilog file identical to the one the
    generator produces now."""
    from hw.generate import TOP

    from .flow import config_verilog, synthesize_config
    workdir = pathlib.Path(workdir)
    v, out = workdir / f"{TOP}.v", workdir / "netlist.json"
    fresh = (out.exists() and v.exists() and out.stat().st_mtime > v.stat().st_mtime
             and v.read_text() == config_verilog(config))
    if not fresh:
        synthesize_config(config, workdir)
    return load_netlist(out, TOP)


# ---------------------------------------------------------------------------------------------
# Leaf components with per-lane traces.

def component_power(verilog_or_netlist, top, traces, workdir=None, clock_mhz=CLOCK_MHZ,
                    per_lane=False):
    """Simulate one leaf component with ``traces`` (input port -> integer array of shape
    (cycles, lanes); missing inputs are 0, the clock is implied) and return its power: the
    figures averaged over lanes, ``sum_uw`` (total over lanes), and with ``per_lane`` the total
    power of each lane (``lane_total_uw``)."""
    netlist = verilog_or_netlist if isinstance(verilog_or_netlist, Netlist) else \
        load_netlist(verilog_or_netlist, top, workdir)
    traces = {k: np.asarray(v) for k, v in traces.items()}
    shapes = {v.shape for v in traces.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"traces must all have one shape (cycles, lanes), not {shapes}")
    cycles, lanes = next(iter(shapes))
    sim = Simulator(netlist, lanes, lane_toggles=per_lane)
    for t in range(cycles):
        sim.step({k: v[t] for k, v in traces.items()})
    model = EnergyModel(netlist)
    result = model.report(sim.toggles, cycles, lanes, clock_mhz)
    result["sum_uw"] = result["total_uw"] * lanes
    result.update(cells=len(netlist.cells), flops=netlist.n_flops)
    if per_lane:
        e = (model.switching + model.internal) @ sim.lane_toggles / cycles
        static = model.clock_pj + model.leakage_uw / clock_mhz
        result["lane_total_uw"] = [float((x + static) * clock_mhz) for x in e]
    return result


# ---------------------------------------------------------------------------------------------
# Arrays with a GEMM workload, checked against the golden model.

class _Ports:
    """The gate-level netlist's ports by Verilog name: inputs keep the value last set (as a
    simulator's do), outputs are those of the last step; absent ports are skipped and read 0."""

    def __init__(self, netlist):
        self._ports = netlist.ports
        self.pending, self.outputs = {}, {}

    def set(self, values):
        self.pending.update((k, int(v)) for k, v in values.items() if k in self._ports)

    def get(self, name, signed=False):
        if name not in self._ports:
            return 0
        width = self._ports[name].width
        v = int(self.outputs[name][0]) & ((1 << width) - 1)
        return v - (1 << width) if signed and v >> (width - 1) else v


def workload_program(config, cycles, seed, workload="llm", depth=64):
    """A GEMM program of about ``cycles`` cycles and its description. ``workload`` is
    ``"llm"`` (:func:`golden.workload.llm_like_operands`) or ``"uniform"`` (uniform INT8).
    WS streams ``depth`` activation vectors per weight tile; OS reduces over K = ``depth``.
    ABFT variants first write the statistical unit's parameter sets and select their policy's."""
    import torch

    from golden.stats import policy_sets
    from golden.workload import TiledGemm, llm_like_operands
    from hw.config import Abft, Dataflow
    c = config
    if c.dataflow is Dataflow.WS:
        per_tile = c.rows + depth + c.latency + 1
    else:
        per_tile = depth + c.rows + c.cols - 1 + c.rows
    tiles = max(1, math.ceil(cycles / per_tile))
    t1 = math.ceil(math.sqrt(tiles))
    t2 = math.ceil(tiles / t1)
    if c.dataflow is Dataflow.WS:
        m, k, n = depth, c.rows * t1, c.cols * t2
    else:
        m, k, n = c.rows * t1, depth, c.cols * t2
    if workload == "llm":
        x, w = llm_like_operands(m, k, n, seed, c.data_width)
    elif workload == "uniform":
        g = torch.Generator().manual_seed(seed)
        lo, hi = -(1 << (c.data_width - 1)), 1 << (c.data_width - 1)
        x, w = (torch.randint(lo, hi, s, generator=g) for s in ((m, k), (k, n)))
    else:
        raise ValueError(f"workload must be 'llm' or 'uniform', not {workload!r}")
    gemm = TiledGemm(c, x, w)
    prog = []
    if c.abft is not Abft.NONE:
        sel = {Abft.CLASSIC: 0, Abft.APPROX: 1, Abft.REALM: 2}[c.abft]
        prog += policy_sets(c) + [("select", sel)]
    prog += gemm.program()
    desc = {"kind": workload, "seed": seed, "m": m, "k": k, "n": n, "tiles": gemm.tiles,
            "macs": gemm.macs, "depth": depth}
    return prog, desc


def simulate_config(config, netlist, program, reset_cycles=2):
    """Play ``program`` on the gate-level ``netlist`` of ``config`` through the testbench's
    driver and port mapping (:mod:`golden.ports`), then the golden model's drain cycles;
    require every output port to equal :class:`golden.array.ArrayModel`'s on every cycle. Return
    the simulator (its
    counters cover the program, not the initial reset) and the cycles checked."""
    from golden.array import ArrayModel
    from golden.ports import idle_inputs, input_ports, output_dict
    from golden.stimulus import Driver
    dut = _Ports(netlist)
    sim = Simulator(netlist, 1)
    idle = idle_inputs(config)
    for _ in range(reset_cycles):
        dut.set(input_ports(config, {**idle, "rst": 1}))
        dut.outputs = sim.step({k: [v] for k, v in dut.pending.items()})
    sim.clear_counts()
    model, driver = ArrayModel(config), Driver(config, program)
    left = model.drain_cycles
    checked = 0
    while not driver.done or left > 0:
        if driver.done:
            left -= 1
        inp = driver.inputs()
        dut.set(input_ports(config, inp))
        dut.outputs = sim.step({k: [v] for k, v in dut.pending.items()})
        got, want = output_dict(config, dut.get), model.step(inp)
        if got != want:
            diff = {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}
            raise AssertionError(f"{config.id} cycle {checked}: gate-level netlist != golden "
                                 f"model (netlist, golden): {diff}")
        driver.update(got)
        checked += 1
    return sim, checked


def config_power(config, workdir, cycles=1000, seed=SEED, workload="llm",
                 clock_mhz=CLOCK_MHZ):
    """Synthesize ``config`` in ``workdir`` (or reuse its netlist), run a seeded GEMM workload
    of about ``cycles`` cycles (:func:`workload_program`) on the gate-level netlist, checked
    against the golden model on every cycle, and return the power figures as a JSON-ready
    dict (also the energy of the whole workload, ``workload_energy_nj``)."""
    import time
    netlist = config_netlist(config, workdir)
    program, desc = workload_program(config, cycles, seed, workload)
    t0 = time.perf_counter()
    sim, checked = simulate_config(config, netlist, program)
    elapsed = time.perf_counter() - t0
    result = EnergyModel(netlist).report(sim.toggles, sim.cycles, 1, clock_mhz)
    result.update(config=config.id, cells=len(netlist.cells), flops=netlist.n_flops,
                  workload=desc, cycles_checked=checked,
                  workload_energy_nj=result["energy_per_cycle_pj"] * sim.cycles / 1e3,
                  sim_seconds=round(elapsed, 3),
                  sim_cycles_per_s=round(sim.cycles / elapsed, 1))
    return result


def power_sweep(configs, outdir, cycles=1000, seed=SEED, workload="llm",
                clock_mhz=CLOCK_MHZ, netdir=None):
    """:func:`config_power` of each config (netlists in ``netdir/<config.id>/``, by default
    ``outdir``, so the flat area sweep's netlists are reused there); add each
    variant's overhead (%) over the ``none`` variant of the same size and dataflow, if it is in
    the sweep; write ``outdir/power.json`` and return the list of results."""
    from hw.config import Abft
    outdir = pathlib.Path(outdir)
    netdir = pathlib.Path(netdir) if netdir is not None else outdir
    results = [config_power(c, netdir / c.id, cycles, seed, workload, clock_mhz)
               for c in configs]
    base = {c.replace(abft=Abft.NONE).id: r for c, r in zip(configs, results)
            if c.abft is Abft.NONE}
    for c, r in zip(configs, results):
        ref = base.get(c.replace(abft=Abft.NONE).id)
        if ref is not None:
            r["overhead_pct"] = {
                k: round(100.0 * (r[k] / ref[k] - 1.0), 3)
                for k in ("total_uw", "dynamic_uw", "workload_energy_nj")}
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "power.json").write_text(json.dumps(results, indent=1) + "\n")
    return results
