"""Error injection into INT32 GEMM accumulators (paper Sec. IV, Sec. VI).

An :class:`Injector` is consulted once per GEMM call with the call's exact INT32 accumulator and
returns the elements to corrupt as ``(flat_index, new_value)``; it never changes the tensor itself.
Three modes:

``bitflip``
    Each accumulator element flips, independently, with probability ``ber`` (this is the paper's
    BER: a per-INT32-element probability, as in the authors' code). The flipped bit is ``bit`` (the
    paper's characterization uses 30) or uniform in ``bits=(lo, hi)`` inclusive (the evaluation
    uses 0..29, as the authors' code does). For small BER the number of flips is drawn from
    Binomial(numel, ber) and the positions uniformly without replacement, which has the same law
    as one Bernoulli per element but costs O(flips) instead of O(numel).
``msd``
    The paper's Q1.4: exactly ``freq`` distinct elements per GEMM call each receive
    ``+round(msd / freq)`` in INT32 units, saturated to the INT32 range (the paper leaves the
    split of MSD over the elements open; this is the even split).
``faults``
    Replay of an explicit fault list (``gemm.acc`` entries of :mod:`golden.faults`).
``timing``
    Timing errors at supply voltage ``voltage`` (docs/energy.md §5), from a voltage table
    (:class:`realm.energy.vtable.VoltageTable`): each MAC cycle of an output element errs with the
    table's ``p`` for the component at that voltage, so an element with ``K`` MAC cycles
    (``K``: an int, a {component: int} dict, or None for the table's ``k_eff``) is wrong with
    ``p_elem = 1 - (1 - p)^K``. The erroneous elements are drawn like ``bitflip``'s with
    ``ber = p_elem``; each gets ``n >= 1`` erroneous cycles, ``n`` from the zero-truncated
    Binomial(K, p), and the error ``e_1 + ... + e_n``, each ``e_i`` drawn from the table's
    ``f_e`` (with ``values="drop"``: from its dropped products ``f_drop``, ThUnderVolt's
    TE-drop); the accumulator becomes ``acc + e`` wrapped to INT32 (errors add in the
    accumulator, to first order).

Targeting: ``components`` (names from :data:`golden.faults.LLM_COMPONENTS`, or ``fc1``/``fc2``
for OPT), ``layers`` (None = all) and ``stage`` (``prefill``, ``decode`` or ``both``).

Accumulator coordinates. A linear layer's accumulator is [tokens, out_features]; an attention BMM's
is [batch, heads, queries, N] with N = keys (QKᵀ) or head_dim (SV), addressed as ``row`` = batch ×
queries + query and ``col`` = head × N + n. ``call`` counts the calls of one component in one layer
since the start of the sequence (one window, or one prompt plus its decode steps), from 0.

Seeding. Every draw of one call comes from a torch.Generator re-seeded from (seed, window, layer,
component, call), so a call's faults do not depend on which other calls ran before it: the same
seed gives the same faults, and the evaluator may skip clean layers without changing them. The
generators are CPU ones whatever the accumulator's device, so a seed places the same faults on
the CPU and on a GPU; the indices and new values are returned on the accumulator's device.
"""
import torch

from golden.arith import fault_op
from golden.faults import GEMM_SITE

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MODES = ("bitflip", "msd", "faults", "timing")
VALUES = ("error", "drop")
STAGES = ("prefill", "decode", "both")
#: Above this BER the mask is drawn densely (one uniform per element).
DENSE_BER = 0.05


def bit_mask(bits):
    """INT32 masks ``1 << bits`` (bit 31 is the sign bit) for an int64 tensor of bit positions."""
    m = torch.ones_like(bits, dtype=torch.int64) << bits
    return torch.where(m > INT32_MAX, m - (1 << 32), m).to(torch.int32)


def apply_kind(vals, kind, mask):
    """Apply one fault kind to int32 values with int32 mask(s): XOR, AND NOT, or OR."""
    return fault_op(kind, vals, mask)


def mix_seed(*parts):
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & 0x7FFFFFFFFFFFFFFF


def distinct_positions(numel, n, gen):
    """``n`` distinct positions uniform in [0, numel) (sorted), drawn from ``gen``."""
    if n * 4 >= numel:
        return torch.randperm(numel, generator=gen)[:n].sort().values
    idx = torch.randint(numel, (n,), generator=gen)
    if n <= 4096 and len(set(idx.tolist())) == n:  # fast path, same result as unique()
        return idx.sort().values
    idx = idx.unique()
    while idx.numel() < n:
        extra = torch.randint(numel, (n - idx.numel(),), generator=gen)
        idx = torch.cat([idx, extra]).unique()
    return idx


def flat_index(shape, row, col):
    """Flat offset of (row, col) in an accumulator of ``shape`` (see the module docstring)."""
    if len(shape) == 2:
        rows, cols = shape
        if not (0 <= row < rows and 0 <= col < cols):
            return None
        return row * cols + col
    b, h, t, n = shape
    if not (0 <= row < b * t and 0 <= col < h * n):
        return None
    return (((row // t) * h + col // n) * t + row % t) * n + col % n


class InjectionError(ValueError):
    """A bad injector setting or a fault that does not fit the GEMM it targets."""


class Injector:
    """Chooses the corrupted accumulator elements of each GEMM call (see the module docstring)."""

    def __init__(self, mode, components, layers=None, stage="both", ber=0.0, bit=30, bits=None,
                 msd=0, freq=0, faults=None, seed=0, table=None, voltage=None, K=None,
                 values="error"):
        if mode not in MODES:
            raise InjectionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self._timing = {}
        if mode == "timing":
            self._timing = _timing_setup(table, voltage, K, values, components)
        if stage not in STAGES:
            raise InjectionError(f"stage must be one of {', '.join(STAGES)}, not {stage!r}")
        if not 0.0 <= float(ber) <= 1.0:
            raise InjectionError(f"ber must be in [0, 1], not {ber}")
        lo, hi = bits if bits is not None else (bit, bit)
        if not 0 <= lo <= hi <= 31:
            raise InjectionError(f"bits must satisfy 0 <= lo <= hi <= 31, not {lo}..{hi}")
        if mode == "msd" and (int(freq) < 1 or int(msd) < 0):
            raise InjectionError(f"msd mode needs freq >= 1 and msd >= 0, not freq={freq}, "
                                 f"msd={msd}")
        self.mode, self.stage, self.ber = mode, stage, float(ber)
        self.voltage, self.values = voltage, values
        self.bits = (int(lo), int(hi))
        self.msd, self.freq, self.seed = int(msd), int(freq), int(seed)
        self.mag = round(self.msd / self.freq) if mode == "msd" else 0
        self.faults = {}
        if mode == "faults":
            for i, f in enumerate(faults or []):
                if f.site != GEMM_SITE:
                    raise InjectionError(f"fault {i}: site {f.site!r} is not {GEMM_SITE!r}")
                self.faults.setdefault((f.component, f.layer, f.call), []).append((i, f))
            components = sorted({k[0] for k in self.faults})
            layers = sorted({k[1] for k in self.faults})
        self.components = frozenset(components)
        self.layers = None if layers is None else frozenset(int(x) for x in layers)
        self.count = 0  # elements corrupted so far
        self._p = None

    def targets(self, component, layer, stage):
        """Whether calls of ``component`` in ``layer`` during ``stage`` may be corrupted."""
        return (component in self.components
                and (self.layers is None or layer in self.layers)
                and (self.stage == "both" or self.stage == stage))

    def _gen(self, window, layer, component, call):
        return torch.Generator().manual_seed(
            mix_seed(self.seed, window, layer, sum(map(ord, component)) * 7 + len(component), call))

    def may_fault(self, component, layer, call, stage, window, numel):
        """Cheap look-ahead: False only if this call surely gets no fault (used to skip layers)."""
        if not self.targets(component, layer, stage):
            return False
        if self.mode == "bitflip":
            if self.ber == 0.0:
                return False
            if self.ber > DENSE_BER:
                return True
            return self._count(self._gen(window, layer, component, call), numel) > 0
        if self.mode == "msd":
            return self.msd > 0
        if self.mode == "timing":
            p_elem = self._timing[component][0]
            if p_elem == 0.0:
                return False
            if p_elem > DENSE_BER:
                return True
            return self._count(self._gen(window, layer, component, call), numel, p_elem) > 0
        return (component, layer, call) in self.faults

    def _count(self, gen, numel, p=None):
        if p is not None:
            return int(torch.binomial(torch.tensor([float(numel)]), torch.tensor([p]),
                                      generator=gen).item())
        if self._p is None:
            self._p = torch.tensor([self.ber])
        return int(torch.binomial(torch.tensor([float(numel)]), self._p, generator=gen).item())

    def _positions(self, gen, numel, p):
        """Distinct elements, each drawn with probability ``p`` (sparse or dense draw)."""
        if p > DENSE_BER:
            return (torch.rand(numel, generator=gen) < p).nonzero().view(-1)
        n = self._count(gen, numel, p)
        return distinct_positions(numel, n, gen) if n else None

    def __call__(self, component, layer, call, stage, window, acc):
        """Corruptions of one call's int32 accumulator ``acc``: None or (flat idx, new int32),
        both on ``acc``'s device."""
        if not self.targets(component, layer, stage):
            return None
        flat = acc.reshape(-1)
        numel = flat.numel()
        if self.mode == "faults":
            return self._replay(component, layer, call, acc.shape, flat)
        gen = self._gen(window, layer, component, call)
        if self.mode == "timing":
            return self._timing_errors(component, flat, gen)
        if self.mode == "msd":
            if self.freq > numel:
                raise InjectionError(f"freq {self.freq} is larger than the {numel}-element "
                                     f"accumulator of {component} (layer {layer})")
            if self.msd == 0:
                return None
            idx = distinct_positions(numel, self.freq, gen).to(flat.device)
            new = (flat[idx].long() + self.mag).clamp(INT32_MIN, INT32_MAX).to(torch.int32)
        else:
            if self.ber == 0.0:
                return None
            if self.ber > DENSE_BER:
                idx = (torch.rand(numel, generator=gen) < self.ber).nonzero().view(-1)
            else:
                n = self._count(gen, numel)
                if n == 0:
                    return None
                idx = distinct_positions(numel, n, gen)
            lo, hi = self.bits
            mask = (_mask32(1 << lo) if lo == hi
                    else bit_mask(torch.randint(lo, hi + 1, (idx.numel(),), generator=gen)))
            idx = idx.to(flat.device)
            new = flat[idx] ^ mask.to(flat.device)
        self.count += idx.numel()
        return idx, new

    def _timing_errors(self, component, flat, gen):
        p_elem, pmf, values, weights = self._timing[component]
        if p_elem == 0.0:
            return None
        idx = self._positions(gen, flat.numel(), p_elem)
        if idx is None or not idx.numel():
            return None
        n = idx.numel()
        cycles = (torch.multinomial(pmf, n, replacement=True, generator=gen) + 1
                  if pmf.numel() > 1 else torch.ones(n, dtype=torch.int64))
        draws = values[torch.multinomial(weights, int(cycles.sum()), replacement=True,
                                         generator=gen)]
        owner = torch.repeat_interleave(torch.arange(n), cycles)
        e = torch.zeros(n, dtype=torch.int64).index_add_(0, owner, draws)
        idx = idx.to(flat.device)
        new = flat[idx].long() + e.to(flat.device)
        new = ((new - INT32_MIN) % (1 << 32) + INT32_MIN).to(torch.int32)
        self.count += n
        return idx, new

    def _replay(self, component, layer, call, shape, flat):
        entries = self.faults.get((component, layer, call))
        if not entries:
            return None
        vals = {}
        for i, f in entries:  # in list order; several faults on one element compose
            k = flat_index(tuple(shape), f.row, f.col)
            if k is None:
                raise InjectionError(f"fault {i}: row {f.row}, col {f.col} is outside the "
                                     f"accumulator {list(shape)} of {component} layer {layer} "
                                     f"call {call}")
            v = vals.get(k, flat[k:k + 1])
            vals[k] = apply_kind(v, f.kind, _mask32(f.mask).to(flat.device))
        idx = torch.tensor(sorted(vals), dtype=torch.int64, device=flat.device)
        new = torch.cat([vals[k] for k in sorted(vals)])
        self.count += idx.numel()
        return idx, new


def _timing_setup(table, voltage, K, values, components):
    """{component: (p_elem, pmf of erroneous cycles, values, weights)} of a timing injector."""
    from realm.energy.vtable import TableError, VoltageTable, cycles_pmf, p_element

    if not isinstance(table, VoltageTable):
        raise InjectionError("timing mode needs a voltage table (realm.energy.vtable.VoltageTable)")
    if values not in VALUES:
        raise InjectionError(f"values must be one of {', '.join(VALUES)}, not {values!r}")
    if isinstance(voltage, bool) or not isinstance(voltage, (int, float)):
        raise InjectionError(f"timing mode needs a voltage, not {voltage!r}")
    out = {}
    for c in components:
        try:
            row = table.row(c, voltage)
            k = K.get(c) if isinstance(K, dict) else K
            k = table.k_eff(c) if k is None else k
        except TableError as e:
            raise InjectionError(str(e)) from None
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InjectionError(f"K must be a positive integer, not {k!r} (component {c!r})")
        vals, weights = ((row.values, row.counts) if values == "error"
                         else (row.drop_values, row.drop_counts))
        if row.p > 0 and not len(vals):
            what = "dropped products" if values == "drop" else "error values"
            raise InjectionError(f"the table has no {what} for {c!r} at {voltage:g} V")
        out[c] = (p_element(row.p, k), cycles_pmf(row.p, k) if row.p > 0 else None, vals,
                  weights)
    return out


def _mask32(mask):
    return torch.tensor([mask - (1 << 32) if mask > INT32_MAX else mask], dtype=torch.int32)
