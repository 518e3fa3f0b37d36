"""Leaf blocks of the array, for composing the area of arrays too large to synthesize flat.

The leaves are the parts of the generator's own inventory (:func:`hw.parts.inventory`: every
block it instantiates, with its count, the inputs it ties to 0 and the outputs nobody reads);
this module only adds what flat synthesis does to them. :func:`instances` lists the leaves of
a configuration with their instance counts, so that ``area(config) = sum(count * area(leaf))``.

Flat synthesis simplifies the PEs at the array's edges (a top-row WS PE adds nothing to a zero
partial sum; a register whose output nobody reads is removed) and narrows sums whose upper
bits are copies of their sign: a leaf is its part wrapped (:class:`Wrap`) with those inputs
tied to 0, those outputs unconnected and those inputs sign-extended from their significant
bits (:func:`significant`). The fault port is not modelled (synthesis runs without it).
"""
import collections

from amaranth import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hw.parts import Reg, inventory

__all__ = ["Wrap", "significant", "instances", "positions", "leaves"]


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


def significant(config, bits, adds):
    """Significant bits of a WS sum of products after ``adds`` chained additions: ``bits`` for
    one product, one more per addition, at most ``acc_width`` (what the flow's ``wreduce``
    fixed point keeps, :func:`synth.flow.synth_steps`)."""
    return min(config.acc_width, bits + adds)


def _key(name, tie=(), drop=(), narrow=None, **widths):
    narrow = narrow or {}
    return "-".join([name] + [f"{k}{v}" for k, v in sorted(widths.items())]
                    + [f"tie_{t}" for t in sorted(tie)] + [f"drop_{d}" for d in sorted(drop)]
                    + [f"{k}{v}" for k, v in sorted(narrow.items())])


def narrowing(config, part):
    """``{input: significant bits}`` of ``part``'s inputs that carry fewer than
    ``acc_width`` significant bits."""
    out = {}
    for port, (bits, adds) in part.sums:
        w = significant(config, bits, adds)
        if w < config.acc_width:
            out[port] = w
    return out


def leaves(config):
    """``[(key, build, part)]``: the leaf of every part of ``config``'s inventory, in order
    (equal keys are equal leaves)."""
    c = config.replace(fault_port=False)
    out = []
    for part in inventory(c):
        if part.duplicate:  # merged with the register it duplicates
            continue
        narrow = narrowing(c, part)
        if part.kind == "register":  # a register is as wide as what it holds
            w = narrow.get("i", dict(part.params)["width"])
            out.append((f"reg{w}", lambda w=w: Reg(w), part))
            continue
        key = _key(part.name, part.tie, part.drop, narrow, **dict(part.params))
        if part.kind in ("pe", "check pe") or part.tie or part.drop or part.sums:
            build = (lambda part=part, narrow=narrow:
                     Wrap(part.build(), tie=part.tie, drop=part.drop, narrow=narrow))
        else:
            build = part.build
        out.append((key, build, part))
    return out


def instances(config):
    """The leaves of ``config`` as ``{key: (count, build)}``: ``build()`` makes the leaf
    component; keys name the leaf and its widths, so equal leaves of different configs share
    one synthesis."""
    out = collections.OrderedDict()
    for key, build, part in leaves(config):
        n, _ = out.get(key, (0, None))
        out[key] = (n + part.count, build)
    return out


def positions(config):
    """``{leaf key: [(row, col), ...]}`` for the leaves whose parts have positions (PEs, with
    the checksum PEs at column ``cols`` (WS) or row ``rows`` (OS); WS eᵀy cells at row
    ``rows``)."""
    out = {}
    for key, _, part in leaves(config):
        out.setdefault(key, []).extend(part.at)
    return out
