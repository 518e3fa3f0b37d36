"""Bit-exact golden models of :mod:`hw.array` and :mod:`hw.checksum`: a cycle-accurate model and a
fast transaction-level ``matmul``.

The cycle models hold the same registers as the RTL, as int64 tensors over the whole PE grid,
and advance all PEs with one tensor operation per register per cycle. :meth:`step` takes the
inputs of one clock period, returns the outputs of that period (computed from the registers
and the inputs, as the combinational logic does) and then performs the clock edge. Faults
(:class:`golden.faults.Fault`) act on the value written at their edge, as the RTL fault port
does. See :mod:`hw.array` for the timing contract and :mod:`hw.checksum` for the ABFT logic.
"""
import torch

from hw.checksum import lane_stages
from hw.config import Abft, Dataflow
from hw.facts import DECISION_LATENCY

from .arith import apply_fault, wrap
from .faults import SITES
from .pe import os_pe_next, os_pe_pipelined_next, ws_pe_next, ws_pe_pipelined_next

from .stats import StatUnitModel

_I64 = torch.int64


def matmul(a, b, config):
    """Return ``a @ b`` as the array computes it: an exact int64 product, wrapped to
    ``acc_width`` (modular addition makes the accumulation order irrelevant)."""
    return wrap(a.to(_I64) @ b.to(_I64), config.acc_width)


def _zeros(*shape):
    return torch.zeros(*shape, dtype=_I64)


def _shift_in(first, rest):
    """``[first, rest[0], ..., rest[-2]]`` along dim 0 (a register chain shifting by one)."""
    return torch.cat([first[None] if first.dim() == rest.dim() - 1 else first, rest[:-1]])


class Skew:
    """Lane ``i`` delayed by ``i`` register stages (lane 0 combinational): ``regs[i, j]`` is the
    ``j``-th register of lane ``i`` (only ``j < i`` exist)."""

    def __init__(self, n):
        self.n = n
        self.regs = _zeros(n, max(n - 1, 1))
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


class _ArrayModel:
    def __init__(self, config, faults=()):
        self.config = config
        self.abft = config.abft is not Abft.NONE
        self.faults = list(faults)
        for f in self.faults:
            if f.site not in SITES:
                raise ValueError(f"site {f.site!r} is not a register of the array model")
        self.cycle = 0
        self.reset()

    def reset(self):
        c = self.config
        self.pe = {name: _zeros(c.rows, c.cols) for name in ("a", "b", "acc")}
        self.ck = {}
        if self.abft:
            self.stat = StatUnitModel(c.stat_n, c.acc_width, c.abft, c.param_sets,
                                      c.hist_bins, c.counter_width)

    def registers(self):
        """Return a copy of every PE and checksum register, keyed by fault-site name."""
        regs = {f"pe.{k}": v.clone() for k, v in self.pe.items()}
        regs.update({f"ck.{k}": v.clone() for k, v in self.ck.items()})
        return regs

    def _active(self):
        return [f for f in self.faults if f.cycle <= self.cycle < f.cycle + f.duration]

    def _apply_faults(self, nxt_pe, nxt_ck):
        """Apply this cycle's faults to the next register values; return the stat.msd fault."""
        c = self.config
        msd_fault = None
        for f in self._active():
            group, name = f.site.split(".", 1)
            if group == "stat":
                msd_fault = (f.kind, f.mask)
                continue
            t = (nxt_pe if group == "pe" else nxt_ck)[name]
            width = c.data_width if f.site in ("pe.a", "pe.b") else c.acc_width
            idx = (f.row, f.col) if t.dim() == 2 else (f.row if name == "acc" and
                                                       c.dataflow is Dataflow.WS else f.col)
            t[idx] = apply_fault(t[idx], f.kind, f.mask, width)
        return msd_fault

    def _stat_step(self, inp, d, d_valid, d_end, msd_fault, rst):
        if rst:
            return self.stat.outputs()
        return self.stat.step({"d": d, "valid": d_valid, "end": d_end, "sel": inp.get("sel", 0),
                               "cfg": inp.get("cfg")}, msd_fault)

    def run(self, driver, tail=None):
        """Play ``driver`` (see :mod:`golden.stimulus`) to the end, then ``tail`` idle cycles
        (default :attr:`drain_cycles`); return the list of per-cycle output dicts."""
        trace = []
        full = self.drain_cycles if tail is None else tail
        left = full
        while True:
            if not driver.done:
                left = full  # (a recovery driver may queue more work)
            elif left == 0:
                break
            else:
                left -= 1
            inputs = driver.inputs()
            out = self.step(inputs)
            driver.update(out)
            trace.append(out)
        return trace


class WSArrayModel(_ArrayModel):
    """Cycle model of :class:`hw.array.WSArray`.

    Inputs per cycle: ``rst``, ``w_valid``, ``w`` (cols), ``a_valid``, ``a`` (rows),
    ``a_last``, and with ABFT ``sel`` and ``cfg``. Outputs per cycle: ``w_ready``, ``a_ready``,
    ``busy``, ``o_valid``, ``o_c`` (cols), and with ABFT ``o_d``, ``o_d_valid`` and the
    statistical unit's outputs.
    """

    def reset(self):
        super().reset()
        c = self.config
        self.valid = torch.zeros(c.latency, dtype=torch.bool)
        self.last = torch.zeros(c.latency, dtype=torch.bool)
        self.a_skew = Skew(c.rows)
        self.c_align = Skew(c.cols)
        if self.abft:
            self.ck = {"a": _zeros(c.rows), "b": _zeros(c.rows), "acc": _zeros(c.rows),
                       "p": _zeros(c.rows), "y": _zeros(c.cols)}
            # the checksum column loads eᵀW lane_stages(cols) cycles late (pipelined tree)
            self.ck_load = [(False, 0)] * lane_stages(c.cols)
            self.y_late = 0
            self.v_late = self.e_late = self.d_valid = self.d_end = False

    @property
    def drain_cycles(self):
        return drain_cycles(self.config)

    def step(self, inp):
        c = self.config
        rows, cols, aw = c.rows, c.cols, c.acc_width
        busy = bool(self.valid.any())
        w_ready, a_ready = not busy, not inp["w_valid"]
        w_acc = bool(inp["w_valid"]) and w_ready
        a_acc = bool(inp["a_valid"]) and a_ready
        a_in = torch.as_tensor(inp["a"], dtype=_I64) if a_acc else _zeros(rows)
        w_in = torch.as_tensor(inp["w"], dtype=_I64) if w_acc else _zeros(cols)
        # Bottom row leaves column ``col`` through ``cols - 1 - col`` alignment registers.
        bottom = self.pe["acc"][rows - 1]
        out = {
            "w_ready": w_ready, "a_ready": a_ready, "busy": busy,
            "o_valid": bool(self.valid[-1]),
            "o_c": self.c_align.out(bottom.flip(0)).flip(0).tolist(),
        }

        i_a = torch.cat([self.a_skew.out(a_in)[:, None], self.pe["a"][:, :-1]], dim=1)
        i_p = torch.cat([_zeros(1, cols), self.pe["acc"][:-1]], dim=0)
        i_w = torch.cat([self.pe["b"][1:], w_in[None]], dim=0)
        nxt = dict(zip(("a", "acc", "b"),
                       ws_pe_next(i_a, i_p, i_w, w_acc, self.pe["b"].clone(), aw)))
        nxt_ck = {}
        if self.abft:
            ck = self.ck
            d = int(wrap(torch.tensor(self.y_late) - ck["acc"][rows - 1], aw))
            out.update(o_d=d, o_d_valid=self.d_valid)
            ck_i_a = self.pe["a"][:, cols - 1]
            ck_i_p = torch.cat([_zeros(1), ck["acc"][:-1]])
            load, s_row = self.ck_load[-1] if self.ck_load else (w_acc, int(w_in.sum()))
            ck_i_w = torch.cat([ck["b"][1:], torch.tensor([s_row], dtype=_I64)])
            nxt_ck = dict(zip(("a", "acc", "b", "p"), ws_pe_pipelined_next(
                ck_i_a, ck_i_p, ck_i_w, load, ck["b"].clone(), ck["p"], aw)))
            nxt_ck["y"] = wrap(bottom + torch.cat([_zeros(1), ck["y"][:-1]]), aw)
        rst = bool(inp.get("rst", 0))
        msd_fault = self._apply_faults(nxt, nxt_ck) if not rst else None
        if self.abft:
            out.update(self._stat_step(inp, d, self.d_valid, self.d_end, msd_fault, rst))

        # The clock edge.
        a_skew_next = self.a_skew.next(a_in)
        c_align_next = self.c_align.next(bottom.flip(0))
        valid_next = torch.cat([torch.tensor([a_acc]), self.valid[:-1]])
        last_next = torch.cat([torch.tensor([a_acc and bool(inp.get("a_last", 0))]),
                               self.last[:-1]])
        d_valid, d_end = bool(self.valid[-1]), bool(self.valid[-1] and self.last[-1])
        y_now = int(self.ck["y"][cols - 1]) if self.abft else 0
        if rst:
            self.reset()
        else:
            self.pe, self.ck = nxt, (nxt_ck or self.ck)
            self.a_skew.regs, self.c_align.regs = a_skew_next, c_align_next
            self.valid, self.last = valid_next, last_next
            if self.abft:
                self.d_valid, self.d_end = self.v_late, self.e_late
                self.v_late, self.e_late = d_valid, d_end
                self.y_late = y_now
                self.ck_load = ([(w_acc, int(w_in.sum()))] + self.ck_load)[:len(self.ck_load)]
        self.cycle += 1
        return out


class OSArrayModel(_ArrayModel):
    """Cycle model of :class:`hw.array.OSArray`.

    Inputs per cycle: ``rst``, ``ab_valid``, ``a`` (rows), ``b`` (cols), ``last``, and with
    ABFT ``sel`` and ``cfg``. Outputs per cycle: ``ab_ready``, ``busy``, ``o_valid``, ``o_c``
    (cols), ``o_row``, ``o_last``, and with ABFT ``o_d``, ``o_d_valid`` and the statistical
    unit's outputs.
    """

    COMPUTE, FLUSH, DRAIN = 0, 1, 2

    def reset(self):
        super().reset()
        c = self.config
        self.state, self.count = self.COMPUTE, 0
        self.a_skew = Skew(c.rows)
        self.b_skew = Skew(c.cols)
        if self.abft:
            self.ck = {"a": _zeros(c.cols), "acc": _zeros(c.cols), "p": _zeros(c.cols),
                       "y": _zeros(c.cols)}
            # eᵀA reaches the checksum row a cycle before the weights leave the bottom row:
            # the checksum PEs take the bottom PEs' i_b and register the product.
            self.s_delay = _zeros(c.rows)
            self.check = self.shift = False
            self.shift_count = 0

    @property
    def drain_cycles(self):
        return drain_cycles(self.config)

    def step(self, inp):
        c = self.config
        rows, cols, aw = c.rows, c.cols, c.acc_width
        ready = self.state == self.COMPUTE
        accept = bool(inp["ab_valid"]) and ready
        drain = self.state == self.DRAIN
        o_last = drain and self.count == 0
        out = {
            "ab_ready": ready, "busy": not ready, "o_valid": drain,
            "o_c": self.pe["acc"][rows - 1].tolist(),
            "o_row": self.count & ((1 << (rows - 1).bit_length()) - 1),
            "o_last": o_last,
        }
        a_in = torch.as_tensor(inp["a"], dtype=_I64) if accept else _zeros(rows)
        b_in = torch.as_tensor(inp["b"], dtype=_I64) if accept else _zeros(cols)

        i_a = torch.cat([self.a_skew.out(a_in)[:, None], self.pe["a"][:, :-1]], dim=1)
        i_b = torch.cat([self.b_skew.out(b_in)[None, :], self.pe["b"][:-1]], dim=0)
        i_c = torch.cat([_zeros(1, cols), self.pe["acc"][:-1]], dim=0)
        nxt = dict(zip(("a", "b", "acc"), os_pe_next(i_a, i_b, i_c, drain, self.pe["acc"], aw)))
        nxt_ck = {}
        if self.abft:
            ck = self.ck
            d, d_valid = int(ck["y"][0]), self.shift
            d_end = self.shift and self.shift_count == cols - 1
            out.update(o_d=d, o_d_valid=d_valid)
            s_in = self.s_delay[rows - 2:rows - 1] if rows > 1 else a_in.sum()[None]
            ck_i_a = torch.cat([s_in, ck["a"][:-1]])
            _, _, ck_acc, ck_p = os_pe_pipelined_next(
                ck_i_a, i_b[rows - 1], _zeros(cols), self.check, ck["acc"], ck["p"], aw)
            if drain:
                y = wrap(ck["y"] + self.pe["acc"][rows - 1], aw)
            elif self.check:
                y = wrap(ck["y"] - ck["acc"], aw)
            elif self.shift:
                y = torch.cat([ck["y"][1:], _zeros(1)])
            else:
                y = ck["y"].clone()
            nxt_ck = {"a": ck_i_a, "acc": ck_acc, "p": ck_p, "y": y}
        rst = bool(inp.get("rst", 0))
        msd_fault = self._apply_faults(nxt, nxt_ck) if not rst else None
        if self.abft:
            out.update(self._stat_step(inp, d, d_valid, d_end, msd_fault, rst))

        # The clock edge.
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
        if rst:
            self.reset()
        else:
            self.pe = nxt
            self.state, self.count = state, count
            self.a_skew.regs, self.b_skew.regs = a_skew_next, b_skew_next
            if self.abft:
                self.ck = nxt_ck
                self.s_delay = _shift_in(a_in.sum(), self.s_delay)
                if self.check:
                    self.shift, self.shift_count = True, 0
                elif self.shift:
                    self.shift = self.shift_count != cols - 1
                    self.shift_count += 1
                self.check = o_last
        self.cycle += 1
        return out


def drain_cycles(config):
    """Idle cycles :meth:`_ArrayModel.run` plays after a program: until the last result (and,
    with ABFT, the last decision) has left the array."""
    c, abft = config, config.abft is not Abft.NONE
    if c.dataflow is Dataflow.WS:
        return c.latency + 1 + (DECISION_LATENCY + 3 if abft else 0)
    return 2 * c.rows + c.cols + (c.cols + DECISION_LATENCY + 2 if abft else 0)


def ArrayModel(config, faults=()):
    """Build the cycle model for ``config``'s dataflow."""
    cls = {Dataflow.WS: WSArrayModel, Dataflow.OS: OSArrayModel}[config.dataflow]
    return cls(config, faults)
