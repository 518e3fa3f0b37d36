"""The one mapping between the golden model's per-cycle dicts and the generated array's ports.

:class:`golden.stimulus.Driver` and :class:`golden.array.ArrayModel` speak in dicts
(``{"a": [...], "a_valid": 1, ...}`` in, ``{"o_c": [...], "o_valid": True, ...}`` out). The RTL
has Amaranth's flattened ports (``i_a__payload``, ``cfg_am1``, ``c_hist`` ...), lanes packed
lane 0 lowest. Every bench that drives the RTL goes through this module: the cocotb bench
(:class:`tb.common.ArrayTB`), the Amaranth-simulator bench (:mod:`tb.pysim`) and the
gate-level power simulation (:mod:`synth.power`). Each supplies only how to set and read a port by its
Verilog name; a port that is absent (zero-width ones vanish in Verilog) is skipped when set and
reads as 0.
"""
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


def cfg_ports(index, params):
    """Port values that write :class:`golden.stats.StatParams` ``params`` into parameter set
    ``index`` (with ``cfg_we`` high)."""
    return {"cfg_set": index, "cfg_am1": params.am1, "cfg_b": params.b_q,
            "cfg_freq": params.freq_th, "cfg_msd_th": params.msd_th,
            "cfg_policy": params.policy, "cfg_msd_mode": params.msd_mode}


def input_ports(config, inp):
    """Port values (unsigned ints, by Verilog name, ``rst`` included) of one cycle's inputs
    ``inp``. The parameter-set port is set only in a cycle that writes a set."""
    c, dw = config, config.data_width
    ports = {"rst": inp["rst"]}
    if c.dataflow is Dataflow.WS:
        ports.update(i_w__valid=inp["w_valid"], i_w__payload=pack(inp["w"], dw),
                     i_a__valid=inp["a_valid"],
                     i_a__payload=pack(inp["a"], dw) | inp["a_last"] << (c.rows * dw))
    else:
        a, b = pack(inp["a"], dw), pack(inp["b"], dw)
        ports.update(i_ab__valid=inp["ab_valid"],
                     i_ab__payload=a | (b << (c.rows * dw))
                     | (inp["last"] << ((c.rows + c.cols) * dw)))
    if c.abft is not Abft.NONE:
        ports["param_sel"] = inp.get("sel", 0)
        cfg = inp.get("cfg")
        ports["cfg_we"] = int(cfg is not None)
        if cfg is not None:
            ports.update(cfg_ports(*cfg))
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


def output_dict(config, get):
    """The golden model's output dict of one cycle, read through ``get(name, signed)`` (the
    value of the port named ``name``, 0 if absent)."""
    c = config
    out = {"busy": bool(get("busy", False)), "o_valid": bool(get("o_valid", False)),
           "o_c": unpack(get("o_c", False), c.acc_width, c.cols)}
    if c.dataflow is Dataflow.WS:
        out.update(w_ready=bool(get("i_w__ready", False)),
                   a_ready=bool(get("i_a__ready", False)))
    else:
        out.update(ab_ready=bool(get("i_ab__ready", False)), o_row=get("o_row", False),
                   o_last=bool(get("o_last", False)))
    if c.abft is not Abft.NONE:
        for name, kind, width, n in _abft_outputs(c):
            if kind == "lanes":
                v = get(name, False)
                out[name] = [(v >> (i * width)) & ((1 << width) - 1) for i in range(n)]
            elif kind == "flag":
                out[name] = bool(get(name, False))
            else:
                out[name] = get(name, kind == "signed")
    return out
