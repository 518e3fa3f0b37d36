"""The systolic array (``hw.array``) against its golden cycle model (``golden.array``), in
Verilator: every output port, every cycle, plus the results against the int64 oracle."""
import json
import os

import cocotb
import pytest

from golden.stimulus import collect, expected
from hw.config import ArrayConfig
from realm.rtl import sim
from realm.rtl.common import check_program, config_from_env, sim_context
from realm.rtl.sim import suite_seed
from tb.scenarios import SCENARIOS, make_program


@cocotb.test()
@cocotb.parametrize(scenario=list(SCENARIOS))
async def array_scenario(dut, scenario):
    seed, config = sim_context()
    await check_program(dut, config, make_program(config, scenario, seed), seed)


@cocotb.test()
async def array_overflow(dut):
    """All-minimum operands whose sums leave the accumulator range and wrap."""
    seed = suite_seed()
    config = config_from_env()
    k = int(os.environ["REALM_OVERFLOW_K"])
    lo = -(1 << (config.data_width - 1))
    import torch
    if config.dataflow.value == "ws":
        program = [("load", torch.full((config.rows, config.cols), lo)),
                   ("stream", torch.full((k, config.rows), lo), 0)]
    else:
        program = [("tile", torch.full((config.rows, k), lo), torch.full((k, config.cols), lo))]
    got = await check_program(dut, config, program, seed)
    total = config.rows * lo * lo if config.dataflow.value == "ws" else k * lo * lo
    assert total >= 1 << (config.acc_width - 1), "the scenario does not overflow"
    assert collect(config, got)[0][0] == expected(config, program)[0][0]


SIZES = [(1, 1), (2, 3), (4, 4), (8, 8), (16, 16)]


def run_cocotb(config, testcase, tmp_path, **env):
    seed = suite_seed()
    build_dir = sim.build(config)
    extra = {"REALM_CONFIG": config.to_json(), **{k: str(v) for k, v in env.items()}}
    sim.run(build_dir, "tb.test_array", testcase, extra, seed=seed, test_dir=tmp_path)
    return seed


def _check_results(tmp_path, expected_tests):
    from cocotb_tools.check_results import get_results
    tests, failed = get_results(tmp_path / "results.xml")
    assert (tests, failed) == (expected_tests, 0)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows, cols", SIZES, ids=[f"{r}x{c}" for r, c in SIZES])
def test_array(rows, cols, dataflow, tmp_path):
    config = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow)
    run_cocotb(config, "array_scenario", tmp_path)
    _check_results(tmp_path, len(SCENARIOS))


# WS: rows * 16384 overflows a 16-bit accumulator from 2 rows on; OS: K * 16384 likewise.
# The 32-bit OS case needs K > 2**31 / 2**14 = 131072 beats, a minute of cocotb: it runs
# through the compiled harness (test_fastsim.test_int32_accumulator_wraps).
OVERFLOW = [(ArrayConfig(rows=4, cols=4, dataflow="ws", acc_width=16), 3),
            (ArrayConfig(rows=4, cols=4, dataflow="os", acc_width=16), 3)]


@pytest.mark.parametrize("config, k", OVERFLOW, ids=[c.id + f"-k{k}" for c, k in OVERFLOW])
def test_array_overflow(config, k, tmp_path):
    run_cocotb(config, "array_overflow", tmp_path, REALM_OVERFLOW_K=k)
    _check_results(tmp_path, 1)


def test_config_json_roundtrip():
    """What the benches hand the simulator (``REALM_CONFIG``, :meth:`ArrayConfig.to_json`)
    comes back as the same configuration, every field off its default."""
    config = ArrayConfig(rows=2, cols=3, dataflow="os", abft="approx", acc_width=20,
                         fault_port=True, param_sets=7)
    back = ArrayConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert back == config and back.to_dict() == {
        "rows": 2, "cols": 3, "dataflow": "os", "data_width": 8, "acc_width": 20,
        "abft": "approx", "fault_port": True, "param_sets": 7, "hist_bins": 8,
        "counter_width": 32}


def test_small_arrays_compile_unoptimized():
    """Up to ``SMALL_PES`` PEs the model's C++ is compiled at -O0 (the testbench's Python sets
    the run time there), above at Verilator's -Os; ``optimize`` overrides; and the flags reach
    the compiler (the build log of a 1x1 array)."""
    o0 = "OPT_FAST=-O0 OPT_GLOBAL=-O0"
    small, big = ArrayConfig(rows=32, cols=32), ArrayConfig(rows=32, cols=33)
    assert (sim.make_flags(small), sim.make_flags(big)) == (o0, "")
    assert (sim.make_flags(small, optimize=True), sim.make_flags(big, optimize=False)) == ("", o0)
    log = (sim.build(ArrayConfig(rows=1, cols=1)) / "build.log").read_text().splitlines()
    compiles = [line.split() for line in log if " -c " in line]
    assert any("-O0" in c for c in compiles) and not any("-Os" in c for c in compiles)
