"""Zero-delay, cycle-based gate-level simulation of a mapped netlist (Yosys ``write_json``
after :func:`synth.flow.synthesize`), bit-parallel over many independent *lanes*, with a toggle
counter on every net.

Model and contract:

* One clock domain: every flip-flop is a rising-edge ``DFFPOSX1``-like Liberty cell (``ff``
  group without clear/preset) clocked by the same top-level input port (``clk``); that port is
  not driven by the user. Latches, tri-states, falling-edge and asynchronous set/reset flops
  are rejected with the cell's name. Resets are synchronous logic through ordinary inputs.
* Flip-flops start from the netlist's ``init`` attributes (``x`` and missing read as 0).
* :meth:`Simulator.step` applies one clock period's inputs, settles the combinational logic
  (levelized, each gate evaluated once: zero delay, so glitches do not exist), returns the
  outputs of that period (before the edge, as :meth:`golden.array.ArrayModel.step` does),
  counts the nets whose settled value changed since the previous period, then performs the
  edge. After ``T`` steps a flop output has been compared ``T`` times, the first time against
  the settled state the simulator starts from (initial flops, inputs 0).
* Lane ``l`` lives in bit ``l % 64`` of word ``l // 64`` of every net; lanes never interact.
  :attr:`Simulator.toggles` sums over lanes; with ``lane_toggles=True`` the per-lane counts are
  kept too (costlier: one byte per net and lane per step).

Nets are dense indices: 0 and 1 are the constants, then input-port bits, flop outputs, and gate
outputs in evaluation order. Undriven bits read as 0 (their count is :attr:`Netlist.undriven`).
"""
import collections
import dataclasses
import json
import pathlib

import numpy as np

from . import liberty as lib_mod

_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


@dataclasses.dataclass(frozen=True)
class Port:
    name: str
    direction: str
    #: Net index of each bit, least significant first.
    bits: np.ndarray
    signed: bool

    @property
    def width(self):
        return len(self.bits)


@dataclasses.dataclass
class _Group:
    """Gates of one level that compute the same function: ``out = f(inputs)``."""

    code: object
    inputs: list
    start: int
    stop: int


def _expr(tree, names):
    op = tree[0]
    if op == "var":
        return f"x{names.index(tree[1])}"
    if op == "const":
        return "ONES" if tree[1] else "ZERO"
    if op == "not":
        return f"(~{_expr(tree[1], names)})"
    sym = {"and": "&", "or": "|", "xor": "^"}[op]
    return f"({_expr(tree[1], names)} {sym} {_expr(tree[2], names)})"


class Netlist:
    """A flat mapped netlist, levelized for :class:`Simulator`.

    Members
    -------
    ports : dict[str, Port]
    cells : list[tuple[str, str, dict[str, int]]]
        ``(instance, cell type, {pin: net})`` for every cell.
    n_nets : int
    clock : str or None
        The clock port (``None`` for a purely combinational netlist).
    library : synth.liberty.Library
    """

    def __init__(self, module, top, library):
        self.top, self.library = top, library
        ids = {"0": 0, "1": 1, "x": 0, "z": 0}  # yosys bit -> provisional index

        def net(bit):
            if bit not in ids:
                ids[bit] = len(ids) - 2
            return ids[bit]

        self.cells, flops, gates = [], [], []
        clocks = set()
        for inst, c in module["cells"].items():
            ctype = c["type"]
            if ctype.startswith("$scopeinfo"):
                continue
            if ctype.startswith("$"):
                raise ValueError(f"cell {inst} is an unmapped Yosys cell {ctype}")
            cell = library[ctype]
            if cell.unsupported:
                raise ValueError(f"cell {inst} ({ctype}) is {cell.unsupported}: not simulated")
            conn = {p: net(bits[0]) for p, bits in c["connections"].items()}
            self.cells.append((inst, ctype, conn))
            if cell.flop:
                d_tree = lib_mod.parse_function(cell.flop.next_state)
                if d_tree[0] != "var":
                    raise ValueError(f"cell {ctype}: next_state {cell.flop.next_state!r} is not "
                                     f"a single pin")
                clocks.add(conn[cell.flop.clock])
                for p in cell.outputs:
                    if p.function != cell.flop.state:
                        raise ValueError(f"cell {ctype}: output {p.name} is not the flop state")
                    flops.append((conn[d_tree[1]], conn[p.name]))
                continue
            for p in cell.outputs:
                tree = p.tree
                names = lib_mod.variables(tree)
                gates.append((_expr(tree, names), [conn[n] for n in names], conn[p.name]))

        ports = {name: (p["direction"], [net(b) for b in p["bits"]], bool(p.get("signed")))
                 for name, p in module["ports"].items()}
        if len(clocks) > 1:
            raise ValueError(f"{len(clocks)} clock nets: only one clock domain is simulated")
        clock_net = next(iter(clocks), None)
        self.clock = None
        for name, (d, bits, _) in ports.items():
            if clock_net is not None and bits == [clock_net]:
                self.clock = name
        if clock_net is not None and self.clock is None:
            raise ValueError("the flip-flops' clock is not a top-level input port")
        self._order(ports, flops, gates, module.get("netnames", {}), ids)

    def _order(self, ports, flops, gates, netnames, ids):
        """Renumber nets (constants, inputs, flop outputs, gates by level) and group gates."""
        new = {0: 0, 1: 1}
        for name, (d, bits, _) in ports.items():
            if d == "input":
                for b in bits:
                    new.setdefault(b, len(new))
        self.flop_base = len(new)
        for _, q in flops:
            if q in new:
                raise ValueError(f"net {q} has two drivers")
            new[q] = len(new)
        self.gate_base = len(new)
        # Levelize (Kahn): a gate's level is one more than its deepest input's.
        driver = {}
        for k, (_, _, out) in enumerate(gates):
            if out in driver or out in new:
                raise ValueError(f"net {out} has two drivers")
            driver[out] = k
        level = [0] * len(gates)
        waiting = [sum(1 for i in ins if i in driver) for _, ins, _ in gates]
        users = collections.defaultdict(list)
        for k, (_, ins, _) in enumerate(gates):
            for i in ins:
                if i in driver:
                    users[i].append(k)
        ready = [k for k, w in enumerate(waiting) if w == 0]
        done = 0
        while ready:
            k = ready.pop()
            done += 1
            for u in users[gates[k][2]]:
                level[u] = max(level[u], level[k] + 1)
                waiting[u] -= 1
                if waiting[u] == 0:
                    ready.append(u)
        if done != len(gates):
            raise ValueError(f"combinational loop through {len(gates) - done} gates")
        by_group = collections.defaultdict(list)
        for k, (code, _, _) in enumerate(gates):
            by_group[(level[k], code)].append(k)
        order = sorted(by_group, key=lambda key: key[0])
        for key in order:
            for k in by_group[key]:
                new[gates[k][2]] = len(new)
        # Bits nobody drives (not inputs, flops, gates or constants) read as constant 0.
        self.undriven = 0
        for b in ids.values():
            if b not in new:
                new[b] = 0
                self.undriven += 1
        self.n_nets = len(set(new.values()))

        self.groups = []
        for key in order:
            ks = by_group[key]
            code = compile(f"lambda {', '.join(f'x{i}' for i in range(len(gates[ks[0]][1])))}"
                           f": {key[1]}", "<gate>", "eval")
            fn = eval(code, {"ONES": _ONES, "ZERO": np.uint64(0)})
            ins = [np.array([new[gates[k][1][i]] for k in ks], dtype=np.intp)
                   for i in range(len(gates[ks[0]][1]))]
            self.groups.append(_Group(fn, ins, new[gates[ks[0]][2]], new[gates[ks[-1]][2]] + 1))
        self.levels = max(level, default=0) + (1 if gates else 0)
        self.flop_d = np.array([new[d] for d, _ in flops], dtype=np.intp)
        self.flop_q = slice(self.flop_base, self.flop_base + len(flops))
        self.flop_init = np.zeros(len(flops), dtype=bool)
        q_pos = {new[q]: k for k, (_, q) in enumerate(flops)}
        for wire in netnames.values():
            init = wire.get("attributes", {}).get("init")
            if not isinstance(init, str):
                continue
            for bit, v in zip(wire["bits"], reversed(init)):
                k = q_pos.get(new.get(ids.get(bit, -1), -1)) if isinstance(bit, int) else None
                if k is not None and v == "1":
                    self.flop_init[k] = True
        self.ports = {name: Port(name, d, np.array([new[b] for b in bits], dtype=np.intp), s)
                      for name, (d, bits, s) in ports.items()}
        self.cells = [(inst, t, {p: new[n] for p, n in conn.items()})
                      for inst, t, conn in self.cells]
        self.names = {}
        for name, wire in netnames.items():
            if not wire.get("hide_name"):
                self.names[name] = np.array([new.get(ids.get(b, 0), 0) if isinstance(b, int)
                                             else ids[b] for b in wire["bits"]], dtype=np.intp)

    @property
    def n_flops(self):
        return len(self.flop_d)

    @classmethod
    def load(cls, netlist, top, library):
        """Read a Yosys JSON netlist (a path or the parsed dict); ``library`` is a
        :class:`synth.liberty.Library` or the path of a Liberty file."""
        if not isinstance(netlist, dict):
            netlist = json.loads(pathlib.Path(netlist).read_text())
        if not isinstance(library, lib_mod.Library):
            library = lib_mod.load(library)
        if top not in netlist["modules"]:
            raise ValueError(f"module {top!r} is not in the netlist (has "
                             f"{', '.join(sorted(netlist['modules']))})")
        return cls(netlist["modules"][top], top, library)


def _to_planes(values, width, lanes, words):
    """Pack per-lane integers (two's complement, any sign) into ``(width, words)`` bit planes."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.broadcast_to(arr, (lanes,))
    if arr.shape != (lanes,):
        raise ValueError(f"expected {lanes} lane values, got shape {arr.shape}")
    if width <= 64 and arr.dtype != object:
        u = arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else \
            arr.astype(np.uint64)
        bits = ((u[None, :] >> np.arange(width, dtype=np.uint64)[:, None]) & np.uint64(1))
        bits = bits.astype(np.uint8)
    else:
        mask, nbytes = (1 << width) - 1, (width + 7) // 8
        raw = b"".join((int(v) & mask).to_bytes(nbytes, "little") for v in arr)
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8).reshape(lanes, nbytes),
                             axis=1, bitorder="little")[:, :width].T
    packed = np.packbits(bits, axis=1, bitorder="little")
    out = np.zeros((width, words * 8), dtype=np.uint8)
    out[:, :packed.shape[1]] = packed
    return out.view(np.uint64)


def _from_planes(planes, lanes, signed):
    """Unpack ``(width, words)`` bit planes into per-lane integers (int64 up to 63 bits, or
    64 unsigned bits as uint64; wider ports as Python ints in an object array)."""
    width = planes.shape[0]
    bits = np.unpackbits(np.ascontiguousarray(planes).view(np.uint8), axis=1,
                         bitorder="little")[:, :lanes]
    if width == 0:
        return np.zeros(lanes, dtype=np.int64)
    if width <= 64:
        v = (bits.astype(np.uint64) << np.arange(width, dtype=np.uint64)[:, None]).sum(
            axis=0, dtype=np.uint64)
        if width == 64:
            return v.view(np.int64) if signed else v
        v = v.astype(np.int64)
        return v - ((v >> (width - 1)) << width) if signed else v
    raw = np.packbits(bits.T, axis=1, bitorder="little")
    out = np.empty(lanes, dtype=object)
    for lane in range(lanes):
        v = int.from_bytes(raw[lane].tobytes(), "little")
        out[lane] = v - (1 << width) if signed and v >> (width - 1) else v
    return out


class Simulator:
    """Simulate ``lanes`` independent copies of a :class:`Netlist`.

    Inputs take any integers (masked to the port width, so negative values are two's
    complement). Outputs are read unsigned, except the ports Yosys marks signed and those named
    in ``signed`` (Amaranth's Verilog declares every port unsigned).

    Members
    -------
    toggles : numpy.ndarray
        Per net (index as in the netlist), the number of 0<->1 changes of its settled value
        between consecutive steps, summed over lanes (int64).
    lane_toggles : numpy.ndarray or None
        ``(n_nets, lanes)`` per-lane counts, if asked for.
    cycles : int
        Steps counted since construction or :meth:`clear_counts`.
    """

    def __init__(self, netlist, lanes=1, lane_toggles=False, signed=()):
        unknown = sorted(set(signed) - set(netlist.ports))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a port of {netlist.top}")
        self._signed = {n for n, p in netlist.ports.items() if p.signed or n in signed}
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        self.netlist, self.lanes = netlist, lanes
        self.words = (lanes + 63) // 64
        n = netlist.n_nets
        self.values = np.zeros((n, self.words), dtype=np.uint64)
        self.values[1] = _ONES
        self.lane_mask = np.zeros(self.words, dtype=np.uint64)
        for w in range(self.words):
            k = min(64, lanes - 64 * w)
            self.lane_mask[w] = _ONES if k == 64 else np.uint64((1 << k) - 1)
        self.values[netlist.flop_q] = np.where(netlist.flop_init[:, None], _ONES, np.uint64(0))
        self._settle()
        self._prev = self.values.copy()
        self._diff = np.empty_like(self.values)
        self._lane_toggles = lane_toggles
        self.clear_counts()

    def clear_counts(self):
        """Zero the toggle counters and the cycle count."""
        self.toggles = np.zeros(self.netlist.n_nets, dtype=np.int64)
        self.lane_toggles = (np.zeros((self.netlist.n_nets, self.lanes), dtype=np.int64)
                             if self._lane_toggles else None)
        self.cycles = 0

    def _settle(self):
        v = self.values
        for g in self.netlist.groups:
            v[g.start:g.stop] = g.code(*(v[i] for i in g.inputs))

    def set_inputs(self, inputs):
        """Drive input ports (port name -> per-lane integers, or one integer for all lanes);
        ports not named keep their previous value."""
        nl = self.netlist
        for name, value in inputs.items():
            port = nl.ports.get(name)
            if port is None or port.direction != "input":
                raise ValueError(f"{name!r} is not an input port of {nl.top}")
            if name == nl.clock:
                raise ValueError(f"{name!r} is the clock: the simulator drives it")
            self.values[port.bits] = _to_planes(value, port.width, self.lanes, self.words)

    def output(self, name):
        """The settled value of port ``name`` per lane (two's complement if signed)."""
        port = self.netlist.ports[name]
        return _from_planes(self.values[port.bits], self.lanes, name in self._signed)

    def step(self, inputs=None):
        """Play one clock period: drive ``inputs``, settle, count toggles, return every output
        port's value (per lane) in this period, then clock the flops."""
        nl = self.netlist
        if inputs:
            self.set_inputs(inputs)
        self._settle()
        np.bitwise_xor(self.values, self._prev, out=self._diff)
        self._diff &= self.lane_mask
        self.toggles += np.bitwise_count(self._diff).sum(axis=1, dtype=np.int64)
        if self.lane_toggles is not None:
            self.lane_toggles += np.unpackbits(self._diff.view(np.uint8), axis=1,
                                               bitorder="little")[:, :self.lanes]
        np.copyto(self._prev, self.values)
        out = {name: self.output(name) for name, p in nl.ports.items()
               if p.direction == "output"}
        self.values[nl.flop_q] = self.values[nl.flop_d]
        self.cycles += 1
        return out
