"""What the generator instantiates, as a list of parts: for composing the area and power of
arrays too large to synthesize flat (:mod:`synth.compose`), and for anything else that must
know the array's structure without elaborating 65,536 PEs.

:func:`inventory` reads the same tables the generator wires from (:func:`hw.array.pe_spec`,
:func:`hw.array.pe_sources`, :func:`hw.array.pe_reads`) and the same counts it builds with
(:func:`hw.array.skew_registers`, :func:`hw.checksum.lane_stages`,
:func:`hw.checksum.os_sum_delay`); each part carries a builder of one instance made from the
generator's own block functions (the classes below). A change to the array or its checksums
therefore changes the inventory with it; ``tb/test_synth.py`` checks, on a sweep of sizes,
dataflows and variants, that the inventory's flip-flops are exactly the flat netlist's.

The fault port is not part of the inventory (synthesis runs without it).
"""
import dataclasses
from typing import Callable

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .array import (os_control, pe_positions, pe_reads, pe_sources, pe_spec, skew_registers,
                    ws_control)
from .checksum import (gated_lane_sum, lane_stages, lane_sum, os_check, os_shift_control,
                       os_sum_delay, os_y_cell, ws_difference, ws_y_cell)
from .config import Abft, Dataflow
from .stats import StatisticalUnit

__all__ = ["Part", "inventory", "Reg", "Gate", "Control", "LaneSum", "YCell", "WSDiff"]


@dataclasses.dataclass(frozen=True)
class Part:
    """``count`` instances of one block.

    ``kind`` says what it is (``"pe"``, ``"check pe"``, ``"register"``, ``"gate"``,
    ``"control"``, ``"lane sum"``, ``"y cell"``, ``"difference"``, ``"statistical unit"``);
    ``name`` and ``params`` name it; ``build()`` makes one instance. ``tie`` are inputs the
    generator holds at 0, ``drop`` outputs nothing reads. ``sums`` gives the value range of
    inputs that carry sums: ``{port: (bits, adds)}``, a sum of ``adds + 1`` terms of ``bits``
    significant bits (``bits`` may itself be such a pair). ``at`` are the instances' (row,
    col) positions where they have one (PEs; WS eᵀy cells at row ``rows``)."""
    kind: str
    name: str
    count: int
    build: Callable = dataclasses.field(compare=False, repr=False)
    params: tuple = ()
    tie: frozenset = frozenset()
    drop: frozenset = frozenset()
    sums: tuple = ()
    duplicate: bool = False
    at: tuple = ()


def _outputs(component_class, kw):
    pe = component_class(**kw)
    pe._MustUse__silence = True  # built for its signature only
    return [k for k, v in pe.signature.members.items() if v.flow is Out]


def _pe_parts(c):
    """One part per distinct PE (class, widths, tied inputs, unread outputs, sums)."""
    ws = c.dataflow is Dataflow.WS
    positions = pe_positions(c)
    sources = {pos: pe_sources(c, pos) for pos in positions}
    read = {(s[1], s[2], s[3]) for src in sources.values() for s in src.values()
            if isinstance(s, tuple) and s[0] == "pe"}
    read |= {(s[1], s[2], s[3]) for s in pe_reads(c)}
    outputs = {}
    groups = {}
    for pos in positions:
        cls, kw = pe_spec(c, pos)
        kw = {k: v for k, v in kw.items() if k != "fault_port"}
        ident = (cls, tuple(sorted(kw.items())))
        if ident not in outputs:
            outputs[ident] = _outputs(cls, kw)
        tie = frozenset(p for p, s in sources[pos].items() if isinstance(s, int) and s == 0)
        drop = frozenset(o for o in outputs[ident] if (*pos, o) not in read)
        sums = ()
        if ws:  # row r adds its product to the partial sum of rows 0..r-1
            bits = c.data_width + (c.checksum_weight_width if pos[1] == c.cols
                                   else c.data_width)
            sums = (("i_p", (bits, pos[0] - 1)),) if pos[0] else ()
        key = (ident, tie, drop, sums)
        groups.setdefault(key, []).append(pos)
    for ((cls, kw), tie, drop, sums), at in groups.items():
        kind = "check pe" if at[0][0] == c.rows or at[0][1] == c.cols else "pe"
        yield Part(kind, cls.__name__, len(at), lambda cls=cls, kw=kw: cls(**dict(kw)),
                   params=kw, tie=tie, drop=drop, sums=sums, at=tuple(at))


def _reg(count, width, sums=()):
    return Part("register", "reg", count, lambda: Reg(width), params=(("width", width),),
                sums=sums)


def inventory(config):
    """The parts of ``config`` (its fault port left out), PEs first, in a fixed order."""
    c = config.replace(fault_port=False)
    rows, cols, dw, aw = c.rows, c.cols, c.data_width, c.acc_width
    ws = c.dataflow is Dataflow.WS
    bottom = rows - 1  # additions in a WS column's result (rows products)
    parts = list(_pe_parts(c))
    gate = lambda n: Part("gate", f"gate{dw}", n, lambda: Gate(dw))  # noqa: E731
    parts.append(gate(rows))  # the input lanes, zeroed between beats
    if not ws:
        parts.append(gate(cols))
    parts.append(_reg(skew_registers(rows), dw))  # activation skew
    if ws:
        parts.append(_reg(skew_registers(cols), aw, (("i", (2 * dw, bottom)),)))  # alignment
    else:
        parts.append(_reg(skew_registers(cols), dw))  # weight skew
    parts.append(Part("control", f"control-{c.id}", 1, lambda: Control(c)))
    if c.abft is Abft.NONE:
        return [p for p in parts if p.count]
    cw = c.checksum_weight_width
    unit = dict(n=c.stat_n, acc_width=aw, abft=c.abft, param_sets=c.param_sets,
                hist_bins=c.hist_bins, counter_width=c.counter_width)
    stat = f"stat-n{c.stat_n}-{c.abft}-a{aw}-s{c.param_sets}-h{c.hist_bins}-c{c.counter_width}"
    if ws:
        parts.append(Part("lane sum", f"lanesum{cols}x{dw}", 1, lambda: LaneSum(cols, dw, cw)))
        parts.append(_reg(lane_stages(cols), 1))  # the checksum column's load delay
        for col in range(cols):  # eᵀy of columns 0..col: col more additions
            sums = ((("o_p", (2 * dw, bottom)),) +
                    ((("prev", (2 * dw, bottom + col - 1)),) if col else ()))
            # column 0 registers the bottom PE's result, as column 0's first alignment
            # register does
            parts.append(Part("y cell", "ycell-ws-first" if col == 0 else "ycell-ws", 1,
                              lambda first=col == 0: YCell(c, first=first),
                              params=(("a", aw),), sums=sums,
                              duplicate=col == 0 and cols > 1, at=((rows, col),)))
        parts.append(Part("difference", f"wsdiff-{stat}", 1,
                          lambda: WSDiff(c, StatisticalUnit(**unit)),
                          sums=(("yc", (2 * dw, bottom + cols - 1)),
                                ("ck", (dw + cw, rows - 1)))))
    else:
        parts.append(Part("lane sum", f"lanesum{rows}x{dw}-gated", 1,
                          lambda: LaneSum(rows, dw, cw, gated=True)))
        parts.append(_reg(os_sum_delay(rows), cw))
        parts.append(_reg(1, 1))  # the eᵀY row's copy of drain
        parts.append(Part("y cell", "ycell-os", cols, lambda: YCell(c), params=(("a", aw),)))
        parts.append(Part("statistical unit", stat, 1, lambda: StatisticalUnit(**unit)))
    return [p for p in parts if p.count]


class Reg(wiring.Component):
    """One ``width``-bit register with synchronous reset (a skew, alignment or delay stage)."""

    def __init__(self, width):
        super().__init__({"i": In(width), "o": Out(width)})

    def elaborate(self, platform):
        m = Module()
        r = Signal(len(self.i))
        m.d.sync += r.eq(self.i)
        m.d.comb += self.o.eq(r)
        return m


class Gate(wiring.Component):
    """An input lane zeroed when no beat is accepted."""

    def __init__(self, width):
        super().__init__({"en": In(1), "i": In(width), "o": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(Mux(self.en, self.i, 0))
        return m


class Control(wiring.Component):
    """The sequencer of ``config``'s dataflow (and, for OS ABFT, the difference shifter)."""

    def __init__(self, config):
        self._c = config
        if config.dataflow is Dataflow.WS:
            outs = ["busy", "w_ready", "a_ready", "w_accept", "a_accept", "o_valid"]
            ins = ["w_valid", "a_valid", "a_last"]
            if config.abft is not Abft.NONE:
                outs.append("o_last")
            members = {**{k: In(1) for k in ins}, **{k: Out(1) for k in outs}}
        else:
            members = {"ab_valid": In(1), "ab_last": In(1), "ready": Out(1), "accept": Out(1),
                       "drain": Out(1), "o_last": Out(1),
                       "row": Out(range(config.rows))}
            if config.abft is not Abft.NONE:
                members.update({"shift": Out(1), "d_end": Out(1), "drain_next": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        c = self._c
        if c.dataflow is Dataflow.WS:
            ctl = ws_control(m, c, self.w_valid, self.a_valid, self.a_last)
        else:
            ctl = os_control(m, c, self.ab_valid, self.ab_last)
            if c.abft is not Abft.NONE:
                ctl["shift"], ctl["d_end"] = os_shift_control(m, c.cols,
                                                              os_check(m, ctl["o_last"]))
        for name in self.signature.members:
            if self.signature.members[name].flow is wiring.Out:
                m.d.comb += getattr(self, name).eq(ctl[name])
        return m


class LaneSum(wiring.Component):
    """The adder tree of eᵀW (WS, over a weight row) or eᵀA (OS, over a beat; ``gated``: by
    ``en`` at its output, :func:`hw.checksum.gated_lane_sum`, with the enable's delay
    registers)."""

    def __init__(self, lanes, width, out_width, gated=False):
        self._w, self._gated = out_width, gated
        super().__init__({"i": In(data.ArrayLayout(signed(width), lanes)),
                          **({"en": In(1)} if gated else {}), "o": Out(signed(out_width))})

    def elaborate(self, platform):
        m = Module()
        if self._gated:
            total = gated_lane_sum(m, list(self.i), self.en, self._w, "sum")
        else:
            total = lane_sum(m, list(self.i), self._w, "sum")
        m.d.comb += self.o.eq(total)
        return m


class YCell(wiring.Component):
    """One cell of the WS eᵀy chain (``first``: column 0, no adder) or of the OS eᵀY row."""

    def __init__(self, config, first=False):
        self._c, self._first = config, first
        aw = signed(config.acc_width)
        members = {"o_p": In(aw), "y": Out(aw)}
        if config.dataflow is Dataflow.WS:
            members.update({} if first else {"prev": In(aw)})
        else:
            members.update({"y_east": In(aw), "ck_c": In(aw), "drain": In(1), "check": In(1),
                            "shift": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        y = Signal.like(self.y, name="y_reg")
        if self._c.dataflow is Dataflow.WS:
            ws_y_cell(m, y, self.o_p, None if self._first else self.prev)
        else:
            os_y_cell(m, y, self.y_east, self.o_p, self.ck_c, self.drain, self.check,
                      self.shift)
        m.d.comb += self.y.eq(y)
        return m


class WSDiff(wiring.Component):
    """The WS difference ``d = eᵀy - eᵀWx`` (:func:`hw.checksum.ws_difference`) feeding the
    statistical unit, and on ``o_d`` as on the array's port."""

    def __init__(self, config, unit):
        self._unit = unit
        aw = signed(config.acc_width)
        members = {k: v for k, v in unit.signature.members.items()
                   if k not in ("i_d", "i_valid", "i_end")}
        super().__init__({**members, "yc": In(aw), "ck": In(aw), "o_valid": In(1),
                          "o_last": In(1), "o_d": Out(aw)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        d, d_valid, d_end = ws_difference(m, self.yc, self.ck, self.o_valid, self.o_last)
        m.d.comb += [unit.i_d.eq(d), unit.i_valid.eq(d_valid), unit.i_end.eq(d_end),
                     self.o_d.eq(d)]
        for name, member in unit.signature.members.items():
            if name in ("i_d", "i_valid", "i_end"):
                continue
            if member.flow is wiring.In:
                m.d.comb += getattr(unit, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(unit, name))
        return m
