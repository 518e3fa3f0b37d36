"""The power estimate (:mod:`synth.power`), its Liberty reader and its gate-level simulator:
Liberty values read back as the file states them, toggles of a counter against their closed
form, energy of a two-cell netlist against a hand computation, lanes against separate runs,
and synthesized arrays against the golden model on every cycle."""
import copy
import json

import numpy as np
import pytest

from hw.config import ArrayConfig
from realm.rtl.sim import suite_seed
from synth import liberty, power
from synth.flow import fetch_liberty, synthesize
from synth.netsim import Netlist, Simulator


@pytest.fixture(scope="module")
def lib():
    return liberty.load(fetch_liberty())


@pytest.fixture(scope="module")
def ws2(tmp_path_factory):
    """The 2x2 WS array, synthesized once for the module."""
    cfg = ArrayConfig(rows=2, cols=2, dataflow="ws")
    workdir = tmp_path_factory.mktemp(cfg.id)
    return cfg, workdir, power.config_netlist(cfg, workdir)


def test_liberty_cells(lib):
    assert lib.voltage == 1.8
    nand = lib["NAND2X1"]
    assert (nand.area, nand.leakage_nw) == (24.0, 0.0393659)
    assert (nand.pins["A"].capacitance, nand.pins["B"].capacitance) == (0.0125, 0.0129035)
    assert nand.pins["Y"].tree == ("not", ("and", ("var", "A"), ("var", "B")))
    assert [p.related_pin for p in nand.pins["Y"].power] == ["A", "B"]
    dff = lib["DFFPOSX1"]
    assert (dff.area, dff.pins["CLK"].capacitance) == (96.0, 0.0279235)
    assert dff.flop == liberty.Flop("DS0000", "D", "CLK")
    assert lib["FAX1"].pins["YS"].function == "((A^B)^C)"
    assert lib["DFFSR"].unsupported == "a flip-flop with asynchronous clear/preset"
    assert lib["LATCH"].unsupported == "a latch"
    with pytest.raises(KeyError, match="cell 'NAND9X1' is not in Liberty library"):
        lib["NAND9X1"]


@pytest.mark.parametrize("text, tree", [
    ("A B+C", ("or", ("and", ("var", "A"), ("var", "B")), ("var", "C"))),
    ("A^B C", ("and", ("xor", ("var", "A"), ("var", "B")), ("var", "C"))),
    ("A'*B | !C", ("or", ("and", ("not", ("var", "A")), ("var", "B")), ("not", ("var", "C")))),
    ("(A+B)&1", ("and", ("or", ("var", "A"), ("var", "B")), ("const", 1))),
])
def test_function_parser(text, tree):
    assert liberty.parse_function(text) == tree


def test_function_truth_tables(lib):
    """Every combinational output of the library, evaluated on all input combinations at
    once (one bit per combination), against its definition written out here."""
    want = {"AND2X1": lambda a, b: a & b, "AOI21X1": lambda a, b, c: 1 - ((a & b) | c),
            "AOI22X1": lambda a, b, c, d: 1 - ((a & b) | (c & d)),
            "MUX2X1": lambda a, b, s: 1 - (a if s else b), "NAND3X1": lambda a, b, c:
            1 - (a & b & c), "NOR3X1": lambda a, b, c: 1 - (a | b | c),
            "OAI22X1": lambda a, b, c, d: 1 - ((a | b) & (c | d)),
            "XNOR2X1": lambda a, b: 1 - (a ^ b), "INVX8": lambda a: 1 - a}
    for name, fn in want.items():
        pin = lib[name].outputs[0]
        names = [p.name for p in lib[name].inputs]
        n = len(names)
        env = {v: sum(((k >> i) & 1) << k for k in range(1 << n)) for i, v in enumerate(names)}
        got = liberty.evaluate(pin.tree, env, (1 << (1 << n)) - 1)
        ref = sum(fn(*((k >> i) & 1 for i in range(n))) << k for k in range(1 << n))
        assert got == ref, name


def test_function_parser_errors():
    with pytest.raises(ValueError, match=r"^Liberty function 'A \+' ends early$"):
        liberty.parse_function("A +")
    with pytest.raises(ValueError, match=r"^unbalanced parentheses in '\(A B'$"):
        liberty.parse_function("(A B")


def test_table_interpolation(lib):
    rise = lib["NAND2X1"].pins["Y"].power[0].rise
    assert rise.variables == ("total_output_net_capacitance", "input_transition_time")
    at = lambda c, s: rise.lookup(total_output_net_capacitance=c, input_transition_time=s)
    assert at(0.025, 0.18) == 0.049805  # a grid point, as written in the file
    assert at(0.05, 0.18) == pytest.approx((0.049805 + 0.047725) / 2, abs=1e-15)
    assert at(0.05, 0.30) == pytest.approx((0.049805 + 0.047725 + 0.061891 + 0.056845) / 4,
                                           abs=1e-15)
    assert at(0.005, 0.0) == pytest.approx(0.044515 - (0.051923 - 0.044515) / 2, abs=1e-15)


def _counter_verilog():
    from amaranth.back import verilog
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import Out

    class Counter(wiring.Component):
        count: Out(4)

        def elaborate(self, platform):
            m = Module()
            m.d.sync += self.count.eq(self.count + 1)
            return m

    return verilog.convert(Counter(), name="counter", emit_src=False)


def test_counter_toggles(tmp_path, lib):
    """Over T steps a 4-bit counter shows 0..T-1 (mod 16), so bit i toggles floor((T-1)/2^i)
    times, and each bit's flop output is the port's bit."""
    v = tmp_path / "counter.v"
    v.write_text(_counter_verilog())
    synthesize(v, tmp_path, "counter")
    nl = Netlist.load(tmp_path / "netlist.json", "counter", lib)
    assert nl.n_flops == 4 and nl.clock == "clk"
    sim = Simulator(nl)
    steps = 45
    seen = [int(sim.step({"rst": 0})["count"][0]) for _ in range(steps)]
    assert seen == [t % 16 for t in range(steps)]
    bits = nl.ports["count"].bits
    assert all(nl.flop_base <= b < nl.flop_base + 4 for b in bits)
    assert sim.toggles[bits].tolist() == [(steps - 1) >> i for i in range(4)]
    sim.step({"rst": 1})
    assert int(sim.step({"rst": 0})["count"][0]) == 0  # synchronous reset
    signed = Simulator(nl, 2, signed={"count"})
    assert [signed.step({"rst": [0, 1]})["count"].tolist() for _ in range(16)][-1] == [-1, 0]


def _toggle_flop():
    """A DFFPOSX1 whose D is its own output through an INVX1 (Yosys JSON)."""
    return {"modules": {"tff": {
        "ports": {"clk": {"direction": "input", "bits": [2]},
                  "q": {"direction": "output", "bits": [3]}},
        "cells": {"ff": {"type": "DFFPOSX1", "connections": {"CLK": [2], "D": [4], "Q": [3]}},
                  "inv": {"type": "INVX1", "connections": {"A": [3], "Y": [4]}}},
        "netnames": {}}}}


def test_energy_hand_computation(lib):
    nl = Netlist.load(_toggle_flop(), "tff", lib)
    sim = Simulator(nl)
    steps = 10
    assert [int(sim.step()["q"][0]) for _ in range(steps)] == [t & 1 for t in range(steps)]
    got = power.EnergyModel(nl).report(sim.toggles, sim.cycles, clock_mhz=100.0)

    def bilinear(v00, v01, v10, v11, t, u):
        return (v00 * (1 - u) + v01 * u) * (1 - t) + (v10 * (1 - u) + v11 * u) * t

    v2, toggles = 1.8 ** 2, steps - 1  # q and the inverter's output toggle after each edge
    c_q, c_d = 0.00932456, 0.00882947  # INVX1 A, DFFPOSX1 D
    u = (0.1 - 0.06) / 0.18
    inv = (bilinear(0.023555, 0.029044, 0.023165, 0.028621, (c_d - 0.005) / 0.0075, 1 / 3)
           + bilinear(0.009213, 0.004772, 0.009047, 0.005677, (c_d - 0.005) / 0.0075, 1 / 3))
    ff_q = (bilinear(0.040752, 0.06407, 0.041217, 0.062027, (c_q - 0.005) / 0.0075, u)
            + bilinear(0.064773, 0.076646, 0.063395, 0.075613, (c_q - 0.005) / 0.0075, u))
    d_pin = (0.045424 + 0.000553 / 3) + (0.08841 - 0.000458 / 3)
    clk = 0.0279235 * v2 + (0.006865 + 0.000078 * u) + (0.11034 + 0.019429 * u)
    e_switch = 0.5 * (c_q + c_d) * v2 * toggles / steps
    e_internal = (inv / 2 + ff_q / 2 + d_pin / 2) * toggles / steps
    leak = (0.160725 + 0.0221741) / 1000
    assert got["switching_uw"] == pytest.approx(e_switch * 100, rel=1e-6)
    assert got["internal_uw"] == pytest.approx(e_internal * 100, rel=1e-6)
    assert got["clock_uw"] == pytest.approx(clk * 100, rel=1e-6)
    assert got["leakage_uw"] == pytest.approx(leak, rel=1e-6)
    assert got["energy_per_cycle_pj"] == pytest.approx(e_switch + e_internal + clk + leak / 100,
                                                       rel=1e-6)
    assert got["toggles"] == 2 * toggles


def test_unsupported_cells(lib):
    bad = copy.deepcopy(_toggle_flop())
    bad["modules"]["tff"]["cells"]["ff"]["type"] = "DFFNEGX1"
    with pytest.raises(ValueError, match=r"^cell ff \(DFFNEGX1\) is a flip-flop clocked on "
                                         r"'\(!CLK\)' \(only rising edges are simulated\)"):
        Netlist.load(bad, "tff", lib)
    loop = copy.deepcopy(_toggle_flop())
    del loop["modules"]["tff"]["cells"]["ff"]
    loop["modules"]["tff"]["cells"]["inv"]["connections"]["Y"] = [3]
    with pytest.raises(ValueError, match=r"^combinational loop through 1 gates$"):
        Netlist.load(loop, "tff", lib)


def test_lanes_match_single_runs(ws2):
    """67 lanes (two words) of random port values give, lane by lane, the outputs and the
    per-net toggles of 67 single-lane runs, and the power of each."""
    _, _, nl = ws2
    lanes, cycles = 67, 12
    rng = np.random.default_rng(suite_seed())
    inputs = {n: rng.integers(0, 1 << p.width, (cycles, lanes))
              for n, p in nl.ports.items() if p.direction == "input" and n != nl.clock}
    inputs["rst"] = (rng.random((cycles, lanes)) < 0.1).astype(np.int64)
    wide = Simulator(nl, lanes, lane_toggles=True)
    outs = [wide.step({k: v[t] for k, v in inputs.items()}) for t in range(cycles)]
    for lane in range(lanes):
        one = Simulator(nl, 1)
        for t in range(cycles):
            got = one.step({k: v[t, lane:lane + 1] for k, v in inputs.items()})
            assert {k: int(v[0]) for k, v in got.items()} == \
                   {k: int(v[lane]) for k, v in outs[t].items()}, (lane, t)
        assert np.array_equal(one.toggles, wide.lane_toggles[:, lane]), lane
    assert np.array_equal(wide.toggles, wide.lane_toggles.sum(axis=1))
    traces = {k: v[:, :3] for k, v in inputs.items()}
    many = power.component_power(nl, "systolic_array", traces, per_lane=True)
    for lane in range(3):
        single = power.component_power(nl, "systolic_array",
                                       {k: v[:, lane:lane + 1] for k, v in traces.items()})
        assert many["lane_total_uw"][lane] == pytest.approx(single["total_uw"], rel=1e-9)
    assert many["sum_uw"] == pytest.approx(sum(many["lane_total_uw"]), rel=1e-9)


@pytest.mark.parametrize("dataflow, abft", [("ws", "none"), ("os", "none"), ("ws", "realm"),
                                            ("os", "realm")])
def test_gate_level_matches_golden(dataflow, abft, tmp_path, ws2):
    """A seeded LLM-like GEMM on the synthesized 2x2 array: every output port equals the golden
    model's on every cycle (config_power raises otherwise), and the figures add up."""
    cfg = ArrayConfig(rows=2, cols=2, dataflow=dataflow, abft=abft)
    workdir = ws2[1] if cfg == ws2[0] else tmp_path
    r = power.config_power(cfg, workdir, cycles=150, seed=suite_seed())
    assert r["cycles_checked"] == r["cycles"] >= 150
    assert r["workload"]["macs"] > 0 and r["toggles"] > 0
    parts = sum(r[k] for k in ("switching_uw", "internal_uw", "clock_uw", "leakage_uw"))
    assert r["total_uw"] == pytest.approx(parts, rel=1e-6)
    assert json.loads(json.dumps(r)) == r


def test_mismatch_is_caught(ws2, lib):
    """A netlist whose o_valid is wired to busy differs from the golden model, and says so."""
    cfg, workdir, _ = ws2
    data = json.loads((workdir / "netlist.json").read_text())
    ports = data["modules"]["systolic_array"]["ports"]
    ports["o_valid"]["bits"] = ports["busy"]["bits"]
    nl = Netlist.load(data, "systolic_array", lib)
    program, _ = power.workload_program(cfg, 60, suite_seed())
    with pytest.raises(AssertionError, match=r"^2x2-ws cycle \d+: gate-level netlist != golden "
                                             r"model \(netlist, golden\): \{'o_valid'"):
        power.simulate_config(cfg, nl, program)
