"""The synthesis report: ``report.md`` (tables and statements) and ``overhead.png`` from the
dict :func:`synth.sweep.sweep` returns."""
import importlib.metadata

from .flow import ABC_SCRIPT, LIBERTY, liberty_source

#: ReaLM's published overheads on a 256x256 array (14 nm, Design Compiler; paper Sec. VI).
PAPER = {"ws": {"area": 1.43, "power": 1.82}, "os": {"area": 1.42, "power": 1.79}}


def _pct(x, digits=2):
    return "" if x is None else f"{x:.{digits}f} %"


def _header():
    return [
        "# Area, timing and power of the ABFT variants", "",
        "Reproduce with `make synth` (or `realm synth --help`). Every figure below comes "
        "from open tools:", "",
        f"* **Synthesis**: Yosys {importlib.metadata.version('pyosys')} (the `pyosys` wheel), "
        "`synth -flatten` with `wreduce` run to a fixed point, `dfflibmap`, then ABC with the Liberty (script "
        f"`{ABC_SCRIPT}`), `stat -liberty`. Areas are cell areas at minimum drive strength "
        "(no timing-driven sizing, no wires, no placement).",
        f"* **Library**: `{LIBERTY.name}` from Debian's `{liberty_source()}` (OSU 0.18 um, "
        "fetched at synth time, not redistributed). These cells are 3-4x larger than "
        "commercial 180 nm cells: compare variants, not absolute silicon.",
        "* **Critical path**: ABC `stime` with the Liberty timing (longest combinational path "
        "between registers and ports, no wire load).",
        "* **Large arrays**: composed from leaf blocks synthesized with the same flow "
        "(`synth/compose.py`, `synth/leaves.py`); checked against flat synthesis below.",
        "* **Power**: `synth/power.py`, gate-level simulation of the mapped netlist under a "
        "seeded LLM-like GEMM, checked against the golden model on every cycle; method and "
        "limits in `synth/README.md`.", ""]


def _large(rep, lines):
    comp = rep["composed"]
    if not comp:
        return
    n = max(r["rows"] for r in comp)
    lines += [f"## {n}x{n}: overhead against the unprotected array (composed)", "",
              "| dataflow | variant | area (mm²) | area overhead | vs PE grid only | "
              "power (mW) | power overhead | ReaLM paper (14 nm) | critical path (ps) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in comp:
        if r["rows"] != n:
            continue
        paper = (f"{PAPER[r['dataflow']]['area']} % area, {PAPER[r['dataflow']]['power']} % "
                 "power") if r["abft"] == "realm" else ""
        prot = r["abft"] != "none"
        power = (f"{r['power']['total_uw'] / 1e3:,.0f} | "
                 f"{_pct(r.get('power_overhead_pct'), 3) if prot else ''}"
                 if "power" in r else " | ")
        lines.append(f"| {r['dataflow']} | {r['abft']} | {r['area_um2'] / 1e6:,.2f} | "
                     f"{_pct(r['area_overhead_pct'], 3)} | "
                     f"{_pct(r['overhead_vs_pe_grid_pct'], 3) if prot else ''} | {power} | "
                     f"{paper} | {r['delay_ps']:.0f} |")
    lines += ["", "\"vs PE grid only\" divides the same extra area by the PE grid alone, "
              "leaving out the unprotected array's input skew and (WS) output-alignment "
              "registers, which the baseline includes.", ""]
    for r in comp:
        if r["rows"] == n and r["abft"] == "realm":
            total = sum(r["breakdown_um2"].values())
            lines += [f"Where the realm variant's extra area goes ({r['dataflow']}, {n}x{n}; "
                      f"% of the unprotected array):", "", "| block | um² | % |", "|---|---|---|"]
            base = r["area_um2"] - total
            for block, um2 in sorted(r["breakdown_um2"].items(), key=lambda kv: -kv[1]):
                lines.append(f"| {block} | {um2:,.0f} | {100 * um2 / base:.3f} % |")
            lines.append("")


def _flat(rep, lines):
    flat = rep["flat"]
    if not flat:
        return
    err = max(abs(r["composition_error_pct"]) for r in flat)
    lines += ["## Flat synthesis, and the composition checked against it", "",
              "| config | cells | flip-flops | area (um²) | overhead | critical path (ps) | "
              "composed (um²) | composition error |", "|---|---|---|---|---|---|---|---|"]
    for r in flat:
        lines.append(f"| {r['config']} | {r['cells']:,} | {r['flops']:,} | "
                     f"{r['area_um2']:,.0f} | {_pct(r['area_overhead_pct'])} | "
                     f"{r['delay_ps']:.0f} | {r['composed_um2']:,.0f} | "
                     f"{r['composition_error_pct']:+.2f} % |")
    lines += ["", f"Largest composition error: **{err:.2f} %** (the composition counts "
              "every leaf's cells as synthesized alone; flat synthesis also optimizes across "
              "leaf boundaries and buffers the broadcast nets; and ABC's mapping of the same "
              "logic depends on the rest of the netlist around it).", ""]


def _timing(rep, lines):
    lines += ["## Timing: does the ABFT logic lengthen the critical path?", ""]
    for r in rep["composed"]:
        if r["abft"] == "none":
            continue
        base = next(b for b in rep["composed"] if b["abft"] == "none"
                    and b["dataflow"] == r["dataflow"] and b["rows"] == r["rows"])
        extra = {k: v for k, v in r["leaf_delay_ps"].items() if k not in base["leaf_delay_ps"]}
        worst = max(extra.items(), key=lambda kv: kv[1]) if extra else None
        if worst is None or r["rows"] != max(b["rows"] for b in rep["composed"]):
            continue
        verdict = "does not lengthen" if worst[1] <= base["delay_ps"] else "**lengthens**"
        lines.append(f"* {r['config']}: longest ABFT block `{worst[0]}` {worst[1]:.0f} ps "
                     f"against the unprotected array's longest block {base['delay_ps']:.0f} ps:"
                     f" the ABFT logic {verdict} the critical path.")
    lines += ["", "Flat arrays whose ABFT variant has a longer path than the unprotected one "
              "(below) are small WS arrays, whose unprotected partial sums keep only 16 + r "
              "significant bits (see `synth/README.md`) so their PEs are shorter than an INT32 "
              "multiply-accumulate; or small OS arrays, whose longest paths run from the "
              "sequencer's state register through its decoder into an adder, a kind of path "
              "the unprotected array has too (its own critical path at 8x8), and which ABC "
              "maps differently in every netlist. The ABFT blocks are designed against the "
              "full-width PE" + (f", and the composed {_largest(rep)} figures above compare them "
                                 "with it." if rep["composed"] else "."), ""]
    for r in rep["flat"]:
        if r["abft"] == "none":
            continue
        base = next(b for b in rep["flat"] if b["abft"] == "none"
                    and b["dataflow"] == r["dataflow"] and b["rows"] == r["rows"])
        if r["delay_ps"] > base["delay_ps"] * 1.02:
            lines.append(f"* flat {r['config']}: {r['delay_ps']:.0f} ps against "
                         f"{base['delay_ps']:.0f} ps unprotected.")
    lines.append("")


def _largest(rep):
    n = max(r["rows"] for r in rep["composed"])
    return f"{n}x{n}"


def _power(rep, lines):
    if not rep["power"]:
        return
    lines += ["## Power (activity-based, gate level)", "",
              "| config | cycles checked | dynamic (uW) | total (uW) | dynamic overhead | "
              "energy per cycle (pJ) |", "|---|---|---|---|---|---|"]
    for p in rep["power"]:
        ov = p.get("overhead_pct", {}).get("dynamic_uw")
        lines.append(f"| {p['config']} | {p['cycles_checked']} | {p['dynamic_uw']:,.1f} | "
                     f"{p['total_uw']:,.1f} | {_pct(ov)} | "
                     f"{p['energy_per_cycle_pj']:,.2f} |")
    lines += ["", f"Workload: {rep['power'][0]['workload']}.", ""]


def _plot(rep, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for df, marker in (("ws", "o"), ("os", "s")):
        for ab, color in (("classic", "C0"), ("approx", "C1"), ("realm", "C3")):
            pts = sorted({r["rows"]: r["area_overhead_pct"] for r in rep["flat"] + rep["composed"]
                          if r["dataflow"] == df and r["abft"] == ab}.items())
            if pts:
                ax.plot(*zip(*pts), marker=marker, color=color,
                        linestyle="-" if df == "ws" else "--", label=f"{ab} ({df})")
    for df in ("ws", "os"):
        ax.axhline(PAPER[df]["area"], color="gray", linewidth=0.8, linestyle=":")
    ax.text(4, PAPER["os"]["area"] * 1.08, "ReaLM paper, 256x256 (1.42-1.43 %)", fontsize=7,
            color="gray")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("array size (n x n); flat up to 16, composed beyond")
    ax.set_ylabel("area overhead vs unprotected (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "overhead.png", dpi=120)


def write_report(rep, out):
    lines = _header()
    _large(rep, lines)
    _timing(rep, lines)
    _power(rep, lines)
    _flat(rep, lines)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    _plot(rep, out)
    return out / "report.md"
