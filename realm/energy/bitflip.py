"""Energy and sweet spots under the bitflip error model (:mod:`realm.energy.errmodel`): a
closed-loop campaign on a BER grid (``realm llm campaign`` with ``arrays``/``policies``, e.g.
docs/results/abft/campaign.jsonl) placed on the voltages of a BER curve.

Exactness. A bitflip point depends on the voltage only through ``BER(V)``, so the campaign's
cell at BER ``b`` is the model at ``V(b)`` (:meth:`BerCurve.voltage`): same injector, same seeds,
nothing interpolated. The voltages are those of the grid's BERs; between them nothing is
measured. Above the curve's onset the array is error-free (the clean model, at the onset
voltage, the limit from above).

Policies: ``none``, ``classic``, ``approx`` (MSD threshold), ``realm`` as the campaign ran
them; ``dmr`` computed, not run: no error survives and the recompute ratio is the probability
that either copy has a flip in a decision unit (:func:`realm.energy.model.unit_ratio`,
``per="element"``), from the model's GEMM shapes. ThUnderVolt does not apply: Razor flip-flops
catch late transitions, not a bit that flips.

Bounds (:func:`bounds`). A policy's sweet spot at the lowest grid voltage with its upper bound
within the tolerance could go lower (``"low"``); one at the onset whose first measured voltage
fails could lie between the two (``"high"``). Both are printed as bounds, not values.
"""
import math

from hw.facts import ABFT_POLICIES
from realm.energy import report as er

#: The parameter files of the closed loop the report reads by default.
PARAMS = "docs/results/abft/params/{array}.json"
#: The policies a bitflip table shows (ThUnderVolt does not apply to bit flips).
POLICIES = ("none", "dmr", "classic", "approx", "realm")


def shape_logs(gemm, comp):
    """One layer's GEMM calls of ``comp`` in one window, in the form of
    :attr:`realm.llm.metrics.Evaluator.logs` (every layer and window has the same), from its
    ``(gemms, M, K, N)`` (:func:`realm.abft.fit.component_gemms`)."""
    g, m, k, n = gemm
    shape = (1, g, m, n) if comp in ("qk", "sv") else (m, n)
    return [[(comp, 0, 0, math.prod(shape), shape, k)]]


def _bitflip(pt, bits):
    return (pt.get("mode") == "bitflip" and len(pt["components"]) == 1 and pt.get("layers") is None
            and pt.get("stage", "prefill") == "prefill" and pt.get("bits") == list(bits)
            and pt.get("metric", "ppl") == "ppl")


def select(records, bits, array, params=PARAMS):
    """The closed-loop bitflip records of one bit range and array, single-component, whole
    model, run with the parameter sets the file ``params`` holds now (a refit leaves the old
    points in the results file; :func:`realm.abft.report.current`). The unprotected model
    depends neither on the array nor on the parameters (the same errors, nothing
    recomputed): its points are taken once per (component, BER, seed) from any of them, or
    from plain bitflip points."""
    from realm.abft.report import current

    cache, seen, out = {}, set(), []
    for rec in records:
        pt = rec["point"]
        if not _bitflip(pt, bits):
            continue
        pol = pt.get("policy", "none")
        if pol == "none":
            key = (pt["components"][0], pt.get("ber"), pt.get("seed"))
            if key not in seen:
                seen.add(key)
                out.append({**rec, "point": {**pt, "array": array, "policy": "none"}})
        elif (pol in ABFT_POLICIES and pt.get("array") == array and pt.get("params") == params
              and current(pt, cache)):
            out.append(rec)
    return out


def cells(records, baseline, curve, bits, array, settings, params=PARAMS):
    """{component: {policy: {voltage: {"dppl", "r", "seeds", "ber"}}}} of the campaign's
    records of ``bits`` on ``array`` at the voltages ``curve`` gives their BERs, the
    error-free onset row added, DMR computed (see the module docstring)."""
    from realm.abft.fit import component_gemms
    from realm.abft.loop import parse_array
    from realm.campaign.spec import model_shape
    from realm.energy.model import unit_ratio

    config = parse_array(array)
    out = {}
    for rec in select(records, bits, array, params):
        pt = rec["point"]
        comp, pol, ber = pt["components"][0], pt["policy"], pt["ber"]
        if not ber > 0:
            continue
        v = round(curve.voltage(ber), 9)
        cell = out.setdefault(comp, {}).setdefault(pol, {}).setdefault(
            v, {"dppl": [], "r": [], "seeds": [], "ber": ber})
        ppl = rec.get("ppl")
        cell["dppl"].append(ppl - baseline if ppl is not None and math.isfinite(ppl)
                            else math.inf)
        macs = rec.get("macs") or 0
        cell["r"].append((rec.get("macs_recomputed") or 0) / macs if macs else 0.0)
        cell["seeds"].append(pt["seed"])
    for pols in out.values():  # each cell's lists in seed order
        for pol in pols.values():
            for c in pol.values():
                order = sorted(range(len(c["seeds"])), key=c["seeds"].__getitem__)
                for k in ("seeds", "dppl", "r"):
                    c[k] = [c[k][i] for i in order]
    onset = round(curve.v_max_errors(), 9)
    gemms = component_gemms(model_shape(settings["model"]), settings["length"])
    for comp, pols in out.items():
        logs = shape_logs(gemms[comp], comp)
        bers = {v: c["ber"] for p in pols.values() for v, c in p.items()}
        n = max(len(c["seeds"]) for p in pols.values() for c in p.values())
        pols["dmr"] = {v: {"dppl": [0.0] * n, "seeds": [], "ber": ber,
                           "r": [unit_ratio(logs, config, lambda *a: True, ber, copies=2,
                                            per="element")[0]] * n}
                       for v, ber in sorted(bers.items(), reverse=True)}
        for pol in pols.values():
            if onset not in pol:
                pol[onset] = {"dppl": [0.0] * n, "r": [0.0] * n, "seeds": [], "ber": 0.0}
    return out


def bounds(rows, spot, tol, onset):
    """Whether a sweet spot is a bound of the grid (see the module docstring): ``"low"``,
    ``"high"`` or None. ``rows``: the policy's :func:`realm.energy.report.curves` rows."""
    measured = sorted((r for r in rows if r["v"] < er.NOMINAL), key=lambda r: -r["v"])
    if not measured:
        return None
    if spot["v"] == measured[-1]["v"] and spot["upper"] <= tol:
        return "low"
    below = [r for r in measured if r["v"] < onset]
    if spot["v"] >= onset - 1e-12 and below and below[0]["upper"] > tol:
        return "high"
    return None


def analyse(records, baseline, curve, bits, array, settings, tol, overheads, model,
            params=PARAMS):
    """Curves, Table II (per component: every policy's sweet spot under the upper-bound rule,
    ReaLM's savings), the bound of every sweet spot, ReaLM's saving vs the ABFT prior art
    under the mean rule and under each seed alone, and the verdict
    (:func:`realm.energy.report.verdict`), for one
    curve and bit range."""
    cs = cells(records, baseline, curve, bits, array, settings, params)
    ovh = {p: overheads[p] for p in POLICIES}

    def table(cells_by_comp):
        cur = {comp: er.curves({p: c[p] for p in POLICIES if p in c}, ovh, model)
               for comp, c in cells_by_comp.items()}
        return cur, er.table2(cur, tol)

    cur, t2 = table(cs)
    seeds = er.seed_rules(cs, lambda c: table(c)[1], t2)
    onset = curve.v_max_errors()
    for comp, row in t2.items():
        row["bounds"] = {p: bounds(cur[comp][p], s, tol, onset)
                         for p, s in row["spots"].items()}
        row["bers"] = {p: cs[comp][p][s["v"]]["ber"] if s["v"] in cs[comp][p] else 0.0
                       for p, s in row["spots"].items()}
    return {"curve": curve.describe(), "curve_name": curve.name, "bits": list(bits),
            "array": array, "seeds": seeds, "curves": cur, "table2": t2}
