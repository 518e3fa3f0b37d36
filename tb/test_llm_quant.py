"""W8A8 quantization: integer-exact accumulators (int64 oracle), re-quantization saturation,
SmoothQuant equivalence, and the clean W8A8 model against FP32 (SmoothQuant, Xiao et al. 2023)."""
import copy
import types

import pytest
import torch

from realm.llm import quant
from realm.llm.tiny import tiny_model_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    d = tiny_model_dir(str(tmp_path_factory.mktemp("llm") / "tiny"))
    return AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()


@pytest.mark.parametrize("m,k,n", [(1, 64, 8), (5, 60, 9), (16, 8, 17), (17, 64, 24),
                                   (300, 576, 192)])
@pytest.mark.parametrize("backend", sorted(quant.INT_MM))
def test_int_mm_exact(m, k, n, backend):
    """Every backend equals the int64 product, whichever int_mm picks on this machine."""
    g = torch.Generator().manual_seed(m * k + n)
    a = torch.randint(-127, 128, (m, k), generator=g, dtype=torch.int8)
    b = torch.randint(-127, 128, (k, n), generator=g, dtype=torch.int8)
    c = quant.INT_MM[backend](a, b)
    assert c.dtype == torch.int32 and c.shape == (m, n)
    assert torch.equal(c.long(), a.long() @ b.long())
    assert torch.equal(quant.int_mm(a, b), c)


@pytest.mark.parametrize("k", [1024, 1025, 2048 + 7])
def test_float_mm_exact_at_the_extremes(k):
    """-128 x -128 over the first 1024 terms sums to exactly 2**24, the end of float32's exact
    integers; each term past them adds 1, so the total 2**24 + (k - 1024) is odd for k = 1025
    and 2055, which one float32 GEMM over all of K rounds and float_mm's chunks of 1024 do
    not. The int64 product is the oracle."""
    a = torch.ones((3, k), dtype=torch.int8)
    b = torch.ones((k, 2), dtype=torch.int8)
    a[:, :1024], b[:1024] = -128, -128
    want = a.long() @ b.long()
    assert want[0, 0] == (1 << 24) + (k - 1024)
    assert torch.equal(quant.float_mm(a, b).long(), want)
    assert torch.equal((a.float() @ b.float()).long(), want) == (k == 1024)


def test_quant_rows_range_and_scale():
    x = torch.randn(7, 33) * torch.logspace(-3, 3, 7)[:, None]
    q, s = quant.quant_rows(x)
    assert q.dtype == torch.int8 and q.abs().max() == 127
    assert torch.equal(q.abs().amax(-1), torch.full((7,), 127, dtype=torch.int8))
    assert ((q.float() * s - x).abs() <= s / 2 * 1.0001).all()  # round to nearest


def _linear(inp=48, out=40, bias=True, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(inp, out, bias=bias)


@pytest.mark.parametrize("per_tensor", [False, True])
def test_linear_accumulator_matches_int64(per_tensor):
    rt = quant.Runtime(per_tensor=per_tensor)
    lin = _linear()
    q = quant.W8A8Linear(lin, "o", 0, rt)
    x = torch.randn(3, 11, 48) * 4
    seen = []
    rt.injector = lambda c, l, call, st, w, acc: seen.append(acc.clone())
    y = q(x)
    xq, xs = (quant.quant_tensor if per_tensor else quant.quant_rows)(x.reshape(-1, 48))
    ref = xq.long() @ q.wq.long()
    assert torch.equal(seen[0].long(), ref)
    # the FP output is the accumulator times both scales plus the bias
    expect = (ref.double() * q.ws.double() * xs.double() + lin.bias.double()).view(3, 11, 40)
    assert torch.allclose(y.double(), expect, rtol=1e-6, atol=1e-6)
    # and close to the FP32 layer
    assert (y - lin(x)).abs().max() < 0.05 * lin(x).abs().max()


def test_injected_element_and_requant_saturation():
    """A flipped bit 30 changes exactly one output; with re-quantization it saturates at the
    clean output's absmax of that token (the authors' code); without, it is acc·scale unclipped."""
    for requant in (False, True):
        rt = quant.Runtime()
        lin = _linear(bias=False, seed=1)
        q = quant.W8A8Linear(lin, "k", 2, rt, requant=requant)
        x = torch.randn(20, 48)
        clean = q(x).clone()
        acc, xs, _ = q.accumulate(x)
        row, col = 3, 7
        idx = torch.tensor([row * 40 + col])
        rt.injector = lambda c, l, call, st, w, a: (idx, a.reshape(-1)[idx] ^ (1 << 30))
        y = q(x)
        diff = (y != clean).nonzero().tolist()
        assert diff == [[row, col]]
        new = int(acc[row, col]) ^ (1 << 30)
        new = new - (1 << 32) if new >= 1 << 31 else new
        val = new * q.ws[0, col].item() * xs[row, 0].item()
        if requant:
            y_clean_fp = acc.float() * q.ws * xs
            amax = y_clean_fp[row].abs().max().item()
            assert abs(y[row, col].item()) == pytest.approx(amax, rel=1e-5)
            assert (y[row, col] > 0) == (val > 0)
        else:
            assert y[row, col].item() == pytest.approx(val, rel=1e-5)


def _fake_attention(rt, layer=0):
    return types.SimpleNamespace(_realm_rt=rt, layer_idx=layer)


def test_attention_bmm_accumulators_match_int64():
    rt = quant.Runtime()
    mod = _fake_attention(rt, layer=4)
    g = torch.Generator().manual_seed(0)
    b, h, kv, t, d = 1, 4, 2, 19, 16
    q = torch.randn(b, h, t, d, generator=g)
    k = torch.randn(b, kv, t, d, generator=g)
    v = torch.randn(b, kv, t, d, generator=g)
    seen = {}
    rt.injector = lambda c, l, call, st, w, acc: seen.setdefault(c, (l, acc.clone())) and None
    out, _ = quant.int8_attention(mod, q, k, v, None, scaling=d ** -0.5)
    q8, qs = quant.quant_rows(q)
    k8, ks = quant.quant_rows(k)
    rep = h // kv
    ref_qk = q8.long() @ k8.long().repeat_interleave(rep, 1).transpose(-1, -2)
    assert seen["qk"][0] == 4 and torch.equal(seen["qk"][1].long(), ref_qk)
    # SV: P per row, V per channel (scale over the key axis)
    scores = ref_qk.double() * qs.double() * ks.double().repeat_interleave(rep, 1).transpose(-1, -2)
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    scores = (scores * d ** -0.5).float().masked_fill(~mask, float("-inf"))
    p8, _ = quant.quant_rows(torch.softmax(scores, -1))
    vs = v.abs().amax(-2, keepdim=True) / 127
    v8 = torch.round(v * (127 / v.abs().amax(-2, keepdim=True))).to(torch.int8)
    ref_sv = p8.long() @ v8.long().repeat_interleave(rep, 1)
    assert torch.equal(seen["sv"][1].long(), ref_sv)
    # and the whole thing is close to FP32 causal attention
    fp = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=True)
    assert (out - fp.transpose(1, 2)).abs().max() < 0.05
    assert vs.shape == (1, kv, 1, d)


def test_smoothing_preserves_fp32_function(tiny):
    m = copy.deepcopy(tiny)
    x = torch.randint(3, 60, (2, 24))
    with torch.no_grad():
        ref = m(input_ids=x).logits
        scales = quant.calibrate(m, x)
        assert set(scales) == {(i, n) for i in range(2)
                               for n in ("input_layernorm", "post_attention_layernorm")}
        quant.smooth(m, scales, 0.5)
        out = m(input_ids=x).logits
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_w8a8_model_close_to_fp32_and_all_gemms_integer(tiny):
    m = copy.deepcopy(tiny)
    x = torch.randint(3, 60, (1, 40))
    with torch.no_grad():
        ref = torch.log_softmax(tiny(input_ids=x).logits, -1)
        rt = quant.quantize(m, quant.calibrate(m, x))
        rt.log = []
        out = torch.log_softmax(m(input_ids=x).logits, -1)
    comps = [c for c, *_ in rt.log]
    assert sorted(set(comps)) == sorted(quant.components(m))
    assert len(rt.log) == 2 * 9 and all(call == 0 for _, _, call, *_ in rt.log)
    # same next-token distribution up to quantization noise (KL per token)
    kl = (ref.exp() * (ref - out)).sum(-1).mean()
    assert kl < 0.02
    n_lin = sum(isinstance(mm, quant.W8A8Linear) for mm in m.modules())
    assert n_lin == 2 * 7 and not any(type(mm) is torch.nn.Linear
                                      for mm in m.model.layers.modules())


def _arch_model(name):
    from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, OPTConfig, OPTForCausalLM,
                              Qwen2Config, Qwen2ForCausalLM)

    torch.manual_seed(0)
    if name == "opt":
        return OPTForCausalLM(OPTConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                        ffn_dim=64, num_attention_heads=4,
                                        max_position_embeddings=128, word_embed_proj_dim=32))
    if name == "gemma3":
        return Gemma3ForCausalLM(Gemma3TextConfig(
            vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=16,
            layer_types=["sliding_attention", "full_attention"], max_position_embeddings=128))
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, max_position_embeddings=128))


@pytest.mark.parametrize("name,comps", [
    ("opt", ["q", "k", "v", "qk", "sv", "o", "fc1", "fc2"]),
    ("gemma3", ["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"]),
    ("qwen2", ["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"])])
def test_other_architectures(name, comps):
    """OPT (LayerNorm, biases, per-tensor in the paper), Gemma 3 ((1+w) RMSNorm, sliding window)
    and Qwen2 (q/k/v biases) go through the same interface: smoothing keeps the FP32 function,
    every GEMM is integer and hooked, and the W8A8 logits track the FP32 ones."""
    m = _arch_model(name).eval()
    x = torch.randint(0, 64, (1, 40))
    with torch.no_grad():
        ref = m(input_ids=x).logits
        q = copy.deepcopy(m)
        scales = quant.calibrate(q, x)
        quant.smooth(q, scales, 0.5)
        assert torch.allclose(q(input_ids=x).logits, ref, atol=1e-4, rtol=1e-3)
        q = copy.deepcopy(m)
        rt = quant.quantize(q, scales, per_tensor=(name == "opt"))
        rt.log = []
        out = q(input_ids=x).logits
    assert quant.components(q) == comps
    assert sorted({c for c, *_ in rt.log}) == sorted(comps)
    r = torch.corrcoef(torch.stack([ref.flatten(), out.flatten()]))[0, 1]
    assert r > 0.98


def test_sv_requantized_with_clean_row_scale():
    """SV output re-quantized as the authors' ``matmul2`` (``quantize_output=True``): per
    (head, query) row over head_dim with the clean output's absmax, so a bit-30 error saturates
    at that row's clean absmax with its sign; without it the error passes unclipped."""
    g = torch.Generator().manual_seed(3)
    b, h, kv, t, d = 1, 4, 2, 9, 8
    q, k, v = (torch.randn(b, n, t, d, generator=g) for n in (h, kv, kv))
    outs, accs = {}, {}
    row = (2, 5)  # (head, query)
    flat = (row[0] * t + row[1]) * d + 3
    for requant in (False, True):
        for inject in (False, True):
            rt = quant.Runtime()
            rt.requant_sv = requant

            def inj(c, layer, call, st, w, acc):
                if c != "sv":
                    return None
                accs[requant] = acc.clone()
                i = torch.tensor([flat])
                return (i, acc.reshape(-1)[i] ^ (1 << 30)) if inject else None
            rt.injector = inj
            outs[requant, inject] = quant.int8_attention(_fake_attention(rt), q, k, v, None,
                                                         scaling=d ** -0.5)[0]
    acc = accs[True].double()  # the clean accumulator: the same with and without requant
    assert torch.equal(accs[True], accs[False])
    # the clean FP output of the row, from the accumulator and the scales, independently
    plain = outs[False, False].transpose(1, 2)  # [B, H, T, d]
    s = plain.abs().amax(-1, keepdim=True) / 127
    want = torch.clamp(torch.round(plain / s), -127, 127) * s
    assert torch.allclose(outs[True, False].transpose(1, 2), want, atol=1e-6)
    assert not torch.equal(outs[True, False], outs[False, False])  # requant changes values
    hit = outs[True, True].transpose(1, 2)[0, row[0], row[1]]
    clean_row = plain[0, row[0], row[1]]
    sign = 1 if int(acc.reshape(-1)[flat]) >= 0 else -1  # bit 30 adds 2^30 with the sign
    assert hit[3].item() == pytest.approx(sign * clean_row.abs().max().item(), rel=1e-5)
    assert abs(outs[False, True].transpose(1, 2)[0, row[0], row[1], 3].item()) > \
        1000 * clean_row.abs().max().item()


def test_requant_placements():
    """The default follows the authors' code (SV included, O and QKᵀ never); ``linear-only``
    is the earlier placement; a bad name is one line."""
    a = quant.ARCHS["llama"]
    assert quant.requant_set(a) == {"q", "k", "v", "sv", "gate", "up", "down"}
    assert quant.requant_set(a, "authors") == quant.requant_set(a)
    assert quant.requant_set(a, "linear-only") == {"q", "k", "v", "gate", "up", "down"}
    assert quant.requant_set(quant.ARCHS["opt"]) == {"q", "k", "v", "sv"}
    assert quant.requant_set(a, ["k"]) == {"k"}
    with pytest.raises(ValueError, match="requant must be one of authors, linear-only"):
        quant.requant_set(a, "everything")
