"""W8A8 as SmoothQuant does it, with integer-exact INT32 accumulators (paper §II, §IV-A;
the authors' public code, smoothquant/error_inject.py).

* Smoothing (:func:`smooth`): for each norm that feeds linear layers, per input channel j,
  ``s_j = max|X_j|^α / max|W_j|^(1-α)``; X is divided by s (folded into the norm) and W's column j
  multiplied by s. max|X_j| comes from :func:`calibrate` on calibration text.
* Every GEMM is INT8 × INT8 → INT32 through :func:`int_mm`, exact (on the CPU ``torch._int_mm``
  or float32 GEMMs over exact chunks, whichever is faster on the machine; on a CUDA GPU
  ``torch._int_mm``, cuBLAS's integer GEMM); the FP
  output is the accumulator times the two scales. Weights are per output channel and activations
  per token (or both per tensor, ``per_tensor=True``, the OPT setting of the authors' code).
* The two attention BMMs run in our own attention function (:func:`int8_attention`), registered
  with transformers as ``realm_int8``: QKᵀ with per-token Q and K scales, SV with per-row P and
  per-channel V scales (V "permuted before quantizing" in the authors' code), so each scale
  factors out.
* Output re-quantization (as the authors' code does it): outputs named in ``requant`` are
  fake-quantized to INT8 per row with the scale of the *clean* output, so injected errors
  saturate at the clean absmax. The default follows the authors' code (``"authors"``): q/k/v, the
  SV BMM (their ``matmul2`` is
  built with ``quantize_output=True``, per token over head_dim) and, for LLaMA-like models,
  gate/up/down; O and QKᵀ never. ``"linear-only"`` is the placement of our first
  characterization (the linear outputs only, SV not re-quantized), kept for the ablation.

Every GEMM call passes its accumulator to :meth:`Runtime.hook`, where an injector may corrupt it.
"""
import torch
import torch.nn.functional as F
from torch import nn

#: Per architecture: where the decoder layers are, the linear components, the smoothing groups
#: (norm -> components it feeds) and the outputs re-quantized by default.
_LLAMA = dict(layers="model.layers",
              linears={"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                       "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
                       "down": "mlp.down_proj"},
              smooth=[("input_layernorm", ("q", "k", "v")),
                      ("post_attention_layernorm", ("gate", "up"))],
              norm="rms", requant=("q", "k", "v", "sv", "gate", "up", "down"))
ARCHS = {
    "llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "qwen3": _LLAMA,
    # Gemma's RMSNorm multiplies by (1 + w); the MLP's norm is pre_feedforward_layernorm.
    "gemma3_text": dict(_LLAMA, norm="rms1", smooth=[
        ("input_layernorm", ("q", "k", "v")), ("pre_feedforward_layernorm", ("gate", "up"))]),
    # OPT: the BMM inputs q/k/v and the SV output are re-quantized (the authors' OPT scripts).
    "opt": dict(layers="model.decoder.layers",
                linears={"q": "self_attn.q_proj", "k": "self_attn.k_proj",
                         "v": "self_attn.v_proj", "o": "self_attn.out_proj", "fc1": "fc1",
                         "fc2": "fc2"},
                smooth=[("self_attn_layer_norm", ("q", "k", "v")), ("final_layer_norm", ("fc1",))],
                norm="ln", requant=("q", "k", "v", "sv")),
}
ARCHS["gemma3"] = ARCHS["gemma3_text"]
BMMS = ("qk", "sv")
#: Named re-quantization placements (see the module docstring); None means ``"authors"``.
REQUANT_PLACEMENTS = ("authors", "linear-only")
#: Outputs that can be re-quantized: every linear, and SV (QKᵀ feeds the FP softmax).
REQUANTIZABLE_BMMS = ("sv",)


def requant_set(a, requant=None):
    """The set of re-quantized outputs of architecture entry ``a`` for a ``requant`` setting:
    None or ``"authors"`` (the architecture's default), ``"linear-only"`` (that default without
    SV), or an explicit list of component names."""
    if requant is None or requant == "authors":
        return set(a["requant"])
    if requant == "linear-only":
        return set(a["requant"]) - set(BMMS)
    if isinstance(requant, str):
        raise ValueError(f"requant must be one of {', '.join(REQUANT_PLACEMENTS)} or a list of "
                         f"components, not {requant!r}")
    return set(requant)


def arch(model):
    """The architecture entry of :data:`ARCHS` for a transformers causal LM."""
    mt = getattr(model.config, "model_type", None)
    if mt not in ARCHS:
        raise ValueError(f"model type {mt!r} is not supported (supported: {', '.join(ARCHS)})")
    return ARCHS[mt]


def components(model):
    """Component names of a model, in block order (Q, K, V, QKᵀ, SV, O, then the MLP)."""
    lin = list(arch(model)["linears"])
    return lin[:3] + list(BMMS) + lin[3:]


def layers(model):
    """The model's decoder layers (an nn.ModuleList)."""
    m = model
    for part in arch(model)["layers"].split("."):
        m = getattr(m, part)
    return m


def quant_rows(x):
    """Symmetric INT8 per row (last dim): (int8 tensor, FP scale with a trailing 1 dim).
    |x| <= absmax makes x * (127 / absmax) lie in [-127, 127] up to rounding, so no clamp."""
    a = x.abs().amax(-1, keepdim=True).clamp_(min=1e-8)
    return (x * (127 / a)).round_().to(torch.int8), a.div_(127)


def quant_tensor(x):
    """Symmetric INT8 per tensor: (int8 tensor, scalar FP scale broadcastable to x)."""
    a = x.abs().amax().clamp(min=1e-8).reshape([1] * x.dim())
    return (x * (127 / a)).round_().to(torch.int8), a / 127


def requant_rows(y, s):
    """Fake-quantize y to INT8 with the given scale(s) s: clamp(round(y / s), ±127) · s."""
    return (y * (1 / s)).round_().clamp_(-127, 127).mul_(s)


def dequant(acc, col_scale, row_scale):
    """acc · col_scale · row_scale in FP32 (in this order, which the injected path repeats)."""
    return acc.float().mul_(col_scale).mul_(row_scale)


def linear_out(acc, col_scale, row_scale_, bias, requant):
    """(output, re-quantization scale or None) of a linear layer: dequant, plus bias, then
    (``requant``) fake-quantized with its own per-row scale. One fused kernel when compiled;
    :class:`W8A8Linear` repeats the same per-element operations for injected elements."""
    y = acc.float().mul_(col_scale).mul_(row_scale_)
    if bias is not None:
        y.add_(bias)
    if requant:
        s = y.abs().amax(-1, keepdim=True).clamp_(min=1e-8).div_(127)
        return (y * (1 / s)).round_().clamp_(-127, 127).mul_(s), s
    return y, None


def row_scale(y):
    """Per-row INT8 scale max|y| / 127 (floored at 1e-8 / 127) with a trailing 1 dim."""
    return y.abs().amax(-1, keepdim=True).clamp_(min=1e-8).div_(127)


def scores(acc, col_scale, row_scale, scaling, mask):
    """Attention logits from the QKᵀ accumulator: dequant, times ``scaling``, plus the additive
    mask (the same operations, in the same order, as the injected path)."""
    return acc.float().mul_(col_scale).mul_(row_scale).mul_(scaling).add_(mask)


#: The elementwise kernels used by the GEMMs; :func:`use_compiled` swaps in fused versions.
K = {"quant_rows": quant_rows, "requant_rows": requant_rows, "dequant": dequant,
     "row_scale": row_scale, "scores": scores, "linear_out": linear_out}


def use_compiled(on=True):
    """Fuse the elementwise kernels with ``torch.compile`` (bit-identical, about 3x faster; the
    first call compiles for a few seconds, later processes hit the on-disk cache). Falls back to
    eager for good if compilation fails (e.g. no C++ compiler). CPU tensors only: on another
    device the eager kernels run (Triton's fused kernels may contract a multiply and an add
    into one rounding, which the CPU's do not, and nothing here has shown them bit-identical)."""
    eager = {"quant_rows": quant_rows, "requant_rows": requant_rows, "dequant": dequant,
             "row_scale": row_scale, "scores": scores, "linear_out": linear_out}
    if not on:
        K.update(eager)
        return
    for name, f in eager.items():
        c = torch.compile(f, dynamic=True)

        def safe(*a, _c=c, _f=f, _n=name):
            if a[0].device.type != "cpu":
                return _f(*a)
            try:
                return _c(*a)
            except Exception:  # noqa: BLE001 - any compile failure: keep the exact eager path
                K[_n] = _f
                return _f(*a)
        K[name] = safe


#: Reduction length of one float32 chunk of :func:`float_mm`: an int8 product is at most 2**14 in
#: magnitude, so every partial sum of up to 1024 of them is an integer within 2**24, which
#: float32 holds exactly whatever order the BLAS adds them in.
FLOAT_EXACT_K = 1024


def float_mm(a, b):
    """Exact ``a @ b`` for int8 a [M, K] and b [K, N] as int32, through float32 GEMMs over
    chunks of :data:`FLOAT_EXACT_K` along K (each chunk's sum is exact, see there; the chunks
    are added in int32, which holds the exact total for K below 2**17)."""
    af, bf = a.float(), b.float()
    out = None
    for s in range(0, a.shape[1], FLOAT_EXACT_K):
        c = (af[:, s:s + FLOAT_EXACT_K] @ bf[s:s + FLOAT_EXACT_K]).to(torch.int32)
        out = c if out is None else out.add_(c)
    return out


def _int_mm_padded(a, b):
    """``torch._int_mm`` outside its documented domain (M > 16, K and N multiples of 8; CUDA
    checks it, the CPU kernel does not need it) by zero-padding, which leaves the product
    unchanged."""
    m, k = a.shape
    n = b.shape[1]
    pm, pk, pn = max(0, 17 - m), -k % 8, -n % 8
    if pm or pk:
        a = F.pad(a, (0, pk, 0, pm))
    if pk or pn:
        b = F.pad(b, (0, pn, 0, pk))
    c = torch._int_mm(a, b)
    return c[:m, :n] if (pm or pn) else c


#: The exact INT8 GEMMs: the same int32 result, at very different speeds per CPU (torch's
#: ``_int_mm`` runs about 2.4 G MAC/s on an AVX2-only EPYC core, its float32 GEMMs about 50 G).
INT_MM = {"int_mm": _int_mm_padded, "float32": float_mm}
_chosen = {}  # device type -> backend name


def int_mm_backend(device="cpu"):
    """The name of the exact GEMM of :data:`INT_MM` used on ``device``: on the CPU the faster
    one on this machine, timed once per process on a 256 x 576 @ 576 x 576 product (every
    backend gives the same bits); on a GPU always ``int_mm`` (cuBLAS's integer GEMM: float32
    GEMMs there may round through TF32, which is not exact)."""
    kind = torch.device(device).type
    if kind != "cpu":
        return "int_mm"
    if kind not in _chosen:
        import time
        g = torch.Generator().manual_seed(0)
        a = torch.randint(-128, 128, (256, 576), generator=g, dtype=torch.int8)
        b = torch.randint(-128, 128, (576, 576), generator=g, dtype=torch.int8)
        best = {}
        for name, fn in INT_MM.items():
            fn(a, b)
            t0 = time.perf_counter()
            fn(a, b)
            best[name] = time.perf_counter() - t0
        _chosen[kind] = min(best, key=best.get)
    return _chosen[kind]


def _row_major(x):
    """``x`` on the CPU; elsewhere ``x`` contiguous (row-major), the one operand layout
    cuBLASLt's integer GEMM takes on every GPU: it refuses a transposed left operand, and with
    CUDA 11.7 it summed a transposed right operand wrongly (PyTorch's ``test__int_mm``)."""
    return x if x.device.type == "cpu" else x.contiguous()


def int_mm(a, b):
    """Exact ``a @ b`` for int8 a [M, K] and b [K, N] as int32 on their device, by that
    device's backend (:func:`int_mm_backend`)."""
    return INT_MM[int_mm_backend(a.device)](_row_major(a), _row_major(b))


class Runtime:
    """State shared by every quantized GEMM of one model: the injector (None = clean), the current
    stage, the sequence (window) index, per-(component, layer) call counters, the reduction
    length ``k`` of the GEMM being hooked and an optional log of the calls
    ``(component, layer, call, numel, shape, k)``."""

    def __init__(self, per_tensor=False):
        self.per_tensor = per_tensor
        self.injector = None
        #: None, or a callable ``capture(component, layer, call, a, b, acc)`` given every
        #: GEMM's INT8 operands and INT32 accumulator (:mod:`realm.crosslayer.capture`): linears
        #: ``a`` [M, K] @ ``b`` [K, N]; attention BMMs ``a`` [B, H, T, K] @ ``b`` [B, G, K, N]
        #: with head ``h`` using ``b[:, h // (H / G)]``.
        self.capture = None
        self.stage = "prefill"
        self.window = 0
        self.calls = {}
        self.log = None
        self.k = None
        self.requant_sv = False  # SV output re-quantized (set by :func:`quantize`)

    def start(self, window, stage="prefill"):
        """Begin a new sequence: reset call counters."""
        self.window, self.stage, self.calls = window, stage, {}

    def hook(self, component, layer, acc, k, operands=None):
        """Called with every accumulator, its GEMM's reduction length ``k`` and a function
        returning its INT8 operands ``(a, b)`` (for :attr:`capture`); returns the injector's
        (idx, new) or None."""
        key = (component, layer)
        call = self.calls.get(key, 0)
        self.calls[key] = call + 1
        self.k = k
        if self.capture is not None and operands is not None:
            self.capture(component, layer, call, *operands(), acc)
        if self.log is not None:
            self.log.append((component, layer, call, acc.numel(), tuple(acc.shape), k))
        if self.injector is None:
            return None
        return self.injector(component, layer, call, self.stage, self.window, acc)


class W8A8Linear(nn.Module):
    """An nn.Linear as INT8 weights (per output channel or per tensor) × INT8 activations (per
    token or per tensor) with an INT32 accumulator; see the module docstring."""

    def __init__(self, linear, component, layer, rt, requant=False):
        super().__init__()
        self.component, self.layer, self.rt, self.requant = component, layer, rt, requant
        w = linear.weight.detach().float()
        wq, ws = quant_tensor(w) if rt.per_tensor else quant_rows(w)
        self.register_buffer("wq", wq.t().contiguous())  # [in, out]: the K x N operand
        self.register_buffer("ws", ws.reshape(1, -1) if not rt.per_tensor else ws.reshape(1, 1))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.out_features = w.shape[0]

    def accumulate(self, x2):
        """(int32 accumulator [M, out], activation scale [M, 1], INT8 activations [M, in]) for
        a 2-D input."""
        xq, xs = quant_tensor(x2) if self.rt.per_tensor else K["quant_rows"](x2)
        return int_mm(xq, self.wq), xs, xq

    def forward(self, x):
        shape = x.shape
        acc, xs, xq = self.accumulate(x.reshape(-1, shape[-1]))
        n = self.out_features
        hit = self.rt.hook(self.component, self.layer, acc, self.wq.shape[0],
                           lambda: (xq, self.wq))
        if not self.rt.per_tensor:
            y, s = K["linear_out"](acc, self.ws, xs, self.bias, self.requant)
            if hit is not None:  # the clean output's scale s (authors' code)
                idx, new = hit
                r, c = idx // n, idx % n
                v = new.float() * self.ws.reshape(-1)[c]
                v *= xs.reshape(-1)[r]
                if self.bias is not None:
                    v += self.bias[c]
                if self.requant:
                    sr = s.reshape(-1)[r]
                    v = (v * (1 / sr)).round_().clamp_(-127, 127).mul_(sr)
                y.view(-1)[idx] = v
            return y.view(*shape[:-1], n)
        y = K["dequant"](acc, self.ws, xs)
        if self.bias is not None:
            y.add_(self.bias)
        if self.requant:  # the clean output's scale (authors' code)
            s = (y.abs().amax().clamp(min=1e-8).div(127) if self.rt.per_tensor
                 else K["row_scale"](y))
        if hit is not None:
            idx, new = hit
            v = new.float() * self.ws.reshape(-1)[idx % n if self.ws.numel() > 1 else 0]
            v *= xs.reshape(-1)[idx // n if xs.numel() > 1 else 0]
            if self.bias is not None:
                v += self.bias[idx % n]
            y.view(-1)[idx] = v
        if self.requant:
            y = K["requant_rows"](y, s)
        return y.view(*shape[:-1], n)


def _int_bmm(a, b, groups):
    """int32 [H, T, N] = a [H, T, K] @ b [G, K, N] where head h uses b[h // (H / G)]; one
    ``int_mm`` per group with its heads stacked along the rows (GQA)."""
    a, b = _row_major(a), _row_major(b)
    h, t, _ = a.shape
    rep = h // groups
    n = b.shape[-1]
    out = torch.empty(h, t, n, dtype=torch.int32, device=a.device)
    direct = int_mm_backend(a.device) == "int_mm"
    for g in range(groups):
        ag = a[g * rep:(g + 1) * rep].reshape(rep * t, -1)
        if direct and t * rep > 16 and ag.shape[1] % 8 == 0 and n % 8 == 0:
            torch._int_mm(ag, b[g], out=out[g * rep:(g + 1) * rep].view(rep * t, n))
        else:
            out[g * rep:(g + 1) * rep] = int_mm(ag, b[g]).view(rep, t, n)
    return out


def _bmm_batch(a, b, groups):
    """:func:`_int_bmm` over the batch dimension (no copy for batch 1)."""
    if a.shape[0] == 1:
        return _int_bmm(a[0], b[0], groups)[None]
    return torch.stack([_int_bmm(a[i], b[i], groups) for i in range(a.shape[0])])


def _bmm_out(acc, row_scale, col_scale, hit, only_hits=False, requant=False):
    """FP output of a BMM accumulator [B, H, T, N]: acc · col_scale [B, H, 1, N] · row_scale
    [B, H, T, 1] (either may be a per-tensor scalar), with the injected elements replaced (or,
    with ``only_hits``, just the values of the injected elements). With ``requant`` (``"rows"``
    or ``"tensor"``) the result is fake-quantized to INT8 per row (over N) or per tensor with the
    *clean* output's scale (as the authors' code does)."""
    idx, new = hit if hit is not None else (None, None)
    if idx is not None:
        _, _, t, n = acc.shape
        cs = col_scale.reshape(-1)
        rs = row_scale.reshape(-1)
        v = new.float() * (cs[(idx // (t * n)) * n + idx % n] if cs.numel() > 1 else cs[0])
        v *= rs[idx // n] if rs.numel() > 1 else rs[0]
        if only_hits:
            return v
    y = K["dequant"](acc, col_scale, row_scale)
    if requant:
        s = y.abs().amax().clamp(min=1e-8).div(127) if requant == "tensor" else K["row_scale"](y)
    if idx is not None:
        y.view(-1)[idx] = v
    return K["requant_rows"](y, s) if requant else y


def int8_attention(module, query, key, value, attention_mask, scaling, dropout=0.0,
                   sliding_window=None, **kwargs):
    """Attention with INT8 QKᵀ and SV BMMs (transformers attention-interface signature).

    query [B, H, T, d]; key, value [B, Hkv, S, d] (after RoPE and the KV-cache update). The
    additive mask, if given, is [B, 1, T, S'] with S' >= S; without one, a causal mask is built.
    Softmax runs in FP32 (the paper: nonlinear functions stay in FP)."""
    rt, layer = module._realm_rt, module.layer_idx
    per_tensor = rt.per_tensor
    qf = quant_tensor if per_tensor else K["quant_rows"]
    b_, h, t, _ = query.shape
    g, s_len = key.shape[1], key.shape[2]
    rep = h // g
    # QKᵀ: Q per token (rows), K per token (its tokens are the output columns).
    q8, qs = qf(query)
    k8, ks = qf(key)
    k8t = k8.transpose(-1, -2)
    acc = _bmm_batch(q8, k8t, g)  # [B, H, T, S]
    ks_h = ks if per_tensor else ks.transpose(-1, -2).repeat_interleave(rep, 1)
    hit = rt.hook("qk", layer, acc, query.shape[-1], lambda: (q8, k8t))
    m = None if attention_mask is None else attention_mask[..., :s_len]
    if m is not None and m.dtype != torch.bool:
        scores = K["scores"](acc, ks_h, qs, scaling, m)  # fused, same result as below
        if hit is not None:  # the same per-element operations as _bmm_out, then scale and mask
            idx, new = hit
            v = _bmm_out(acc, qs, ks_h, hit, only_hits=True).mul_(scaling)
            v += m.expand(acc.shape)[torch.unravel_index(idx, acc.shape)]
            scores.view(-1)[idx] = v
    else:
        scores = _bmm_out(acc, qs, ks_h, hit).mul_(scaling)
        if m is not None:
            scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else \
                scores.add_(m)
    if m is None and t > 1:
        dev = scores.device
        pos = torch.arange(s_len - t, s_len, device=dev)[:, None]
        keys = torch.arange(s_len, device=dev)[None, :]
        keep = keys <= pos
        if sliding_window:
            keep &= keys > pos - sliding_window
        scores = scores.masked_fill(~keep, float("-inf"))
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    # SV: P per row; V per channel, i.e. quantized along its reduction axis S ("permuted", as in
    # the authors' code).
    p8, ps = qf(probs)
    if per_tensor:
        v8, vs = quant_tensor(value)
    else:
        a = value.abs().amax(-2, keepdim=True).clamp_(min=1e-8)  # [B, G, 1, d]
        v8, vs = (value * (127 / a)).round_().to(torch.int8), a.div_(127)
    acc = _bmm_batch(p8, v8, g)  # [B, H, T, d]
    vs_h = vs if per_tensor else vs.repeat_interleave(rep, 1)
    out = _bmm_out(acc, ps, vs_h, rt.hook("sv", layer, acc, s_len, lambda: (p8, v8)),
                   requant=rt.requant_sv and ("tensor" if per_tensor else "rows"))
    return out.transpose(1, 2).contiguous(), None


def register_attention():
    """Register ``realm_int8`` with transformers (attention function and its additive mask)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register("realm_int8", int8_attention)
    AttentionMaskInterface.register("realm_int8", eager_mask)


def _get(mod, path):
    for p in path.split("."):
        mod = getattr(mod, p)
    return mod


def _set(mod, path, new):
    parent, _, name = path.rpartition(".")
    setattr(_get(mod, parent) if parent else mod, name, new)


@torch.no_grad()
def calibrate(model, windows):
    """Per-channel max|X| of the input of every smoothing group, over FP32 forwards of
    ``windows`` (LongTensor [n, L]): {(layer, norm name): tensor [hidden]}."""
    a = arch(model)
    stats, handles = {}, []
    for i, blk in enumerate(layers(model)):
        for norm, comps in a["smooth"]:
            key = (i, norm)

            def hook(_m, args, key=key):
                x = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0)
                stats[key] = torch.maximum(stats[key], x) if key in stats else x

            handles.append(_get(blk, a["linears"][comps[0]]).register_forward_pre_hook(hook))
    try:
        for w in windows:
            model(input_ids=w[None], use_cache=False)
    finally:
        for hd in handles:
            hd.remove()
    return stats


@torch.no_grad()
def smooth(model, act_scales, alpha=0.5):
    """Fold SmoothQuant scales into each norm and the linears it feeds (in place)."""
    a = arch(model)
    for i, blk in enumerate(layers(model)):
        for norm_name, comps in a["smooth"]:
            norm = getattr(blk, norm_name)
            lins = [_get(blk, a["linears"][c]) for c in comps]
            wmax = torch.stack([ln.weight.abs().amax(0) for ln in lins]).amax(0).clamp(min=1e-5)
            xmax = act_scales[(i, norm_name)].clamp(min=1e-5)
            s = (xmax.pow(alpha) / wmax.pow(1 - alpha)).clamp(min=1e-5)
            if a["norm"] == "rms1":  # y = (1 + w) * x_hat
                norm.weight.copy_((1 + norm.weight) / s - 1)
            else:
                norm.weight.div_(s)
                if getattr(norm, "bias", None) is not None:
                    norm.bias.div_(s)
            for ln in lins:
                ln.weight.mul_(s.view(1, -1))


@torch.no_grad()
def quantize(model, act_scales=None, alpha=0.5, per_tensor=False, requant=None):
    """Turn an FP32 model into the W8A8 integer model in place and return its :class:`Runtime`.

    ``act_scales`` from :func:`calibrate` enable smoothing (None: no smoothing). ``requant`` names
    the re-quantized outputs (:func:`requant_set`; default: the authors' placement)."""
    a = arch(model)
    if act_scales is not None:
        smooth(model, act_scales, alpha)
    rt = Runtime(per_tensor=per_tensor)
    requant = requant_set(a, requant)
    rt.requant_sv = "sv" in requant
    for i, blk in enumerate(layers(model)):
        for comp, path in a["linears"].items():
            _set(blk, path, W8A8Linear(_get(blk, path), comp, i, rt, comp in requant))
        attn = _get(blk, a["linears"]["q"].rpartition(".")[0])
        attn._realm_rt = rt
        if not hasattr(attn, "layer_idx"):
            attn.layer_idx = i
    register_attention()
    model.set_attn_implementation("realm_int8")
    model._realm_rt = rt
    return rt
