"""``realm llm``: the W8A8 LLM harness (paper Sec. IV): convert a preset, one clean or injected
evaluation, tokens/s; the sweeps, the fit and the closed loop are :mod:`realm.cli.sweeps`'."""
import json
import os

from .args import (NATURAL, POSITIVE, PROBABILITY, BadInput, comma_list, command, group, int_list,
                   need)
from .llmopts import BIT, array, check_device, check_text, common_args, components, settings
from .paths import existing, writable

DESCRIPTION = """\
The W8A8 LLM harness (docs/llm.md): SmolLM2-135M (or Gemma-3-270M, or a Hugging Face model
directory) with SmoothQuant W8A8 integer GEMMs whose INT32 accumulators take injected errors;
perplexity and top-1 accuracy on WikiText-2; sweeps, the critical-region fit and statistical
ABFT in the loop.

The first use of a preset converts its GGUF weights into the cache (REALM_CACHE, default
cache/ in the checkout or the working directory; 517 MB, about a minute, for SmolLM2-135M)."""


def _check_eval(a):
    """Every ``eval`` argument, checked before any model loads."""
    check_device(a)
    check_text(a)
    modes = [f"--{m}" for m in ("ber", "msd", "faults") if getattr(a, m) is not None]
    if len(modes) > 1:
        raise BadInput(f"give one injection mode, not {' and '.join(modes)}")
    targeting = [f"--{n}" for n in ("components", "layers", "stage", "bit", "bits")
                 if getattr(a, n) is not None]
    if targeting and (not modes or modes == ["--faults"]):
        raise BadInput(f"{', '.join(targeting)} target an injection: add --ber or --msd"
                + (" (a fault list names its own targets)" if modes else ""))
    if a.freq is not None and a.msd is None:
        raise BadInput("--freq goes with --msd")
    if a.bits is not None:
        if a.bit is not None:
            raise BadInput("give --bit or --bits, not both")
        if a.bits[0] > a.bits[1]:
            raise BadInput(f"--bits LO HI needs LO <= HI, not {a.bits[0]} {a.bits[1]}")
    a.shape = _check_model(a)
    if a.faults is not None:
        from golden.faults import load_faults
        from realm.campaign.spec import check_model_faults
        a.fault_list = load_faults(existing(a.faults, "--faults"))
        check_model_faults(a.fault_list, a.shape, settings(a)["length"])
    if a.output:
        a.output = writable(a.output, "--output")


def _check_model(a):
    """The model's shape, read from its config (no weights loaded); ``--components`` and
    ``--layers`` must fit it. Returns :func:`realm.campaign.spec.model_shape`'s tuple."""
    from realm.campaign.spec import model_shape
    shape = model_shape(settings(a)["model"])
    comps, layers = shape[0], shape[1]
    bad = [c for c in a.components or [] if c not in comps]
    if bad:
        raise BadInput(f"--components: the model has no component {bad[0]!r} (it has "
                       f"{', '.join(comps)})")
    bad = [x for x in a.layers or [] if x >= layers]
    if bad:
        raise BadInput(f"--layers: layer {bad[0]} is not in 0..{layers - 1} (the model has "
                       f"{layers} layers)")
    return shape


def cmd_convert(a):
    from realm.llm import loader

    print(loader.convert(a.model) if a.force else loader.resolve(a.model)[0])
    return 0


def cmd_eval(a):
    import torch

    from realm.campaign import worker
    from realm.llm import inject, metrics, quant

    torch.set_num_threads(a.threads)
    s = settings(a)
    if a.fp32:
        model, rt, tok, windows, bos, ref = worker.prepare(s, fp32=True, device=a.device)
        out = {"fp32": worker.fp32_metrics(ref, windows)}
        del ref
    else:
        model, rt, tok, windows, bos = worker.prepare(s, device=a.device)
        out = {}
    quant.use_compiled(not a.no_compile)
    ev = metrics.Evaluator(model, rt, windows)
    out["w8a8"] = ev.baseline
    inj = None
    kw = dict(layers=a.layers, stage=a.stage or "both", seed=a.seed,
              bits=tuple(a.bits) if a.bits else None, bit=30 if a.bit is None else a.bit)
    comps = a.components or quant.components(model)
    if a.faults:
        inj = inject.Injector("faults", [], faults=a.fault_list, seed=a.seed)
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
        out["gen_text"] = tok.decode(clean[0].tolist())
        if inj is not None:
            inj.count = 0
            out["gen"] = {**metrics.agreement(metrics.generate(model, rt, prompts, a.gen, inj),
                                              clean), "faults": inj.count}
    out = {"settings": {k: s[k] for k in ("model", "text", "windows", "length", "alpha",
                                          "per_tensor", "smooth", "requant") if k in s},
           "env": worker.environment(a.device), "injection": _injection(a), **out}
    text = json.dumps(out, indent=1)
    print(text)
    if a.output:
        a.output.write_text(text + "\n")
    return 0


def _injection(a):
    """The injection ``eval`` ran, as recorded in its JSON (None: clean only)."""
    if a.faults:
        return {"mode": "faults", "file": a.faults, "seed": a.seed}
    if a.msd is None and a.ber is None:
        return None
    mode = {"mode": "msd", "msd": a.msd, "freq": a.freq or 1} if a.msd is not None else {
        "mode": "bitflip", "ber": a.ber,
        **({"bits": list(a.bits)} if a.bits else {"bit": 30 if a.bit is None else a.bit})}
    return {**mode, "components": a.components or "all", "layers": a.layers or "all",
            "stage": a.stage or "both", "seed": a.seed}


def _check_bench(a):
    check_device(a)
    check_text(a)


def cmd_bench(a):
    from realm.llm import bench

    r = bench.bench(settings(a), a.threads, a.repeats, a.ber, not a.no_compile, a.array,
                    a.device)
    print(f"{r['tokens']} tokens, {r['threads']} threads, {a.device}, best of {a.repeats}")
    print(f"{'FP32':>14} {'W8A8 clean':>14} {'W8A8 injected':>14} {'+ ABFT loop':>14}"
          f"   (tokens/s)")
    print(f"{r['fp32']:14.1f} {r['w8a8']:14.1f} {r['w8a8_injected']:14.1f} "
          f"{r['w8a8_abft']:14.1f}")
    print(f"W8A8/FP32 = {r['w8a8'] / r['fp32']:.2f}x, injection overhead = "
          f"{100 * (r['w8a8'] / r['w8a8_injected'] - 1):.1f} % "
          f"({r['faults_per_window']:.0f} faults per window at BER {a.ber:g}, all components); "
          f"closed loop ({r['array']}, realm) over plain injection = "
          f"{100 * (r['w8a8_injected'] / r['w8a8_abft'] - 1):.1f} %")
    return 0


def _check_transfer(a):
    from realm.campaign.runner import read_results

    models = []
    for path in (a.a, a.b):
        existing(path, "RESULTS")
        header, done = read_results(path)
        if header is None:
            raise BadInput(f"{path!r} holds no campaign results")
        if not any(r["point"]["experiment"] == a.experiment for r in done.values()):
            raise BadInput(f"{path!r} has no point of experiment {a.experiment!r}")
        models.append(header["settings"]["model"])
    for path, model in zip((a.refined_a, a.refined_b), models):
        if path is None:
            continue
        existing(path, "--refined-a/-b")
        header, _ = read_results(path)
        if header is None:
            raise BadInput(f"{path!r} holds no campaign results")
        if header["settings"]["model"] != model:
            raise BadInput(f"{path!r} is a campaign of {header['settings']['model']!r}, not of "
                           f"{model!r}")
    if a.names is None:
        a.names = models
    elif len(a.names) != 2:
        raise BadInput(f"--names must name the two models, not {len(a.names)}")
    if a.out is not None:
        a.out = str(writable(a.out, "--out", folder=True))


def _check_refine(a):
    existing(a.results, "RESULTS")
    a.out = str(writable(a.out, "--out"))


def cmd_refine(a):
    from realm.campaign.refine import refine_spec

    spec, rows = refine_spec(a.results, a.windows, a.tolerance, a.max_seeds, a.seeds)
    with open(a.out, "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    tally = {}
    for r in rows:
        why = r["verdict"] if r["verdict"] != "within" and r["verdict"] != "beyond" else \
            f"{r['verdict']}, carried by one seed"
        tally[why] = tally.get(why, 0) + 1
    print(f"{len(rows)} decisive cells of {a.results} "
          f"({', '.join(f'{n} {k}' for k, n in sorted(tally.items())) or 'none'}); "
          f"{a.windows} windows of {spec['length']} tokens each")
    print(f"wrote       {a.out}")
    return 0


def cmd_transfer(a):
    import json

    from realm.llm import transfer

    res = transfer.compare(a.a, a.b, a.experiment, a.tolerance, (a.bit, a.bit),
                           (a.refined_a, a.refined_b))
    md = transfer.markdown(res, a.names)
    print(md, end="")
    if a.out is not None:
        with open(os.path.join(a.out, "transfer.md"), "w") as f:
            f.write(md)
        with open(os.path.join(a.out, "transfer.json"), "w") as f:
            json.dump({"names": a.names, "files": [a.a, a.b],
                       "refined": [a.refined_a, a.refined_b], "experiment": a.experiment,
                       "bit": a.bit, **transfer.to_json(res)}, f, indent=1)
        print(f"wrote       {a.out}/transfer.md, {a.out}/transfer.json")
    return 0


def _check_convert(a):
    need("llm")


def add(top):
    sub = group(top, "llm", help="the W8A8 LLM harness (eval, campaign, fit, abft, ...)",
                description=DESCRIPTION)

    c = command(sub, "convert", check=_check_convert, run=cmd_convert,
                help="convert a preset's GGUF into the cache",
                description="Dequantize a preset's GGUF once into the cache (REALM_CACHE or "
                "cache/); every command does it on first use anyway.")
    c.add_argument("--model", default="smollm2-135m", help="preset (default smollm2-135m)")
    c.add_argument("--force", action="store_true", help="convert even if cached")

    e = command(sub, "eval", check=_check_eval, run=cmd_eval,
                help="one clean or injected evaluation (prints JSON)",
                description="W8A8 perplexity/top-1 on the windows, clean and optionally with "
                "one injection. Give --ber (bit-flip), --msd and --freq (magnitude/frequency) "
                "or --faults FILE (fault-list replay). Prints JSON naming the model, text and "
                "windows; -o writes it to a file too.")
    common_args(e)
    e.add_argument("--fp32", action="store_true", help="also evaluate the FP32 model")
    e.add_argument("--components", type=components,
                   help="targeted components, comma-separated (default all)")
    e.add_argument("--layers", type=comma_list(int, what="layers", ok=lambda v: v >= 0),
                   help="targeted layers, comma-separated (default all)")
    e.add_argument("--stage", choices=["prefill", "decode", "both"],
                   help="targeted stage (default both)")
    e.add_argument("--ber", type=PROBABILITY, help="bit-flip: probability per INT32 element")
    e.add_argument("--bit", type=BIT, help="bit-flip: the bit (default 30)")
    e.add_argument("--bits", type=int_list(2, lo=0), metavar="LO,HI",
                   help="bit-flip: a uniform bit in LO..HI per flip (e.g. 0,29)")
    e.add_argument("--msd", type=POSITIVE, help="MSD/freq mode: total deviation in INT32 units")
    e.add_argument("--freq", type=POSITIVE, help="MSD/freq mode: errors per GEMM call "
                   "(default 1)")
    e.add_argument("--faults", metavar="FILE", help="fault-list JSON (gemm.acc entries) to "
                   "replay")
    e.add_argument("--seed", type=NATURAL, default=0, help="seed of the injection (default 0)")
    e.add_argument("--gen", type=NATURAL, default=0, metavar="N",
                   help="also run greedy generation of N tokens (prompts = window starts)")
    e.add_argument("--no-compile", action="store_true",
                   help="eager elementwise kernels (no torch.compile)")
    e.add_argument("-o", "--output", metavar="FILE", help="also write the JSON to FILE")

    b = command(sub, "bench", check=_check_bench, run=cmd_bench,
                help="tokens/s: FP32 vs W8A8 clean vs W8A8 injected vs the closed loop")
    common_args(b)
    b.add_argument("--repeats", type=POSITIVE, default=3,
                   help="timed rounds (the runs interleaved); the best is kept (default 3)")
    b.add_argument("--ber", type=PROBABILITY, default=1e-4, help="BER of the injected runs "
                   "(default 1e-4)")
    b.add_argument("--array", type=array, default="64x64-ws", help="array of the closed-loop "
                   "run (default 64x64-ws)")
    b.add_argument("--no-compile", action="store_true",
                   help="eager elementwise kernels (no torch.compile)")
    # one thread by default: on a shared 2-core machine, OpenMP threads that wait for a busy core
    # make every run several times slower and the comparison meaningless
    b.set_defaults(windows=2, threads=1)
    t = command(sub, "transfer", check=_check_transfer, run=cmd_transfer,
                help="do one model's component verdicts carry over to another?",
                description="Side by side, two results files of the same per-component BER "
                "experiment (e.g. SmolLM2-135M's and Gemma-3-270M's 'components'): per "
                "component each model's verdict against its own clean perplexity (95 % t "
                "interval of the seeds vs --tolerance times the clean PPL), kind (sensitive: "
                "beyond at a BER <= 1e-5), tolerable BER, first BER beyond, unresolved BERs, "
                "and whether the verdict transfers (same kind, tolerable BERs within one grid "
                "step). Prints the Markdown table; --out writes transfer.md and transfer.json.")
    t.add_argument("a", help="the first model's results (JSONL)")
    t.add_argument("b", help="the second model's results (JSONL)")
    t.add_argument("--experiment", default="components",
                   help="the experiment in both files (default components)")
    t.add_argument("--bit", type=BIT, default=30, help="the flipped bit (default 30)")
    t.add_argument("--tolerance", type=PROBABILITY, default=0.0167,
                   help="ΔPPL tolerance as a fraction of each model's clean PPL (default 0.0167, "
                   "the paper's +0.3 on OPT-1.3B's 18.02)")
    t.add_argument("--names", type=comma_list(str, what="names"), default=None,
                   help="the two models' names in the table (default: their files' model)")
    t.add_argument("--refined-a", metavar="FILE", help="the first model's second stage over its "
                   "decisive cells (realm llm refine); its cells replace A's")
    t.add_argument("--refined-b", metavar="FILE", help="the same for the second model")
    t.add_argument("--out", help="directory for transfer.md and transfer.json")

    rf = command(sub, "refine", check=_check_refine, run=cmd_refine,
                 help="a second stage with more text where verdicts are in doubt",
                 description="Reads an adaptive campaign's results and its .verdicts.csv and "
                 "writes the spec of a second campaign over its decisive cells only (unresolved, "
                 "open, or carried by one seed), one experiment <name>@<n> per cell, with more "
                 "windows of the same text (default 16 x 512 = 8,176 scored tokens) and the "
                 "same settings otherwise; run it with realm llm campaign and pass its results "
                 "to realm llm transfer --refined-a/-b.")
    rf.add_argument("results", help="the first campaign's results (JSONL, adaptive)")
    rf.add_argument("--out", required=True, metavar="SPEC", help="the second stage's spec (JSON)")
    rf.add_argument("--windows", type=POSITIVE, default=16,
                    help="windows of the second stage (default 16)")
    rf.add_argument("--tolerance", type=PROBABILITY, default=0.0167,
                    help="its adaptive tolerance, a fraction of the clean PPL (default 0.0167)")
    rf.add_argument("--max-seeds", type=POSITIVE, default=4,
                    help="its adaptive cap on seeds per cell (default 4)")
    rf.add_argument("--seeds", type=comma_list(int, what="seeds", ok=lambda v: v >= 0),
                    default="0,1",
                    help="seeds every cell runs first (default 0,1)")
    from . import sweeps
    sweeps.add(sub, top)
