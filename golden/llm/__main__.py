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
"""
import argparse
import json
import os
import sys

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
        s["requant"] = [c for c in a.requant if c != "none"]
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
    p.add_argument("--requant", nargs="+", metavar="COMP", type=_component(none=True),
                   help="outputs re-quantized with the clean scale ('none' for none; default: "
                   "q k v gate up down for LLaMA-like models, q k v for OPT)")
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

    r = bench.bench(_settings(a), a.threads, a.repeats, a.ber, not a.no_compile)
    print(f"{r['tokens']} tokens, {r['threads']} threads, best of {a.repeats}")
    print(f"{'FP32':>14} {'W8A8 clean':>14} {'W8A8 injected':>14}   (tokens/s)")
    print(f"{r['fp32']:14.1f} {r['w8a8']:14.1f} {r['w8a8_injected']:14.1f}")
    print(f"W8A8/FP32 = {r['w8a8'] / r['fp32']:.2f}x, injection overhead = "
          f"{100 * (r['w8a8'] / r['w8a8_injected'] - 1):.1f} % "
          f"({r['faults_per_window']:.0f} faults per window at BER {a.ber:g}, all components)")


def _campaign(spec, out, a):
    from golden.llm import campaign, report

    n = campaign.run(spec, out, workers=a.workers, threads=a.threads,
                     progress=not a.no_progress, compile=not a.no_compile)
    d = a.out_dir or os.path.dirname(os.path.abspath(out))
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
        out = os.path.join(d, "campaign.jsonl")
        if a.fresh and os.path.exists(out):
            os.replace(out, out + ".old")
            print(f"previous results moved to {out}.old")
        a.out_dir = d
        print(f"== {os.path.relpath(path)}")
        _campaign(campaign.load_spec(path), out, a)


def _run_opts(p):
    p.add_argument("--workers", type=_POSITIVE, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=_POSITIVE, default=None,
                   help="torch threads per worker (default 1 with several workers, else 2)")
    p.add_argument("--out-dir", help="where summary.csv/.md and plots go (default: next to "
                   "the results file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-compile", action="store_true",
                   help="eager elementwise kernels (no torch.compile)")


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
    b.add_argument("--ber", type=_BER, default=1e-5, help="BER of the injected run")
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
    return p


def main(argv=None, prog="python -m golden.llm"):
    """Run one subcommand. Its arguments are checked first (``check``, before any model
    loads); bad input, then or later, is one line ``<prog>: error: ...`` and exit status 2."""
    p = parser(prog)
    a = p.parse_args(argv)
    if getattr(a, "check", None) is not None:
        a.check(p, a)
    from golden.faults import FaultListError
    from golden.llm.campaign import SpecError
    from golden.llm.inject import InjectionError
    from golden.llm.loader import ModelError, TextError

    try:
        a.fn(a)
    except (SpecError, InjectionError, FaultListError, ModelError, TextError,
            FileNotFoundError) as e:
        fail(p.prog, str(e))


if __name__ == "__main__":
    main()
