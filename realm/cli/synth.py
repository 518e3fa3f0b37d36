"""``realm synth``: area, timing and power of every ABFT variant (:mod:`synth.sweep`)."""
import json
import sys

from .args import POSITIVE, BadInput, comma_list, command, need

DESCRIPTION = """\
Area, timing and power of every ABFT variant against the unprotected array, mapped to the OSU
0.18 um standard cells (method: synth/README.md).

* Flat synthesis (Yosys through pyosys) of exactly the Verilog the tests simulate, for --sizes,
  both dataflows, abft = none, classic, approx, realm.
* The same arrays composed from synthesized leaf blocks, with the error against flat; then the
  composition at the --large sizes.
* Activity-based power: a seeded LLM-like GEMM on the gate-level netlist, checked against the
  golden model on every cycle, toggles weighted with the Liberty data; for the largest
  composed size (or --composed-power's), composed from leaf-level simulations.

Writes build/synth/report.md, report.json and overhead.png. --rows (and --cols, --dataflow)
synthesizes one size instead: all four variants flat, with its power unless --power-sizes ''.
Needs the synth extra (pip install 'realm-sa[synth]'; make installs it)."""

_SIZES = comma_list(int, what="array sizes from 1 to 256", ok=lambda v: 1 <= v <= 256)


def _sizes(text):
    """Comma-separated square sizes, or '' for none."""
    return [] if text.strip() == "" else _SIZES(text)


def add(sub):
    p = command(sub, "synth", check=check, run=run, raw=True,
                help="area, timing and power of every ABFT variant", description=DESCRIPTION)
    p.add_argument("--rows", type=int, help="synthesize one size (with --cols, --dataflow)")
    p.add_argument("--cols", type=int, help="columns of the one size (default: --rows)")
    p.add_argument("--dataflow", choices=["ws", "os"], help="one dataflow (default: both)")
    p.add_argument("--sizes", type=_sizes, default=[4, 8, 16],
                   help="square sizes synthesized flat and composed (default 4,8,16)")
    p.add_argument("--large", type=_sizes, default=[32, 64, 128, 256],
                   help="square sizes composed from leaf blocks only (default 32,64,128,256)")
    p.add_argument("--power-sizes", type=_sizes, default=None,
                   help="sizes of the gate-level power estimate (default 4,8, or the one "
                   "--rows size; '' for none)")
    p.add_argument("--composed-power", type=_sizes, default=None, metavar="SIZES",
                   help="--large sizes whose power is composed from leaf-level simulations "
                   "(default: the largest; '' for none; a minute or two per variant)")
    p.add_argument("--cycles", type=POSITIVE, default=1000,
                   help="cycles of the power workload (default 1000)")
    p.add_argument("--workers", type=POSITIVE, default=2,
                   help="syntheses run side by side, one process each (default 2)")


def check(a):
    from hw.config import ArrayConfig
    need("synth")
    if a.rows is not None:
        a.shapes = [(a.rows, a.cols or a.rows)]
        a.large = []
        a.power_shapes = a.shapes if a.power_sizes is None else [(n, n) for n in a.power_sizes]
    else:
        if a.cols is not None:
            raise BadInput("--cols needs --rows")
        a.shapes = [(n, n) for n in a.sizes]
        a.power_shapes = [(n, n) for n in (a.power_sizes if a.power_sizes is not None
                                           else [4, 8])]
    for rows, cols in a.shapes:
        try:
            ArrayConfig(rows=rows, cols=cols)
        except ValueError as e:
            raise BadInput(str(e)) from None
    if a.composed_power is None:
        a.composed_power = [max(a.large)] if a.large else []
    outside = [n for n in a.composed_power if n not in a.large]
    if outside:
        raise BadInput(f"--composed-power {outside[0]} is not among the --large sizes "
                       f"({','.join(map(str, a.large)) or 'none'})")


def run(a):
    from synth.report import write_report
    from synth.sweep import OUT, sweep
    dataflows = [a.dataflow] if a.dataflow else ["ws", "os"]
    report = sweep(a.shapes, dataflows, a.large, a.power_shapes, a.cycles,
                   a.composed_power,
                   progress=lambda s: print(s, file=sys.stderr, flush=True), jobs=a.workers)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(write_report(report, OUT).read_text())
    return 0
