"""Time the fast path (:mod:`realm.rtl.fastsim`) of whichever checkout is first on the path on
the ``realm bench`` workload: the 4n x 4n @ 4n x 4n GEMM of a 16x16 realm array with the fault
port, and one seeded fault-campaign trial on it (:func:`realm.rtl.bench.bench_faults`' draw).
Uses only ``build``, ``encode_program``, ``simulate`` and ``decode_trace``, which every version
has, so the code before and after a change can be run side by side::

    PYTHONPATH=<checkout> python tools/fastpath_compare.py --tag NAME --out FILE.json

Prints and writes (appending to ``FILE.json``, a list) the median and the best wall and CPU
seconds of ``--runs`` runs of each step per dataflow (best: of any run, step by step), the load
average, the code timed (path in its checkout and commit) and a digest of the decoded trace
(equal digests: equal traces)."""
import argparse
import hashlib
import json
import os
import pathlib
import time

from golden.faultgen import trial_faults
from golden.stats import policy_sets
from hw.config import ArrayConfig
from realm.rtl import fastsim
from realm.rtl.gemm import gemm_program


def measure(config, runs):
    """Median seconds (wall, CPU) of each fast-path step on the bench workload of ``config``."""
    shape = (4 * config.rows,) * 3
    program = policy_sets(config) + [("select", 2)] + gemm_program(config, shape, 1)[1]
    faults = trial_faults(config, program, 1, 1)[0]
    lib = fastsim.build(config)
    steps = {"encode": [], "simulate": [], "decode": [], "total": []}
    for _ in range(runs + 1):  # the first run warms up, untimed
        times = []
        t, c = time.perf_counter(), time.process_time()
        data = fastsim.encode_program(config, program, faults)
        times.append((time.perf_counter(), time.process_time()))
        table = fastsim.simulate(lib, data)
        times.append((time.perf_counter(), time.process_time()))
        trace = fastsim.decode_trace(config, table)
        times.append((time.perf_counter(), time.process_time()))
        marks = [(t, c)] + times
        for (step, (t0, c0)), (t1, c1) in zip(zip(steps, marks), marks[1:]):
            steps[step].append((t1 - t0, c1 - c0))
        steps["total"].append((marks[-1][0] - t, marks[-1][1] - c))
    digest = hashlib.sha256(json.dumps(trace).encode()).hexdigest()[:16]
    median = {k: [sorted(x[i] for x in v[1:])[runs // 2] for i in (0, 1)]
              for k, v in steps.items()}
    best = {k: [min(x[i] for x in v[1:]) for i in (0, 1)] for k, v in steps.items()}
    return {"config": config.id, "cycles": len(trace), "faults": len(faults),
            "macs": shape[0] * shape[1] * shape[2], "trace_sha256": digest,
            **{f"{k}_wall_s": v[0] for k, v in median.items()},
            **{f"{k}_cpu_s": v[1] for k, v in median.items()},
            **{f"{k}_best_wall_s": v[0] for k, v in best.items()},
            **{f"{k}_best_cpu_s": v[1] for k, v in best.items()}}


def source():
    """Which code was timed: ``fastsim``'s path inside its checkout and that checkout's commit
    (None outside a git checkout), never a machine path."""
    import subprocess

    path = pathlib.Path(fastsim.__file__).resolve()
    root = path.parents[2]
    git = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return {"source": str(path.relative_to(root)),
            "commit": git.stdout.strip() if git.returncode == 0 else None}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True, help="name of this checkout in the output")
    p.add_argument("--out", required=True, help="JSON list to append to")
    p.add_argument("--runs", type=int, default=9, help="timed runs per step (default 9)")
    p.add_argument("--size", type=int, default=16, help="array size n (default 16)")
    a = p.parse_args()
    out = pathlib.Path(a.out)
    rows = json.loads(out.read_text()) if out.exists() else []
    for dataflow in ("ws", "os"):
        config = ArrayConfig(rows=a.size, cols=a.size, dataflow=dataflow, abft="realm",
                             fault_port=True)
        r = {"tag": a.tag, **source(), **measure(config, a.runs), "loadavg": os.getloadavg()}
        rows.append(r)
        print(f"{a.tag:<8} {r['config']:<18} encode {r['encode_wall_s'] * 1e3:6.2f} simulate "
              f"{r['simulate_wall_s'] * 1e3:6.2f} decode {r['decode_wall_s'] * 1e3:6.2f} total "
              f"{r['total_wall_s'] * 1e3:6.2f} ms wall ({r['total_cpu_s'] * 1e3:6.2f} CPU; "
              f"{r['macs'] / r['total_wall_s'] / 1e6:5.1f} M MAC/s) load "
              f"{r['loadavg'][0]:.2f} trace {r['trace_sha256']}")
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
