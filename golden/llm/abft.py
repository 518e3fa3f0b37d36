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

Error placement. The injector (:mod:`golden.llm.inject`) draws errors in the final INT32
accumulator of an output element; the error is the additive change ``new - old`` it makes. In
OS the element is produced by exactly one tile. In WS it is the wrapped sum of the partial sums
of ``ceil(K / rows)`` weight tiles; the error is carried by one of them, drawn uniformly from a
generator seeded from (seed, window, layer, component, call), so every policy sees the same
placement (common random numbers) and the output still carries exactly the injected value.

GEMMs. A linear layer's accumulator [M, N] is one GEMM with K = in_features (the weights are the
stationary operand in WS). An attention BMM's [B, H, T, N] is B·H GEMMs of T x K x N (QKᵀ:
K = head_dim, N = keys; SV: K = keys, N = head_dim).

Parameter files (``realm-params/1``, one per model, dataflow and array size) hold one parameter
set per component in hardware units (:class:`golden.stats.StatParams`), the set index that
programs it into the array, and the fit it came from (:mod:`golden.llm.fit`).
"""
import json
import os
from typing import NamedTuple

import torch

from golden.stats import POLICIES as HW_POLICIES
from golden.stats import StatParams, decide
from golden.tiler import Tiling
from hw.config import ArrayConfig
from hw.stats import stat_widths

from .inject import _seed

POLICIES = ("none", "classic", "approx", "realm")
PARAMS_FORMAT = "realm-params/1"
_PLACE_SALT = 0xABF7


class ParamsError(ValueError):
    """A parameter file that cannot program the array it is used with (one line)."""


def parse_array(text):
    """``ROWSxCOLS-DATAFLOW`` (e.g. ``64x64-ws``) or ``N-DATAFLOW`` -> the array's
    :class:`ArrayConfig` (realm variant with the most parameter sets the unit can hold, 16:
    one per component of any supported model)."""
    try:
        size, df = str(text).rsplit("-", 1)
        rows, _, cols = size.partition("x")
        rows, cols = int(rows), int(cols or rows)
    except ValueError:
        raise ParamsError(f"array must look like 64x64-ws or 16-os, not {text!r}") from None
    try:
        return ArrayConfig(rows=rows, cols=cols, dataflow=df, abft="realm", param_sets=16)
    except ValueError as e:
        raise ParamsError(f"array {text!r}: {e}") from None


def array_name(config):
    return f"{config.rows}x{config.cols}-{config.dataflow}"


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


def _hw_check(config, comp, p):
    w = stat_widths(config.stat_n, config.acc_width)
    limits = {"am1": (0, 1023), "b_q": (-(1 << 15), (1 << 15) - 1),
              "freq_th": (0, (1 << w["freq"]) - 1), "msd_th": (0, (1 << w["msd"]) - 1),
              "msd_mode": (0, 1)}
    for name, (lo, hi) in limits.items():
        v = getattr(p, name)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ParamsError(f"component {comp!r}: {name} must be an integer in {lo}..{hi} for "
                              f"{array_name(config)}, not {v!r}")


def params_path(pattern, array):
    """A parameter file's path: ``pattern`` with ``{array}`` filled in, relative to the
    checkout's root (the current directory when installed) unless absolute."""
    from golden.llm.loader import repo_path

    return repo_path(pattern.replace("{array}", array))


def write_params(path, config, params, *, model, meta=None):
    """Write a parameter file for ``config`` with ``params`` = {component: (StatParams, info)}
    where ``info`` is a dict of provenance (fitted values, tolerance) kept beside the hardware
    values. Sets are numbered in the order given."""
    comps = {}
    if len(params) > config.param_sets:
        raise ParamsError(f"{len(params)} components need {len(params)} parameter sets; the "
                          f"array holds {config.param_sets}")
    for i, (comp, (p, info)) in enumerate(params.items()):
        _hw_check(config, comp, p)
        comps[comp] = {"set": i, "am1": p.am1, "b_q": p.b_q, "freq_th": p.freq_th,
                       "msd_th": p.msd_th, "msd_mode": p.msd_mode, **(info or {})}
    doc = {"format": PARAMS_FORMAT, "model": model, "array": array_name(config),
           "meta": meta or {}, "components": comps}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return doc


def read_params(path, config, components=None):
    """{component: (set, StatParams)} from a parameter file, checked against ``config`` (the
    array it will program) and the components that need a set."""
    from golden.jsonfile import read_json

    doc = read_json(path, "parameter file", ParamsError)
    if not isinstance(doc, dict) or doc.get("format") != PARAMS_FORMAT:
        raise ParamsError(f"parameter file {path!r} is not in the {PARAMS_FORMAT} format")
    if doc.get("array") != array_name(config):
        raise ParamsError(f"parameter file {path!r} is for the {doc.get('array')} array, not "
                          f"{array_name(config)}")
    comps = doc.get("components")
    if not isinstance(comps, dict):
        raise ParamsError(f"parameter file {path!r} has no 'components' object")
    missing = [c for c in (components or []) if c not in comps]
    if missing:
        raise ParamsError(f"parameter file {path!r} has no parameter set for component "
                          f"{missing[0]!r}")
    out = {}
    for comp, e in comps.items():
        try:
            p = StatParams(am1=e["am1"], b_q=e["b_q"], freq_th=e["freq_th"], msd_th=e["msd_th"],
                           policy=HW_POLICIES["realm"], msd_mode=e.get("msd_mode", 0))
            s = e["set"]
        except (KeyError, TypeError) as err:
            raise ParamsError(f"parameter file {path!r}: component {comp!r} lacks {err}") from None
        _hw_check(config, comp, p)
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < config.param_sets:
            raise ParamsError(f"component {comp!r} uses parameter set {s!r}; the array holds "
                              f"sets 0..{config.param_sets - 1}")
        out[comp] = (s, p)
    return out


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
    """An injector (:class:`golden.llm.inject.Injector`) behind the array's ABFT: draws the same
    errors, decides every tile they touch, and passes on only the errors of tiles the policy
    does not recompute. :attr:`stats` counts, over the calls it saw, the errors, the tiles with
    errors, the tiles each detector flags and what the policy recomputed."""

    KEYS = ("errors", "errors_kept", "tiles_faulty", "tiles_mismatch", "tiles_aliased",
            "flag_classic", "flag_approx", "flag_realm", "errors_above", "tiles_recomputed",
            "macs_recomputed")

    def __init__(self, base, config, policy, params, rt):
        if policy not in POLICIES:
            raise ParamsError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
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
        in WS, the K-chunk that carries each)."""
        hit = self.base(component, layer, call, stage, window, acc)
        if hit is None:
            return None
        idx, new = hit
        delta = new.long() - acc.reshape(-1)[idx].long()
        g, row, col = _coords(tuple(acc.shape), idx)
        tiling = gemm_tiling(self.config, tuple(acc.shape), self.rt.k)
        kc = None
        if tiling.ws:
            gen = torch.Generator().manual_seed(_seed(
                self.base.seed, window, layer, sum(map(ord, component)) * 7 + len(component),
                call, _PLACE_SALT))
            kc = torch.randint(tiling.chunks[1], (idx.numel(),), generator=gen)
        return Errors(idx, new, delta, g, row, col, kc, tiling)

    def __call__(self, component, layer, call, stage, window, acc):
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
        return (idx, new) if idx.numel() else None


def totals(logs, config, targets):
    """(tiles, MACs) of every GEMM call in the clean pass's ``logs`` (one list per window, as
    :class:`golden.llm.metrics.Evaluator` keeps them) that ``targets(component, layer, call)``
    selects: the denominators of the recompute ratios."""
    tiles = macs = 0
    for log in logs:
        for comp, layer, call, _numel, shape, k in log:
            if targets(comp, layer, call):
                t = gemm_tiling(config, shape, k)
                tiles, macs = tiles + t.units, macs + t.macs
    return tiles, macs
