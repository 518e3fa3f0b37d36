"""``realm bench``: simulated MACs per wall second of one GEMM, on the array with the realm
checksums and the fault port and a seeded fault list that changes the product, through (1)
Verilator via cocotb, (2) Amaranth's built-in Python simulator, (3) the golden cycle model, (4)
the fast path (:mod:`realm.rtl.fastsim`: Verilator in a compiled harness, no Python per cycle;
its encode, simulate and decode timed apart), with every trace required equal on the same
program; then the golden cycle model on a fault campaign, one trial at a time against a batch
of trials (:func:`golden_batch`)."""
import json
import os
import pathlib
import time

from hw.config import ArrayConfig


def bench(out, sizes, *, cocotb_max=16, pysim=True, golden_only=False, batch=1024,
          batch_sizes=(16,), threads=1, reps=3):
    """Every figure of ``realm bench`` (:func:`rtl_bench` unless ``golden_only``, then
    :func:`golden_batch`); the JSON results go to ``out`` and ``golden_batch.json`` beside it.
    Returns the exit status (1 if a trace differed)."""
    out = pathlib.Path(out)
    status = 0
    if not golden_only:
        status = rtl_bench(out, sizes, cocotb_max=cocotb_max, pysim=pysim, reps=reps) or 0
        print()
    return golden_batch(batch_sizes, batch, threads, reps,
                        out.parent / "golden_batch.json") or status


def rtl_bench(out, sizes, *, cocotb_max=16, pysim=True, reps=3):
    """MAC/s of one GEMM per square array size of ``sizes`` and dataflow, on the array with
    the realm checksums and the fault port and a fault list that changes the product, through
    cocotb (up to ``cocotb_max``; the median of ``reps`` runs), the fast path (the median of
    :data:`FAST_RUNS`), Amaranth's simulator (``pysim``) and the golden model. JSON to
    ``out``, CSV beside it (:data:`CSV_FIELDS`)."""
    rows = []
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        for dataflow in ("ws", "os"):
            config = ArrayConfig(rows=n, cols=n, dataflow=dataflow, abft="realm",
                                 fault_port=True)
            rows.append(bench_one(config, out.parent, cocotb=n <= cocotb_max, pysim=pysim,
                                  reps=reps))
            out.write_text(json.dumps(rows, indent=1) + "\n")
    write_csv(out.with_suffix(".csv"), rows)
    print_table(rows)
    print(f"(MACs of the GEMM itself per wall second, on the realm array with the fault port "
          f"and a seeded fault list that changes the product. Equal traces on the same "
          f"program: fast = cocotb = golden on the GEMM (without cocotb: fast = golden), pysim "
          f"= golden = fast on one tile, fault-free; {out})")
    return 0


#: Runs of the fast path per row; the median counts.
FAST_RUNS = 9
#: The columns of the CSV file ``realm bench`` writes beside its JSON.
CSV_FIELDS = ("config", "cycles", "macs", "faults", "wrong_elements", "cocotb_macs_per_s",
              "fast_macs_per_s", "fast_over_cocotb", "fast_cpu_over_cocotb_cpu",
              "simulate_over_cocotb",
              "fast_encode_seconds", "fast_simulate_seconds", "fast_decode_seconds",
              "fast_simulate_macs_per_s", "fast_simulate_cpu_macs_per_s", "loadavg_1min")


def bench_faults(config, program, where, seed=1):
    """``(path, faults)``: one trial of a seeded fault campaign on ``program``
    (:func:`golden.faultgen.trial_faults`: the fault port takes them, one per cycle), written
    as a fault list to ``where`` for the cocotb run."""
    from golden.faultgen import trial_faults
    from golden.faults import dump_faults
    faults = trial_faults(config, program, seed, 1)[0]
    path = where / f"faults-{config.id}.json"
    dump_faults(faults, path)
    return path, faults


def bench_one(config, where, cocotb=True, pysim=True, reps=3):
    """One row of the bench: the GEMM ``4n x 4n @ 4n x 4n`` of an ``n x n`` array, with faults
    (:func:`bench_faults`) on the fault port when the configuration has one. The fast path's
    trace must equal cocotb's (without cocotb: the golden model's), and the faults must
    change the product."""
    from golden.array import ArrayModel
    from golden.stimulus import Driver
    from realm.rtl import fastsim, sim
    from realm.rtl.gemm import gemm_program
    from realm.rtl.simulate import run_gemm
    n = config.rows
    shape = (4 * n, 4 * n, 4 * n)
    faults_path = faults = None
    if config.fault_port:  # faults drawn on the program they run in (parameter sets first)
        faults_path, faults = bench_faults(config, _with_sets(config, shape), where)
    gemm, program, fault_list = gemm_program(config, shape, 1, faults=faults_path)
    assert fault_list == (faults or [])
    row = {"config": config.id, "gemm": list(shape), "macs": gemm.macs,
           "faults": len(fault_list)}

    if cocotb:  # build (timed apart), then the GEMM with the golden model beside it
        row["cocotb_build_fresh"] = not (sim.BUILD / "array" / config.id / ".built").exists()
        t0 = time.perf_counter()
        sim.build(config, waves=False, optimize=True)
        row["cocotb_build_seconds"] = time.perf_counter() - t0
        trace_path = where / f"trace-{config.id}.json"
        runs = []
        for _ in range(reps):
            r = run_gemm(config, shape, 1, where / f"gemm-{config.id}.json", trace=trace_path,
                         optimize=True, faults=faults_path)
            assert r["matches_golden_every_cycle"], r.get("first_mismatch")
            assert r["matches_oracle"] == (not fault_list), r["wrong_elements"]
            runs.append(r)
        r = sorted(runs, key=lambda r: r["rtl_seconds"])[reps // 2]  # the median, as the fast
        row.update(cocotb_seconds=r["rtl_seconds"], cocotb_macs_per_s=r["rtl_macs_per_s"],
                   cocotb_cpu_macs_per_s=sorted(r["rtl_cpu_macs_per_s"] for r in runs)[reps // 2],
                   cocotb_all_seconds=[r["rtl_seconds"] for r in runs],
                   cocotb_all_cpu_seconds=[r["rtl_cpu_seconds"] for r in runs],
                   cocotb_runs=reps, wrong_elements=r["wrong_elements"],
                   cocotb_with_build_macs_per_s=gemm.macs / (r["rtl_seconds"]
                                                             + row["cocotb_build_seconds"]),
                   golden_cycle_macs_per_s=r["golden_macs_per_s"])
        want, against = json.loads(trace_path.read_text()), "cocotb"
        trace_path.unlink()
    else:
        t0 = time.perf_counter()
        want, against = ArrayModel(config, fault_list).run(Driver(config, program)), "golden"
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
        data = fastsim.encode_program(config, program, fault_list)
        t1, c1 = time.perf_counter(), time.process_time()
        raw = fastsim.simulate(exe, data)
        t2, c2 = time.perf_counter(), time.process_time()
        got = fastsim.decode_trace(config, raw)
        t3, c3 = time.perf_counter(), time.process_time()
        assert got == want, f"{config.id}: the fast path's trace differs from {against}'s"
        runs.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2, c3 - c0, c2 - c1))
        del got
    if fault_list:
        clean = fastsim.run_program(config, program)
        assert clean != want, f"{config.id}: the faults changed nothing"
    best = [min(r[i] for r in runs) for i in range(6)]  # each step's best, of any run
    row.update(fast_best_seconds=best[0], fast_best_encode_seconds=best[1],
               fast_best_simulate_seconds=best[2], fast_best_decode_seconds=best[3],
               fast_best_cpu_seconds=best[4], fast_best_simulate_cpu_seconds=best[5])
    run, encode, simulate, decode, cpu, simulate_cpu = sorted(runs)[FAST_RUNS // 2]
    row.update(fast_seconds=run, fast_encode_seconds=encode, fast_simulate_seconds=simulate,
               fast_decode_seconds=decode, fast_cpu_seconds=cpu,
               fast_simulate_cpu_macs_per_s=gemm.macs / simulate_cpu,
               fast_cpu_macs_per_s=gemm.macs / cpu, fast_macs_per_s=gemm.macs / run,
               fast_simulate_macs_per_s=gemm.macs / simulate,
               fast_with_build_macs_per_s=gemm.macs / (run + row["fast_build_seconds"]),
               fast_checked_against=against, loadavg=os.getloadavg())
    if cocotb:
        row.update(fast_over_cocotb=row["fast_macs_per_s"] / row["cocotb_macs_per_s"],
                   fast_cpu_over_cocotb_cpu=(row["fast_cpu_macs_per_s"]
                                             / row["cocotb_cpu_macs_per_s"]),
                   simulate_over_cocotb=(row["fast_simulate_macs_per_s"]
                                         / row["cocotb_macs_per_s"]))
    if pysim:
        row["amaranth_pysim_macs_per_s"] = _pysim(config)
    return row


def _with_sets(config, shape):
    """The program :func:`realm.rtl.gemm.gemm_program` plays for ``shape`` with a fault list."""
    from golden.stats import policy_sets
    from realm.rtl.gemm import gemm_program
    program = gemm_program(config, shape, 1)[1]
    return (policy_sets(config) + [("select", 2)] if config.abft.value != "none" else []) + program


def write_csv(path, rows):
    """Write the :data:`CSV_FIELDS` of ``rows`` to ``path`` (empty where a row has none)."""
    import csv
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in rows:
            r = {**r, "loadavg_1min": r["loadavg"][0]}
            w.writerow(["" if r.get(k) is None else r[k] for k in CSV_FIELDS])


def _pysim(config):
    """Amaranth's simulator is slow: time it on one tile's worth of LLM-like operands, and
    require its trace equal to the golden model's and the fast path's."""
    from golden.array import ArrayModel
    from golden.stimulus import Driver
    from golden.workload import TiledGemm, llm_like_operands
    from realm.rtl.fastsim import run_program
    from realm.rtl.pysim import run_pysim
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
    print(f"{'config':<18} {'cocotb':>11} {'pysim':>9} {'golden':>11} {'fast':>12} "
          f"{'fast/cocotb':>11} {'fast C++':>12} {'fast+build':>11} {'cocotb+build':>12}")
    print(f"{'':<18} {'MAC/s':>11} {'MAC/s':>9} {'MAC/s':>11} {'MAC/s':>12} {'':>11} "
          f"{'MAC/s':>12} {'MAC/s':>11} {'MAC/s':>12}")
    for r in rows:
        c = r.get("cocotb_macs_per_s")
        ratio = f"{r['fast_macs_per_s'] / c:.1f}x" if c else "-"
        print(f"{r['config']:<18} {rate(c):>11} {rate(r.get('amaranth_pysim_macs_per_s')):>9} "
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
    print(f"fast: encode + simulate + decode, median of {FAST_RUNS} runs; cocotb: median of "
          f"{rows[0].get('cocotb_runs', 0)} runs (builds excluded); fast C++: the harness "
          "alone; +build: with the Verilator build as measured here (" + "; ".join(builds)
          + ")")
    print("The fast path, where its time goes (median run; ms of wall time):")
    for r in rows:
        parts = [r[f"fast_{k}_seconds"] for k in ("encode", "simulate", "decode")]
        total = r["fast_seconds"]
        print(f"  {r['config']:<18} {r['cycles']} cycles, {r['faults']} faults: encode "
              f"{parts[0] * 1e3:.2f}, simulate {parts[1] * 1e3:.2f}, decode "
              f"{parts[2] * 1e3:.2f}; total {total * 1e3:.2f} (Python "
              f"{100 * (parts[0] + parts[2]) / total:.0f} %); load average "
              f"{r['loadavg'][0]:.2f} on {os.cpu_count()} CPUs")
    print("Best of the runs (cocotb's and the fast path's alike; each fast step its best):")
    for r in rows:
        if "cocotb_all_seconds" not in r:
            continue
        wall, cpu = min(r["cocotb_all_seconds"]), min(r["cocotb_all_cpu_seconds"])
        print(f"  {r['config']:<18} fast/cocotb {wall / r['fast_best_seconds']:.1f}x wall, "
              f"{cpu / r['fast_best_cpu_seconds']:.1f}x CPU (the harness alone "
              f"{cpu / r['fast_best_simulate_cpu_seconds']:.1f}x); fast ms: encode "
              f"{r['fast_best_encode_seconds'] * 1e3:.2f}, simulate "
              f"{r['fast_best_simulate_seconds'] * 1e3:.2f} ("
              f"{r['fast_best_simulate_cpu_seconds'] * 1e3:.2f} CPU), decode "
              f"{r['fast_best_decode_seconds'] * 1e3:.2f}; total {r['fast_best_seconds'] * 1e3:.2f}"
              f" ({r['fast_best_cpu_seconds'] * 1e3:.2f} CPU)")
    print("Per second of CPU time (the figures a loaded machine disturbs least):")
    for r in rows:
        c = r.get("cocotb_cpu_macs_per_s")
        ratio = (f", fast/cocotb {r['fast_cpu_macs_per_s'] / c:.1f}x (the harness alone "
                 f"{r['fast_simulate_cpu_macs_per_s'] / c:.1f}x)") if c else ""
        print(f"  {r['config']:<18} cocotb {rate(c)} MAC/s, fast "
              f"{rate(r['fast_cpu_macs_per_s'])} MAC/s (the harness alone "
              f"{rate(r['fast_simulate_cpu_macs_per_s'])}){ratio}")


def golden_batch(sizes, batch, threads, reps, out):
    """Time the golden cycle model on one n x n tile program per size, dataflow and ABFT variant
    (:func:`_campaign`) with ``threads`` torch threads; print a table, write JSON to ``out``;
    return 0 if every batch agreed with the unbatched model."""
    import torch
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = [{**_campaign(ArrayConfig(rows=n, cols=n, dataflow=d, abft=a), batch, reps),
                 "threads": threads}
                for n in sizes for d in ("ws", "os") for a in ("none", "realm")]
    finally:
        torch.set_num_threads(saved)
    print(f"golden cycle model, one NxN tile program (N**3 MACs), a fault campaign of B trials "
          f"({threads} torch thread{'s' * (threads != 1)}):")
    print(f"{'config':<16} {'B=1 unbatched':>18} {f'B={batch} batched':>20} {'ratio':>8}"
          f" {'CPU ratio':>10} {'PE regs':>8} {'trials equal':>13}")
    for r in rows:
        print(f"{r['config']:<16} {r['unbatched_macs_per_s']:>12,.0f} MAC/s"
              f" {r['batched_macs_per_s']:>14,.0f} MAC/s {r['ratio']:>7.1f}x"
              f" {r['cpu_ratio']:>9.1f}x {r['pe_register_bytes'] / 2**20:>5.1f} MB"
              f" {'yes' if r['match'] else 'NO':>13}")
    load = os.getloadavg()
    print(f"(MACs per wall second, counted once per trial; B=1: {rows[0]['serial_trials']} trials "
          f"one after the other; best of {reps} runs each; CPU ratio: the same from process CPU "
          f"time; load average {load[0]:.2f} on {os.cpu_count()} CPUs; {out})")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["match"] for r in rows) else 1


def _campaign(config, batch, reps, serial=32):
    """Time a fault campaign on one n x n tile program of ``config`` (load + n vectors in WS,
    one tile of depth n in OS: n**3 MACs, after the test parameter sets with ABFT), each trial
    with its own random faults (:func:`tb.faultgen.trial_faults`): the unbatched model on
    ``serial`` trials one after the other (per trial), :func:`golden.array.BatchedArrayModel`
    on all ``batch`` trials at once. Best wall and CPU time of ``reps`` runs each, alternated,
    after one untimed run of each; the first and last trial of the batch checked against the
    unbatched model, every cycle."""
    from golden.array import ArrayModel, BatchedArrayModel, acc_dtype, unbatch
    from golden.faultgen import trial_faults
    from golden.stats import policy_sets
    from golden.stimulus import Driver
    from golden.workload import TiledGemm, llm_like_operands

    n = config.rows
    gemm = TiledGemm(config, *llm_like_operands(n, n, n, 1))
    head = policy_sets(config) + [("select", 2)] if str(config.abft) != "none" else []
    program = head + gemm.program()
    faults = trial_faults(config, program, 1, batch)
    serial = min(serial, batch)

    def unbatched():
        return [ArrayModel(config, f).run(Driver(config, program)) for f in faults[:serial]]

    def batched():
        return BatchedArrayModel(config, faults).run(Driver(config, program))

    best, traces = {}, {}
    for i in range(reps + 1):
        for key, run, trials in (("unbatched", unbatched, serial), ("batched", batched, 1)):
            t0, c0 = time.perf_counter(), time.process_time()
            traces[key] = run()
            times = ((time.perf_counter() - t0) / trials, (time.process_time() - c0) / trials)
            if i:
                best[key] = min(best.get(key, times), times)
    match = all([unbatch(o, t) for o in traces["batched"]] ==
                ArrayModel(config, faults[t]).run(Driver(config, program))
                for t in (0, batch - 1))
    (one_wall, one_cpu), (many_wall, many_cpu) = best["unbatched"], best["batched"]
    return {"config": config.id, "macs_per_trial": gemm.macs, "cycles": len(traces["batched"]),
            "batch": batch, "serial_trials": serial,
            "unbatched_macs_per_s": gemm.macs / one_wall,
            "batched_macs_per_s": batch * gemm.macs / many_wall,
            "ratio": batch * one_wall / many_wall, "cpu_ratio": batch * one_cpu / many_cpu,
            "unbatched_wall_s_per_trial": one_wall, "unbatched_cpu_s_per_trial": one_cpu,
            "batched_wall_s": many_wall, "batched_cpu_s": many_cpu,
            "pe_register_bytes": batch * n * n * (4 + 4 + acc_dtype(config).itemsize),
            "match": match, "loadavg": os.getloadavg()}
