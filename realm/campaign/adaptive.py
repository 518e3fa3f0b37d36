"""Adaptive seeds: a cell (a point without its seed) gets seeds until its verdict against a
perplexity tolerance is resolved or a cap is reached (:mod:`realm.campaign.stats`).

An experiment of a spec opts in with::

    "adaptive": {"tolerance": {"rel": 0.0167},   # or {"abs": 0.3}: ΔPPL vs the clean run
                 "max_seeds": 8}                 # the cap; at least the experiment's seeds

The experiment's ``seeds`` run first, as before. Then, round after round, every cell whose
95 % interval of ΔPPL straddles the tolerance gets one more seed (one more than the largest it
has, so every engine and worker count adds the same points), until no cell is ``open``.
Clear cells stop at the spec's seeds; a cell still straddling at ``max_seeds`` is
``unresolved``. The added points are ordinary points of the results file (resumable; a rerun
with a larger cap goes on from them). Only ``ppl`` experiments can be adaptive.
"""
import csv
import json
import math
import os

from realm.campaign.spec import adaptive_rules as rules  # noqa: F401 - the rules, validated there
from realm.campaign.spec import point_key
from realm.campaign.stats import verdict

FIELDS = ("experiment", "cell", "n", "seeds", "mean", "lo", "hi", "median", "min", "max",
          "tolerance", "verdict", "one_seed")


def tolerance(tol, baseline_ppl):
    """The ΔPPL tolerance of a rule: ``abs`` as is, ``rel`` times the clean perplexity."""
    return tol["abs"] if "abs" in tol else tol["rel"] * baseline_ppl


def cell_key(point):
    """A point's cell: its identity without the seed."""
    return point_key({k: v for k, v in point.items() if k != "seed"})


def cells(points, done, rule_of):
    """{cell key: (a point of the cell, {its spec seeds}, [records of the cell, any seed])} for
    the points of adaptive experiments (``rule_of`` maps experiment names to rules)."""
    out = {}
    for p in points:
        if p["experiment"] in rule_of:
            out.setdefault(cell_key(p), (p, set(), []))[1].add(p["seed"])
    for rec in done.values():
        c = out.get(cell_key(rec["point"]))
        if c is not None:
            c[2].append(rec)
    return out


def judge(recs, baseline_ppl, rule):
    """:func:`realm.campaign.stats.verdict` of a cell's records under ``rule``."""
    tol, cap = rule
    limit = tolerance(tol, baseline_ppl)
    d = [(r["ppl"] if r.get("ppl") is not None else math.inf) - baseline_ppl for r in recs]
    return {**verdict(d, limit, cap), "tolerance": limit,
            "seeds": sorted(r["point"]["seed"] for r in recs)}


def next_points(points, done, baseline_ppl, rule_of):
    """The points of the next round: one more seed for every open cell whose spec seeds have
    all run (a cell with a failed point waits for a rerun)."""
    out = []
    for p, want, recs in cells(points, done, rule_of).values():
        seeds = {r["point"]["seed"] for r in recs}
        if not want <= seeds:
            continue
        if judge(recs, baseline_ppl, rule_of[p["experiment"]])["verdict"] == "open":
            out.append({**p, "seed": max(seeds) + 1})
    return out


def verdict_rows(points, done, baseline_ppl, rule_of):
    """One row per cell of the adaptive experiments (:data:`FIELDS`)."""
    rows = []
    for key, (p, _, recs) in cells(points, done, rule_of).items():
        if not recs:
            continue
        v = judge(recs, baseline_ppl, rule_of[p["experiment"]])
        cell = {k: v_ for k, v_ in json.loads(key).items() if k not in
                ("experiment", "params", "params_sha", "metric")}
        rows.append({**v, "experiment": p["experiment"], "cell": json.dumps(cell, sort_keys=True),
                     "seeds": " ".join(map(str, v["seeds"]))})
    return rows


def write_verdicts(rows, path):
    """``rows`` as CSV at ``path``; returns their :func:`tally`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return tally(rows)


def read_verdicts(results):
    """The rows of the verdicts file beside ``results`` (:func:`verdicts_path`), or None when
    there is none."""
    path = verdicts_path(results)
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def tally(rows):
    """{verdict: count, "one_seed": count} of verdict rows, as :func:`verdict_rows` makes them
    or as read back from the CSV (``one_seed`` then the string ``"True"``)."""
    out = {}
    for r in rows:
        out[r["verdict"]] = out.get(r["verdict"], 0) + 1
    out["one_seed"] = sum(1 for r in rows if r["one_seed"] in (True, "True"))
    return out


def verdicts_path(out):
    """The verdicts file beside a results file (``x.jsonl`` -> ``x.verdicts.csv``)."""
    return os.path.splitext(out)[0] + ".verdicts.csv"
