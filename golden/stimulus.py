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


def _operation(config, op):
    """``op`` with its defaults filled in and its operands as tensors: ``("load", W)``,
    ``("stream", X, gap, every)``, ``("tile", A, B, gap, last)``, or ``op`` itself; a
    ``ValueError`` if it does not apply to ``config``'s array or its operands do not fit."""
    c, ws, kind = config, config.dataflow is Dataflow.WS, op[0]
    if kind == "load" and ws:
        w = torch.as_tensor(op[1])
        if tuple(w.shape[-2:]) != (c.rows, c.cols):
            raise ValueError(f"weight tile must be {c.rows}x{c.cols}, not {tuple(w.shape)}")
        return ("load", w)
    if kind == "stream" and ws:
        return ("stream", torch.as_tensor(op[1]), op[2] if len(op) > 2 else 0,
                bool(len(op) > 3 and op[3]))
    if kind == "tile" and not ws:
        a, b = torch.as_tensor(op[1]), torch.as_tensor(op[2])
        if b.shape[-2] != a.shape[-1]:
            raise ValueError(f"tile: A has {a.shape[-1]} columns but B has {b.shape[-2]} rows")
        return ("tile", a, b, op[3] if len(op) > 3 else 0, bool(op[4]) if len(op) > 4 else True)
    if kind in ("idle", "reset", "params", "select"):
        return tuple(op)
    raise ValueError(f"operation {kind!r} does not apply to a {c.dataflow} array")


class Driver:
    """Play a program cycle by cycle: :meth:`inputs` gives this cycle's inputs, :meth:`update`
    takes this cycle's outputs (the ``*_ready`` flags) and advances."""

    #: The output flag that accepts each kind of beat; other items last one cycle.
    READY = {"w": "w_ready", "a": "a_ready", "ab": "ab_ready"}

    def __init__(self, config, program):
        self.config = config
        self._items = list(self._expand(program))
        self._pos = 0
        self._sel = 0

    def _expand(self, program):
        for op in program:
            op = _operation(self.config, op)
            kind = op[0]
            if kind == "load":
                w = op[1]
                for r in range(w.shape[-2]):
                    yield ("w", _lanes(w[..., r, :]))
            elif kind == "stream":
                _, x, gap, every = op
                m = x.shape[-2]
                for i in range(m):
                    yield ("a", _lanes(x[..., i, :]), int(every or i == m - 1))
                    for _ in range(gap):
                        yield ("idle",)
            elif kind == "tile":
                _, a, b, gap, last = op
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
            else:
                yield ("sel", op[1])

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
        ready = self.READY.get(kind)
        if ready is None or out[ready]:
            self._pos += 1
            return kind if ready else None
        return None


def input_table(config, program):
    """The inputs :meth:`Driver.inputs` gives for each item of ``program``, all at once, for a
    simulator that plays the handshake itself (a beat is one item however long it waits).

    Returns a dict with the keys of :meth:`Driver.inputs`, each an int64 array with one row
    per item (``a``, ``b`` and ``w`` one column per lane) and a last row for the idle inputs
    once the program is done; except ``cfg``: ``{row: (set, params)}`` of the rows that write
    a parameter set. ``ready`` lists the flag (a value of :attr:`Driver.READY`) that accepts
    each row's item, None for an item that lasts one cycle. Built operation by operation
    (``tb/test_fastsim.py`` holds it to :class:`Driver`, row by row)."""
    import numpy as np
    c, ws = config, config.dataflow is Dataflow.WS
    ops = [_operation(c, op) for op in program]

    def length(op):
        if op[0] == "load":
            return c.rows
        if op[0] == "stream":
            return len(op[1]) * (1 + op[2])
        if op[0] == "tile":
            return op[1].shape[1] * (1 + op[3])
        return op[1] if op[0] in ("idle", "reset") else 1
    n = sum(length(op) for op in ops) + 1

    def zeros(lanes=None):
        return np.zeros((n, lanes) if lanes else n, dtype=np.int64)
    table = {"rst": zeros()}
    if ws:
        table.update(w_valid=zeros(), w=zeros(c.cols), a_valid=zeros(), a=zeros(c.rows),
                     a_last=zeros())
    else:
        table.update(ab_valid=zeros(), a=zeros(c.rows), b=zeros(c.cols), last=zeros())
    sel = np.full(n, -1, dtype=np.int64)
    cfg, ready = {}, [None] * n
    at = 0
    for op in ops:
        kind, size = op[0], length(op)
        if kind == "load":
            table["w_valid"][at:at + size] = 1
            table["w"][at:at + size] = op[1].numpy()
            ready[at:at + size] = [Driver.READY["w"]] * size
        elif kind in ("stream", "tile"):
            gap = op[2] if kind == "stream" else op[3]
            beats = slice(at, at + size, 1 + gap)
            count = size // (1 + gap)
            ready[beats] = [Driver.READY["a" if ws else "ab"]] * count
            if kind == "stream":
                table["a_valid"][beats] = 1
                table["a"][beats] = op[1].numpy()
                table["a_last"][beats] = 1 if op[3] else 0
                if count:
                    table["a_last"][at + size - 1 - gap] = 1
            else:
                table["ab_valid"][beats] = 1
                table["a"][beats] = op[1].T.numpy()
                table["b"][beats] = op[2].numpy()
                if count and op[4]:
                    table["last"][at + size - 1 - gap] = 1
        elif kind == "reset":
            table["rst"][at:at + size] = 1
        elif kind == "params":
            cfg[at] = (op[1], op[2])
        elif kind == "select":
            sel[at] = op[1]
        at += size
    # The selected set holds from its "select" on (0 before any).
    latest = np.maximum.accumulate(np.where(sel >= 0, np.arange(n), -1))
    table["sel"] = np.where(latest >= 0, sel[np.maximum(latest, 0)], 0)
    table["cfg"], table["ready"] = cfg, ready
    return table


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


def check_results(config, program, results):
    """Require ``results`` (the outputs a run of ``program`` produced, in order) to be exactly
    what the int64 oracle says: everything after the program's last reset, preceded by at most
    a prefix of what the operations before that reset produce (those that completed before it
    came). Nothing else may come out, before or after."""
    resets = [i for i, op in enumerate(program) if op[0] == "reset"]
    after = expected(config, program)
    before = expected(config, program[:resets[-1]]) if resets else []
    n = len(results) - len(after)
    assert after, "program produced nothing to check"
    assert 0 <= n <= len(before), (f"{len(results)} results where the oracle allows "
                                   f"{len(after)} to {len(after) + len(before)}")
    assert results[n:] == after, "results differ from the int64 oracle"
    assert results[:n] == before[:n], "results before the reset differ from the int64 oracle"
