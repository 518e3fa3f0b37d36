"""The ReaLM statistical unit (``realm.md`` §5.2, Fig. 7c) and the cheaper units of the classic
and MSD-threshold variants, with saturating event counters.

The unit takes one checksum difference ``d`` per cycle (``i_valid``) and closes a tile on
``i_end`` or on its ``n``-th difference. Decisions follow :mod:`golden.stats` bit for bit
(fixed-point log2, threshold, countif, the three policies). Pipeline: the tile's last ``d`` in
cycle E; MSD and the ``n``-entry buffer are complete at its edge; S1 (E+1) computes
``theta = b - (a - 1) log2|MSD|``; S2 (E+2) compares every buffered ``log2|d_j|`` with it in
parallel and counts (countif); S3 (E+3) decides; ``o_done`` pulses in E+4 with the outputs,
and the counters have counted the tile. A new tile may start in E+1: the buffer has two banks.

Variants (``abft``): ``classic`` keeps only the mismatch detector; ``approx`` adds the MSD
accumulator and its threshold; ``realm`` adds the log2 unit, the buffers, countif, the
histogram and a per-set ``policy`` so that it can run all three policies.

Parameter sets (``param_sets`` of them, one per network component) are written through the
``cfg_*`` port and selected per tile by ``i_sel``, sampled with the tile's last ``d``.
"""
import math

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.stats import LOG_FRAC

from .config import Abft
from .pe import FaultKind

COUNTERS = ("tiles_checked", "tiles_mismatch", "tiles_flagged", "errors_above")


def clog2(n):
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def stat_widths(n, acc_width):
    """Widths of the unit's values: MSD, log2q of MSD and of d, freq count."""
    msd = acc_width + clog2(n) + 1
    log_msd = (msd.bit_length() + LOG_FRAC)
    log_d = (acc_width.bit_length() + LOG_FRAC)
    return {"msd": msd, "log_msd": log_msd, "log_d": log_d, "freq": (n).bit_length(),
            # 16 * b (20 bits signed) - am1 * log2q|MSD| (10 + log_msd bits), >> 8.
            "theta": max(20, 10 + log_msd) + 2 - 8}


def log2q(m, x, name):
    """Fixed-point log2 of unsigned ``x`` (see :mod:`golden.stats`): leading-one position and
    the ``LOG_FRAC`` bits after it."""
    width = len(x)
    p = Signal(range(width), name=f"{name}_p")
    for i in range(width):
        with m.If(x[i]):
            m.d.comb += p.eq(i)
    frac = Signal(LOG_FRAC, name=f"{name}_frac")
    m.d.comb += frac.eq(((x << LOG_FRAC) >> p)[:LOG_FRAC])
    out = Signal((width.bit_length() + LOG_FRAC), name=name)
    m.d.comb += out.eq(Mux(x == 0, 0, Cat(frac, p)))
    return out, p


def _sat_add(reg, amount, width):
    total = reg + amount
    return Mux(total > (1 << width) - 1, (1 << width) - 1, total)


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
        members = {
            "i_d": In(signed(acc_width)), "i_valid": In(1), "i_end": In(1),
            "i_sel": In(range(param_sets)),
            "cfg_we": In(1), "cfg_set": In(range(param_sets)), "cfg_am1": In(10),
            "cfg_b": In(signed(16)), "cfg_freq": In(w["freq"]), "cfg_msd_th": In(w["msd"]),
            "cfg_policy": In(2), "cfg_msd_mode": In(1),
            "o_done": Out(1), "o_recompute": Out(1), "o_flags": Out(3), "o_mismatch": Out(1),
            "o_freq_eff": Out(w["freq"]), "o_msd": Out(signed(w["msd"])),
            "o_theta": Out(signed(w["theta"])),
            "c_hist": Out(data.ArrayLayout(counter_width, hist_bins)),
            **{f"c_{name}": Out(counter_width) for name in COUNTERS},
        }
        if fault_port:
            members.update({"fi_msd": In(1), "fi_kind": In(FaultKind),
                            "fi_mask": In(w["msd"])})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n, aw, w, cw = self._n, self._aw, self.widths, self._cw
        realm = self._abft is Abft.REALM
        approx = self._abft in (Abft.APPROX, Abft.REALM)

        # Parameter sets.
        fields = {"am1": 10, "b": signed(16), "freq": w["freq"], "msd_th": w["msd"],
                  "policy": 2, "msd_mode": 1}
        layout = data.StructLayout(fields)
        sets = Array(Signal(layout, name=f"params_{i}") for i in range(self._sets))
        with m.If(self.cfg_we):
            m.d.sync += sets[self.cfg_set].eq(Cat(self.cfg_am1, self.cfg_b, self.cfg_freq,
                                                  self.cfg_msd_th, self.cfg_policy,
                                                  self.cfg_msd_mode))

        # Stage E: accumulate MSD, buffer log2|d|, detect mismatch, histogram.
        d = self.i_d
        mag = Signal(aw)
        m.d.comb += mag.eq(Mux(d < 0, -d, d))
        nz = d != 0
        idx = Signal(range(n))
        parity = Signal()
        msd = Signal(signed(w["msd"]))
        mm = Signal()
        end = self.i_end | (idx == n - 1)
        sel_params = sets[self.i_sel]
        msd_next = Signal(signed(w["msd"]))
        m.d.comb += msd_next.eq(msd + Mux(sel_params.msd_mode, mag, d) if approx else 0)
        h = {"msd": Signal(signed(w["msd"])), "mm": Signal(), "cnt": Signal(range(n + 1)),
             "bank": Signal(), "sel": Signal(range(self._sets))}
        s1 = Signal()
        m.d.sync += s1.eq(self.i_valid & end)
        msd_reg_next = Signal(signed(w["msd"]))
        with m.If(self.i_valid):
            with m.If(end):
                m.d.sync += [h["msd"].eq(msd_next), h["mm"].eq(mm | nz), h["cnt"].eq(idx + 1),
                             h["bank"].eq(parity), h["sel"].eq(self.i_sel),
                             idx.eq(0), parity.eq(~parity), mm.eq(0)]
                m.d.comb += msd_reg_next.eq(0)
            with m.Else():
                m.d.sync += [idx.eq(idx + 1), mm.eq(mm | nz)]
                m.d.comb += msd_reg_next.eq(msd_next)
        with m.Else():
            m.d.comb += msd_reg_next.eq(msd)
        if self._fault_port:
            kind, mask = self.fi_kind, self.fi_mask
            faulted = Mux(kind == FaultKind.FLIP, msd_reg_next ^ mask,
                          Mux(kind == FaultKind.STUCK0, msd_reg_next & ~mask,
                              msd_reg_next | mask))
            m.d.sync += msd.eq(Mux(self.fi_msd, faulted, msd_reg_next))
        else:
            m.d.sync += msd.eq(msd_reg_next)

        entry = data.StructLayout({"nz": 1, "log": w["log_d"]})
        banks = [[Signal(entry, name=f"buf{b}_{j}") for j in range(n)] for b in range(2)]
        hist = [Signal(cw, name=f"hist_{i}") for i in range(self._bins)]
        if realm:
            log_d, p_d = log2q(m, mag, "log_d")
            for b in range(2):
                for j in range(n):
                    with m.If(self.i_valid & (parity == b) & (idx == j)):
                        m.d.sync += banks[b][j].eq(Cat(nz, log_d))
            per = -(-aw // self._bins)
            bin_of = Array(p // per for p in range(aw))
            for i in range(self._bins):
                with m.If(self.i_valid & nz & (bin_of[p_d] == i)):
                    m.d.sync += hist[i].eq(_sat_add(hist[i], 1, cw))

        # S1: the magnitude threshold and the MSD-threshold decision.
        p1 = sets[h["sel"]]
        msd_abs = Signal(w["msd"])
        m.d.comb += msd_abs.eq(Mux(h["msd"] < 0, -h["msd"], h["msd"]))
        s2 = Signal()
        s2_theta = Signal(signed(w["theta"]))
        s2_flags = Signal(2)  # classic, approx
        s2_cnt, s2_bank = Signal(range(n + 1)), Signal()
        s2_msd = Signal(signed(w["msd"]))
        s2_freq_th, s2_policy = Signal(w["freq"]), Signal(2)
        m.d.sync += s2.eq(s1)
        with m.If(s1):
            m.d.sync += [s2_flags.eq(Cat(h["mm"], (msd_abs > p1.msd_th) if approx else 0)),
                         s2_cnt.eq(h["cnt"]), s2_bank.eq(h["bank"]), s2_msd.eq(h["msd"]),
                         s2_freq_th.eq(p1.freq), s2_policy.eq(p1.policy)]
            if realm:
                log_msd, _ = log2q(m, msd_abs, "log_msd")
                m.d.sync += s2_theta.eq((p1.b * 16 - p1.am1 * log_msd) >> 8)

        # S2: countif over the tile's bank, in parallel.
        s3 = Signal()
        s3_freq = Signal(w["freq"])
        s3_flags, s3_msd, s3_theta = Signal(2), Signal(signed(w["msd"])), Signal.like(s2_theta)
        s3_freq_th, s3_policy = Signal(w["freq"]), Signal(2)
        m.d.sync += s3.eq(s2)
        with m.If(s2):
            m.d.sync += [s3_flags.eq(s2_flags), s3_msd.eq(s2_msd), s3_theta.eq(s2_theta),
                         s3_freq_th.eq(s2_freq_th), s3_policy.eq(s2_policy)]
            if realm:
                hits = []
                for j in range(n):
                    e_nz = Mux(s2_bank, banks[1][j].nz, banks[0][j].nz)
                    e_log = Mux(s2_bank, banks[1][j].log, banks[0][j].log)
                    hits.append((j < s2_cnt) & e_nz & (e_log > s2_theta))
                m.d.sync += s3_freq.eq(sum(hits))

        # S3: decide, publish, count.
        flag_realm = (s3_freq > s3_freq_th) if realm else 0
        flags = Cat(s3_flags, flag_realm)
        if realm:
            recompute = Array([flags[0], flags[1], flags[2], flags[2]])[s3_policy]
        else:
            recompute = flags[1] if self._abft is Abft.APPROX else flags[0]
        m.d.sync += self.o_done.eq(s3)
        counters = {name: getattr(self, f"c_{name}") for name in COUNTERS}
        with m.If(s3):
            m.d.sync += [self.o_recompute.eq(recompute), self.o_flags.eq(flags),
                         self.o_mismatch.eq(s3_flags[0]), self.o_freq_eff.eq(s3_freq),
                         self.o_msd.eq(s3_msd), self.o_theta.eq(s3_theta),
                         counters["tiles_checked"].eq(_sat_add(counters["tiles_checked"], 1, cw)),
                         counters["tiles_mismatch"].eq(
                             _sat_add(counters["tiles_mismatch"], s3_flags[0], cw)),
                         counters["tiles_flagged"].eq(
                             _sat_add(counters["tiles_flagged"], recompute, cw)),
                         counters["errors_above"].eq(
                             _sat_add(counters["errors_above"], s3_freq, cw))]
        m.d.comb += [self.c_hist[i].eq(hist[i]) for i in range(self._bins)]
        return m
