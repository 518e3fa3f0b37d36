"""Energy of a component's GEMMs under each protection policy vs supply voltage, the clock fixed
at nominal (docs/energy.md §6), relative to the unprotected array at nominal voltage.

Per MAC cycle, ``eps(V) = (1 - lambda) (V / V_n)^2 + lambda (V / V_n)^gamma`` (dynamic CV², and
leakage power with exponent ``gamma``, share ``lambda`` at nominal), written so that ``eps(V_n)
= 1`` exactly. A policy ``P`` with detection power overhead ``o_P`` that recomputes a fraction
``r_P(V)`` of the MACs at nominal voltage on the same hardware costs

    E_P(V) = eps(V) (1 + o_P) + r_P(V) (1 + o_P)

(``E_rec = E_gemm(V_n)`` per recomputed MAC, with the detection logic on; no voltage-switch
energy). Policies (:data:`hw.facts.POLICIES`):

``none``         no protection: ``o = 0``, ``r = 0``; every timing error reaches the model
``dmr``          two copies, compared per tile; ``o = 1`` (the duplicate array; its comparator
                 is not synthesized and left out), ``r`` = P(either copy has an error in the
                 tile) (:func:`unit_ratio` with two copies); no error survives
``thundervolt``  Razor flip-flops on the accumulator detect every late update and drop it
                 (ThUnderVolt's TE-drop): ``o`` = 3.1 % (Razor, Ernst et al. 2003: the
                 default of docs/energy.md, not our synthesis), ``r = 0``; the error becomes the
                 dropped product
``classic``      classic ABFT, ``approx`` (MSD threshold, ApproxABFT-like) and ``realm``
                 (statistical ABFT): ``o`` from our synthesis report's power overhead of the
                 variant on the 256x256 array (:func:`overheads`), ``r`` measured in the
                 closed loop (:class:`realm.abft.loop.AbftInjector`'s ``macs_recomputed``)
"""
import dataclasses
import json
import math
import os

from realm.abft.loop import gemm_tiling

#: Power overheads not taken from our synthesis: DMR's duplicate array, Razor's 3.1 %.
FIXED_OVERHEADS = {"none": 0.0, "dmr": 1.0, "thundervolt": 0.031}


class EnergyError(ValueError):
    """A setting of the energy model that cannot be used (one line)."""


@dataclasses.dataclass(frozen=True)
class EnergyModel:
    """Energy per MAC cycle vs supply voltage (see the module docstring)."""

    v_nominal: float = 0.9
    leak_frac: float = 0.10
    leak_exp: float = 3.0

    def __post_init__(self):
        if not self.v_nominal > 0:
            raise EnergyError(f"nominal voltage must be positive, not {self.v_nominal!r}")
        if not 0.0 <= self.leak_frac <= 1.0:
            raise EnergyError(f"leakage share must be in [0, 1], not {self.leak_frac!r}")

    def scale(self, v):
        """``eps(v)``: energy per MAC cycle at ``v`` volts over that at nominal (1 exactly at
        nominal)."""
        x = v / self.v_nominal
        return 1.0 + (1.0 - self.leak_frac) * (x * x - 1.0) + self.leak_frac * (
            x ** self.leak_exp - 1.0)

    def energy(self, v, overhead, recompute):
        """``E_P(v)`` of a policy with power overhead ``overhead`` (fraction) that recomputes
        the fraction ``recompute`` of the MACs at nominal voltage."""
        if not 0.0 <= recompute <= 1.0 + 1e-12:
            raise EnergyError(f"recompute ratio must be in [0, 1], not {recompute!r}")
        return self.scale(v) * (1.0 + overhead) + recompute * (1.0 + overhead)


def synth_reports(path=None):
    """Our synthesis reports, read, as (report, path): ``path`` alone if given, else
    ``build/synth/report.json`` (a local ``make synth``) then the committed
    ``docs/results/synth/report.json``, those that exist."""
    from hw.paths import BUILD, RESULTS

    candidates = [path] if path else [str(BUILD / "synth" / "report.json"),
                                      str(RESULTS / "synth" / "report.json")]
    out = []
    for p in candidates:
        if p and os.path.exists(p):
            with open(p) as f:
                out.append((json.load(f), p))
    if not out:
        raise EnergyError(f"no synthesis report at {candidates[-1]!r} (make synth writes one)")
    return out


def overheads(dataflow, size=256, report=None, cols=None):
    """({policy: power overhead as a fraction}, {policy: source}) for the ``size`` x ``cols``
    array of ``dataflow`` (``cols`` defaults to ``size``): the ABFT variants' from the first of
    :func:`synth_reports` that has all three (composed arrays, activity-based power), the others
    :data:`FIXED_OVERHEADS`."""
    cols = size if cols is None else cols
    src = {"none": "-", "dmr": "duplicate array (comparator not modelled)",
           "thundervolt": "Razor flip-flops, 3.1 % (Ernst et al. 2003; docs/energy.md default)"}
    reports = synth_reports(report)
    for rep, path in reports:
        out, found = dict(FIXED_OVERHEADS), dict(src)
        for r in rep.get("composed", []):
            if (r.get("rows") == size and r.get("cols") == cols
                    and r.get("dataflow") == dataflow
                    and r.get("abft") in ("classic", "approx", "realm")
                    and r.get("power_overhead_pct") is not None):
                out[r["abft"]] = r["power_overhead_pct"] / 100.0
                found[r["abft"]] = (f"{os.path.relpath(path)}: {size}x{cols}-{dataflow}-"
                                    f"{r['abft']} power overhead {r['power_overhead_pct']:.3f} %")
        missing = [p for p in ("classic", "approx", "realm") if p not in out]
        if not missing:
            return out, found
    names = " or ".join(repr(p) for _, p in reports)
    how = (f"realm synth --sizes '' --large {size} --composed-power {size} composes it"
           if size == cols else f"realm synth --rows {size} --cols {cols} --dataflow "
           f"{dataflow} composes it")
    raise EnergyError(f"the synthesis report {names} has no {size}x{cols}-{dataflow}-"
                      f"{missing[0]} power figure ({how})")


def _chunks(size, block):
    return [min(block, size - i) for i in range(0, size, block)]


def unit_ratio(logs, config, targets, p, copies=1, per="cycle"):
    """(expected fraction of MACs in decision units with an error, MACs) over the GEMM calls
    of ``logs`` (:attr:`realm.llm.metrics.Evaluator.logs`) that ``targets(component, layer,
    call)`` selects, when each of ``copies`` copies errs with probability ``p``:

    * ``per="cycle"`` (timing errors): each MAC cycle; a unit's outputs each pass ``rows`` PE
      cycles (WS, per K-chunk, padding included) or ``K`` (OS);
    * ``per="element"`` (bit flips): each output element of the GEMM, its error carried by
      one of the element's ``ceil(K / rows)`` K-chunks, uniformly (WS; OS: its one unit), as
      :class:`realm.abft.loop.AbftInjector` places it.

    ``copies=2`` is DMR's recompute ratio, ``copies=1`` classic ABFT's (no aliasing)."""
    if per not in ("cycle", "element"):
        raise EnergyError(f"per must be cycle or element, not {per!r}")
    num = den = 0.0
    for log in logs:
        for comp, layer, call, _numel, shape, k in log:
            if not targets(comp, layer, call):
                continue
            t = gemm_tiling(config, shape, k)
            c = config
            if t.ws:
                ms, ks, ns, cyc = _chunks(t.m, c.cols), _chunks(t.k, c.rows), _chunks(
                    t.n, c.cols), c.rows
            else:
                ms, ks, ns, cyc = _chunks(t.m, c.rows), [t.k], _chunks(t.n, c.cols), t.k
            q, cyc = (p / len(ks), 1) if per == "element" else (p, cyc)
            log1m = math.log1p(-q) if q < 1 else -math.inf
            for m in ms:
                for n in ns:
                    pi = -math.expm1(copies * cyc * m * n * log1m) if q > 0 else 0.0
                    for kk in ks:
                        num += t.gemms * m * kk * n * pi
                        den += t.gemms * m * kk * n
    return (num / den if den else 0.0), int(den)


def dmr_ratio(logs, config, targets, p):
    """DMR's expected recompute ratio and the MACs it is over (:func:`unit_ratio`, two
    copies)."""
    return unit_ratio(logs, config, targets, p, copies=2)
