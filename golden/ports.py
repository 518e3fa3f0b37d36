"""The one mapping between the golden model's per-cycle dicts and the generated array's ports.

:class:`golden.stimulus.Driver` and :class:`golden.array.ArrayModel` speak in dicts
(``{"a": [...], "a_valid": 1, ...}`` in, ``{"o_c": [...], "o_valid": True, ...}`` out). The RTL
has Amaranth's flattened ports (``i_a__payload``, ``cfg_am1``, ``c_hist`` ...), lanes packed
lane 0 lowest. Every bench that drives the RTL goes through this module: the cocotb bench
(:class:`realm.rtl.common.ArrayTB`), the Amaranth-simulator bench (:mod:`realm.rtl.pysim`), the
gate-level
power simulation (:mod:`synth.power`) and the fast path (:mod:`realm.rtl.fastsim`, which packs and
reads all cycles at once from :func:`input_fields` and :func:`output_fields`). Each supplies
only how to set and read a port by its Verilog name; a port that is absent (zero-width ones
vanish in Verilog) is skipped when set and reads as 0.
"""
import functools

from amaranth import Shape
from amaranth.lib import data
from amaranth.lib.wiring import Flow

from hw.array import abft_signature
from hw.config import Abft, Dataflow
from hw.facts import FAULT_KINDS, fault_site_index

from .arith import pack, unpack
from .stimulus import Driver


def idle_inputs(config):
    """The inputs of a cycle in which nothing is offered (the driver of an empty program)."""
    return Driver(config, []).inputs()


def input_fields(config):
    """``{port: [(key, lanes, width, offset), ...]}``: the fields of a cycle's inputs (the keys
    of :meth:`golden.stimulus.Driver.inputs`) each input port carries, every cycle, ``lanes``
    lanes of ``width`` bits (None: one scalar) from bit ``offset``, lane 0 lowest. The
    parameter-set ports, which only some cycles set, are :func:`input_ports`' own."""
    c, dw = config, config.data_width
    fields = {"rst": [("rst", None, 1, 0)]}
    if c.dataflow is Dataflow.WS:
        fields.update({
            "i_w__valid": [("w_valid", None, 1, 0)],
            "i_w__payload": [("w", c.cols, dw, 0)],
            "i_a__valid": [("a_valid", None, 1, 0)],
            "i_a__payload": [("a", c.rows, dw, 0), ("a_last", None, 1, c.rows * dw)]})
    else:
        fields.update({
            "i_ab__valid": [("ab_valid", None, 1, 0)],
            "i_ab__payload": [("a", c.rows, dw, 0), ("b", c.cols, dw, c.rows * dw),
                              ("last", None, 1, (c.rows + c.cols) * dw)]})
    if c.abft is not Abft.NONE:
        fields["param_sel"] = [("sel", None, (c.param_sets - 1).bit_length(), 0)]
    return fields


def input_ports(config, inp):
    """Port values (unsigned ints, by Verilog name, ``rst`` included) of one cycle's inputs
    ``inp``. The parameter-set port is set only in a cycle that writes a set."""
    ports = {}
    for port, fields in input_fields(config).items():
        value = 0
        for key, lanes, width, offset in fields:
            value |= (pack(inp[key], width) if lanes else int(inp.get(key, 0))) << offset
        ports[port] = value
    if config.abft is not Abft.NONE:
        cfg = inp.get("cfg")
        ports["cfg_we"] = int(cfg is not None)
        if cfg is not None:
            index, params = cfg
            ports.update(params.ports(index))
    return ports


def active_fault(faults, cycle):
    """The fault of ``faults`` active in ``cycle`` (None if none); the port takes one."""
    active = [f for f in faults if f.cycle <= cycle < f.cycle + f.duration]
    if len(active) > 1:
        raise ValueError(f"cycle {cycle}: the fault port takes one fault per cycle")
    return active[0] if active else None


def fault_ports(config, fault):
    """Port values of the fault port for ``fault`` (a :class:`golden.faults.Fault`, or None
    for no fault)."""
    if fault is None:
        return {"fi_valid": 0}
    return {"fi_valid": 1, "fi_site": fault_site_index(config, fault.site), "fi_row": fault.row,
            "fi_col": fault.col, "fi_kind": FAULT_KINDS.index(fault.kind),
            "fi_mask": fault.mask}


def _abft_outputs(config):
    """``(name, kind)`` of the ABFT output ports, in signature order: ``kind`` is ``"signed"``,
    ``"lanes"`` (an array of unsigned lanes), ``"flag"`` (a valid bit) or ``"unsigned"``."""
    out = []
    for name, member in abft_signature(config).items():
        if member.flow is not Flow.Out:
            continue
        shape = member.shape
        if isinstance(shape, data.ArrayLayout):
            out.append((name, "lanes", Shape.cast(shape.elem_shape).width, shape.length))
        elif Shape.cast(shape).signed:
            out.append((name, "signed", None, None))
        elif name.endswith("_valid"):
            out.append((name, "flag", None, None))
        else:
            out.append((name, "unsigned", None, None))
    return out


@functools.lru_cache(maxsize=None)
def output_fields(config):
    """``[(key, port, kind, lanes), ...]``: how :func:`output_dict` reads each key of the
    golden model's output dict, in its order. ``kind``: ``"flag"`` (a bool), ``"unsigned"`` or
    ``"signed"`` (the port's value), ``"lanes"`` or ``"signed lanes"`` (a list of ``lanes =
    (count, width)`` lanes, lane 0 lowest)."""
    c = config
    fields = [("busy", "busy", "flag", None), ("o_valid", "o_valid", "flag", None),
              ("o_c", "o_c", "signed lanes", (c.cols, c.acc_width))]
    if c.dataflow is Dataflow.WS:
        fields += [("w_ready", "i_w__ready", "flag", None),
                   ("a_ready", "i_a__ready", "flag", None)]
    else:
        fields += [("ab_ready", "i_ab__ready", "flag", None),
                   ("o_row", "o_row", "unsigned", None), ("o_last", "o_last", "flag", None)]
    if c.abft is not Abft.NONE:
        for name, kind, width, n in _abft_outputs(c):
            fields.append((name, name, kind, (n, width) if kind == "lanes" else None))
    return tuple(fields)


def output_dict(config, get):
    """The golden model's output dict of one cycle, read through ``get(name, signed)`` (the
    value of the port named ``name``, 0 if absent)."""
    out = {}
    for key, port, kind, lanes in output_fields(config):
        if kind == "flag":
            out[key] = bool(get(port, False))
        elif kind in ("unsigned", "signed"):
            out[key] = get(port, kind == "signed")
        elif kind == "signed lanes":
            out[key] = unpack(get(port, False), lanes[1], lanes[0])
        else:
            n, width = lanes
            v = get(port, False)
            out[key] = [(v >> (i * width)) & ((1 << width) - 1) for i in range(n)]
    return out
