"""The synthesis sweep behind ``realm synth``: area, timing and power of every ABFT variant
against the unprotected array, mapped to the OSU 0.18 um standard cells.

* Flat synthesis (Yosys through pyosys) of exactly the Verilog the tests simulate, for the
  sweep sizes (default 4, 8, 16), both dataflows, abft = none, classic, approx, realm.
* The same arrays composed from synthesized leaf blocks (``synth.compose``), with the error
  against flat; then the composition at the large sizes (default 32 to 256).
* Activity-based power (``synth.power``): a seeded LLM-like GEMM on the gate-level netlist,
  checked against the golden model on every cycle, toggles weighted with the Liberty data;
  for the largest composed size, composed from leaf-level simulations
  (``synth.compose_power``).

``realm synth`` writes ``build/synth/report.{md,json}`` and ``overhead.png``.
"""
from hw import paths
from hw.config import Abft, ArrayConfig

from .compose import LEAVES, breakdown, compose, leaf_verilog
from .flow import config_verilog, fetch_liberty, synthesize_cached, synthesize_config
from .leaves import instances

#: Every ABFT variant, the unprotected array first.
VARIANTS = tuple(a.value for a in Abft)
#: Where the syntheses, the power runs and the report go.
OUT = paths.BUILD / "synth"


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


def sweep(shapes, dataflows, large, power_shapes, cycles, compose_power_sizes=(),
          progress=print, jobs=1):
    """Run everything; return the report dict. ``shapes``: (rows, cols) synthesized flat and
    composed; ``large``: square sizes composed only; ``power_shapes``: (rows, cols) of the
    gate-level power estimate; ``compose_power_sizes``: composed sizes whose power is
    composed from leaf simulations; ``jobs`` syntheses at a time."""
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
    if comp and compose_power_sizes:
        from .compose_power import compose_power
        for r in comp:
            if r["rows"] in compose_power_sizes:
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
    if power_shapes:
        from .power import power_sweep
        configs = [ArrayConfig(rows=n, cols=m, dataflow=df, abft=ab)
                   for df in dataflows for n, m in power_shapes for ab in VARIANTS]
        progress(f"power: {len(configs)} gate-level simulations ...")
        power = power_sweep(configs, OUT / "power", cycles=cycles, netdir=OUT)
    return {"flat": flat, "composed": comp, "power": power}
