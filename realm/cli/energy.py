"""``realm energy``: voltage underscaling end to end (docs/energy.md): per-component voltage
tables from real SmolLM2 operand streams through the SDF-annotated PE (OpenSTA, Icarus), the
campaign spec of a table, the Monte Carlo of every protection policy at every voltage
(resumable), and energy per policy, sweet spots, the Table II and Fig. 9 analogues.

``make energy`` runs the steps in turn. Defaults write under build/energy/; ``make energy``
regenerates the committed docs/results/energy/ by naming its paths.
"""

import itertools
import json
import pathlib

from golden.faults import LLAMA_COMPONENTS as COMPONENTS
from hw.config import ArrayConfig
from realm.energy.characterize import GRID, SETTINGS

from .args import (NATURAL, POSITIVE, PROBABILITY, BadInput, bit_list, checked, comma_list, command,
                   engine_args, engine_from_args, group, need, workers_arg)
from .paths import existing, writable

#: Where the commands write by default (make energy names docs/results/energy/ instead).
OUT = pathlib.Path("build/energy")
_components = comma_list(what="components", choices=COMPONENTS)


def check_characterize(a):
    from synth import voltage
    from synth.tools import ToolUnavailable, icarus, opensta

    need("synth", "llm")
    for curve, _ in SETTINGS.values():
        try:
            voltage.check_grid(a.grid, curve)
        except ValueError as e:
            raise BadInput(str(e)) from None
    if not 1 <= a.rows <= 256 or not 1 <= a.cols <= 256:
        raise BadInput(f"array rows and cols must be 1 to 256, not {a.rows}x{a.cols}")
    try:  # fail before any work if a tool cannot be had
        opensta(), icarus()
    except ToolUnavailable as e:
        raise BadInput(str(e)) from None
    writable(a.out, "--out", folder=True)
    writable(a.work, "--work", folder=True)


def run_characterize(a):
    from realm.campaign.spec import GLOBAL
    from realm.energy.characterize import characterize
    settings = {k: v for k, v in GLOBAL.items() if k != "seeds"}
    paths = characterize(a.dataflow, a.rows, a.cols, a.work, a.out, settings, a.components,
                         a.cycles, a.seed, a.grid)
    for path in paths:
        print(f"wrote       {path}")
    return 0


def _table(path, option):
    from realm.energy.vtable import VoltageTable

    return VoltageTable.read(str(existing(path, option)))


def check_spec(a):
    from hw.facts import ABFT_POLICIES, POLICIES
    from synth.voltage import parse_grid

    need("llm")
    if (a.table is None) == (a.curve is None):
        raise BadInput("give a voltage TABLE (timing errors) or --curve (bit flips), not "
                       f"{'both' if a.table else 'neither'}")
    if a.curve is None:
        for opt in ("voltages", "bits", "array"):
            if getattr(a, opt) is not None:
                raise BadInput(f"--{opt} goes with --curve (a table has its own)")
        a.policies = a.policies or list(POLICIES)
        return
    if a.voltages is None:
        raise BadInput("--curve needs --voltages (START:STOP:STEP or V,V,...)")
    try:
        a.volts = parse_grid(a.voltages)
        for v in a.volts:
            a.curve.ber(v)
    except ValueError as e:
        raise BadInput(f"--voltages: {e}") from None
    a.policies = a.policies or list(ABFT_POLICIES)
    bad = [p for p in a.policies if p not in ABFT_POLICIES]
    if bad:
        raise BadInput(f"policy {bad[0]!r} is not run under bit flips ("
                       + ("realm energy bitflip computes DMR" if bad[0] == "dmr" else
                          "ThUnderVolt's Razor flops do not see a flipped bit")
                       + f"); run {', '.join(ABFT_POLICIES)}")
    a.bits = a.bits or [[0, 29], 30]
    for b in a.bits:
        lo, hi = (b, b) if isinstance(b, int) else b
        if not 0 <= lo <= hi <= 31:
            raise BadInput(f"--bits: {b!r} must be a bit 0..31 or LO-HI with LO <= HI")
    a.array = a.array or "256x256-ws"


def run_spec(a):
    from realm.campaign.spec import expand
    from realm.energy.spec import make_bitflip_spec, make_spec

    out = writable(a.out, "--out")
    try:
        if a.curve is not None:
            spec = make_bitflip_spec(a.curve, a.volts,
                                     [[b, b] if isinstance(b, int) else b for b in a.bits],
                                     a.seeds, a.policies, a.components, a.array,
                                     params=a.params)
        else:
            spec = make_spec(_table(a.table, "TABLE"), a.table, a.seeds, a.policies,
                             every=a.every, components=a.components, params=a.params,
                             max_p_element=a.max_p_element)
        n = len(expand(spec)[1])
    except ValueError as e:
        raise BadInput(str(e)) from None
    out.write_text(json.dumps(spec, indent=1) + "\n")
    print(f"wrote       {out} ({n} points)")
    return 0


def check_campaign(a):
    from realm.campaign.spec import expand, load_spec

    need("llm")
    a.run_engine = engine_from_args(a)
    a.spec_doc = load_spec(a.spec)
    expand(a.spec_doc)
    writable(a.out, "--out")


def run_campaign(a):
    from realm.campaign import runner as campaign

    n = campaign.run(a.spec_doc, str(a.out), workers=a.workers, threads=a.threads,
                     progress=not a.no_progress, engine=a.run_engine)
    print(f"{n} points run; results in {a.out}")
    return 0


def run_report(a):
    from realm.campaign import runner as campaign
    from realm.energy import write as energy_write

    header, done = campaign.read_results(str(existing(a.results, "RESULTS")))
    if header is None:
        raise BadInput(f"{a.results!r} holds no campaign results")
    table = _table(a.table, "--table")
    others = {}
    for path in a.others:
        t = _table(path, "--others")
        others[t.doc.get("setting", pathlib.Path(path).stem)] = t
    res = energy_write.analyse(list(done.values()), header["baseline"]["w8a8"]["ppl"], table,
                               others, table.dataflow, a.tol)
    from realm.campaign.provenance import rests_on

    rests = rests_on(header, list(done.values()), tol=res["tol"])
    paths = energy_write.write(str(writable(a.out, "--out", folder=True)), res, table,
                               rests=rests)
    summary = {c: {k: row[k] for k in ("v", "saving_nominal", "best_other", "saving_vs_best")}
               for c, row in res["table2"].items()}
    print(json.dumps(summary, indent=1))
    print(f"wrote       {', '.join(str(x) for x in paths)}")
    return 0


def _curve(text):
    import argparse

    from realm.energy.errmodel import CurveError, parse_curve
    try:
        return parse_curve(text)
    except CurveError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def check_bitflip(a):
    from realm.abft.loop import parse_array
    from realm.campaign import runner as campaign

    need("llm")
    if not a.curve:
        raise BadInput("give at least one --curve")
    try:
        a.arrays = [parse_array(x).name for x in a.array]
    except ValueError as e:
        raise BadInput(str(e)) from None
    for b in a.bits:
        lo, hi = (b, b) if isinstance(b, int) else b
        if not 0 <= lo <= hi <= 31:
            raise BadInput(f"--bits: {b!r} must be a bit 0..31 or LO-HI with LO <= HI")
    a.bit_ranges = [[b, b] if isinstance(b, int) else b for b in a.bits]
    a.header, a.records = None, []
    for path in a.results:
        header, done = campaign.read_results(str(existing(path, "RESULTS")))
        if header is None:
            raise BadInput(f"{path!r} holds no campaign results")
        if a.header is not None and header["settings"] != a.header["settings"]:
            raise BadInput(f"{path!r} was run with other settings than {a.results[0]!r}")
        a.header = a.header or header
        a.records += list(done.values())
    from realm.energy.bitflip import select
    from realm.energy.errmodel import CurveError
    for bits, array in itertools.product(a.bit_ranges, a.arrays):
        recs = select(a.records, bits, array, a.params)
        if not [r for r in recs if r["point"]["policy"] != "none"]:
            raise BadInput(f"{', '.join(a.results)} has no closed-loop bitflip points of bits "
                           f"{bits[0]}-{bits[1]} on {array}")
        for curve in a.curve:  # every BER of the campaign has its voltage on every curve
            for ber in sorted({r["point"]["ber"] for r in recs if r["point"]["ber"] > 0}):
                try:
                    curve.voltage(ber)
                except CurveError as e:
                    raise BadInput(f"--curve {curve.name}: {e} (the campaign has BER "
                                   f"{ber:g})") from None
    if a.timing:
        existing(a.timing, "--timing")
    writable(a.out, "--out", folder=True)


def run_bitflip(a):
    from realm.energy import bitflip, tables
    from realm.energy.errmodel import CurveError
    from realm.energy.model import EnergyModel, overheads
    from realm.energy.write import kinds

    settings = a.header["settings"]
    baseline = a.header["baseline"]["w8a8"]["ppl"]
    model = EnergyModel()
    results, ovhs, srcs = [], {}, {}
    try:
        for array in a.arrays:
            config = ArrayConfig.from_name(array)
            ovhs[array], srcs[array] = overheads(config.dataflow.value, size=config.rows,
                                                 cols=config.cols)
        for curve, bits, array in itertools.product(a.curve, a.bit_ranges, a.arrays):
            results.append(bitflip.analyse(a.records, baseline, curve, bits, array, settings,
                                           a.tol, ovhs[array], model, a.params))
    except CurveError as e:
        raise BadInput(str(e)) from None
    timing = json.loads(pathlib.Path(a.timing).read_text()) if a.timing else None
    meta = {"tol_ppl": a.tol, "tol": a.tol, "baseline": baseline, "overheads": ovhs,
            "overhead_sources": srcs, "kinds": kinds(path=a.params, array=a.arrays[0]),
            "results": [str(x) for x in a.results], "params": a.params,
            "error_model": "bitflip", "settings": settings}
    paths = tables.write(a.out, results, meta, timing)
    for res in results:
        print(f"{tables.label(res)}: " + ", ".join(
            f"{c} {tables.pct(r['saving_vs_prior'])}" for c, r in res["table2"].items()))
    print(f"wrote       {', '.join(str(x) for x in paths)}")
    return 0


def check_values(a):
    from realm.abft.loop import parse_array
    from realm.campaign.spec import SpecError, model_shape

    need("llm")
    existing(a.csv, "CSV")
    try:
        a.array = parse_array(a.array).name
        a.components = model_shape(a.model)[0]
    except (ValueError, SpecError) as e:
        raise BadInput(str(e)) from None
    writable(a.out, "--out")


def run_values(a):
    from realm.energy.spec import SETTINGS
    from realm.energy.values import value_table

    doc = value_table(a.csv, {**SETTINGS, "model": a.model, "length": a.length}, a.array,
                      a.components)
    pathlib.Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    volts = sorted({r["v"] for c in doc["components"].values() for r in c["rows"]}, reverse=True)
    print(f"wrote       {a.out} ({len(doc['components'])} components, {len(volts)} voltages "
          f"{volts[0]:g} to {volts[-1]:g} V; p per element)")
    return 0


def _policies(text):
    from hw.facts import POLICIES

    return comma_list(what="policies", choices=POLICIES)(text)


def add(top):
    sub = group(top, "energy", help="voltage tables, policy energy and sweet spots per "
                "component", description=__doc__)
    c = command(
        sub, "characterize", check=check_characterize, run=run_characterize, raw=True,
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
    c.add_argument("--seed", type=NATURAL,
                   default=1, help="seed of the streams' segment draws (default 1)")
    c.add_argument("--grid", default=GRID, metavar="START:STOP:STEP|V,V,...",
                   help=f"table voltages, within every curve's range (default {GRID})")
    c.add_argument("--work", default="build/energy", help="work directory (default "
                   "build/energy)")
    c.add_argument("--out", default=str(OUT / "tables"), metavar="DIR",
                   help=f"table directory (default {OUT / 'tables'})")

    from hw.facts import POLICIES
    sp = command(
        sub, "spec", check=check_spec, run=run_spec, raw=True,
        help="write the campaign spec of an error model (a voltage table or a BER curve)",
        description="""\
Write a campaign spec (realm/campaign/runner.py) for one error model.

Timing (TABLE): one timing experiment per component of the table: the table's voltages below
nominal at which a perplexity pass of the campaign's model is expected to see at least 0.05
erroneous elements of the component (higher ones are error-free in practice), down to
--max-p-element, every --every-th of them, every policy, on the table's array.

Bit flips (--curve, --voltages): one closed-loop experiment on the BERs the curve gives the
grid's voltages (the voltages above its onset are error-free and not run), --bits, the
policies none, classic, approx and realm on --array; realm energy bitflip places the results
back on the curve exactly (and computes DMR).""")
    sp.add_argument("table", nargs="?", default=None,
                    help="voltage table (realm energy characterize): the timing model")
    sp.add_argument("--curve", type=_curve, default=None,
                    metavar="onset_v=V,onset_ber=B,slope=S|CSV",
                    help="BER curve: the bit-flip model (instead of TABLE)")
    sp.add_argument("--voltages", default=None, metavar="START:STOP:STEP|V,V,...",
                    help="with --curve: the voltage grid")
    sp.add_argument("--bits", type=bit_list, default=None,
                    help="with --curve: bit ranges (default 0-29,30)")
    sp.add_argument("--array", default=None,
                    help="with --curve: the closed loop's array (default 256x256-ws)")
    sp.add_argument("--out", default=str(OUT / "spec.json"), metavar="FILE",
                    help=f"spec file to write (default {OUT / 'spec.json'})")
    sp.add_argument("--seeds", type=comma_list(int, what="integers"), default=[0, 1, 2],
                    help="seeds, comma-separated (default 0,1,2)")
    sp.add_argument("--policies", type=_policies, default=None,
                    help=f"policies, comma-separated (default {','.join(POLICIES)}; with "
                    "--curve none,classic,approx,realm)")
    sp.add_argument("--components", type=_components, default=list(COMPONENTS),
                    help="components (default all nine)")
    sp.add_argument("--every", type=POSITIVE,
                    default=1, help="keep every n-th voltage (default 1: all)")
    sp.add_argument("--max-p-element", type=PROBABILITY, default=1.0,
                    help="stop at the first voltage where an element is wrong with at least "
                    "this probability (default 1: every voltage of the table)")
    sp.add_argument("--params", default="docs/results/abft/params/{array}.json",
                    help="statistical unit parameter files (default "
                    "docs/results/abft/params/{array}.json)")

    ca = command(sub, "campaign", check=check_campaign, run=run_campaign,
                 help="run a spec (resumable; = realm llm campaign)",
                 description="Run every point of SPEC not yet in --out, one JSON line per "
                 "point; rerun to resume.")
    ca.add_argument("spec", help="campaign spec (realm energy spec)")
    ca.add_argument("--out", default=str(OUT / "campaign.jsonl"), metavar="FILE",
                    help=f"results file (default {OUT / 'campaign.jsonl'})")
    workers_arg(ca)
    ca.add_argument("--threads", type=POSITIVE, default=None, help="torch threads per worker")
    ca.add_argument("--no-progress", action="store_true", help="no progress bar")
    engine_args(ca)

    va = command(
        sub, "values", check=check_values, run=run_values, raw=True,
        help="a voltage table from your CSV of error values and probabilities per voltage",
        description="""\
The value error model: CSV (columns v, value, p, optionally component) says that at supply
voltage v an INT32 accumulator element (of that component, or of every one) receives the
additive error `value` with probability p (per voltage and component the p sum to at most 1;
a voltage whose p are all 0 is error-free). Writes it as a voltage table whose p is per output
element (k_eff 1), which realm energy spec, campaign and report then run like a timing table
(ThUnderVolt left out: there are no dropped products; DMR's ratio per element).""")
    va.add_argument("csv", help="the error values (CSV: v,value,p[,component])")
    va.add_argument("--out", default=str(OUT / "tables" / "values.json"), metavar="FILE",
                    help=f"table to write (default {OUT / 'tables' / 'values.json'})")
    va.add_argument("--array", default="256x256-ws",
                    help="the array the table is for (default 256x256-ws)")
    va.add_argument("--model", default="smollm2-135m",
                    help="the model whose components it covers (default smollm2-135m)")
    va.add_argument("--length", type=POSITIVE, default=512,
                    help="tokens per window, for SV's reduction length (default 512)")

    bf = command(
        sub, "bitflip", check=check_bitflip, run=run_bitflip, raw=True,
        help="Table II under the paper's bit-flip model, per BER curve and bit range",
        description="""\
Energy, sweet spots and the Table II analogue under the bitflip error model: each INT32
accumulator element flips one bit with probability BER(V), the bit uniform in a range. RESULTS
is a closed-loop campaign on a BER grid (realm llm campaign with arrays and policies, e.g.
docs/results/abft/campaign.jsonl). Its cell at BER b is the model at the voltage V(b) of each
--curve exactly (the injector depends on V only through BER(V); same seeds), so nothing is
remapped approximately; voltages between grid BERs are not measured, and a sweet spot at
either end of the grid is printed as a bound (<= or >=). DMR's recompute ratio is computed
(either copy flips in a decision unit); ThUnderVolt does not apply to bit flips. Writes
table2.csv, table2.json, curves.csv and summary.md (one table per curve and bit range, side
by side with --timing's).""")
    bf.add_argument("results", nargs="+", help="closed-loop bitflip campaign results (JSONL; "
                    "several files of the same settings are read as one)")
    bf.add_argument("--curve", type=_curve, action="append", default=[],
                    metavar="onset_v=V,onset_ber=B,slope=S|CSV",
                    help="BER curve: parametric (onset voltage, BER at the onset, slope in "
                    "decades per 10 mV) or a CSV with columns v,ber; repeat for several")
    bf.add_argument("--bits", type=bit_list, default=[[0, 29], 30],
                    help="bit ranges, comma-separated (default 0-29,30: the paper's evaluation "
                    "and characterization)")
    bf.add_argument("--array", type=comma_list(what="arrays"), default=["256x256-ws"],
                    help="the closed loop's arrays (tile sizes), comma-separated; each is a "
                    "table of its own (default 256x256-ws)")
    bf.add_argument("--params", default="docs/results/abft/params/{array}.json",
                    help="the parameter files the closed loop ran (its points of other files, "
                    "or of earlier fits, are left out; default "
                    "docs/results/abft/params/{array}.json)")
    bf.add_argument("--tol", type=checked(float, lambda v: v > 0, "a positive number"),
                    default=0.3, help="perplexity tolerance (default 0.3, the paper's)")
    bf.add_argument("--timing", default=None, metavar="TABLE2_JSON",
                    help="a timing report's table2.json to set beside (e.g. "
                    "docs/results/energy/table2.json)")
    bf.add_argument("--out", default=str(OUT / "bitflip"), metavar="DIR",
                    help=f"output directory (default {OUT / 'bitflip'})")

    r = command(
        sub, "report", run=run_report, raw=True,
        help="energy, sweet spots, Table II / Fig. 9 analogues, sensitivity",
        description="""\
From a timing campaign's results: per component, policy and voltage the perplexity
degradation (mean and upper 95 % bound over seeds), the recompute ratio and the energy
(realm/energy/model.py: eps(V)(1 + o_P) + r_P(1 + o_P), relative to the unprotected array at
0.9 V; o_P from our synthesis report); the sweet spot of each policy (lowest energy with the
upper bound within --tol); ReaLM's saving vs nominal and vs the best other policy; the same
under the other tables' timing settings (remapped by p, not rerun) and leakage shares 0, 0.1,
0.3. Writes curves.csv, table2.csv/json, sensitivity.csv, pv.csv, fig9_k.png, fig9_o.png.""")
    r.add_argument("results", help="campaign results (JSONL)")
    r.add_argument("--table", required=True, help="the voltage table the campaign ran")
    r.add_argument("--others", nargs="*", default=[], help="tables of other timing settings")
    r.add_argument("--tol", type=checked(float, lambda v: v > 0, "a positive number"),
                   default=0.3, help="perplexity tolerance (default 0.3, the paper's)")
    r.add_argument("--out", default=str(OUT), metavar="DIR",
                   help=f"output directory (default {OUT})")
