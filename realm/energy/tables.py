"""The files of ``realm energy bitflip``: Table II per (BER curve, bit range) side by side, with
today's timing table beside them when given (docs/results/energy/bitflip/).

``table2.csv``  one row per (curve, bits, component): every policy's sweet spot V*, its BER,
                whether it is a bound of the grid, its energy; ReaLM's savings
``curves.csv``  every (curve, bits, component, policy, voltage): BER, ΔPPL mean and upper
                bound, recompute ratio, energy
``table2.json`` the same as data, with the curves, the tolerance and the overheads
``summary.md``  one Table II per setting and the matrix of ReaLM's saving vs the best ABFT
                prior art, component by setting
"""
import csv
import json
import math
import pathlib

from realm.energy.bitflip import POLICIES
from realm.energy.report import GAIN
from realm.energy.write import LABELS

BOUND = {"low": "≤", "high": "≥", None: ""}


def label(res):
    b = res["bits"]
    return (f"{res['curve_name']}, bits {b[0]}" + ("" if b[0] == b[1] else f"–{b[1]}")
            + f", {res['array']}")


def _v(spot, bound):
    return f"{BOUND[bound]}{spot['v']:.3f}"


def pct(x):
    return "" if x is None else f"{100 * x:.1f} %"


def write(out, results, meta, timing=None):
    """Write the files into ``out``; ``results``: :func:`realm.energy.bitflip.analyse` per
    setting; ``meta``: tolerance, baseline, overheads, kinds, source; ``timing``: a timing
    report's ``table2.json`` (read) to set beside them. Returns the paths."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "table2.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["curve", "bits", "array", "component", "kind"]
                   + [f"{k}_{p}" for p in POLICIES for k in ("v", "ber", "bound", "energy")]
                   + ["saving_vs_nominal", "best_other", "saving_vs_best_other",
                      "best_abft_prior_art", "saving_vs_abft_prior_art",
                      "saving_vs_abft_prior_art_mean_rule", "saving_vs_abft_prior_art_per_seed",
                      "verdict", "seeds"])
        for res in results:
            for comp, row in res["table2"].items():
                s = row["spots"]
                cells = []
                for p in POLICIES:
                    cells += ([s[p]["v"], f"{row['bers'][p]:.3g}", row["bounds"][p] or "",
                               f"{s[p]['energy']:.4f}"] if p in s else ["", "", "", ""])
                w.writerow([res["curve_name"], "-".join(map(str, res["bits"])), res["array"],
                            comp, meta["kinds"].get(comp, "")] + cells
                           + [f"{row['saving_nominal']:.4f}", row["best_other"],
                              f"{row['saving_vs_best']:.4f}", row["best_prior"],
                              f"{row['saving_vs_prior']:.4f}",
                              f"{row['mean_rule']['saving_vs_prior']:.4f}",
                              " ".join(f"{x['saving_vs_prior']:.4f}"
                                       for x in row["per_seed"].values()),
                              row["verdict"], " ".join(map(str, res["seeds"]))])
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["curve", "bits", "array", "component", "policy", "v", "dppl_mean",
                    "dppl_upper95",
                    "recompute", "energy"])
        for res in results:
            for comp, cur in res["curves"].items():
                for pol, rows in cur.items():
                    for r in rows:
                        w.writerow([res["curve_name"], "-".join(map(str, res["bits"])),
                                    res["array"], comp, pol, f"{r['v']:.6g}", _num(r["dppl"]),
                                    _num(r["upper"]),
                                    f"{r['r']:.6g}", f"{r['energy']:.6f}"])
    doc = {**meta, "settings": [
        {"curve": res["curve"], "curve_name": res["curve_name"], "bits": res["bits"],
         "array": res["array"], "seeds": res["seeds"], "components": {
             comp: {"spots": {p: {**{k: s[k] for k in ("v", "energy", "r", "upper")},
                                  "ber": row["bers"][p], "bound": row["bounds"][p]}
                              for p, s in row["spots"].items()},
                    **{k: row[k] for k in ("saving_nominal", "best_other", "saving_vs_best",
                                           "best_prior", "saving_vs_prior", "mean_rule",
                                           "per_seed", "verdict")}}
             for comp, row in res["table2"].items()}} for res in results]}
    (out / "table2.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "summary.md").write_text("\n".join(summary_md(results, meta, timing)) + "\n")
    return [out / n for n in ("table2.csv", "curves.csv", "table2.json", "summary.md")]


def _verdict(row):
    seeds = " / ".join(pct(x["saving_vs_prior"]) for x in row["per_seed"].values())
    return (f"**{row['verdict']}** ({seeds}; mean {pct(row['mean_rule']['saving_vs_prior'])}; "
            f"bound {pct(row['saving_vs_prior'])})")


def _num(x):
    return "inf" if not math.isfinite(x) else f"{x:.4g}"


def summary_md(results, meta, timing=None):
    """The markdown of :func:`write`'s summary."""
    kinds = meta["kinds"]
    st = meta.get("settings", {})
    seeds = sorted({s for r in results for s in r["seeds"]})
    lines = [f"Rests on: error model bit flips (one bit per INT32 accumulator element, BER(V) of "
             f"each curve below); model {st.get('model', '?')}, W8A8; {st.get('windows', '?')} "
             f"windows × {st.get('length', '?')} tokens of {st.get('text', '?')} per point; "
             f"seeds {', '.join(map(str, seeds))}; the closed loop's decisions per tile of the "
             "array each table names (" + ", ".join(sorted({r["array"] for r in results}))
             + f"); parameter files {meta.get('params', '?')}.", "",
             f"Tolerance: upper 95 % bound of ΔPPL ≤ {meta['tol']:g} over the seeds (clean "
             f"W8A8 PPL {meta['baseline']:.2f}). Energy relative to the unprotected array at "
             "0.9 V. ≤ V: the sweet spot is the grid's lowest voltage (it could go lower); "
             "≥ V: the onset, with the first measured voltage failing (it could lie between).",
             ""]
    comps = list(dict.fromkeys(c for r in results for c in r["table2"]))
    lines += [f"ReaLM's saving vs the best ABFT prior art (classic ABFT, MSD threshold) at each "
              "policy's sweet spot, and the verdict: **saves** when each seed alone and the "
              f"mean over seeds give ≥ {100 * GAIN:g} %, **no gain** when all give less, else "
              f"**unresolved** (seeds {', '.join(map(str, seeds))}: per seed; the mean rule; "
              "the upper-bound rule of the tables below, which with two seeds (t = 12.7) fails "
              "any cell whose seeds differ by more than about 0.05 PPL):", "",
              "| component | kind | " + " | ".join(label(r) for r in results)
              + (" | timing (A-on0.84) |" if timing else " |"),
              "|---" * (len(results) + 2 + bool(timing)) + "|"]
    for comp in comps:
        cells = [_verdict(r["table2"][comp]) if comp in r["table2"] else "" for r in results]
        if timing:
            t = timing["components"].get(comp)
            cells.append(_verdict(t) if t and "verdict" in t else
                         pct((t or {}).get("saving_vs_prior")))
        lines.append(f"| {comp} | {kinds.get(comp, '?')} | " + " | ".join(cells) + " |")
    for res in results:
        lines += ["", f"### {label(res)}", "",
                  "| component | kind | " + " | ".join(f"V* {LABELS[p]}" for p in POLICIES)
                  + " | BER at ReaLM's V* | E ReaLM | saving vs 0.9 V | best other | "
                  "saving vs best other | saving vs best ABFT prior art |",
                  "|---" * (len(POLICIES) + 8) + "|"]
        for comp, row in res["table2"].items():
            s, b = row["spots"], row["bounds"]
            lines.append(
                f"| {comp} | {kinds.get(comp, '?')} | "
                + " | ".join(_v(s[p], b[p]) if p in s else "" for p in POLICIES)
                + f" | {row['bers']['realm']:.3g} | {row['energy']:.3f} | "
                f"{pct(row['saving_nominal'])} | {LABELS[row['best_other']]} | "
                f"{pct(row['saving_vs_best'])} | {pct(row['saving_vs_prior'])} |")
    return lines
