"""Bit-exact golden models of :mod:`hw.array`: a cycle-accurate model and a fast transaction-level
``matmul``.

The cycle models hold the same registers as the RTL, as int64 tensors over the whole PE grid,
and advance all PEs with one tensor operation per register per cycle. :meth:`step` takes the
inputs of one clock period, returns the outputs of that period (computed from the registers
and the inputs, as the combinational logic does) and then performs the clock edge. Faults
(:class:`golden.faults.Fault`) act on the value written at their edge, as the RTL fault port
does. See :mod:`hw.array` for the timing contract the models reproduce.
"""
import torch

from hw.config import Dataflow

from .arith import apply_fault, wrap
from .faults import SITES
from .pe import os_pe_next, ws_pe_next

_I64 = torch.int64


def matmul(a, b, config):
    """Return ``a @ b`` as the array computes it: an exact int64 product, wrapped to
    ``acc_width`` (modular addition makes the accumulation order irrelevant)."""
    return wrap(a.to(_I64) @ b.to(_I64), config.acc_width)


class Skew:
    """Lane ``i`` delayed by ``i`` register stages (lane 0 combinational): ``regs[i, j]`` is the
    ``j``-th register of lane ``i`` (only ``j < i`` exist)."""

    def __init__(self, n):
        self.n = n
        self.regs = torch.zeros(n, max(n - 1, 1), dtype=_I64)
        self._mask = torch.tril(torch.ones_like(self.regs), diagonal=-1).bool()

    def out(self, lanes):
        res = lanes.clone()
        if self.n > 1:
            idx = torch.arange(1, self.n)
            res[1:] = self.regs[idx, idx - 1]
        return res

    def next(self, lanes):
        nxt = torch.zeros_like(self.regs)
        nxt[:, 0] = lanes
        if self.regs.shape[1] > 1:
            nxt[:, 1:] = self.regs[:, :-1]
        return nxt * self._mask

    def reset(self):
        self.regs.zero_()


class _ArrayModel:
    def __init__(self, config, faults=()):
        self.config = config
        self.faults = list(faults)
        for f in self.faults:
            if f.site not in SITES or not f.site.startswith("pe."):
                raise ValueError(f"site {f.site!r} is not a register of the array model")
        self.cycle = 0
        self.reset()

    def reset(self):
        c = self.config
        shape = (c.rows, c.cols)
        self.pe = {name: torch.zeros(shape, dtype=_I64) for name in ("a", "b", "acc")}

    def registers(self):
        """Return a copy of every PE register, keyed by fault-site name."""
        return {f"pe.{k}": v.clone() for k, v in self.pe.items()}

    def _apply_faults(self, nxt):
        c = self.config
        for f in self.faults:
            if f.cycle <= self.cycle < f.cycle + f.duration:
                name = f.site.split(".", 1)[1]
                width = c.data_width if name in ("a", "b") else c.acc_width
                t = nxt[name]
                t[f.row, f.col] = apply_fault(t[f.row, f.col], f.kind, f.mask, width)

    def _edge(self, rst, nxt):
        if rst:
            self.reset()
        else:
            self._apply_faults(nxt)
            self.pe = nxt
        self.cycle += 1

    def run(self, driver, tail=None):
        """Play ``driver`` (see :mod:`golden.stimulus`) to the end, then ``tail`` idle cycles
        (default :attr:`drain_cycles`); return the list of per-cycle output dicts."""
        trace = []
        tail = self.drain_cycles if tail is None else tail
        while not driver.done or tail > 0:
            if driver.done:
                tail -= 1
            inputs = driver.inputs()
            out = self.step(inputs)
            driver.update(out)
            trace.append(out)
        return trace


class WSArrayModel(_ArrayModel):
    """Cycle model of :class:`hw.array.WSArray`.

    Inputs per cycle: ``rst``, ``w_valid``, ``w`` (cols), ``a_valid``, ``a`` (rows).
    Outputs per cycle: ``w_ready``, ``a_ready``, ``busy``, ``o_valid``, ``o_c`` (cols).
    """

    def reset(self):
        super().reset()
        c = self.config
        self.valid = torch.zeros(c.latency, dtype=torch.bool)
        self.a_skew = Skew(c.rows)
        self.c_align = Skew(c.cols)

    @property
    def drain_cycles(self):
        return self.config.latency + 1

    def registers(self):
        regs = super().registers()
        regs.update(valid=self.valid.clone(), a_skew=self.a_skew.regs.clone(),
                    c_align=self.c_align.regs.clone())
        return regs

    def step(self, inp):
        c = self.config
        rows, cols = c.rows, c.cols
        busy = bool(self.valid.any())
        w_ready, a_ready = not busy, not inp["w_valid"]
        w_acc = bool(inp["w_valid"]) and w_ready
        a_acc = bool(inp["a_valid"]) and a_ready
        a_in = torch.as_tensor(inp["a"], dtype=_I64) if a_acc else torch.zeros(rows, dtype=_I64)
        # Bottom row leaves column ``col`` through ``cols - 1 - col`` alignment registers.
        bottom = self.pe["acc"][rows - 1]
        out = {
            "w_ready": w_ready, "a_ready": a_ready, "busy": busy,
            "o_valid": bool(self.valid[-1]),
            "o_c": self.c_align.out(bottom.flip(0)).flip(0).tolist(),
        }

        i_a = torch.cat([self.a_skew.out(a_in)[:, None], self.pe["a"][:, :-1]], dim=1)
        i_p = torch.cat([torch.zeros(1, cols, dtype=_I64), self.pe["acc"][:-1]], dim=0)
        w_in = torch.as_tensor(inp["w"], dtype=_I64) if w_acc else torch.zeros(cols, dtype=_I64)
        i_w = torch.cat([self.pe["b"][1:], w_in[None]], dim=0)
        nxt = dict(zip(("a", "acc", "b"),
                       ws_pe_next(i_a, i_p, i_w, w_acc, self.pe["b"].clone(), c.acc_width)))
        a_skew_next = self.a_skew.next(a_in)
        c_align_next = self.c_align.next(bottom.flip(0))
        valid_next = torch.cat([torch.tensor([a_acc]), self.valid[:-1]])
        rst = bool(inp.get("rst", 0))
        self._edge(rst, nxt)
        if not rst:
            self.a_skew.regs, self.c_align.regs, self.valid = a_skew_next, c_align_next, valid_next
        return out


class OSArrayModel(_ArrayModel):
    """Cycle model of :class:`hw.array.OSArray`.

    Inputs per cycle: ``rst``, ``ab_valid``, ``a`` (rows), ``b`` (cols), ``last``.
    Outputs per cycle: ``ab_ready``, ``busy``, ``o_valid``, ``o_c`` (cols), ``o_row``,
    ``o_last``.
    """

    COMPUTE, FLUSH, DRAIN = 0, 1, 2

    def reset(self):
        super().reset()
        c = self.config
        self.state, self.count = self.COMPUTE, 0
        self.a_skew = Skew(c.rows)
        self.b_skew = Skew(c.cols)

    @property
    def drain_cycles(self):
        return 2 * self.config.rows + self.config.cols

    def registers(self):
        regs = super().registers()
        regs.update(state=self.state, count=self.count, a_skew=self.a_skew.regs.clone(),
                    b_skew=self.b_skew.regs.clone())
        return regs

    def step(self, inp):
        c = self.config
        rows, cols = c.rows, c.cols
        ready = self.state == self.COMPUTE
        accept = bool(inp["ab_valid"]) and ready
        drain = self.state == self.DRAIN
        out = {
            "ab_ready": ready, "busy": not ready, "o_valid": drain,
            "o_c": self.pe["acc"][rows - 1].tolist(),
            "o_row": self.count & ((1 << (rows - 1).bit_length()) - 1),
            "o_last": drain and self.count == 0,
        }
        zeros_r, zeros_c = torch.zeros(rows, dtype=_I64), torch.zeros(cols, dtype=_I64)
        a_in = torch.as_tensor(inp["a"], dtype=_I64) if accept else zeros_r
        b_in = torch.as_tensor(inp["b"], dtype=_I64) if accept else zeros_c

        i_a = torch.cat([self.a_skew.out(a_in)[:, None], self.pe["a"][:, :-1]], dim=1)
        i_b = torch.cat([self.b_skew.out(b_in)[None, :], self.pe["b"][:-1]], dim=0)
        i_c = torch.cat([torch.zeros(1, cols, dtype=_I64), self.pe["acc"][:-1]], dim=0)
        nxt = dict(zip(("a", "b", "acc"),
                       os_pe_next(i_a, i_b, i_c, drain, self.pe["acc"], c.acc_width)))

        state, count = self.state, self.count
        flush = rows + cols - 2
        if state == self.COMPUTE:
            if accept and inp["last"]:
                state, count = (self.FLUSH, flush - 1) if flush > 0 else (self.DRAIN, rows - 1)
        elif state == self.FLUSH:
            state, count = (self.DRAIN, rows - 1) if count == 0 else (state, count - 1)
        else:
            state, count = (self.COMPUTE, count) if count == 0 else (state, count - 1)
        a_skew_next, b_skew_next = self.a_skew.next(a_in), self.b_skew.next(b_in)
        rst = bool(inp.get("rst", 0))
        self._edge(rst, nxt)
        if not rst:
            self.state, self.count = state, count
            self.a_skew.regs, self.b_skew.regs = a_skew_next, b_skew_next
        return out


def ArrayModel(config, faults=()):
    """Build the cycle model for ``config``'s dataflow."""
    cls = {Dataflow.WS: WSArrayModel, Dataflow.OS: OSArrayModel}[config.dataflow]
    return cls(config, faults)
