"""``--device``: the W8A8 model on the CPU or on a CUDA GPU.

The CPU path is always tested: ``--device cpu`` gives the default's results bit for bit, a CUDA
device torch does not see is one line of bad input with nothing written, and every tensor the
runtime makes follows its input's device (the ``meta`` device stands in for a GPU: a CPU tensor
next to a meta one raises, as next to a CUDA one). Where torch sees a CUDA device, the INT32
GEMMs there equal the int64 oracle bit for bit, a seed draws the same faults as on the CPU, and
every accumulator of the tiny model is the exact product of its INT8 operands."""
import argparse
import copy
import json
import os
import re

import pytest
import torch

from golden import faults as flt
from realm.llm import inject, loader, quant
from realm.llm.tiny import tiny_model_dir
from tb import llm_fixtures
from tb.cli_fixtures import realm

CUDA = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason=f"no CUDA device: torch {torch.__version__} sees none")


def _eval_settings(d):
    from realm.cli.llmopts import settings
    return settings(argparse.Namespace(model=d, text=os.path.join(d, "text.txt"), windows=2,
                                       length=32))


def test_device_cpu_is_the_default_bit_for_bit(tmp_path):
    """``realm llm eval --device cpu`` with bit flips in every GEMM: its clean and injected
    metrics equal, to the last bit, those of the library's default path (no device named), and
    its JSON records the device. Mutants: the windows, the model or the fault draws moved
    anywhere else."""
    from realm.campaign import worker
    from realm.llm import metrics

    d = tiny_model_dir(str(tmp_path / "tiny"), layers=2)
    r = realm("llm", "eval", "--model", d, "--text", os.path.join(d, "text.txt"), "--windows",
              "2", "--length", "32", "--ber", "1e-2", "--bits", "0,29", "--seed", "3",
              "--no-compile", "--threads", "1", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    model, rt, _, windows, _ = worker.prepare(_eval_settings(d))
    ev = metrics.Evaluator(model, rt, windows)
    inj = inject.Injector("bitflip", quant.components(model), ber=1e-2, bits=(0, 29), seed=3)
    assert doc["w8a8"] == ev.baseline
    assert doc["injected"] == ev.run(inj) and doc["injected"]["faults"] > 0
    assert doc["env"] == worker.environment() and doc["env"]["device"] == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a CUDA device here")
@pytest.mark.parametrize("argv", [
    ["llm", "eval", "--device", "cuda", "-o", "out/eval.json"],
    ["llm", "bench", "--device", "cuda:1"],
    ["llm", "campaign", "spec.json", "--out", "out/r.jsonl", "--device", "cuda"],
    ["llm", "abft", "--out", "out/r.jsonl", "--device", "cuda"],
    ["characterize", "--device", "cuda"],
])
def test_cuda_without_a_gpu_is_one_line(tmp_path, argv):
    """Every command that runs the model refuses a CUDA device torch does not see, in one line
    before anything loads, and writes nothing."""
    r = realm(*argv, cwd=tmp_path)
    prog = "realm " + " ".join(argv[:2] if argv[0] == "llm" else argv[:1])
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        f"{prog}: error: --device {argv[argv.index('--device') + 1]}: torch {torch.__version__} "
        "sees no CUDA device"])
    assert list(tmp_path.iterdir()) == []


def test_device_names(monkeypatch):
    """``--device`` takes cpu, cuda and cuda:N, and :func:`realm.llm.loader.device` names the
    GPUs torch sees (two here, pretended) and refuses the others."""
    r = realm("llm", "eval", "--device", "gpu")
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        "realm llm eval: error: argument --device: must be cpu, cuda or cuda:N, not 'gpu'"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert loader.device("cpu") == torch.device("cpu")
    assert loader.device("cuda") == loader.device("cuda:0") == torch.device("cuda", 0)
    assert loader.device("cuda:1") == torch.device("cuda", 1)
    version = re.escape(torch.__version__)
    with pytest.raises(loader.DeviceError, match=rf"^torch {version} sees no CUDA device 2 "
                       r"\(it sees cuda:0 to cuda:1\)$"):
        loader.device("cuda:2")
    with pytest.raises(loader.DeviceError, match=r"^device must be cpu, cuda or cuda:N, not "
                       r"'cuda:x'$"):
        loader.device("cuda:x")


def test_runtime_tensors_follow_the_input_device(tmp_path):
    """The tiny W8A8 model moved to ``meta`` runs a forward with bit flips in every GEMM: every
    INT8 operand, accumulator and injected index is on ``meta``, and the faults hit the same
    calls, as many per call, as on the CPU (the draws are CPU generators'). The causal mask
    built without a given mask, and a fault-list replay, follow the device too. Mutants: any
    tensor of the runtime made on the CPU (``torch.arange`` without a device, a mask or index
    left on the CPU) raises here."""
    model, rt, w = llm_fixtures.tiny_quantized(str(tmp_path / "tiny"), 2, 1, 32)
    seen = []
    rt.capture = lambda c, layer, call, a, b, acc: seen.append(
        (a.device.type, b.device.type, acc.device.type))

    def forward(device):
        hits = []

        def spy(c, layer, call, stage, window, acc):
            h = inj(c, layer, call, stage, window, acc)
            if h is not None:
                hits.append((c, layer, call, h[0].numel(), h[0].device.type, h[1].device.type))
            return h

        rt.injector = spy
        rt.start(0)
        mask = torch.ones(w.shape, dtype=torch.long, device=device)
        with torch.no_grad():
            out = model(input_ids=w.to(device), attention_mask=mask, use_cache=False).logits
        rt.injector = None
        return out, hits

    inj = inject.Injector("bitflip", quant.components(model), ber=3e-2, bits=(0, 29), seed=3)
    _, on_cpu = forward("cpu")
    seen.clear()
    model.to("meta")
    out, on_meta = forward("meta")
    assert out.device.type == "meta" and set(seen) == {("meta",) * 3}
    assert [h[:4] for h in on_meta] == [h[:4] for h in on_cpu] and len(on_cpu) > 10
    assert {h[4:] for h in on_meta} == {("meta", "meta")}

    class Attn:
        _realm_rt, layer_idx = quant.Runtime(), 0

    q = torch.empty(1, 4, 5, 16, device="meta")
    kv = torch.empty(1, 2, 7, 16, device="meta")
    out, _ = quant.int8_attention(Attn(), q, kv, kv, None, 0.25, sliding_window=4)
    assert out.device.type == "meta" and out.shape == (1, 5, 4, 16)
    fl = flt.parse_faults([{"site": "gemm.acc", "component": "o", "layer": 0, "call": 0,
                            "row": 1, "col": 2, "kind": "stuck1", "bit": 3}])
    idx, new = inject.Injector("faults", [], faults=fl)(
        "o", 0, 0, "prefill", 0, torch.empty(3, 4, dtype=torch.int32, device="meta"))
    assert (idx.device.type, new.device.type, idx.shape, new.shape) == ("meta", "meta", (1,), (1,))


# -- on a CUDA device ------------------------------------------------------------------------

def _oracle(a, b):
    """int64 ``a @ b`` on the CPU, as int32 (every product here fits)."""
    return (a.cpu().long() @ b.cpu().long()).to(torch.int32)


@CUDA
def test_cuda_int_mm_is_exact():
    """INT8 GEMMs on the GPU (``torch._int_mm``, zero-padded outside its domain) equal the int64
    oracle and the CPU's bits, for shapes with M <= 16 and K, N not multiples of 8, extreme
    values included; so does the grouped (GQA) BMM, with a transposed right operand as QKᵀ has
    it."""
    g = torch.Generator().manual_seed(11)
    for m, k, n in [(1, 8, 8), (5, 13, 11), (16, 24, 40), (17, 8, 8), (33, 70, 19),
                    (64, 576, 192), (300, 1031, 24)]:
        a = torch.randint(-128, 128, (m, k), generator=g, dtype=torch.int8)
        b = torch.randint(-128, 128, (k, n), generator=g, dtype=torch.int8)
        got = quant.int_mm(a.cuda(), b.cuda())
        assert got.device.type == "cuda" and got.dtype == torch.int32
        assert torch.equal(got.cpu(), _oracle(a, b)) and torch.equal(got.cpu(), quant.int_mm(a, b))
    a = torch.full((40, 2056), -128, dtype=torch.int8)
    assert torch.equal(quant.int_mm(a.cuda(), a.t().contiguous().cuda()).cpu(), _oracle(a, a.t()))
    for t, k, n in [(3, 16, 24), (17, 13, 9), (40, 64, 40)]:
        a = torch.randint(-128, 128, (4, t, k), generator=g, dtype=torch.int8)
        bt = torch.randint(-128, 128, (2, n, k), generator=g, dtype=torch.int8)
        b = bt.transpose(-1, -2)  # [G, K, N], column-major
        got = quant._int_bmm(a.cuda(), b.cuda(), 2)
        want = torch.stack([_oracle(a[h], b[h // 2]) for h in range(4)])
        assert got.device.type == "cuda" and torch.equal(got.cpu(), want)


@CUDA
def test_cuda_faults_land_where_the_cpu_puts_them():
    """The same injector (same seed) given the same accumulator on the CPU and on the GPU returns
    the same elements and new values, on the accumulator's device, for sparse and dense bit
    flips, MSD errors and a fault-list replay, and behind the ABFT loop the same kept errors and
    counts."""
    from golden.params import StatParams
    from realm.abft import loop as abft

    g = torch.Generator().manual_seed(5)
    fl = flt.parse_faults([{"site": "gemm.acc", "component": "qk", "layer": 0, "call": 0,
                            "row": 3, "col": 30, "kind": "flip", "bit": 31}])
    injectors = [inject.Injector("bitflip", ["qk"], ber=1e-2, bits=(0, 29), seed=1),
                 inject.Injector("bitflip", ["qk"], ber=0.2, seed=2),
                 inject.Injector("msd", ["qk"], msd=1 << 20, freq=5, seed=3),
                 inject.Injector("faults", [], faults=fl)]
    for shape in [(2, 4, 20, 24), (37, 50)]:
        acc = torch.randint(-(1 << 31), (1 << 31) - 1, shape, generator=g, dtype=torch.int32)
        for inj in injectors:
            if len(shape) == 2 and inj.mode == "faults":
                continue
            a, b = copy.deepcopy(inj), copy.deepcopy(inj)
            ic, nc = a("qk", 0, 0, "prefill", 0, acc)
            ig, ng = b("qk", 0, 0, "prefill", 0, acc.cuda())
            assert (ig.device.type, ng.device.type) == ("cuda", "cuda")
            assert torch.equal(ig.cpu(), ic) and torch.equal(ng.cpu(), nc)
            assert a.count == b.count > 0
        rt = quant.Runtime()
        rt.k = 64
        params = {"qk": StatParams.from_paper(1.273, 20.076, 5.951)}
        loops = [abft.AbftInjector(inject.Injector("bitflip", ["qk"], ber=3e-2, seed=4),
                                   abft.parse_array("8x8-ws"), "realm", params, rt)
                 for _ in range(2)]
        kept = [loops[0]("qk", 0, 0, "prefill", 0, acc),
                loops[1]("qk", 0, 0, "prefill", 0, acc.cuda())]
        assert kept[1][0].device.type == "cuda"
        assert all(torch.equal(x.cpu(), y) for x, y in zip(kept[1], kept[0]))
        assert loops[0].stats == loops[1].stats and loops[0].stats["errors"] > 0


@CUDA
def test_cuda_tiny_model_accumulators_are_exact(tmp_path):
    """The tiny W8A8 model on the GPU: every GEMM's INT32 accumulator equals the int64 product
    of its own INT8 operands (linears ``a @ b``; BMMs head by head, head h on group
    h // (H / G)); an injected evaluation corrupts as many elements as on the CPU, and the clean
    perplexity is the CPU's within 1 % (the FP parts round differently on the two devices; the
    integer parts cannot)."""
    from realm.llm import metrics

    model, rt, w = llm_fixtures.tiny_quantized(str(tmp_path / "tiny"), 2, 2, 32)
    inj = inject.Injector("bitflip", quant.components(model), ber=1e-2, bits=(0, 29), seed=5)
    on_cpu = metrics.Evaluator(model, rt, w)
    cpu = on_cpu.run(copy.deepcopy(inj))
    model.to("cuda")
    checked = []

    def capture(c, layer, call, a, b, acc):
        assert acc.device.type == "cuda"
        if a.dim() == 2:
            want = _oracle(a, b)
        else:
            rep = a.shape[1] // b.shape[1]
            want = _oracle(a, b.repeat_interleave(rep, 1))
        assert torch.equal(acc.cpu(), want), (c, layer, call)
        checked.append(c)

    rt.capture = capture
    on_gpu = metrics.Evaluator(model, rt, w)
    rt.capture = None
    gpu = on_gpu.run(copy.deepcopy(inj))
    assert set(checked) == set(quant.components(model)) and len(checked) == 2 * 2 * 9
    assert gpu["faults"] == cpu["faults"] > 0 and gpu["computed"] == cpu["computed"]
    assert abs(on_gpu.baseline["ppl"] / on_cpu.baseline["ppl"] - 1) < 0.01
