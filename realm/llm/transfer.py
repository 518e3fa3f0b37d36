"""Do a model's component verdicts carry over to another model? (``realm llm transfer``)

Two results files of the same kind of experiment (one target component per point, a BER grid,
several seeds; e.g. the ``components`` experiment of SmolLM2-135M and of Gemma-3-270M) are
read each against its own clean W8A8 perplexity. Per component and BER the cell's verdict is
:func:`realm.campaign.stats.verdict` of its seeds' degradations against ``rel`` times the
clean perplexity (the cap is the seeds it has: no more will come), so each cell is
``within``, ``beyond`` or ``unresolved``. Per component:

* **tolerable BER**: the largest BER of the grid at which it and every lower BER are
  ``within``; None when the lowest already is not; beside it the same by the mean alone
  (``tolerable_mean``, the rule of the project's earlier tables);
* **breaks at**: the lowest BER that is ``beyond``; ``unresolved`` cells are listed;
* **kind**: ``sensitive`` when the component is ``beyond`` at or below ``sensitive_ber``, else
  ``resilient`` when it is ``within`` up to there, else ``unresolved``.

A component's verdict *transfers* when both models give the same kind and tolerable BERs
within one step of their common grid; the table says which.

**Refinements.** A model's results may come with a second-stage file over its decisive cells
with more text (:mod:`realm.campaign.refine`: experiments ``<experiment>@<n>``, 16 windows):
a cell it holds replaces the main file's, judged against the refinement's own clean
perplexity; each cell keeps the scored tokens it rests on (windows x (length - 1)).
"""
import math

from golden.faults import LLM_COMPONENTS
from realm.campaign.provenance import scored_tokens
from realm.campaign.runner import read_results
from realm.campaign.stats import verdict

#: The BER at or below which a component that breaks is called sensitive.
SENSITIVE_BER = 1e-5


def _read(path, experiment, bits):
    """(clean W8A8 perplexity, scored tokens per point, {component: {ber: [ppl of each seed]}})
    of one experiment's (and its refinements') single-component points at ``bits``."""
    header, done = read_results(path)
    if header is None:
        raise ValueError(f"{path} holds no campaign results")
    tokens = scored_tokens(header["settings"])
    out = {}
    for rec in done.values():
        p = rec["point"]
        if ((p["experiment"] != experiment and not p["experiment"].startswith(experiment + "@"))
                or len(p["components"]) != 1 or "ber" not in p
                or tuple(p.get("bits") or ()) != tuple(bits)):
            continue
        ppl = rec.get("ppl")
        out.setdefault(p["components"][0], {}).setdefault(p["ber"], []).append(
            math.inf if ppl is None else ppl)
    return header["baseline"]["w8a8"]["ppl"], tokens, out


def cells(path, experiment, bits=(30, 30), refined=None):
    """(clean W8A8 perplexity of ``path``, {component: {ber: (clean, [ppl of each seed],
    scored tokens)}}) of one experiment's single-component points at ``bits``; the cells of
    the ``refined`` results file (module docstring) replace those of ``path``."""
    clean, tokens, main = _read(path, experiment, bits)
    out = {c: {b: (clean, v, tokens) for b, v in g.items()} for c, g in main.items()}
    if refined is not None:
        r_clean, r_tokens, more = _read(refined, experiment, bits)
        for c, g in more.items():
            for b, v in g.items():
                out.setdefault(c, {})[b] = (r_clean, v, r_tokens)
    return clean, out


def _judge(clean, ppls, tokens, rel):
    tol = rel * clean
    return {**verdict([x - clean for x in ppls], tol, cap=len(ppls)), "tolerance": tol,
            "tokens": tokens}


def component(bers, rel, sensitive_ber=SENSITIVE_BER):
    """The verdicts of one component from ``{ber: (clean, [ppl of each seed], tokens)}``:
    ``{"cells": {ber: verdict dict}, "tolerable", "breaks", "unresolved", "kind", "seeds",
    "tokens"}`` (module docstring)."""
    vs = {b: _judge(*cell, rel) for b, cell in sorted(bers.items())}
    tolerable = _last_of_run(vs, lambda v: v["verdict"] == "within")
    # the rule of the project's earlier tables: the mean alone within
    by_mean = _last_of_run(vs, lambda v: v["mean"] <= v["tolerance"])
    beyond = [b for b, v in vs.items() if v["verdict"] == "beyond"]
    unresolved = [b for b, v in vs.items() if v["verdict"] == "unresolved"]
    low = {b: v["verdict"] for b, v in vs.items() if b <= sensitive_ber}
    if any(x == "beyond" for x in low.values()):
        kind = "sensitive"
    elif low and all(x == "within" for x in low.values()):
        kind = "resilient"
    else:
        kind = "unresolved"
    return {"cells": vs, "tolerable": tolerable, "tolerable_mean": by_mean,
            "breaks": beyond[0] if beyond else None,
            "unresolved": unresolved, "kind": kind,
            "seeds": sorted({v["n"] for v in vs.values()}),
            "tokens": sorted({v["tokens"] for v in vs.values() if v["tokens"] is not None})}


def _last_of_run(vs, ok):
    """The largest BER of ``vs`` (ascending) such that it and every lower one are ``ok``, or
    None."""
    last = None
    for b, v in vs.items():
        if not ok(v):
            break
        last = b
    return last


def compare(a, b, experiment="components", rel=0.0167, bits=(30, 30), refined=(None, None)):
    """Rows of the side-by-side table of results files ``a`` and ``b`` (each with an optional
    refinement, ``refined``): per component both models' kind, tolerable BER, first BER beyond
    and unresolved BERs, and whether it transfers (same kind, tolerable BERs within one step of
    the common grid)."""
    (ca, ga), (cb, gb) = (cells(a, experiment, bits, refined[0]),
                          cells(b, experiment, bits, refined[1]))
    rows = []
    order = {c: i for i, c in enumerate(LLM_COMPONENTS)}
    for comp in sorted((c for c in ga if c in gb), key=lambda c: (order.get(c, 99), c)):
        grid = sorted(set(ga[comp]) & set(gb[comp]))
        va = component({x: ga[comp][x] for x in grid}, rel)
        vb = component({x: gb[comp][x] for x in grid}, rel)
        step = _steps(grid, va["tolerable"], vb["tolerable"])
        rows.append({"component": comp, "a": va, "b": vb, "grid": grid,
                     "transfers": va["kind"] == vb["kind"] != "unresolved" and step <= 1,
                     "mean_steps": _steps(grid, va["tolerable_mean"], vb["tolerable_mean"])})
    return {"clean": (ca, cb), "rel": rel, "rows": rows}


def _steps(grid, x, y):
    """How many grid steps apart two tolerable BERs are (None below the grid counts as the
    step before its first BER)."""
    pos = {b: i for i, b in enumerate(grid)}
    ix, iy = pos.get(x, -1), pos.get(y, -1)
    return abs(ix - iy)


def _g(x):
    return "< grid" if x is None else f"{x:g}"


def markdown(res, names=("A", "B")):
    """The comparison as a Markdown table, with what it rests on."""
    a, b = names
    ca, cb = res["clean"]
    lines = [f"Clean W8A8 PPL: {a} {ca:.3f}, {b} {cb:.3f}; tolerance ΔPPL ≤ {res['rel']:.2%} of "
             f"each model's own (ΔPPL ≤ {res['rel'] * ca:.3g} / {res['rel'] * cb:.3g}); a cell's "
             "verdict is the 95 % Student t interval of its seeds against it; sensitive = "
             f"beyond at a BER ≤ {SENSITIVE_BER:g}."
             + (" Cells with more scored tokens come from a refinement (realm llm refine), each "
                "judged against the refinement's own clean perplexity." if any(
                    len(r[s]["tokens"]) > 1 for r in res["rows"] for s in ("a", "b")) else ""),
             "",
             f"| component | kind {a} / {b} | tolerable BER {a} / {b} | by the mean | "
             f"breaks at {a} / {b} | unresolved BERs {a} / {b} | seeds {a} / {b} | "
             f"scored tokens {a} / {b} | transfers | by the mean, steps apart |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        x, y = r["a"], r["b"]
        lines.append(
            f"| {r['component']} | {x['kind']} / {y['kind']} | {_g(x['tolerable'])} / "
            f"{_g(y['tolerable'])} | {_g(x['tolerable_mean'])} / {_g(y['tolerable_mean'])} | "
            f"{_g(x['breaks']) if x['breaks'] else '–'} / "
            f"{_g(y['breaks']) if y['breaks'] else '–'} | "
            f"{', '.join(map(_g, x['unresolved'])) or '–'} / "
            f"{', '.join(map(_g, y['unresolved'])) or '–'} | "
            f"{'-'.join(map(str, x['seeds']))} / {'-'.join(map(str, y['seeds']))} | "
            f"{_tokens(x)} / {_tokens(y)} | "
            f"{'**yes**' if r['transfers'] else 'no'} | {r['mean_steps']} |")
    return "\n".join(lines) + "\n"


def _tokens(side):
    """A component's scored tokens per cell, e.g. ``2044`` or ``2044-8176`` (refined cells)."""
    return "-".join(map(str, side["tokens"])) or "?"


def to_json(res):
    """The comparison as plain JSON data (BER keys as strings)."""
    def side(v):
        return {**{k: v[k] for k in ("tolerable", "tolerable_mean", "breaks", "unresolved",
                                     "kind", "seeds", "tokens")},
                "cells": {f"{b:g}": c for b, c in v["cells"].items()}}
    return _finite({"clean": res["clean"], "rel": res["rel"],
                    "rows": [{"component": r["component"], "grid": r["grid"],
                              "transfers": r["transfers"], "mean_steps": r["mean_steps"],
                              "a": side(r["a"]),
                              "b": side(r["b"])} for r in res["rows"]]})


def _finite(o):
    """``o`` with infinities as the string "inf" (standard JSON has no infinity)."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, float) and math.isinf(o):
        return "inf" if o > 0 else "-inf"
    return o
