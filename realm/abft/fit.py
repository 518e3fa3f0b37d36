"""The critical region per component, fitted from an MSD x frequency grid (paper §IV-B, Fig. 6)
and turned into the statistical unit's parameter sets for one array.

**Grid.** Campaign points in ``msd`` mode (:mod:`realm.llm.inject`): per GEMM call, ``freq``
distinct output elements each get ``+MSD / freq``. A cell (x = log2 MSD, y = log2 freq) is
*critical* when its perplexity, averaged over seeds, exceeds the clean W8A8 perplexity by more
than the tolerance (default +0.3, the paper's; or a relative one).

**Which cells count** (``rule``). ``"mean"``: critical when the seeds' mean exceeds the limit
(the rule of the fits published before adaptive seeds). ``"resolved"`` (issue 22): a cell is
critical when its 95 % interval of ΔPPL lies above the tolerance, non-critical when it lies at or
below it (:func:`realm.campaign.stats.verdict`), and *unresolved* otherwise (straddling, or a
single seed); unresolved cells (``critical`` None) neither place the lines nor count as false
recomputes, and the fit says how many there were.

**Region and rule.** With equal errors, the unit counts an error when
``log2 mag = x - y > b - (a - 1) x``, i.e. ``y < a x - b``, and recomputes when more than
``2**theta_freq`` errors count. It recomputes exactly the cells with
``theta_freq < y < a x - b``: the region between a horizontal line and an inclined one.

**Fit** (deterministic). ``theta_freq`` lies half a grid step below the lowest critical row; a
critical cell in the bottom row (one error is already too many) makes the component *sensitive*,
``theta_freq = 0`` (the paper's rule for components that feed a normalization). For every slope
``a`` on the hardware's grid (``1 + am1 / 256``, up to 4), the intercept is the largest that keeps
every critical cell inside, less half a grid step: ``b(a) = min(a x - y) - step / 2``. The slope
kept is the one that recomputes the fewest non-critical cells of the grid; among equals, the
middle of the widest run of equal slopes. A component with no critical cell never recomputes
(``b`` at its largest).

**From GEMM to tile.** The grid puts errors per GEMM call; the unit decides per tile. With the
call's errors spread over its ``T`` decision units (as independent bit flips are), a tile sees
``MSD / T`` and ``freq / T``: both logs shift by ``s = log2 T``, so the tile's line has the same
slope, ``b_t = b - (a - 1) s`` and ``theta_t = theta_freq - s`` (the rescaling in the authors'
``recompute_ratio.py``). A negative ``theta_t`` means one significant error per tile recomputes it.
"""
import json
import math

from golden.params import StatParams
from golden.tiler import Tiling
from hw.facts import stat_widths

B_MAX = 127.99  # b_q is a signed Q7.8


def cells(records, baseline, tol=0.3, rel=None, rule="mean"):
    """{component: {(x, y): (mean ppl, critical)}} from msd-mode result records; ``critical`` is
    None for an unresolved cell under ``rule="resolved"`` (module docstring)."""
    from realm.campaign.stats import verdict

    if rule not in ("mean", "resolved"):
        raise ValueError(f"rule must be 'mean' or 'resolved', not {rule!r}")
    acc = {}
    for r in records:
        p = r["point"]
        if p.get("mode") != "msd" or len(p["components"]) != 1:
            continue
        key = (p["msd_log2"], p["freq_log2"])
        ppl = r["ppl"] if r.get("ppl") is not None else math.inf
        acc.setdefault(p["components"][0], {}).setdefault(key, []).append(ppl)
    limit = baseline * (1 + rel) if rel is not None else baseline + tol

    def judge(v):
        mean = sum(v) / len(v)
        if rule == "mean":
            return mean, mean > limit
        d = verdict([x - baseline for x in v], limit - baseline, len(v))["verdict"]
        return mean, {"beyond": True, "within": False}.get(d)

    return {c: {k: judge(v) for k, v in sorted(g.items())} for c, g in acc.items()}


def _inside(x, y, a, b, theta):
    return theta < y < a * x - b


def fit_component(grid):
    """GEMM-domain fit of one component's ``{(x, y): (ppl, critical)}``: a dict with ``a``,
    ``b``, ``theta_freq``, ``sensitive``, the number of critical cells, of non-critical cells
    the rule recomputes (``false``), of critical cells it misses (``missed``, always 0) and of
    unresolved cells (``critical`` None: left out of the fit)."""
    crit = [k for k, (_, c) in grid.items() if c is True]
    unresolved = sum(1 for _, c in grid.values() if c is None)
    ys = sorted({y for _, y in grid})
    step = (ys[1] - ys[0]) if len(ys) > 1 else 1
    if not crit:
        return {"a": 1.0, "b": B_MAX, "theta_freq": float(ys[-1]), "sensitive": False,
                "critical": 0, "false": 0, "missed": 0, "unresolved": unresolved}
    y_min = min(y for _, y in crit)
    sensitive = y_min == ys[0]
    theta = 0.0 if sensitive else y_min - step / 2
    # with theta = 0 the unit recomputes from one error: y = 0 must be inside
    lo = -1.0 if sensitive else theta
    best, runs = None, []
    for am1 in range(0, 3 * 256 + 1):
        a = 1 + am1 / 256
        b = min(a * x - y for x, y in crit) - step / 2
        false = sum(1 for (x, y), (_, c) in grid.items()
                    if c is False and _inside(x, y, a, b, lo))
        if best is None or false < best:
            best, runs = false, [[a]]
        elif false == best:
            if runs[-1][-1] == a - 1 / 256:
                runs[-1].append(a)
            else:
                runs.append([a])
    run = max(runs, key=len)
    a = run[len(run) // 2]
    b = min(a * x - y for x, y in crit) - step / 2
    missed = sum(1 for (x, y) in crit if not _inside(x, y, a, b, lo))
    return {"a": a, "b": round(b, 6), "theta_freq": theta, "sensitive": sensitive,
            "critical": len(crit), "false": best, "missed": missed, "unresolved": unresolved}


def component_gemms(shape, length):
    """{component: (gemms, M, K, N)} of one prefill window of ``length`` tokens from
    :func:`realm.campaign.spec.model_shape`'s result."""
    comps, _, outs, heads, hd = shape
    hidden, ffn = outs["o"], outs.get("gate") or outs.get("fc1")
    ins = {"q": hidden, "k": hidden, "v": hidden, "o": heads * hd, "gate": hidden,
           "up": hidden, "down": ffn, "fc1": hidden, "fc2": ffn}
    out = {}
    for c in comps:
        if c == "qk":
            out[c] = (heads, length, hd, length)
        elif c == "sv":
            out[c] = (heads, length, length, hd)
        else:
            out[c] = (1, length, ins[c], outs[c])
    return out


def tile_params(fit, config, gemm, msd_mode=0):
    """(StatParams, info) of one component for ``config``'s array from its GEMM-domain ``fit``
    and its GEMM ``(gemms, M, K, N)``. ``msd_mode`` 0 sums the signed differences (the paper's
    MSD), 1 their magnitudes (errors of opposite sign cannot cancel)."""
    g, m, k, n = gemm
    units = Tiling(config, m, k, n, gemms=g).units
    s = math.log2(units)
    a = fit["a"]
    b_t = min(B_MAX, fit["b"] - (a - 1) * s) if fit["b"] < B_MAX else B_MAX
    theta_t = fit["theta_freq"] - (0 if fit["sensitive"] else s)
    p = StatParams.from_paper(a, b_t, max(theta_t, 0.0), sensitive=fit["sensitive"] or
                              theta_t < 0, msd_mode=msd_mode)
    msd_cap = (1 << stat_widths(config.stat_n, config.acc_width)["msd"]) - 1
    p = StatParams(am1=p.am1, b_q=p.b_q, freq_th=p.freq_th, msd_th=min(p.msd_th, msd_cap),
                   policy=p.policy, msd_mode=p.msd_mode)
    info = {"a": a, "b_tile": round(b_t, 4), "theta_freq_tile": round(theta_t, 4),
            "units_per_call": units, "gemm_fit": fit}
    return p, info


def load_grid(path):
    """(baseline W8A8 ppl, records) of a grid results file."""
    from realm.campaign.runner import read_results

    header, done = read_results(path)
    if header is None:
        raise ValueError(f"{path} has no header line (is it a campaign results file?)")
    return header["baseline"]["w8a8"]["ppl"], list(done.values())


def fit_all(path, tol=0.3, rel=None, rule="mean"):
    """(baseline, {component: grid}, {component: fit}, [incomplete components]) from a grid
    results file. Only components with every cell of the file's grid (the union of the MSD and
    freq values it holds) are fitted: a campaign still running leaves the others out."""
    base, recs = load_grid(path)
    grids = cells(recs, base, tol, rel, rule)
    xs = {x for g in grids.values() for x, _ in g}
    ys = {y for g in grids.values() for _, y in g}
    full = {c: g for c, g in grids.items() if len(g) == len(xs) * len(ys)}
    fits = {c: fit_component(g) for c, g in full.items()}
    return base, full, fits, sorted(set(grids) - set(full))


def dump(fits, grids, baseline, path, tol, rel, rule="mean"):
    with open(path, "w") as f:
        json.dump({"baseline_ppl": baseline, "tolerance": {"abs": tol, "rel": rel},
                   "rule": rule,
                   "fits": fits,
                   "grids": {c: {f"{x},{y}": v for (x, y), v in g.items()}
                             for c, g in grids.items()}}, f, indent=1)
        f.write("\n")


def plot(fits, grids, baseline, path, limit):
    """Fig. 6-style panels: each component's grid coloured by log10 ΔPPL, critical cells
    circled, and the fitted region's two lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    comps = list(fits)
    cols = min(len(comps), 5)
    rows_ = -(-len(comps) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(3.1 * cols, 2.9 * rows_), squeeze=False)
    for ax, c in zip(axes.flat, comps):
        g, f = grids[c], fits[c]
        xs, ys = sorted({x for x, _ in g}), sorted({y for _, y in g})
        z = np.array([[math.log10(max(g[(x, y)][0] - baseline, 1e-3)) if math.isfinite(
            g[(x, y)][0]) else 9 for x in xs] for y in ys])
        ax.imshow(z, origin="lower", cmap="magma_r", vmin=-3, vmax=5, aspect="auto",
                  extent=(xs[0] - 1, xs[-1] + 1, ys[0] - 1, ys[-1] + 1))
        cx = [x for (x, y), (_, k) in g.items() if k]
        cy = [y for (x, y), (_, k) in g.items() if k]
        ax.scatter(cx, cy, s=14, facecolors="none", edgecolors="cyan", linewidths=0.8)
        ux = [x for (x, y), (_, k) in g.items() if k is None]
        uy = [y for (x, y), (_, k) in g.items() if k is None]
        ax.scatter(ux, uy, s=12, marker="x", color="lime", linewidths=0.8)
        xl = np.linspace(xs[0] - 1, xs[-1] + 1, 50)
        if f["critical"]:
            ax.plot(xl, f["a"] * xl - f["b"], "w-", lw=1)
            ax.axhline(f["theta_freq"] if not f["sensitive"] else 0, color="w", lw=1, ls="--")
        ax.set_xlim(xs[0] - 1, xs[-1] + 1)
        ax.set_ylim(ys[0] - 1, ys[-1] + 1)
        kind = "sensitive" if f["sensitive"] else "resilient"
        ax.set_title(f"{c}: a={f['a']:.2f} b={f['b']:.1f} θ={f['theta_freq']:g} ({kind})",
                     fontsize=8)
        ax.set_xlabel("log2 MSD per GEMM call", fontsize=8)
        ax.set_ylabel("log2 freq", fontsize=8)
    for ax in list(axes.flat)[len(comps):]:
        ax.axis("off")
    fig.suptitle(f"Critical region (circles: PPL > {limit:.2f}; crosses: unresolved; colour: "
                 f"log10 ΔPPL over clean {baseline:.2f})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
