"""Command line of the project's hardware side: ``python -m hw {generate,sim,bench}``.

``generate`` writes the Verilog of one configuration; ``sim`` pushes a tiled GEMM with LLM-like
INT8 operands through that Verilog under Verilator (cocotb), checks every cycle against the
golden model and the product against an int64 oracle, prints a summary and writes JSON;
``bench`` measures simulated MAC/s of Verilator, Amaranth's Python simulator and the golden
cycle model.
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

from .config import Abft, ArrayConfig, Dataflow


def _config_args(p):
    p.add_argument("--rows", type=int, default=8, help="array rows, 1-256 (default 8)")
    p.add_argument("--cols", type=int, default=8, help="array columns, 1-256 (default 8)")
    p.add_argument("--dataflow", default="ws", choices=[d.value for d in Dataflow],
                   help="ws: weight-stationary, os: output-stationary (default ws)")
    p.add_argument("--abft", default="none", choices=[a.value for a in Abft],
                   help="fault-tolerance logic to add (default none)")
    p.add_argument("--acc-width", type=int, default=32, help="accumulator bits (default 32)")
    p.add_argument("--fault-port", action="store_true", help="add the fault-injection port")


def _config(parser, args):
    try:
        return ArrayConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                           abft=args.abft, acc_width=args.acc_width,
                           fault_port=args.fault_port)
    except ValueError as e:
        parser.error(str(e))


def cmd_generate(parser, args):
    from .generate import write_verilog
    config = _config(parser, args)
    path = write_verilog(config, args.output)
    print(f"wrote {path} ({config.id})")


def run_gemm(config, gemm, seed, result_path, waves=False, faults=None):
    """Build ``config`` and run the GEMM cocotb module; return its JSON result."""
    from tb import sim
    build_dir = sim.build(config, waves=waves)
    pathlib.Path(result_path).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="realm-sim-") as tmp:
        env = {"REALM_CONFIG": config.to_json(), "REALM_GEMM": ",".join(map(str, gemm)),
               "REALM_RESULT": str(pathlib.Path(result_path).resolve())}
        if faults:
            env["REALM_FAULTS"] = str(pathlib.Path(faults).resolve())
        log = pathlib.Path(result_path).with_suffix(".log").resolve()
        try:
            sim.run(build_dir, "tb.tb_gemm", "gemm", env, seed=seed, test_dir=tmp, waves=waves,
                    log_file=log)
        except SystemExit:
            pass  # a failed check: the JSON result says which
        if not pathlib.Path(result_path).exists():
            raise SystemExit(f"the simulation did not finish; see its log {log}")
    return json.loads(pathlib.Path(result_path).read_text())


def cmd_sim(parser, args):
    config = _config(parser, args)
    if args.faults:
        from golden.faults import FaultListError, load_faults
        if config.abft is Abft.NONE:
            config = config.replace(abft=Abft.REALM)
            print("note        --faults: using the realm ABFT variant (set --abft to choose)")
        config = config.replace(fault_port=True)
        try:
            faults = load_faults(args.faults, config)
        except FaultListError as e:
            parser.error(str(e))
    out = pathlib.Path(args.output or f"build/sim/result-{config.id}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    r = run_gemm(config, args.gemm, args.seed, out, waves=args.waves, faults=args.faults)
    ok = r["matches_golden_every_cycle"] and (r["matches_oracle"] or args.faults)
    print(f"config      {config.id} ({config.rows}x{config.cols} {config.dataflow}, "
          f"INT{config.data_width} x INT{config.data_width} -> INT{config.acc_width})")
    print(f"workload    GEMM {r['gemm'][0]}x{r['gemm'][1]} @ {r['gemm'][1]}x{r['gemm'][2]}, "
          f"LLM-like operands, seed {r['seed']}")
    print(f"tiles       {r['tiles']}")
    print(f"cycles      {r['cycles']}  ({r['macs'] / r['cycles']:.1f} useful MAC/cycle of "
          f"{config.rows * config.cols} PEs)")
    print(f"simulated   {r['rtl_macs_per_s']:,.0f} MAC/s in Verilator+cocotb "
          f"({r['rtl_seconds']:.2f} s); golden cycle model {r['golden_macs_per_s']:,.0f} MAC/s")
    if args.faults:
        _print_faults(faults, r)
    print(f"match       {'YES' if ok else 'NO'}: RTL vs golden model on every output, every "
          f"cycle: {'equal' if r['matches_golden_every_cycle'] else 'DIFFERENT'}; product vs "
          f"int64 oracle: " + ("equal" if r["matches_oracle"] else
                               f"{r['wrong_elements']} wrong elements"
                               + (" (the faults' effect)" if args.faults else "")))
    print(f"result      {out} (log {out.with_suffix('.log')}; total {time.perf_counter() - t0:.1f} s with build)")
    return 0 if ok else 1


def _print_faults(faults, r):
    print(f"injected    {len(faults)} fault(s):")
    for f in faults[:8]:
        what = f"bit {f.mask.bit_length() - 1}" if f.mask & (f.mask - 1) == 0 else hex(f.mask)
        print(f"              {f.kind} {what} of {f.site} ({f.row},{f.col}) at cycle {f.cycle}"
              + (f" for {f.duration} cycles" if f.duration > 1 else ""))
    if len(faults) > 8:
        print(f"              ... {len(faults) - 8} more")
    c, dec = r["counters"], r["decisions"]
    print(f"detected    {c['tiles_mismatch']} of {c['tiles_checked']} checked tiles had a "
          f"non-zero checksum difference; {c['errors_above']} difference(s) above theta_mag")
    for d in [d for d in dec if d["mismatch"]][:8]:
        print(f"              tile {d['tile']}: MSD {d['msd']}, theta_mag 2^{d['theta_log2']:.2f}, "
              f"freq_eff {d['freq_eff']}; classic {'RECOMPUTE' if d['classic'] else 'ok'}, "
              f"approx {'RECOMPUTE' if d['approx'] else 'ok'}, "
              f"realm {'RECOMPUTE' if d['realm'] else 'tolerate'}")
    print(f"decided     {c['tiles_flagged']} tile(s) flagged for recompute by the selected "
          f"policy (realm); histogram of floor(log2|d|): {c['hist']}")


def cmd_bench(parser, args):
    from .bench import bench
    return bench(args)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hw", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write the Verilog of one configuration")
    _config_args(p)
    p.add_argument("-o", "--output", required=True, help="output Verilog file")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("sim", help="run a GEMM through the RTL and check it")
    _config_args(p)
    p.add_argument("--gemm", type=lambda s: [int(v) for v in s.split(",")], default=[64, 64, 64],
                   metavar="M,K,N", help="GEMM shape (default 64,64,64)")
    p.add_argument("--seed", type=int, default=1, help="operand seed (default 1)")
    p.add_argument("--faults", help="JSON fault list to inject (see README)")
    p.add_argument("--waves", action="store_true", help="dump dump.vcd in the build directory")
    p.add_argument("-o", "--output", help="JSON result (default build/sim/result-<id>.json)")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("bench", help="simulated MAC/s: Verilator vs Amaranth pysim vs golden")
    p.add_argument("--sizes", default="8,16", help="square array sizes (default 8,16)")
    p.add_argument("-o", "--output", default="build/bench/array.json", help="JSON result")
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    return args.func(parser, args) or 0


if __name__ == "__main__":
    sys.exit(main())
