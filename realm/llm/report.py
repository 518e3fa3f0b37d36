"""Summaries and plots of a campaign's results file (paper Sec. IV, Fig. 4 style).

:func:`summarize` averages each point over its seeds (mean and 95 % confidence interval, Student t)
into ``summary.csv`` (long format) and ``summary.md`` (one pivot table per experiment: target
groups × BER, or MSD × freq). :func:`plot` draws one PNG per experiment, choosing the Fig. 4 panel
that fits its axes: per-component BER curves, layer-wise curves, bit-wise curves, prefill vs decode
agreement, or the MSD × freq heatmap.
"""
import csv
import json
import math
import os
import statistics

from golden.faults import LLM_COMPONENTS
from realm.campaign.runner import read_results
from realm.campaign.stats import mean_ci

METRICS = {"ppl": ("ppl", "acc"), "gen": ("agree", "prefix", "exact")}


def label(point, what):
    """Readable label of a point's components, layers or bits."""
    if what == "components":
        c = point["components"]
        return "all" if len(c) >= 8 else "+".join(c)
    if what == "layers":
        return "all" if point["layers"] is None else "+".join(map(str, point["layers"]))
    lo, hi = point["bits"]
    return str(lo) if lo == hi else f"{lo}-{hi}"


def rows(path, results=None):
    """(header, summary rows): one row per point without its seed (``results``: ``path``'s
    :func:`read_results`, read when None)."""
    header, done = results or read_results(path)
    groups = {}
    for rec in done.values():
        p = dict(rec["point"])
        p.pop("seed")
        groups.setdefault(json.dumps(p, sort_keys=True), []).append(rec)
    out = []
    for key, recs in groups.items():
        p = json.loads(key)
        r = {"experiment": p["experiment"], "metric": p["metric"], "mode": p["mode"],
             "components": label(p, "components"), "layers": label(p, "layers"),
             "stage": p["stage"], "bits": label(p, "bits"), "ber": p.get("ber"),
             "msd_log2": p.get("msd_log2"), "freq_log2": p.get("freq_log2"), "n": len(recs),
             "plot": p.get("plot")}
        for m in METRICS[p["metric"]]:
            r[m], r[m + "_ci95"] = mean_ci([x[m] for x in recs])
        if p["metric"] == "ppl":  # geometric mean over seeds: robust to one exploding seed
            nll = statistics.fmean(x["nll"] for x in recs)
            r["ppl_geo"] = math.exp(nll) if nll < 700 else math.inf
        r["faults"] = statistics.fmean(x["faults"] for x in recs)
        out.append(r)
    exps = list(dict.fromkeys(r["point"]["experiment"] for r in done.values()))
    out.sort(key=lambda r: (exps.index(r["experiment"]), _order(r["components"]),
                            _order(r["layers"]), STAGES.index(r["stage"]), _order(r["bits"]),
                            r["ber"] or 0, r["msd_log2"] or 0, r["freq_log2"] or 0))
    return header, out


ORDER = (*LLM_COMPONENTS, "all")
STAGES = ("prefill", "decode", "both")


def _order(lbl):
    """Sort key of a label: block order for components, numeric for layers and bits."""
    return [(0, int(p), "") if p.isdigit() else (1, ORDER.index(p) if p in ORDER else 99, p)
            for p in lbl.replace("-", "+").split("+")]


def fmt(v, ci=None):
    if v is None:
        return ""
    if math.isinf(v):
        return "inf"
    s = f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3g}"
    return s + (f" ± {ci:.2g}" if ci is not None else "")


def summarize(path, out_dir):
    """Write ``summary.csv`` and ``summary.md`` for a results file; return the summary rows."""
    results = read_results(path)
    header, rs = rows(path, results)
    os.makedirs(out_dir, exist_ok=True)
    cols = ["experiment", "metric", "mode", "components", "layers", "stage", "bits", "ber",
            "msd_log2", "freq_log2", "n", "ppl", "ppl_ci95", "ppl_geo", "acc", "acc_ci95", "agree",
            "agree_ci95", "prefix", "prefix_ci95", "exact", "exact_ci95", "faults"]
    with open(os.path.join(out_dir, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rs)
    lines = ["# Characterization summary", ""]
    if header:
        from realm.campaign import provenance
        from realm.campaign.adaptive import read_verdicts

        b = header["baseline"]
        lines += [f"Settings: `{json.dumps(header['settings'])}`", "",
                  f"Baselines: FP32 PPL {b['fp32']['ppl']:.3f} (top-1 {b['fp32']['acc']:.4f}), "
                  f"W8A8 PPL {b['w8a8']['ppl']:.3f} (top-1 {b['w8a8']['acc']:.4f}).", "",
                  provenance.rests_on(header, list(results[1].values()),
                                      verdicts=read_verdicts(path)), ""]
    for exp in dict.fromkeys(r["experiment"] for r in rs):
        er = [r for r in rs if r["experiment"] == exp]
        m = "ppl" if er[0]["metric"] == "ppl" else "agree"
        unit = "perplexity" if m == "ppl" else "greedy-token agreement with the clean run"
        ns = sorted({r["n"] for r in er})
        seeds = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
        lines += [f"## {exp}: {unit} (mean ± 95 % CI over {seeds} seed(s))", ""]
        if er[0]["mode"] == "msd":
            colk, rowk = "freq_log2", lambda r: (r["components"], r["msd_log2"])
            head = "| component | log2 MSD |"
        else:
            colk = "ber"
            rowk = lambda r: (r["components"], r["layers"], r["stage"], r["bits"])  # noqa: E731
            head = "| components | layers | stage | bit |"
        cvals = sorted(dict.fromkeys(r[colk] for r in er))
        table = {}
        for r in er:
            table.setdefault(rowk(r), {})[r[colk]] = fmt(r[m], r[m + "_ci95"])
        name = "freq 2^" if colk == "freq_log2" else "BER "
        lines.append(head + "".join(f" {name}{c:g} |" for c in cvals))
        lines.append("|" + "---|" * (head.count("|") - 1 + len(cvals)))
        for k, cells in table.items():
            lines.append("| " + " | ".join(map(str, k)) + " |"
                         + "".join(f" {cells.get(c, '')} |" for c in cvals))
        lines.append("")
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write("\n".join(lines))
    return rs


def _kind(er):
    if er[0]["plot"]:
        return er[0]["plot"]
    if er[0]["mode"] == "msd":
        return "heatmap"
    if er[0]["metric"] == "gen":
        return "stage"
    if len({r["bits"] for r in er}) > 1:
        return "bit"
    if len({r["layers"] for r in er}) > 1:
        return "layer"
    return "component"


def plot(path, out_dir):
    """One PNG per experiment under ``out_dir``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    header, rs = rows(path)
    base = header["baseline"]["w8a8"]["ppl"] if header else None
    files = []
    for exp in dict.fromkeys(r["experiment"] for r in rs):
        er = [r for r in rs if r["experiment"] == exp]
        kind = _kind(er)
        if kind == "heatmap":
            fig = _heatmap(plt, er, base)
        else:
            fig, ax = plt.subplots(figsize=(6, 4.2))
            m = "agree" if kind == "stage" else "ppl"
            if kind == "bit":
                series = lambda r: f"{r['components']} BER {r['ber']:g}"  # noqa: E731
                x = lambda r: int(r["bits"].split("-")[0])  # noqa: E731
            elif kind == "stage":
                series = lambda r: f"{r['components']} {r['stage']}"  # noqa: E731
                x = lambda r: r["ber"]  # noqa: E731
            elif kind == "layer":
                series = lambda r: f"layer {r['layers']}"  # noqa: E731
                x = lambda r: r["ber"]  # noqa: E731
            else:
                series = lambda r: r["components"]  # noqa: E731
                x = lambda r: r["ber"]  # noqa: E731
            for s in dict.fromkeys(series(r) for r in er):
                pts = sorted((x(r), r[m], r[m + "_ci95"]) for r in er if series(r) == s
                             and x(r) and not math.isinf(r[m]))
                if pts:  # CI bars clipped to the metric's range (PPL >= 1, agreement in [0, 1])
                    lo, hi = (1.0, math.inf) if m == "ppl" else (0.0, 1.0)
                    err = [[min(p[2] or 0, p[1] - lo) for p in pts],
                           [min(p[2] or 0, hi - p[1]) for p in pts]]
                    ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=err, marker="o",
                                ms=3, capsize=2, label=s)
            if kind != "bit":
                ax.set_xscale("log")
                ax.set_xlabel("BER (per INT32 accumulator element)")
            else:
                ax.set_xlabel("flipped bit")
            if m == "ppl":
                ax.set_yscale("log")
                ax.set_ylabel("WikiText-2 perplexity")
                if base:
                    ax.axhline(base, ls="--", c="grey", lw=0.8, label="W8A8 clean")
            else:
                ax.set_ylabel("greedy agreement with clean")
            ax.set_title(exp)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7, ncol=2)
        fname = f"{exp}.png"
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, fname), dpi=120)
        plt.close(fig)
        files.append(fname)
    return files


def _heatmap(plt, er, base):
    import numpy as np

    comps = list(dict.fromkeys(r["components"] for r in er))
    fig, axes = plt.subplots(1, len(comps), figsize=(5 * len(comps), 4), squeeze=False)
    for ax, c in zip(axes[0], comps):
        cr = [r for r in er if r["components"] == c]
        xs = sorted({r["msd_log2"] for r in cr})
        ys = sorted({r["freq_log2"] for r in cr})
        z = np.full((len(ys), len(xs)), np.nan)
        for r in cr:
            v = r["ppl"] - base if base else r["ppl"]
            z[ys.index(r["freq_log2"]), xs.index(r["msd_log2"])] = np.log10(max(v, 1e-3)) \
                if math.isfinite(v) else 6
        dx = (xs[-1] - xs[0]) / (len(xs) - 1) / 2 if len(xs) > 1 else 0.5
        dy = (ys[-1] - ys[0]) / (len(ys) - 1) / 2 if len(ys) > 1 else 0.5
        im = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis", vmin=-1,
                       extent=(xs[0] - dx, xs[-1] + dx, ys[0] - dy, ys[-1] + dy))
        ax.set_xlabel("log2 MSD (INT32 units)")
        ax.set_ylabel("log2 freq (errors per GEMM call)")
        ax.set_title(f"{c}: log10(PPL - clean)")
        fig.colorbar(im, ax=ax)
    return fig
