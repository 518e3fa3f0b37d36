"""Task metrics on the W8A8 model (paper Sec. IV): perplexity and next-token top-1 accuracy on the
same teacher-forced pass, and greedy generation with a KV cache for the prefill/decode study (the
authors' code's stage split: prefill is the first forward, decode the single-token steps).

:class:`Evaluator` makes injected runs cheap. Its clean pass records, per window, the output of
every decoder layer and the shape of every GEMM call. An injected run first asks the injector which
is the first layer that can receive a fault in that window (the draws are per call and seeded per
call, :mod:`realm.llm.inject`); windows with no fault reuse the clean result, and the others start
from the cached hidden state entering that layer. Both shortcuts give bit-identical results to a
full recomputation (tested).

Token windows and prompts may be given on any device; they are moved to the model's.
"""
import math

import torch
import torch.nn.functional as F

from realm.llm import quant


def _nll(logits, targets):
    """(summed NLL, number correct) of next-token predictions; a non-finite NLL becomes inf."""
    nll = F.cross_entropy(logits.float(), targets, reduction="sum").item()
    correct = int((logits.argmax(-1) == targets).sum())
    return (nll if math.isfinite(nll) else math.inf), correct


def summarize(nll, correct, tokens):
    """{"ppl", "acc", "nll"} from totals."""
    mean = nll / tokens
    return {"ppl": math.exp(mean) if mean < 700 else math.inf, "acc": correct / tokens,
            "nll": mean}


class Evaluator:
    """Perplexity and top-1 accuracy of a quantized model over fixed windows [n, L]."""

    def __init__(self, model, rt, windows, reuse=True):
        windows = windows.to(model.device)
        self.model, self.rt, self.windows, self.reuse = model, rt, windows, reuse
        self._skip = None  # (first computed layer, cached input of it) during a run
        self._rec = None
        for i, layer in enumerate(quant.layers(model)):
            self._wrap(layer, i)
        self.cache, self.logs, self.clean = [], [], []
        rt.injector = None
        with torch.no_grad():
            for w in range(len(windows)):
                self._rec, rt.log = [], []
                self.clean.append(self._run(w))
                self.cache.append(self._rec if reuse else None)
                self.logs.append(rt.log)
        self._rec, rt.log = None, None
        self.tokens = windows.shape[0] * (windows.shape[1] - 1)
        self.baseline = summarize(sum(c[0] for c in self.clean), sum(c[1] for c in self.clean),
                                  self.tokens)

    def _wrap(self, layer, i):
        orig = layer.forward

        def forward(*args, **kwargs):
            if self._skip is not None and i < self._skip[0]:
                out = self._skip[1]  # a copy: the cache must survive in-place use downstream
                return out.clone() if torch.is_tensor(out) else tuple(
                    o.clone() if torch.is_tensor(o) else o for o in out)
            out = orig(*args, **kwargs)
            if self._rec is not None:
                self._rec.append(out)
            return out

        layer.forward = forward

    def _run(self, w, start=0):
        x = self.windows[w]
        self.rt.start(w, "prefill")
        if start > 0:
            self._skip = (start, self.cache[w][start - 1])
        try:
            logits = self.model(input_ids=x[None], use_cache=False).logits[0, :-1]
        finally:
            self._skip = None
        return _nll(logits, x[1:])

    def first_layer(self, injector, w):
        """The first layer whose GEMMs may be corrupted in window ``w``, or None."""
        for comp, layer, call, numel, *_ in self.logs[w]:
            if injector.may_fault(comp, layer, call, "prefill", w, numel):
                return layer
        return None

    @torch.no_grad()
    def run(self, injector=None):
        """Metrics with ``injector`` (None = clean): {"ppl", "acc", "nll", "faults", "computed"}
        where ``faults`` counts corrupted elements and ``computed`` the windows recomputed."""
        nll = correct = 0.0
        computed = 0
        self.rt.injector = injector
        count0 = injector.count if injector is not None else 0
        try:
            for w in range(len(self.windows)):
                start = self.first_layer(injector, w) if injector is not None else None
                if start is None:
                    n, c = self.clean[w]
                else:
                    n, c = self._run(w, start if self.reuse else 0)
                    computed += 1
                nll, correct = nll + n, correct + c
        finally:
            self.rt.injector = None
        out = summarize(nll, correct, self.tokens)
        out["faults"] = (injector.count - count0) if injector is not None else 0
        out["computed"] = computed
        return out


@torch.no_grad()
def generate(model, rt, prompts, new_tokens, injector=None):
    """Greedy continuation of each prompt (LongTensor [P, Lp]) by ``new_tokens`` tokens, using the
    KV cache; the runtime's stage is ``prefill`` for the first forward and ``decode`` after.
    Returns LongTensor [P, new_tokens]."""
    rt.injector = injector
    outs = []
    try:
        for i, p in enumerate(prompts.to(model.device)):
            rt.start(i, "prefill")
            res = model(input_ids=p[None], use_cache=True)
            tok = res.logits[0, -1].argmax()
            toks = [tok]
            rt.stage = "decode"
            for _ in range(new_tokens - 1):
                res = model(input_ids=tok.view(1, 1), past_key_values=res.past_key_values,
                            use_cache=True)
                tok = res.logits[0, -1].argmax()
                toks.append(tok)
            outs.append(torch.stack(toks))
    finally:
        rt.injector = None
    return torch.stack(outs)


def agreement(tokens, clean):
    """{"agree": mean fraction of generated tokens equal to the clean ones, "prefix": mean
    fraction before the first difference, "exact": fraction of identical continuations}."""
    eq = tokens == clean
    first = torch.where(eq.all(1), eq.shape[1], (~eq).int().argmax(1))
    return {"agree": eq.float().mean().item(),
            "prefix": (first.float() / eq.shape[1]).mean().item(),
            "exact": eq.all(1).float().mean().item()}
