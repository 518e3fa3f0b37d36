"""Campaign runner: spec validation (one-line errors), resume after a kill with nothing lost or
repeated, torn-line recovery, the summary's mean and 95 % CI, and the CLI's --help."""
import json
import math
import os
import subprocess
import sys

import pytest

from realm.campaign import runner as campaign
from realm.campaign.spec import SpecError, expand, point_key
from realm.llm import report
from realm.llm.tiny import tiny_model_dir
from tb import llm_fixtures
from tb.cli_fixtures import realm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model_dir(str(tmp_path_factory.mktemp("llm") / "tiny"))


def _spec(tiny, **over):
    s = {"model": tiny, "text": os.path.join(tiny, "text.txt"),
         "calib_text": os.path.join(tiny, "text.txt"), "windows": 2, "length": 32,
         "calib_windows": 2, "calib_length": 32, "seeds": [0, 1],
         "gen": {"prompts": 2, "prompt_len": 24, "new_tokens": 4},
         "experiments": [{"name": "c", "components": ["o", "qk", ["q", "k"]],
                          "bers": [1e-3, 1e-2]}]}
    s.update(over)
    return s


def test_expand_counts_and_keys(tiny):
    spec = _spec(tiny, experiments=[
        {"name": "a", "components": ["o", "all"], "layers": ["all", 1, [0, 1]],
         "bits": [30, [0, 29]], "bers": [0, 1e-4, 1]},
        {"name": "b", "metric": "gen", "stages": ["prefill", "decode"], "bers": [1e-3]},
        {"name": "m", "mode": "msd", "components": ["k"], "msd_log2": [10, 20],
         "freq_log2": [0, 3], "seeds": [5]}])
    settings, pts = expand(spec)
    assert len(pts) == 2 * 3 * 2 * 3 * 2 + 2 * 2 + 4
    assert len({point_key(p) for p in pts}) == len(pts)
    allc = next(p for p in pts if p["experiment"] == "a" and len(p["components"]) > 1)
    assert allc["components"] == ["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"]
    assert {p["seed"] for p in pts if p["experiment"] == "m"} == {5}
    assert settings["windows"] == 2 and "seeds" not in settings


@pytest.mark.parametrize("exp,msg", [
    ({"components": ["o", "fc9"], "bers": [1e-3]},
     "experiment 'x': unknown component 'fc9' (known: q, k, v, qk, sv, o, gate, up, down)"),
    ({"bers": [1e-3, 1.5]}, "experiment 'x': BER 1.5 is outside [0, 1]"),
    ({"bers": [-1e-3]}, "experiment 'x': BER -0.001 is outside [0, 1]"),
    ({"bers": []}, "experiment 'x': bers must be a non-empty list"),
    ({"mode": "msd", "components": ["k"], "msd_log2": [20], "freq_log2": [0, 12]},
     "experiment 'x': freq 2^12 is larger than the 1024-element k GEMM"),
    ({"mode": "msd", "components": ["qk"], "msd_log2": [20], "freq_log2": [13]},
     "experiment 'x': freq 2^13 is larger than the 4096-element qk GEMM"),
    ({"layers": [2], "bers": [1e-3]}, "experiment 'x': layer 2 is not in 0..1"),
    ({"bits": [32], "bers": [1e-3]}, "experiment 'x': bit 32 must be 0..31 or [lo, hi]"),
    ({"stages": ["decode"], "bers": [1e-3]},
     "experiment 'x': stage 'decode' needs metric 'gen' (the perplexity pass is a single "
     "prefill)"),
    ({"metric": "acc", "bers": [1e-3]}, "experiment 'x': metric must be one of ppl, gen, not "
     "'acc'"),
    ({"ber": [1e-3]}, "experiment 'x': unknown key 'ber'"),
])
def test_bad_specs_rejected_with_one_line(tiny, exp, msg):
    with pytest.raises(SpecError) as e:
        expand(_spec(tiny, experiments=[{"name": "x", **exp}]))
    assert str(e.value) == msg


def test_bad_global_keys(tiny):
    with pytest.raises(SpecError, match="^unknown spec key 'window' "):
        expand(_spec(tiny, window=3))
    with pytest.raises(SpecError, match="^windows must be an integer >= 2, not 0$"):
        expand(_spec(tiny, windows=0))
    with pytest.raises(SpecError, match="^spec needs a non-empty 'experiments' list$"):
        expand(_spec(tiny, experiments=[]))


def test_cli_bad_spec_exits_with_one_line(tiny, tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(_spec(tiny, experiments=[{"name": "x", "bers": [2]}])))
    r = realm("llm", "campaign", p)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "realm llm campaign: error: experiment 'x': BER 2 is outside [0, 1]"]


def _metrics(path):
    _, done = campaign.read_results(path)
    return {k: {m: v[m] for m in ("ppl", "acc", "faults")} for k, v in done.items()}


def test_resume_after_kill_loses_and_repeats_nothing(tiny, tmp_path):
    spec = _spec(tiny)
    sp = tmp_path / "spec.json"
    sp.write_text(json.dumps(spec))
    ref = tmp_path / "ref.jsonl"
    assert campaign.run(spec, str(ref), workers=1, threads=1, progress=False,
                        compile=False) == 12
    out = tmp_path / "spec.jsonl"
    cmd = [sys.executable, "-m", "realm", "llm", "campaign", str(sp), "--workers", "1",
           "--threads", "1", "--no-compile", "--no-progress"]
    # killed early (header + 2 points), so that a loaded machine cannot finish the 12 first
    llm_fixtures.kill_after_lines(cmd, out, 3, REPO, timeout=90)
    n_before = len(campaign.read_results(str(out))[1])
    assert 2 <= n_before < 12, n_before
    with open(out, "a") as f:
        f.write('{"point": {"experiment": "c", "met')  # a write torn by the kill
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 12  # header + every point exactly once
    assert _metrics(str(out)) == _metrics(str(ref))
    # a finished campaign has nothing left to do
    assert campaign.run(spec, str(out), workers=1, progress=False, compile=False) == 0


def test_resume_with_other_settings_or_environment_refused(tiny, tmp_path, monkeypatch):
    """The header records the settings and the environment; a resume with other settings, or
    where torch picks other CPU kernels (which alone moves the W8A8 model), is refused before any
    point runs, and one where nothing changed goes on (also from a header written before the
    environment named the device). Mutants: either check dropped, or the environment not
    written."""
    import torch

    from realm.campaign import worker
    spec = _spec(tiny, experiments=[{"name": "c", "bers": [0]}], seeds=[0, 1])
    out = tmp_path / "r.jsonl"
    assert campaign.run(spec, str(out), progress=False, compile=False, limit=1) == 1
    header, _ = campaign.read_results(str(out))
    here = torch.backends.cpu.get_cpu_capability()
    assert header["env"] == worker.environment() and header["env"]["cpu_capability"] == here
    with pytest.raises(SpecError, match="other settings \\(length: 32 there, 40 here\\)"):
        campaign.run({**spec, "length": 40}, str(out), progress=False, compile=False)
    with monkeypatch.context() as m:
        m.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "NO_SUCH_ISA")
        with pytest.raises(SpecError, match=f"another environment \\(cpu_capability: "
                           f"'{here}' there, 'NO_SUCH_ISA' here\\)"):
            campaign.run(spec, str(out), progress=False, compile=False)
    assert len(campaign.read_results(str(out))[1]) == 1
    # a header written before the environment named the device was a CPU run's: it goes on
    lines = out.read_text().splitlines(keepends=True)
    old = json.loads(lines[0])
    assert old["env"].pop("device") == "cpu"
    out.write_text(json.dumps(old) + "\n" + "".join(lines[1:]))
    assert campaign.run(spec, str(out), progress=False, compile=False) == 1


def test_summary_mean_and_ci(tmp_path):
    path = tmp_path / "r.jsonl"
    base = {"experiment": "e", "metric": "ppl", "mode": "bitflip", "components": ["o"],
            "layers": None, "stage": "prefill", "bits": [30, 30], "ber": 1e-4}
    with open(path, "w") as f:
        f.write(json.dumps({"kind": "header", "settings": {}, "baseline": {
            "fp32": {"ppl": 10.0, "acc": 0.5}, "w8a8": {"ppl": 10.2, "acc": 0.5}}}) + "\n")
        for seed, ppl in enumerate([10.0, 12.0, 14.0]):
            f.write(json.dumps({"point": {**base, "seed": seed}, "ppl": ppl, "acc": 0.4,
                                "nll": math.log(ppl), "faults": seed}) + "\n")
    rows = report.summarize(str(path), str(tmp_path))
    assert len(rows) == 1 and rows[0]["n"] == 3 and rows[0]["ppl"] == 12.0
    assert rows[0]["ppl_ci95"] == pytest.approx(4.303 * 2.0 / 3 ** 0.5)
    assert rows[0]["acc_ci95"] == 0.0 and rows[0]["faults"] == 1.0
    assert rows[0]["ppl_geo"] == pytest.approx((10.0 * 12.0 * 14.0) ** (1 / 3))
    md = (tmp_path / "summary.md").read_text()
    assert "| o | all | prefill | 30 | 12 ± 5 |" in md
    assert (tmp_path / "summary.csv").read_text().startswith("experiment,metric,mode")
    assert report.plot(str(path), str(tmp_path)) == ["e.png"]
    assert (tmp_path / "e.png").stat().st_size > 1000


def test_help_explains_every_subcommand():
    r = realm("llm", "--help")
    assert r.returncode == 0
    for sub in ("convert", "eval", "bench", "campaign", "summarize", "fit", "abft"):
        assert f"\n    {sub}" in r.stdout


def test_scale_cache_key_covers_code_versions_and_kernels(tmp_path, monkeypatch):
    """The activation-scale cache key changes with each thing the calibrated values depend on
    beyond the settings: the calibration code, torch, transformers and the CPU kernel set (a
    kernel switch alone moves the W8A8 model: docs/results/README.md); it is the same when none
    changes. Mutants: any of them left out of the key."""
    import shutil

    import torch
    import transformers

    from realm.campaign import worker
    from realm.llm import quant
    text = tmp_path / "calib.txt"
    text.write_text("some calibration text\n")
    settings = {"calib_windows": 2, "calib_length": 32}

    def key():
        return worker.scales_key("m", str(text), settings)

    base = key()
    assert key() == base and len(base) == 16
    assert worker.scales_key("m", str(text), {**settings, "calib_windows": 3}) != base
    changed = []
    for obj, attr, value in ((torch, "__version__", "0.0.0"),
                             (transformers, "__version__", "0.0.0")):
        with monkeypatch.context() as m:
            m.setattr(obj, attr, value)
            changed.append(key())
    with monkeypatch.context() as m:
        m.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "NO_SUCH_ISA")
        changed.append(key())
    code = tmp_path / "code"
    code.mkdir()
    here = os.path.dirname(os.path.abspath(quant.__file__))
    for f in ("quant.py", "loader.py"):
        shutil.copy(os.path.join(here, f), code / f)
    with monkeypatch.context() as m:
        m.setattr(quant, "__file__", str(code / "quant.py"))
        changed.append(key())          # the same code elsewhere: the same key
        (code / "loader.py").write_text((code / "loader.py").read_text() + "\n# edited\n")
        changed.append(key())
    assert changed[3] == base
    assert len({base, changed[0], changed[1], changed[2], changed[4]}) == 5


def test_a_second_campaign_on_the_same_results_file_is_refused(tmp_path):
    """While one campaign holds a results file's lock, another on the same file is refused
    before it reads or repairs anything (two writers would interleave their lines); the lock
    goes with the first. Mutant: no lock."""
    out = str(tmp_path / "r.jsonl")
    bad = {"windows": 1, "experiments": []}   # refused by the spec check, before any model
    with campaign.exclusive(out):
        with pytest.raises(SpecError, match="another campaign is writing .*r.jsonl"):
            campaign.run(bad, out, progress=False)
    with pytest.raises(SpecError, match="windows must be an integer >= 2"):   # the lock is free
        campaign.run(bad, out, progress=False)
