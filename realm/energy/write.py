"""The files of ``realm energy report`` (docs/results/energy/): the per-voltage table of every
component, policy and voltage (``curves.csv``), the Table II analogue (``table2.csv``,
``table2.json``), the sensitivity runs (``sensitivity.csv``), p(V) per component
(``pv.csv``), the Fig. 9 analogue (``fig9_<component>.png``) and ``summary.md``."""
import csv
import json
import math
import pathlib

from hw.facts import POLICIES
from realm.energy import report as er
from realm.energy.model import EnergyModel, overheads
from realm.energy.vtable import p_element

#: Fewer expected erroneous elements per pass than this count as the clean model when another
#: timing setting is remapped (the campaign spec's threshold, realm.energy.spec.MIN_ERRORS).
MIN_ERRORS = 0.05
LABELS = {"none": "none", "dmr": "DMR", "thundervolt": "ThUnderVolt (drop)",
          "classic": "classic ABFT", "approx": "MSD threshold", "realm": "ReaLM"}


def _fmt(x, pct=False):
    if x is None:
        return ""
    if isinstance(x, float) and not math.isfinite(x):
        return "inf"
    return f"{100 * x:.2f} %" if pct else (f"{x:.4g}" if isinstance(x, float) else str(x))


def kinds(path="docs/results/abft/params/{array}.json", array="256x256-ws"):
    """{component: "sensitive" | "resilient"} from the statistical unit's parameter file (the
    critical-region fit: sensitive when one error per GEMM call is already critical)."""
    from realm.abft.loop import params_path

    try:
        with open(params_path(path, array)) as f:
            comps = json.load(f)["components"]
    except (OSError, ValueError, KeyError):
        return {}
    return {c: "sensitive" if e.get("gemm_fit", {}).get("sensitive") else "resilient"
            for c, e in comps.items()}


def headline(t2, kind):
    """Mean, min and max of ReaLM's savings over the components of each kind."""
    out = {}
    for k in ("resilient", "sensitive"):
        rows = [r for c, r in t2.items() if kind.get(c) == k]
        if not rows:
            continue
        for key in ("saving_nominal", "saving_vs_best", "saving_vs_prior"):
            vals = [r[key] for r in rows if r[key] is not None]
            out[f"{k}_{key}"] = {"mean": sum(vals) / len(vals), "min": min(vals),
                                 "max": max(vals), "n": len(vals)}
    return out


def table_array(table):
    """(rows, cols) of the array a voltage table was made for (its ``array``, e.g.
    ``128x128-ws``; 256 x 256 for tables that do not name one)."""
    from hw.config import ArrayConfig

    name = table.doc.get("array")
    if not name:
        return 256, 256
    config = ArrayConfig.from_name(name)
    return config.rows, config.cols


def analyse(records, baseline, table, others, dataflow, tol, leak=(0.0, 0.1, 0.3),
            tol_rel=0.01665):
    """Everything the report holds, as plain data: curves, Table II, sensitivity."""
    cells = er.collect(records, baseline)
    for comp, c in cells.items():
        # the table's error-free voltages (p = 0) are the clean model, whether run or not
        zero = [v for v in table.voltages(comp) if v < er.NOMINAL and table.row(comp, v).p == 0]
        for pol in list(c):
            for v in zero:
                c[pol].setdefault(v, {"dppl": [0.0], "r": [0.0], "seeds": []})
        c["_p"] = {v: table.row(comp, v).p for pol in c if pol != "_p" for v in c[pol]}
    rows, cols = table_array(table)
    ovh, src = overheads(dataflow, size=rows, cols=cols)
    model = EnergyModel()
    cur = {comp: er.curves({k: v for k, v in c.items() if k != "_p"}, ovh, model)
           for comp, c in cells.items()}
    t2 = er.table2(cur, tol)
    er.seed_rules({comp: {k: v for k, v in c.items() if k != "_p"} for comp, c in cells.items()},
                  lambda cs: er.table2({comp: er.curves(c, ovh, model) for comp, c in cs.items()},
                                       tol), t2)
    sens = []
    for lf in leak:
        m = EnergyModel(leak_frac=lf)
        t = er.table2({comp: er.curves({k: v for k, v in c.items() if k != "_p"}, ovh, m)
                       for comp, c in cells.items()}, tol)
        sens.append((table.doc.get("setting", "default"), f"leakage {lf:g}", tol, t))
    t = er.table2(cur, tol_rel * baseline)
    sens.append((table.doc.get("setting", "default"), "leakage 0.1", tol_rel * baseline, t))
    elements = {}  # accumulator elements of one pass, per component: MACs / K
    for rec in records:
        pt = rec["point"]
        if pt.get("mode") == "timing" and rec.get("macs") and len(pt["components"]) == 1:
            c = pt["components"][0]
            elements[c] = rec["macs"] / table.doc["components"][c]["k"]
    for name, tab in others.items():
        comps = {}
        for comp, c in cells.items():
            if comp not in tab.components:
                continue
            volts = [v for v in tab.voltages(comp) if v < er.NOMINAL]
            n, k = elements.get(comp, 0), tab.k_eff(comp)

            def clean(p, n=n, k=k):
                return p == 0.0 or p_element(p, k) * n < MIN_ERRORS
            comps[comp] = er.curves(er.remap(c, tab, comp, volts, clean), ovh, model)
        sens.append((name, "leakage 0.1", tol, er.table2(comps, tol)))
    kind = kinds(array=table.array)
    return {"curves": cur, "table2": t2, "sensitivity": sens, "overheads": ovh,
            "overhead_sources": src, "tol": tol, "baseline": baseline, "kinds": kind,
            "headline": headline(t2, kind),
            "sensitivity_headline": [(a, b, c, headline(t, kind)) for a, b, c, t in sens]}


def write(out, res, table, focus=("k", "o"), rests=None):
    """Write the report's files into ``out``; return their paths."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["component", "policy", "v", "dppl_mean", "dppl_upper95", "recompute",
                    "energy"])
        for comp, cur in res["curves"].items():
            for pol, rows in cur.items():
                for r in rows:
                    w.writerow([comp, pol, r["v"], _fmt(r["dppl"]), _fmt(r["upper"]),
                                f"{r['r']:.6g}", f"{r['energy']:.6f}"])
    paths.append(out / "curves.csv")
    t2 = res["table2"]
    with open(out / "table2.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["component", "k_eff"] + [f"v_{p}" for p in POLICIES]
                   + [f"energy_{p}" for p in POLICIES]
                   + ["realm_recompute", "realm_dppl_upper", "saving_vs_nominal",
                      "best_other", "saving_vs_best_other", "best_abft_prior_art",
                      "saving_vs_abft_prior_art"])
        for comp, row in t2.items():
            s = row["spots"]
            w.writerow([comp, table.k_eff(comp)] + [s[p]["v"] if p in s else "" for p in POLICIES]
                       + [f"{s[p]['energy']:.4f}" if p in s else "" for p in POLICIES]
                       + [f"{row['r']:.4g}", _fmt(row["upper"]), f"{row['saving_nominal']:.4f}",
                          row["best_other"], f"{row['saving_vs_best']:.4f}", row["best_prior"],
                          f"{row['saving_vs_prior']:.4f}"])
    paths.append(out / "table2.csv")
    slim = {comp: {k: v for k, v in row.items() if k != "spots"} | {
        "spots": {p: {"v": s["v"], "energy": s["energy"], "r": s["r"], "upper": s["upper"]}
                  for p, s in row["spots"].items()}} for comp, row in t2.items()}
    (out / "table2.json").write_text(json.dumps(
        {"tol_ppl": res["tol"], "baseline": res["baseline"], "overheads": res["overheads"],
         "overhead_sources": res["overhead_sources"], "kinds": res["kinds"],
         "headline": res["headline"], "components": slim,
         "sensitivity": [{"timing": a, "energy": b, "tol_ppl": c, "headline": h}
                         for a, b, c, h in res["sensitivity_headline"]]}, indent=1) + "\n")
    paths.append(out / "table2.json")
    with open(out / "sensitivity.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timing", "energy", "tol_ppl", "component", "v_realm", "saving_vs_nominal",
                    "best_other", "v_best_other", "saving_vs_best_other",
                    "saving_vs_abft_prior_art"])
        for timing, energy, tol, t in res["sensitivity"]:
            for comp, row in t.items():
                b = row["best_other"]
                w.writerow([timing, energy, f"{tol:.3g}", comp, row["v"],
                            f"{row['saving_nominal']:.4f}", b,
                            row["spots"][b]["v"] if b else "", f"{row['saving_vs_best']:.4f}",
                            f"{row['saving_vs_prior']:.4f}"])
    paths.append(out / "sensitivity.csv")
    with open(out / "pv.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["component", "v", "clock_ps", "p_cycle", "p_element", "source"])
        for comp in table.components:
            for v in table.voltages(comp):
                r = table.row(comp, v)
                w.writerow([comp, v, r.clock_ps, f"{r.p:.4g}",
                            f"{p_element(r.p, table.k_eff(comp)):.4g}", r.source])
    paths.append(out / "pv.csv")
    (out / "summary.md").write_text("\n".join(summary_md(res, table, rests=rests)) + "\n")
    paths.append(out / "summary.md")
    for comp in focus:
        if comp in res["curves"]:
            paths.append(fig9(out / f"fig9_{comp}.png", comp, res["curves"][comp], res["tol"],
                              t2.get(comp)))
    return paths


def _range(h, key):
    if key not in h:
        return "–"
    x = h[key]
    return f"{100 * x['mean']:.1f} % ({100 * x['min']:.1f} … {100 * x['max']:.1f}, n={x['n']})"


def summary_md(res, table, volts=(0.84, 0.835, 0.83, 0.825, 0.82, 0.81, 0.8, 0.78, 0.75),
             rests=None):
    """The report's tables as markdown lines (``rests``: the campaign's
    :func:`realm.campaign.provenance.rests_on` paragraph, first)."""
    t2, kind = res["table2"], res["kinds"]
    pols = [p for p in POLICIES if any(p in r["spots"] for r in t2.values())]
    lines = [rests, ""] if rests else []
    lines += [f"Tolerance: upper 95 % bound of ΔPPL ≤ {res['tol']:g} (clean W8A8 PPL "
              f"{res['baseline']:.2f}). Energy relative to the unprotected array at 0.9 V.", "",
              "| component | kind | K_eff | " + " | ".join(f"V* {LABELS[p]}" for p in pols)
              + " | E ReaLM | ReaLM recompute | ReaLM ΔPPL (upper) | saving vs 0.9 V | best "
              "other (V*, E) | saving vs best other | saving vs best ABFT prior art |",
              "|---" * (len(pols) + 10) + "|"]
    for comp, row in t2.items():
        s = row["spots"]
        b = row["best_other"]
        lines.append(
            f"| {comp} | {kind.get(comp, '?')} | {table.k_eff(comp)} | "
            + " | ".join(f"{s[p]['v']:.3f}" if p in s else "" for p in pols)
            + f" | {row['energy']:.3f} | {100 * row['r']:.2f} % | {_fmt(row['upper'])} | "
            f"{100 * row['saving_nominal']:.1f} % | {LABELS[b]} ({s[b]['v']:.3f}, "
            f"{s[b]['energy']:.3f}) | {100 * row['saving_vs_best']:.1f} % | "
            f"{100 * row['saving_vs_prior']:.1f} % ({LABELS[row['best_prior']]}) |")
    lines += ["", "ReaLM's savings by kind of component (mean, min … max), per setting:", "",
              "| timing setting | energy | tol | resilient vs 0.9 V | resilient vs best other "
              "| resilient vs ABFT prior art | sensitive vs 0.9 V | sensitive vs best other | "
              "sensitive vs ABFT prior art |", "|---" * 9 + "|"]
    for timing, energy_, tol, h in res["sensitivity_headline"]:
        lines.append(f"| {timing} | {energy_} | {tol:.3g} | " + " | ".join(
            _range(h, f"{k}_{x}") for k in ("resilient", "sensitive")
            for x in ("saving_nominal", "saving_vs_best", "saving_vs_prior")) + " |")
    lines += ["", f"p per MAC cycle (and per element, 1 − (1 − p)^K_eff) of the "
              f"{table.doc.get('setting', '')} table:", "",
              "| component | " + " | ".join(f"{v:.3f} V" for v in volts) + " |",
              "|---" * (len(volts) + 1) + "|"]
    for comp in table.components:
        cells = []
        for v in volts:
            try:
                r = table.row(comp, v)
                cells.append(f"{r.p:.1e} ({p_element(r.p, table.k_eff(comp)):.1e})")
            except ValueError:
                cells.append("past table")
        lines.append(f"| {comp} | " + " | ".join(cells) + " |")
    return lines


def fig9(path, comp, cur, tol, row):
    """Quality (upper bound of dPPL) and energy vs voltage per policy, one component."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True)
    for pol, rows in cur.items():
        v = [r["v"] for r in rows]
        a.plot(v, [min(r["upper"], 1e6) if math.isfinite(r["upper"]) else 1e6 for r in rows],
               "o-", ms=3, label=LABELS[pol])
        b.plot(v, [r["energy"] for r in rows], "o-", ms=3, label=LABELS[pol])
    a.set_yscale("symlog", linthresh=0.1)
    a.axhline(tol, color="k", lw=0.8, ls="--")
    a.set_ylabel("ΔPPL, upper 95 % bound (clipped at 1e6)")
    b.set_ylabel("energy / unprotected at 0.9 V")
    b.set_xlabel("supply voltage (V)")
    b.axhline(1.0, color="k", lw=0.8, ls=":")
    if row:
        b.axvline(row["v"], color="C5", lw=0.8)
        a.set_title(f"{comp}: ReaLM sweet spot {row['v']:.3f} V, "
                    f"{100 * row['saving_nominal']:.1f} % below nominal, "
                    f"{100 * row['saving_vs_best']:.1f} % below {LABELS[row['best_other']]}",
                    fontsize=9)
    b.set_ylim(0.4, 2.2)
    a.invert_xaxis()
    a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
