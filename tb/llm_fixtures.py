"""Test fixtures of the LLM side: the tiny model made W8A8 (:mod:`realm.llm.tiny`), logits
window by window, a tiny campaign spec, and a campaign driver killed mid-run."""
import os

import torch

from realm.llm.tiny import tiny_model_dir


def tiny_quantized(path, layers, windows, length, seed=0):
    """(model, runtime, windows): the tiny model of :func:`tiny_model_dir` made W8A8 (smoothed
    on its own windows), with ``windows`` random token windows of ``length``."""
    from transformers import AutoModelForCausalLM

    from realm.llm import quant

    d = tiny_model_dir(path, layers=layers)
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(3, 60, (windows, length), generator=g)
    rt = quant.quantize(m, quant.calibrate(m, w))
    return m, rt, w


def window_logits(model, rt, windows, injector):
    """The logits of ``model`` (quantized with runtime ``rt``) over ``windows`` (token tensors),
    window by window as the campaign evaluates them, with ``injector`` installed (None: clean);
    the runtime is left without an injector."""
    rt.injector = injector
    try:
        with torch.no_grad():
            out = []
            for w, x in enumerate(windows):
                rt.start(w)
                out.append(model(input_ids=x[None], use_cache=False).logits)
            return torch.cat(out)
    finally:
        rt.injector = None


def tiny_spec(model, experiments, **over):
    """A campaign spec over the tiny model directory ``model`` (:func:`tiny_model_dir`, its
    generated ``text.txt`` for evaluation and calibration): two windows of 32 tokens, seeds 0
    and 1; ``over`` replaces any key."""
    text = os.path.join(model, "text.txt")
    return {"model": model, "text": text, "calib_text": text, "windows": 2, "length": 32,
            "calib_windows": 2, "calib_length": 32, "seeds": [0, 1],
            "experiments": experiments, **over}


def kill_after_lines(cmd, out, lines, cwd, timeout=120):
    """Run ``cmd`` (a campaign's command line) in a process group of its own and kill the group
    (SIGKILL) as soon as its results file ``out`` has ``lines`` lines, or it has exited, or
    ``timeout`` seconds have passed: a driver killed mid-campaign."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(out) and len(open(out).read().splitlines()) >= lines:
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
