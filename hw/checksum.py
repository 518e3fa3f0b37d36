"""ABFT checksum logic for both dataflows (paper Fig. 7a/b).

**WS.** A checksum column of PEs right of the array holds eᵀW (``s_r = sum_c W[r][c]``, computed
by a pipelined adder tree as each weight row is pushed, ``checksum_weight_width`` bits so it
never overflows; the column loads it :func:`lane_stages` cycles after the array loads the row)
and produces eᵀWx for every streamed vector; a chain of adders under the array accumulates eᵀy
column by column, in step with the output skew. The checksum PEs register their wider product
before adding it, so eᵀWx is ready one cycle after eᵀy, two after the vector's output; then
``d = eᵀy - eᵀWx`` (wrapping at ``acc_width``, like the array, so ``d`` is exactly 0 without a
fault even when sums overflow).

**OS.** A pipelined adder tree sums each beat's ``rows`` activations (eᵀA, the left operand);
after ``rows - 1`` cycles in all the sum enters a checksum row of PEs under the array, which
multiplies it with the weights entering the bottom row (product registered, then accumulated,
so the sum arrives when the weights leave the array): eᵀAB per column. A row of accumulators
adds up the rows of C as the tile drains (eᵀY). The cycle after the drain, ``d = eᵀY - eᵀAB``
replaces eᵀY in that row, which then shifts the ``cols`` differences into the statistical
unit, one per cycle; the checksum PEs are cleared at the same edge.

Every register level is at most a PE's multiply-accumulate deep: the ABFT logic must not
lengthen the array's critical path (the paper's overhead figures assume it does not).
"""
from amaranth import Mux, Signal, signed

from .config import Dataflow
from .pe import OSProcessingElement, WSProcessingElement

#: Adder-tree levels between pipeline registers in :func:`lane_sum`.
LEVELS_PER_STAGE = 2


def lane_stages(n):
    """Pipeline registers of a :func:`lane_sum` over ``n`` lanes (cycles of latency)."""
    levels = max(0, (n - 1).bit_length())
    return max(0, levels - 1) // LEVELS_PER_STAGE


def lane_sum(m, values, width, name):
    """The sum of ``values`` (``width`` bits: wide enough not to overflow) by a balanced adder
    tree with a register after every :data:`LEVELS_PER_STAGE` levels but the last ones, so that
    no stage is longer than a PE's multiply-accumulate; the sum is :func:`lane_stages` cycles
    late."""
    level, depth = list(values), 0
    while len(level) > 1:
        level = [level[i] + level[i + 1] if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
        depth += 1
        if depth % LEVELS_PER_STAGE == 0 and len(level) > 1 and (
                depth // LEVELS_PER_STAGE <= lane_stages(len(values))):
            regs = [Signal(signed(width), name=f"{name}_s{depth}_{i}")
                    for i in range(len(level))]
            m.d.sync += [r.eq(v) for r, v in zip(regs, level)]
            level = regs
    total = Signal(signed(width), name=name)
    m.d.comb += total.eq(level[0])
    return total


def gated_lane_sum(m, values, enable, width, name):
    """:func:`lane_sum` of ``values`` where ``enable`` is high, 0 elsewhere, with the same
    latency. The gate acts on the sum, with ``enable`` delayed like it, rather than on the
    inputs: an input gate would put the control decoder that drives ``enable`` in front of
    the first adder levels (the array's input gates feed registers only)."""
    total = lane_sum(m, values, width, name + "_raw")
    for i in range(lane_stages(len(values))):
        reg = Signal(name=f"{name}_en_{i}")
        m.d.sync += reg.eq(enable)
        enable = reg
    gated = Signal(signed(width), name=name)
    m.d.comb += gated.eq(Mux(enable, total, 0))
    return gated


def check_pe_spec(config, kw):
    """``(class, keyword arguments)`` of a checksum PE, from an array PE's ``kw``: WS eᵀW
    weights, OS eᵀA activations, ``checksum_weight_width`` wide; product registered."""
    cw = config.checksum_weight_width
    if config.dataflow is Dataflow.WS:
        return WSProcessingElement, {**kw, "weight_width": cw, "pipelined": True}
    return OSProcessingElement, {**kw, "a_width": cw, "pipelined": True}


def check_pe_sources(config, pos):
    """``{input: source}`` of the checksum PE at ``pos`` (see :func:`hw.array.pe_sources`)."""
    c, (r, col) = config, pos
    if c.dataflow is Dataflow.WS:
        return {"i_a": ("pe", r, c.cols - 1, "o_a"),
                "i_p": 0 if r == 0 else ("pe", r - 1, c.cols, "o_p"),
                "i_w": "s_row" if r == c.rows - 1 else ("pe", r + 1, c.cols, "o_w"),
                "w_load": "ck_load"}
    # The bottom PEs' i_b: the weights a cycle before they leave the array (the product
    # register puts eᵀA·b in step with the bottom row's accumulation).
    return {"i_a": "ck_sum" if col == 0 else ("pe", c.rows, col - 1, "o_a"),
            "i_b": ("pe", c.rows - 1, col, "i_b"),
            "i_c": 0,
            "drain": "check"}


def check_reads(config):
    """The checksum PEs' ports the logic outside them reads (eᵀWx, eᵀAB)."""
    c = config
    if c.dataflow is Dataflow.WS:
        return [("pe", c.rows - 1, c.cols, "o_p")]
    return [("pe", c.rows, col, "o_c") for col in range(c.cols)]


def os_sum_delay(rows):
    """Registers aligning eᵀA with the weights entering the bottom row, after the
    :func:`gated_lane_sum`'s own :func:`lane_stages`."""
    return rows - 1 - lane_stages(rows)


def check_positions(config):
    """Positions of the checksum PEs: WS column ``cols``, OS row ``rows``."""
    c = config
    if c.dataflow is Dataflow.WS:
        return [(r, c.cols) for r in range(c.rows)]
    return [(c.rows, col) for col in range(c.cols)]


def _check_pes(m, array, pes, named):
    """Add the checksum PEs to ``pes`` and wire them; return them in order."""
    c = array.config
    positions = check_positions(c)
    for pos in positions:
        pes[pos] = array.new_pe(pos)
    for i, pos in enumerate(positions):
        m.submodules[f"ck_{i}"] = pes[pos]
        array._wire(m, pes, named, [pos])
        array.connect_fault(m, pes[pos], "ck.acc", *((i, 0) if pos[1] == c.cols else (0, i)))
    return [pes[pos] for pos in positions]


def ws_checksums(m, array, pes, w_accept, o_valid, o_last):
    """Add the WS checksum column and output chain; return ``(d, d_valid, d_end)``."""
    c = array.config
    rows, cols, aw = c.rows, c.cols, c.acc_width
    cw = c.checksum_weight_width
    s_row = lane_sum(m, [array.i_w.payload[col] for col in range(cols)], cw, "ck_w_sum")
    ck_load = w_accept  # delayed like the pipelined adder tree
    for i in range(lane_stages(cols)):
        reg = Signal(name=f"ck_load_{i}")
        m.d.sync += reg.eq(ck_load)
        ck_load = reg
    ck = _check_pes(m, array, pes, {"s_row": s_row, "ck_load": ck_load})
    # eᵀy: yc[col] = sum of outputs 0..col, one column per cycle, in step with the skew.
    yc = [Signal(signed(aw), name=f"ck_y_{col}") for col in range(cols)]
    for col in range(cols):
        ws_y_cell(m, yc[col], pes[rows - 1, col].o_p, yc[col - 1] if col else None,
                  lambda v, col=col: array.faulty(v, "ck.y", 0, col))
    return ws_difference(m, yc[cols - 1], ck[rows - 1].o_p, o_valid, o_last)


def ws_difference(m, y_sum, ck_sum, o_valid, o_last):
    """``(d, d_valid, d_end)`` of the WS checksums. The checksum PEs' product register puts
    eᵀWx (``ck_sum``) a cycle behind eᵀy (``y_sum``): eᵀy waits for it in a register."""
    y_late, v_late, e_late = Signal.like(y_sum, name="ck_y_late"), Signal(), Signal()
    d, d_valid, d_end = Signal.like(y_sum, name="ck_d"), Signal(), Signal()
    m.d.sync += [y_late.eq(y_sum), v_late.eq(o_valid), e_late.eq(o_valid & o_last),
                 d_valid.eq(v_late), d_end.eq(e_late)]
    m.d.comb += d.eq(y_late - ck_sum)
    return d, d_valid, d_end


def os_checksums(m, array, pes, a_port, accept, drain_next, o_last):
    """Add the OS weight-sum adders, checksum row and accumulator row; return
    ``(d, d_valid, d_end)``. ``a_port`` are the input port's activations (eᵀA counts them
    where ``accept`` is high); ``drain_next`` is the array's ``drain`` one cycle early
    (:func:`hw.array.os_control`)."""
    c = array.config
    rows, cols, aw = c.rows, c.cols, c.acc_width
    sw = c.checksum_weight_width
    s_beat = gated_lane_sum(m, a_port, accept, sw, "ck_a_sum")
    prev = s_beat
    # Align eᵀA with the weights entering the bottom row (the checksum PEs register the
    # product, so they take the bottom PEs' i_b, a cycle before it leaves the array).
    for i in range(os_sum_delay(rows)):
        reg = Signal(signed(sw), name=f"ck_s_{i}")
        m.d.sync += reg.eq(prev)
        prev = reg
    check = os_check(m, o_last)
    ck = _check_pes(m, array, pes, {"ck_sum": prev, "check": check})
    shift, d_end = os_shift_control(m, cols, check)
    # The array's ``drain`` is decoded from its state; a register of its own keeps the
    # decoder out of the eᵀY adders' path (it equals ``drain`` on every cycle).
    drain = Signal(name="ck_drain")
    m.d.sync += drain.eq(drain_next)
    y = [Signal(signed(aw), name=f"ck_y_{col}") for col in range(cols)]
    for col in range(cols):
        os_y_cell(m, y[col], y[col + 1] if col < cols - 1 else 0, pes[rows - 1, col].o_c,
                  ck[col].o_c, drain, check, shift,
                  lambda v, col=col: array.faulty(v, "ck.y", 0, col))
    return y[0], shift, d_end


def ws_y_cell(m, y, o_p, prev, faulty=lambda v: v):
    """One cell of the WS eᵀy chain: ``y <= o_p + prev`` (``prev`` None in column 0)."""
    value = o_p + prev if prev is not None else o_p
    m.d.sync += y.eq(faulty(value[:len(y)].as_signed()))


def os_check(m, o_last):
    """The cycle the OS differences are formed: the one after the drain's last row."""
    check = Signal()
    m.d.sync += check.eq(o_last)
    return check


def os_shift_control(m, cols, check):
    """After ``check``, shift the ``cols`` differences out; return ``(shift, last)``."""
    shift = Signal()
    count = Signal(range(cols))
    with m.If(check):
        m.d.sync += [shift.eq(1), count.eq(0)]
    with m.Elif(shift):
        m.d.sync += count.eq(count + 1)
        with m.If(count == cols - 1):
            m.d.sync += shift.eq(0)
    return shift, shift & (count == cols - 1)


def os_y_cell(m, y, y_east, o_c, ck_c, drain, check, shift, faulty=lambda v: v):
    """One cell of the OS eᵀY row: accumulate the drained rows, then subtract eᵀAB, then
    shift the difference west. ``drain`` should come straight from a register: it selects
    the adder's operand (:func:`os_checksums` keeps a registered copy of the array's)."""
    nxt = Signal.like(y, name=f"{y.name}_next")
    with m.If(drain):
        m.d.comb += nxt.eq(y + o_c)
    with m.Elif(check):
        m.d.comb += nxt.eq(y - ck_c)
    with m.Elif(shift):
        m.d.comb += nxt.eq(y_east)
    with m.Else():
        m.d.comb += nxt.eq(y)
    m.d.sync += y.eq(faulty(nxt))
