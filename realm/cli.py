"""``realm``: the project's one command line.

  generate      write the Verilog of one array configuration (= python -m hw generate)
  sim           run a seeded LLM-like GEMM through the RTL (Verilator), checked every cycle
                against the golden model and against an int64 oracle; --faults injects a list;
                --fast runs a compiled harness instead of cocotb (no per-cycle golden check)
  run           the same with your own matrices (A and B as .npy or .csv); writes A @ B
  bench         simulated MAC/s of Verilator (cocotb and the fast path), Amaranth's simulator
                and the golden model
  synth         area, timing and power of every ABFT variant (= python -m synth)
  characterize  regenerate the LLM resilience results docs/results/ (= python -m golden.llm
                characterize)
  llm           the W8A8 LLM harness: convert, eval, bench, campaign, summarize, ... (= python
                -m golden.llm; `realm llm --help`)

`realm COMMAND --help` explains each one. Bad input is reported on one line,
``realm: error: ...``, with exit status 2, before any model is loaded or simulator built.
"""
import argparse
import pathlib
import sys
import time
from argparse import RawDescriptionHelpFormatter

from hw.__main__ import add_generate
from hw.cli import Parser, config_args, config_from_args, fail, int_list

PROG = "realm"
#: Commands handed whole to another package's command line: name -> (module, prefix args).
DELEGATED = {
    "synth": ("synth.__main__", []),
    "llm": ("golden.llm.__main__", []),
    "characterize": ("golden.llm.__main__", ["characterize"]),
}


def _gemm_args(p):
    p.add_argument("--seed", type=int, default=1, help="seed of the operands and stimulus "
                   "(default 1)")
    p.add_argument("--faults", help="JSON fault list to inject (see README)")
    p.add_argument("--params", metavar="FILE", help="program the statistical unit's parameter "
                   "sets from a realm-params/1 file (realm llm fit writes them; the array must "
                   "be the file's)")
    p.add_argument("--component", help="whose parameter set the tiles use (default: the "
                   "file's first component)")
    p.add_argument("--fast", action="store_true",
                   help="simulate in a compiled Verilator harness with no Python per cycle "
                   "(tb.fastsim; built once per configuration) instead of cocotb; the "
                   "golden model is not run, the product is still checked")
    p.add_argument("--waves", action="store_true",
                   help="build with tracing and write the waveform to "
                   "build/sim/waves/<id>-waves-gemm.vcd (also WAVES=1)")
    p.add_argument("-o", "--output", help="JSON result (default build/sim/result-<id>.json)")


def _sim_config(parser, args):
    """The configuration, parsed fault list and parameter program of a ``sim``/``run`` command
    line, every argument checked before anything is built."""
    from hw.config import Abft
    config = config_from_args(parser, args)
    faults = params = None
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, not {args.seed}")
    if args.component and not args.params:
        parser.error("--component needs --params")
    if args.fast and args.waves:
        parser.error("--fast writes no waveform: drop --waves or --fast")
    if (args.faults or args.params) and config.abft is Abft.NONE:
        config = config.replace(abft=Abft.REALM)
        print(f"note        {'--faults' if args.faults else '--params'}: using the realm ABFT "
              "variant (set --abft to choose)")
    if args.params:
        from .simulate import param_program
        try:
            config, params = param_program(args.params, config, args.component)
        except ValueError as e:
            parser.error(str(e))
    if args.faults:
        from golden.faults import FaultListError, load_faults
        config = config.replace(fault_port=True)
        try:
            faults = load_faults(args.faults, config)
        except FaultListError as e:
            parser.error(str(e))
    return config, faults, params


def _gemm(config, args, out, gemm, **kw):
    """Run the GEMM through cocotb or, with ``--fast``, the compiled harness; a harness that
    cannot be built is one error line."""
    from .simulate import SimulationError, run_gemm, run_gemm_fast
    if not args.fast:
        return run_gemm(config, gemm, args.seed, out, waves=args.waves, faults=args.faults,
                        **kw)
    try:
        return run_gemm_fast(config, gemm, args.seed, out, faults=args.faults, **kw)
    except SimulationError as e:
        fail(PROG, str(e))


def _output(args, config, stem="result"):
    out = pathlib.Path(args.output or f"build/sim/{stem}-{config.id}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def cmd_sim(parser, args):
    from .simulate import report
    config, faults, params = _sim_config(parser, args)
    out = _output(args, config)
    t0 = time.perf_counter()
    r = _gemm(config, args, out, args.gemm, params=params)
    return report(config, r, out, t0, faults)


def cmd_run(parser, args):
    import numpy as np

    from .simulate import check_operands, load_matrix, report
    config, faults, params = _sim_config(parser, args)
    try:
        x, w = load_matrix(args.a, "A"), load_matrix(args.b, "B")
        check_operands(config, x, w)
    except ValueError as e:
        parser.error(str(e))
    product = pathlib.Path(args.product)
    if product.suffix not in (".npy", ".csv"):
        parser.error(f"--product must end in .npy or .csv, not {str(product)!r}")
    out = _output(args, config, "run")
    operands = out.with_suffix(".operands.npz")
    np.savez(operands, x=x, w=w)
    raw = out.with_suffix(".product.npy")
    t0 = time.perf_counter()
    r = _gemm(config, args, out, [x.shape[0], x.shape[1], w.shape[1]], operands=operands,
              product=raw, params=params)
    c = np.load(raw)
    product.parent.mkdir(parents=True, exist_ok=True)
    if product.suffix == ".npy":
        np.save(product, c)
    else:
        np.savetxt(product, c, fmt="%d", delimiter=",")
    status = report(config, r, out, t0, faults, own=True)
    print(f"product     {product} ({c.shape[0]}x{c.shape[1]}, INT{config.acc_width})")
    return status


def cmd_bench(parser, args):
    from .bench import bench
    return bench(args)


def parser():
    """The ``realm`` argument parser (one subparser per command)."""
    p = Parser(prog=PROG, description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=Parser)
    add_generate(sub)

    s = sub.add_parser("sim", help="run a GEMM through the RTL and check it",
                       description="Push a tiled GEMM with seeded LLM-like INT8 operands through "
                       "the generated Verilog under Verilator; check every output on every "
                       "cycle against the golden model and the product against an int64 "
                       "oracle; print a summary and write it as JSON. With --fast, a "
                       "compiled harness runs it instead of cocotb, without the per-cycle "
                       "golden check.")
    config_args(s)
    s.add_argument("--gemm", type=int_list(3), default=[64, 64, 64],
                   metavar="M,K,N", help="GEMM shape, M x K times K x N (default 64,64,64)")
    _gemm_args(s)
    s.set_defaults(func=cmd_sim)

    r = sub.add_parser("run", help="multiply your own matrices on the RTL",
                       description="Compute A @ B on the generated RTL (Verilator) and check it "
                       "as `sim` does. A and B are .npy files or .csv/.txt files of integers, "
                       "INT8 values (data_width bits) each.")
    config_args(r)
    r.add_argument("--a", required=True, metavar="FILE", help="left operand A (M x K)")
    r.add_argument("--b", required=True, metavar="FILE", help="right operand B (K x N)")
    r.add_argument("--product", default="build/sim/product.npy", metavar="FILE",
                   help="where A @ B goes, .npy or .csv (default build/sim/product.npy)")
    _gemm_args(r)
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("bench", help="simulated MAC/s: Verilator (cocotb and the fast path) "
                       "vs Amaranth pysim vs golden",
                       description="Simulated MACs per wall second of one GEMM (4n x 4n @ "
                       "4n x 4n) per array size n and dataflow through Verilator under cocotb, "
                       "the fast path (Verilator in a compiled harness), Amaranth's simulator "
                       "(one tile) and the golden model; every trace is required equal.")
    b.add_argument("--sizes", type=array_sizes, default=[16, 64],
                   help="square array sizes, comma-separated (default 16,64)")
    b.add_argument("--no-pysim", action="store_true",
                   help="leave out Amaranth's simulator")
    b.add_argument("--cocotb-max", type=int, default=16, metavar="N",
                   help="run cocotb only on arrays up to N x N (default 16: its 64x64 build "
                   "takes hours here); above, the fast path is checked against the golden "
                   "model")
    b.add_argument("-o", "--output", default="build/bench/array.json", help="JSON result")
    b.set_defaults(func=cmd_bench)

    sub.add_parser("synth", help="area, timing and power of every ABFT variant",
                   add_help=False)
    sub.add_parser("characterize", help="regenerate the LLM resilience results (docs/results)",
                   add_help=False)
    sub.add_parser("llm", help="the W8A8 LLM harness (eval, campaign, bench, ...)",
                   add_help=False)
    return p


def array_sizes(text):
    """Comma-separated array sizes, each 1 to 256."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or any(not 1 <= v <= 256 for v in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated sizes from 1 to 256, not "
                                         f"{text!r}")
    return values


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        import importlib
        module, prefix = DELEGATED[argv[0]]
        prog = PROG if prefix else f"{PROG} {argv[0]}"
        return importlib.import_module(module).main(prefix + argv[1:], prog=prog) or 0
    p = parser()
    args = p.parse_args(argv)
    return args.func(p, args) or 0
