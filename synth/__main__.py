"""``python -m synth``: flat synthesis of every ABFT variant to the OSU 0.18 um cells, with area,
flip-flops, critical path and overhead against the unprotected array of the same size and
dataflow. Writes ``build/synth/report.{json,md}`` and ``overhead.png``.

Done so far (issue 4, in progress): the flat sweep. Not yet: the 256x256 composition from leaf
blocks, the activity-based power estimate.
"""
import argparse
import json
import pathlib
import sys

from hw.config import ArrayConfig

from .flow import LIBERTY, synthesize_config

VARIANTS = ("none", "classic", "approx", "realm")
OUT = pathlib.Path("build/synth")


def sweep(sizes, dataflows, variants=VARIANTS, progress=print):
    rows = []
    for df in dataflows:
        for n in sizes:
            for ab in variants:
                config = ArrayConfig(rows=n, cols=n, dataflow=df, abft=ab)
                progress(f"synthesizing {config.id} ...")
                r = synthesize_config(config, OUT / config.id)
                rows.append({"config": config.id, "rows": n, "cols": n, "dataflow": df,
                             "abft": ab, **r})
    base = {(r["dataflow"], r["rows"]): r for r in rows if r["abft"] == "none"}
    for r in rows:
        b = base.get((r["dataflow"], r["rows"]))
        r["area_overhead_pct"] = (100 * (r["area_um2"] / b["area_um2"] - 1)) if b else None
    return rows


def write_report(rows):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Area and timing per ABFT variant (flat synthesis)", "",
             f"Yosys (pyosys 0.70) `synth -flatten`, `dfflibmap` + ABC mapping to the OSU 0.18 um "
             f"Liberty (`{LIBERTY.name}`, Debian qflow-tech-osu018); delay from ABC `stime`.",
             "Regenerate with `make synth`.", "",
             "| config | cells | flip-flops | area (um²) | overhead | critical path (ps) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ov = "" if r["area_overhead_pct"] is None else f"{r['area_overhead_pct']:.2f} %"
        lines.append(f"| {r['config']} | {r['cells']} | {r['flops']} | {r['area_um2']:,.0f} | "
                     f"{ov} | {r['delay_ps']:.0f} |")
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for df in sorted({r["dataflow"] for r in rows}):
        for ab in VARIANTS[1:]:
            pts = [(r["rows"], r["area_overhead_pct"]) for r in rows
                   if r["dataflow"] == df and r["abft"] == ab and r["area_overhead_pct"] is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"{ab} ({df})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("array size (n x n)")
    ax.set_ylabel("area overhead vs unprotected (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "overhead.png", dpi=120)
    return OUT / "report.md"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, help="synthesize one size (with --cols, --dataflow)")
    p.add_argument("--cols", type=int)
    p.add_argument("--dataflow", choices=["ws", "os"])
    p.add_argument("--sizes", default="4,8,16", help="square sizes of the sweep (default 4,8,16)")
    args = p.parse_args(argv)
    if args.rows is not None:
        if args.cols is not None and args.cols != args.rows:
            p.error("the sweep compares square arrays: give --rows only, or equal --cols")
        sizes, dataflows = [args.rows], [args.dataflow or "ws"]
    else:
        sizes, dataflows = [int(s) for s in args.sizes.split(",")], ["ws", "os"]
    try:
        rows = sweep(sizes, dataflows)
    except ValueError as e:
        p.error(str(e))
    report = write_report(rows)
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
