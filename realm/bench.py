"""``realm bench``: simulated MACs per wall second of one GEMM through (1) Verilator via
cocotb, (2) Amaranth's built-in Python simulator, (3) the golden cycle model, (4) the fast path
(:mod:`tb.fastsim`: Verilator in a compiled harness, no Python per cycle), with every trace
required equal on the same program."""
import json
import pathlib
import time

from hw.config import ArrayConfig


def bench(args):
    rows = []
    out = pathlib.Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        for dataflow in ("ws", "os"):
            rows.append(bench_one(ArrayConfig(rows=n, cols=n, dataflow=dataflow), out.parent,
                                  cocotb=n <= args.cocotb_max, pysim=not args.no_pysim))
            out.write_text(json.dumps(rows, indent=1) + "\n")
    print_table(rows)
    print(f"(MACs of the GEMM itself per wall second. Equal traces on the same program: fast = "
          f"cocotb = golden on the GEMM (without cocotb: fast = golden), pysim = golden = fast "
          f"on one tile; {out})")
    return 0


#: Runs of the fast path per row; the median counts.
FAST_RUNS = 9


def bench_one(config, where, cocotb=True, pysim=True):
    """One row of the bench: the GEMM ``4n x 4n @ 4n x 4n`` of an ``n x n`` array. The fast
    path's trace must equal cocotb's (without cocotb: the golden model's)."""
    from tb import fastsim, sim
    from tb.gemm import gemm_program

    from .simulate import run_gemm
    n = config.rows
    shape = (4 * n, 4 * n, 4 * n)
    gemm, program, _ = gemm_program(config, shape, 1)
    row = {"config": config.id, "gemm": list(shape), "macs": gemm.macs}

    if cocotb:  # build (timed apart), then the GEMM with the golden model beside it
        row["cocotb_build_fresh"] = not (sim.BUILD / "array" / config.id / ".built").exists()
        t0 = time.perf_counter()
        sim.build(config, waves=False)
        row["cocotb_build_seconds"] = time.perf_counter() - t0
        trace_path = where / f"trace-{config.id}.json"
        r = run_gemm(config, shape, 1, where / f"gemm-{config.id}.json", trace=trace_path)
        assert r["matches_oracle"] and r["matches_golden_every_cycle"], r.get("first_mismatch")
        row.update(cocotb_seconds=r["rtl_seconds"], cocotb_macs_per_s=r["rtl_macs_per_s"],
                   cocotb_cpu_macs_per_s=r["rtl_cpu_macs_per_s"],
                   cocotb_with_build_macs_per_s=gemm.macs / (r["rtl_seconds"]
                                                             + row["cocotb_build_seconds"]),
                   golden_cycle_macs_per_s=r["golden_macs_per_s"])
        want, against = json.loads(trace_path.read_text()), "cocotb"
        trace_path.unlink()
    else:
        from golden.array import ArrayModel
        from golden.stimulus import Driver
        t0 = time.perf_counter()
        want, against = ArrayModel(config).run(Driver(config, program)), "golden"
        row["golden_cycle_macs_per_s"] = gemm.macs / (time.perf_counter() - t0)
    row["cycles"] = len(want)

    # The fast path: build (timed apart), then encode, simulate, decode.
    lib = fastsim.build_path(config) / "obj" / fastsim.LIB
    before = lib.stat().st_mtime_ns if lib.exists() else None
    t0 = time.perf_counter()
    exe = fastsim.build(config)
    fastsim.encode_program(config, [])  # one-time set-up (port list, imports) goes with it
    row["fast_build_seconds"] = time.perf_counter() - t0
    row["fast_build_fresh"] = lib.stat().st_mtime_ns != before  # compiled, not found current
    runs = []
    for _ in range(FAST_RUNS):
        c0, t0 = time.process_time(), time.perf_counter()
        data = fastsim.encode_program(config, program)
        t1 = time.perf_counter()
        raw = fastsim.simulate(exe, data)
        t2 = time.perf_counter()
        got = fastsim.decode_trace(config, raw)
        t3, c3 = time.perf_counter(), time.process_time()
        assert got == want, f"{config.id}: the fast path's trace differs from {against}'s"
        runs.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2, c3 - c0))
        del got
    run, encode, simulate, decode, cpu = sorted(runs)[FAST_RUNS // 2]
    row.update(fast_seconds=run, fast_encode_seconds=encode, fast_simulate_seconds=simulate,
               fast_decode_seconds=decode, fast_cpu_seconds=cpu,
               fast_cpu_macs_per_s=gemm.macs / cpu, fast_macs_per_s=gemm.macs / run,
               fast_simulate_macs_per_s=gemm.macs / simulate,
               fast_with_build_macs_per_s=gemm.macs / (run + row["fast_build_seconds"]),
               fast_checked_against=against)
    if pysim:
        row["amaranth_pysim_macs_per_s"] = _pysim(config)
    return row


def _pysim(config):
    """Amaranth's simulator is slow: time it on one tile's worth of LLM-like operands, and
    require its trace equal to the golden model's and the fast path's."""
    from golden.array import ArrayModel
    from golden.stimulus import Driver
    from golden.workload import TiledGemm, llm_like_operands
    from tb.fastsim import run_program
    from tb.pysim import run_pysim
    n = config.rows
    small = TiledGemm(config, *llm_like_operands(n, n, n, 1))
    want = ArrayModel(config).run(Driver(config, small.program()))
    t0 = time.perf_counter()
    got = run_pysim(config, small.program(), len(want))
    macs_per_s = small.macs / (time.perf_counter() - t0)
    assert got == want, "Amaranth simulator trace differs from the golden model"
    assert run_program(config, small.program()) == want, "fast path differs on one tile"
    return macs_per_s


def print_table(rows):
    def rate(v):
        return f"{v:,.0f}" if v else "skipped"
    print(f"{'config':<9} {'cocotb':>11} {'pysim':>9} {'golden':>11} {'fast':>12} "
          f"{'fast/cocotb':>11} {'fast C++':>12} {'fast+build':>11} {'cocotb+build':>12}")
    print(f"{'':<9} {'MAC/s':>11} {'MAC/s':>9} {'MAC/s':>11} {'MAC/s':>12} {'':>11} "
          f"{'MAC/s':>12} {'MAC/s':>11} {'MAC/s':>12}")
    for r in rows:
        c = r.get("cocotb_macs_per_s")
        ratio = f"{r['fast_macs_per_s'] / c:.1f}x" if c else "-"
        print(f"{r['config']:<9} {rate(c):>11} {rate(r.get('amaranth_pysim_macs_per_s')):>9} "
              f"{rate(r['golden_cycle_macs_per_s']):>11} {rate(r['fast_macs_per_s']):>12} "
              f"{ratio:>11} {rate(r['fast_simulate_macs_per_s']):>12} "
              f"{rate(r['fast_with_build_macs_per_s']):>11} "
              f"{rate(r.get('cocotb_with_build_macs_per_s')):>12}")
    builds = []
    for r in rows:
        b = f"{r['config']} fast {r['fast_build_seconds']:.0f} s" + (
            " fresh" if r["fast_build_fresh"] else " cached")
        if "cocotb_build_seconds" in r:
            b += f", cocotb {r['cocotb_build_seconds']:.0f} s" + (
                " fresh" if r["cocotb_build_fresh"] else " cached")
        builds.append(b)
    print(f"fast: encode + simulate + decode, median of {FAST_RUNS} (build excluded); fast C++: "
          "the harness alone; +build: with the Verilator build as measured here (" +
          "; ".join(builds) + ")")
    print("Per second of CPU time (the figures a loaded machine disturbs least):")
    for r in rows:
        c = r.get("cocotb_cpu_macs_per_s")
        ratio = f", fast/cocotb {r['fast_cpu_macs_per_s'] / c:.1f}x" if c else ""
        print(f"  {r['config']:<9} cocotb {rate(c)} MAC/s, fast {rate(r['fast_cpu_macs_per_s'])} "
              f"MAC/s{ratio}")
