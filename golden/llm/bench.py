"""Throughput of the FP32 model, the clean W8A8 integer model and the injected W8A8 model on the
same windows (tokens per second of a teacher-forced forward including the loss)."""
import time

import torch

from golden.llm import inject, metrics, worker


def _tps(fn, windows, repeats):
    with torch.no_grad():
        fn(windows[0])  # warm-up (and torch.compile on first use)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for x in windows:
                fn(x)
            best = min(best, time.perf_counter() - t)
    return windows.numel() / best


def bench(settings, threads=2, repeats=2, ber=1e-5, compile=True):
    """{"fp32", "w8a8", "w8a8_injected"} tokens/s, plus the injected run's fault count.
    The injected run flips bit 30 at ``ber`` in every component of every layer and recomputes
    every layer (no reuse of clean activations), so it measures the injection overhead itself."""
    torch.set_num_threads(threads)
    model, rt, tok, windows, bos, ref = worker.prepare(settings, fp32=True)
    if compile:
        from golden.llm import quant
        quant.use_compiled()
    comps = list(dict.fromkeys(c for c, *_ in _log(model, rt, windows[0])))

    def loss(m):
        return lambda x: metrics._nll(m(input_ids=x[None], use_cache=False).logits[0, :-1], x[1:])

    out = {"threads": threads, "tokens": int(windows.numel())}
    out["fp32"] = _tps(loss(ref), windows, repeats)
    out["w8a8"] = _tps(loss(model), windows, repeats)
    inj = inject.Injector("bitflip", comps, ber=ber, seed=0)
    rt.injector = inj

    def injected(x):
        rt.start(0)
        return loss(model)(x)

    out["w8a8_injected"] = _tps(injected, windows, repeats)
    rt.injector = None
    out["faults_per_window"] = inj.count / (len(windows) * (repeats + 1))
    return out


def _log(model, rt, x):
    rt.log = []
    with torch.no_grad():
        model(input_ids=x[None, :32], use_cache=False)
    log, rt.log = rt.log, None
    return log
