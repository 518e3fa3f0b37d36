"""One campaign worker: the W8A8 model, its clean baselines, and the runner of one point.

:func:`prepare` builds the quantized model for a campaign's settings (SmoothQuant scales are
calibrated once and cached under ``cache/act_scales/``); :func:`init` keeps it in a process
global for :func:`run_point`, which the campaign calls once per point.
"""
import copy
import hashlib
import json
import os

import torch

from realm.llm import inject, loader, metrics, quant

_W = {}


def _texts(settings):
    return loader.text_path(settings["text"]), loader.text_path(settings["calib_text"])


def scales_key(name, calib, settings):
    """The cache key of calibrated activation maxima: the model, the calibration text and its
    windows, and what the values depend on besides: the calibration code (``realm/llm/quant.py``
    and ``loader.py``), torch, transformers and the CPU kernels torch picks (a float difference
    in FP32 too small to see moves the W8A8 model by up to 0.2 PPL: docs/results/README.md)."""
    import transformers
    here = os.path.dirname(os.path.abspath(quant.__file__))
    code = hashlib.sha1()
    for f in ("quant.py", "loader.py"):
        with open(os.path.join(here, f), "rb") as fh:
            code.update(fh.read())
    tag = json.dumps([name, os.path.abspath(calib), os.path.getsize(calib),
                      settings["calib_windows"], settings["calib_length"], code.hexdigest(),
                      torch.__version__, transformers.__version__,
                      torch.backends.cpu.get_cpu_capability()])
    return hashlib.sha1(tag.encode()).hexdigest()[:16]


def environment(device="cpu"):
    """What a results file's numbers depend on besides its settings and the code: the torch and
    transformers versions, the CPU kernels torch picks (``ATEN_CPU_CAPABILITY``) and the device
    the model runs on (:func:`realm.llm.loader.device_name`: ``cpu`` or ``cuda:`` and the GPU's
    name). The same commit gives W8A8 26.143 with AVX2 kernels and 26.118 with the scalar ones
    (docs/results/README.md), and a GPU's FP32 kernels round differently again, so a campaign
    resumed under another environment would mix two models; :func:`realm.campaign.runner.run`
    refuses that."""
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "device": loader.device_name(device)}


def act_scales(model, tok, settings, bos):
    """SmoothQuant activation maxima for ``settings`` (calibrated on ``calib_text``; cached under
    :func:`scales_key`)."""
    _, calib = _texts(settings)
    path = os.path.join(loader.CACHE, "act_scales",
                        scales_key(model.name_or_path, calib, settings) + ".pt")
    if os.path.exists(path):
        return torch.load(path)
    w = loader.token_windows(tok, calib, settings["calib_windows"], settings["calib_length"], bos)
    scales = quant.calibrate(model, w)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(scales, path + ".tmp")
    os.replace(path + ".tmp", path)
    return scales


def prepare(settings, fp32=False, device="cpu"):
    """(W8A8 model, runtime, tokenizer, eval windows, add_bos[, FP32 model]) for ``settings``,
    the models on ``device`` and the windows on the CPU. Calibration and quantization run on the
    CPU whatever the device, so the INT8 weights and their scales are the same bits on every
    device (and the cached scales serve them all)."""
    model, tok, bos = loader.load(settings["model"])
    text, _ = _texts(settings)
    windows = loader.token_windows(tok, text, settings["windows"], settings["length"], bos)
    scales = act_scales(model, tok, settings, bos) if settings["smooth"] else None
    ref = copy.deepcopy(model).to(device) if fp32 else None
    rt = quant.quantize(model, scales, settings["alpha"], settings["per_tensor"],
                        settings.get("requant"))
    model.to(device)
    return (model, rt, tok, windows, bos) + ((ref,) if fp32 else ())


@torch.no_grad()
def fp32_metrics(model, windows):
    """Perplexity and top-1 accuracy of an unquantized model on the same windows."""
    nll = correct = 0.0
    for x in windows.to(model.device):
        n, c = metrics._nll(model(input_ids=x[None], use_cache=False).logits[0, :-1], x[1:])
        nll, correct = nll + n, correct + c
    return metrics.summarize(nll, correct, windows.shape[0] * (windows.shape[1] - 1))


def baselines(settings, device="cpu"):
    """{"fp32": metrics, "w8a8": metrics} for the header line of a results file."""
    model, rt, tok, windows, bos, ref = prepare(settings, fp32=True, device=device)
    out = {"fp32": fp32_metrics(ref, windows)}
    out["w8a8"] = metrics.Evaluator(model, rt, windows, reuse=False).baseline
    return out


def init(settings, threads=1, compile=True, device="cpu"):
    """Build this process's model (on ``device``) and clean evaluator."""
    torch.set_num_threads(threads)
    model, rt, tok, windows, bos = prepare(settings, device=device)
    if compile:
        quant.use_compiled()
    _W.clear()
    _W.update(settings=settings, model=model, rt=rt, tok=tok, bos=bos,
              ev=metrics.Evaluator(model, rt, windows))


def _prompts():
    if "prompts" not in _W:
        s, g = _W["settings"], _W["settings"]["gen"]
        text, _ = _texts(s)
        # prompts come after the PPL windows' text, so they are not the same tokens
        _W["prompts"] = loader.token_windows(_W["tok"], text, g["prompts"], g["prompt_len"],
                                             _W["bos"], offset=s["windows"] * s["length"])
        _W["rt"].log = []
        _W["clean_gen"] = metrics.generate(_W["model"], _W["rt"], _W["prompts"], g["new_tokens"])
        _W["gen_log"], _W["rt"].log = [_W["rt"].log], None
    return _W["prompts"], _W["clean_gen"]


def _table(path):
    """The voltage table at ``path`` (read once per process)."""
    from realm.energy.vtable import VoltageTable, table_path

    tables = _W.setdefault("tables", {})
    if path not in tables:
        tables[path] = VoltageTable.read(table_path(path))
    return tables[path]


def injector(point):
    """The :class:`~realm.llm.inject.Injector` of a campaign point."""
    kw = dict(components=point["components"], layers=point["layers"], stage=point["stage"],
              seed=point["seed"])
    if point["mode"] == "timing":
        return inject.Injector("timing", table=_table(point["table"]), voltage=point["voltage"],
                               values="drop" if point.get("policy") == "thundervolt"
                               else "error", **kw)
    kw["bits"] = tuple(point["bits"])
    if point["mode"] == "msd":
        return inject.Injector("msd", msd=2 ** point["msd_log2"], freq=2 ** point["freq_log2"],
                               **kw)
    return inject.Injector("bitflip", ber=point["ber"], **kw)


def _abft(point, base):
    """The ABFT injector of a point with an array (realm.abft.loop), or ``base``."""
    if "array" not in point or point["policy"] == "thundervolt":
        return base
    from golden.params import read_params
    from realm.abft import loop as abft

    config = abft.parse_array(point["array"])
    sets = read_params(abft.params_path(point["params"], point["array"]), config,
                            point["components"])
    return abft.AbftInjector(base, config, point["policy"], {c: p for c, (_, p) in sets.items()},
                             _W["rt"])


def _dmr(point, base):
    """A DMR point: no error survives (both copies wrong alike is neglected); the expected
    fraction of MACs recomputed (:func:`realm.energy.model.unit_ratio`, two copies, per MAC
    cycle or, for a per-element table, per output element)."""
    from realm.abft import loop as abft
    from realm.energy import model as energy

    config = abft.parse_array(point["array"])
    table = _table(point["table"])
    ratios, macs = 0.0, 0
    for c in point["components"]:
        p = table.row(c, point["voltage"]).p
        logs = _W["ev"].logs if point["metric"] == "ppl" else _W["gen_log"]
        r, m = energy.unit_ratio(logs, config, lambda comp, layer, call, c=c: comp == c
                                 and base.targets(comp, layer, "prefill"), p, copies=2,
                                 per=table.doc.get("per", "cycle"))
        ratios, macs = ratios + r * m, macs + m
    clean = (dict(_W["ev"].baseline, faults=0, computed=0) if point["metric"] == "ppl"
             else {"agree": 1.0, "prefix": 1.0, "exact": 1.0, "faults": 0})
    return {**clean, "macs": macs, "macs_recomputed": ratios, "errors": None}


def dry_run(inj, logs):
    """Run ``inj`` (an :class:`~realm.abft.loop.AbftInjector`) over the GEMM calls of the clean
    pass's ``logs`` without the model, on zero accumulators: its errors and decisions are those
    of the real pass (a timing error's change is drawn independently of the accumulator, and
    the checksum differences wrap alike), so its ``stats`` are too. Returns them."""
    rt, k0 = inj.rt, inj.rt.k
    try:
        for w, log in enumerate(logs):
            for comp, layer, call, _numel, shape, k in log:
                if inj.base.targets(comp, layer, "prefill"):
                    rt.k = k
                    inj(comp, layer, call, "prefill", w, torch.zeros(shape, dtype=torch.int32))
    finally:
        rt.k = k0
    return inj.stats


def run_point(point):
    """Run one point in this worker; return its result record. The record depends on the point
    alone (no wall time, no worker: :mod:`realm.campaign.executor` logs those beside the
    results)."""
    base = injector(point)
    if point.get("policy") == "dmr":
        res = _dmr(point, base)
        return {"point": point, **res}
    inj = _abft(point, base)
    if (point["mode"] == "timing" and point["metric"] == "ppl" and inj is not base
            and point["policy"] != "none"):
        # a timing point whose policy recomputes every erroneous tile is the clean model:
        # decide it without the model (dry_run), evaluate only if an error is kept
        stats = dry_run(_abft(point, injector(point)), _W["ev"].logs)
        if stats["errors_kept"] == 0:
            from realm.abft import loop as abft

            tiles, macs = abft.totals(_W["ev"].logs, inj.config, lambda c, layer, call:
                                      base.targets(c, layer, "prefill"))
            res = {**_W["ev"].baseline, "faults": stats["errors"], "computed": 0, **stats,
                   "tiles": tiles, "macs": macs, "dry": True}
            return {"point": point, **res}
    if point["metric"] == "ppl":
        res = _W["ev"].run(inj)
    else:
        prompts, clean = _prompts()
        toks = metrics.generate(_W["model"], _W["rt"], prompts,
                                _W["settings"]["gen"]["new_tokens"], inj)
        res = {**metrics.agreement(toks, clean), "faults": inj.count}
    if inj is not base:
        from realm.abft import loop as abft

        logs = _W["ev"].logs if point["metric"] == "ppl" else _W["gen_log"]
        # in generation, call 0 of a prompt is its prefill and later calls are decode steps
        tiles, macs = abft.totals(logs, inj.config, lambda c, layer, call: base.targets(
            c, layer, "prefill" if call == 0 or point["metric"] == "ppl" else "decode"))
        res.update(inj.stats, tiles=tiles, macs=macs)
    return {"point": point, **res}
