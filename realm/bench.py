"""``realm bench``: simulated MACs per wall second of one GEMM through (1) Verilator via
cocotb, (2) Amaranth's built-in Python simulator, (3) the golden cycle model."""
import json
import pathlib
import time

from hw.config import ArrayConfig


def bench(args):
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
    return 0
