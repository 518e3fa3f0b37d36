"""The executor seam (:mod:`realm.campaign.executor`): longest first, each result handed over once,
failed points counted after the others ran; and the Ray engine on a local Ray started here on
the loopback: the same result lines as the local engine, a worker killed mid-run losing and
repeating nothing, a killed driver resumed, every point failing exits 1, a bad ``--address`` is
one line. The Ray tests share one cluster per pytest worker (each xdist worker that gets one
starts its own: xdist's ``loadgroup`` does not work with pytest 9's node ids)."""
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from golden.params import StatParams, write_params
from realm.abft import loop as abft
from realm.campaign import executor
from realm.campaign import runner as campaign
from realm.campaign.executor import Engine, EngineError, Job, PointsFailed
from realm.campaign.spec import GLOBAL, point_key
from realm.llm.tiny import tiny_model_dir
from tb import llm_fixtures
from tb.cli_fixtures import realm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-m", "realm", "llm", "campaign"]
RUN = ["--threads", "1", "--no-compile", "--no-progress"]
N_POINTS = 2 * 3 * 2 + 2 + 2 * 2 * 2

# A toy job, run in this process (one local worker pickles nothing).
_TOY = {}


def _toy_init(scale):
    _TOY["scale"] = scale


def _toy_run(point):
    if point.get("fail"):
        raise ValueError(f"point {point['i']}\nfails")
    return {"i": point["i"], "v": point["i"] * _TOY["scale"]}


def _events(path):
    with open(path) as f:
        return [json.loads(x) for x in f.read().splitlines() if x.endswith("}")]


def test_local_runs_longest_first_and_logs_beside():
    got = []
    n = executor.run(Job(_toy_init, _toy_run, (3,)), [{"i": i} for i in range(5)],
                     on_result=lambda p, r: got.append(r), cost=lambda p: p["i"] * 7 % 5)
    assert n == 5 and got == [{"i": i, "v": 3 * i} for i in (2, 4, 1, 3, 0)]


def test_failed_points_are_counted_after_the_others_ran(tmp_path, capsys):
    got, log = [], tmp_path / "run.log.jsonl"
    pts = [{"i": i, "fail": i in (1, 3)} for i in range(5)]
    with pytest.raises(PointsFailed) as e:
        executor.run(Job(_toy_init, _toy_run, (1,)), pts, on_result=lambda p, r: got.append(r),
                     log=str(log))
    assert [r["i"] for r in got] == [0, 2, 4]
    first = 'point {"fail": true, "i": 1}: ValueError: point 1 fails'
    assert str(e.value) == ("2 of 5 points failed (left out of the results: rerun to retry "
                            f"them); the first: {first}")
    assert [x for x in capsys.readouterr().err.splitlines() if x.startswith("failed: ")] == [
        f"failed: {first}", 'failed: point {"fail": true, "i": 3}: ValueError: point 3 fails']
    ev = _events(log)
    assert [x["event"] for x in ev] == ["start", "ready", "point", "failed", "point", "failed",
                                        "point", "end"]
    assert (ev[-1]["run"], ev[-1]["failed"]) == (3, 2)
    assert ev[2]["worker"] == f"{socket.gethostname()}:{os.getpid()}"


class _Twice(Engine):
    """An engine whose every result arrives twice, as a retried task's may."""

    def execute(self, job, points, workers, log):
        for p in points:
            out = {"ok": True, "record": dict(p), "seconds": 0.0, "worker": "x:1"}
            yield p, out
            yield p, out


def test_a_result_arriving_twice_is_handed_over_once():
    got = []
    assert executor.run(Job(_toy_init, _toy_run), [{"i": i} for i in range(3)],
                        engine=_Twice(), on_result=lambda p, r: got.append(r)) == 3
    assert got == [{"i": 0}, {"i": 1}, {"i": 2}]


@pytest.mark.parametrize("name, address, message", [
    ("gpu", None, "engine must be one of local, ray, not 'gpu'"),
    ("local", "auto", "--address goes with --engine ray"),
    ("ray", "head", "--address must be auto or HOST:PORT, not 'head'"),
    ("ray", "head:0", "--address must be auto or HOST:PORT, not 'head:0'"),
    ("ray", ":6379", "--address must be auto or HOST:PORT, not ':6379'"),
])
def test_bad_engine_is_one_line(name, address, message):
    with pytest.raises(EngineError) as e:
        Engine(name, address)
    assert str(e.value) == message


def test_ray_missing_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(EngineError) as e:
        Engine("ray", "auto")
    assert str(e.value) == "--engine ray needs Ray, an optional extra: pip install 'realm-sa[ray]'"


def test_cost_puts_the_closed_loop_first_and_dmr_last():
    s = {**GLOBAL}
    flip = {"metric": "ppl", "components": ["q", "k"]}
    loop = {**flip, "array": "8x8-ws", "policy": "realm"}
    assert campaign.point_cost(loop, s) > campaign.point_cost(flip, s) > campaign.point_cost(
        {**loop, "policy": "dmr"}, s) > 0


# The LLM campaign on the tiny model, local and on Ray.
@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    d = tmp_path_factory.mktemp("executor")
    tiny = tiny_model_dir(str(d / "tiny"))
    text = os.path.join(tiny, "text.txt")
    params = str(d / "params.json")
    p = StatParams.from_paper(1.273, 20.076 - 9 * 0.273, 2.0)
    write_params(params, abft.parse_array("8x8-ws"), {c: (p, None) for c in ("k", "o")},
                      model="tiny")
    return {"model": tiny, "text": text, "calib_text": text, "windows": 2, "length": 128,
            "calib_windows": 2, "calib_length": 32, "seeds": [0, 1],
            "gen": {"prompts": 2, "prompt_len": 16, "new_tokens": 4},
            "experiments": [
                {"name": "flip", "components": ["o", "qk", ["q", "k"]], "bers": [1e-3, 1e-2]},
                {"name": "gen", "metric": "gen", "components": ["v"], "bers": [1e-2]},
                {"name": "loop", "components": ["k", "o"], "bers": [1e-3], "bits": [[0, 29]],
                 "arrays": ["8x8-ws"], "params": params, "policies": ["none", "realm"]}]}


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory):
    """The local engine's result lines (one worker, in this process), sorted."""
    out = tmp_path_factory.mktemp("ref") / "ref.jsonl"
    assert campaign.run(spec, str(out), workers=1, threads=1, progress=False,
                        compile=False) == N_POINTS
    return sorted(out.read_text().splitlines())


@pytest.fixture(scope="module")
def cluster():
    """A local Ray on 127.0.0.2 (2 CPUs, no dashboard) for this module; its GCS address. The
    loopback, but not 127.0.0.1, which Ray replaces with the machine's outward address when a
    driver connects."""
    import ray
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ctx = ray.init(address="local", num_cpus=2, include_dashboard=False,
                   object_store_memory=80 * 2 ** 20, _node_ip_address="127.0.0.2",
                   logging_level=logging.WARNING)
    yield ctx.address_info["gcs_address"]
    ray.shutdown()


def _workers(log):
    return [e["worker"] for e in _events(log) if e["event"] == "point"]


def test_ray_writes_the_local_lines(spec, reference, cluster, tmp_path):
    out = tmp_path / "ray.jsonl"
    assert campaign.run(spec, str(out), workers=2, threads=1, progress=False, compile=False,
                        engine=Engine("ray", cluster)) == N_POINTS
    assert sorted(out.read_text().splitlines()) == reference
    workers = set(_workers(campaign.log_path(str(out))))
    assert len(workers) == 2 and f"{socket.gethostname()}:{os.getpid()}" not in workers


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(spec, reference, cluster, tmp_path):
    out = tmp_path / "kill.jsonl"
    log = campaign.log_path(str(out))
    ran = []
    t = threading.Thread(target=lambda: ran.append(campaign.run(
        spec, str(out), workers=2, threads=1, progress=False, compile=False,
        engine=Engine("ray", cluster))))
    t.start()
    victim, deadline = None, time.time() + 120
    while victim is None and t.is_alive() and time.time() < deadline:
        done = _workers(log) if os.path.exists(log) else []
        if done:  # both workers are busy: the first result's worker is running its next point
            victim = int(done[0].rpartition(":")[2])
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.01)
    t.join(300)
    assert victim is not None and ran == [N_POINTS]
    assert sorted(out.read_text().splitlines()) == reference  # every point once, as local
    pids = [int(w.rpartition(":")[2]) for w in _workers(log)]
    assert len(set(pids)) == 3 and pids.index(victim) < len(pids) - 1  # a restarted worker


def test_a_killed_driver_resumes(spec, reference, cluster, tmp_path):
    sp, out = tmp_path / "spec.json", tmp_path / "spec.jsonl"
    sp.write_text(json.dumps(spec))
    cmd = CLI + [str(sp), "--workers", "2", *RUN, "--engine", "ray", "--address", cluster]
    llm_fixtures.kill_after_lines(cmd, out, 1 + 4, REPO)
    before = len(campaign.read_results(str(out))[1])
    assert 4 <= before < N_POINTS
    with open(out, "a") as f:
        f.write('{"point": {"experiment": "flip", "met')  # a write torn by the kill
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{N_POINTS - before} points run; ")
    assert sorted(out.read_text().splitlines()) == reference


def _failing(spec, tmp_path):
    """More prompts than the text holds: every point raises in its worker (the prompts are cut
    there, after the model loaded). Its spec file, and the first point's key."""
    bad = {**spec, "gen": {"prompts": 400, "prompt_len": 64, "new_tokens": 2},
           "experiments": [{"name": "g", "metric": "gen", "components": ["o"],
                            "bers": [1e-3]}]}
    sp = tmp_path / "bad.json"
    sp.write_text(json.dumps(bad))
    return sp, point_key({"experiment": "g", "metric": "gen", "mode": "bitflip",
                                   "components": ["o"], "layers": None, "stage": "both",
                                   "bits": [30, 30], "ber": 0.001, "seed": 0})


FAILED = ("2 of 2 points failed (left out of the results: rerun to retry them); the first: "
          "point {}: TextError: ")


def test_every_point_failing_exits_1(spec, tmp_path):
    sp, point = _failing(spec, tmp_path)
    r = realm("llm", "campaign", sp, "--workers", "1", *RUN)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert lines[-1].startswith("realm llm campaign: error: " + FAILED.format(point))
    assert "fewer than the 256 + 400 windows x 64 the run needs" in lines[-1]
    assert len([x for x in lines if x.startswith("failed: point ")]) == 2
    assert len((tmp_path / "bad.jsonl").read_text().splitlines()) == 1  # the header alone


def test_every_point_failing_on_ray_raises(spec, cluster, tmp_path):
    sp, point = _failing(spec, tmp_path)
    out = tmp_path / "bad.jsonl"
    with pytest.raises(PointsFailed) as e:
        campaign.run(json.loads(sp.read_text()), str(out), workers=1, threads=1,
                     progress=False, compile=False, engine=Engine("ray", cluster))
    assert (e.value.failed, e.value.total) == (2, 2)
    assert str(e.value).startswith(FAILED.format(point))
    assert "fewer than the 256 + 400 windows" in str(e.value)
    assert len(out.read_text().splitlines()) == 1


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, message", [
    (["--engine", "ray", "--address", "127.0.0.1:{port}"],
     "--address 127.0.0.1:{port}: no Ray cluster answers there (Connection refused)"),
    (["--engine", "ray", "--address", "head"], "--address must be auto or HOST:PORT, not 'head'"),
    (["--address", "auto"], "--address goes with --engine ray"),
])
def test_bad_address_is_one_line_before_any_model(spec, tmp_path, args, message):
    port = _free_port()  # nothing listens there
    sp = tmp_path / "spec.json"
    sp.write_text(json.dumps(spec))
    r = realm("llm", "campaign", sp, *RUN, *(x.format(port=port) for x in args))
    assert (r.returncode, r.stderr.splitlines()) == (
        2, [f"realm llm campaign: error: {message.format(port=port)}"])
    assert not (tmp_path / "spec.jsonl").exists()
