"""The statistical unit (``hw.stats``) alone in Verilator against ``golden.stats.StatUnitModel``
(every output and counter, every cycle), and the golden decision rule against hand-computed
cases on the authors' published parameters (the authors' published K-GEMM parameters)."""
import math
import os

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from golden.faultgen import generator
from golden.params import StatParams
from golden.stats import StatUnitModel, decide, log2q, theta_grid
from hw.facts import COUNTERS, LOG_FRAC
from hw.stats import StatisticalUnit
from realm.rtl import sim
from realm.rtl.sim import suite_seed
from tb.scenarios import random_param_set

AW, SETS, BINS, CW = 32, 4, 8, 10  # 10-bit counters so the campaign saturates them


def stimulus(seed, abft, n=8, cycles=1500):
    """Per-cycle inputs: differences of every magnitude (zeros, opposite-sign pairs, the most
    negative value), random tile ends, parameter writes and set selections."""
    import torch
    g = generator(seed, "stats", abft)
    rnd = lambda hi: int(torch.randint(0, hi, (1,), generator=g))  # noqa: E731
    out = []
    for cycle in range(cycles):
        inp = {"valid": int(rnd(4) != 0), "end": int(rnd(5) == 0), "sel": rnd(SETS)}
        kind = rnd(6)
        if kind == 0:
            d = 0
        elif kind == 1:
            d = -(1 << (AW - 1))
        else:
            d = (rnd(2) * 2 - 1) * rnd(1 << rnd(AW - 1) + 1)
        inp["d"] = d
        if cycle < 8 or rnd(50) == 0:
            inp["cfg"] = random_param_set(rnd, SETS, n)
        out.append(inp)
    return out


@cocotb.test()
async def stats_random(dut):
    abft, n = os.environ["REALM_ABFT"], int(os.environ["REALM_N"])
    seed = suite_seed()
    model = StatUnitModel(n, AW, abft, SETS, BINS, CW)
    done = sum(o["o_done"] for o in await drive(dut, model, stimulus(seed, abft, n), seed))
    assert done > 100, "too few tiles decided to be a test"
    cocotb.log.info("%d tiles decided, counters %s", done,
                    {k: model.counters[k] for k in COUNTERS})


# Two errors of 2**30 of opposite sign in one tile: the signed MSD is 0. Semantics (documented
# in golden.stats): log2|MSD| is taken as 0, so theta = b (its largest value); each error is
# above 2**b and counts. One set per policy, realm twice (freq_th 1: 2 > 1 recomputes;
# freq_th 2: tolerates).
CANCEL_D = [1 << 30, -(1 << 30)] + [0] * 6
CANCEL_SETS = [StatParams(am1=70, b_q=5139, freq_th=ft, msd_th=1 << 20, policy=pol)
               for pol, ft in ((0, 1), (1, 1), (2, 1), (2, 2))]
# msd, theta = (16 * 5139) >> 8, freq_eff, (classic, approx, realm) flags, recompute
CANCEL_WANT = [(0, 321, 2, (1, 0, 1), 1), (0, 321, 2, (1, 0, 1), 0),
               (0, 321, 2, (1, 0, 1), 1), (0, 321, 2, (1, 0, 0), 0)]


def cancel_stimulus():
    out = [{"valid": 0, "end": 0, "sel": 0, "d": 0, "cfg": (s, p)}
           for s, p in enumerate(CANCEL_SETS)]
    for s in range(len(CANCEL_SETS)):
        out += [{"valid": 1, "end": int(i == len(CANCEL_D) - 1), "sel": s, "d": d}
                for i, d in enumerate(CANCEL_D)]
        out += [{"valid": 0, "end": 0, "sel": s, "d": 0}] * 16
    return out


@cocotb.test()
async def stats_cancelling(dut):
    model = StatUnitModel(len(CANCEL_D), AW, "realm", SETS, BINS, CW)
    outs = [o for o in await drive(dut, model, cancel_stimulus(), suite_seed()) if o["o_done"]]
    got = [(o["o_msd"], o["o_theta"], o["o_freq_eff"],
            tuple((o["o_flags"] >> i) & 1 for i in range(3)), o["o_recompute"]) for o in outs]
    assert got == CANCEL_WANT, got


async def drive(dut, model, inputs, seed):
    """Play ``inputs`` (one dict per cycle) on the unit and on ``model``; require equal outputs
    every cycle; return the outputs."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    outs = []
    for cycle, inp in enumerate(inputs):
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        dut.i_d.value, dut.i_valid.value = inp["d"], inp["valid"]
        dut.i_end.value, dut.i_sel.value = inp["end"], inp["sel"]
        cfg = inp.get("cfg")
        dut.cfg_we.value = int(cfg is not None)
        if cfg is not None:
            s, p = cfg
            dut.cfg_set.value, dut.cfg_am1.value, dut.cfg_b.value = s, p.am1, p.b_q
            dut.cfg_freq.value, dut.cfg_msd_th.value = p.freq_th, p.msd_th
            dut.cfg_policy.value, dut.cfg_msd_mode.value = p.policy, p.msd_mode
        await ReadOnly()
        want = model.step(inp)
        got = {k: dut.__getattr__(k).value for k in want if k != "c_hist"}
        got = {k: (v.to_signed() if k in ("o_msd", "o_theta") else int(v)) for k, v in got.items()}
        hist = dut.c_hist.value.to_unsigned()
        got["c_hist"] = [(hist >> (i * CW)) & ((1 << CW) - 1) for i in range(BINS)]
        assert got == want, f"cycle {cycle}: unit differs (seed {seed}): " + str(
            {k: (got[k], want[k]) for k in want if got[k] != want[k]})
        outs.append(got)
    return outs


# n = 40: three popcount groups of POP_GROUP = 16 (the last one partial) in S2b.
@pytest.mark.parametrize("abft, n", [("classic", 8), ("approx", 8), ("realm", 8), ("realm", 40)])
def test_stats(abft, n, tmp_path):
    from hw.config import ArrayConfig
    config = ArrayConfig(rows=1, cols=n, abft=abft)
    unit = StatisticalUnit(n=n, acc_width=AW, abft=abft, param_sets=SETS, hist_bins=BINS,
                           counter_width=CW)
    build_dir = sim.build(config, name="stats", component=unit)
    sim.run(build_dir, "tb.test_stats", "stats_random", {"REALM_ABFT": abft, "REALM_N": str(n)},
            seed=suite_seed(), test_dir=tmp_path)
    from cocotb_tools.check_results import get_results
    assert get_results(tmp_path / "results.xml") == (1, 0)


def test_stats_cancelling_errors(tmp_path):
    """The RTL unit on a tile whose errors cancel in the signed MSD, under every policy."""
    from hw.config import ArrayConfig
    n = len(CANCEL_D)
    unit = StatisticalUnit(n=n, acc_width=AW, abft="realm", param_sets=SETS, hist_bins=BINS,
                           counter_width=CW)
    build_dir = sim.build(ArrayConfig(rows=1, cols=n, abft="realm"), name="stats", component=unit)
    sim.run(build_dir, "tb.test_stats", "stats_cancelling", {}, seed=suite_seed(),
            test_dir=tmp_path)
    from cocotb_tools.check_results import get_results
    assert get_results(tmp_path / "results.xml") == (1, 0)


def test_decide_cancelling_errors():
    """golden.stats.decide on the same tile gives the same hand-worked figures."""
    got = [decide(CANCEL_D, p) for p in CANCEL_SETS]
    assert [(x.msd, x.theta, x.freq_eff, (int(x.flag_classic), int(x.flag_approx),
                                          int(x.flag_realm)), int(x.recompute))
            for x in got] == CANCEL_WANT


# Hand-computed cases, authors' K parameters: a = 1.273, b = 20.076, theta_freq = 5.951
# (the authors' published K-GEMM set). Quantized: am1 = round(0.273 * 256) = 70, b_q = round(20.076
# * 256) = 5139,
# freq_th = floor(2 ** 5.951) = 61 (log2 freq_eff > 5.951 <=> freq_eff >= 62).
K = StatParams.from_paper(1.273, 20.076, 5.951)


def test_published_parameters_quantize():
    assert (K.am1, K.b_q, K.freq_th) == (70, 5139, 61)
    # MSD-only baseline threshold: 2 ** ((5.951 + 20.076) / 1.273) = 2 ** 20.445.
    assert K.msd_th == math.floor(2 ** (26.027 / 1.273)) == 1427841  # 2**20.4454 = 1.3617 * 2**20


@pytest.mark.parametrize("count, log_mag, theta, freq_eff, recompute", [
    # 62 errors of 2**15: MSD = 62 * 2**15 = 2**20.954 (log2q: p = 20, frac = 15 -> 335/16
    # = 20.9375); theta = 20.0742 - 0.2734 * 20.9375 = 14.35, floor(16 * theta) = 229
    # (exactly (16 * 5139 - 70 * 335) >> 8 = 229); log2q(2**15) = 240 > 229: all 62 count,
    # 62 > 61: recompute.
    (62, 15, 229, 62, True),
    # 61 such errors: MSD = 61 * 2**15 (log2q 20 + 14/16 = 334): theta = (82224 - 23380) >> 8
    # = 229 again; 61 > 61 is false: tolerated.
    (61, 15, 229, 61, False),
    # 200 errors of 2**9: MSD = 200 * 2**9 = 2**16.64 (log2q 16 + 9/16 = 265/16);
    # theta = (82224 - 18550) >> 8 = 248 (15.5): 2**9 (log2q 144) is not above it: freq_eff = 0.
    (200, 9, 248, 0, False),
    # One error of 2**30 alone: MSD = 2**30, theta = (82224 - 70 * 480) >> 8 = 189 (11.8);
    # 480 > 189: freq_eff = 1 <= 61: the statistical policy tolerates what classic flags.
    (1, 30, 189, 1, False),
])
def test_published_parameters_hand_cases(count, log_mag, theta, freq_eff, recompute):
    """Every figure worked out by hand above (none from the code under test)."""
    dec = decide([1 << log_mag] * count + [0] * (256 - count), K)
    assert (dec.msd, dec.theta, dec.freq_eff, dec.flag_classic, dec.recompute) == (
        count << log_mag, theta, freq_eff, True, recompute)


def test_hand_case_values():
    assert log2q(62 << 15) == 20 * 16 + 15 and theta_grid(62 << 15, K) == 229
    assert log2q(200 << 9) == 16 * 16 + 9 and theta_grid(200 << 9, K) == 248
    assert theta_grid(1 << 30, K) == 189


def test_sensitive_component_one_error_recomputes():
    sens = StatParams.from_paper(1.55, 25.4, 0.0, sensitive=True)
    assert sens.freq_th == 0
    assert decide([1 << 24] + [0] * 15, sens).recompute is True
    assert decide([0] * 16, sens).recompute is False


def test_signed_msd_hides_opposite_errors():
    """Two large errors of opposite sign cancel in the paper's signed MSD: the MSD-threshold
    policy sees nothing, the sum-of-magnitudes mode sees 2**31."""
    d = [1 << 30, -(1 << 30)] + [0] * 6
    signed_mode = StatParams(msd_th=1 << 20, policy=1, msd_mode=0)
    mag_mode = StatParams(msd_th=1 << 20, policy=1, msd_mode=1)
    assert decide(d, signed_mode).msd == 0 and decide(d, signed_mode).recompute is False
    assert decide(d, mag_mode).msd == 1 << 31 and decide(d, mag_mode).recompute is True
    assert decide(d, signed_mode).flag_classic is True


@pytest.mark.parametrize("x, want", [(1, 0), (2, 16), (3, 24), (5, 36), (255, 127),
                                     (256, 128), (1 << 31, 31 * 16), ((1 << 31) - 1, 495)])
def test_log2q(x, want):
    assert log2q(x) == want
    assert abs(log2q(x) / (1 << LOG_FRAC) - math.log2(x)) <= 0.0861 + 1 / 16


@pytest.mark.parametrize("width", [2, 5, 8])
def test_magnitude_is_abs_modulo_width(width):
    """``hw.stats.magnitude`` (|d| as ``(d ^ s) + s``) against Python's ``abs`` for every
    ``width``-bit value, the most negative one wrapping to itself unsigned (2^(width-1)), as the
    unit's R1 register holds it; through Amaranth's simulator."""
    from amaranth import Module, Signal, signed
    from amaranth.sim import Simulator

    from hw.stats import magnitude

    m = Module()
    d = Signal(signed(width))
    mag, eq = magnitude(d, width, "mag")
    m.d.comb += eq
    got = {}

    async def bench(ctx):
        for v in range(-(1 << (width - 1)), 1 << (width - 1)):
            ctx.set(d, v)
            got[v] = ctx.get(mag)

    simulator = Simulator(m)
    simulator.add_testbench(bench)
    simulator.run()
    assert got == {v: abs(v) for v in range(-(1 << (width - 1)), 1 << (width - 1))}
