"""Sweet spots per component and policy from a timing campaign (docs/energy.md §7, §8): the
energy and quality of every policy at every voltage, the lowest-energy voltage whose upper
confidence bound of the perplexity degradation stays within the tolerance, savings vs nominal
and vs the best other policy, and the same under every other timing setting and leakage share.

The sweet spot of a policy (:func:`sweet_spot`): its lowest-energy voltage among those, from
nominal down to the first voltage whose upper bound exceeds the tolerance, whose upper bound is
within it.

Quality per (component, policy, voltage): ``dPPL`` per seed (the point's perplexity minus the
clean W8A8 baseline of the results file's header), its mean, and its upper 95 % bound ``mean +
t(0.975, S-1) sd / sqrt(S)`` over the ``S`` seeds (the value itself for one seed). Every policy
saw the same error draws (common random numbers: the injector is seeded per call from the
seed). DMR has no error left (its points carry the clean metrics). Nominal voltage is always
available, error-free: ``E = 1 + o_P``.

Other timing settings (delay curve, margin) are remapped, not rerun: at voltage ``V`` a
setting's table gives the component's ``p``; the quality and recompute ratio are those the
campaign measured at the smallest ``p`` at least as large (more errors: conservative), clean
where ``p = 0``, failing past the campaign's largest ``p``. The error values of the rows are
close (tail rows share them), so this reads the campaign as a function of ``p``.
"""
import math

from hw.facts import POLICIES
from realm.campaign.stats import t975

NOMINAL = 0.9
#: The ABFT prior art ReaLM compares with (classic ABFT [46], ApproxABFT [45]).
PRIOR_ART = ("classic", "approx")


def upper(values):
    """(mean, upper 95 % bound) of a list of degradations (inf if any is inf or NaN)."""
    if any(not math.isfinite(v) for v in values):
        return math.inf, math.inf
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, mean + t975(n - 1) * sd / math.sqrt(n)


def collect(records, baseline):
    """{component: {policy: {voltage: {"dppl": [...], "r": [...], "p": float}}}} from a
    campaign's timing records (single-component points)."""
    out = {}
    for rec in records:
        pt = rec["point"]
        if pt.get("mode") != "timing" or len(pt["components"]) != 1:
            continue
        comp, pol = pt["components"][0], pt.get("policy", "none")
        cell = out.setdefault(comp, {}).setdefault(pol, {}).setdefault(
            pt["voltage"], {"dppl": [], "r": [], "seeds": []})
        ppl = rec.get("ppl", math.inf)
        cell["dppl"].append(ppl - baseline if ppl is not None else math.inf)
        macs = rec.get("macs") or 0
        cell["r"].append((rec.get("macs_recomputed") or 0) / macs if macs else 0.0)
        cell["seeds"].append(pt["seed"])
    return out


def curves(cells, overheads, model, p_of=None):
    """Per policy, rows ``{"v", "dppl", "upper", "r", "energy"}`` in decreasing voltage,
    nominal first. ``cells``: one component's :func:`collect` entry."""
    out = {}
    for pol in POLICIES:
        if pol not in cells:
            continue
        o = overheads[pol]
        rows = [{"v": NOMINAL, "dppl": 0.0, "upper": 0.0, "r": 0.0,
                 "energy": model.energy(NOMINAL, o, 0.0)}]
        for v in sorted(cells[pol], reverse=True):
            if v >= NOMINAL:
                continue
            c = cells[pol][v]
            mean, up = upper(c["dppl"])
            r = sum(c["r"]) / len(c["r"])
            rows.append({"v": v, "dppl": mean, "upper": up, "r": r,
                         "energy": model.energy(v, o, min(r, 1.0))})
        out[pol] = rows
    return out


def sweet_spot(rows, tol):
    """The row of lowest energy among those whose upper bound is within ``tol``, going down
    from nominal and stopping at the first that is not: degradation grows as the voltage
    drops, so a tolerable voltage below an intolerable one is sampling noise (two seeds that
    happen to agree), not a sweet spot."""
    ok = []
    for r in sorted(rows, key=lambda r: -r["v"]):
        if r["upper"] > tol:
            break
        ok.append(r)
    return min(ok, key=lambda r: (r["energy"], -r["v"])) if ok else rows[0]


def table2(curves_by_comp, tol, focus="realm"):
    """Per component: the sweet spot of every policy, the saving of ``focus`` vs nominal, vs
    the best other policy (docs/energy.md §7) and vs the best ABFT prior art
    (:data:`PRIOR_ART`, the paper's comparison)."""
    out = {}
    for comp, cur in curves_by_comp.items():
        spots = {pol: sweet_spot(rows, tol) for pol, rows in cur.items()}
        if focus not in spots:
            continue
        f = spots[focus]
        others = {p: s for p, s in spots.items() if p != focus}
        best = min(others, key=lambda p: others[p]["energy"]) if others else None
        prior = [p for p in PRIOR_ART if p in others]
        best_prior = min(prior, key=lambda p: others[p]["energy"]) if prior else None
        out[comp] = {"spots": spots, "v": f["v"], "energy": f["energy"], "r": f["r"],
                     "upper": f["upper"], "saving_nominal": 1 - f["energy"],
                     "best_other": best,
                     "saving_vs_best": (1 - f["energy"] / others[best]["energy"]) if best
                     else None,
                     "best_prior": best_prior,
                     "saving_vs_prior": (1 - f["energy"] / others[best_prior]["energy"])
                     if best_prior else None}
    return out


#: ReaLM "saves" against the ABFT prior art when every seed alone and the mean rule give at
#: least this saving, and has "no gain" when they all give less; otherwise the verdict is
#: "unresolved".
GAIN = 0.01


def one_seed(comp_cells, seed):
    """A component's cells restricted to one seed (cells without that seed are left out;
    computed rows, which have no seeds, keep their first value)."""
    out = {}
    for pol, cells_ in comp_cells.items():
        res = {}
        for v, c in cells_.items():
            if not c["seeds"]:
                res[v] = {"dppl": c["dppl"][:1], "r": c["r"][:1]}
            elif seed in c["seeds"]:
                i = c["seeds"].index(seed)
                res[v] = {"dppl": [c["dppl"][i]], "r": [c["r"][i]]}
        out[pol] = res
    return out


def mean_cells(comp_cells):
    """A component's cells with each cell's mean as its only value (the mean rule)."""
    return {pol: {v: {"dppl": [sum(c["dppl"]) / len(c["dppl"])], "r": [sum(c["r"]) / len(c["r"])]}
                  for v, c in cells_.items()} for pol, cells_ in comp_cells.items()}


def verdict(per_seed):
    """``"saves"``, ``"no gain"`` or ``"unresolved"`` from ReaLM's savings vs the best ABFT
    prior art under each seed alone and the mean rule (see :data:`GAIN`); one seed alone is
    never resolved."""
    if len(per_seed) < 3:  # (at least two seeds and the mean)
        return "unresolved"
    if not per_seed or any(x is None for x in per_seed):
        return "unresolved"
    if min(per_seed) >= GAIN:
        return "saves"
    if max(per_seed) < GAIN:
        return "no gain"
    return "unresolved"


def seed_rules(cells, table, t2):
    """Add to each row of ``t2`` (:func:`table2` of ``cells``) ReaLM's saving vs the ABFT prior
    art under the mean rule (``mean_rule``) and under each seed alone (``per_seed``), and the
    :func:`verdict`. ``table(cells)`` is the Table II of some cells; returns the seeds."""
    t_mean = table({comp: mean_cells(c) for comp, c in cells.items()})
    seeds = sorted({s for c in cells.values() for p in c.values() for x in p.values()
                    for s in x.get("seeds", [])})
    t_seed = {s: table({comp: one_seed(c, s) for comp, c in cells.items()}) for s in seeds}
    for comp, row in t2.items():
        mine = {s for p in cells[comp].values() for x in p.values() for s in x.get("seeds", [])}
        row["mean_rule"] = {"v": t_mean[comp]["v"],
                            "saving_vs_prior": t_mean[comp]["saving_vs_prior"]}
        row["per_seed"] = {s: {"v": t_seed[s][comp]["v"],
                               "saving_vs_prior": t_seed[s][comp]["saving_vs_prior"]}
                           for s in seeds if s in mine and comp in t_seed[s]}
        row["verdict"] = verdict([x["saving_vs_prior"] for x in row["per_seed"].values()]
                                 + [row["mean_rule"]["saving_vs_prior"]])
    return seeds


def remap(cells_comp, table, comp, voltages, clean=lambda p: p == 0.0):
    """A component's :func:`collect` entry under another timing setting: per policy and
    voltage of ``voltages``, the campaign cell at the smallest measured ``p`` at least the
    setting's (see the module docstring), or the clean model where ``clean(p)`` (default:
    ``p = 0``; the report also counts as clean a ``p`` at which one pass expects fewer than
    0.05 erroneous elements, the campaign spec's threshold). ``table``: the setting's
    :class:`realm.energy.vtable.VoltageTable`; the campaign's ``p`` per voltage are in
    ``cells_comp["_p"]``."""
    measured = sorted((p, v) for v, p in cells_comp["_p"].items())
    out = {}
    for pol, cells in cells_comp.items():
        if pol == "_p":
            continue
        res = {}
        for v in voltages:
            try:
                p = table.row(comp, v).p
            except ValueError:
                p = 1.0  # below the setting's table: every element fails
            if clean(p):
                n = len(next(iter(cells.values()))["dppl"])
                res[v] = {"dppl": [0.0] * n, "r": [0.0] * n}
                continue
            hit = next((mv for mp, mv in measured if mp >= p and mv in cells), None)
            res[v] = (cells[hit] if hit is not None
                      else {"dppl": [math.inf], "r": [1.0]})
        out[pol] = res
    return out
