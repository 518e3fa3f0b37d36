"""cocotb side: the ``ArrayTB`` class owns the clock, reset and the mapping between the golden
model's per-cycle input/output dicts and the generated Verilog ports (Amaranth names members
``i_a__payload`` etc.; lanes are packed little-end first). Tests never spell port names."""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from golden.arith import pack, unpack
from golden.stimulus import Driver, collect, expected
from hw.array import fault_sites
from hw.config import Abft, Dataflow
from hw.stats import COUNTERS

FAULT_KINDS = {"flip": 0, "stuck0": 1, "stuck1": 2}


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
        self.drive({**self._idle_inputs(), "rst": 1})
        self._clear_faults()
        for _ in range(2):
            await RisingEdge(self.dut.clk)

    def _idle_inputs(self):
        return Driver(self.config, []).inputs()

    def drive(self, inp):
        c, dw = self.config, self.config.data_width
        self.dut.rst.value = inp["rst"]
        if c.dataflow is Dataflow.WS:
            self._set("i_w__valid", inp["w_valid"])
            self._set("i_w__payload", pack(inp["w"], dw))
            self._set("i_a__valid", inp["a_valid"])
            self._set("i_a__payload", pack(inp["a"], dw) | inp["a_last"] << (c.rows * dw))
        else:
            a, b = pack(inp["a"], dw), pack(inp["b"], dw)
            payload = a | (b << (c.rows * dw)) | (inp["last"] << ((c.rows + c.cols) * dw))
            self._set("i_ab__valid", inp["ab_valid"])
            self._set("i_ab__payload", payload)
        if c.abft is not Abft.NONE:
            self._set("param_sel", inp.get("sel", 0))
            cfg = inp.get("cfg")
            self._set("cfg_we", int(cfg is not None))
            if cfg is not None:
                s, p = cfg
                for port, value in (("cfg_set", s), ("cfg_am1", p.am1), ("cfg_b", p.b_q),
                                    ("cfg_freq", p.freq_th), ("cfg_msd_th", p.msd_th),
                                    ("cfg_policy", p.policy), ("cfg_msd_mode", p.msd_mode)):
                    self._set(port, value)

    def _clear_faults(self):
        if self.config.fault_port:
            self._set("fi_valid", 0)

    def inject(self, faults):
        """Drive the fault port for the faults active in the current cycle (at most one)."""
        if not self.config.fault_port:
            return
        active = [f for f in faults if f.cycle <= self.cycle < f.cycle + f.duration]
        if len(active) > 1:
            raise ValueError(f"cycle {self.cycle}: the fault port takes one fault per cycle")
        if not active:
            self._set("fi_valid", 0)
            return
        f = active[0]
        self._set("fi_valid", 1)
        self._set("fi_site", fault_sites(self.config).index(f.site))
        self._set("fi_row", f.row)
        self._set("fi_col", f.col)
        self._set("fi_kind", FAULT_KINDS[f.kind])
        self._set("fi_mask", f.mask)

    def sample(self):
        c = self.config
        o_c = unpack(self._get("o_c"), c.acc_width, c.cols)
        out = {"busy": bool(self._get("busy")), "o_valid": bool(self._get("o_valid")),
               "o_c": o_c}
        if c.dataflow is Dataflow.WS:
            out.update(w_ready=bool(self._get("i_w__ready")),
                       a_ready=bool(self._get("i_a__ready")))
        else:
            out.update(ab_ready=bool(self._get("i_ab__ready")), o_row=self._get("o_row"),
                       o_last=bool(self._get("o_last")))
        if c.abft is not Abft.NONE:
            out.update(o_d=self._get("o_d", True), o_d_valid=bool(self._get("o_d_valid")))
            for name in ("o_done", "o_recompute", "o_flags", "o_mismatch", "o_freq_eff",
                         *(f"c_{n}" for n in COUNTERS)):
                out[name] = self._get(name)
            out["o_msd"], out["o_theta"] = self._get("o_msd", True), self._get("o_theta", True)
            hist, cw = self._get("c_hist"), c.counter_width
            out["c_hist"] = [(hist >> (i * cw)) & ((1 << cw) - 1) for i in range(c.hist_bins)]
        return out

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
    from tb.scenarios import suite_seed
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
        results = collect(config, got)
        oracle = expected(config, program)
        assert results[len(results) - len(oracle):] == oracle, "results differ from int64 oracle"
        assert oracle, "program produced nothing to check"
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
