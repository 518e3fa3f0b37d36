"""``realm bench``: simulated MACs per wall second of one GEMM through (1) Verilator via
cocotb, (2) Amaranth's built-in Python simulator, (3) the golden cycle model; then the golden
cycle model on a fault campaign, one trial at a time against a batch of trials
(:func:`golden_batch`)."""
import json
import os
import pathlib
import time

from hw.config import ArrayConfig


def bench(args):
    out = pathlib.Path(args.output)
    if not args.golden_only:
        rtl_bench(args)
        print()
    return golden_batch(args.batch_sizes, args.batch, args.threads, args.reps,
                        out.parent / "golden_batch.json")


def rtl_bench(args):
    from golden.array import ArrayModel
    from golden.stimulus import Driver
    from golden.workload import TiledGemm, llm_like_operands
    from tb.pysim import run_pysim

    from .simulate import run_gemm
    rows = []
    out = pathlib.Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        for dataflow in ("ws", "os"):
            config = ArrayConfig(rows=n, cols=n, dataflow=dataflow)
            shape = (4 * n, 4 * n, 4 * n)
            r = run_gemm(config, shape, 1, out.parent / f"gemm-{config.id}.json")
            # Amaranth's simulator is slow: time it on one tile's worth of the same operands.
            small = TiledGemm(config, *llm_like_operands(n, n, n, 1))
            want = ArrayModel(config).run(Driver(config, small.program()))
            t0 = time.perf_counter()
            got = run_pysim(config, small.program(), len(want))
            pysim = small.macs / (time.perf_counter() - t0)
            assert got == want, "Amaranth simulator trace differs from the golden model"
            rows.append({"config": config.id, "gemm": list(shape),
                         "verilator_macs_per_s": r["rtl_macs_per_s"],
                         "amaranth_pysim_macs_per_s": pysim,
                         "golden_cycle_macs_per_s": r["golden_macs_per_s"],
                         "match": r["matches_oracle"] and r["matches_golden_every_cycle"]})
    print(f"{'config':<10} {'Verilator+cocotb':>18} {'Amaranth pysim':>16} {'golden cycle':>14}"
          f" {'Verilator/pysim':>16} {'Verilator/golden':>17}")
    for r in rows:
        v, p, g = (r["verilator_macs_per_s"], r["amaranth_pysim_macs_per_s"],
                   r["golden_cycle_macs_per_s"])
        print(f"{r['config']:<10} {v:>14,.0f} MAC/s {p:>12,.0f} MAC/s {g:>10,.0f} MAC/s"
              f" {v / p:>15.1f}x {v / g:>16.1f}x")
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"(MACs of the GEMM itself per wall second; all three traces equal; {out})")


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
    from golden.stimulus import Driver
    from golden.workload import TiledGemm, llm_like_operands
    from tb.faultgen import policy_sets, trial_faults

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
