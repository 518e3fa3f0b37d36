"""``realm energy``: voltage underscaling end to end (docs/energy.md).

  characterize  per-component voltage tables: real SmolLM2 operand streams through the
                SDF-annotated PE (OpenSTA, Icarus), p(V) and f_e(V) per component, one table
                per timing setting (delay curve A, B, C; ReaLM's margin or anchored at 0.84 V)
  campaign      the Monte Carlo of every protection policy at every voltage of a spec (the
                LLM campaign runner with timing experiments; resumable)
  report        energy per policy and voltage, sweet spots, Table II and Fig. 9 analogues and
                the sensitivity runs, from a campaign's results

``make energy`` runs the three in turn. Bad input is one line, exit status 2.
"""
import argparse
import json
import pathlib
import sys
from argparse import RawDescriptionHelpFormatter

from golden.executor import add_engine_args
from hw.cli import Parser, checked, fail

from .energy_char import GRID, SETTINGS

#: Where the committed results live.
RESULTS = pathlib.Path("docs/results/energy")
COMPONENTS = ("q", "k", "v", "qk", "sv", "o", "gate", "up", "down")


def _components(text):
    names = [c for c in text.split(",") if c]
    bad = [c for c in names if c not in COMPONENTS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"must be comma-separated components of "
                                         f"{', '.join(COMPONENTS)}, not {text!r}")
    return names


def cmd_characterize(p, a):
    from synth import voltage
    from synth.tools import ToolUnavailable, icarus, opensta

    for curve, _ in SETTINGS.values():
        try:
            voltage.check_grid(a.grid, curve)
        except ValueError as e:
            p.error(str(e))
    if not 1 <= a.rows <= 256 or not 1 <= a.cols <= 256:
        p.error(f"array rows and cols must be 1 to 256, not {a.rows}x{a.cols}")
    try:  # fail before any work if a tool cannot be had
        opensta(), icarus()
    except ToolUnavailable as e:
        p.error(str(e))
    from golden.llm.campaign import GLOBAL

    from .energy_char import characterize
    settings = {k: v for k, v in GLOBAL.items() if k != "seeds"}
    paths = characterize(a.dataflow, a.rows, a.cols, a.work, a.out, settings, a.components,
                         a.cycles, a.seed, a.grid)
    for path in paths:
        print(f"wrote       {path}")
    return 0


def _table(p, path):
    from golden.llm.vtable import TableError, VoltageTable

    try:
        return VoltageTable.read(path)
    except TableError as e:
        p.error(str(e))


def cmd_spec(p, a):
    from golden.llm import campaign

    from .energy_spec import make_spec
    table = _table(p, a.table)
    try:
        spec = make_spec(table, a.table, a.seeds, a.policies, every=a.every,
                         components=a.components, params=a.params,
                         max_p_element=a.max_p_element)
        n = len(campaign.expand(spec)[1])
    except (ValueError, campaign.SpecError) as e:
        p.error(str(e))
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(spec, indent=1) + "\n")
    print(f"wrote       {out} ({n} points)")
    return 0


def cmd_campaign(p, a):
    from golden.executor import EngineError, PointsFailed, engine_from_args
    from golden.llm import campaign

    engine = engine_from_args(p, a)
    try:
        spec = campaign.load_spec(a.spec)
        campaign.expand(spec)
        engine.connect()
    except (campaign.SpecError, EngineError) as e:
        p.error(str(e))
    try:
        n = campaign.run(spec, a.out, workers=a.workers, threads=a.threads,
                         progress=not a.no_progress, engine=engine)
    except PointsFailed as e:
        fail(p.prog, str(e), status=1)
    print(f"{n} points run; results in {a.out}")
    return 0


def cmd_report(p, a):
    from golden.llm import campaign, energy_write

    header, done = campaign.read_results(a.results)
    if header is None:
        p.error(f"{a.results!r} holds no campaign results")
    table = _table(p, a.table)
    others = {}
    for path in a.others:
        t = _table(p, path)
        others[t.doc.get("setting", pathlib.Path(path).stem)] = t
    res = energy_write.analyse(list(done.values()), header["baseline"]["w8a8"]["ppl"], table,
                               others, table.dataflow, a.tol)
    paths = energy_write.write(a.out, res, table)
    summary = {c: {k: row[k] for k in ("v", "saving_nominal", "best_other", "saving_vs_best")}
               for c, row in res["table2"].items()}
    print(json.dumps(summary, indent=1))
    print(f"wrote       {', '.join(str(x) for x in paths)}")
    return 0


def _list(kind, what):
    def parse(text):
        try:
            vals = [kind(x) for x in text.split(",") if x]
        except ValueError:
            vals = []
        if not vals:
            raise argparse.ArgumentTypeError(f"must be comma-separated {what}, not {text!r}")
        return vals
    return parse


def _policies(text):
    from golden.llm.energy import POLICIES

    vals = [x for x in text.split(",") if x]
    if not vals or any(v not in POLICIES for v in vals):
        raise argparse.ArgumentTypeError(f"must be comma-separated policies of "
                                         f"{', '.join(POLICIES)}, not {text!r}")
    return vals


def parser(prog="realm energy"):
    p = Parser(prog=prog, formatter_class=RawDescriptionHelpFormatter, description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    c = sub.add_parser(
        "characterize", formatter_class=RawDescriptionHelpFormatter,
        help="per-component voltage tables from real operand streams (OpenSTA, Icarus)",
        description="""\
Per component of SmolLM2-135M: capture one WikiText-2 validation window's INT8 GEMM operands
from the W8A8 model, cut them into the operand stream one PE of the array sees (WS: weight
loads, activations and the partial sums from the rows above, rows drawn over the PE netlist's
array rows; OS: drain, then the K products of an output element), simulate the SDF-annotated
PE on it (realm timing's chain) and write, per timing setting (curve A, B, C with ReaLM's
500/439 margin; curve A anchored so the first error falls below 0.84 V), a voltage table:
per voltage, p (per MAC cycle), its source (measured, or the bounded tail fitted to the
latest cycles, endpoint the STA bound), the error values f_e and the dropped products f_drop.
Writes OUT/<rows>x<cols>-<dataflow>-<setting>.json. About one Icarus run of --cycles
cycles per component (50-70 s for 20,000 cycles on an idle core).""")
    c.add_argument("--dataflow", choices=["ws", "os"], default="ws",
                   help="the array's dataflow (default ws)")
    c.add_argument("--rows", type=int, default=256, help="array rows (default 256)")
    c.add_argument("--cols", type=int, default=256, help="array columns (default 256)")
    c.add_argument("--components", type=_components, default=list(COMPONENTS),
                   help="comma-separated components (default all nine)")
    c.add_argument("--cycles", type=checked(int, lambda v: v >= 200, "an integer >= 200"),
                   default=20000, help="MAC cycles simulated per component (default 20000)")
    c.add_argument("--seed", type=checked(int, lambda v: v >= 0, "a non-negative integer"),
                   default=1, help="seed of the streams' segment draws (default 1)")
    c.add_argument("--grid", default=GRID, metavar="START:STOP:STEP|V,V,...",
                   help=f"table voltages, within every curve's range (default {GRID})")
    c.add_argument("--work", default="build/energy", help="work directory (default "
                   "build/energy)")
    c.add_argument("--out", default=str(RESULTS / "tables"),
                   help=f"table directory (default {RESULTS / 'tables'})")
    c.set_defaults(func=cmd_characterize, sub=c)

    from golden.llm.energy import POLICIES
    sp = sub.add_parser(
        "spec", formatter_class=RawDescriptionHelpFormatter,
        help="write the campaign spec of a voltage table",
        description="""\
Write a campaign spec (golden/llm/campaign.py) with one timing experiment per component of
the table: the table's voltages below nominal at which a perplexity pass of the campaign's
model is expected to see at least 0.05 erroneous elements of the component (higher ones are
error-free in practice), down to --max-p-element, every --every-th of them, every policy, on
the table's array.""")
    sp.add_argument("table", help="voltage table (realm energy characterize)")
    sp.add_argument("--out", default=str(RESULTS / "spec.json"),
                    help=f"spec file to write (default {RESULTS / 'spec.json'})")
    sp.add_argument("--seeds", type=_list(int, "integers"), default=[0, 1, 2],
                    help="seeds, comma-separated (default 0,1,2)")
    sp.add_argument("--policies", type=_policies, default=list(POLICIES),
                    help=f"policies, comma-separated (default {','.join(POLICIES)})")
    sp.add_argument("--components", type=_components, default=list(COMPONENTS),
                    help="components (default all nine)")
    sp.add_argument("--every", type=checked(int, lambda v: v >= 1, "an integer of at least 1"),
                    default=1, help="keep every n-th voltage (default 1: all)")
    sp.add_argument("--max-p-element", type=checked(float, lambda v: 0 < v <= 1,
                    "a probability above 0"), default=1.0,
                    help="stop at the first voltage where an element is wrong with at least "
                    "this probability (default 1: every voltage of the table)")
    sp.add_argument("--params", default="docs/results/abft/params/{array}.json",
                    help="statistical unit parameter files (default "
                    "docs/results/abft/params/{array}.json)")
    sp.set_defaults(func=cmd_spec, sub=sp)

    ca = sub.add_parser("campaign", help="run a spec (resumable; = realm llm campaign)",
                        description="Run every point of SPEC not yet in --out, one JSON line "
                        "per point; rerun to resume.")
    ca.add_argument("spec", help="campaign spec (realm energy spec)")
    ca.add_argument("--out", default=str(RESULTS / "campaign.jsonl"),
                    help=f"results file (default {RESULTS / 'campaign.jsonl'})")
    ca.add_argument("--workers", type=checked(int, lambda v: v >= 1, "an integer of at least "
                    "1"), default=2, help="workers: processes, or Ray actors with --engine ray "
                    "(default 2)")
    ca.add_argument("--threads", type=checked(int, lambda v: v >= 1, "an integer of at least "
                    "1"), default=None, help="torch threads per worker")
    ca.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_args(ca)
    ca.set_defaults(func=cmd_campaign, sub=ca)

    r = sub.add_parser(
        "report", formatter_class=RawDescriptionHelpFormatter,
        help="energy, sweet spots, Table II / Fig. 9 analogues, sensitivity",
        description="""\
From a timing campaign's results: per component, policy and voltage the perplexity
degradation (mean and upper 95 % bound over seeds), the recompute ratio and the energy
(golden/llm/energy.py: eps(V)(1 + o_P) + r_P(1 + o_P), relative to the unprotected array at
0.9 V; o_P from our synthesis report); the sweet spot of each policy (lowest energy with the
upper bound within --tol); ReaLM's saving vs nominal and vs the best other policy; the same
under the other tables' timing settings (remapped by p, not rerun) and leakage shares 0, 0.1,
0.3. Writes curves.csv, table2.csv/json, sensitivity.csv, pv.csv, fig9_k.png, fig9_o.png.""")
    r.add_argument("results", help="campaign results (JSONL)")
    r.add_argument("--table", required=True, help="the voltage table the campaign ran")
    r.add_argument("--others", nargs="*", default=[], help="tables of other timing settings")
    r.add_argument("--tol", type=checked(float, lambda v: v > 0, "a positive number"),
                   default=0.3, help="perplexity tolerance (default 0.3, the paper's)")
    r.add_argument("--out", default=str(RESULTS), help=f"output directory (default {RESULTS})")
    r.set_defaults(func=cmd_report, sub=r)
    return p


def main(argv=None, prog="realm energy"):
    p = parser(prog)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    return a.func(a.sub, a) or 0


if __name__ == "__main__":
    sys.exit(main())
