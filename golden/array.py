"""Bit-exact golden models of :mod:`hw.array` and :mod:`hw.checksum`: a cycle-accurate model and a
fast transaction-level ``matmul``.

The cycle models hold the same registers as the RTL, as integer tensors over the whole PE grid
(int32 operands and, up to ``acc_width`` 32, int32 accumulators; int64 checksums), and advance
all PEs with one tensor operation per register per cycle. :meth:`step` takes the
inputs of one clock period, returns the outputs of that period (computed from the registers
and the inputs, as the combinational logic does) and then performs the clock edge. Faults
(:class:`golden.faults.Fault`) act on the value written at their edge, as the RTL fault port
does. See :mod:`hw.array` for the timing contract and :mod:`hw.checksum` for the ABFT logic.

**Batches of trials.** :func:`BatchedArrayModel` runs B independent trials of one program in
the same tensor operations: every data register has a first dimension of B, and trial ``i``
carries its own fault list. The trials share their control (handshakes, valid bits, the OS
state machine, parameter sets): faults never change control, so one driver plays all of them.
Operands are shared, or per trial (a leading dimension of B on a program's operand tensors,
see :func:`golden.stimulus.stack`). Trial ``i``'s outputs (:func:`unbatch`) are exactly those of
:func:`ArrayModel` run with trial ``i``'s faults and operands; :func:`ArrayModel` is the batched
model with one trial, its outputs turned into Python values. A driver that reacts to per-trial
outputs (:class:`golden.stimulus.RecoveryDriver`) cannot drive a batch: its trials would
diverge in control.
"""
import torch

from hw.checksum import lane_stages
from hw.config import Abft, Dataflow
from hw.facts import DECISION_LATENCY

from .arith import apply_masks, wrap
from .pe import os_pe_next, os_pe_pipelined_next, ws_pe_next, ws_pe_pipelined_next
from .schedule import FaultSchedule
from .stats import StatUnitModel
from .stats_batch import BatchedStatUnitModel

_I64 = torch.int64
#: Operand registers and inputs (``data_width`` <= 16 bits): their products are exact in 32 bits.
_OPERAND = torch.int32


def acc_dtype(config):
    """The dtype of the PE accumulators: int32 up to ``acc_width`` 32 (a sum wraps modulo 2**32,
    as two's complement hardware does; :func:`golden.arith.wrap` narrows further), else
    int64. Narrower registers are fewer bytes to move per cycle."""
    return torch.int32 if config.acc_width <= 32 else _I64


def matmul(a, b, config):
    """Return ``a @ b`` as the array computes it: an exact int64 product, wrapped to
    ``acc_width`` (modular addition makes the accumulation order irrelevant)."""
    return wrap(a.to(_I64) @ b.to(_I64), config.acc_width)


def _zeros(*shape):
    return torch.zeros(*shape, dtype=_I64)


def _shift_in(first, rest):
    """``[first, rest[..., 0], ..., rest[..., -2]]`` along the last dimension (a register chain
    shifting by one), broadcast over leading (trial) dimensions."""
    shape = max(first.shape, rest.shape[:-1], key=len)  # () or (trials,)
    return torch.cat([first.expand(shape)[..., None],
                      rest[..., :-1].expand(*shape, rest.shape[-1] - 1)], dim=-1)


class Skew:
    """Lane ``i`` delayed by ``i`` register stages (lane 0 combinational). :meth:`out` gives this
    cycle's outputs for ``lanes``, :meth:`push` performs the clock edge. Lanes are ``(n,)`` or
    ``(trials, n)``; the registers take on the trial dimension from the first such lanes."""

    def __init__(self, n, dtype=_I64):
        self.n = n
        # A ring of the last n - 1 lane vectors (trials last, so that one lane of one vector is
        # contiguous): lane i leaves from the vector pushed i cycles ago.
        self._ring = torch.zeros(max(n - 1, 1), n, dtype=dtype)
        self._pos = 0
        self._lanes = torch.arange(1, n)
        self._slots = [(pos - self._lanes) % (n - 1) for pos in range(n - 1)]

    @property
    def regs(self):
        """The registers: ``regs[..., i, j]`` is the ``j``-th register of lane ``i`` (0 where
        ``j >= i``: no such register)."""
        m = max(self.n - 1, 1)
        past = self._ring[(self._pos - 1 - torch.arange(m)) % m]  # j + 1 cycles ago
        regs = past.movedim(0, -1).movedim(0, -2)
        return regs * torch.tril(torch.ones(self.n, m, dtype=torch.bool), diagonal=-1)

    def out(self, lanes):
        if self._ring.dim() - 1 > lanes.dim():  # lanes shared by the trials, registers not
            lanes = lanes.expand(*self._ring.shape[2:], self.n)
        res = lanes.clone()
        if self.n > 1:
            past = self._ring[self._slots[self._pos], self._lanes]
            res[..., 1:] = past.T if past.dim() > 1 else past
        return res

    def push(self, lanes):
        if self.n == 1:
            return
        batch = max(lanes.shape[:-1], self._ring.shape[2:], key=len)  # () or (trials,)
        if batch != self._ring.shape[2:]:
            self._ring = self._ring[..., None].expand(*self._ring.shape, *batch).clone()
        col = lanes.T if lanes.dim() > 1 else lanes
        self._ring[self._pos] = col if col.dim() == self._ring.dim() - 1 else col[:, None]
        self._pos = (self._pos + 1) % (self.n - 1)


class _ArrayModel:
    def __init__(self, config, faults=(), *, batched=False):
        self.config = config
        self.abft = config.abft is not Abft.NONE
        self.batched = batched
        trials = [list(f) for f in faults] if batched else [list(faults)]
        if not trials:
            raise ValueError("a batch needs at least one trial")
        self.batch = len(trials)
        self.faults = trials if batched else trials[0]
        self._schedule = FaultSchedule(config, trials, batched, {
            "pe.a": _OPERAND, "pe.b": _OPERAND, "pe.acc": acc_dtype(config)})
        self.cycle = 0
        self.reset()

    def reset(self):
        c, b = self.config, self.batch
        self.pe = {name: torch.zeros(b, c.rows, c.cols, dtype=_OPERAND) for name in "ab"}
        self.pe["acc"] = torch.zeros(b, c.rows, c.cols, dtype=acc_dtype(c))
        self.ck = {}
        if self.abft:
            args = (c.stat_n, c.acc_width, c.abft, c.param_sets, c.hist_bins, c.counter_width)
            self.stat = (BatchedStatUnitModel(*args, batch=b) if self.batched else
                         StatUnitModel(*args))

    def registers(self):
        """Return a copy of every PE and checksum register, keyed by fault-site name (with a
        first dimension over the trials in a batched model)."""
        regs = {f"pe.{k}": v for k, v in self.pe.items()}
        regs.update({f"ck.{k}": v for k, v in self.ck.items()})
        return {k: (v if self.batched else v[0]).to(_I64, copy=True) for k, v in regs.items()}

    def _apply_faults(self, nxt_pe, nxt_ck):
        """Apply this cycle's faults to the next register values; return the stat.msd fault."""
        faults, msd_fault = self._schedule.at(self.cycle)
        for site, index, keep, set_, flip, width in faults:
            group, name = site.split(".", 1)
            regs = nxt_pe if group == "pe" else nxt_ck
            t = regs[name]
            if any(t is r for r in (*self.pe.values(), *self.ck.values())):  # holds its value
                t = regs[name] = t.clone()
            flat = t.view(-1)
            flat[index] = apply_masks(flat[index], keep, set_, flip, width).to(t.dtype)
        return msd_fault

    def _stat_step(self, inp, d, d_valid, d_end, msd_fault, rst):
        if rst:
            return self.stat.outputs()
        return self.stat.step({"d": d if self.batched else int(d[0]), "valid": d_valid,
                               "end": d_end, "sel": inp.get("sel", 0), "cfg": inp.get("cfg")},
                              msd_fault)

    def _operands(self, inp, name, accept, n):
        return (torch.as_tensor(inp[name], dtype=_OPERAND) if accept else
                torch.zeros(n, dtype=_OPERAND))

    def _outputs(self, out):
        """``out`` as this model returns it: int64 tensors over the trials, or trial 0's values
        as Python values (the unbatched model)."""
        if self.batched:
            out["o_c"] = out["o_c"].to(_I64)
        else:
            out["o_c"] = out["o_c"][0].tolist()
            if self.abft:
                out["o_d"] = int(out["o_d"][0])
        return out

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
        c, b = self.config, self.batch
        self.valid = torch.zeros(c.latency, dtype=torch.bool)
        self.last = torch.zeros(c.latency, dtype=torch.bool)
        self.a_skew = Skew(c.rows, _OPERAND)
        self.c_align = Skew(c.cols, acc_dtype(c))
        if self.abft:
            self.ck = {"a": _zeros(b, c.rows), "b": _zeros(b, c.rows), "acc": _zeros(b, c.rows),
                       "p": _zeros(b, c.rows), "y": _zeros(b, c.cols)}
            # the checksum column loads eᵀW lane_stages(cols) cycles late (pipelined tree)
            self.ck_load = [(False, _zeros(()))] * lane_stages(c.cols)
            self.y_late = _zeros(b)
            self.v_late = self.e_late = self.d_valid = self.d_end = False

    @property
    def drain_cycles(self):
        return drain_cycles(self.config)

    def step(self, inp):
        c, b = self.config, self.batch
        rows, cols, aw = c.rows, c.cols, c.acc_width
        busy = bool(self.valid.any())
        w_ready, a_ready = not busy, not inp["w_valid"]
        w_acc = bool(inp["w_valid"]) and w_ready
        a_acc = bool(inp["a_valid"]) and a_ready
        a_in = self._operands(inp, "a", a_acc, rows)
        w_in = self._operands(inp, "w", w_acc, cols)
        # Bottom row leaves column ``col`` through ``cols - 1 - col`` alignment registers.
        bottom = self.pe["acc"][:, rows - 1]
        lanes = bottom.flip(-1)
        out = {
            "w_ready": w_ready, "a_ready": a_ready, "busy": busy,
            "o_valid": bool(self.valid[-1]),
            "o_c": self.c_align.out(lanes).flip(-1),
        }

        pe = self.pe
        i_a = torch.cat([self.a_skew.out(a_in).expand(b, rows)[..., None], pe["a"][..., :-1]],
                        dim=2)
        i_p = torch.cat([pe["acc"].new_zeros(b, 1, cols), pe["acc"][:, :-1]], dim=1)
        i_w = torch.cat([pe["b"][:, 1:], w_in.expand(b, cols)[:, None]], dim=1) if w_acc else None
        nxt = dict(zip(("a", "acc", "b"), ws_pe_next(i_a, i_p, i_w, w_acc, pe["b"], aw)))
        nxt_ck = {}
        if self.abft:
            ck = self.ck
            d = wrap(self.y_late - ck["acc"][:, rows - 1], aw)
            out.update(o_d=d, o_d_valid=self.d_valid)
            ck_i_a = pe["a"][:, :, cols - 1]
            ck_i_p = torch.cat([_zeros(b, 1), ck["acc"][:, :-1]], dim=1)
            load, s_row = self.ck_load[-1] if self.ck_load else (w_acc, w_in.sum(-1))
            ck_i_w = torch.cat([ck["b"][:, 1:], s_row.expand(b)[:, None]], dim=1)
            nxt_ck = dict(zip(("a", "acc", "b", "p"), ws_pe_pipelined_next(
                ck_i_a, ck_i_p, ck_i_w, load, ck["b"], ck["p"], aw)))
            nxt_ck["y"] = wrap(bottom + torch.cat([_zeros(b, 1), ck["y"][:, :-1]], dim=1), aw)
        rst = bool(inp.get("rst", 0))
        msd_fault = self._apply_faults(nxt, nxt_ck) if not rst else None
        if self.abft:
            out.update(self._stat_step(inp, d, self.d_valid, self.d_end, msd_fault, rst))

        # The clock edge.
        valid_next = torch.cat([torch.tensor([a_acc]), self.valid[:-1]])
        last_next = torch.cat([torch.tensor([a_acc and bool(inp.get("a_last", 0))]),
                               self.last[:-1]])
        d_valid, d_end = bool(self.valid[-1]), bool(self.valid[-1] and self.last[-1])
        y_now = self.ck["y"][:, cols - 1] if self.abft else None
        if rst:
            self.reset()
        else:
            self.pe, self.ck = nxt, (nxt_ck or self.ck)
            self.a_skew.push(a_in)
            self.c_align.push(lanes)
            self.valid, self.last = valid_next, last_next
            if self.abft:
                self.d_valid, self.d_end = self.v_late, self.e_late
                self.v_late, self.e_late = d_valid, d_end
                self.y_late = y_now
                self.ck_load = ([(w_acc, w_in.sum(-1))] + self.ck_load)[:len(self.ck_load)]
        self.cycle += 1
        return self._outputs(out)


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
        c, b = self.config, self.batch
        self.state, self.count = self.COMPUTE, 0
        self.a_skew = Skew(c.rows, _OPERAND)
        self.b_skew = Skew(c.cols, _OPERAND)
        if self.abft:
            self.ck = {"a": _zeros(b, c.cols), "acc": _zeros(b, c.cols), "p": _zeros(b, c.cols),
                       "y": _zeros(b, c.cols)}
            # eᵀA reaches the checksum row a cycle before the weights leave the bottom row:
            # the checksum PEs take the bottom PEs' i_b and register the product.
            self.s_delay = _zeros(c.rows)
            self.check = self.shift = False
            self.shift_count = 0

    @property
    def drain_cycles(self):
        return drain_cycles(self.config)

    def step(self, inp):
        c, b = self.config, self.batch
        rows, cols, aw = c.rows, c.cols, c.acc_width
        ready = self.state == self.COMPUTE
        accept = bool(inp["ab_valid"]) and ready
        drain = self.state == self.DRAIN
        o_last = drain and self.count == 0
        pe = self.pe
        out = {
            "ab_ready": ready, "busy": not ready, "o_valid": drain,
            "o_c": pe["acc"][:, rows - 1],
            "o_row": self.count & ((1 << (rows - 1).bit_length()) - 1),
            "o_last": o_last,
        }
        a_in = self._operands(inp, "a", accept, rows)
        b_in = self._operands(inp, "b", accept, cols)

        i_a = torch.cat([self.a_skew.out(a_in).expand(b, rows)[..., None], pe["a"][..., :-1]],
                        dim=2)
        i_b = torch.cat([self.b_skew.out(b_in).expand(b, cols)[:, None], pe["b"][:, :-1]], dim=1)
        i_c = (torch.cat([pe["acc"].new_zeros(b, 1, cols), pe["acc"][:, :-1]], dim=1) if drain
               else None)
        nxt = dict(zip(("a", "b", "acc"), os_pe_next(i_a, i_b, i_c, drain, pe["acc"], aw)))
        nxt_ck = {}
        if self.abft:
            ck = self.ck
            d, d_valid = ck["y"][:, 0], self.shift
            d_end = self.shift and self.shift_count == cols - 1
            out.update(o_d=d, o_d_valid=d_valid)
            s_in = self.s_delay[..., rows - 2:rows - 1] if rows > 1 else a_in.sum(-1)[..., None]
            ck_i_a = torch.cat([s_in.expand(b, 1), ck["a"][:, :-1]], dim=1)
            _, _, ck_acc, ck_p = os_pe_pipelined_next(
                ck_i_a, i_b[:, rows - 1], _zeros(b, cols), self.check, ck["acc"], ck["p"], aw)
            if drain:
                y = wrap(ck["y"] + pe["acc"][:, rows - 1], aw)
            elif self.check:
                y = wrap(ck["y"] - ck["acc"], aw)
            elif self.shift:
                y = torch.cat([ck["y"][:, 1:], _zeros(b, 1)], dim=1)
            else:
                y = ck["y"]
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
        if rst:
            self.reset()
        else:
            self.pe = nxt
            self.state, self.count = state, count
            self.a_skew.push(a_in)
            self.b_skew.push(b_in)
            if self.abft:
                self.ck = nxt_ck
                self.s_delay = _shift_in(a_in.sum(-1), self.s_delay)
                if self.check:
                    self.shift, self.shift_count = True, 0
                elif self.shift:
                    self.shift = self.shift_count != cols - 1
                    self.shift_count += 1
                self.check = o_last
        self.cycle += 1
        return self._outputs(out)


_MODELS = {Dataflow.WS: WSArrayModel, Dataflow.OS: OSArrayModel}


def drain_cycles(config):
    """Idle cycles :meth:`_ArrayModel.run` plays after a program: until the last result (and,
    with ABFT, the last decision) has left the array."""
    c, abft = config, config.abft is not Abft.NONE
    if c.dataflow is Dataflow.WS:
        return c.latency + 1 + (DECISION_LATENCY + 3 if abft else 0)
    return 2 * c.rows + c.cols + (c.cols + DECISION_LATENCY + 2 if abft else 0)


def ArrayModel(config, faults=()):
    """Build the cycle model for ``config``'s dataflow."""
    return _MODELS[config.dataflow](config, faults)


def BatchedArrayModel(config, faults_per_trial):
    """Build the cycle model of ``len(faults_per_trial)`` independent trials of one program,
    trial ``i`` with the fault list ``faults_per_trial[i]``.

    Outputs per cycle are those of :func:`ArrayModel`: control outputs (``*_ready``, ``busy``,
    ``o_valid``, ``o_row``, ``o_last``, ``o_d_valid``, ``o_done``) as Python values shared by
    all trials, every other output as an int64 tensor whose first dimension is the trial
    (``o_c``: trials x cols; read-only, some are shared between cycles). :func:`unbatch`
    extracts one trial's outputs.

    Memory: the PE registers take 12 bytes per PE per trial (16 above ``acc_width`` 32), the
    WS output alignment ring ``4 * (cols - 1)`` bytes per column per trial, and a cycle's
    temporaries about as much again as the registers; a trace keeps ``o_c`` (8 bytes per column
    per trial) every cycle. At 16x16 and 1024 trials that is 3 MB of PE registers; at 64x64,
    48 MB, and a one-tile program's 256-cycle trace 128 MB: step a large batch and keep only
    the outputs needed rather than the whole trace.

    Raises
    ------
    ValueError
        If a fault names no register of ``config``, or ``faults_per_trial`` is empty, or (with
        ABFT) the statistical unit's MSD is wider than 63 bits.
    """
    return _MODELS[config.dataflow](config, faults_per_trial, batched=True)


def unbatch(out, trial):
    """Return trial ``trial``'s outputs of one cycle of a :func:`BatchedArrayModel`, as the
    unbatched model returns them (Python ints and lists)."""
    return {k: (v if not isinstance(v, torch.Tensor) else
                int(v[trial]) if v.dim() == 1 else v[trial].tolist()) for k, v in out.items()}
