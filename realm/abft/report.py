"""Summary, headline figures and plots of a statistical-ABFT campaign (points with an array and a
policy, :mod:`realm.abft.loop`): perplexity and recompute ratio against BER per component and
policy (paper Fig. 1b/9), the tolerable-BER relaxation of each policy (the DAC abstract's
115x-2373x), recompute cost against the MSD threshold at equal quality (its 4.09x), and the
unprotected-versus-ReaLM degradation at a damaging BER (its 18.54 -> 0.29).

Ratios are per run: recomputed tiles over all tiles of the targeted GEMMs (and MACs likewise).
Every number is a mean over seeds with a Student-t 95 % CI where there are several.
"""
import csv
import json
import os

from hw.facts import ABFT_POLICIES as POLICIES
from realm.campaign.runner import read_results
from realm.llm.report import ORDER, fmt, mean_ci

DETECTORS = ("classic", "approx", "realm")


def current(p, cache):
    """Whether point ``p`` was run with the parameter sets its file holds now (a refit
    changes a component's digest; its old points stay in the results file, unused)."""
    from golden.params import ParamsError, read_params
    from realm.abft import loop as abft
    from realm.campaign.spec import params_sha

    key = (p["params"], p["array"], tuple(p["components"]))
    if key not in cache:
        try:
            sets = read_params(abft.params_path(p["params"], p["array"]),
                                    abft.parse_array(p["array"]), list(p["components"]))
            cache[key] = {c: params_sha(sets[c]) for c in p["components"]}
        except ParamsError:
            cache[key] = None
    return cache[key] == p.get("params_sha")


def current_records(path):
    """(header, records) of a results file's closed-loop points run with the current parameter
    files (:func:`current`)."""
    header, done = read_results(path)
    cache = {}
    return header, [r for r in done.values() if "array" in r["point"]
                    and current(r["point"], cache)]


def rows(path, current_recs=None):
    """(baseline W8A8 ppl, summary rows): one per (component group, bits, BER, array, policy),
    from the points run with the current parameter files (``current_recs``:
    :func:`current_records` of ``path``, read when None)."""
    header, recs_ = current_recs or current_records(path)
    base = header["baseline"]["w8a8"]["ppl"]
    groups = {}
    for rec in recs_:
        p = rec["point"]
        key = ("+".join(p["components"]), "-".join(map(str, sorted(set(p["bits"])))), p["ber"],
               p["array"], p["policy"], p["experiment"])
        groups.setdefault(key, []).append(rec)
    out = []
    for (comp, bits, ber, arr, pol, exp), recs in groups.items():
        r = {"component": comp, "bits": bits, "ber": ber, "array": arr, "policy": pol,
             "experiment": exp, "n": len(recs)}
        r["ppl"], r["ppl_ci95"] = mean_ci([x["ppl"] for x in recs])
        r["dppl"] = r["ppl"] - base
        r["errors"] = sum(x["errors"] for x in recs) / len(recs)
        r["errors_kept"] = sum(x["errors_kept"] for x in recs) / len(recs)
        r["tiles"] = recs[0]["tiles"]
        r["recompute"], r["recompute_ci95"] = mean_ci(
            [x["tiles_recomputed"] / x["tiles"] for x in recs])
        r["recompute_macs"] = sum(x["macs_recomputed"] / x["macs"] for x in recs) / len(recs)
        for d in DETECTORS:  # what each detector would flag on this run's errors
            r[f"flag_{d}"] = sum(x[f"flag_{d}"] / x["tiles"] for x in recs) / len(recs)
        r["aliased"] = sum(x["tiles_aliased"] for x in recs) / len(recs)
        out.append(r)
    out.sort(key=lambda r: (r["experiment"], r["array"], r["bits"], _ord(r["component"]),
                            r["ber"], POLICIES.index(r["policy"])))
    return base, out


def _ord(c):
    return [ORDER.index(x) if x in ORDER else 99 for x in c.split("+")]


def tolerable(rs, tol, budget=0.01):
    """{(component, bits, array, policy): largest BER such that at it and at every smaller BER
    of the grid the mean ΔPPL <= tol and at most ``budget`` of the tiles are recomputed}
    (None if even the smallest BER fails)."""
    out = {}
    series = {}
    for r in rs:
        series.setdefault((r["component"], r["bits"], r["array"], r["policy"],
                           r["experiment"]), []).append(r)
    for k, s in series.items():
        best = None
        for r in sorted(s, key=lambda r: r["ber"]):
            if r["dppl"] <= tol and r["recompute"] <= budget:
                best = r["ber"]
            else:
                break
        out[k] = best
    return out


def headline(rs, base, tol, budget=0.01):
    """The paper's headline comparisons, per (component, bits, array)."""
    tb = tolerable(rs, tol, budget)
    by = {}
    for r in rs:
        by.setdefault((r["component"], r["bits"], r["array"], r["experiment"]), {}).setdefault(
            r["ber"], {})[r["policy"]] = r
    out = []
    for (comp, bits, arr, exp), bers in by.items():
        t = {p: tb.get((comp, bits, arr, p, exp)) for p in POLICIES}
        h = {"experiment": exp, "component": comp, "bits": bits, "array": arr,
             **{f"tolerable_{p}": t[p] for p in POLICIES}}
        for other in ("classic", "approx"):
            a, b = t["realm"], t[other]
            h[f"relax_vs_{other}"] = (a / b if a and b else None)
        # recompute cost at equal quality: BERs where both keep ΔPPL within tolerance
        ratios = [v["approx"]["recompute_macs"] / v["realm"]["recompute_macs"]
                  for v in bers.values() if "approx" in v and "realm" in v
                  and v["approx"]["dppl"] <= tol and v["realm"]["dppl"] <= tol
                  and v["realm"]["recompute_macs"] > 0]
        h["cost_vs_approx_max"] = max(ratios) if ratios else None
        # unprotected vs ReaLM at the largest BER where ReaLM still holds the tolerance
        ok = [b for b, v in bers.items() if "realm" in v and "none" in v
              and v["realm"]["dppl"] <= tol]
        if ok:
            b = max(ok)
            h["damage_ber"], h["dppl_none"] = b, bers[b]["none"]["dppl"]
            h["dppl_realm"], h["recompute_realm"] = bers[b]["realm"]["dppl"], \
                bers[b]["realm"]["recompute"]
        # ReaLM within tolerance wherever it claims to (it recomputes nothing more it would need)
        h["realm_violations"] = sorted(b for b, v in bers.items() if "realm" in v
                                       and v["realm"]["dppl"] > tol)
        out.append(h)
    return out


def fit_tolerance(path, base):
    """The ΔPPL tolerance the parameter files of a results file were fitted with (their
    ``meta.tolerance``: ``rel`` times the clean perplexity, else ``abs``), or None."""
    from realm.abft.loop import params_path

    _, done = read_results(path)
    for rec in done.values():
        p = rec["point"]
        if "params" in p:
            try:
                with open(params_path(p["params"], p["array"])) as f:
                    t = json.load(f).get("meta", {}).get("tolerance", {})
            except (OSError, ValueError):
                return None
            return base * t["rel"] if t.get("rel") is not None else t.get("abs")
    return None


def summarize(path, out_dir, tol=None, budget=0.01):
    """Write ``summary.csv``, ``headline.json`` and ``summary.md``; return (rows, headline).
    ``tol`` (ΔPPL) defaults to the tolerance the parameter files were fitted with, else 0.3."""
    from realm.campaign.provenance import rests_on

    header, recs = current_recs = current_records(path)
    base, rs = rows(path, current_recs)
    if tol is None:
        tol = fit_tolerance(path, base) or 0.3
    hl = headline(rs, base, tol, budget)
    os.makedirs(out_dir, exist_ok=True)
    cols = ["experiment", "array", "bits", "component", "ber", "policy", "n", "ppl", "ppl_ci95",
            "dppl", "recompute", "recompute_ci95", "recompute_macs", "flag_classic", "flag_approx",
            "flag_realm", "errors", "errors_kept", "aliased", "tiles"]
    with open(os.path.join(out_dir, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rs)
    with open(os.path.join(out_dir, "headline.json"), "w") as f:
        json.dump({"baseline_ppl": base, "tolerance": tol, "budget": budget,
                   "rows": hl}, f, indent=1)
        f.write("\n")
    lines = ["# Statistical ABFT on the W8A8 model: summary", "",
             f"Clean W8A8 PPL {base:.3f}; tolerance ΔPPL <= {tol:.3g}; recompute budget "
             f"{budget:.0%} of tiles.", "", rests_on(header, recs, tol=tol), ""]
    for key in dict.fromkeys((r["array"], r["bits"], r["experiment"]) for r in rs):
        part = [r for r in rs if (r["array"], r["bits"], r["experiment"]) == key]
        bers = sorted({r["ber"] for r in part})
        lines += [f"## {key[2]}: {key[0]}, bit {key[1]}: PPL (recompute ratio of tiles)", "",
                  "| component | policy |" + "".join(f" BER {b:g} |" for b in bers),
                  "|---|---|" + "---|" * len(bers)]
        table = {}
        for r in part:
            cell = fmt(r["ppl"], r["ppl_ci95"])
            if r["policy"] != "none":
                cell += f" ({r['recompute']:.2%})"
            table.setdefault((r["component"], r["policy"]), {})[r["ber"]] = cell
        for (c, p), cells in table.items():
            lines.append(f"| {c} | {p} |" + "".join(f" {cells.get(b, '')} |" for b in bers))
        lines.append("")
    lines += ["## Headline", "", "| experiment | array | bit | component | tolerable BER "
              "none / classic / approx / realm | realm ÷ classic | realm ÷ approx | approx ÷ "
              "realm MACs at equal quality (max) | ΔPPL none → realm (at BER) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for h in hl:
        tb = " / ".join(_g(h[f"tolerable_{p}"]) for p in POLICIES)
        dmg = (f"{h['dppl_none']:.3g} → {h['dppl_realm']:.3g} ({h['damage_ber']:g})"
               if "damage_ber" in h else "")
        lines.append(f"| {h['experiment']} | {h['array']} | {h['bits']} | {h['component']} | "
                     f"{tb} | "
                     f"{_x(h['relax_vs_classic'])} | {_x(h['relax_vs_approx'])} | "
                     f"{_x(h['cost_vs_approx_max'])} | {dmg} |")
    lines.append("")
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write("\n".join(lines))
    return rs, hl


def _g(v):
    return "-" if v is None else f"{v:g}"


def _x(v):
    return "-" if v is None else f"{v:.3g}x"


def plot(path, out_dir, tol=None):
    """Fig. 1b/9-style panels per (array, bits): PPL and recompute ratio against BER, one
    column per component, one line per policy. Returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base, rs = rows(path)
    if tol is None:
        tol = fit_tolerance(path, base) or 0.3
    files = []
    for arr, bits, exp in dict.fromkeys((r["array"], r["bits"], r["experiment"]) for r in rs):
        part = [r for r in rs if (r["array"], r["bits"], r["experiment"]) == (arr, bits, exp)]
        comps = sorted({r["component"] for r in part}, key=_ord)
        fig, axes = plt.subplots(2, len(comps), figsize=(2.6 * len(comps) + 1, 5.2),
                                 squeeze=False, sharex=True)
        for j, c in enumerate(comps):
            for pol, style in zip(POLICIES, ("k--", "C0-o", "C1-s", "C3-^")):
                s = sorted((r for r in part if r["component"] == c and r["policy"] == pol),
                           key=lambda r: r["ber"])
                if not s:
                    continue
                x = [r["ber"] for r in s]
                axes[0, j].plot(x, [min(r["ppl"], 1e6) for r in s], style, ms=3, label=pol)
                if pol != "none":
                    axes[1, j].plot(x, [max(r["recompute"], 1e-5) for r in s], style, ms=3,
                                    label=pol)
            axes[0, j].axhline(base + tol, color="gray", lw=0.6, ls=":")
            axes[0, j].set_title(c)
            for ax in axes[:, j]:
                ax.set_xscale("log")
                ax.set_yscale("log")
            axes[1, j].set_xlabel("BER")
        axes[0, 0].set_ylabel("perplexity")
        axes[1, 0].set_ylabel("tiles recomputed")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"Statistical ABFT in the loop ({exp}), {arr}, bit {bits} "
                     f"(clean W8A8 {base:.2f}; dotted: +{tol:.2g})")
        fig.tight_layout()
        name = f"abft_{exp}_{arr}_bits{bits}.png"
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)
        files.append(name)
    return files


def is_abft(path):
    """Whether a results file holds statistical-ABFT points."""
    _, done = read_results(path)
    return any("array" in r["point"] for r in done.values())

