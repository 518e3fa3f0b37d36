"""ABFT checksum logic for both dataflows (``realm.md`` §5.1, paper Fig. 7a/b).

**WS.** A checksum column of PEs right of the array holds eᵀW (``s_r = sum_c W[r][c]``, computed
by an adder tree as each weight row is pushed, ``checksum_weight_width`` bits so it never
overflows) and produces eᵀWx for every streamed vector; a chain of adders under the array
accumulates eᵀy column by column, in step with the output skew. Both are ready one cycle after
the vector's output: ``d = eᵀy - eᵀWx`` (wrapping at ``acc_width``, like the array, so ``d`` is
exactly 0 without a fault even when sums overflow).

**OS.** An adder tree sums each beat's ``rows`` activations (eᵀA, the left operand); after a
``rows``-cycle delay the sum enters a checksum row of PEs under the array, which multiplies it
with the weights leaving the bottom row: eᵀAB per column. A row of accumulators adds up the
rows of C as the tile drains (eᵀY). The cycle after the drain, ``d = eᵀY - eᵀAB`` replaces eᵀY
in that row, which then shifts the ``cols`` differences into the statistical unit, one per
cycle; the checksum PEs are cleared at the same edge.
"""
from amaranth import Signal, signed

from .pe import OSProcessingElement, WSProcessingElement


def lane_sum(m, values, width, name):
    """A signal holding the sum of ``values`` (``width`` bits: wide enough not to overflow)."""
    total = Signal(signed(width), name=name)
    m.d.comb += total.eq(sum(values[1:], values[0]))
    return total


def ws_checksums(m, array, pes, w_accept, o_valid, o_last):
    """Add the WS checksum column and output chain; return ``(d, d_valid, d_end)``."""
    c = array.config
    rows, cols, aw = c.rows, c.cols, c.acc_width
    cw = c.checksum_weight_width
    s_row = lane_sum(m, [array.i_w.payload[col] for col in range(cols)], cw, "ck_w_sum")
    ck = [WSProcessingElement(data_width=c.data_width, weight_width=cw, acc_width=aw,
                              fault_port=c.fault_port) for _ in range(rows)]
    for r, pe in enumerate(ck):
        m.submodules[f"ck_{r}"] = pe
        m.d.comb += [
            pe.i_a.eq(pes[r][cols - 1].o_a),
            pe.i_p.eq(0 if r == 0 else ck[r - 1].o_p),
            pe.i_w.eq(s_row if r == rows - 1 else ck[r + 1].o_w),
            pe.w_load.eq(w_accept),
        ]
        array.connect_fault(m, pe, "ck.acc", r, 0)
    # eᵀy: yc[col] = sum of outputs 0..col, one column per cycle, in step with the skew.
    yc = [Signal(signed(aw), name=f"ck_y_{col}") for col in range(cols)]
    for col in range(cols):
        ws_y_cell(m, yc[col], pes[rows - 1][col].o_p, yc[col - 1] if col else None,
                  lambda v, col=col: array.faulty(v, "ck.y", 0, col))
    d, d_valid, d_end = Signal(signed(aw)), Signal(), Signal()
    m.d.comb += d.eq(yc[cols - 1] - ck[rows - 1].o_p)
    m.d.sync += [d_valid.eq(o_valid), d_end.eq(o_valid & o_last)]
    return d, d_valid, d_end


def os_checksums(m, array, pes, a_in, drain, o_last):
    """Add the OS weight-sum adders, checksum row and accumulator row; return
    ``(d, d_valid, d_end)``."""
    c = array.config
    rows, cols, aw = c.rows, c.cols, c.acc_width
    sw = c.checksum_weight_width
    s_beat = lane_sum(m, a_in, sw, "ck_a_sum")
    prev = s_beat
    for i in range(rows):  # align eᵀA with the weights leaving the bottom row
        reg = Signal(signed(sw), name=f"ck_s_{i}")
        m.d.sync += reg.eq(prev)
        prev = reg
    check = Signal()  # the cycle after the drain
    m.d.sync += check.eq(o_last)
    ck = [OSProcessingElement(data_width=c.data_width, a_width=sw, acc_width=aw,
                              fault_port=c.fault_port) for _ in range(cols)]
    for col, pe in enumerate(ck):
        m.submodules[f"ck_{col}"] = pe
        m.d.comb += [
            pe.i_a.eq(prev if col == 0 else ck[col - 1].o_a),
            pe.i_b.eq(pes[rows - 1][col].o_b),
            pe.i_c.eq(0),
            pe.drain.eq(check),
        ]
        array.connect_fault(m, pe, "ck.acc", 0, col)
    shift, d_end = os_shift_control(m, cols, check)
    y = [Signal(signed(aw), name=f"ck_y_{col}") for col in range(cols)]
    for col in range(cols):
        os_y_cell(m, y[col], y[col + 1] if col < cols - 1 else 0, pes[rows - 1][col].o_c,
                  ck[col].o_c, drain, check, shift,
                  lambda v, col=col: array.faulty(v, "ck.y", 0, col))
    return y[0], shift, d_end


def ws_y_cell(m, y, o_p, prev, faulty=lambda v: v):
    """One cell of the WS eᵀy chain: ``y <= o_p + prev`` (``prev`` None in column 0)."""
    value = o_p + prev if prev is not None else o_p
    m.d.sync += y.eq(faulty(value[:len(y)].as_signed()))


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
    shift the difference west."""
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
