"""Throughput of the FP32 model, the clean W8A8 integer model, the injected W8A8 model and the
injected model with statistical ABFT in the loop (every faulty tile decided and the flagged ones'
errors removed, :mod:`realm.abft.loop`) on the same windows (tokens per second of a
teacher-forced forward including the loss)."""
import time

import torch

from realm.campaign import worker
from realm.llm import inject, metrics


def _tps(fns, windows, repeats):
    """Tokens/s of each function over the windows: the best of ``repeats`` rounds, the functions
    interleaved within a round so that load from other processes hits them alike."""
    best = {k: float("inf") for k in fns}
    with torch.no_grad():
        for f in fns.values():
            f(windows[0])  # warm-up (and torch.compile on first use)
        for _ in range(repeats):
            for k, f in fns.items():
                t = time.perf_counter()
                for x in windows:
                    f(x)
                best[k] = min(best[k], time.perf_counter() - t)
    return {k: windows.numel() / v for k, v in best.items()}


def bench(settings, threads=2, repeats=3, ber=1e-5, compile=True, array="64x64-ws",
          device="cpu"):
    """{"fp32", "w8a8", "w8a8_injected", "w8a8_abft"} tokens/s, plus the injected run's fault
    count. The injected runs flip bit 30 at ``ber`` in every component of every layer and
    recompute every layer (no reuse of clean activations), so they measure the injection and the
    closed loop's overhead themselves. The loop runs the ``realm`` policy on ``array`` with the
    authors' K parameters for every component (its cost does not depend on the values). The
    models run on ``device`` (on a GPU the loss's ``item()`` waits for the kernels, so each
    time is the whole pass)."""
    torch.set_num_threads(threads)
    model, rt, tok, windows, bos, ref = worker.prepare(settings, fp32=True, device=device)
    windows = windows.to(model.device)
    if compile:
        from realm.llm import quant
        quant.use_compiled()
    comps = list(dict.fromkeys(c for c, *_ in _log(model, rt, windows[0])))

    def loss(m):
        return lambda x: metrics._nll(m(input_ids=x[None], use_cache=False).logits[0, :-1], x[1:])

    inj = inject.Injector("bitflip", comps, ber=ber, seed=0)

    def with_injector(injector):
        def run(x):
            rt.injector = injector
            rt.start(0)
            try:
                return loss(model)(x)
            finally:
                rt.injector = None
        return run

    from golden.params import StatParams
    from realm.abft import loop as abft

    config = abft.parse_array(array)
    params = dict.fromkeys(comps, StatParams.from_paper(1.273, 20.076, 5.951))
    loop = abft.AbftInjector(inject.Injector("bitflip", comps, ber=ber, seed=0), config, "realm",
                             params, rt)

    out = {"threads": threads, "tokens": int(windows.numel()), "array": array}
    out.update(_tps({"fp32": loss(ref), "w8a8": loss(model),
                     "w8a8_injected": with_injector(inj), "w8a8_abft": with_injector(loop)},
                    windows, repeats))
    out["faults_per_window"] = inj.count / (len(windows) * (repeats + 1))
    return out


def _log(model, rt, x):
    rt.log = []
    with torch.no_grad():
        model(input_ids=x[None, :32], use_cache=False)
    log, rt.log = rt.log, None
    return log
