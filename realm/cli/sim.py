"""``realm sim`` and ``realm run``: a GEMM through the generated RTL under Verilator (cocotb, or
the compiled harness with ``--fast``), checked and summarized (:mod:`realm.rtl.simulate`)."""
import time

from .args import BadInput, command, config_args, config_from_args, int_list, need
from .paths import existing, writable

#: Arrays this large or larger take minutes to build under cocotb: say so before building.
SLOW_BUILD_PES = 32 * 32


def add(sub):
    s = command(sub, "sim", check=check, run=run_sim,
                help="run a GEMM through the RTL and check it",
                description="Push a tiled GEMM with seeded LLM-like INT8 operands through the "
                "generated Verilog under Verilator; check every output on every cycle against "
                "the golden model and the product against an int64 oracle; print a summary "
                "and write it as JSON. With --fast, a compiled harness runs it instead of "
                "cocotb, without the per-cycle golden check.")
    config_args(s, abft=None)
    s.add_argument("--gemm", type=int_list(3), default=[64, 64, 64], metavar="M,K,N",
                   help="GEMM shape, M x K times K x N (default 64,64,64)")
    _gemm_args(s, "result")

    r = command(sub, "run", check=check, run=run_run,
                help="multiply your own matrices on the RTL",
                description="Compute A @ B on the generated RTL (Verilator) and check it as "
                "`sim` does. A and B are .npy files or .csv/.txt files of integers, INT8 "
                "values (data_width bits) each.")
    config_args(r, abft=None)
    r.add_argument("--a", required=True, metavar="FILE", help="left operand A (M x K)")
    r.add_argument("--b", required=True, metavar="FILE", help="right operand B (K x N)")
    r.add_argument("--product", default="build/sim/product.npy", metavar="FILE",
                   help="where A @ B goes (INT64 values of the INT32 accumulators), .npy or "
                   ".csv (default build/sim/product.npy)")
    _gemm_args(r, "run")


def _gemm_args(p, stem):
    p.add_argument("--seed", type=int, default=1, help="seed of the operands and stimulus "
                   "(default 1)")
    p.add_argument("--faults", metavar="FILE", help="JSON fault list to inject (see README); "
                   "the array gets the fault port")
    p.add_argument("--params", metavar="FILE", help="program the statistical unit's parameter "
                   "sets from a realm-params/1 file (realm llm fit writes them; the array must "
                   "be the file's)")
    p.add_argument("--component", help="whose parameter set the tiles use (default: the "
                   "file's first component)")
    p.add_argument("--fast", action="store_true",
                   help="simulate in a compiled Verilator harness with no Python per cycle "
                   "(built once per configuration) instead of cocotb; the golden model is not "
                   "run, the product is still checked")
    p.add_argument("--waves", action="store_true",
                   help="build with tracing and write the waveform to "
                   "build/sim/waves/<id>-waves-gemm.vcd (also WAVES=1)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help=f"JSON result (default build/sim/{stem}-<id>.json)")
    p.set_defaults(stem=stem)


def check(a):
    """Every argument of ``sim``/``run``: the configuration (``a.config``), the fault list
    (``a.fault_list``), the parameter program (``a.param_program``), the operands and the
    output paths, before anything is built."""
    from hw.config import Abft
    need("sim")
    if a.seed < 0:
        raise BadInput(f"--seed must be a non-negative integer, not {a.seed}")
    if a.component and not a.params:
        raise BadInput("--component needs --params")
    if a.fast and a.waves:
        raise BadInput("--fast writes no waveform: drop --waves or --fast")
    a.note = None
    if a.abft is None:
        a.abft = "realm" if a.faults or a.params else "none"
        if a.faults or a.params:  # said when the run starts, after every check
            a.note = (f"note        {'--faults' if a.faults else '--params'}: using the realm "
                      "ABFT variant (set --abft to choose; --abft none injects into the "
                      "unprotected array)")
    config = config_from_args(a)
    if a.params and config.abft is not Abft.REALM:
        raise BadInput(f"--params programs the statistical unit: it needs --abft realm, not "
                       f"--abft {a.abft}")
    a.fault_list = a.param_program = None
    if a.params:
        from realm.rtl.gemm import param_program
        existing(a.params, "--params")
        config, a.param_program = param_program(a.params, config, a.component)
    if a.faults:
        from golden.faults import load_faults
        existing(a.faults, "--faults")
        config = config.replace(fault_port=True)
        a.fault_list = load_faults(a.faults, config, port=True)
    if a.fast:  # the compiler and make are there, before anything is generated
        from realm.rtl import fastsim, sim
        sim.setup_environment()
        try:
            fastsim.check_tools()
        except fastsim.FastSimError as e:
            raise BadInput(str(e)) from None
    if a.run is run_run:
        _check_operands(a, config)
    a.config = config
    a.out = writable(a.output or f"build/sim/{a.stem}-{config.id}.json", "--output")


def _check_operands(a, config):
    from realm.rtl.simulate import check_operands, load_matrix
    a.x, a.w = load_matrix(a.a, "--a"), load_matrix(a.b, "--b")
    check_operands(config, a.x, a.w)
    a.product = writable(a.product, "--product")
    if a.product.suffix not in (".npy", ".csv"):
        raise BadInput(f"--product must end in .npy or .csv, not {str(a.product)!r}")


def _gemm(a, gemm, **kw):
    """Run the GEMM through cocotb or, with ``--fast``, the compiled harness."""
    from realm.rtl.simulate import run_gemm, run_gemm_fast
    config = a.config
    if a.note:
        print(a.note)
    if a.fast:
        return run_gemm_fast(config, gemm, a.seed, a.out, faults=a.faults,
                             params=a.param_program, **kw)
    if config.rows * config.cols >= SLOW_BUILD_PES:
        print(f"building    {config.id} for cocotb (Verilator with every signal public): "
              f"{_build_estimate(config)} on a 2-core machine, once per configuration; "
              "--fast builds a harness without Python per cycle, several times faster")
    return run_gemm(config, gemm, a.seed, a.out, waves=a.waves, faults=a.faults,
                    params=a.param_program, **kw)


def _build_estimate(config):
    """A rough cocotb build time from the PE count (measured: 16x16 12 s, 32x32 about 1 min,
    64x64 over an hour)."""
    pes = config.rows * config.cols
    return "about a minute" if pes <= 32 * 32 else "tens of minutes to hours"


def run_sim(a):
    from realm.rtl.simulate import report
    t0 = time.perf_counter()
    r = _gemm(a, a.gemm)
    return report(a.config, r, a.out, t0, a.fault_list)


def run_run(a):
    import numpy as np

    from realm.rtl.simulate import report
    operands = a.out.with_suffix(".operands.npz")
    np.savez(operands, x=a.x, w=a.w)
    raw = a.out.with_suffix(".product.npy")
    t0 = time.perf_counter()
    r = _gemm(a, [a.x.shape[0], a.x.shape[1], a.w.shape[1]], operands=operands, product=raw)
    c = np.load(raw)
    if a.config.acc_width <= 32:  # the accumulators' values fit, and the file says INT32
        c = c.astype(np.int32)
    if a.product.suffix == ".npy":
        np.save(a.product, c)
    else:
        np.savetxt(a.product, c, fmt="%d", delimiter=",")
    status = report(a.config, r, a.out, t0, a.fault_list, own=True)
    print(f"product     {a.product} ({c.shape[0]}x{c.shape[1]}, INT{a.config.acc_width} "
          f"accumulators, stored as {c.dtype})")
    return status
