"""``realm llm campaign``, ``summarize``, ``fit``, ``abft`` and ``realm characterize``: sweeps of
the LLM harness (:mod:`realm.campaign`), their summaries, the critical-region fit and the
closed loop (paper Sec. IV-B, VI-A)."""
import csv
import os

from hw import paths
from hw.facts import ABFT_POLICIES

from .args import (POSITIVE, BadInput, ber_list, bit_list, comma_list, command, engine_args,
                   engine_from_args, need, workers_arg)
from .llmopts import array, check_device, common_args, device_arg, settings
from .paths import existing, writable

#: The committed results (:data:`hw.paths.RESULTS`).
RESULTS = str(paths.RESULTS)


def _campaign(spec, out, a):
    from realm.campaign import runner as campaign

    n = campaign.run(spec, out, workers=a.workers, threads=a.threads,
                     progress=not a.no_progress, compile=not a.no_compile, engine=a.run_engine,
                     device=a.device)
    d = a.out_dir or os.path.dirname(os.path.abspath(out))
    files = _summarize(out, d, getattr(a, "tol", None))
    print(f"{n} points run; results in {out}; summary and {len(files)} plots in {d}")
    _verdicts(out)


def _verdicts(out):
    """One line of the adaptive experiments' verdicts, when the run wrote them."""
    from realm.campaign import adaptive

    path = adaptive.verdicts_path(out)
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    count = adaptive.tally(rows)
    print(f"verdicts of {len(rows)} adaptive cells: {count.get('within', 0)} within, "
          f"{count.get('beyond', 0)} beyond, {count.get('unresolved', 0)} unresolved "
          f"({count['one_seed']} carried by one seed); in {path}")


def _summarize(results, d, tol=None):
    """Summary and plots of a results file into ``d``, the closed loop's (policies, recompute,
    tolerable BER) when its points name an array, else the characterization's; the plots."""
    from realm.abft import report as abft_report
    from realm.llm import report

    if abft_report.is_abft(results):
        abft_report.summarize(results, d, tol=tol)
        return abft_report.plot(results, d, tol=tol)
    report.summarize(results, d)
    return report.plot(results, d)


def _check_campaign(a):
    from realm.campaign.spec import expand, load_spec

    need("llm")
    _check_engine(a)
    a.spec_doc = load_spec(str(existing(a.spec, "SPEC")))
    _check_settings(expand(a.spec_doc)[0])
    a.out = str(writable(a.out or os.path.splitext(a.spec)[0] + ".jsonl", "--out"))
    _check_out_dir(a)


def cmd_campaign(a):
    _campaign(a.spec_doc, a.out, a)
    return 0


def _check_settings(s):
    """A campaign's expanded settings: its text holds the windows, a window fits the model."""
    from realm.llm import loader

    loader.check_windows(s["model"], loader.text_path(s["text"]), s["windows"], s["length"])


def _check_out_dir(a):
    if a.out_dir:
        writable(a.out_dir, "--out-dir", folder=True)


def _check_summarize(a):
    from realm.campaign import runner as campaign

    header, done = campaign.read_results(str(existing(a.results, "RESULTS")))
    if header is None or not done:
        raise BadInput(f"RESULTS: {a.results!r} holds no campaign results")
    _check_out_dir(a)


def cmd_summarize(a):
    d = a.out_dir or os.path.dirname(os.path.abspath(a.results))
    print("\n".join(_summarize(a.results, d)))
    return 0


def cmd_characterize(a):
    import glob

    from realm.campaign.spec import load_spec

    specs = sorted(glob.glob(os.path.join(RESULTS, "**", "spec.json"), recursive=True))
    if not specs:
        raise FileNotFoundError(f"no campaign specs (**/spec.json) under {RESULTS}; run it in "
                                "a checkout of the repository")
    for path in specs:
        d = os.path.dirname(path)
        if os.path.relpath(d, RESULTS).split(os.sep)[0] == "abft":
            continue  # grid, fit and evaluation in order: make abft
        out = os.path.join(d, "campaign.jsonl")
        if a.fresh and os.path.exists(out):
            os.replace(out, out + ".old")
            print(f"previous results moved to {out}.old")
        a.out_dir = d
        print(f"== {os.path.relpath(path)}")
        _campaign(load_spec(path), out, a)
    return 0


def _check_fit(a):
    need("llm")
    existing(a.grid, "GRID")
    writable(a.out_dir, "--out-dir", folder=True)


def cmd_fit(a):
    from golden.params import write_params
    from realm.abft import fit
    from realm.abft import loop as abft
    from realm.campaign import runner as campaign
    from realm.campaign.spec import SpecError, model_shape

    arrays = [abft.parse_array(x) for x in a.arrays]
    base, grids, fits, partial = fit.fit_all(a.grid, a.tol, a.rel, a.rule)
    if not fits:
        raise SpecError(f"{a.grid} holds no complete msd-mode grid to fit")
    if partial:
        print(f"incomplete grids, not fitted: {', '.join(partial)}")
    header, _ = campaign.read_results(a.grid)
    st = header["settings"]
    gemms = fit.component_gemms(model_shape(st["model"]), st["length"])
    os.makedirs(a.out_dir, exist_ok=True)
    fit.dump(fits, grids, base, os.path.join(a.out_dir, "fit.json"), a.tol, a.rel, a.rule)
    limit = base * (1 + a.rel) if a.rel is not None else base + a.tol
    fit.plot(fits, grids, base, os.path.join(a.out_dir, "critical_region.png"), limit)
    how = ("the 95 % interval of its seeds above it; cells whose interval straddles it are "
           "unresolved and left out" if a.rule == "resolved" else "the mean of its seeds above it")
    print(f"clean W8A8 PPL {base:.3f}; a cell is critical with {how}: PPL > {limit:.3f}")
    print(f"{'comp':>5} {'a':>7} {'b':>8} {'θ_freq':>7} {'sens':>5} {'crit':>5} {'false':>5} "
          f"{'unres':>5}")
    for c, f in fits.items():
        print(f"{c:>5} {f['a']:7.3f} {f['b']:8.3f} {f['theta_freq']:7.2f} "
              f"{str(f['sensitive']):>5} {f['critical']:5d} {f['false']:5d} "
              f"{f['unresolved']:5d}")
    mode = {"signed": 0, "abs": 1}[a.msd_mode]
    rows = []  # the per-tile frequency threshold per component and array (granularity.csv)
    for config in arrays:
        ps = {c: fit.tile_params(fits[c], config, gemms[c], mode) for c in gemms if c in fits}
        path = os.path.join(a.out_dir, f"{config.name}.json")
        write_params(path, config, ps, model=st["model"],
                          meta={"grid": os.path.relpath(a.grid), "baseline_ppl": base,
                                "tolerance": {"abs": a.tol, "rel": a.rel}, "rule": a.rule,
                                "msd_mode": a.msd_mode})
        print(f"wrote {path}")
        rows += [(c, config.name, e["units_per_call"], fits[c]["theta_freq"],
                  e["theta_freq_tile"], e["freq_th"]) for c, e in _entries(path).items()]
    path = os.path.join(a.out_dir, "granularity.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["component", "array", "units_per_call", "theta_freq_gemm_log2",
                    "theta_freq_tile_log2", "freq_th", "tolerates_a_significant_error"])
        for r in rows:
            w.writerow(list(r[:3]) + [f"{r[3]:.4g}", f"{r[4]:.4g}", r[5], int(r[5] > 0)])
    print(f"wrote {path}")
    return 0


def _entries(path):
    import json

    with open(path) as f:
        return json.load(f)["components"]


def _check_abft(a):
    from realm.campaign.spec import GLOBAL, expand

    need("llm")
    check_device(a)
    params = a.params if a.params is None else os.path.abspath(a.params)
    if params is None:
        params = os.path.join(RESULTS, "abft", "params", "{array}.json")
    elif len(a.array) > 1 and "{array}" not in params:
        raise BadInput("several arrays need --params with {array} in the path")
    exp = {"name": "abft", "components": a.components, "bers": a.ber, "bits": a.bits,
           "arrays": a.array, "policies": a.policies, "params": params, "seeds": a.seeds}
    if a.layers:
        exp["layers"] = [a.layers]
    spec = {**{k: v for k, v in settings(a).items() if k in GLOBAL}, "experiments": [exp]}
    _check_settings(expand(spec)[0])  # every argument checked before the model loads
    a.spec_doc = spec
    a.out = str(writable(a.out, "--out"))
    _check_engine(a)


def cmd_abft(a):
    _campaign(a.spec_doc, a.out, a)
    return 0


def _check_engine(a):
    """``--device``, then ``--engine``/``--address`` checked (the cluster is joined before the
    model loads). A Ray worker runs on the one GPU Ray gives it, so ``cuda:N`` goes with the
    local engine only."""
    check_device(a)
    if a.engine == "ray" and a.device not in ("cpu", "cuda"):
        raise BadInput(f"--device {a.device} goes with --engine local: a Ray worker runs on the "
                       "GPU Ray gives it (--device cuda)")
    a.run_engine = engine_from_args(a)


def _check_characterize(a):
    need("llm")
    _check_engine(a)


def _run_opts(p, threads=True):
    workers_arg(p)
    engine_args(p)
    if threads:
        p.add_argument("--threads", type=POSITIVE, default=None,
                       help="torch threads per worker (default 1 with several workers, else 2)")
    p.add_argument("--out-dir", help="where summary.csv/.md and plots go (default: next to "
                   "the results file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-compile", action="store_true",
                   help="eager elementwise kernels (no torch.compile)")


def _fit_opts(p):
    p.add_argument("--tol", type=float, default=0.3,
                   help="tolerated perplexity increase over clean W8A8 (default 0.3, the paper's)")
    p.add_argument("--rel", type=float, help="relative tolerance instead, e.g. 0.01 for +1 %%")


def add(sub, top):
    """Add the sweep commands to ``realm llm``'s subparsers ``sub`` and ``characterize`` to
    ``top``."""
    r = command(sub, "campaign", check=_check_campaign, run=cmd_campaign,
                help="run (or resume) a sweep spec",
                description="Run every point of SPEC not yet in the results file, one JSON line "
                "per point; the spec format is documented in realm/campaign/spec.py and "
                "docs/llm.md. Kill it at any time and rerun to resume.")
    r.add_argument("spec", help="sweep spec JSON")
    r.add_argument("--out", metavar="FILE", help="results JSONL (default: SPEC with .jsonl)")
    _run_opts(r)
    device_arg(r)

    s = command(sub, "summarize", check=_check_summarize, run=cmd_summarize,
                help="summary tables and plots of a results JSONL",
                description="Summary tables and plots of a campaign's results: a closed-loop "
                "campaign (points with an array and a policy) gets the closed loop's summary "
                "(perplexity and recompute ratio per policy, tolerable BER, relaxations: "
                "summary.md, summary.csv, headline.json), any other the characterization's.")
    s.add_argument("results", help="campaign results (JSONL)")
    s.add_argument("--out-dir", metavar="DIR", help="where summary.csv/.md and the plots go "
                   "(default: beside the results)")

    f = command(sub, "fit", check=_check_fit, run=cmd_fit,
                help="fit the critical region; write parameter files per array",
                description="Reads an MSD x freq grid (a campaign results file of msd-mode "
                "points, e.g. docs/results/abft/grid/campaign.jsonl), marks the cells whose "
                "perplexity exceeds the tolerance, fits (a, b, theta_freq) per component "
                "(realm/abft/fit.py explains the procedure), and writes fit.json and one "
                "realm-params/1 file per array, rescaled to that array's tiles, and "
                "granularity.csv: per component and array the per-tile frequency threshold "
                "(log2 and the unit's integer; 0 means one significant error flags the tile).")
    f.add_argument("grid", help="grid results JSONL")
    f.add_argument("--arrays", type=comma_list(array, what="arrays"),
                   default="256x256-ws,256x256-os,128x128-ws,128x128-os,64x64-ws,64x64-os",
                   help="comma list of ROWSxCOLS-DATAFLOW (default: 256, 128 and 64, both "
                   "dataflows)")
    f.add_argument("--out-dir", default="build/abft/params", metavar="DIR",
                   help="where fit.json and the parameter files go (default build/abft/params; "
                   "make abft writes docs/results/abft/params)")
    _fit_opts(f)
    f.add_argument("--rule", choices=["resolved", "mean"], default="resolved",
                   help="which cells are critical: 'resolved' (default) those whose 95 %% t "
                   "interval of ΔPPL over the seeds lies above the tolerance, non-critical those "
                   "at or below it, the rest unresolved and left out of the fit (run the grid "
                   "with adaptive seeds to resolve them); 'mean' those whose mean exceeds it, "
                   "the rule of the fits published before adaptive seeds")
    f.add_argument("--msd-mode", choices=["signed", "abs"], default="signed",
                   help="MSD the unit sums: the signed differences (the paper's, default) or "
                   "their magnitudes (errors of opposite sign cannot cancel)")

    ab = command(sub, "abft", check=_check_abft, run=cmd_abft,
                 help="statistical ABFT in the loop: PPL and recompute ratio",
                 description="Every GEMM of the W8A8 model tiled onto the array; errors drawn "
                 "in the INT32 accumulators; each faulty tile's checksum differences decided by "
                 "the statistical unit's model under each policy (none, classic, approx = MSD "
                 "threshold, realm) and recomputed when flagged. Results go to --out as JSON "
                 "lines (rerun to resume after a kill), with summary.csv/.md, headline.json and "
                 "plots beside it. Example: realm llm abft --components k,o --ber 1e-6:1e-3 "
                 "--array 64x64-ws")
    common_args(ab)
    ab.add_argument("--components", type=comma_list(what="components"), default="all",
                    help="comma list (default all)")
    ab.add_argument("--layers", type=comma_list(int, what="layers", ok=lambda v: v >= 0),
                    help="comma list of layers (default all)")
    ab.add_argument("--ber", type=ber_list, default="1e-7:1e-3",
                    help="LO:HI (half decades, inclusive) or a comma list (default 1e-7:1e-3)")
    ab.add_argument("--bits", type=bit_list, default="0-29",
                    help="comma list of flipped bits: a bit (30) or LO-HI uniform (default 0-29)")
    ab.add_argument("--array", type=comma_list(array, what="arrays"), default="256x256-ws",
                    help="ROWSxCOLS-DATAFLOW, comma list allowed (default 256x256-ws, the paper's)")
    ab.add_argument("--params", help="parameter file (realm-params/1; {array} is replaced by the "
                    "array name; default docs/results/abft/params/{array}.json)")
    ab.add_argument("--policies", type=comma_list(what="policies", choices=ABFT_POLICIES),
                    default=",".join(ABFT_POLICIES),
                    help=f"comma list of {', '.join(ABFT_POLICIES)} (default all four)")
    ab.add_argument("--seeds", type=comma_list(int, what="seeds", ok=lambda v: v >= 0),
                    default="0,1", help="comma list (default 0,1)")
    ab.add_argument("--out", default="build/abft/results.jsonl", metavar="FILE",
                    help="results JSONL (default build/abft/results.jsonl)")
    ab.add_argument("--tol", type=float, help="tolerance of the summary in ΔPPL (default: the "
                    "one the parameter files were fitted with)")
    _run_opts(ab, threads=False)
    ab.set_defaults(threads=None)

    ch = command(top, "characterize", check=_check_characterize, run=cmd_characterize,
                 help="regenerate the LLM resilience results (docs/results)",
                 description="Runs every docs/results/**/spec.json (but those of "
                 "docs/results/abft/, which make abft regenerates) into campaign.jsonl next to "
                 "it (resuming), then writes the summary and plots there.")
    _run_opts(ch)
    device_arg(ch)
    ch.add_argument("--fresh", action="store_true", help="start over (the committed results "
                    "file is moved to campaign.jsonl.old) instead of resuming it")
