"""Formal checks of the ABFT array (SymbiYosys, Boolector / Yices 2 and Z3, from PyPI).

Narrow widths, bounded (the first four tests, in ``make test``): from reset, under any
input sequence (any operands, handshakes, parameter writes, set selections and resets), no
policy ever raises a flag and every checksum difference is 0 when no fault is injected; and,
with the fault port, a recompute flag is reachable (so the assertion is not vacuous).

The check is bounded (BMC) and runs on the narrowest configuration the generator accepts
(2-bit operands, 4-bit accumulators, 2x2): Boolector proves the INT8/INT32 array to only a few
cycles in minutes, because the checksum identity is a non-linear (multiplier) equality. The
exhaustive small-array campaigns in ``test_abft.py`` cover the INT8 arrays.

INT8/INT32, unbounded (``tb/formal.py`` states the theorem and its three parts): the word-level
lemmas and the multiplier cut run by default (seconds); the k-induction proofs of the cut
array and of the statistical unit, and the mutations they must refute, are slow tests, run by
``make formal`` (with the report) or ``pytest -m slow tb/test_formal.py``."""
import pytest

from hw.config import ArrayConfig
from hw.paths import ROOT
from tb.formal import (MUTATION_DEPTH, MUTATIONS, SIZES, STAT_DEPTH, VARIANTS, ProductSpec,
                       StatSpec, int8_config, multipliers, product_lemmas, product_runs, run_sby,
                       run_spec, ws_sum_lemmas)

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


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("size", [2, 3])
def test_product_lemmas(dataflow, size):
    config = int8_config(dataflow, size, "realm")
    assert product_lemmas(config) == dict.fromkeys(("sum", "widen", "ring", "zero"), True)
    # zero-extended products are not the wide product: the lemma can fail
    assert not product_lemmas(config, zero_extend=True)["widen"]
    if dataflow == "ws":
        assert ws_sum_lemmas(config) == {"no_overflow": True, "reassociation": True}
        # a product missing from the checksum side: the two sides differ
        assert not ws_sum_lemmas(config, drop=True)["reassociation"]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_multipliers_cut(dataflow):
    """The array's PE multipliers are signed, as wide as both operands (exact), and the cut
    array of the proofs has none of them left (the statistical unit keeps its own)."""
    config = int8_config(dataflow, 2, "realm")
    cw = config.checksum_weight_width
    pe = (1, 1, 8, 8, 16)
    check = (1, 1, 8, cw, 8 + cw) if dataflow == "ws" else (1, 1, cw, 8, 8 + cw)
    real, cut = multipliers(config), multipliers(config, cut=True)
    assert sorted(real) == sorted(cut + [pe] * 4 + [check] * 2)
    assert pe not in cut and check not in cut


PRODUCTS = [(d, n, a, part, k) for d, sizes in SIZES.items() for n in sizes for a in VARIANTS
            for part, k in product_runs(d, n)]


@pytest.mark.slow
@pytest.mark.parametrize("dataflow, size, abft, part, depth", PRODUCTS,
                         ids=[f"{n}x{n}-{d}-{a}-{p}" for d, n, a, p, _ in PRODUCTS])
def test_product_int8(dataflow, size, abft, part, depth):
    config = int8_config(dataflow, size, abft)
    passed, log = run_spec(ProductSpec(config, part=part),
                           ROOT / "build" / "formal" / f"cut-{config.id}-{part}", mode="prove",
                           depth=depth)
    assert passed and "successful proof by k-induction" in log, log[-3000:]


STATS = [(n, a) for n in (2, 3) for a in VARIANTS]


@pytest.mark.slow
@pytest.mark.parametrize("n, abft", STATS, ids=[f"n{n}-{a}" for n, a in STATS])
def test_stats_no_flag(n, abft):
    passed, log = run_spec(StatSpec(n=n, acc_width=32, abft=abft),
                           ROOT / "build" / "formal" / f"stats-n{n}-{abft}", mode="prove",
                           depth=STAT_DEPTH)
    assert passed and "successful proof by k-induction" in log, log[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("mutation", MUTATIONS)
def test_mutation_refuted(dataflow, mutation):
    """A broken model has a reachable counterexample (bounded check from reset)."""
    config = int8_config(dataflow, 2, "realm")
    passed, log = run_spec(ProductSpec(config, mutation=mutation),
                           ROOT / "build" / "formal" / f"cut-{config.id}-{mutation}",
                           mode="bmc", depth=MUTATION_DEPTH)
    assert not passed and "failed assertion" in log, log[-3000:]
