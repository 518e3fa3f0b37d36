"""cocotb side: the ``ArrayTB`` class owns the clock and reset and drives the generated Verilog
through the port mapping of :mod:`golden.ports` (the one shared with the Amaranth-simulator
bench and the gate-level power simulation). Tests never spell port names."""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from golden.ports import active_fault, fault_ports, idle_inputs, input_ports, output_dict
from golden.stimulus import Driver, check_results, collect


class ArrayTB:
    """Drive a generated :class:`hw.array.WSArray`/:class:`~hw.array.OSArray` cycle by cycle."""

    def __init__(self, dut, config):
        self.dut = dut
        self.config = config
        self.cycle = 0

    def _set(self, name, value):
        handle = getattr(self.dut, name, None)
        if handle is not None:  # zero-width ports (e.g. the row index of a 1-row array) vanish
            handle.value = value

    def _get(self, name, signed=False):
        handle = getattr(self.dut, name, None)
        if handle is None:
            return 0
        value = handle.value
        if not hasattr(value, "to_unsigned"):  # a 1-bit port reads as a Logic
            return int(value)
        return value.to_signed() if signed else value.to_unsigned()

    async def start(self):
        """Start the clock and hold reset for two cycles."""
        Clock(self.dut.clk, 10, unit="ns").start()
        await self._hold_reset()

    async def reset(self):
        """After :meth:`run`: hold reset for two cycles from the next falling edge (the array
        returns to its power-on state) and count cycles from 0 again."""
        await FallingEdge(self.dut.clk)
        await self._hold_reset()
        self.cycle = 0

    async def _hold_reset(self):
        self.drive({**idle_inputs(self.config), "rst": 1})
        self._clear_faults()
        for _ in range(2):
            await RisingEdge(self.dut.clk)

    def drive(self, inp):
        for name, value in input_ports(self.config, inp).items():
            self._set(name, value)

    def _clear_faults(self):
        if self.config.fault_port:
            self._set("fi_valid", 0)

    def inject(self, faults):
        """Drive the fault port for the faults active in the current cycle (at most one)."""
        if not self.config.fault_port:
            return
        for name, value in fault_ports(self.config, active_fault(faults, self.cycle)).items():
            self._set(name, value)

    def sample(self):
        return output_dict(self.config, self._get)

    async def run(self, driver, cycles, faults=()):
        """Play ``driver`` for ``cycles`` cycles (as :meth:`golden.array._ArrayModel.run` does)
        and return the per-cycle outputs."""
        trace = []
        for _ in range(cycles):
            await FallingEdge(self.dut.clk)
            self.drive(driver.inputs())
            self.inject(faults)
            await ReadOnly()
            out = self.sample()
            driver.update(out)
            trace.append(out)
            self.cycle += 1
        return trace


def config_from_env():
    """The configuration the pytest side passed to this simulation (``REALM_CONFIG``)."""
    import os

    from hw.config import ArrayConfig
    return ArrayConfig.from_json(os.environ["REALM_CONFIG"])


def sim_context():
    """Return ``(seed, config)`` of this simulation and log the seed."""
    from realm.rtl.sim import suite_seed
    seed = suite_seed()
    log_seed(seed)
    return seed, config_from_env()


async def run_and_compare(dut, config, driver_factory, faults, seed):
    """Play a fresh driver from ``driver_factory`` on the golden model, then another on the
    RTL for as many cycles; require identical per-cycle outputs and return the RTL trace."""
    from golden.array import ArrayModel
    want = ArrayModel(config, faults).run(driver_factory())
    tb = ArrayTB(dut, config)
    await tb.start()
    got = await tb.run(driver_factory(), len(want), faults)
    compare_traces(got, want, seed)
    return got


async def check_program(dut, config, program, seed, faults=()):
    """Run ``program`` on the RTL and on the golden model; require identical traces and, with
    no faults, the oracle's results."""
    got = await run_and_compare(dut, config, lambda: Driver(config, program), faults, seed)
    if not faults:
        check_results(config, program, collect(config, got))
    return got


def compare_traces(got, want, seed):
    """Raise AssertionError at the first cycle whose outputs differ, naming the seed."""
    assert len(got) == len(want), f"trace lengths differ: {len(got)} != {len(want)}"
    for cycle, (g, w) in enumerate(zip(got, want)):
        if g != w:
            diff = {k: (g[k], w[k]) for k in w if g.get(k) != w[k]}
            raise AssertionError(f"cycle {cycle}: RTL != golden (rtl, golden): {diff}; "
                                 f"reproduce with REALM_SEED={seed}")


def log_seed(seed):
    cocotb.log.info("REALM seed %d (reproduce with REALM_SEED=%d)", seed, seed)
