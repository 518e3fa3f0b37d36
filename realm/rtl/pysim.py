"""Run a stimulus program on the Amaranth component in Amaranth's own Python simulator (the peer
a user reaches for first), with the same driver and the same port mapping
(:mod:`golden.ports`) as the cocotb testbench, so its trace can be compared with the golden
model's."""
from amaranth.hdl import ValueCastable
from amaranth.sim import Simulator

from golden.ports import active_fault, fault_ports, input_ports, output_dict
from golden.stimulus import Driver
from hw.array import SystolicArray


def ports_by_name(dut):
    """The component's ports by their Verilog names (``i_a__payload`` ...), as values."""
    ports = {}
    for path, _, value in dut.signature.flatten(dut):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        ports["__".join(map(str, path))] = value
    return ports


def run_pysim(config, program, cycles, faults=()):
    """Play ``program`` for ``cycles`` cycles, with ``faults`` on the fault port; return the
    per-cycle outputs."""
    dut = SystolicArray(config)
    ports = ports_by_name(dut)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    trace = []

    async def testbench(ctx):
        def get(name, signed=False):
            port = ports.get(name)
            if port is None or len(port) == 0:
                return 0
            n = len(port)
            v = ctx.get(port) & ((1 << n) - 1)
            return v - (1 << n) if signed and v >> (n - 1) else v

        driver = Driver(config, program)
        for cycle in range(cycles):
            values = input_ports(config, driver.inputs())
            if values.pop("rst"):
                raise ValueError("the Python-simulator runner does not drive reset")
            if config.fault_port:
                values.update(fault_ports(config, active_fault(faults, cycle)))
            for name, value in values.items():
                if name in ports and len(ports[name]):
                    ctx.set(ports[name], value)
            out = output_dict(config, get)
            driver.update(out)
            trace.append(out)
            await ctx.tick()

    sim.add_testbench(testbench)
    sim.run()
    return trace
