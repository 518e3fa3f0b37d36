"""``realm bench`` (simulated MAC/s, :mod:`realm.rtl.bench`) and ``realm bench-ray`` (campaign
points/s on 1, 2 and more Ray workers, :mod:`realm.campaign.bench_ray`)."""
import argparse

from .args import POSITIVE, BadInput, Failed, array_sizes, comma_list, command, need
from .paths import existing, writable


def add(sub):
    b = command(sub, "bench", check=check_bench, run=run_bench,
                help="simulated MAC/s: Verilator (cocotb and the fast path) vs Amaranth pysim "
                "vs golden",
                description="Simulated MACs per wall second of one GEMM (4n x 4n @ 4n x 4n) per "
                "array size n and dataflow, on the array with the realm checksums and the fault "
                "port and a seeded fault list that changes the product, through Verilator under "
                "cocotb, the fast path (Verilator in a compiled harness; its encode, simulate "
                "and decode apart), Amaranth's simulator (one tile) and the golden model; every "
                "trace is required equal. Then the golden model on a fault campaign, one trial "
                "at a time and a batch of trials at once.")
    b.add_argument("--sizes", type=array_sizes, default=[16, 64],
                   help="square array sizes, comma-separated (default 16,64)")
    b.add_argument("--no-pysim", action="store_true", help="leave out Amaranth's simulator")
    b.add_argument("--cocotb-max", type=POSITIVE, default=16, metavar="N",
                   help="run cocotb only on arrays up to N x N (default 16: its 64x64 build "
                   "takes hours here); above, the fast path is checked against the golden "
                   "model")
    b.add_argument("-o", "--output", default="build/bench/array.json", metavar="FILE",
                   help="JSON result (default build/bench/array.json; the same as CSV "
                   "beside it, array.csv, and the batched golden model's, golden_batch.json)")
    b.add_argument("--golden-only", action="store_true",
                   help="only the batched golden model's figure (no Verilator, no pysim)")
    b.add_argument("--batch", type=POSITIVE, default=1024,
                   help="trials of the batched golden model (default 1024)")
    b.add_argument("--batch-sizes", type=array_sizes, default=[16],
                   help="square array sizes of the batched golden model (default 16)")
    b.add_argument("--threads", type=POSITIVE, default=1,
                   help="torch threads of the batched golden model (default 1)")
    b.add_argument("--reps", type=POSITIVE, default=3,
                   help="timed runs per figure: cocotb's GEMM, the batched golden model "
                   "(default 3)")

    from realm.campaign.bench_ray import DEFAULT_OUT, HOST
    from realm.campaign.bench_ray import __doc__ as doc
    r = command(sub, "bench-ray", check=check_ray, run=run_ray, raw=True, description=doc,
                help="points/s of one sweep on 1, 2 and more Ray workers (a local multi-node "
                "cluster)")
    r.add_argument("--workers", type=_counts, default=[1, 2, 4],
                   help="worker counts, comma-separated, the first 1 (default 1,2,4)")
    r.add_argument("--nodes", type=POSITIVE, default=3,
                   help=f"Ray nodes started on {HOST} (default 3)")
    r.add_argument("--cpus", type=POSITIVE, default=2, help="CPUs each node declares (default 2)")
    r.add_argument("--points", type=POSITIVE, default=108,
                   help="points of the default tiny sweep (default 108)")
    r.add_argument("--spec", metavar="FILE", help="a campaign spec to run instead of the tiny "
                   "sweep")
    r.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"work directory (default {DEFAULT_OUT})")


def _counts(text):
    vals = comma_list(int, what="worker counts", ok=lambda v: v >= 1)(text)
    if vals[0] != 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated worker counts starting with "
                                         f"1, not {text!r}")
    return vals


def check_bench(a):
    need("sim")
    a.output = writable(a.output, "--output")


def run_bench(a):
    from realm.rtl.bench import bench
    return bench(a.output, a.sizes, cocotb_max=a.cocotb_max, pysim=not a.no_pysim,
                 golden_only=a.golden_only, batch=a.batch, batch_sizes=a.batch_sizes,
                 threads=a.threads, reps=a.reps)


def check_ray(a):
    need("llm", "ray")
    if max(a.workers) > a.nodes * a.cpus:
        raise BadInput(f"{max(a.workers)} workers do not fit on {a.nodes} nodes of {a.cpus} "
                       "CPUs")
    from realm.campaign.executor import Engine, EngineError
    try:
        Engine("ray")
    except EngineError as e:
        raise BadInput(str(e)) from None
    if a.spec:
        from realm.campaign.spec import expand, load_spec
        expand(load_spec(existing(a.spec, "--spec")))
    writable(a.out, "--out", folder=True)


def run_ray(a):
    from realm.campaign.bench_ray import bench
    try:
        return bench(a.out, a.workers, a.nodes, a.cpus, a.points, a.spec)
    except RuntimeError as e:
        raise Failed(str(e)) from None
