"""The fast path's (:mod:`realm.rtl.fastsim`) side of its C++ harness, in Python: where each
port sits in the harness's records and output words (:class:`_Layout`, from
:func:`port_list`), the encoding of a program into those records (:func:`encode_program`) and
the decoding of the output words into the per-cycle output dicts (:func:`decode_trace`).

Both work on whole programs and traces at once: each input port is packed for every driver
item in one NumPy operation, the fault port's changes are packed the same way, and each
output key is read for every cycle in one; only the per-cycle dicts are built one by one, each
a copy of the one before with what changed (the outputs change in few cycles but ``o_c``).
No port name is spelled here: the mapping is :mod:`golden.ports`'
(:func:`~golden.ports.input_fields`, :func:`~golden.ports.input_ports`,
:func:`~golden.ports.fault_ports`, :func:`~golden.ports.output_fields`).
"""
import contextlib
import functools
import gc

import numpy as np

from golden.ports import active_fault, fault_ports, idle_inputs, input_ports, output_fields
from golden.stimulus import Driver

__all__ = ["FastSimError", "port_list", "encode_program", "decode_trace"]

#: First word of an encoded program.
MAGIC = 0x4D4C4552
#: Clock cycles of reset before the program (as :meth:`realm.rtl.common.ArrayTB.start`).
RESET_CYCLES = 2


class FastSimError(RuntimeError):
    """The harness could not be built, run or read back; the message is one line."""


@functools.lru_cache(maxsize=None)
def port_list(config):
    """``(inputs, outputs)``: the Verilog ports of ``config``'s array as ``(name, width)``, in
    signature order (``rst`` first; ``clk`` left out). Zero-width ports, which vanish in
    Verilog, are left out."""
    from amaranth.hdl import ValueCastable
    from amaranth.lib.wiring import Flow

    from hw.array import SystolicArray
    dut = SystolicArray(config)
    dut._MustUse__silence = True  # built for its ports only
    inputs, outputs = [("rst", 1)], []  # the sync domain's reset, which Amaranth adds
    for path, member, value in dut.signature.flatten(dut):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if len(value):
            (inputs if member.flow is Flow.In else outputs).append(("__".join(map(str, path)),
                                                                    len(value)))
    return tuple(inputs), tuple(outputs)


def _words(width):
    return (width + 31) // 32


def _offsets(ports):
    offsets, at = {}, 0
    for name, width in ports:
        offsets[name] = at
        at += _words(width)
    return offsets, at


class _Layout:
    """Where each port sits in the harness's records (see
    :func:`realm.rtl.fastsim.harness_source`) and in its output words, and how
    :func:`decode_trace` reads each output key; one per configuration (:func:`_layout`)."""

    def __init__(self, config):
        self.inputs, self.outputs = port_list(config)
        self.index = {name: i for i, (name, _) in enumerate(self.inputs)}
        self.width = dict(self.inputs + self.outputs)
        self.in_off, self.in_words = _offsets(self.inputs)
        self.out_off, self.out_words = _offsets(self.outputs)
        self.mask_words = _words(len(self.inputs))
        self.record = 1 + self.mask_words + self.in_words
        # (key, kind, first output word, port width or None if absent, lanes) per output key,
        # kind as golden.ports.output_fields says.
        self.fields = tuple((key, kind, self.out_off.get(port), self.width.get(port), lanes)
                            for key, port, kind, lanes in output_fields(config))
        # Word 0 of an item record by the flag that accepts it (None: none, -1).
        self.accept = {key: self.out_off[port] for key, port, _, _ in output_fields(config)
                       if key in Driver.READY.values() and port in self.out_off}
        self.accept[None] = 0xFFFFFFFF
        # The reset cycles' record: the idle inputs with rst, no fault.
        reset = input_ports(config, {**idle_inputs(config), "rst": 1})
        if config.fault_port:
            reset.update(fault_ports(config, None))
        self.reset = self.records([-1], [reset])[0]
        self.reset.flags.writeable = False

    def byte(self, port):
        """Byte offset of input ``port``'s value in a record."""
        return 4 * (1 + self.mask_words + self.in_off[port])

    def write(self, rec, ports):
        """Write port values ``ports`` (by name; absent zero-width ports skipped) into record
        ``rec`` (a row of 32-bit words) and select them in its mask."""
        raw = rec.view(np.uint8)
        for name, value in ports.items():
            i = self.index.get(name)
            if i is None:
                continue
            rec[1 + i // 32] |= np.uint32(1 << (i % 32))
            n = 4 * _words(self.inputs[i][1])
            at = self.byte(name)
            raw[at:at + n] = np.frombuffer(int(value).to_bytes(n, "little"), np.uint8)

    def records(self, first, ports):
        """Records, one per dict of port values in ``ports`` (as :meth:`write` takes them), word
        0 of each from ``first``: each port packed for all the records at once."""
        recs = np.zeros((len(ports), self.record), dtype="<u4")
        recs[:, 0] = np.asarray(first, dtype=np.int64) & 0xFFFFFFFF
        raw = recs.view(np.uint8)
        for name in sorted({p for d in ports for p in d if p in self.index}, key=self.index.get):
            i, width = self.index[name], self.width[name]
            has = np.array([name in d for d in ports])
            recs[has, 1 + i // 32] |= np.uint32(1 << (i % 32))
            if width < 64:
                values = np.array([d.get(name, 0) for d in ports], dtype=np.int64)
                _pack_field(raw, self.byte(name), values, None, width, 0)
            else:  # wider than an int64
                for r in np.flatnonzero(has):
                    self.write(recs[r], {name: ports[r][name]})
        return recs


@functools.lru_cache(maxsize=None)
def _layout(config):
    """The :class:`_Layout` of ``config``, made once per process."""
    return _Layout(config)


def _pack_field(raw, at, values, lanes, width, offset):
    """OR ``values`` (int64, one row per record, ``lanes`` columns or a scalar column) into
    the records' bytes ``raw`` as ``width``-bit lanes from bit ``offset`` of the port whose
    value starts at byte ``at``."""
    n = raw.shape[0]
    v = values.reshape(n, lanes or 1)
    count = v.shape[1]
    first = at + offset // 8
    if width in (8, 16, 32, 64) and offset % 8 == 0:
        size = count * width // 8
        raw[:, first:first + size] |= np.ascontiguousarray(
            v.astype(f"<i{width // 8}")).view(np.uint8).reshape(n, size)
    elif count == 1 and offset % 8 + width <= 8:  # a few bits of one byte
        raw[:, first] |= ((v[:, 0] & ((1 << width) - 1)) << (offset % 8)).astype(np.uint8)
    elif count == 1 and width <= 56:
        shifted = (v[:, 0] & ((1 << width) - 1)).astype("<u8") << np.uint64(offset % 8)
        size = (offset % 8 + width + 7) // 8
        raw[:, first:first + size] |= shifted.view(np.uint8).reshape(n, 8)[:, :size]
    else:
        bits = (v[:, :, None] >> np.arange(width)) & 1
        bits = np.concatenate([np.zeros((n, offset % 8), np.int64),
                               bits.reshape(n, count * width)], axis=1).astype(np.uint8)
        packed = np.packbits(bits, axis=1, bitorder="little")
        raw[:, first:first + packed.shape[1]] |= packed


def _row(table, i):
    """The inputs of row ``i`` of an :func:`golden.stimulus.input_table`, as
    :meth:`golden.stimulus.Driver.inputs` gives them."""
    inp = {k: v[i].tolist() for k, v in table.items() if k not in ("cfg", "ready")}
    inp["cfg"] = table["cfg"].get(i)
    return inp


def encode_program(config, program, faults=(), tail=None):
    """Encode ``program`` (and ``faults``, on the fault port) as the harness's input (see
    :func:`realm.rtl.fastsim.harness_source`). ``tail``: idle cycles after the last item
    (default: those :meth:`golden.array.ArrayModel.run` plays). ``ValueError`` for faults
    without the fault port or two faults in one cycle."""
    from golden.array import drain_cycles
    from golden.stimulus import input_table
    lay = _layout(config)
    faults = list(faults)
    if faults and not config.fault_port:
        raise ValueError(f"faults need a configuration with the fault port, not {config.id}")
    if tail is None:
        tail = drain_cycles(config)

    with _gc_paused():
        table = input_table(config, program)
        recs = _item_records(config, lay, table)
        events = (_fault_records(config, lay, faults) if config.fault_port
                  else np.zeros((0, lay.record), dtype="<u4"))
    n = len(table["ready"])
    # Each item waits at most one OS tile's flush and drain (WS: the pipeline) for its flag.
    limit = n * (2 * config.rows + config.cols + 2) + tail + 16
    header = np.array([MAGIC, n - 1, len(events), tail, RESET_CYCLES, limit & 0xFFFFFFFF,
                       limit >> 32, lay.mask_words, lay.in_words, lay.out_words], dtype="<u4")
    out = np.empty(len(header) + (n + 1 + len(events)) * lay.record, dtype="<u4")
    out[:len(header)] = header
    body = out[len(header):].reshape(-1, lay.record)
    body[0] = recs[n - 1]  # the idle inputs
    body[1] = lay.reset
    body[2:n + 1] = recs[:n - 1]
    body[n + 1:] = events
    return out.tobytes()


def _fault_records(config, lay, faults):
    """The harness records of the fault port's changes: one at cycle 0 and at each cycle a
    fault of ``faults`` starts or ends (word 0: the cycle), writing the ports
    :func:`golden.ports.fault_ports` gives for the fault active from then on
    (:func:`golden.ports.active_fault`, whose error two faults in one cycle raise)."""
    changes = sorted({0} | {c for f in faults for c in (f.cycle, f.cycle + f.duration)})
    start = np.array([f.cycle for f in faults], dtype=np.int64)
    end = start + np.array([f.duration for f in faults], dtype=np.int64)
    at = np.array(changes, dtype=np.int64)[:, None]
    active = (start <= at) & (at < end)  # (change, fault)
    count = active.sum(axis=1)
    if (count > 1).any():
        active_fault(faults, changes[int(np.argmax(count > 1))])  # raises
    options = list(faults) + [None]  # the active fault's index in it: the last for none
    ports = {}  # per option, computed once
    rows = []
    for i in np.column_stack([active, count == 0]).argmax(axis=1).tolist():
        if i not in ports:
            ports[i] = fault_ports(config, options[i])
        rows.append(ports[i])
    return lay.records(changes, rows)


def _item_records(config, lay, table):
    """The harness records of every row of ``table`` (:func:`golden.stimulus.input_table`):
    the ports of :func:`golden.ports.input_fields` packed for all rows at once, the others
    through :func:`golden.ports.input_ports` of the rows that change them."""
    from golden.ports import input_fields
    n = len(table["ready"])
    recs = np.zeros((n, lay.record), dtype="<u4")
    raw = recs.view(np.uint8)
    # Word 0: the output word of the flag that accepts the item, or -1.
    recs[:, 0] = np.fromiter(map(lay.accept.__getitem__, table["ready"]), np.uint32, n)
    fields = input_fields(config)
    for port, port_fields in fields.items():
        if port not in lay.index:
            continue
        i = lay.index[port]
        recs[:, 1 + i // 32] |= np.uint32(1 << (i % 32))
        for key, lanes, width, offset in port_fields:
            _pack_field(raw, lay.byte(port), table[key], lanes, width, offset)
    # The ports outside input_fields (the parameter-set ports): the idle row's values in
    # every row but those that write a set.
    idle = input_ports(config, _row(table, n - 1))
    rest = np.zeros(lay.record, dtype="<u4")
    lay.write(rest, {p: v for p, v in idle.items() if p not in fields})
    recs[:, 1:] |= rest[1:]
    for i in table["cfg"]:
        lay.write(recs[i], input_ports(config, _row(table, i)))
    return recs


def _unpack_field(words, width, lanes, signed):
    """The value of a port (``words``: its 32-bit words, one row per cycle) as ``lanes``
    lanes of ``width`` bits (an (n, lanes) array), signed or not."""
    n = words.shape[0]
    if lanes == 1 and width < 64:  # a scalar in one or two words
        v = words[:, 0].astype(np.int64)
        if width > 32:
            v |= words[:, 1].astype(np.int64) << 32
        v &= (1 << width) - 1
        if signed:
            v = (v ^ (1 << (width - 1))) - (1 << (width - 1))
        return v[:, None]
    raw = np.ascontiguousarray(words).view(np.uint8)
    if width in (8, 16, 32, 64):
        size = lanes * width // 8
        kind = "i" if signed else "u"
        return np.ascontiguousarray(raw[:, :size]).view(f"<{kind}{width // 8}").reshape(n, lanes)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :lanes * width]
    bits = bits.reshape(n, lanes, width).astype(np.uint64)
    v = (bits << np.arange(width, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
    if signed:
        v = v.astype(np.int64)
        v = np.where(v >> (width - 1) & 1, v - (1 << width), v)
    return v


def _columns(lay, table):
    """``(key, values)`` per output key in :func:`golden.ports.output_fields` order: a bool or
    int64 array of one value per cycle, or an (n, lanes) array for the lane keys."""
    cycles = len(table)
    for key, kind, at, width, lanes in lay.fields:
        if at is None:  # zero-width: reads as 0
            col = np.zeros((cycles, lanes[0]) if lanes else cycles, dtype=np.int64)
        elif kind == "flag":
            col = table[:, at] != 0 if width <= 32 else (table[:, at:at + _words(width)] != 0
                                                          ).any(axis=1)
        else:
            w = table[:, at:at + _words(width)]
            if lanes:
                col = _unpack_field(w, lanes[1], lanes[0], kind == "signed lanes")
            else:
                col = _unpack_field(w, width, 1, kind == "signed")[:, 0]
        yield key, col


def decode_trace(config, table):
    """The per-cycle output dicts (as :func:`golden.ports.output_dict` gives them: every key
    in :func:`golden.ports.output_fields` order, lanes as lists) of the output words ``table``
    (:func:`realm.rtl.fastsim.simulate`). Each cycle has its own dict and lists; the ints
    are shared."""
    lay = _layout(config)
    if table.shape[1:] != (lay.out_words,):
        raise FastSimError(f"the trace has {table.shape[1:]} words per cycle, not "
                           f"{lay.out_words}")
    scalars, lists = [], []
    for key, col in _columns(lay, table):
        (lists if col.ndim == 2 else scalars).append((key, col))
    with _gc_paused():
        return _dicts(len(table), [f[0] for f in lay.fields], scalars, lists)


@contextlib.contextmanager
def _gc_paused():
    """Pause the garbage collector. Encoding and decoding make many objects, none cyclic
    (millions for a long trace): collections would pass over them and over the caller's whole
    heap (a quarter of the decoding, and the odd millisecond in encoding in ``realm bench``,
    whose heap holds cocotb's trace)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _dicts(cycles, keys, scalars, lists):
    """The per-cycle dicts of ``keys`` from ``scalars`` (``(key, array of one value per
    cycle)``) and ``lists`` (``(key, array of one row of lanes per cycle)``, at most two).
    Scalars change in few cycles: each cycle's dict is a copy of the one before with the
    scalars that changed and fresh lists."""
    if not cycles:
        return []
    # The scalars that change in each cycle (cycle 0: all), as a dict, None if none do.
    updates = [None] * cycles
    updates[0] = {key: col[:1].tolist()[0] for key, col in scalars}
    for key, col in scalars:
        at = np.flatnonzero(col[1:] != col[:-1]) + 1
        for i, value in zip(at.tolist(), col[at].tolist()):
            u = updates[i]
            if u is None:
                updates[i] = {key: value}
            else:
                u[key] = value
    if len(lists) > 2:
        raise NotImplementedError("more than two lane outputs")
    (k1, c1), (k2, c2) = (lists + [(None, None)] * 2)[:2]
    first = c1.tolist() if k1 else updates
    second = c2.tolist() if k2 else updates
    out = []
    append = out.append
    d = dict.fromkeys(keys)
    for x, y, u in zip(first, second, updates):
        d = d.copy()
        if u is not None:
            d.update(u)
        if k1:
            d[k1] = x
        if k2:
            d[k2] = y
        append(d)
    return out
