"""``python -m synth``: area, timing and power of every ABFT variant against the unprotected
array, mapped to the OSU 0.18 um standard cells.

* Flat synthesis (Yosys through pyosys) of exactly the Verilog the tests simulate, for the
  sweep sizes (default 4, 8, 16), both dataflows, abft = none, classic, approx, realm.
* The same arrays composed from synthesized leaf blocks (``synth.compose``), with the error
  against flat; then the composition at the large sizes (default 32 to 256).
* Activity-based power (``synth.power``): a seeded LLM-like GEMM on the gate-level netlist,
  checked against the golden model on every cycle, toggles weighted with the Liberty data;
  for the largest composed size, composed from leaf-level simulations
  (``synth.compose_power``).

Writes ``build/synth/report.{md,json}`` and ``overhead.png``. ``--rows/--cols/--dataflow``
synthesize one point (all four variants).
"""
import argparse
import json
import pathlib
import sys

from hw.cli import Parser
from hw.config import ArrayConfig

from .compose import LEAVES, breakdown, compose, leaf_verilog
from .flow import config_verilog, fetch_liberty, synthesize_cached, synthesize_config
from .leaves import instances
from .report import write_report

VARIANTS = ("none", "classic", "approx", "realm")
OUT = pathlib.Path("build/synth")


def _overheads(rows, key="area_um2", name="area_overhead_pct"):
    base = {(r["dataflow"], r["rows"], r["cols"]): r for r in rows if r["abft"] == "none"}
    for r in rows:
        b = base.get((r["dataflow"], r["rows"], r["cols"]))
        r[name] = 100 * (r[key] / b[key] - 1) if b and r.get(key) is not None else None


def presynthesize(shapes, dataflows, large, jobs, progress=print):
    """Synthesize every flat array and every leaf block the sweep needs, ``jobs`` at a time
    (each synthesis is its own process; the Verilog is generated here meanwhile, the largest
    arrays first); later steps find them in the cache."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from hw.generate import TOP
    fetch_liberty()

    def texts():
        for rows, cols in sorted(shapes, reverse=True):
            for df in dataflows:
                for ab in VARIANTS:
                    c = ArrayConfig(rows=rows, cols=cols, dataflow=df, abft=ab)
                    yield OUT / c.id, config_verilog(c), TOP
        for rows, cols in [(n, n) for n in large] + shapes:
            for df in dataflows:
                for ab in VARIANTS:
                    c = ArrayConfig(rows=rows, cols=cols, dataflow=df, abft=ab)
                    for key, (_, build) in instances(c).items():
                        yield LEAVES / key, leaf_verilog(key, build), "top"

    progress(f"synthesizing the arrays and leaf blocks (cached ones at once), {jobs} at a "
             "time ...")
    with ThreadPoolExecutor(max(1, jobs)) as ex:
        futures = {}
        try:
            for workdir, text, top in texts():
                if workdir not in futures.values():
                    futures[ex.submit(synthesize_cached, text, workdir, top)] = workdir
            for i, f in enumerate(as_completed(futures), 1):
                f.result()
                progress(f"synthesized [{i}/{len(futures)}] {futures[f].name}")
        except BaseException:
            ex.shutdown(cancel_futures=True)
            raise


def sweep(shapes, dataflows, large, power_sizes, cycles, compose_power_size=None,
          progress=print, jobs=1):
    """Run everything; return the report dict."""
    flat, comp, power = [], [], []
    presynthesize(shapes, dataflows, large, jobs, progress)
    for df in dataflows:
        for rows, cols in shapes:
            for ab in VARIANTS:
                c = ArrayConfig(rows=rows, cols=cols, dataflow=df, abft=ab)
                progress(f"flat {c.id} ...")
                f = synthesize_config(c, OUT / c.id)
                k = compose(c)
                flat.append({"config": c.id, "rows": rows, "cols": cols, "dataflow": df,
                             "abft": ab, **f, "composed_um2": k["area_um2"],
                             "composed_delay_ps": k["delay_ps"],
                             "composition_error_pct": 100 * (k["area_um2"] / f["area_um2"] - 1)})
        for n in large:
            kb = None
            for ab in VARIANTS:
                c = ArrayConfig(rows=n, cols=n, dataflow=df, abft=ab)
                progress(f"composed {c.id} ...")
                k = compose(c)
                row = {"config": c.id, "rows": n, "cols": n, "dataflow": df, "abft": ab,
                       **{x: k[x] for x in ("cells", "flops", "area_um2", "delay_ps",
                                            "pe_grid_um2")},
                       "leaf_delay_ps": {key: v["delay_ps"] for key, v in k["leaves"].items()}}
                if ab == "none":
                    kb = k
                else:
                    row["breakdown_um2"] = breakdown(c, kb, k)
                comp.append(row)
    _overheads(flat)
    _overheads(comp)
    for r in comp:
        base = next(b for b in comp if b["abft"] == "none" and b["dataflow"] == r["dataflow"]
                    and b["rows"] == r["rows"])
        r["overhead_vs_pe_grid_pct"] = 100 * (r["area_um2"] - base["area_um2"]) / base[
            "pe_grid_um2"]
    if comp and compose_power_size:
        from .compose_power import compose_power
        for r in comp:
            if r["rows"] == compose_power_size:
                progress(f"composed power {r['config']} ...")
                c = ArrayConfig(rows=r["rows"], cols=r["cols"], dataflow=r["dataflow"],
                                abft=r["abft"])
                pw = compose_power(c)
                r["power"] = {k: pw[k] for k in ("total_uw", "dynamic_uw", "clock_uw",
                                                 "switching_uw", "internal_uw", "leakage_uw")}
                r["power_by_leaf_uw"] = {k: v["total_uw"] for k, v in pw["leaves"].items()}
        for r in comp:
            if "power" in r:
                base = next(b for b in comp if b["abft"] == "none" and b["rows"] == r["rows"]
                            and b["dataflow"] == r["dataflow"])
                r["power_overhead_pct"] = 100 * (r["power"]["total_uw"]
                                                 / base["power"]["total_uw"] - 1)
    if power_sizes:
        from .power import power_sweep
        configs = [ArrayConfig(rows=n, cols=n, dataflow=df, abft=ab)
                   for df in dataflows for n in power_sizes for ab in VARIANTS]
        progress(f"power: {len(configs)} gate-level simulations ...")
        power = power_sweep(configs, OUT / "power", cycles=cycles, netdir=OUT)
    return {"flat": flat, "composed": comp, "power": power}


def _sizes(text):
    """Comma-separated square sizes ('' for none), each a valid array size."""
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, not {text!r}") \
            from None
    for n in sizes:
        try:
            ArrayConfig(rows=n, cols=n)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return sizes


def main(argv=None, prog="python -m synth"):
    p = Parser(prog=prog, description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, help="synthesize one size (with --cols, --dataflow)")
    p.add_argument("--cols", type=int, help="columns of the one size (default: --rows)")
    p.add_argument("--dataflow", choices=["ws", "os"], help="dataflow of the one size "
                   "(default: both)")
    p.add_argument("--sizes", type=_sizes, default="4,8,16",
                   help="square sizes synthesized flat and composed (default 4,8,16)")
    p.add_argument("--large", type=_sizes, default="32,64,128,256",
                   help="square sizes composed from leaf blocks only (default 32,64,128,256)")
    p.add_argument("--power-sizes", type=_sizes, default="4,8",
                   help="sizes of the gate-level power estimate (default 4,8; '' for none)")
    p.add_argument("--no-composed-power", dest="composed_power", action="store_false",
                   help="skip the composed power estimate of the largest size")
    p.add_argument("--cycles", type=int, default=1000,
                   help="cycles of the power workload (default 1000)")
    p.add_argument("--jobs", type=int, default=2,
                   help="syntheses run side by side, one process each (default 2)")
    args = p.parse_args(argv)
    for name in ("cycles", "jobs"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    if args.rows is not None:
        shapes = [(args.rows, args.cols or args.rows)]
        large, power_sizes = [], []
    else:
        if args.cols is not None:
            p.error("--cols needs --rows")
        shapes = [(n, n) for n in args.sizes]
        large, power_sizes = args.large, args.power_sizes
    try:
        for rows, cols in shapes:
            ArrayConfig(rows=rows, cols=cols)  # validates the size
    except ValueError as e:
        p.error(str(e))
    dataflows = [args.dataflow] if args.dataflow else ["ws", "os"]
    report = sweep(shapes, dataflows, large, power_sizes, args.cycles,
                   max(large) if large and args.composed_power else None,
                   progress=lambda s: print(s, file=sys.stderr, flush=True), jobs=args.jobs)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(write_report(report, OUT).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
