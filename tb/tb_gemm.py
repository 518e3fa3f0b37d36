"""cocotb module behind ``realm sim``, ``realm run`` and ``realm bench``: push a tiled GEMM
through the RTL, check every cycle against the golden model and the product against the int64
oracle, and write the figures as JSON to ``$REALM_RESULT`` (the product, with
``$REALM_PRODUCT``, as ``.npy``). Operands are seeded LLM-like ones, or the ``x`` and ``w`` of
the ``.npz`` file ``$REALM_OPERANDS``."""
import json
import os
import time

import cocotb

from golden.array import ArrayModel
from golden.stimulus import Driver, collect, decisions
from golden.workload import TiledGemm, llm_like_operands
from hw.config import ArrayConfig
from tb.common import ArrayTB, compare_traces, log_seed
from tb.scenarios import suite_seed


@cocotb.test()
async def gemm(dut):
    config = ArrayConfig.from_json(os.environ["REALM_CONFIG"])
    m, k, n = (int(v) for v in os.environ["REALM_GEMM"].split(","))
    seed = suite_seed()
    log_seed(seed)
    if os.environ.get("REALM_OPERANDS"):  # realm run: the user's own matrices
        import numpy as np
        import torch
        with np.load(os.environ["REALM_OPERANDS"]) as f:
            operands = torch.from_numpy(f["x"]), torch.from_numpy(f["w"])
    else:
        operands = llm_like_operands(m, k, n, seed, config.data_width)
    gemm = TiledGemm(config, *operands)
    program = gemm.program()
    faults = []
    if os.environ.get("REALM_FAULTS"):
        from golden.faults import load_faults
        faults = load_faults(os.environ["REALM_FAULTS"], config)
    params = json.loads(os.environ.get("REALM_PARAMS") or "null")
    if params:  # the sets of a parameter file; tiles use the chosen component's
        from golden.stats import StatParams
        program = ([("params", s, StatParams(**p)) for s, p in params["sets"]]
                   + [("select", params["select"])] + program)
    elif faults:
        from golden.stats import policy_sets
        # Parameter sets 0-3: classic, approx, realm, realm with |d| MSD; tiles use realm.
        program = policy_sets(config) + [("select", 2)] + program

    tb = ArrayTB(dut, config)
    await tb.start()
    t0 = time.perf_counter()
    want = ArrayModel(config, faults).run(Driver(config, program))
    t_golden = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = await tb.run(Driver(config, program), len(want), faults)
    t_rtl = time.perf_counter() - t0
    product = gemm.assemble(collect(config, got))
    if os.environ.get("REALM_PRODUCT"):
        import numpy as np
        np.save(os.environ["REALM_PRODUCT"], product.numpy())
    result = {
        "config": config.to_dict(), "gemm": [m, k, n], "seed": seed, "tiles": gemm.tiles,
        "cycles": len(want), "macs": gemm.macs, "rtl_seconds": t_rtl,
        "rtl_macs_per_s": gemm.macs / t_rtl, "golden_cycle_seconds": t_golden,
        "golden_macs_per_s": gemm.macs / t_golden,
        "matches_oracle": bool((product == gemm.reference()).all()),
        "wrong_elements": int((product != gemm.reference()).sum()),
        "matches_golden_every_cycle": True,
        "faults": [f.to_dict() for f in faults],
    }
    if params:
        result["params"] = {k: params[k] for k in ("file", "component", "select")}
    if config.abft.value != "none":
        result["decisions"] = decisions(got)
        last = got[-1]
        result["counters"] = {k[2:]: last[k] for k in last if k.startswith("c_")}
    try:
        compare_traces(got, want, seed)
    except AssertionError as e:
        result.update(matches_golden_every_cycle=False, first_mismatch=str(e))
    with open(os.environ["REALM_RESULT"], "w") as f:
        json.dump(result, f, indent=1)
    assert result["matches_oracle"] or faults, "RTL product differs from the int64 oracle"
    assert result["matches_golden_every_cycle"] is not False, result.get("first_mismatch")

