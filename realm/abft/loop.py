"""Statistical ABFT in the loop of the W8A8 model: every GEMM call cut into the tiles the array
runs (:mod:`golden.tiler`), each tile's checksum differences formed from the injected errors,
decided by the statistical unit's transaction-level model (:func:`golden.stats.decide`) and,
when the policy flags it, recomputed at nominal voltage, which removes its errors (paper §IV-B,
§VI-A).

Policies (one per run; the flags of all three detectors are counted in every run):

``none``     nothing is recomputed (the unprotected model)
``classic``  classic ABFT: any non-zero difference
``approx``   the MSD threshold (ApproxABFT-like): ``|MSD| > msd_th``
``realm``    the statistical rule: ``freq_eff > freq_th`` with the MSD-dependent magnitude
             threshold

Error placement. The injector (:mod:`realm.llm.inject`) draws errors in the final INT32
accumulator of an output element; the error is the additive change ``new - old`` it makes. In
OS the element is produced by exactly one tile. In WS it is the wrapped sum of the partial sums
of ``ceil(K / rows)`` weight tiles; the error is carried by one of them, drawn uniformly from a
generator seeded from (seed, window, layer, component, call), so every policy sees the same
placement (common random numbers) and the output still carries exactly the injected value.

GEMMs. A linear layer's accumulator [M, N] is one GEMM with K = in_features (the weights are the
stationary operand in WS). An attention BMM's [B, H, T, N] is B·H GEMMs of T x K x N (QKᵀ:
K = head_dim, N = keys; SV: K = keys, N = head_dim).

Parameter files (``realm-params/1``, one per model, dataflow and array size) hold one parameter
set per component in hardware units (:class:`golden.params.StatParams`), the set index that
programs it into the array, and the fit it came from (:mod:`realm.abft.fit`).
"""
from typing import NamedTuple

import torch

from golden.params import ParamsError
from golden.stats import decide
from golden.tiler import Tiling
from hw.config import ArrayConfig
from hw.facts import ABFT_POLICIES
from realm.llm.inject import mix_seed

_PLACE_SALT = 0xABF7


def parse_array(text):
    """The array a closed-loop run names ``text`` (``ROWSxCOLS-DATAFLOW`` or ``N-DATAFLOW``,
    :meth:`ArrayConfig.from_name`): the realm variant with the most parameter sets the unit can
    hold, 16 (one per component of any supported model)."""
    try:
        return ArrayConfig.from_name(text, abft="realm", param_sets=16)
    except ValueError as e:
        raise ParamsError(str(e)) from None


def gemm_tiling(config, acc_shape, k):
    """The :class:`Tiling` of one call from its accumulator shape and reduction length."""
    if len(acc_shape) == 2:
        return Tiling(config, acc_shape[0], k, acc_shape[1])
    b, h, t, n = acc_shape
    return Tiling(config, t, k, n, gemms=b * h)


def _coords(shape, idx):
    """(gemm, row, col) of flat accumulator indices."""
    if len(shape) == 2:
        return torch.zeros_like(idx), idx // shape[1], idx % shape[1]
    _, _, t, n = shape
    return idx // (t * n), (idx // n) % t, idx % n


def params_path(pattern, array):
    """A parameter file's path: ``pattern`` with ``{array}`` filled in, relative to the
    checkout's root (the current directory when installed) unless absolute."""
    from hw.paths import repo_path

    return repo_path(pattern.replace("{array}", array))


class Errors(NamedTuple):
    """One call's errors as :meth:`AbftInjector.errors` places them."""
    idx: torch.Tensor
    new: torch.Tensor
    delta: torch.Tensor
    g: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    kc: object
    tiling: Tiling


class AbftInjector:
    """An injector (:class:`realm.llm.inject.Injector`) behind the array's ABFT: draws the same
    errors, decides every tile they touch, and passes on only the errors of tiles the policy
    does not recompute. :attr:`stats` counts, over the calls it saw, the errors, the tiles with
    errors, the tiles each detector flags and what the policy recomputed."""

    KEYS = ("errors", "errors_kept", "tiles_faulty", "tiles_mismatch", "tiles_aliased",
            "flag_classic", "flag_approx", "flag_realm", "errors_above", "tiles_recomputed",
            "macs_recomputed")

    def __init__(self, base, config, policy, params, rt):
        if policy not in ABFT_POLICIES:
            raise ParamsError(f"policy must be one of {', '.join(ABFT_POLICIES)}, not "
                              f"{policy!r}")
        missing = sorted(set(base.components) - set(params))
        if missing:
            raise ParamsError(f"no parameter set for component {missing[0]!r}")
        self.base, self.config, self.policy = base, config, policy
        self.params, self.rt = params, rt
        self.stats = dict.fromkeys(self.KEYS, 0)
        self.decisions = []  # (component, layer, call, unit, d list, TileDecision) if recorded
        self.placed = {}  # (component, layer, call) -> Errors, if recorded
        self.record = False

    @property
    def count(self):
        return self.base.count

    @count.setter
    def count(self, v):
        self.base.count = v

    def may_fault(self, *args):
        return self.base.may_fault(*args)

    def errors(self, component, layer, call, stage, window, acc):
        """The base injector's errors in this call, placed on the array: ``None``, or
        :class:`Errors` (elements, new values, additive changes, their GEMM coordinates and,
        in WS, the K-chunk that carries each), on the CPU whatever ``acc``'s device (they are
        few, and the placement draws come from CPU generators)."""
        hit = self.base(component, layer, call, stage, window, acc)
        if hit is None:
            return None
        idx, new = hit
        delta = (new.long() - acc.reshape(-1)[idx].long()).cpu()
        idx, new = idx.cpu(), new.cpu()
        g, row, col = _coords(tuple(acc.shape), idx)
        tiling = gemm_tiling(self.config, tuple(acc.shape), self.rt.k)
        kc = None
        if tiling.ws:
            gen = torch.Generator().manual_seed(mix_seed(
                self.base.seed, window, layer, sum(map(ord, component)) * 7 + len(component),
                call, _PLACE_SALT))
            kc = torch.randint(tiling.chunks[1], (idx.numel(),), generator=gen)
        return Errors(idx, new, delta, g, row, col, kc, tiling)

    def __call__(self, component, layer, call, stage, window, acc):
        """The errors of this call that the policy does not recompute: None or (flat idx, new
        int32) on ``acc``'s device, as :class:`realm.llm.inject.Injector` returns them."""
        e = self.errors(component, layer, call, stage, window, acc)
        if e is None:
            return None
        if self.record:
            self.placed[(component, layer, call)] = e
        idx, new, delta, g, row, col, kc, tiling = e
        units, d = tiling.differences(g, row, col, delta, kc)
        lengths = tiling.unit_length(units).tolist()
        p = self.params[component]
        flagged = []
        s = self.stats
        s["errors"] += idx.numel()
        s["tiles_faulty"] += units.numel()
        for u, row_d, n in zip(units.tolist(), d.tolist(), lengths):
            dec = decide(row_d[:n], p)
            s["tiles_mismatch"] += dec.mismatch
            s["tiles_aliased"] += not dec.mismatch
            s["flag_classic"] += dec.flag_classic
            s["flag_approx"] += dec.flag_approx
            s["flag_realm"] += dec.flag_realm
            s["errors_above"] += dec.freq_eff
            if self.record:
                self.decisions.append((component, layer, call, u, row_d[:n], dec))
            if self.policy != "none" and getattr(dec, f"flag_{self.policy}"):
                flagged.append(u)
        if flagged:
            flagged = torch.tensor(flagged)
            s["tiles_recomputed"] += flagged.numel()
            s["macs_recomputed"] += int(tiling.unit_macs(flagged).sum())
            unit, _ = tiling.locate(g, row, col, kc)
            keep = ~torch.isin(unit, flagged)
            idx, new = idx[keep], new[keep]
        s["errors_kept"] += idx.numel()
        return (idx.to(acc.device), new.to(acc.device)) if idx.numel() else None


def totals(logs, config, targets):
    """(tiles, MACs) of every GEMM call in the clean pass's ``logs`` (one list per window, as
    :class:`realm.llm.metrics.Evaluator` keeps them) that ``targets(component, layer, call)``
    selects: the denominators of the recompute ratios."""
    tiles = macs = 0
    for log in logs:
        for comp, layer, call, _numel, shape, k in log:
            if targets(comp, layer, call):
                t = gemm_tiling(config, shape, k)
                tiles, macs = tiles + t.units, macs + t.macs
    return tiles, macs
