"""The files of ``realm energy report`` (docs/results/energy/): the per-voltage table of every
component, policy and voltage (``curves.csv``), the Table II analogue (``table2.csv``,
``table2.json``), the sensitivity runs (``sensitivity.csv``), p(V) per component
(``pv.csv``), the Fig. 9 analogue (``fig9_<component>.png``) and ``summary.md``."""
import csv
import json
import math
import pathlib

from . import energy_report as er
from .energy import POLICIES, overheads
from .vtable import VoltageTable, p_element

LABELS = {"none": "none", "dmr": "DMR", "thundervolt": "ThUnderVolt (drop)",
          "classic": "classic ABFT", "approx": "MSD threshold", "realm": "ReaLM"}


def _fmt(x, pct=False):
    if x is None:
        return ""
    if isinstance(x, float) and not math.isfinite(x):
        return "inf"
    return f"{100 * x:.2f} %" if pct else (f"{x:.4g}" if isinstance(x, float) else str(x))


def analyse(records, baseline, table, others, dataflow, tol, leak=(0.0, 0.1, 0.3)):
    """Everything the report holds, as plain data: curves, Table II, sensitivity."""
    cells = er.collect(records, baseline)
    for comp, c in cells.items():
        c["_p"] = {v: table.row(comp, v).p for pol in c if pol != "_p" for v in c[pol]}
    ovh, src = overheads(dataflow)
    model = er.EnergyModel()
    cur = {comp: er.curves({k: v for k, v in c.items() if k != "_p"}, ovh, model)
           for comp, c in cells.items()}
    t2 = er.table2(cur, tol)
    sens = []
    for lf in leak:
        m = er.EnergyModel(leak_frac=lf)
        t = er.table2({comp: er.curves({k: v for k, v in c.items() if k != "_p"}, ovh, m)
                       for comp, c in cells.items()}, tol)
        sens.append(("default timing", f"leakage {lf:g}", t))
    for name, tab in others.items():
        comps = {}
        for comp, c in cells.items():
            if comp not in tab.components:
                continue
            volts = [v for v in tab.voltages(comp) if v < er.NOMINAL]
            comps[comp] = er.curves(er.remap(c, tab, comp, volts), ovh, model)
        sens.append((name, "leakage 0.1", er.table2(comps, tol)))
    return {"curves": cur, "table2": t2, "sensitivity": sens, "overheads": ovh,
            "overhead_sources": src, "tol": tol, "baseline": baseline}


def write(out, res, table, focus=("k", "o")):
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
                      "best_other", "saving_vs_best_other"])
        for comp, row in t2.items():
            s = row["spots"]
            w.writerow([comp, table.k_eff(comp)] + [s[p]["v"] if p in s else "" for p in POLICIES]
                       + [f"{s[p]['energy']:.4f}" if p in s else "" for p in POLICIES]
                       + [f"{row['r']:.4g}", _fmt(row["upper"]), f"{row['saving_nominal']:.4f}",
                          row["best_other"], f"{row['saving_vs_best']:.4f}"])
    paths.append(out / "table2.csv")
    slim = {comp: {k: v for k, v in row.items() if k != "spots"} | {
        "spots": {p: {"v": s["v"], "energy": s["energy"], "r": s["r"], "upper": s["upper"]}
                  for p, s in row["spots"].items()}} for comp, row in t2.items()}
    (out / "table2.json").write_text(json.dumps(
        {"tol_ppl": res["tol"], "baseline": res["baseline"], "overheads": res["overheads"],
         "overhead_sources": res["overhead_sources"], "components": slim}, indent=1) + "\n")
    paths.append(out / "table2.json")
    with open(out / "sensitivity.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timing", "energy", "component", "v_realm", "saving_vs_nominal",
                    "best_other", "v_best_other", "saving_vs_best_other"])
        for timing, energy, t in res["sensitivity"]:
            for comp, row in t.items():
                b = row["best_other"]
                w.writerow([timing, energy, comp, row["v"], f"{row['saving_nominal']:.4f}", b,
                            row["spots"][b]["v"] if b else "", f"{row['saving_vs_best']:.4f}"])
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
    for comp in focus:
        if comp in res["curves"]:
            paths.append(fig9(out / f"fig9_{comp}.png", comp, res["curves"][comp], res["tol"],
                              t2.get(comp)))
    return paths


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
    a.set_ylabel("ΔPPL, upper 95 % bound")
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


def read_others(paths):
    """{setting name: VoltageTable} of the other timing settings' tables."""
    return {VoltageTable.read(str(p)).doc.get("setting", pathlib.Path(p).stem):
            VoltageTable.read(str(p)) for p in paths}
