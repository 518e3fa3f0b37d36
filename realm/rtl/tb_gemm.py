"""cocotb module behind ``realm sim``, ``realm run`` and ``realm bench``: push a tiled GEMM
through the RTL, check every cycle against the golden model and the product against the int64
oracle, and write the figures as JSON to ``$REALM_RESULT`` (the product, with
``$REALM_PRODUCT``, as ``.npy``; the per-cycle outputs, with ``$REALM_TRACE``, as JSON).
Operands are seeded LLM-like ones, or the ``x`` and ``w`` of the ``.npz`` file
``$REALM_OPERANDS``; the statistical unit is programmed from the parameter file
``$REALM_PARAMS`` (component ``$REALM_COMPONENT``'s set) if given; the program is
:func:`realm.rtl.gemm.gemm_program`'s."""
import json
import os
import time

import cocotb

from golden.array import ArrayModel
from golden.stimulus import Driver
from hw.config import ArrayConfig
from realm.rtl.common import ArrayTB, compare_traces, log_seed
from realm.rtl.gemm import gemm_program, gemm_result, param_program
from realm.rtl.sim import suite_seed


@cocotb.test()
async def gemm(dut):
    config = ArrayConfig.from_json(os.environ["REALM_CONFIG"])
    shape = [int(v) for v in os.environ["REALM_GEMM"].split(",")]
    seed = suite_seed()
    log_seed(seed)
    params = None
    if os.environ.get("REALM_PARAMS"):
        config, params = param_program(os.environ["REALM_PARAMS"], config,
                                       os.environ.get("REALM_COMPONENT"))
    gemm, program, faults = gemm_program(
        config, shape, seed, operands=os.environ.get("REALM_OPERANDS"),
        faults=os.environ.get("REALM_FAULTS"), params=params)

    tb = ArrayTB(dut, config)
    await tb.start()
    t0 = time.perf_counter()
    want = ArrayModel(config, faults).run(Driver(config, program))
    t_golden = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    got = await tb.run(Driver(config, program), len(want), faults)
    t_rtl, c_rtl = time.perf_counter() - t0, time.process_time() - c0
    result, product = gemm_result(config, seed, gemm, faults, got, t_rtl, "cocotb", params,
                                  cpu_seconds=c_rtl)
    if os.environ.get("REALM_PRODUCT"):
        import numpy as np
        np.save(os.environ["REALM_PRODUCT"], product.numpy())
    if os.environ.get("REALM_TRACE"):
        with open(os.environ["REALM_TRACE"], "w") as f:
            json.dump(got, f)
    result.update(golden_cycle_seconds=t_golden, golden_macs_per_s=gemm.macs / t_golden,
                  matches_golden_every_cycle=True)
    try:
        compare_traces(got, want, seed)
    except AssertionError as e:
        result.update(matches_golden_every_cycle=False, first_mismatch=str(e))
    with open(os.environ["REALM_RESULT"], "w") as f:
        json.dump(result, f, indent=1)
    assert result["matches_oracle"] or faults, "RTL product differs from the int64 oracle"
    assert result["matches_golden_every_cycle"] is not False, result.get("first_mismatch")
