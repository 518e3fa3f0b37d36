"""Leaf blocks of the array, for composing the area of arrays too large to synthesize flat.

Each leaf is a small Amaranth component built from the same ``hw`` code the array uses (the PE
classes, :func:`hw.array.skew`'s registers, :func:`hw.array.ws_control` /
:func:`hw.array.os_control`, :func:`hw.checksum.lane_sum`, the eᵀy / eᵀY cells and
:class:`hw.stats.StatisticalUnit`). :func:`instances` lists the leaves of a configuration with
their instance counts, so that ``area(config) = sum(count * area(leaf))``.

Flat synthesis simplifies the PEs at the array's edges (a top-row WS PE adds nothing to a zero
partial sum; a register whose output nobody reads is removed): the leaves model this with PE
*classes*, a PE wrapped with some inputs tied to 0 and some outputs left unconnected (:class:`Wrap`).
The fault port is not modelled (synthesis runs without it).
"""
import collections

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.array import os_control, ws_control
from hw.checksum import (gated_lane_sum, lane_stages, lane_sum, os_check, os_shift_control,
                         os_y_cell, ws_difference, ws_y_cell)
from hw.config import Abft, Dataflow
from hw.pe import OSProcessingElement, WSProcessingElement
from hw.stats import StatisticalUnit


class Wrap(wiring.Component):
    """``inner`` with the inputs in ``tie`` held at 0, the outputs in ``drop`` unconnected, and
    the signed inputs in ``narrow`` (name -> width) sign-extended from fewer bits.

    ``narrow`` models what flat synthesis finds in a WS column: the partial sum leaving row
    ``r`` has only ``2 * data_width + r`` significant bits (the rest are copies of its sign, and
    their flip-flops and adder bits merge), until it reaches ``acc_width``."""

    def __init__(self, inner, tie=(), drop=(), narrow=None):
        self._inner, self._tie, self._drop = inner, set(tie), set(drop)
        self._narrow = dict(narrow or {})
        members = {}
        for k, v in inner.signature.members.items():
            if k in self._tie or k in self._drop:
                continue
            members[k] = In(signed(self._narrow[k])) if k in self._narrow else v
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        for name, member in inner.signature.members.items():
            port = getattr(inner, name)
            if member.flow is wiring.In:
                m.d.comb += port.eq(0 if name in self._tie else getattr(self, name))
            elif name not in self._drop:
                m.d.comb += getattr(self, name).eq(port)
        return m


#: How many chained additions flat synthesis narrows. Measured on the flat netlists: the WS
#: partial sums of rows 0-3 keep only their significant bits (16, 17, 18, 19 flip-flops); from
#: row 4 on every partial sum has all 32 (Yosys stops propagating the sign copies).
NARROWED_ADDS = 4


def significant(config, bits, adds):
    """Significant bits of a WS sum of products after ``adds`` chained additions (``bits`` for
    one product, one more per addition) as flat synthesis keeps them: ``acc_width`` from
    :data:`NARROWED_ADDS` additions on."""
    if adds >= NARROWED_ADDS:
        return config.acc_width
    return min(config.acc_width, bits + adds)


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
    statistical unit."""

    def __init__(self, config, unit):
        self._unit = unit
        aw = signed(config.acc_width)
        members = {k: v for k, v in unit.signature.members.items()
                   if k not in ("i_d", "i_valid", "i_end")}
        super().__init__({**members, "yc": In(aw), "ck": In(aw), "o_valid": In(1),
                          "o_last": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        d, d_valid, d_end = ws_difference(m, self.yc, self.ck, self.o_valid, self.o_last)
        m.d.comb += [unit.i_d.eq(d), unit.i_valid.eq(d_valid), unit.i_end.eq(d_end)]
        for name, member in unit.signature.members.items():
            if name in ("i_d", "i_valid", "i_end"):
                continue
            if member.flow is wiring.In:
                m.d.comb += getattr(unit, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(unit, name))
        return m


def _key(name, tie=(), drop=(), narrow=None, **widths):
    narrow = narrow or {}
    return "-".join([name] + [f"{k}{v}" for k, v in sorted(widths.items())]
                    + [f"tie_{t}" for t in sorted(tie)] + [f"drop_{d}" for d in sorted(drop)]
                    + [f"{k}{v}" for k, v in sorted(narrow.items())])


def _pe_leaf(cls, tie, drop, narrow=None, **widths):
    return (_key(cls.__name__, tie, drop, narrow, **widths),
            lambda: Wrap(cls(**widths), tie=tie, drop=drop, narrow=narrow))


def _ws_narrow(config, port, bits, r):
    """``{port: width}`` when the input of row ``r`` is narrower than ``acc_width``."""
    if r == 0:
        return {}
    w = significant(config, bits, r - 1)
    return {port: w} if w < config.acc_width else {}


def ws_ycell_leaf(config, col):
    """``(key, build)`` of the WS eᵀy cell of column ``col``: its inputs narrowed to the
    bottom row's significant bits and, from column 1 on, to those of its own chain."""
    c, aw = config, config.acc_width
    bottom = significant(c, 2 * c.data_width, c.rows - 1)
    ycell = {"o_p": bottom} if bottom < aw else {}
    if col == 0:
        return (_key("ycell-ws-first", narrow=ycell, a=aw),
                lambda: Wrap(YCell(c, first=True), narrow=ycell))
    prev = significant(c, bottom, col - 1) if bottom < aw else aw
    nar = {**ycell, **({"prev": prev} if prev < aw else {})}
    return _key("ycell-ws", narrow=nar, a=aw), lambda: Wrap(YCell(c), narrow=nar)


def pe_leaves(config):
    """Every PE of ``config`` (checksum PEs included: WS column ``cols``, OS row ``rows``) as
    ``(key, build, (row, col))``."""
    c = config.replace(fault_port=False)
    rows, cols, dw = c.rows, c.cols, c.data_width
    abft = c.abft is not Abft.NONE
    widths = {"data_width": dw, "acc_width": c.acc_width}
    for r in range(rows):
        for col in range(cols):
            if c.dataflow is Dataflow.WS:
                tie = {"i_p"} if r == 0 else set()
                drop = {"o_a"} if col == cols - 1 and not abft else set()
                leaf = _pe_leaf(WSProcessingElement, tie, drop,
                                _ws_narrow(c, "i_p", 2 * dw, r), **widths)
            else:
                tie = {"i_c"} if r == 0 else set()
                drop = ({"o_a"} if col == cols - 1 else set()) | (
                    {"o_b"} if r == rows - 1 else set())  # the checksum row takes i_b
                leaf = _pe_leaf(OSProcessingElement, tie, drop, **widths)
            yield (*leaf, (r, col))
    if not abft:
        return
    cw = c.checksum_weight_width
    if c.dataflow is Dataflow.WS:
        for r in range(rows):
            yield (*_pe_leaf(WSProcessingElement, {"i_p"} if r == 0 else set(), {"o_a"},
                             _ws_narrow(c, "i_p", dw + cw, r), weight_width=cw,
                             pipelined=True, **widths), (r, cols))
    else:
        for col in range(cols):
            yield (*_pe_leaf(OSProcessingElement, {"i_c"}, {"o_b"} | (
                {"o_a"} if col == cols - 1 else set()), a_width=cw, pipelined=True, **widths),
                (rows, col))


def instances(config):
    """The leaves of ``config`` as ``{key: (count, build)}``: ``build()`` makes the leaf
    component; keys name the leaf and its widths, so equal leaves of different configs share
    one synthesis."""
    c = config.replace(fault_port=False)
    rows, cols, dw, aw = c.rows, c.cols, c.data_width, c.acc_width
    abft = c.abft is not Abft.NONE
    ws = c.dataflow is Dataflow.WS
    out = collections.OrderedDict()

    def add(key, build, count=1):
        if count:
            n, _ = out.get(key, (0, None))
            out[key] = (n + count, build)

    for key, build, _ in pe_leaves(c):
        add(key, build)
    lanes = rows + (0 if ws else cols)
    add(f"gate{dw}", lambda: Gate(dw), lanes)
    add(f"reg{dw}", lambda: Reg(dw), rows * (rows - 1) // 2 + (0 if ws else cols * (cols - 1) // 2))
    bottom = significant(c, 2 * dw, rows - 1)  # WS: the bottom row's partial sums
    if ws:
        add(f"reg{bottom}", lambda: Reg(bottom), cols * (cols - 1) // 2)
    add(f"control-{c.id}", lambda: Control(c))
    if not abft:
        return out
    cw = c.checksum_weight_width
    unit = dict(n=c.stat_n, acc_width=aw, abft=c.abft, param_sets=c.param_sets,
                hist_bins=c.hist_bins, counter_width=c.counter_width)
    stat_key = f"stat-n{c.stat_n}-{c.abft}-a{aw}-s{c.param_sets}-h{c.hist_bins}-c{c.counter_width}"
    if ws:
        add(f"lanesum{cols}x{dw}", lambda: LaneSum(cols, dw, cw))
        add("reg1", lambda: Reg(1), lane_stages(cols))  # the checksum column's load delay
        for col in range(cols):
            add(*ws_ycell_leaf(c, col))
        nar = {k: v for k, v in (("yc", significant(c, bottom, cols - 1) if bottom < aw else aw),
                                 ("ck", significant(c, dw + cw, rows - 1))) if v < aw}
        add(_key(f"wsdiff-{stat_key}", narrow=nar),
            lambda: Wrap(WSDiff(c, StatisticalUnit(**unit)), narrow=nar))
    else:
        add(f"lanesum{rows}x{dw}-gated", lambda: LaneSum(rows, dw, cw, gated=True))
        add(f"reg{cw}", lambda: Reg(cw), rows - 1 - lane_stages(rows))
        add("reg1", lambda: Reg(1))  # the eᵀY row's copy of drain
        add(f"ycell-os-a{aw}", lambda: YCell(c), cols)
        add(f"{stat_key}", lambda: StatisticalUnit(**unit))
    return out
