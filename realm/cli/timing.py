"""``realm timing``: timing errors of one processing element vs supply voltage (STA,
SDF-annotated gate-level simulation, p(V) and f_e(V); :mod:`synth.timing`,
:mod:`synth.voltage`)."""
import pathlib
import time

from .args import BadInput, checked, command, config_args, int_list, need
from .paths import writable


def add(sub):
    t = command(
        sub, "timing", check=check, run=run, raw=True,
        help="timing errors of one PE vs supply voltage (STA, SDF gate-level sim)",
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


def check(args):
    need("synth")
    from hw.config import ArrayConfig
    from synth import timing, voltage
    from synth.tools import ToolUnavailable, icarus, opensta
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
        raise BadInput(str(e)) from None
    if args.onset is not None and args.margin is not None:
        raise BadInput("--margin and --onset exclude each other")
    if args.onset is not None:
        try:
            voltage.check_grid([args.onset], args.curve)
        except ValueError as e:
            raise BadInput(f"--onset: {e}") from None
    try:  # fail before any work if a tool cannot be had
        opensta(), icarus()
    except ToolUnavailable as e:
        raise BadInput(str(e)) from None
    args.config, args.pe_sel, args.stream_data, args.stream_name = config, pe, stream, name
    args.voltages = grid
    args.out_dir = writable(args.out or f"build/timing/{pe.name}", "--out", folder=True)


def run(args):
    from synth import timing, voltage
    from synth.sta import sta as run_sta
    from synth.sta import synthesize_pe
    config, pe, stream, name = args.config, args.pe_sel, args.stream_data, args.stream_name
    out, grid = args.out_dir, args.voltages
    print(f"pe          {pe.key} at {pe.at} ({pe.count} in the array)")
    t0 = time.perf_counter()
    char = timing.characterize(pe, out / "work", stream=stream, cycles=args.cycles,
                               seed=args.seed, k=args.k, stream_name=name)
    sta = char.sta
    reference = {"pe": pe.key, "min_period_ps": sta.min_period}
    if pe.check:  # the array's PE sets the clock
        ref = timing.select_pe(config)
        ref_netlist = synthesize_pe(ref, out / "reference")
        reference = {"pe": ref.key, "at": list(ref.at),
                     "min_period_ps": run_sta(ref_netlist, out / "reference").min_period}
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
