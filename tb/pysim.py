"""Run a stimulus program on the Amaranth component in Amaranth's own Python simulator (the peer
a user reaches for first), with the same driver and the same per-cycle output dicts as the
cocotb testbench, so its trace can be compared with the golden model's."""
from amaranth.sim import Simulator

from golden.arith import pack, unpack
from golden.stimulus import Driver
from hw.array import SystolicArray
from hw.config import Dataflow


def run_pysim(config, program, cycles):
    """Play ``program`` for ``cycles`` cycles; return the per-cycle outputs."""
    dut = SystolicArray(config)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    trace = []
    c, dw = config, config.data_width

    async def testbench(ctx):
        driver = Driver(config, program)
        for _ in range(cycles):
            inp = driver.inputs()
            if inp["rst"]:
                raise ValueError("the Python-simulator runner does not drive reset")
            if c.dataflow is Dataflow.WS:
                ctx.set(dut.i_w.valid, inp["w_valid"])
                ctx.set(dut.i_w.payload.as_value(), pack(inp["w"], dw))
                ctx.set(dut.i_a.valid, inp["a_valid"])
                ctx.set(dut.i_a.payload.as_value(),
                        pack(inp["a"], dw) | inp["a_last"] << (c.rows * dw))
                out = {"w_ready": bool(ctx.get(dut.i_w.ready)),
                       "a_ready": bool(ctx.get(dut.i_a.ready))}
            else:
                payload = (pack(inp["a"], dw) | pack(inp["b"], dw) << (c.rows * dw)
                           | inp["last"] << ((c.rows + c.cols) * dw))
                ctx.set(dut.i_ab.valid, inp["ab_valid"])
                ctx.set(dut.i_ab.payload.as_value(), payload)
                out = {"ab_ready": bool(ctx.get(dut.i_ab.ready)), "o_row": ctx.get(dut.o_row),
                       "o_last": bool(ctx.get(dut.o_last))}
            out.update(busy=bool(ctx.get(dut.busy)), o_valid=bool(ctx.get(dut.o_valid)),
                       o_c=unpack(ctx.get(dut.o_c.as_value()), c.acc_width, c.cols))
            driver.update(out)
            trace.append(out)
            await ctx.tick()

    sim.add_testbench(testbench)
    sim.run()
    return trace
