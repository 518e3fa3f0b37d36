"""The processing elements (``hw.pe``) alone in Verilator against ``golden.pe``: random and
extreme operands every cycle, each registered output checked on the next cycle."""
import os

import cocotb
import pytest
import torch
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from golden.faultgen import generator
from golden.pe import os_pe_next, ws_pe_next
from hw.config import ArrayConfig
from hw.pe import OSProcessingElement, WSProcessingElement
from realm.rtl import sim
from realm.rtl.sim import suite_seed
from tb.scenarios import operands

CYCLES = 400


def _stimulus(config, seed):
    """Per-cycle input tuples: operands mixing random and extreme values, accumulator inputs
    spanning the whole signed range, and the control bit toggling."""
    g = generator(seed, "pe", config.id)
    n = CYCLES
    a = torch.where(torch.rand(n, generator=g) < 0.3, operands(config, (n,), "extremes", g),
                    operands(config, (n,), "random", g))
    b = torch.where(torch.rand(n, generator=g) < 0.3, operands(config, (n,), "extremes", g),
                    operands(config, (n,), "random", g))
    lo = -(1 << (config.acc_width - 1))
    c = torch.randint(lo, -lo, (n,), generator=g)
    c[::7] = lo  # the most negative accumulator: adding a negative product wraps
    c[3::7] = -lo - 1
    ctl = torch.randint(0, 2, (n,), generator=g)
    return list(zip(a.tolist(), b.tolist(), c.tolist(), ctl.tolist()))


@cocotb.test()
async def pe_random(dut):
    config = ArrayConfig.from_json(os.environ["REALM_CONFIG"])
    seed = suite_seed()
    aw = config.acc_width
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    ws = config.dataflow.value == "ws"
    state = (0, 0, 0)  # the PE's registers after reset
    for cycle, (a, b, c, ctl) in enumerate(_stimulus(config, seed)):
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        if ws:
            dut.i_a.value, dut.i_w.value, dut.i_p.value, dut.w_load.value = a, b, c, ctl
        else:
            dut.i_a.value, dut.i_b.value, dut.i_c.value, dut.drain.value = a, b, c, ctl
        await ReadOnly()
        got = (dut.o_a.value.to_signed(), dut.o_w.value.to_signed() if ws
               else dut.o_b.value.to_signed(), dut.o_p.value.to_signed() if ws
               else dut.o_c.value.to_signed())
        want = (state[0], state[2], state[1]) if ws else state
        assert got == want, f"cycle {cycle}: PE outputs {got} != golden {want} (seed {seed})"
        if ws:
            state = ws_pe_next(a, c, b, ctl, state[2], aw)  # (a, acc, b)
        else:
            state = os_pe_next(a, b, c, ctl, state[2], aw)  # (a, b, acc)


@pytest.mark.parametrize("acc_width", [32, 16])
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_pe(dataflow, acc_width, tmp_path):
    config = ArrayConfig(rows=1, cols=1, dataflow=dataflow, acc_width=acc_width)
    cls = WSProcessingElement if dataflow == "ws" else OSProcessingElement
    build_dir = sim.build(config, name="pe", component=cls(acc_width=acc_width))
    sim.run(build_dir, "tb.test_pe", "pe_random", {"REALM_CONFIG": config.to_json()},
            seed=suite_seed(), test_dir=tmp_path)
    from cocotb_tools.check_results import get_results
    assert get_results(tmp_path / "results.xml") == (1, 0)
