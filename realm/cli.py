"""``realm``: the project's one command line.

  generate      write the Verilog of one array configuration (= python -m hw generate)
  sim           run a seeded LLM-like GEMM through the RTL (Verilator), checked every cycle
                against the golden model and against an int64 oracle; --faults injects a list;
                --fast runs a compiled harness instead of cocotb (no per-cycle golden check)
  run           the same with your own matrices (A and B as .npy or .csv); writes A @ B
  bench         simulated MAC/s of Verilator (cocotb and the fast path), Amaranth's simulator
                and the golden model (one trial, and a batch of fault-campaign trials)
  crosslayer    real SmolLM2 tiles through the RTL with the LLM injector's errors as hardware
                faults, checked against every model (docs/results/crosslayer)
  synth         area, timing and power of every ABFT variant (= python -m synth)
  timing        timing errors of one PE vs supply voltage: STA (OpenSTA), SDF-annotated
                gate-level simulation (Icarus) of an operand stream, p(V) and f_e(V) table
  energy        voltage underscaling end to end: per-component voltage tables from real
                operand streams, the Monte Carlo of every protection policy, energy, sweet
                spots (docs/results/energy; `realm energy --help`)
  characterize  regenerate the LLM resilience results docs/results/ (= python -m golden.llm
                characterize)
  llm           the W8A8 LLM harness: convert, eval, bench, campaign, summarize, ... (= python
                -m golden.llm; `realm llm --help`)
  bench-ray     points per second and scaling efficiency of one campaign on 1, 2 and several
                Ray workers, on a multi-node Ray cluster started on this machine's loopback

`realm COMMAND --help` explains each one. Bad input is reported on one line,
``realm: error: ...``, with exit status 2, before any model is loaded or simulator built.
"""
import argparse
import pathlib
import sys
import time
from argparse import RawDescriptionHelpFormatter

from golden.executor import add_engine_args
from hw.__main__ import add_generate
from hw.cli import Parser, config_args, config_from_args, fail, int_list

PROG = "realm"
#: Commands handed whole to another package's command line: name -> (module, prefix args).
DELEGATED = {
    "synth": ("synth.__main__", []),
    "llm": ("golden.llm.__main__", []),
    "characterize": ("golden.llm.__main__", ["characterize"]),
    "energy": ("realm.energy", []),
    "bench-ray": ("realm.bench_ray", []),
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


def cmd_timing(parser, args):
    from hw.config import ArrayConfig
    from synth import timing, voltage
    from synth.tools import ToolUnavailable, icarus, opensta
    parser = args.subparser
    try:
        config = ArrayConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                             abft=args.abft, data_width=args.data_width,
                             acc_width=args.acc_width)
        grid = voltage.check_grid(args.grid, args.curve)
        pe = timing.select_pe(config, check=args.pe == "check", at=args.at)
        stream, name = None, None
        if args.stream != "uniform":
            stream, name = _load_stream(pe, args.stream), args.stream
    except ValueError as e:
        parser.error(str(e))
    if args.onset is not None and args.margin is not None:
        parser.error("--margin and --onset exclude each other")
    if args.onset is not None:
        try:
            voltage.check_grid([args.onset], args.curve)
        except ValueError as e:
            parser.error(f"--onset: {e}")
    try:  # fail before any work if a tool cannot be had
        opensta(), icarus()
    except ToolUnavailable as e:
        parser.error(str(e))
    out = pathlib.Path(args.out or f"build/timing/{pe.name}")
    print(f"pe          {pe.key} at {pe.at} ({pe.count} in the array)")
    t0 = time.perf_counter()
    char = timing.characterize(pe, out / "work", stream=stream, cycles=args.cycles,
                               seed=args.seed, k=args.k, stream_name=name)
    sta = char.sta
    reference = {"pe": pe.key, "min_period_ps": sta.min_period}
    if pe.check:  # the array's PE sets the clock
        ref = timing.select_pe(config)
        ref_netlist = timing.synthesize_pe(ref, out / "reference")
        reference = {"pe": ref.key, "at": list(ref.at),
                     "min_period_ps": timing.sta(ref_netlist, out / "reference").min_period}
    margin = voltage.MARGIN if args.margin is None else args.margin
    if args.onset is not None:
        margin = voltage.onset_margin(char.wave, reference["min_period_ps"], args.onset,
                                      args.curve)
    table, per_cycle = voltage.error_table(char.wave, grid, reference["min_period_ps"],
                                           args.curve, margin)
    table["model"]["reference"] = reference
    table["model"]["onset_v"] = args.onset
    doc = char.to_dict()
    path = voltage.write_table(out, doc, table, per_cycle)
    timing.clean(out / "work")
    wave = char.wave
    print(f"sta         accumulator critical {sta.acc_critical:.1f} ps (bit "
          f"{sta.arrival.index(sta.acc_critical)}), setup up to {sta.setup:.1f} ps, PE min "
          f"period {sta.min_period:.1f} ps ({char.seconds['sta']:.1f} s)")
    print(f"gls         {wave.cycles} cycles of {char.stream_name}, latest settle "
          f"{wave.max_settle:.1f} ps, error-free from a {wave.safe_clock:.1f} ps clock "
          f"({char.seconds['gls']:.1f} s)")
    q = [s["quantiles_ps"] for s in doc["settle"]]
    for k in sorted({0, wave.acc_width // 4, wave.acc_width // 2, wave.acc_width - 2,
                     wave.acc_width - 1}):
        print(f"  bit {k:2d}    settle 50/99/99.99/100 % = "
              f"{' / '.join(f'{x:.0f}' for x in q[k])} ps, STA {sta.arrival[k]:.0f} ps "
          f"(SDF {char.sta_sdf.arrival[k]:.0f} ps)")
    print(f"model       curve {args.curve}, margin {margin:.4f}, clock "
          f"{table['model']['clock_ps']:.1f} ps of our nominal time")
    for r in table["table"]:
        top = next(iter(r["f_e_msb"]), None)
        top = f"; most errors {top[0]}2^{top[1:]}..{top[0]}2^{int(top[1:]) + 1}" if top else ""
        print(f"  {r['v']:.3f} V  s {r['s']:.3f}  clock {r['clock_ps']:8.1f} ps  p {r['p']:.3g}  "
              f"({r['errors']} of {r['cycles']}{top})")
    print(f"wrote       {path}, {out / 'pv.csv'}, {out / 'errors.npz'} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


def _load_stream(pe, path):
    """An operand stream from a ``.npz`` file of one array per PE input."""
    import numpy as np

    from synth.timing import check_stream
    p = pathlib.Path(path)
    if p.suffix != ".npz" or not p.is_file():
        raise ValueError(f"--stream must be 'uniform' or an existing .npz file, not {path!r}")
    with np.load(p) as f:
        return check_stream(pe, {k: f[k] for k in f.files})


def cmd_bench(parser, args):
    for name in ("batch", "threads", "reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer, not {getattr(args, name)}")
    from .bench import bench
    return bench(args)


def cmd_crosslayer(parser, args):
    from golden.executor import EngineError, PointsFailed, engine_from_args
    from golden.llm.crosslayer import COMPONENTS
    args.run_engine = engine_from_args(parser, args)
    from hw.config import ArrayConfig
    try:
        ArrayConfig(rows=args.rows, cols=args.cols, abft="realm", fault_port=True)
    except ValueError as e:
        parser.error(str(e))
    bad = [c for c in args.components if c not in COMPONENTS]
    if bad:
        parser.error(f"--components: {bad[0]!r} is not one of {', '.join(COMPONENTS)}")
    bad = [d for d in args.dataflow if d not in ("ws", "os")]
    if bad:
        parser.error(f"--dataflow: {bad[0]!r} is not ws or os")
    if not 0 < args.ber <= 1e-2:
        parser.error(f"--ber must be in (0, 0.01], not {args.ber}")
    lo, hi = args.bits
    if not 0 <= lo <= hi <= 31:
        parser.error(f"--bits must be LO,HI with 0 <= LO <= HI <= 31, not {lo},{hi}")
    if args.length < 16 or args.length % 8:
        parser.error(f"--length must be a multiple of 8 from 16 on, not {args.length}")
    if min(args.clean, args.seed, args.layer, args.min_tiles) < 0 or args.jobs < 1:
        parser.error("--clean, --min-tiles, --seed and --layer must be >= 0 and --jobs >= 1")
    from golden.llm.abft import params_path
    from golden.llm.campaign import model_shape
    args.fit = params_path(args.fit, "")
    if not pathlib.Path(args.fit).is_file():
        parser.error(f"--fit: file {args.fit!r} does not exist")
    layers = model_shape("smollm2-135m")[1]
    if args.layer >= layers:
        parser.error(f"--layer must be below the model's {layers} layers, not {args.layer}")
    try:
        args.run_engine.connect()  # before the model loads
    except EngineError as e:
        parser.error(str(e))
    args.command_line = "realm crosslayer " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 \
        else "realm crosslayer"
    from .crosslayer import main
    try:
        return main(args)
    except PointsFailed as e:
        fail(PROG, str(e), status=1)


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
                       "(one tile) and the golden model; every trace is required equal. Then "
                       "the golden model on a fault campaign, one trial at a time and a batch "
                       "of trials at once.")
    b.add_argument("--sizes", type=array_sizes, default=[16, 64],
                   help="square array sizes, comma-separated (default 16,64)")
    b.add_argument("--no-pysim", action="store_true",
                   help="leave out Amaranth's simulator")
    b.add_argument("--cocotb-max", type=int, default=16, metavar="N",
                   help="run cocotb only on arrays up to N x N (default 16: its 64x64 build "
                   "takes hours here); above, the fast path is checked against the golden "
                   "model")
    b.add_argument("-o", "--output", default="build/bench/array.json", help="JSON result "
                   "(the batched golden model's beside it, golden_batch.json)")
    b.add_argument("--golden-only", action="store_true",
                   help="only the batched golden model's figure (no Verilator, no pysim)")
    b.add_argument("--batch", type=int, default=1024,
                   help="trials of the batched golden model (default 1024)")
    b.add_argument("--batch-sizes", type=array_sizes, default=[16],
                   help="square array sizes of the batched golden model (default 16)")
    b.add_argument("--threads", type=int, default=1,
                   help="torch threads of the batched golden model (default 1)")
    b.add_argument("--reps", type=int, default=3, help="timed runs per figure (default 3)")
    b.set_defaults(func=cmd_bench)

    x = sub.add_parser("crosslayer", help="real LLM tiles and faults through the RTL",
                       description="Capture the INT8 operands of the W8A8 SmolLM2's GEMMs on "
                       "one WikiText-2 window, draw errors with the LLM injector (as the "
                       "closed loop does), cut every call into blocks the array runs whole, "
                       "inject the errors as pe.acc flips through the fault port, run them on "
                       "the RTL (Verilator) and check outputs, checksum differences and "
                       "decisions against the golden cycle model, the transaction-level "
                       "statistical model, the closed loop's records and the model's own "
                       "accumulators. Exit status 1 on any mismatch.")
    x.add_argument("--rows", type=int, default=8, help="array rows (default 8)")
    x.add_argument("--cols", type=int, default=8, help="array columns (default 8)")
    x.add_argument("--dataflow", type=lambda t: t.split(","), default=["ws", "os"],
                   help="dataflows, comma-separated (default ws,os)")
    x.add_argument("--components", type=lambda t: t.split(","),
                   default=["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"],
                   help="components, comma-separated (default all nine)")
    x.add_argument("--layer", type=int, default=14, help="decoder layer (default 14)")
    x.add_argument("--length", type=int, default=512, help="window length in tokens "
                   "(default 512)")
    x.add_argument("--ber", type=float, default=1e-5, help="injector BER (default 1e-5)")
    x.add_argument("--bits", type=int_list(2, lo=0), default=[0, 30], metavar="LO,HI",
                   help="flipped bit range (default 0,30)")
    x.add_argument("--clean", type=int, default=1, help="clean blocks per GEMM call "
                   "(default 1)")
    x.add_argument("--min-tiles", type=int, default=1000, help="add clean blocks, one per "
                   "call in turn, until each dataflow has this many tiles (default 1000)")
    x.add_argument("--seed", type=int, default=0, help="seed of the errors and blocks")
    x.add_argument("--fit", default="docs/results/abft/params/fit.json",
                   help="critical-region fits the parameter sets come from")
    x.add_argument("--jobs", type=int, default=2, help="simulations side by side (default 2), "
                   "each a worker: a process, or a Ray actor with --engine ray")
    add_engine_args(x)
    x.add_argument("--out", default="docs/results/crosslayer", help="summary directory")
    x.add_argument("--workdir", default="build/crosslayer", help="jobs, raw results and "
                   "simulator logs (default build/crosslayer)")
    x.set_defaults(func=cmd_crosslayer)

    sub.add_parser("synth", help="area, timing and power of every ABFT variant",
                   add_help=False)
    add_timing(sub)
    sub.add_parser("energy", help="voltage tables, policy energy and sweet spots per component",
                   add_help=False)
    sub.add_parser("characterize", help="regenerate the LLM resilience results (docs/results)",
                   add_help=False)
    sub.add_parser("llm", help="the W8A8 LLM harness (eval, campaign, bench, ...)",
                   add_help=False)
    sub.add_parser("bench-ray", help="points/s of one sweep on 1, 2 and more Ray workers "
                   "(a local multi-node cluster)", add_help=False)
    return p


def add_timing(sub):
    """Add the ``timing`` subcommand to the subparsers ``sub``."""
    from hw.cli import checked
    t = sub.add_parser(
        "timing", help="timing errors of one PE vs supply voltage (STA, SDF gate-level sim)",
        formatter_class=RawDescriptionHelpFormatter,
        description="""\
Characterize the timing of one processing element exactly as the array instantiates it, and
turn it into timing-error statistics per supply voltage (method: synth/timing.py,
synth/voltage.py; docs/energy.md §1-§4).

1. Synthesis: the PE leaf (its class, widths, tied inputs and unread outputs at its array
   position) with every input registered, through the project's Yosys flow to the OSU
   0.18 um cells.
2. STA (OpenSTA): arrival at each accumulator bit's flip-flop, setup, the PE's shortest
   clock period; writes the SDF.
3. Gate-level simulation (Icarus, SDF-annotated) of an operand stream at a long clock; every
   cycle's settled accumulator is checked against the golden model. Per bit: settle times.
4. Per voltage V of --grid: delays scale by the curve's s(V); the clock is --margin times
   the (array) PE's shortest period, i.e. clock / s(V) in nominal delays; a flip-flop
   latches the last change that meets its setup time.
   p(V): fraction of MAC cycles whose latched accumulator is wrong; p_bit; f_e(V): the signed
   errors (latched - correct) and their counts.

OpenSTA and Icarus come from Debian (apt-get download + dpkg-deb -x into build/tools/, not
installed, not committed). Writes DIR/timing.json (everything), DIR/pv.csv (p per voltage),
DIR/errors.npz (per-cycle errors per voltage), and the netlist, SDF and logs in DIR/work/.
The INT8 PEs took 50-70 s each for the default 20,000 cycles on a shared 2-core machine.""")
    config_args(t)
    t.add_argument("--data-width", type=int, default=8, help="operand bits (default 8)")
    t.add_argument("--pe", choices=["array", "check"], default="array",
                   help="array: the PE most of the array shares (default); check: a checksum "
                   "PE (its ABFT column/row)")
    t.add_argument("--at", type=int_list(2, lo=0), metavar="ROW,COL",
                   help="the PE at this array position instead")
    t.add_argument("--stream", default="uniform", metavar="uniform|FILE.npz",
                   help="operand stream: 'uniform' (seeded uniform-random operands, a WS "
                   "weight reload or OS drain every --k cycles) or a .npz file holding one "
                   "integer array per PE input (WS: i_a, i_p, i_w, w_load; OS: i_a, i_b, i_c, "
                   "drain; less those the array ties to 0), one value per cycle")
    t.add_argument("--cycles", type=checked(int, lambda v: v >= 1, "an integer of at least 1"),
                   default=20000, help="cycles of the uniform stream (default 20000)")
    t.add_argument("--k", type=checked(int, lambda v: v >= 1, "an integer of at least 1"),
                   default=64, help="uniform stream: cycles per weight reload / drain "
                   "(default 64)")
    t.add_argument("--seed", type=checked(int, lambda v: v >= 0, "a non-negative integer"),
                   default=1, help="seed of the uniform stream (default 1)")
    t.add_argument("--curve", choices=["A", "A-fit", "B", "C"], default="A",
                   help="delay-vs-voltage curve: A (16 nm table, default), A-fit (its "
                   "alpha-power fit), B, C (alpha-power, sensitivity)")
    t.add_argument("--grid", default="0.90:0.60:0.01", metavar="START:STOP:STEP|V,V,...",
                   help="supply voltages, within the curve's range (default 0.90:0.60:0.01)")
    t.add_argument("--margin", type=checked(float, lambda v: v > 0, "a positive number"),
                   help="clock over the shortest PE period (default "
                   "500/439 = 1.139, ReaLM's 500 ps clock over its 439 ps critical path)")
    t.add_argument("--onset", type=checked(float, lambda v: v > 0, "a voltage"),
                   metavar="V", help="instead of --margin: the margin that puts the first "
                   "simulated error just below V (anchored mode)")
    t.add_argument("--out", metavar="DIR",
                   help="output directory (default build/timing/<config>-<pe>-r<row>c<col>)")
    t.set_defaults(func=cmd_timing, subparser=t)
    return t


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
