"""``realm bench-ray`` (``make bench-ray``): points per second and scaling efficiency of one
campaign on 1, 2 and several Ray workers, on a multi-node Ray cluster this command starts on
the loopback (``ray start --head`` plus ``ray start --address`` nodes on 127.0.0.2, stopped at
the end). The cluster and this command use Ray's token authentication (``RAY_AUTH_MODE``,
default ``token``).

The sweep is the LLM campaign of ``--spec``, or by default a bit-flip sweep of a tiny random
LLaMA built under ``--out`` (no download). Each worker count runs the whole sweep into a fresh
results file; its rate is the points over the time from the workers being ready (models
loaded) to the last result (the run log's ``ready`` and last ``point`` events), and its
efficiency that rate over the worker count times the one-worker rate. Every run's results must
be the same lines. Writes ``OUT/bench.json``; the cluster's logs go to ``OUT/cluster/``.
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

DEFAULT_OUT = "build/bench/ray"
#: The nodes' address: on the loopback, but not 127.0.0.1, which Ray would replace with this
#: machine's outward address when connecting.
HOST = "127.0.0.2"


class LocalCluster:
    """``nodes`` Ray nodes of ``cpus`` CPUs each on :data:`HOST`: one ``ray start --head`` and
    ``nodes - 1`` ``ray start --address`` processes, each with ``--block`` in a process group
    of its own, so that stopping the group (by its id) stops that node and nothing else."""

    def __init__(self, nodes, cpus, logs):
        self.nodes, self.cpus, self.logs, self.procs = nodes, cpus, pathlib.Path(logs), []
        self.address = f"{HOST}:{_free_port()}"

    def __enter__(self):
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self._start("head", ["--head", f"--port={self.address.rsplit(':', 1)[1]}",
                                 "--include-dashboard=false"])
            self._wait(lambda: _answers(self.address), 60, f"the head at {self.address}")
        except BaseException:
            self.__exit__()
            raise
        return self

    def add_nodes(self):
        """Start the other nodes one by one (started together, they collide), each waited
        for until it has joined; this process must be connected to the cluster."""
        import ray
        for n in range(1, self.nodes):
            self._start(f"node{n}", [f"--address={self.address}"])
            self._wait(lambda: sum(x["Alive"] for x in ray.nodes()) > n, 120, f"node {n}")

    def _start(self, name, extra):
        ray = os.path.join(os.path.dirname(sys.executable), "ray")
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
               "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}
        with open(self.logs / f"{name}.log", "w") as log:
            self.procs.append(subprocess.Popen(
                [ray, "start", "--block", f"--node-ip-address={HOST}",
                 f"--num-cpus={self.cpus}", "--disable-usage-stats",
                 "--dashboard-agent-listen-port=0", *extra],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))

    def _wait(self, ok, seconds, what):
        deadline = time.time() + seconds
        while not ok():
            if self.procs[-1].poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{what} did not start; see {self.logs}")
            time.sleep(0.2)

    def __exit__(self, *exc):
        import signal
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        # the head's note of "the" running cluster (--address auto reads it); `ray stop`
        # would remove it, a stopped --block head does not
        note = _ray_temp_dir() / "ray_current_cluster"
        if note.exists() and note.read_text().strip() == self.address:
            note.unlink()


def _ray_temp_dir():
    """Ray's default temporary directory (where a head leaves its cluster note)."""
    try:
        from ray._common.utils import get_default_ray_temp_dir
        return pathlib.Path(get_default_ray_temp_dir())
    except ImportError:  # another Ray version: its documented default
        import tempfile
        return pathlib.Path(tempfile.gettempdir()) / "ray"


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _answers(address):
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def tiny_spec(out, points):
    """A bit-flip sweep of about ``points`` points on a tiny random LLaMA under ``out``."""
    from realm.llm.tiny import tiny_model_dir
    tiny = tiny_model_dir(str(pathlib.Path(out).resolve() / "tiny"), layers=4)
    text = os.path.join(tiny, "text.txt")
    from golden.faults import LLAMA_COMPONENTS
    comps = list(LLAMA_COMPONENTS)
    seeds = max(1, -(-points // (len(comps) * 2)))
    return {"model": tiny, "text": text, "calib_text": text, "windows": 8, "length": 256,
            "calib_windows": 2, "calib_length": 64, "seeds": list(range(seeds)),
            "experiments": [{"name": "bench", "components": comps, "bers": [1e-4, 1e-3]}]}


def rate(log):
    """(points, seconds from ``ready`` to the last point, nodes the workers ran on) of the last
    run in a run log."""
    events = [json.loads(x) for x in pathlib.Path(log).read_text().splitlines()]
    start = max(i for i, e in enumerate(events) if e["event"] == "start")
    run = events[start:]
    ready = next(e for e in run if e["event"] == "ready")
    done = [e["time"] for e in run if e["event"] == "point"]
    return len(done), max(done) - ready["time"], len({w["node"] for w in ready["workers"]})


def bench(out, workers=(1, 2, 4), nodes=3, cpus=2, points=108, spec=None):
    """Run the sweep (the campaign spec file ``spec``, or the tiny one of ``points`` points) on
    each worker count of ``workers`` on ``nodes`` local Ray nodes of ``cpus`` CPUs; print the
    table, write ``out/bench.json``; return 0 if every run gave the same results, else 1."""
    from realm.campaign import runner as campaign
    from realm.campaign.executor import Engine
    from realm.campaign.spec import expand, load_spec
    out = pathlib.Path(out)
    spec = load_spec(spec) if spec else tiny_spec(out, points)
    n_points = len(expand(spec)[1])
    rows, lines = [], {}
    os.environ.setdefault("RAY_AUTH_MODE", "token")  # as the cluster's nodes
    with LocalCluster(nodes, cpus, out / "cluster") as cluster:
        engine = Engine("ray", cluster.address)
        engine.connect()
        cluster.add_nodes()
        for w in workers:
            res = out / f"workers{w}.jsonl"
            for path in (res, pathlib.Path(campaign.log_path(str(res)))):
                path.unlink(missing_ok=True)
            t0 = time.perf_counter()
            campaign.run(spec, str(res), workers=w, threads=1, progress=False, compile=False,
                         engine=engine)
            wall = time.perf_counter() - t0
            n, secs, used = rate(campaign.log_path(str(res)))
            lines[w] = sorted(res.read_text().splitlines())
            rows.append({"workers": w, "nodes": used, "points": n, "seconds": round(secs, 2),
                         "points_per_s": n / secs, "wall_with_setup_s": round(wall, 1),
                         "load": os.getloadavg()[0]})
        import ray
        ray.shutdown()
    base = rows[0]["points_per_s"] / rows[0]["workers"]
    for r in rows:
        r["efficiency"] = r["points_per_s"] / (r["workers"] * base)
    same = all(v == lines[workers[0]] for v in lines.values())
    doc = {"nodes": nodes, "cpus_per_node": cpus, "cores": os.cpu_count(),
           "points": n_points, "spec": spec or "tiny", "same_results": same, "rows": rows}
    (out / "bench.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{n_points} points, {nodes} Ray nodes x {cpus} CPUs on {HOST}, "
          f"{os.cpu_count()} cores")
    print(f"{'workers':>7} {'nodes':>5} {'points/s':>9} {'efficiency':>10} "
          f"{'s (ready->last)':>15} {'s (with set-up)':>15} {'load':>5}")
    for r in rows:
        print(f"{r['workers']:7d} {r['nodes']:5d} {r['points_per_s']:9.2f} "
              f"{100 * r['efficiency']:9.0f}% "
              f"{r['seconds']:15.1f} {r['wall_with_setup_s']:15.1f} {r['load']:5.1f}")
    print(f"results identical across worker counts: {'yes' if same else 'NO'}; "
          f"wrote {out / 'bench.json'}")
    return 0 if same else 1
