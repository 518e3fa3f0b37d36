"""cocotb module behind the cross-layer campaign (:mod:`realm.crosslayer.capture`): run every job
of ``$REALM_JOBS`` (a ``torch.save`` list of ``{"a", "b", "program", "faults"}``) on the RTL,
the array reset between jobs, each checked cycle by cycle against the golden cycle model with
the same faults; one JSON line per job (product, decisions, whether the traces agreed) to
``$REALM_RESULT``."""
import json
import os

import cocotb
import torch

from golden.array import ArrayModel
from golden.faults import Fault
from golden.stimulus import Driver, collect, decisions
from golden.workload import TiledGemm
from realm.rtl.common import ArrayTB, compare_traces, config_from_env


@cocotb.test()
async def crosslayer(dut):
    config = config_from_env()
    jobs = torch.load(os.environ["REALM_JOBS"], weights_only=False)
    tb = ArrayTB(dut, config)
    started = False
    with open(os.environ["REALM_RESULT"], "w") as out:
        for n, job in enumerate(jobs):
            faults = [Fault(**f) for f in job["faults"]]
            want = ArrayModel(config, faults).run(Driver(config, job["program"]))
            if started:
                await tb.reset()
            else:
                await tb.start()
                started = True
            got = await tb.run(Driver(config, job["program"]), len(want), faults)
            result = {"job": n, "golden": True, "cycles": len(got),
                      "product": TiledGemm(config, job["a"], job["b"]).assemble(
                          collect(config, got)).tolist(),
                      "decisions": decisions(got)}
            try:
                compare_traces(got, want, 0)
            except AssertionError as e:
                result.update(golden=False, first=str(e)[:300])
            out.write(json.dumps(result) + "\n")
            out.flush()
