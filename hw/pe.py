"""Processing elements: one INT8 multiply-accumulate cell per dataflow.

Both PEs register every value they pass on, so a datum moves one PE per clock. Products are
``data_width`` x ``data_width`` signed; sums wrap modulo ``2 ** acc_width`` (two's complement),
as the assignment to an ``acc_width`` register truncates.

With ``fault_port`` the PE gains the injection inputs of :class:`FaultSignature`: while
``fi_sel`` selects one of its registers, the value written into that register at the clock
edge is XORed with (``FLIP``), cleared by (``STUCK0``) or set by (``STUCK1``) ``fi_mask``.
"""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .facts import PE_REGISTERS, FaultKind

__all__ = ["FaultKind", "PE_REGISTERS", "fault_members", "fault_mux", "faulty",
           "WSProcessingElement", "OSProcessingElement"]


def fault_mux(kind, mask, value):
    """``value`` with ``mask`` applied as fault ``kind`` says (the one fault multiplexer of
    every register the fault port reaches)."""
    return Mux(kind == FaultKind.FLIP, value ^ mask,
               Mux(kind == FaultKind.STUCK0, value & ~mask, value | mask))


def fault_members(acc_width):
    """Signature members of a PE's injection inputs."""
    return {
        "fi_sel": In(len(PE_REGISTERS)),
        "fi_kind": In(FaultKind),
        "fi_mask": In(acc_width),
    }


def faulty(pe, name, value):
    """Return ``value`` with the fault applied when ``pe`` has a fault port selecting ``name``."""
    if not pe._fault_port:
        return value
    width = len(value)
    mask = pe.fi_mask[:width]
    hit = pe.fi_sel[PE_REGISTERS.index(name)]
    return Mux(hit, fault_mux(pe.fi_kind, mask, value), value)


class _PE(wiring.Component):
    def __init__(self, members, *, data_width, acc_width, fault_port, pipelined=False):
        self._pipelined = pipelined
        self._data_width = data_width
        self._acc_width = acc_width
        self._fault_port = fault_port
        if fault_port:
            members = {**members, **fault_members(acc_width)}
        super().__init__(members)

    def _reg(self, m, reg, value):
        m.d.sync += reg.eq(faulty(self, reg.name, value))

    def _product(self, m, x, y):
        """``x * y``, through a product register when the PE is pipelined (one more cycle
        of latency, a shorter path: the ABFT checksum PEs have wider operands)."""
        if not self._pipelined:
            return x * y
        p = Signal(signed(len(x) + len(y)), name="p")
        m.d.sync += p.eq(x * y)
        return p


class WSProcessingElement(_PE):
    """Weight-stationary MAC cell.

    Holds one weight ``b``. Every cycle it registers the activation from the west into ``a``
    (passed east as ``o_a``) and ``i_p + i_a * b`` into ``acc`` (passed south as ``o_p``).
    While ``w_load`` is high it registers ``i_w`` (from the south) into ``b``; ``o_w`` passes
    the held weight north, so a column of PEs is a shift register for weight loading.

    Members
    -------
    i_a, o_a : signed(data_width)
        Activation in from the west, registered out to the east.
    i_p, o_p : signed(acc_width)
        Partial sum in from the north, registered (``i_p + i_a * b``, wrapping) out south.
    i_w, o_w : signed(weight_width)
        Weight shift chain (south to north). ``weight_width`` defaults to ``data_width``; the
        ABFT checksum column holds wider eᵀW sums.
    w_load : In(1)
        Shift the weight chain this cycle.

    With ``pipelined`` the product ``i_a * b`` is registered first and added a cycle later.
    """

    def __init__(self, *, data_width=8, acc_width=32, weight_width=None, fault_port=False,
                 pipelined=False):
        self._b_width = weight_width or data_width
        dw, bw, aw = signed(data_width), signed(self._b_width), signed(acc_width)
        super().__init__({
            "i_a": In(dw), "o_a": Out(dw),
            "i_p": In(aw), "o_p": Out(aw),
            "i_w": In(bw), "o_w": Out(bw),
            "w_load": In(1),
        }, data_width=data_width, acc_width=acc_width, fault_port=fault_port,
            pipelined=pipelined)

    def elaborate(self, platform):
        m = Module()
        a = Signal(signed(self._data_width), name="a")
        b = Signal(signed(self._b_width), name="b")
        acc = Signal(signed(self._acc_width), name="acc")
        self._reg(m, a, self.i_a)
        self._reg(m, acc, self.i_p + self._product(m, self.i_a, b))
        self._reg(m, b, Mux(self.w_load, self.i_w, b))
        m.d.comb += [self.o_a.eq(a), self.o_p.eq(acc), self.o_w.eq(b)]
        return m


class OSProcessingElement(_PE):
    """Output-stationary MAC cell.

    Every cycle it registers the activation from the west into ``a`` (out east), the weight
    from the north into ``b`` (out south), and ``acc + i_a * i_b`` into ``acc`` (wrapping).
    While ``drain`` is high it loads ``i_c`` (the northern neighbour's accumulator) instead, so
    a column of PEs shifts its results south.

    Members
    -------
    i_a, o_a : signed(a_width)
        Activation in from the west, registered out to the east. ``a_width`` defaults to
        ``data_width``; the ABFT checksum row takes wider eᵀA sums.
    i_b, o_b : signed(data_width)
        Weight in from the north, registered out to the south.
    i_c, o_c : signed(acc_width)
        Accumulator of the northern neighbour in; own accumulator out.
    drain : In(1)
        Shift accumulators south this cycle instead of accumulating.

    With ``pipelined`` the product ``i_a * i_b`` is registered first and added a cycle later.
    """

    def __init__(self, *, data_width=8, acc_width=32, a_width=None, fault_port=False,
                 pipelined=False):
        self._a_width = a_width or data_width
        dw, xw, aw = signed(data_width), signed(self._a_width), signed(acc_width)
        super().__init__({
            "i_a": In(xw), "o_a": Out(xw),
            "i_b": In(dw), "o_b": Out(dw),
            "i_c": In(aw), "o_c": Out(aw),
            "drain": In(1),
        }, data_width=data_width, acc_width=acc_width, fault_port=fault_port,
            pipelined=pipelined)

    def elaborate(self, platform):
        m = Module()
        a = Signal(signed(self._a_width), name="a")
        b = Signal(signed(self._data_width), name="b")
        acc = Signal(signed(self._acc_width), name="acc")
        self._reg(m, a, self.i_a)
        self._reg(m, b, self.i_b)
        self._reg(m, acc, Mux(self.drain, self.i_c,
                              acc + self._product(m, self.i_a, self.i_b)))
        m.d.comb += [self.o_a.eq(a), self.o_b.eq(b), self.o_c.eq(acc)]
        return m
