"""Golden model of the ReaLM statistical unit (``hw.stats``), bit-exact, at transaction level:
from the checksum differences of one tile to the three policies' decisions.

Fixed-point conventions (shared with the RTL through :mod:`hw.facts`; paper Fig. 6, Fig. 7c):

* ``log2q(x)`` for ``x > 0`` is ``2**F * p + f`` with ``p = floor(log2 x)`` (leading-one
  position) and ``f`` the ``F`` bits after the leading one: Mitchell's approximation
  ``log2 x ~ p + (x - 2**p) / 2**p``, which is exact at powers of two and low by at most 0.086.
  ``F = LOG_FRAC = 4``. ``log2q(0) = 0``.
* ``a`` enters as ``am1 = round((a - 1) * 256)`` (unsigned, a >= 1), ``b`` as
  ``round(b * 256)`` (signed). The magnitude threshold on the log grid is
  ``theta = floor(2**F * (b - (a - 1) * log2q|MSD| / 2**F))``, computed exactly as
  ``(16 * b_q - am1 * log2q|MSD|) >> 8``.
* ``freq_eff`` counts the non-zero differences with ``log2q|d| > theta``. The statistical
  policy recomputes when ``freq_eff > freq_th``, an integer count: the paper's log2 threshold
  ``theta_freq`` maps to ``freq_th = floor(2**theta_freq)`` (so ``log2 freq_eff > theta_freq``
  exactly), and a sensitive component uses ``freq_th = 0`` (one significant error recomputes).
* Classic ABFT recomputes on any non-zero difference; MSD-threshold (ApproxABFT-like)
  recomputes when ``|MSD| > msd_th``.
* MSD is the signed sum of the differences (the paper's) or, with ``msd_mode = 1``, the sum of
  their magnitudes (two large errors of opposite sign cannot cancel).
* **MSD = 0 while some d is not** (errors that cancel in the signed sum): log2|MSD| is taken as
  0 (``log2q(0) = 0``, as for |MSD| = 1), so ``theta = b``, the threshold's largest value.
  The errors are not hidden from the statistical policy: each one above 2**b still counts in
  ``freq_eff``, and more than ``freq_th`` of them recompute. The MSD threshold never flags
  such a tile (|MSD| = 0), classic ABFT always does. The sum of magnitudes (``msd_mode = 1``)
  avoids the case. ``tb/test_stats.py`` checks it for every policy, RTL and this model.
"""
import dataclasses
import math

from golden.params import StatParams
from hw.facts import BANKS, COUNTERS, LOG_FRAC, POP_GROUP, msd_halves, stat_widths


def log2q(x):
    """Fixed-point log2 of a non-negative Python int (see the module docstring)."""
    if x <= 0:
        return 0
    p = x.bit_length() - 1
    return (p << LOG_FRAC) | (((x << LOG_FRAC) >> p) & ((1 << LOG_FRAC) - 1))


def theta_grid(msd, params):
    """Magnitude threshold on the log2q grid for a tile whose MSD is ``msd``."""
    return (16 * params.b_q - params.am1 * log2q(abs(msd))) >> 8


@dataclasses.dataclass(frozen=True)
class TileDecision:
    msd: int
    theta: int
    freq_eff: int
    mismatch: bool
    flag_classic: bool
    flag_approx: bool
    flag_realm: bool
    recompute: bool


def decide(d, params):
    """Decide one tile from its list of differences ``d`` (Python ints)."""
    msd = sum(abs(x) for x in d) if params.msd_mode else sum(d)
    theta = theta_grid(msd, params)
    freq = sum(1 for x in d if x != 0 and log2q(abs(x)) > theta)
    mismatch = any(x != 0 for x in d)
    flags = (mismatch, abs(msd) > params.msd_th, freq > params.freq_th)
    return TileDecision(msd=msd, theta=theta, freq_eff=freq, mismatch=mismatch,
                        flag_classic=flags[0], flag_approx=flags[1], flag_realm=flags[2],
                        recompute=flags[params.policy])


def hist_bin(x, acc_width, bins):
    """Histogram bin of a non-zero difference: ``floor(log2|x|)`` in ``bins`` equal bands."""
    per = -(-acc_width // bins)
    return (abs(x).bit_length() - 1) // per


class Counters:
    """The unit's saturating event counters (``hw.stats`` exposes the same names)."""

    NAMES = COUNTERS

    def __init__(self, width=32, bins=8, acc_width=32):
        self.max = (1 << width) - 1
        self.bins, self.acc_width = bins, acc_width
        self.values = dict.fromkeys(self.NAMES, 0)
        self.hist = [0] * bins

    def _add(self, name, n):
        self.values[name] = min(self.max, self.values[name] + n)

    def record_d(self, x):
        if x != 0:
            b = hist_bin(x, self.acc_width, self.bins)
            self.hist[b] = min(self.max, self.hist[b] + 1)

    def record_tile(self, dec):
        self._add("tiles_checked", 1)
        self._add("tiles_mismatch", int(dec.mismatch))
        self._add("tiles_flagged", int(dec.recompute))
        self._add("errors_above", dec.freq_eff)

    def as_dict(self):
        return {**self.values, "hist": list(self.hist)}


def differences(acc_faulty, acc_clean, axis=0, acc_width=32):
    """Checksum differences of an output tile as the array computes them: per output column
    (``axis=0``, OS: eᵀY - eᵀWX) or per streamed vector (``axis=1``, WS), wrapped to
    ``acc_width`` like the checksum registers, as Python ints."""
    from .arith import wrap
    diff = acc_faulty.long() - acc_clean.long()
    return [int(v) for v in wrap(diff.sum(dim=axis), acc_width)]


def _wrap_int(x, width):
    half = 1 << (width - 1)
    return ((x + half) & ((1 << width) - 1)) - half


class StatUnitModel:
    """Cycle-accurate model of :class:`hw.stats.StatisticalUnit` (same registers, same
    pipeline: R0, R1, E, S0, S1a-c, S2a-c, S3). :meth:`step` takes one cycle's inputs and returns
    that cycle's outputs."""

    def __init__(self, n, acc_width, abft, param_sets=4, hist_bins=8, counter_width=32):
        self.n, self.aw, self.abft = n, acc_width, str(abft)
        self.widths = stat_widths(n, acc_width)
        self.banks_n, self.group = BANKS, POP_GROUP
        self.halves = msd_halves(self.widths["msd"])
        self.realm = self.abft == "realm"
        self.approx = self.abft in ("approx", "realm")
        self.param_sets, self.bins, self.cw = param_sets, hist_bins, counter_width
        self.cmax = (1 << counter_width) - 1
        self.reset()

    def reset(self):
        self.sets = [StatParams(policy=0) for _ in range(self.param_sets)]
        self.r0 = dict(v=0, d=0, end=0, sel=0)
        self.r1 = dict(v=0, d=0, mag=0, nz=0, end=0, sel=0, add=0)
        self.idx = self.wbank = self.mm = self.lo = self.hi = self.px = self.pc = 0
        self.banks = [[(0, 0)] * self.n for _ in range(self.banks_n)]
        self.hist = [0] * self.bins
        carry = dict(msd=0, mm=0, cnt=0, bank=0)
        tail = dict(msd=0, flags=(0, 0), freq_th=0, policy=0, theta=0)
        # Stage registers, each with its valid bit ``v``.
        self.h = dict(v=0, sel=0, lo=0, hi=0, px=0, pc=0, mm=0, cnt=0, bank=0)
        self.s0 = dict(v=0, sel=0, **carry)
        self.s1a = dict(v=0, abs=0, p=StatParams(policy=0), **carry)
        self.s1b = dict(v=0, log=0, fa=0, p=StatParams(policy=0), **carry)
        self.s1c = dict(v=0, cnt=0, bank=0, **tail)
        self.s2a = dict(v=0, hits=[0] * self.n, **tail)
        self.s2b = dict(v=0, parts=[0] * -(-self.n // self.group), **tail)
        self.s2c = dict(v=0, freq=0, **tail)
        self.out = dict(o_done=0, o_recompute=0, o_flags=0, o_mismatch=0, o_freq_eff=0,
                        o_msd=0, o_theta=0)
        self.counters = dict.fromkeys(Counters.NAMES, 0)

    def outputs(self):
        return {**self.out, **{f"c_{k}": v for k, v in self.counters.items()},
                "c_hist": list(self.hist)}

    # What differs between one trial (Python ints, here) and a batch of trials
    # (golden.stats_batch.BatchedStatUnitModel, tensors): the pipeline in step is written once.

    def _value(self, x):
        return int(x)

    @staticmethod
    def _bit(cond):
        return int(cond)

    def _sat(self, v):
        return min(self.cmax, v)

    @staticmethod
    def _log2q(x):
        return log2q(x)

    def _bank_write(self, bank, idx, nz, mag):
        banks = [list(b) for b in self.banks]
        banks[bank][idx] = (nz, log2q(mag))
        return banks

    def _hist_add(self, d, nz):
        if not nz:
            return None
        b = hist_bin(d, self.aw, self.bins)
        hist = list(self.hist)
        hist[b] = self._sat(hist[b] + 1)
        return hist

    def _hits(self, bank, cnt, theta):
        return [int(j < cnt and e_nz and e_log > theta)
                for j, (e_nz, e_log) in enumerate(self.banks[bank])]

    def _parts(self, hits):
        return [sum(hits[i:i + self.group]) for i in range(0, self.n, self.group)]

    @staticmethod
    def _total(parts):
        return sum(parts)

    def _msd_fault(self, pair, fault):
        from .arith import apply_fault
        w = self.widths["msd"]
        return apply_fault(pair, fault[0], fault[1], w) & ((1 << w) - 1)

    @staticmethod
    def _load(reg, valid, **values):
        """Next value of a stage register: loaded when the previous stage is valid."""
        return {**reg, "v": int(valid), **(values if valid else {})}

    def step(self, inp, msd_fault=None):
        """``inp``: ``d``, ``valid``, ``end``, ``sel`` and optionally ``cfg`` = (set,
        StatParams) to write. ``msd_fault`` = (kind, mask) applies to the MSD register."""
        out = self.outputs()
        n, w = self.n, self.widths
        valid = int(inp.get("valid", 0))
        nxt = {}
        # R0, R1.
        nxt["r0"] = self._load(self.r0, valid, d=self._value(inp.get("d", 0)),
                               end=int(inp.get("end", 0)), sel=int(inp.get("sel", 0)))
        r0 = self.r0
        nxt["r1"] = self._load(self.r1, r0["v"], d=r0["d"], mag=abs(r0["d"]),
                               nz=self._bit(r0["d"] != 0), end=r0["end"], sel=r0["sel"],
                               add=abs(r0["d"]) if self.sets[r0["sel"]].msd_mode else r0["d"])
        # E: MSD in a low and a lagging high half (hw.facts.msd_halves).
        r1 = self.r1
        d, mag, nz, v = r1["d"], r1["mag"], r1["nz"], r1["v"]
        end = r1["end"] or self.idx == n - 1
        lw, hw_ = self.halves
        lo_sum = hi_sum = x = 0
        if self.approx:
            x = r1["add"] & ((1 << w["msd"]) - 1)
            lo_sum = self.lo + (x & ((1 << lw) - 1))
            hi_sum = (self.hi + self.px + self.pc) & ((1 << hw_) - 1)
        half = dict(lo=lo_sum & ((1 << lw) - 1), hi=hi_sum, px=x >> lw, pc=lo_sum >> lw)
        nxt["h"] = self._load(self.h, v and end, mm=self.mm | nz, cnt=self.idx + 1,
                              bank=self.wbank, sel=r1["sel"], **half)
        if v and end:
            nxt.update(idx=0, wbank=(self.wbank + 1) % self.banks_n, mm=0, lo=0, hi=0, px=0,
                       pc=0)
        elif v:
            nxt.update(idx=self.idx + 1, mm=self.mm | nz, **half)
        else:
            nxt.update(hi=hi_sum, px=0, pc=0)
        if msd_fault is not None:
            pair = nxt.get("lo", self.lo) | nxt.get("hi", self.hi) << lw
            pair = self._msd_fault(pair, msd_fault)
            nxt.update(lo=pair & ((1 << lw) - 1), hi=pair >> lw)
        if v and self.realm:
            hist = self._hist_add(d, nz)
            if hist is not None:
                nxt["hist"] = hist
        # S0, S1a, S1b, S1c.
        h, h0, a, b, c = self.h, self.s0, self.s1a, self.s1b, self.s1c
        carry = ("msd", "mm", "cnt", "bank")
        msd = _wrap_int(h["lo"] + ((h["hi"] + h["px"] + h["pc"]) << lw), w["msd"])
        nxt["s0"] = self._load(h0, h["v"], msd=msd, mm=h["mm"], cnt=h["cnt"], bank=h["bank"],
                               sel=h["sel"])
        nxt["s1a"] = self._load(a, h0["v"], abs=abs(h0["msd"]), p=self.sets[h0["sel"]],
                                **{k: h0[k] for k in carry})
        nxt["s1b"] = self._load(
            b, a["v"], p=a["p"], **{k: a[k] for k in carry},
            fa=self._bit(a["abs"] > a["p"].msd_th) if self.approx else b["fa"],
            log=self._log2q(a["abs"]) if self.realm else b["log"])
        theta = (16 * b["p"].b_q - b["p"].am1 * b["log"]) >> 8 if self.realm else c["theta"]
        nxt["s1c"] = self._load(c, b["v"], msd=b["msd"], flags=(b["mm"], b["fa"]),
                                freq_th=b["p"].freq_th, policy=b["p"].policy, cnt=b["cnt"],
                                bank=b["bank"], theta=theta)
        # S2a, S2b, S2c.
        tail = ("msd", "flags", "freq_th", "policy", "theta")
        e, f, g = self.s2a, self.s2b, self.s2c
        hits = self._hits(c["bank"], c["cnt"], c["theta"]) if self.realm and c["v"] else e["hits"]
        nxt["s2a"] = self._load(e, c["v"], hits=hits, **{k: c[k] for k in tail})
        parts = self._parts(e["hits"]) if self.realm and e["v"] else f["parts"]
        nxt["s2b"] = self._load(f, e["v"], parts=parts, **{k: e[k] for k in tail})
        freq = self._total(f["parts"]) if self.realm and f["v"] else g["freq"]
        nxt["s2c"] = self._load(g, f["v"], freq=freq, **{k: f[k] for k in tail})
        if v and self.realm:
            # E's write to the banks, after S2a's read (the batched unit writes in place).
            nxt["banks"] = self._bank_write(self.wbank, self.idx, nz, mag)
        # S3.
        if g["v"]:
            f_realm = self._bit(g["freq"] > g["freq_th"]) if self.realm else 0
            flags = (g["flags"][0], g["flags"][1], f_realm)
            if self.realm:
                rec = flags[min(g["policy"], 2)]
            else:
                rec = flags[1] if self.abft == "approx" else flags[0]
            nxt["out"] = dict(o_done=1, o_recompute=rec,
                              o_flags=flags[0] | flags[1] << 1 | flags[2] << 2,
                              o_mismatch=flags[0], o_freq_eff=g["freq"], o_msd=g["msd"],
                              o_theta=g["theta"])
            k = self.counters
            nxt["counters"] = dict(tiles_checked=self._sat(k["tiles_checked"] + 1),
                                   tiles_mismatch=self._sat(k["tiles_mismatch"] + flags[0]),
                                   tiles_flagged=self._sat(k["tiles_flagged"] + rec),
                                   errors_above=self._sat(k["errors_above"] + g["freq"]))
        else:
            nxt["out"] = {**self.out, "o_done": 0}
        if inp.get("cfg") is not None:
            s, params = inp["cfg"]
            sets = list(self.sets)
            sets[s] = params
            nxt["sets"] = sets

        # The clock edge.
        for k, val in nxt.items():
            setattr(self, k, val)
        return out


def policy_sets(config):
    """Three parameter sets: classic, MSD-threshold and statistical (the authors' K values,
    rescaled for an n-entry tile: both logs shift by log2(2048 / n))."""
    shift = math.log2(2048 / config.stat_n)
    a, b, tf = 1.273, 20.076 - shift * 0.273, max(0.0, 5.951 - shift)
    return [("params", 0, StatParams.from_paper(a, b, tf, policy="classic")),
            ("params", 1, StatParams.from_paper(a, b, tf, policy="approx")),
            ("params", 2, StatParams.from_paper(a, b, tf, policy="realm")),
            ("params", 3, StatParams.from_paper(a, b, tf, policy="realm", msd_mode=1))]
