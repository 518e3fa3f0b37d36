"""``python -m golden.llm`` (also ``realm llm``): LLM resilience characterization (ReaLM
paper Sec. IV).

Subcommands (``python -m golden.llm SUBCOMMAND --help`` for each one's options):

  convert       dequantize a preset's GGUF once into cache/<preset>/ (done on first use anyway)
  eval          one evaluation: W8A8 perplexity and top-1 accuracy, clean or with one injection
                (bit-flip, MSD/freq or a fault-list JSON); --fp32 adds the FP32 reference;
                --gen N also reports greedy-generation agreement over N new tokens
  bench         tokens/s of FP32, clean W8A8 and injected W8A8 on the same windows
  campaign      run a sweep spec (JSON) with a progress bar, appending one line per point to a
                JSONL file; rerun the same command to resume after a kill; then summarize it
  summarize     summary.csv / summary.md (mean and 95 % CI over seeds) and PNG plots of a JSONL
  characterize  regenerate docs/results/ from the committed specs docs/results/**/spec.json
                (all but docs/results/abft/, which make abft regenerates)
  fit           fit the critical region per component from an MSD x freq grid and write the
                statistical unit's parameter file for each array
  abft          statistical ABFT in the loop: every GEMM tiled onto an array, each faulty tile
                decided by the statistical unit's model and recomputed if the policy says so;
                perplexity and recompute ratio per component, BER and policy
"""
import argparse
import json
import math
import os

from golden.executor import add_engine_args
from hw.cli import Parser, checked, fail

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The committed results: the checkout's docs/results/, or ./docs/results/ when installed.
RESULTS = os.path.join(_REPO if os.path.exists(os.path.join(_REPO, "pyproject.toml"))
                       else os.getcwd(), "docs", "results")


def _settings(a):
    from golden.llm.campaign import GLOBAL

    s = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GLOBAL.items() if k != "seeds"}
    for k in ("model", "text", "windows", "length", "alpha"):
        if getattr(a, k, None) is not None:
            s[k] = getattr(a, k)
    s["per_tensor"] = bool(getattr(a, "per_tensor", False))
    if getattr(a, "requant", None) is not None:
        from golden.llm.quant import REQUANT_PLACEMENTS
        s["requant"] = (a.requant[0] if len(a.requant) == 1 and a.requant[0] in REQUANT_PLACEMENTS
                        else [c for c in a.requant if c != "none"])
    s["smooth"] = not getattr(a, "no_smooth", False)
    return s


_POSITIVE = checked(int, lambda v: v >= 1, "an integer of at least 1")
_NATURAL = checked(int, lambda v: v >= 0, "a non-negative integer")
_BIT = checked(int, lambda v: 0 <= v <= 31, "a bit of INT32, 0 to 31")
_BER = checked(float, lambda v: 0 < v <= 1, "a probability above 0 and at most 1")


def _component(none=False):
    """An argparse ``type``: a GEMM component name (``none`` too if ``none``)."""
    from golden.faults import LLM_COMPONENTS

    names = (*LLM_COMPONENTS, "none") if none else LLM_COMPONENTS
    return checked(str, lambda v: v in names, f"one of {', '.join(names)}")


def _requant():
    """An argparse ``type`` for ``--requant``: a component, ``none``, or a named placement."""
    from golden.faults import LLM_COMPONENTS
    from golden.llm.quant import REQUANT_PLACEMENTS

    names = (*LLM_COMPONENTS, "none", *REQUANT_PLACEMENTS)
    return checked(str, lambda v: v in names, f"one of {', '.join(names)}")


def _check_text(p, a):
    """Resolve ``--text`` now, so a missing file is said before any model loads."""
    from golden.llm import loader

    if getattr(a, "text", None) is not None:
        try:
            loader.text_path(a.text)
        except loader.TextError as e:
            p.error(str(e))


def _check_eval(p, a):
    """Every ``eval`` argument, checked before any model loads."""
    _check_text(p, a)
    modes = [f"--{m}" for m in ("ber", "msd", "faults") if getattr(a, m) is not None]
    if len(modes) > 1:
        p.error(f"give one injection mode, not {' and '.join(modes)}")
    targeting = [f"--{n}" for n in ("components", "layers", "stage", "bit", "bits")
                 if getattr(a, n) is not None]
    if targeting and (not modes or modes == ["--faults"]):
        p.error(f"{', '.join(targeting)} target an injection: add --ber or --msd"
                + (" (a fault list names its own targets)" if modes else ""))
    if a.freq is not None and a.msd is None:
        p.error("--freq goes with --msd")
    if a.bits is not None:
        if a.bit is not None:
            p.error("give --bit or --bits, not both")
        if a.bits[0] > a.bits[1]:
            p.error(f"--bits LO HI needs LO <= HI, not {a.bits[0]} {a.bits[1]}")
    if a.faults is not None:
        from golden.faults import FaultListError, load_faults

        try:
            load_faults(a.faults)
        except FaultListError as e:
            p.error(str(e))


def _common(p):
    p.add_argument("--model", help="preset (smollm2-135m, gemma3-270m) or a local HF model "
                   "directory (default smollm2-135m)")
    p.add_argument("--text", help="evaluation text file, or wikitext-2:test (default) / "
                   "wikitext-2:valid")
    p.add_argument("--windows", type=_POSITIVE, help="number of windows (default 4)")
    p.add_argument("--length", type=_POSITIVE, help="tokens per window (default 512)")
    p.add_argument("--alpha", type=checked(float, lambda v: 0 <= v <= 1, "from 0 to 1"),
                   help="SmoothQuant migration strength (default 0.5)")
    p.add_argument("--per-tensor", action="store_true",
                   help="per-tensor weight and activation scales (default per channel / token)")
    p.add_argument("--no-smooth", action="store_true", help="skip SmoothQuant smoothing")
    p.add_argument("--requant", nargs="+", metavar="COMP", type=_requant(),
                   help="outputs re-quantized with the clean scale: 'authors' (default: q k v sv "
                   "gate up down for LLaMA-like models, q k v sv for OPT, as the authors' code), "
                   "'linear-only' (the same without sv), 'none', or a list of components")
    p.add_argument("--threads", type=_POSITIVE, default=2,
                   help="torch threads (default 2; bench: 1)")


def cmd_convert(a):
    from golden.llm import loader

    print(loader.convert(a.model) if a.force else loader.resolve(a.model)[0])


def cmd_eval(a):
    import torch

    from golden import faults as flt
    from golden.llm import inject, metrics, quant, worker

    torch.set_num_threads(a.threads)
    s = _settings(a)
    if a.fp32:
        model, rt, tok, windows, bos, ref = worker.prepare(s, fp32=True)
        out = {"fp32": worker.fp32_metrics(ref, windows)}
        del ref
    else:
        model, rt, tok, windows, bos = worker.prepare(s)
        out = {}
    quant.use_compiled(not a.no_compile)
    ev = metrics.Evaluator(model, rt, windows)
    out["w8a8"] = ev.baseline
    inj = None
    kw = dict(layers=a.layers, stage=a.stage or "both", seed=a.seed,
              bits=tuple(a.bits) if a.bits else None, bit=30 if a.bit is None else a.bit)
    comps = a.components or quant.components(model)
    if a.faults:
        inj = inject.Injector("faults", [], faults=flt.load_faults(a.faults), seed=a.seed)
    elif a.msd is not None:
        inj = inject.Injector("msd", comps, msd=a.msd, freq=1 if a.freq is None else a.freq,
                              **kw)
    elif a.ber is not None:
        inj = inject.Injector("bitflip", comps, ber=a.ber, **kw)
    if inj is not None:
        out["injected"] = ev.run(inj)
    if a.gen:
        prompts = windows[:, : min(windows.shape[1], 128)]
        clean = metrics.generate(model, rt, prompts, a.gen)
        out["gen_text"] = tok.decode(clean[0])
        if inj is not None:
            inj.count = 0
            out["gen"] = {**metrics.agreement(metrics.generate(model, rt, prompts, a.gen, inj),
                                              clean), "faults": inj.count}
    print(json.dumps(out, indent=1))


def cmd_bench(a):
    from golden.llm import bench

    r = bench.bench(_settings(a), a.threads, a.repeats, a.ber, not a.no_compile, a.array)
    print(f"{r['tokens']} tokens, {r['threads']} threads, best of {a.repeats}")
    print(f"{'FP32':>14} {'W8A8 clean':>14} {'W8A8 injected':>14} {'+ ABFT loop':>14}"
          f"   (tokens/s)")
    print(f"{r['fp32']:14.1f} {r['w8a8']:14.1f} {r['w8a8_injected']:14.1f} "
          f"{r['w8a8_abft']:14.1f}")
    print(f"W8A8/FP32 = {r['w8a8'] / r['fp32']:.2f}x, injection overhead = "
          f"{100 * (r['w8a8'] / r['w8a8_injected'] - 1):.1f} % "
          f"({r['faults_per_window']:.0f} faults per window at BER {a.ber:g}, all components); "
          f"closed loop ({r['array']}, realm) over plain injection = "
          f"{100 * (r['w8a8_injected'] / r['w8a8_abft'] - 1):.1f} %")


def _campaign(spec, out, a):
    from golden.llm import abft_report, campaign, report

    n = campaign.run(spec, out, workers=a.workers, threads=a.threads,
                     progress=not a.no_progress, compile=not a.no_compile, engine=a.run_engine)
    d = a.out_dir or os.path.dirname(os.path.abspath(out))
    if abft_report.is_abft(out):
        abft_report.summarize(out, d, tol=getattr(a, "tol", None))
        files = abft_report.plot(out, d, tol=getattr(a, "tol", None))
    else:
        report.summarize(out, d)
        files = report.plot(out, d)
    print(f"{n} points run; results in {out}; summary and {len(files)} plots in {d}")


def cmd_campaign(a):
    from golden.llm import campaign

    spec = campaign.load_spec(a.spec)
    out = a.out or os.path.splitext(a.spec)[0] + ".jsonl"
    _campaign(spec, out, a)


def cmd_summarize(a):
    from golden.llm import report

    d = a.out_dir or os.path.dirname(os.path.abspath(a.results))
    report.summarize(a.results, d)
    print("\n".join(report.plot(a.results, d)))


def cmd_characterize(a):
    from golden.llm import campaign

    import glob

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
        _campaign(campaign.load_spec(path), out, a)


def _list(text, what, conv=str):
    from golden.llm.campaign import SpecError

    try:
        return [conv(x) for x in str(text).split(",") if x != ""]
    except ValueError:
        raise SpecError(f"bad {what} list {text!r}") from None


def _bers(text):
    """``1e-6:1e-3`` (every half decade between, inclusive) or a comma list."""
    if ":" in text:
        try:
            lo, hi = (float(x) for x in text.split(":"))
        except ValueError:
            lo = hi = -1.0
        if not 0 < lo <= hi:
            from golden.llm.campaign import SpecError

            raise SpecError(f"BER range must be LO:HI with 0 < LO <= HI, not {text!r}")
        out, e = [], math.floor(math.log10(lo) * 2 + 1e-9)
        while 10 ** (e / 2) <= hi * (1 + 1e-9):
            v = float(f"{(1 if e % 2 == 0 else 3.1622776601683795) * 10 ** (e // 2):.3g}")
            if v >= lo * (1 - 1e-9):
                out.append(v)
            e += 1
        return out
    return _list(text, "BER", float)


def cmd_fit(a):
    from golden.llm import abft, campaign, fit

    arrays = [abft.parse_array(x) for x in _list(a.arrays, "array")]
    if not os.path.exists(a.grid):
        raise campaign.SpecError(f"grid results file {a.grid!r} does not exist")
    base, grids, fits, partial = fit.fit_all(a.grid, a.tol, a.rel)
    if not fits:
        raise campaign.SpecError(f"{a.grid} holds no complete msd-mode grid to fit")
    if partial:
        print(f"incomplete grids, not fitted: {', '.join(partial)}")
    header, _ = campaign.read_results(a.grid)
    st = header["settings"]
    gemms = fit.component_gemms(campaign.model_shape(st["model"]), st["length"])
    os.makedirs(a.out_dir, exist_ok=True)
    fit.dump(fits, grids, base, os.path.join(a.out_dir, "fit.json"), a.tol, a.rel)
    limit = base * (1 + a.rel) if a.rel is not None else base + a.tol
    fit.plot(fits, grids, base, os.path.join(a.out_dir, "critical_region.png"), limit)
    print(f"clean W8A8 PPL {base:.3f}; critical: PPL > {limit:.3f}")
    print(f"{'comp':>5} {'a':>7} {'b':>8} {'θ_freq':>7} {'sens':>5} {'crit':>5} {'false':>5}")
    for c, f in fits.items():
        print(f"{c:>5} {f['a']:7.3f} {f['b']:8.3f} {f['theta_freq']:7.2f} "
              f"{str(f['sensitive']):>5} {f['critical']:5d} {f['false']:5d}")
    mode = {"signed": 0, "abs": 1}[a.msd_mode]
    for config in arrays:
        ps = {c: fit.tile_params(fits[c], config, gemms[c], mode) for c in gemms if c in fits}
        path = os.path.join(a.out_dir, f"{abft.array_name(config)}.json")
        abft.write_params(path, config, ps, model=st["model"],
                          meta={"grid": os.path.relpath(a.grid), "baseline_ppl": base,
                                "tolerance": {"abs": a.tol, "rel": a.rel},
                                "msd_mode": a.msd_mode})
        print(f"wrote {path}")


def cmd_abft(a):
    from golden.llm import campaign

    comps = _list(a.components, "component") or ["all"]
    bits = [[int(x) for x in b.split("-")] if "-" in b else int(b)
            for b in _list(a.bits, "bits")]
    params = a.params if a.params is None else os.path.abspath(a.params)
    arrays = _list(a.array, "array")
    if params is None:
        params = os.path.join(RESULTS, "abft", "params", "{array}.json")
    elif len(arrays) > 1 and "{array}" not in params:
        raise campaign.SpecError("several arrays need --params with {array} in the path")
    exp = {"name": "abft", "components": comps, "bers": _bers(a.ber), "bits": bits,
           "arrays": arrays, "policies": _list(a.policies, "policy"), "params": params,
           "seeds": _list(a.seeds, "seed", int)}
    if a.layers:
        exp["layers"] = [_list(a.layers, "layer", int)]
    spec = {**{k: v for k, v in _settings(a).items() if k in campaign.GLOBAL}, "experiments": [exp]}
    campaign.expand(spec)  # every argument checked before the model loads
    _campaign(spec, a.out, a)


def _check_engine(p, a):
    """``--engine``/``--address`` checked (the cluster is joined before the model loads)."""
    from golden.executor import engine_from_args

    a.run_engine = engine_from_args(p, a)


def _run_opts(p, threads=True):
    p.add_argument("--workers", type=_POSITIVE, default=2,
                   help="workers: processes, or Ray actors with --engine ray (default 2)")
    add_engine_args(p)
    p.set_defaults(check=_check_engine)
    if threads:
        p.add_argument("--threads", type=_POSITIVE, default=None,
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


def parser(prog="python -m golden.llm"):
    p = Parser(prog=prog, description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="SUBCOMMAND", parser_class=Parser)

    c = sub.add_parser("convert", help="convert a preset's GGUF into cache/")
    c.add_argument("--model", default="smollm2-135m")
    c.add_argument("--force", action="store_true", help="convert even if cached")
    c.set_defaults(fn=cmd_convert)

    e = sub.add_parser("eval", help="one clean or injected evaluation (prints JSON)",
                       description="W8A8 perplexity/top-1 on the windows, clean and optionally "
                       "with one injection. Give --ber (bit-flip), --msd and --freq (magnitude/"
                       "frequency) or --faults FILE (fault-list replay).")
    _common(e)
    e.add_argument("--fp32", action="store_true", help="also evaluate the FP32 model")
    e.add_argument("--components", nargs="+", type=_component(),
                   help="targeted components (default all)")
    e.add_argument("--layers", nargs="+", type=_NATURAL, help="targeted layers (default all)")
    e.add_argument("--stage", choices=["prefill", "decode", "both"],
                   help="targeted stage (default both)")
    e.add_argument("--ber", type=_BER, help="bit-flip: probability per INT32 element")
    e.add_argument("--bit", type=_BIT, help="bit-flip: the bit (default 30)")
    e.add_argument("--bits", type=_BIT, nargs=2, metavar=("LO", "HI"),
                   help="bit-flip: a uniform bit in LO..HI per flip (e.g. 0 29)")
    e.add_argument("--msd", type=_POSITIVE, help="MSD/freq mode: total deviation in INT32 units")
    e.add_argument("--freq", type=_POSITIVE, help="MSD/freq mode: errors per GEMM call "
                   "(default 1)")
    e.add_argument("--faults", help="fault-list JSON (gemm.acc entries) to replay")
    e.add_argument("--seed", type=_NATURAL, default=0)
    e.add_argument("--gen", type=_NATURAL, default=0, metavar="N",
                   help="also run greedy generation of N tokens (prompts = window starts)")
    e.add_argument("--no-compile", action="store_true")
    e.set_defaults(fn=cmd_eval, check=_check_eval)

    b = sub.add_parser("bench", help="tokens/s: FP32 vs W8A8 clean vs W8A8 injected")
    _common(b)
    b.add_argument("--repeats", type=_POSITIVE, default=3,
                   help="timed rounds (the three runs interleaved); the best is kept")
    b.add_argument("--ber", type=_BER, default=1e-4, help="BER of the injected runs "
                   "(default 1e-4)")
    b.add_argument("--array", default="64x64-ws", help="array of the closed-loop run "
                   "(default 64x64-ws)")
    b.add_argument("--no-compile", action="store_true")
    # one thread by default: on a shared 2-core machine, OpenMP threads that wait for a busy core
    # make every run several times slower and the comparison meaningless
    b.set_defaults(fn=cmd_bench, windows=2, threads=1, check=_check_text)

    r = sub.add_parser("campaign", help="run (or resume) a sweep spec",
                       description="Run every point of SPEC not yet in the results file, one JSON "
                       "line per point; the spec format is documented in golden/llm/campaign.py "
                       "and docs/llm.md. Kill it at any time and rerun to resume.")
    r.add_argument("spec", help="sweep spec JSON")
    r.add_argument("--out", help="results JSONL (default: SPEC with .jsonl)")
    _run_opts(r)
    r.set_defaults(fn=cmd_campaign)

    s = sub.add_parser("summarize", help="summary tables and plots of a results JSONL")
    s.add_argument("results")
    s.add_argument("--out-dir")
    s.set_defaults(fn=cmd_summarize)

    ch = sub.add_parser("characterize", help="regenerate docs/results/ (committed specs)",
                        description="Runs every docs/results/**/spec.json into campaign.jsonl "
                        "next to it (resuming), then writes the summary and plots there.")
    _run_opts(ch)
    ch.add_argument("--fresh", action="store_true", help="start over (the committed results "
                    "file is moved to campaign.jsonl.old) instead of resuming it")
    ch.set_defaults(fn=cmd_characterize)

    f = sub.add_parser("fit", help="fit the critical region; write parameter files per array",
                       description="Reads an MSD x freq grid (a campaign results file of msd-mode "
                       "points, e.g. docs/results/abft/grid/campaign.jsonl), marks the cells whose "
                       "perplexity exceeds the tolerance, fits (a, b, theta_freq) per component "
                       "(golden/llm/fit.py explains the procedure), and writes fit.json and one "
                       "realm-params/1 file per array, rescaled to that array's tiles.")
    f.add_argument("grid", help="grid results JSONL")
    f.add_argument("--arrays", default="256x256-ws,256x256-os,64x64-ws,64x64-os",
                   help="comma list of ROWSxCOLS-DATAFLOW (default: 256 and 64, both dataflows)")
    f.add_argument("--out-dir", default=os.path.join(RESULTS, "abft", "params"),
                   help="where fit.json and the parameter files go (default "
                   "docs/results/abft/params)")
    _fit_opts(f)
    f.add_argument("--msd-mode", choices=["signed", "abs"], default="signed",
                   help="MSD the unit sums: the signed differences (the paper's, default) or "
                   "their magnitudes (errors of opposite sign cannot cancel)")
    f.set_defaults(fn=cmd_fit)

    ab = sub.add_parser("abft", help="statistical ABFT in the loop: PPL and recompute ratio",
                        description="Every GEMM of the W8A8 model tiled onto the array; errors "
                        "drawn in the INT32 accumulators; each faulty tile's checksum differences "
                        "decided by the statistical unit's model under each policy (none, "
                        "classic, approx = MSD threshold, realm) and recomputed when flagged. "
                        "Results go to --out as JSON lines (rerun to resume after a kill), with "
                        "summary.csv/.md, headline.json and plots beside it. Example: python -m "
                        "golden.llm abft --components k,o --ber 1e-6:1e-3 --array 64x64-ws")
    _common(ab)
    ab.add_argument("--components", default="all", help="comma list (default all)")
    ab.add_argument("--layers", help="comma list of layers (default all)")
    ab.add_argument("--ber", default="1e-7:1e-3",
                    help="LO:HI (half decades, inclusive) or a comma list (default 1e-7:1e-3)")
    ab.add_argument("--bits", default="0-29",
                    help="comma list of flipped bits: a bit (30) or LO-HI uniform (default 0-29)")
    ab.add_argument("--array", default="256x256-ws",
                    help="ROWSxCOLS-DATAFLOW, comma list allowed (default 256x256-ws, the paper's)")
    ab.add_argument("--params", help="parameter file (realm-params/1; {array} is replaced by the "
                    "array name; default docs/results/abft/params/{array}.json)")
    ab.add_argument("--policies", default="none,classic,approx,realm",
                    help="comma list of none, classic, approx, realm (default all four)")
    ab.add_argument("--seeds", default="0,1", help="comma list (default 0,1)")
    ab.add_argument("--out", default="build/abft/results.jsonl",
                    help="results JSONL (default build/abft/results.jsonl)")
    ab.add_argument("--tol", type=float, help="tolerance of the summary in ΔPPL (default: the "
                    "one the parameter files were fitted with)")
    _run_opts(ab, threads=False)
    ab.set_defaults(fn=cmd_abft, threads=None)
    return p


def main(argv=None, prog="python -m golden.llm"):
    """Run one subcommand. Its arguments are checked first (``check``, before any model
    loads); bad input, then or later, is one line ``<prog>: error: ...`` and exit status 2; a
    campaign some of whose points failed, one such line and exit status 1."""
    p = parser(prog)
    a = p.parse_args(argv)
    if getattr(a, "check", None) is not None:
        a.check(p, a)
    from golden.executor import EngineError, PointsFailed
    from golden.faults import FaultListError
    from golden.llm.campaign import SpecError
    from golden.llm.inject import InjectionError
    from golden.llm.abft import ParamsError
    from golden.llm.loader import ModelError, TextError

    try:
        a.fn(a)
    except (SpecError, InjectionError, FaultListError, ModelError, TextError, ParamsError,
            FileNotFoundError, EngineError) as e:
        fail(p.prog, str(e))
    except PointsFailed as e:
        fail(p.prog, str(e), status=1)


if __name__ == "__main__":
    main()
