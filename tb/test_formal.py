"""Formal check (SymbiYosys + Boolector, from PyPI) of the ABFT array: from reset, under any
input sequence (any operands, handshakes, parameter writes, set selections and resets), no
policy ever raises a flag and every checksum difference is 0 when no fault is injected; and,
with the fault port, a recompute flag is reachable (so the assertion is not vacuous).

The check is bounded (BMC) and runs on the narrowest configuration the generator accepts
(2-bit operands, 4-bit accumulators, 2x2): Boolector proves the INT8/INT32 array to only a few
cycles in minutes, because the checksum identity is a non-linear (multiplier) equality. The
exhaustive small-array campaigns in ``test_abft.py`` cover the INT8 arrays."""
import pytest

from hw.config import ArrayConfig
from hw.paths import ROOT
from tb.formal import run_sby

# (dataflow, rows, depth, fault_port): the no-flag proofs reach past the first decisions
# (WS 2x2: first decision at step ~17; OS 1x2: step ~16, with the 11-cycle statistical
# pipeline); Boolector needs minutes for an OS 2x2 no-flag proof past step 10, so that one runs
# on 1x2 (the cover runs on 2x2).
CASES = [("ws", 2, 24, False), ("ws", 2, 24, True), ("os", 1, 20, False), ("os", 2, 23, True)]


@pytest.mark.parametrize("dataflow, rows, depth, fault_port", CASES,
                         ids=[f"{d}-{r}x2-{'cover' if f else 'no-flag'}" for d, r, _, f in CASES])
def test_formal(dataflow, rows, depth, fault_port):
    config = ArrayConfig(rows=rows, cols=2, dataflow=dataflow, abft="realm", data_width=2,
                         acc_width=4, hist_bins=4, counter_width=4, fault_port=fault_port)
    passed, log = run_sby(config, ROOT / "build" / "formal" / config.id, depth)
    assert passed, log[-3000:]
    if fault_port:
        assert "Reached cover statement" in log
