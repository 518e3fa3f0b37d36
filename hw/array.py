"""The systolic array, in both dataflows, with its input skew and output alignment.

Timing contract (cycle ``t`` is the clock period in which a beat is accepted, i.e. ``valid``
and ``ready`` are both high before the rising edge that ends it):

* **WS** (:class:`WSArray`). Weights ``W`` (``rows`` x ``cols``) are pushed one row per beat on
  ``i_w``, first row first; they enter at the bottom and shift north, so after ``rows`` pushes
  row ``r`` of the array holds ``W[r]``. ``i_w`` is ready only when no activation is in flight.
  Each activation vector ``x`` (``rows`` wide) accepted on ``i_a`` in cycle ``t`` produces
  ``y = x @ W`` (``cols`` wide) on ``o_c`` with ``o_valid`` high in cycle ``t + rows + cols - 1``.
  Vectors may be accepted every cycle. ``i_a`` is not ready while ``i_w`` is valid.
* **OS** (:class:`OSArray`). Beat ``k`` of a tile carries column ``k`` of ``A`` (``rows``
  wide) and row ``k`` of ``B`` (``cols`` wide); ``last`` marks the final beat, after any
  reduction length ``K >= 1``. If the last beat is accepted in cycle ``t``, the rows of
  ``C = A @ B`` leave on ``o_c``, bottom row first (``o_row`` = ``rows - 1`` down to 0,
  ``o_last`` on row 0), in cycles ``t + rows + cols - 1`` to ``t + 2 * rows + cols - 2``;
  ``i_ab`` is ready again the cycle after. Accumulators restart from zero for the next tile.

Operands are signed ``data_width``; results wrap modulo ``2 ** acc_width``. A synchronous
reset (``rst``) clears every register, weights included, and returns the array to idle.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .checksum import (check_pe_sources, check_pe_spec, check_positions, check_reads, os_checksums,
                       ws_checksums)
from .config import Abft, ArrayConfig, Dataflow
from .facts import PE_REGISTERS, FaultKind, fault_mask_width, fault_site_index, fault_sites
from .pe import OSProcessingElement, WSProcessingElement, fault_mux
from .stats import StatisticalUnit, StatPorts

__all__ = ["SystolicArray", "WSArray", "OSArray", "fault_signature", "abft_signature",
           "fault_sites", "fault_mask_width", "skew", "skew_registers", "ws_control",
           "os_control", "grid_positions", "pe_positions", "pe_spec", "pe_sources", "pe_reads",
           "resolve"]


def _lanes(width, n):
    return data.ArrayLayout(signed(width), n)


def fault_signature(config):
    """Members of the array's fault-injection port (``fi``); present with ``fault_port``.

    While ``fi_valid`` is high, the register family ``fi_site`` (index into
    :func:`hw.facts.fault_sites`) at (``fi_row``, ``fi_col``) takes its next value through
    ``fi_kind``
    with ``fi_mask`` at the coming clock edge.
    """
    return {
        "fi_valid": In(1),
        "fi_site": In(range(len(fault_sites(config)))),
        "fi_row": In(range(config.rows)),
        "fi_col": In(range(config.cols)),
        "fi_kind": In(FaultKind),
        "fi_mask": In(fault_mask_width(config)),
    }


def abft_signature(config):
    """Members the ABFT variants add: the parameter-set port, the difference stream and the
    statistical unit's decisions and counters (see :class:`hw.stats.StatisticalUnit`)."""
    ports = stat_ports(config).members
    cfg = {k: v for k, v in ports.items() if k.startswith("cfg_")}
    return {
        **cfg, "param_sel": In(range(config.param_sets)),
        "o_d": Out(signed(config.acc_width)), "o_d_valid": Out(1),
        **{k: v for k, v in ports.items() if k not in cfg},
    }


class _View:
    """``obj``'s members of ``signature``, as an interface of that signature (a component's
    flat ports seen as one sub-interface, for :func:`wiring.connect`)."""

    def __init__(self, signature, obj):
        self.signature = signature
        for name in signature.members:
            setattr(self, name, getattr(obj, name))


def stat_ports(config):
    """The :class:`hw.stats.StatPorts` of ``config``'s statistical unit."""
    return StatPorts(n=config.stat_n, acc_width=config.acc_width, param_sets=config.param_sets,
                     hist_bins=config.hist_bins, counter_width=config.counter_width)


def skew(m, lanes, name):
    """Delay lane ``i`` of ``lanes`` by ``i`` cycles; return the delayed lanes (lane 0 is
    combinational)."""
    out = [lanes[0]]
    for i in range(1, len(lanes)):
        prev = lanes[i]
        for j in range(i):
            reg = Signal.like(lanes[i], name=f"{name}_{i}_{j}")
            m.d.sync += reg.eq(prev)
            prev = reg
        out.append(prev)
    return out


def skew_registers(n):
    """Registers :func:`skew` builds for ``n`` lanes."""
    return n * (n - 1) // 2


# The PE grid as a netlist. Positions are (row, col); the ABFT checksum PEs sit at column
# ``cols`` (WS, one per row) or row ``rows`` (OS, one per column). Each PE input's source is
# ``0`` (held at zero), the name of an array-level signal (``"w_accept"``), one lane of one
# (``("a_skew", r)``), or a PE's port (``("pe", row, col, port)``). The generator wires the
# PEs from these tables and :mod:`hw.parts` reads the same tables to tell which inputs are
# tied and which outputs nobody reads.

def grid_positions(config):
    """The array PEs' positions, row by row."""
    return [(r, col) for r in range(config.rows) for col in range(config.cols)]


def pe_positions(config):
    """Every PE position of ``config``, array PEs first (row by row), then the checksum PEs."""
    c = config
    return grid_positions(c) + (check_positions(c) if c.abft is not Abft.NONE else [])


def _is_check(config, pos):
    return pos[1] == config.cols or pos[0] == config.rows


def pe_spec(config, pos):
    """``(class, keyword arguments)`` of the PE at ``pos``."""
    c = config
    kw = dict(data_width=c.data_width, acc_width=c.acc_width, fault_port=c.fault_port)
    if not _is_check(c, pos):
        return {Dataflow.WS: WSProcessingElement, Dataflow.OS: OSProcessingElement}[
            c.dataflow], kw
    return check_pe_spec(c, kw)


def pe_sources(config, pos):
    """``{input: source}`` of the PE at ``pos``, in the order the generator connects them."""
    c, (r, col) = config, pos
    if _is_check(c, pos):
        return check_pe_sources(c, pos)
    if c.dataflow is Dataflow.WS:
        return {"i_a": ("a_skew", r) if col == 0 else ("pe", r, col - 1, "o_a"),
                "i_p": 0 if r == 0 else ("pe", r - 1, col, "o_p"),
                "i_w": ("i_w", col) if r == c.rows - 1 else ("pe", r + 1, col, "o_w"),
                "w_load": "w_accept"}
    return {"i_a": ("a_skew", r) if col == 0 else ("pe", r, col - 1, "o_a"),
            "i_b": ("b_skew", col) if r == 0 else ("pe", r - 1, col, "o_b"),
            "i_c": 0 if r == 0 else ("pe", r - 1, col, "o_c"),
            "drain": "drain"}


def pe_reads(config):
    """The PE ports the rest of the array reads: the bottom row's results (and, with ABFT,
    what the checksum logic outside the PEs takes from them)."""
    c = config
    port = "o_p" if c.dataflow is Dataflow.WS else "o_c"
    reads = [("pe", c.rows - 1, col, port) for col in range(c.cols)]
    return reads + (check_reads(c) if c.abft is not Abft.NONE else [])


def resolve(source, pes, named):
    """The signal a :func:`pe_sources` entry names: ``pes`` maps positions to PEs, ``named``
    array-level names to signals (or to sequences of lanes)."""
    if isinstance(source, int):
        return source
    if isinstance(source, str):
        return named[source]
    if source[0] == "pe":
        return getattr(pes[source[1:3]], source[3])
    return named[source[0]][source[1]]


class _OSState(enum.Enum, shape=2):
    COMPUTE = 0
    FLUSH = 1
    DRAIN = 2


def ws_control(m, c, w_valid, a_valid, a_last):
    """WS sequencing: handshakes, and the ``valid`` (and, with ABFT, ``last``) shift registers
    that follow each vector through the array. Return the control signals by name."""
    latency = c.rows + c.cols - 1
    valid = Signal(latency)
    busy, w_ready, a_ready = Signal(), Signal(), Signal()
    w_accept, a_accept = w_valid & w_ready, a_valid & a_ready
    m.d.comb += [busy.eq(valid.any()), w_ready.eq(~busy), a_ready.eq(~w_valid)]
    m.d.sync += valid.eq(Cat(a_accept, valid[:-1]))
    ctl = {"busy": busy, "w_ready": w_ready, "a_ready": a_ready, "w_accept": w_accept,
           "a_accept": a_accept, "o_valid": valid[-1]}
    if c.abft is not Abft.NONE:
        last = Signal(latency)  # ``last`` travels with ``valid``
        m.d.sync += last.eq(Cat(a_accept & a_last, last[:-1]))
        ctl["o_last"] = last[-1]
    return ctl


def os_control(m, c, ab_valid, ab_last):
    """OS sequencing: compute, flush (``rows + cols - 2`` cycles) and drain (``rows``
    cycles). Return the control signals by name; ``drain_next`` is the value ``drain`` takes
    in the next cycle, for blocks that keep a registered copy of it."""
    flush_cycles = c.rows + c.cols - 2
    state, state_next = Signal(_OSState), Signal(_OSState)
    count = Signal(range(max(flush_cycles, c.rows, 1)))
    count_next = Signal.like(count)
    ready, drain = Signal(), Signal()
    accept = ab_valid & ready
    m.d.comb += [ready.eq(state == _OSState.COMPUTE), drain.eq(state == _OSState.DRAIN),
                 state_next.eq(state), count_next.eq(count)]
    with m.Switch(state):
        with m.Case(_OSState.COMPUTE):
            with m.If(accept & ab_last):
                if flush_cycles > 0:
                    m.d.comb += [state_next.eq(_OSState.FLUSH), count_next.eq(flush_cycles - 1)]
                else:
                    m.d.comb += [state_next.eq(_OSState.DRAIN), count_next.eq(c.rows - 1)]
        with m.Case(_OSState.FLUSH):
            with m.If(count == 0):
                m.d.comb += [state_next.eq(_OSState.DRAIN), count_next.eq(c.rows - 1)]
            with m.Else():
                m.d.comb += count_next.eq(count - 1)
        with m.Case(_OSState.DRAIN):
            with m.If(count == 0):
                m.d.comb += state_next.eq(_OSState.COMPUTE)
            with m.Else():
                m.d.comb += count_next.eq(count - 1)
    m.d.sync += [state.eq(state_next), count.eq(count_next)]
    return {"ready": ready, "busy": ~ready, "accept": accept, "drain": drain, "row": count,
            "drain_next": state_next == _OSState.DRAIN,
            "o_last": drain & (count == 0)}


class _Array(wiring.Component):
    def __init__(self, config, members):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        self._config = config
        if config.fault_port:
            members = {**members, **fault_signature(config)}
        if config.abft is not Abft.NONE:
            members = {**members, **abft_signature(config)}
        super().__init__(members)
        self._fi = None

    @property
    def config(self):
        """The :class:`~hw.config.ArrayConfig` this array was generated from."""
        return self._config

    def _fault_decode(self, m):
        """One-hot decodes of the fault target, built once per array."""
        if self._fi is None:
            c = self._config
            sites = fault_sites(c)
            row_hit, col_hit, site_hit = Signal(c.rows), Signal(c.cols), Signal(len(sites))
            m.d.comb += [row_hit.eq(Const(1, c.rows) << self.fi_row),
                         col_hit.eq(Const(1, c.cols) << self.fi_col),
                         site_hit.eq((Const(1, len(sites)) << self.fi_site)
                                     & self.fi_valid.replicate(len(sites)))]
            self._fi = (row_hit, col_hit, site_hit, sites)
        return self._fi

    def _hit(self, m, site, row, col):
        row_hit, col_hit, site_hit, sites = self._fault_decode(m)
        return site_hit[fault_site_index(self._config, site)] & row_hit[row] & col_hit[col]

    def connect_fault(self, m, pe, site, row, col):
        """Drive a PE's fault inputs: ``site`` ``"pe"`` selects its a/b/acc registers by the
        port's site, any other site maps to its accumulator."""
        if not self._config.fault_port:
            return
        if site == "pe":
            sel = Cat(*(self._hit(m, f"pe.{r}", row, col) for r in PE_REGISTERS))
        else:
            sel = Cat(0, 0, self._hit(m, site, row, col))
        m.d.comb += [pe.fi_sel.eq(sel), pe.fi_kind.eq(self.fi_kind),
                     pe.fi_mask.eq(self.fi_mask[:len(pe.fi_mask)])]

    def faulty(self, value, site, row, col):
        """Return the next ``value`` of register (``site``, ``row``, ``col``) through the fault
        port (unchanged without one)."""
        if not self._config.fault_port:
            return value
        hit = self._hit(self._m, site, row, col)
        return Mux(hit, fault_mux(self.fi_kind, self.fi_mask[:len(value)], value), value)

    def _make_pes(self, m):
        """The array's PEs as ``{(row, col): pe}``, faults connected (inputs not yet)."""
        c = self._config
        self._m = m
        pes = {}
        for r, col in grid_positions(c):
            pes[r, col] = pe = self.new_pe((r, col))
            m.submodules[f"pe_{r}_{col}"] = pe
            self.connect_fault(m, pe, "pe", r, col)
        return pes

    def new_pe(self, pos):
        """A new PE for position ``pos`` (:func:`pe_spec`)."""
        cls, kw = pe_spec(self._config, pos)
        return cls(**kw)

    def _wire(self, m, pes, named, positions):
        """Connect the inputs of the PEs at ``positions`` as :func:`pe_sources` says."""
        for pos in positions:
            m.d.comb += [getattr(pes[pos], port).eq(resolve(src, pes, named))
                         for port, src in pe_sources(self._config, pos).items()]

    def _stat_unit(self, m, d, d_valid, d_end):
        """Attach the statistical unit to the difference stream and expose its ports."""
        c = self._config
        unit = StatisticalUnit(n=c.stat_n, acc_width=c.acc_width, abft=c.abft,
                               param_sets=c.param_sets, hist_bins=c.hist_bins,
                               counter_width=c.counter_width, fault_port=c.fault_port)
        m.submodules.stats = unit
        m.d.comb += [unit.i_d.eq(d), unit.i_valid.eq(d_valid), unit.i_end.eq(d_end),
                     unit.i_sel.eq(self.param_sel), self.o_d.eq(d), self.o_d_valid.eq(d_valid)]
        # The unit's ports of StatPorts are the array's own (inputs in, outputs out): one
        # signature, forwarded by wiring.connect between the two views of it.
        ports = stat_ports(c)
        wiring.connect(m, wiring.flipped(_View(ports, self)), _View(ports, unit))
        if c.fault_port:
            m.d.comb += [unit.fi_msd.eq(self._hit(m, "stat.msd", 0, 0)),
                         unit.fi_kind.eq(self.fi_kind), unit.fi_mask.eq(self.fi_mask)]


class WSArray(_Array):
    """Weight-stationary systolic array (see the module docstring for timing).

    Members
    -------
    i_w : In(stream.Signature(ArrayLayout(signed(data_width), cols)))
        Weight rows, first row first.
    i_a : In(stream.Signature(StructLayout({"a": rows lanes, "last": 1})))
        Activation vectors; ``last`` closes the checked tile (ABFT variants; a tile also
        closes after ``cols`` vectors).
    o_c : Out(ArrayLayout(signed(acc_width), cols))
        Output vector, valid while ``o_valid``.
    o_valid : Out(1)
    busy : Out(1)
        An activation vector is in flight.
    """

    def __init__(self, config):
        super().__init__(config, {
            "i_w": In(stream.Signature(_lanes(config.data_width, config.cols))),
            "i_a": In(stream.Signature(data.StructLayout({
                "a": _lanes(config.data_width, config.rows), "last": 1}))),
            "o_c": Out(_lanes(config.acc_width, config.cols)),
            "o_valid": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        pes = self._make_pes(m)

        ctl = ws_control(m, c, self.i_w.valid, self.i_a.valid, self.i_a.payload.last)
        w_accept, a_accept = ctl["w_accept"], ctl["a_accept"]
        m.d.comb += [self.busy.eq(ctl["busy"]), self.i_w.ready.eq(ctl["w_ready"]),
                     self.i_a.ready.eq(ctl["a_ready"]), self.o_valid.eq(ctl["o_valid"])]

        # Zero lanes when no vector is accepted, so idle cycles add nothing.
        a_in = [Signal(signed(c.data_width), name=f"a_in_{r}") for r in range(c.rows)]
        with m.If(a_accept):
            m.d.comb += [a_in[r].eq(self.i_a.payload.a[r]) for r in range(c.rows)]
        a_skewed = skew(m, a_in, "a_skew")

        # Shift activations east along each row; partial sums south along each column;
        # weights north along each column.
        self._wire(m, pes, {"a_skew": a_skewed, "i_w": self.i_w.payload, "w_accept": w_accept},
                   grid_positions(c))

        # Align the columns: column ``col`` leaves ``cols - 1 - col`` cycles early.
        bottom = [pes[c.rows - 1, col].o_p for col in range(c.cols)]
        aligned = skew(m, bottom[::-1], "c_align")[::-1]
        for col in range(c.cols):
            m.d.comb += self.o_c[col].eq(aligned[col])

        if c.abft is not Abft.NONE:
            self._stat_unit(m, *ws_checksums(m, self, pes, w_accept, ctl["o_valid"],
                                             ctl["o_last"]))
        return m


class OSArray(_Array):
    """Output-stationary systolic array (see the module docstring for timing).

    Members
    -------
    i_ab : In(stream.Signature(StructLayout({"a": rows lanes, "b": cols lanes, "last": 1})))
        One reduction step: column k of A, row k of B.
    o_c : Out(ArrayLayout(signed(acc_width), cols))
        One row of C, valid while ``o_valid``; its index is ``o_row``.
    o_row : Out(range(rows))
    o_last : Out(1)
        The row leaving is the tile's last (row 0).
    o_valid : Out(1)
    busy : Out(1)
        A tile is being flushed or drained.
    """

    def __init__(self, config):
        self._beat = data.StructLayout({
            "a": _lanes(config.data_width, config.rows),
            "b": _lanes(config.data_width, config.cols),
            "last": 1,
        })
        super().__init__(config, {
            "i_ab": In(stream.Signature(self._beat)),
            "o_c": Out(_lanes(config.acc_width, config.cols)),
            "o_row": Out(range(config.rows)),
            "o_last": Out(1),
            "o_valid": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        pes = self._make_pes(m)

        ctl = os_control(m, c, self.i_ab.valid, self.i_ab.payload.last)
        accept, drain = ctl["accept"], ctl["drain"]
        m.d.comb += [self.i_ab.ready.eq(ctl["ready"]), self.busy.eq(ctl["busy"]),
                     self.o_valid.eq(drain), self.o_row.eq(ctl["row"]),
                     self.o_last.eq(ctl["o_last"])]

        a_in = [Signal(signed(c.data_width), name=f"a_in_{r}") for r in range(c.rows)]
        b_in = [Signal(signed(c.data_width), name=f"b_in_{col}") for col in range(c.cols)]
        with m.If(accept):
            m.d.comb += [a_in[r].eq(self.i_ab.payload.a[r]) for r in range(c.rows)]
            m.d.comb += [b_in[col].eq(self.i_ab.payload.b[col]) for col in range(c.cols)]
        a_skewed = skew(m, a_in, "a_skew")
        b_skewed = skew(m, b_in, "b_skew")

        # Shift A east along rows and B south along columns; accumulators drain south.
        self._wire(m, pes, {"a_skew": a_skewed, "b_skew": b_skewed, "drain": drain},
                   grid_positions(c))
        for col in range(c.cols):
            m.d.comb += self.o_c[col].eq(pes[c.rows - 1, col].o_c)

        if c.abft is not Abft.NONE:
            a_port = [self.i_ab.payload.a[r] for r in range(c.rows)]
            self._stat_unit(m, *os_checksums(m, self, pes, a_port, accept, ctl["drain_next"],
                                             self.o_last))
        return m


def SystolicArray(config):
    """Build the array component for ``config`` (:class:`WSArray` or :class:`OSArray`)."""
    return {Dataflow.WS: WSArray, Dataflow.OS: OSArray}[config.dataflow](config)
