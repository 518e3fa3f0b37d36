"""The ReaLM statistical unit (paper Fig. 7c) and the cheaper units of the classic
and MSD-threshold variants, with saturating event counters.

The unit takes one checksum difference ``d`` per cycle (``i_valid``) and closes a tile on
``i_end`` or on its ``n``-th difference. Decisions follow :mod:`golden.stats` bit for bit
(fixed-point log2, threshold, countif, the three policies).

Pipeline (one tile per stage; a tile may follow the previous one at once). The tile's last
``d`` is on the input in cycle C; each stage is one register level, so that no stage is longer
than a PE's multiply-accumulate (the ABFT logic must not lengthen the array's critical
path):

* R0 (C): input register; R1 (C+1): ``|d|``, ``d != 0`` and the MSD addend (``d`` or ``|d|``);
* E (C+2): MSD accumulation in two halves, the high one a cycle behind (so no carry chain is
  longer than half the MSD), ``log2|d|`` (log-depth leading-one detector) into the tile's
  bank, histogram;
* S0 (C+3): the tile's MSD resolved from its halves; S1a (C+4): ``|MSD|`` (in halves) and the
  tile's parameter set; S1b (C+5): ``log2|MSD|`` and the MSD-threshold decision (compared in
  halves); S1c (C+6): ``theta = b - (a - 1) log2|MSD|``;
* S2a (C+7): every buffered ``log2|d_j|`` compared with theta in parallel (countif);
  S2b (C+8): counts of groups of :data:`POP_GROUP`; S2c (C+9): ``freq_eff``;
* S3 (C+10): decide and count; ``o_done`` pulses in C + :data:`DECISION_LATENCY`.

The buffer has :data:`BANKS` banks used in turn, so a tile's bank is not overwritten before
S2a reads it even when every following tile has a single difference. A fault on the MSD
register (``stat.msd``) acts on the pair of halves, low half in the low bits.

Variants (``abft``): ``classic`` keeps only the mismatch detector; ``approx`` adds the MSD
accumulator and its threshold; ``realm`` adds the log2 unit, the buffers, countif, the
histogram and a per-set ``policy`` so that it can run all three policies. All variants have the
same latency.

Parameter sets (``param_sets`` of them, one per network component) are written through the
``cfg_*`` port; ``i_sel`` (sampled with each ``d``) chooses the set of the tile: R1 reads its
``msd_mode``, S1a the rest.
"""
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .config import Abft
from .facts import BANKS, COUNTERS, LOG_FRAC, POP_GROUP, FaultKind, clog2, msd_halves, stat_widths
from .pe import fault_mux

__all__ = ["log2q", "StatPorts", "StatisticalUnit"]


def _leading_one(x):
    """``(any, pos)``: whether ``x`` has a set bit and the index of the highest one (0 if none),
    as a balanced tree of ``log2(len(x))`` levels."""
    width = 1 << clog2(len(x))
    x = Cat(x, Const(0, width - len(x)))
    if width == 2:
        return x[0] | x[1], x[1]
    lo_any, lo_pos = _leading_one(x[:width // 2])
    hi_any, hi_pos = _leading_one(x[width // 2:])
    return lo_any | hi_any, Cat(Mux(hi_any, hi_pos, lo_pos), hi_any)


def log2q(m, x, name):
    """Fixed-point log2 of unsigned ``x`` (see :mod:`golden.stats`): leading-one position and
    the ``LOG_FRAC`` bits after it."""
    width = len(x)
    p = Signal(range(width), name=f"{name}_p")
    m.d.comb += p.eq(_leading_one(x)[1])
    frac = Signal(LOG_FRAC, name=f"{name}_frac")
    m.d.comb += frac.eq(((x << LOG_FRAC) >> p)[:LOG_FRAC])
    out = Signal((width.bit_length() + LOG_FRAC), name=name)
    m.d.comb += out.eq(Mux(x == 0, 0, Cat(frac, p)))
    return out, p


def _sat_add(reg, amount, width):
    total = reg + amount
    return Mux(total > (1 << width) - 1, (1 << width) - 1, total)


def magnitude(value, width, name):
    """``|value|`` as ``(value ^ s) + s`` with ``s`` the sign: where ``value`` is a sign
    extension, its top bits cancel before the addition, so synthesis narrows the adder (and
    the register it feeds) to the significant bits by itself."""
    out = Signal(width, name=name)
    sign = value[-1]
    return out, out.eq((value.as_unsigned() ^ sign.replicate(len(value))) + sign)


class StatPorts(wiring.Signature):
    """The statistical unit's ports that the array passes through to its own: the
    parameter-set write port, the tile's decision and the counters (one signature for both).

    Members
    -------
    cfg_we, cfg_set, cfg_am1, cfg_b, cfg_freq, cfg_msd_th, cfg_policy, cfg_msd_mode : In
        Parameter-set write port (one set per cycle).
    o_done, o_recompute, o_flags, o_mismatch, o_freq_eff, o_msd, o_theta : Out
        The decision of a tile (``o_done`` pulses with it) and its statistics.
    c_hist, c_<counter> : Out
        Saturating counters (:data:`hw.facts.COUNTERS`) and the histogram.
    """

    def __init__(self, *, n, acc_width, param_sets, hist_bins, counter_width):
        w = stat_widths(n, acc_width)
        super().__init__({
            "cfg_we": In(1), "cfg_set": In(range(param_sets)), "cfg_am1": In(10),
            "cfg_b": In(signed(16)), "cfg_freq": In(w["freq"]), "cfg_msd_th": In(w["msd"]),
            "cfg_policy": In(2), "cfg_msd_mode": In(1),
            "o_done": Out(1), "o_recompute": Out(1), "o_flags": Out(3), "o_mismatch": Out(1),
            "o_freq_eff": Out(w["freq"]), "o_msd": Out(signed(w["msd"])),
            "o_theta": Out(signed(w["theta"])),
            "c_hist": Out(data.ArrayLayout(counter_width, hist_bins)),
            **{f"c_{name}": Out(counter_width) for name in COUNTERS},
        })


class StatisticalUnit(wiring.Component):
    """See the module docstring. ``n`` is the number of differences of a tile.

    Members
    -------
    i_d, i_valid, i_end, i_sel : In
        Difference stream, tile end, parameter set of the tile.
    cfg_we, cfg_set, cfg_am1, cfg_b, cfg_freq, cfg_msd_th, cfg_policy, cfg_msd_mode : In
        Parameter-set write port (one set per cycle).
    o_done : Out(1)
        Pulses for one cycle with the decision of a tile.
    o_recompute, o_flags, o_freq_eff, o_msd, o_theta, o_mismatch : Out
        The tile's decision (``o_flags`` = classic, approx, realm) and statistics.
    c_<counter>, c_hist : Out
        Saturating counters: tiles checked, tiles with any mismatch, tiles flagged, errors
        above the magnitude threshold, and the histogram of ``floor(log2|d|)``.
    """

    def __init__(self, *, n, acc_width, abft, param_sets=4, hist_bins=8, counter_width=32,
                 fault_port=False):
        self._n, self._aw, self._abft = n, acc_width, Abft(abft)
        self._sets, self._bins, self._cw = param_sets, hist_bins, counter_width
        self._fault_port = fault_port
        w = self.widths = stat_widths(n, acc_width)
        self.ports = StatPorts(n=n, acc_width=acc_width, param_sets=param_sets,
                               hist_bins=hist_bins, counter_width=counter_width)
        members = {
            "i_d": In(signed(acc_width)), "i_valid": In(1), "i_end": In(1),
            "i_sel": In(range(param_sets)),
            **self.ports.members,
        }
        if fault_port:
            members.update({"fi_msd": In(1), "fi_kind": In(FaultKind),
                            "fi_mask": In(w["msd"])})
        super().__init__(members)

    def _stage(self, m, valid_in, name, fields):
        """A pipeline stage: a valid bit and ``fields`` (name -> shape) loaded while the
        previous stage is valid. Return ``(valid, regs)``."""
        valid = Signal(name=f"{name}_valid")
        m.d.sync += valid.eq(valid_in)
        return valid, {k: Signal(shape, name=f"{name}_{k}") for k, shape in fields.items()}

    def elaborate(self, platform):
        m = Module()
        n, aw, w, cw = self._n, self._aw, self.widths, self._cw
        realm = self._abft is Abft.REALM
        approx = self._abft in (Abft.APPROX, Abft.REALM)
        sel_shape = range(self._sets)

        # Parameter sets.
        fields = {"am1": 10, "b": signed(16), "freq": w["freq"], "msd_th": w["msd"],
                  "policy": 2, "msd_mode": 1}
        sets = Array(Signal(data.StructLayout(fields), name=f"params_{i}")
                     for i in range(self._sets))
        with m.If(self.cfg_we):
            m.d.sync += sets[self.cfg_set].eq(Cat(self.cfg_am1, self.cfg_b, self.cfg_freq,
                                                  self.cfg_msd_th, self.cfg_policy,
                                                  self.cfg_msd_mode))

        # R0: input register. R1: magnitude.
        v0, r0 = self._stage(m, self.i_valid, "r0",
                             {"d": signed(aw), "end": 1, "sel": sel_shape})
        with m.If(self.i_valid):
            m.d.sync += [r0["d"].eq(self.i_d), r0["end"].eq(self.i_end),
                         r0["sel"].eq(self.i_sel)]
        v1, r1 = self._stage(m, v0, "r1", {"d": signed(aw), "mag": aw, "nz": 1, "end": 1,
                                           "sel": sel_shape, "add": signed(aw + 1)})
        mag0, mag0_eq = magnitude(r0["d"], aw, "r0_mag")
        m.d.comb += mag0_eq
        with m.If(v0):
            m.d.sync += [r1["d"].eq(r0["d"]), r1["mag"].eq(mag0), r1["nz"].eq(r0["d"] != 0),
                         r1["end"].eq(r0["end"]), r1["sel"].eq(r0["sel"]),
                         # the MSD addend of the tile's mode: d or |d|
                         r1["add"].eq(Mux(sets[r0["sel"]].msd_mode, mag0, r0["d"]))]

        # E: accumulate MSD, buffer log2|d|, histogram. MSD is split into a low half and a
        # high half that lags one cycle (its addend and the low half's carry wait in px, pc),
        # so that no carry chain is longer than half the MSD (``msd_halves``).
        lw, hw_ = msd_halves(w["msd"])
        mag, nz = r1["mag"], r1["nz"]
        idx = Signal(range(n))
        wbank = Signal(range(BANKS))
        lo, hi, px, pc = Signal(lw), Signal(hw_), Signal(hw_), Signal()
        mm = Signal()
        end = r1["end"] | (idx == n - 1)
        x = Signal(signed(w["msd"]))
        lo_sum, hi_sum = Signal(lw + 1), Signal(hw_)
        if approx:
            m.d.comb += [x.eq(r1["add"]), lo_sum.eq(lo + x[:lw]), hi_sum.eq(hi + px + pc)]
        s1, h = self._stage(m, v1 & end, "h", {"lo": lw, "hi": hw_, "px": hw_, "pc": 1,
                                               "mm": 1, "cnt": range(n + 1),
                                               "bank": range(BANKS), "sel": sel_shape})
        nxt = {k: Signal(len(r), name=f"msd_{k}_next") for k, r in
               (("lo", lo), ("hi", hi), ("px", px), ("pc", pc))}
        with m.If(v1):
            with m.If(end):
                m.d.sync += [h["lo"].eq(lo_sum[:lw]), h["hi"].eq(hi_sum), h["px"].eq(x[lw:]),
                             h["pc"].eq(lo_sum[lw]), h["mm"].eq(mm | nz), h["cnt"].eq(idx + 1),
                             h["bank"].eq(wbank),
                             h["sel"].eq(r1["sel"]), idx.eq(0),
                             wbank.eq(Mux(wbank == BANKS - 1, 0, wbank + 1)), mm.eq(0)]
            with m.Else():
                m.d.sync += [idx.eq(idx + 1), mm.eq(mm | nz)]
                m.d.comb += [nxt["lo"].eq(lo_sum[:lw]), nxt["hi"].eq(hi_sum),
                             nxt["px"].eq(x[lw:]), nxt["pc"].eq(lo_sum[lw])]
        with m.Else():
            m.d.comb += [nxt["lo"].eq(lo), nxt["hi"].eq(hi_sum)]
        pair = Cat(nxt["lo"], nxt["hi"])
        if self._fault_port:
            pair = Mux(self.fi_msd, fault_mux(self.fi_kind, self.fi_mask, pair), pair)
        m.d.sync += [Cat(lo, hi).eq(pair), px.eq(nxt["px"]), pc.eq(nxt["pc"])]

        entry = data.StructLayout({"nz": 1, "log": w["log_d"]})
        # No reset: S2a only reads the entries its tile wrote (j < cnt).
        banks = [[Signal(entry, name=f"buf{b}_{j}", reset_less=True) for j in range(n)]
                 for b in range(BANKS)]
        hist = [Signal(cw, name=f"hist_{i}") for i in range(self._bins)]
        if realm:
            log_d, p_d = log2q(m, mag, "log_d")
            for b in range(BANKS):
                for j in range(n):
                    with m.If(v1 & (wbank == b) & (idx == j)):
                        m.d.sync += banks[b][j].eq(Cat(nz, log_d))
            per = -(-aw // self._bins)
            bin_of = Array(p // per for p in range(aw))
            for i in range(self._bins):
                with m.If(v1 & nz & (bin_of[p_d] == i)):
                    m.d.sync += hist[i].eq(_sat_add(hist[i], 1, cw))

        # S0: resolve MSD. S1a: |MSD| and the tile's parameters.
        carry = {"msd": signed(w["msd"]), "mm": 1, "cnt": range(n + 1), "bank": range(BANKS)}
        s1r, h0 = self._stage(m, s1, "s0", {**carry, "sel": sel_shape})
        with m.If(s1):
            m.d.sync += [*(h0[k].eq(h[k]) for k in ("mm", "cnt", "bank", "sel")),
                         h0["msd"].eq(Cat(h["lo"], h["hi"] + h["px"] + h["pc"]))]
        h = h0
        s2, a = self._stage(m, s1r, "s1a", {**carry, "abs": w["msd"],
                                            "p": data.StructLayout(fields)})
        # |MSD| in halves: the high half of -MSD is -hi if the low half is 0, else ~hi.
        msd_lo, msd_hi = h["msd"][:lw], h["msd"][lw:]
        neg = Cat((-msd_lo)[:lw], Mux(msd_lo == 0, -msd_hi, ~msd_hi)[:hw_])
        with m.If(s1r):
            m.d.sync += [*(a[k].eq(h[k]) for k in carry),
                         a["abs"].eq(Mux(h["msd"] < 0, neg, h["msd"])),
                         a["p"].eq(sets[h["sel"]])]

        # S1b: log2|MSD| and the MSD-threshold decision.
        s3, b = self._stage(m, s2, "s1b", {**carry, "p": data.StructLayout(fields),
                                           "log": w["log_msd"], "fa": 1})
        with m.If(s2):
            m.d.sync += [*(b[k].eq(a[k]) for k in (*carry, "p"))]
            if approx:
                ab, th = a["abs"], a["p"].msd_th  # compared in halves
                m.d.sync += b["fa"].eq((ab[lw:] > th[lw:])
                                       | ((ab[lw:] == th[lw:]) & (ab[:lw] > th[:lw])))
            if realm:
                m.d.sync += b["log"].eq(log2q(m, a["abs"], "log_msd")[0])

        # S1c: the magnitude threshold.
        tail = {"msd": signed(w["msd"]), "flags": 2, "freq_th": w["freq"], "policy": 2,
                "theta": signed(w["theta"])}
        s4, c = self._stage(m, s3, "s1c", {**tail, "cnt": range(n + 1), "bank": range(BANKS)})
        with m.If(s3):
            m.d.sync += [c["msd"].eq(b["msd"]), c["flags"].eq(Cat(b["mm"], b["fa"])),
                         c["freq_th"].eq(b["p"].freq), c["policy"].eq(b["p"].policy),
                         c["cnt"].eq(b["cnt"]), c["bank"].eq(b["bank"])]
            if realm:
                m.d.sync += c["theta"].eq((b["p"].b * 16 - b["p"].am1 * b["log"]) >> 8)

        # S2a: countif comparators over the tile's bank, in parallel.
        s5, e = self._stage(m, s4, "s2a", {**tail, "hits": n})
        with m.If(s4):
            m.d.sync += [e[k].eq(c[k]) for k in tail]
            if realm:
                hits = []
                for j in range(n):
                    ent = Array(banks[bk][j] for bk in range(BANKS))[c["bank"]]
                    hits.append((j < c["cnt"]) & ent.nz & (ent.log > c["theta"]))
                m.d.sync += e["hits"].eq(Cat(*hits))

        # S2b: partial counts; S2c: freq_eff.
        groups = [(g, min(g + POP_GROUP, n)) for g in range(0, n, POP_GROUP)]
        s6, f = self._stage(m, s5, "s2b", {**tail, **{f"part{i}": range(POP_GROUP + 1)
                                                       for i in range(len(groups))}})
        with m.If(s5):
            m.d.sync += [f[k].eq(e[k]) for k in tail]
            if realm:
                m.d.sync += [f[f"part{i}"].eq(sum(e["hits"][lo:hi]))
                             for i, (lo, hi) in enumerate(groups)]
        s7, g = self._stage(m, s6, "s2c", {**tail, "freq": w["freq"]})
        with m.If(s6):
            m.d.sync += [g[k].eq(f[k]) for k in tail]
            if realm:
                m.d.sync += g["freq"].eq(sum(f[f"part{i}"] for i in range(len(groups))))

        # S3: decide, publish, count.
        flag_realm = (g["freq"] > g["freq_th"]) if realm else 0
        flags = Cat(g["flags"], flag_realm)
        if realm:
            recompute = Array([flags[0], flags[1], flags[2], flags[2]])[g["policy"]]
        else:
            recompute = flags[1] if self._abft is Abft.APPROX else flags[0]
        m.d.sync += self.o_done.eq(s7)
        counters = {name: getattr(self, f"c_{name}") for name in COUNTERS}
        with m.If(s7):
            m.d.sync += [self.o_recompute.eq(recompute), self.o_flags.eq(flags),
                         self.o_mismatch.eq(g["flags"][0]), self.o_freq_eff.eq(g["freq"]),
                         self.o_msd.eq(g["msd"]), self.o_theta.eq(g["theta"]),
                         counters["tiles_checked"].eq(_sat_add(counters["tiles_checked"], 1, cw)),
                         counters["tiles_mismatch"].eq(
                             _sat_add(counters["tiles_mismatch"], g["flags"][0], cw)),
                         counters["tiles_flagged"].eq(
                             _sat_add(counters["tiles_flagged"], recompute, cw)),
                         counters["errors_above"].eq(
                             _sat_add(counters["errors_above"], g["freq"], cw))]
        m.d.comb += [self.c_hist[i].eq(hist[i]) for i in range(self._bins)]
        return m
