"""Golden model of the ReaLM statistical unit (``hw.stats``), bit-exact, at transaction level:
from the checksum differences of one tile to the three policies' decisions.

Fixed-point conventions (shared with the RTL, see ``realm.md`` §4.2, §5.2):

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
"""
import dataclasses
import math

LOG_FRAC = 4
CLASSIC, APPROX, REALM = 0, 1, 2
POLICIES = {"classic": CLASSIC, "approx": APPROX, "realm": REALM}


def log2q(x):
    """Fixed-point log2 of a non-negative Python int (see the module docstring)."""
    if x <= 0:
        return 0
    p = x.bit_length() - 1
    return (p << LOG_FRAC) | (((x << LOG_FRAC) >> p) & ((1 << LOG_FRAC) - 1))


@dataclasses.dataclass(frozen=True)
class StatParams:
    """One parameter set (one per network component), in hardware units."""

    am1: int = 0
    b_q: int = 0
    freq_th: int = 0
    msd_th: int = 0
    policy: int = REALM
    msd_mode: int = 0

    @classmethod
    def from_paper(cls, a, b, theta_freq, *, msd_th=None, policy="realm", msd_mode=0,
                   sensitive=False):
        """Quantize the paper's (a, b, theta_freq) (log2 units). ``msd_th`` defaults to the
        MSD where the inclined line meets the horizontal one, ``2**((theta_freq + b) / a)``
        (the authors' MSD-only baseline, realm.md §4.3)."""
        if a < 1:
            raise ValueError(f"a must be at least 1, not {a}")
        freq_th = 0 if sensitive else math.floor(2 ** theta_freq)
        if msd_th is None:
            msd_th = math.floor(2 ** ((theta_freq + b) / a))
        return cls(am1=round((a - 1) * 256), b_q=round(b * 256), freq_th=freq_th,
                   msd_th=msd_th, policy=POLICIES[policy], msd_mode=msd_mode)


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

    NAMES = ("tiles_checked", "tiles_mismatch", "tiles_flagged", "errors_above")

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
    pipeline). :meth:`step` takes one cycle's inputs and returns that cycle's outputs."""

    def __init__(self, n, acc_width, abft, param_sets=4, hist_bins=8, counter_width=32):
        from hw.stats import stat_widths
        self.n, self.aw, self.abft = n, acc_width, str(abft)
        self.widths = stat_widths(n, acc_width)
        self.realm = self.abft == "realm"
        self.approx = self.abft in ("approx", "realm")
        self.param_sets, self.bins, self.cw = param_sets, hist_bins, counter_width
        self.cmax = (1 << counter_width) - 1
        self.reset()

    def reset(self):
        self.sets = [StatParams(policy=0) for _ in range(self.param_sets)]
        self.idx = self.parity = self.msd = self.mm = 0
        self.banks = [[(0, 0)] * self.n for _ in range(2)]
        self.hist = [0] * self.bins
        self.h = dict(msd=0, mm=0, cnt=0, bank=0, sel=0)
        self.s1 = self.s2 = self.s3 = 0
        self.s2r = dict(theta=0, flags=(0, 0), cnt=0, bank=0, msd=0, freq_th=0, policy=0)
        self.s3r = dict(freq=0, flags=(0, 0), msd=0, theta=0, freq_th=0, policy=0)
        self.out = dict(o_done=0, o_recompute=0, o_flags=0, o_mismatch=0, o_freq_eff=0,
                        o_msd=0, o_theta=0)
        self.counters = dict.fromkeys(Counters.NAMES, 0)

    def outputs(self):
        return {**self.out, **{f"c_{k}": v for k, v in self.counters.items()},
                "c_hist": list(self.hist)}

    def _sat(self, v):
        return min(self.cmax, v)

    def step(self, inp, msd_fault=None):
        """``inp``: ``d``, ``valid``, ``end``, ``sel`` and optionally ``cfg`` = (set,
        StatParams) to write. ``msd_fault`` = (kind, mask) applies to the MSD register."""
        from .arith import apply_fault
        out = self.outputs()
        n, w = self.n, self.widths
        d, valid = int(inp.get("d", 0)), int(inp.get("valid", 0))
        end = int(inp.get("end", 0)) or self.idx == n - 1
        sel = int(inp.get("sel", 0))
        p = self.sets[sel]
        mag, nz = abs(d), int(d != 0)
        msd_next = self.msd + (mag if p.msd_mode else d) if self.approx else 0
        msd_next = _wrap_int(msd_next, w["msd"])  # the register wraps (a fault can fill it)

        # Next state, computed from the current registers only.
        nxt = {}
        if valid and end:
            nxt["h"] = dict(msd=msd_next, mm=self.mm | nz, cnt=self.idx + 1, bank=self.parity,
                            sel=sel)
            nxt.update(idx=0, parity=self.parity ^ 1, mm=0, msd=0)
        elif valid:
            nxt.update(idx=self.idx + 1, mm=self.mm | nz, msd=msd_next)
        if msd_fault is not None:
            nxt["msd"] = apply_fault(nxt.get("msd", self.msd), msd_fault[0], msd_fault[1],
                                     w["msd"])
        if valid and self.realm:
            bank = [list(b) for b in self.banks]
            bank[self.parity][self.idx] = (nz, log2q(mag))
            nxt["banks"] = bank
            if nz:
                b = hist_bin(d, self.aw, self.bins)
                hist = list(self.hist)
                hist[b] = self._sat(hist[b] + 1)
                nxt["hist"] = hist

        if self.s1:
            h, p1 = self.h, self.sets[self.h["sel"]]
            msd_abs = abs(h["msd"])
            nxt["s2r"] = dict(
                theta=theta_grid(h["msd"], p1) if self.realm else self.s2r["theta"],
                flags=(h["mm"], int(msd_abs > p1.msd_th) if self.approx else 0),
                cnt=h["cnt"], bank=h["bank"], msd=h["msd"], freq_th=p1.freq_th,
                policy=p1.policy)
        if self.s2:
            r = self.s2r
            freq = self.s3r["freq"]
            if self.realm:
                freq = sum(1 for j, (e_nz, e_log) in enumerate(self.banks[r["bank"]])
                           if j < r["cnt"] and e_nz and e_log > r["theta"])
            nxt["s3r"] = dict(freq=freq, flags=r["flags"], msd=r["msd"], theta=r["theta"],
                              freq_th=r["freq_th"], policy=r["policy"])
        if self.s3:
            r = self.s3r
            f_realm = int(r["freq"] > r["freq_th"]) if self.realm else 0
            flags = (r["flags"][0], r["flags"][1], f_realm)
            if self.realm:
                rec = flags[min(r["policy"], 2)]
            else:
                rec = flags[1] if self.abft == "approx" else flags[0]
            nxt["out"] = dict(o_done=1, o_recompute=rec,
                              o_flags=flags[0] | flags[1] << 1 | flags[2] << 2,
                              o_mismatch=flags[0], o_freq_eff=r["freq"], o_msd=r["msd"],
                              o_theta=r["theta"])
            c = self.counters
            nxt["counters"] = dict(tiles_checked=self._sat(c["tiles_checked"] + 1),
                                   tiles_mismatch=self._sat(c["tiles_mismatch"] + flags[0]),
                                   tiles_flagged=self._sat(c["tiles_flagged"] + rec),
                                   errors_above=self._sat(c["errors_above"] + r["freq"]))
        else:
            nxt["out"] = {**self.out, "o_done": 0}
        if inp.get("cfg") is not None:
            s, params = inp["cfg"]
            sets = list(self.sets)
            sets[s] = params
            nxt["sets"] = sets

        # The clock edge.
        self.s1, self.s2, self.s3 = int(valid and end), self.s1, self.s2
        for k, v in nxt.items():
            setattr(self, k, v)
        return out
