"""Stimulus programs and the reactive driver that plays them, shared by the golden model and the
cocotb testbench so both see exactly the same inputs on every cycle.

A program is a list of operations:

* ``("load", W)``: push the ``rows`` x ``cols`` weight tile on ``i_w`` (WS only);
* ``("stream", X, gap[, every])``: push the rows of ``X`` (M x ``rows``) on ``i_a``, with
  ``gap`` idle cycles after each, ``last`` on the final row (on every row if ``every``: each
  vector is then a checked tile of its own) (WS only);
* ``("tile", A, B, gap, last)``: push the K beats of ``A`` (``rows`` x K) and ``B``
  (K x ``cols``) on ``i_ab``, ``last`` on the final beat unless ``last`` is false (OS only);
* ``("idle", n)``: drive nothing for ``n`` cycles;
* ``("reset", n)``: hold ``rst`` high for ``n`` cycles;
* ``("params", set, StatParams)``: write a statistical-unit parameter set (one cycle);
* ``("select", set)``: select the parameter set of the following tiles (one idle cycle).

A beat is held (``valid`` high) until it is accepted, as a stream source must.

For :func:`golden.array.BatchedArrayModel`, the operand tensors of ``load``, ``stream`` and
``tile`` may carry a leading trial dimension (one operand set per trial, see :func:`stack`);
the driver then offers tensors of one lane vector per trial instead of lists.
"""
import torch

from hw.config import Dataflow
from hw.facts import DECISION_LATENCY


def _lanes(vec):
    """One beat's lanes: a list, or a tensor of one vector per trial."""
    return vec.tolist() if vec.dim() == 1 else vec


def stack(programs):
    """Merge programs that differ only in their operands (one per trial) into one program for
    :func:`golden.array.BatchedArrayModel`: each operand tensor gains a leading trial
    dimension."""
    first = programs[0]
    if any(len(p) != len(first) or [op[0] for op in p] != [op[0] for op in first]
           for p in programs):
        raise ValueError("programs to stack must have the same operations")
    merged = []
    for ops in zip(*programs):
        kind, n = ops[0][0], {"load": 2, "stream": 2, "tile": 3}.get(ops[0][0], 1)
        if any(op[n:] != ops[0][n:] for op in ops):
            raise ValueError(f"programs to stack differ in a {kind!r} operation's parameters")
        tensors = [torch.stack([torch.as_tensor(op[i]) for op in ops]) for i in range(1, n)]
        merged.append((kind, *tensors, *ops[0][n:]))
    return merged


class Driver:
    """Play a program cycle by cycle: :meth:`inputs` gives this cycle's inputs, :meth:`update`
    takes this cycle's outputs (the ``*_ready`` flags) and advances."""

    def __init__(self, config, program):
        self.config = config
        self._items = list(self._expand(program))
        self._pos = 0
        self._sel = 0

    def _expand(self, program):
        c = self.config
        ws = c.dataflow is Dataflow.WS
        for op in program:
            kind = op[0]
            if kind == "load" and ws:
                w = torch.as_tensor(op[1])
                if tuple(w.shape[-2:]) != (c.rows, c.cols):
                    raise ValueError(f"weight tile must be {c.rows}x{c.cols}, not "
                                     f"{tuple(w.shape)}")
                for r in range(c.rows):
                    yield ("w", _lanes(w[..., r, :]))
            elif kind == "stream" and ws:
                x, gap = torch.as_tensor(op[1]), op[2] if len(op) > 2 else 0
                every = len(op) > 3 and op[3]
                m = x.shape[-2]
                for i in range(m):
                    yield ("a", _lanes(x[..., i, :]), int(every or i == m - 1))
                    for _ in range(gap):
                        yield ("idle",)
            elif kind == "tile" and not ws:
                a, b = torch.as_tensor(op[1]), torch.as_tensor(op[2])
                gap = op[3] if len(op) > 3 else 0
                last = op[4] if len(op) > 4 else True
                k = a.shape[-1]
                for i in range(k):
                    yield ("ab", _lanes(a[..., i]), _lanes(b[..., i, :]),
                           int(last and i == k - 1))
                    for _ in range(gap):
                        yield ("idle",)
            elif kind == "idle":
                yield from [("idle",)] * op[1]
            elif kind == "reset":
                yield from [("rst",)] * op[1]
            elif kind == "params":
                yield ("cfg", op[1], op[2])
            elif kind == "select":
                yield ("sel", op[1])
            else:
                raise ValueError(f"operation {kind!r} does not apply to a {c.dataflow} array")

    @property
    def done(self):
        return self._pos >= len(self._items)

    def inputs(self):
        c = self.config
        item = self._items[self._pos] if not self.done else ("idle",)
        if c.dataflow is Dataflow.WS:
            inp = {"rst": 0, "w_valid": 0, "w": [0] * c.cols, "a_valid": 0, "a": [0] * c.rows,
                   "a_last": 0}
            if item[0] == "w":
                inp.update(w_valid=1, w=item[1])
            elif item[0] == "a":
                inp.update(a_valid=1, a=item[1], a_last=item[2])
        else:
            inp = {"rst": 0, "ab_valid": 0, "a": [0] * c.rows, "b": [0] * c.cols, "last": 0}
            if item[0] == "ab":
                inp.update(ab_valid=1, a=item[1], b=item[2], last=item[3])
        if item[0] == "rst":
            inp["rst"] = 1
        if item[0] == "sel":
            self._sel = item[1]
        inp["sel"] = self._sel
        inp["cfg"] = (item[1], item[2]) if item[0] == "cfg" else None
        return inp

    def update(self, out):
        if self.done:
            return
        kind = self._items[self._pos][0]
        ready = {"w": "w_ready", "a": "a_ready", "ab": "ab_ready"}.get(kind)
        if ready is None or out[ready]:
            self._pos += 1
            return kind if ready else None
        return None


class RecoveryDriver(Driver):
    """The recovery loop of ABFT: play a list of tiles (each a program); whenever the
    statistical unit decides a tile (``o_done``) with ``o_recompute``, queue that tile again.
    Decisions arrive in tile order, so the ``i``-th decision belongs to the ``i``-th tile run.
    :attr:`runs` lists the tile index of every run, in order."""

    def __init__(self, config, tiles):
        self._tiles = [list(t) for t in tiles]
        super().__init__(config, [op for t in self._tiles for op in t])
        self.runs = list(range(len(self._tiles)))
        self._decided = 0

    def update(self, out):
        accepted = super().update(out)
        if out.get("o_done"):
            tile = self.runs[self._decided]
            self._decided += 1
            if out["o_recompute"]:
                self._items.extend(self._expand(self._tiles[tile]))
                self.runs.append(tile)
        return accepted


def accept_cycles(config, program):
    """Return ``[(kind, cycle), ...]``: the cycle in which each beat of ``program`` is accepted
    (``kind`` is ``"w"``, ``"a"`` or ``"ab"``). Faults do not change handshakes, so this
    schedules faults into a program's beats."""
    from .array import ArrayModel
    model, driver = ArrayModel(config), Driver(config, program)
    cycles, cycle = [], 0
    while not driver.done:
        accepted = driver.update(model.step(driver.inputs()))
        if accepted:
            cycles.append((accepted, cycle))
        cycle += 1
    return cycles


def collect(config, trace):
    """Gather the output vectors of a trace: a list of lists (WS: one per vector; OS: the rows
    of each tile in C order, i.e. re-ordered from the bottom-first drain)."""
    results, tile = [], {}
    for out in trace:
        if not out["o_valid"]:
            continue
        if config.dataflow is Dataflow.WS:
            results.append(out["o_c"])
        else:
            tile[out["o_row"]] = out["o_c"]
            if out["o_last"]:
                results.extend(tile[r] for r in range(config.rows))
                tile = {}
    return results


def expected(config, program):
    """Return the results the program's operations after its last reset should produce (the
    transaction-level oracle: int64 products wrapped to ``acc_width``)."""
    from .array import matmul
    last_reset = max((i for i, op in enumerate(program) if op[0] == "reset"), default=-1)
    results, weights = [], None
    for op in program[last_reset + 1:]:
        if op[0] == "load":
            weights = torch.as_tensor(op[1])
        elif op[0] == "stream":
            results.extend(matmul(torch.as_tensor(op[1]), weights, config).tolist())
        elif op[0] == "tile" and (len(op) <= 4 or op[4]):
            results.extend(matmul(torch.as_tensor(op[1]), torch.as_tensor(op[2]),
                                  config).tolist())
    return results


def decisions(trace):
    """Every tile's decision in ``trace`` with its checksum differences ``d`` (those the unit
    took in up to :data:`hw.facts.DECISION_LATENCY` cycles before the decision)."""
    ds = [(t, o["o_d"]) for t, o in enumerate(trace) if o["o_d_valid"]]
    out, first = [], 0
    for t in (t for t, o in enumerate(trace) if o["o_done"]):
        o, last = trace[t], t - DECISION_LATENCY
        out.append({"tile": len(out), "d": [d for c, d in ds if first <= c <= last],
                    "mismatch": bool(o["o_mismatch"]), "msd": o["o_msd"],
                    "theta_log2": o["o_theta"] / 16, "freq_eff": o["o_freq_eff"],
                    "classic": bool(o["o_flags"] & 1), "approx": bool(o["o_flags"] & 2),
                    "realm": bool(o["o_flags"] & 4), "recompute": bool(o["o_recompute"])})
        first = last + 1
    return out
