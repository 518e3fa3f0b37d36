"""The timing injector (``realm.llm.inject``, mode ``timing``) against its voltage table: the
number of erroneous elements within exact binomial bounds of ``1 - (1 - p)^K``, the number of
erroneous cycles per element within bounds of the zero-truncated Binomial(K, p), every error
value a sum of the table's values exactly, their frequencies within binomial bounds; seeding,
look-ahead, dropped products and one-line errors (docs/energy.md §5)."""
import math

import numpy as np
import pytest
import torch

from realm.abft import loop as abft
from realm.energy.vtable import FORMAT, TableError, VoltageTable, cycles_pmf, p_element
from realm.llm.inject import INT32_MIN, InjectionError, Injector
from tb import llm_fixtures

#: Error values whose sums of two differ from every single value (mod 2^32), so the number of
#: cycles behind each injected error can be read back.
VALUES = [1 << 30, -(1 << 28), 1 << 20, -3]
COUNTS = [5, 3, 1, 1]
DROPS = [-100, -7, 12]


def _doc(p=1e-4, k_eff=768):
    rows = [{"v": 0.80, "clock_ps": 3000.0, "p": 0.0, "source": "zero"},
            {"v": 0.75, "clock_ps": 2800.0, "p": p, "source": "tail",
             "f_e": {"values": VALUES, "counts": COUNTS},
             "f_drop": {"values": DROPS, "counts": [1, 2, 1]}}]
    return {"format": FORMAT, "array": "256x256-ws", "dataflow": "ws",
            "components": {"o": {"k": 576, "k_eff": k_eff, "rows": rows},
                           "k": {"k": 576, "k_eff": k_eff, "rows": rows}}}


def _acc(shape=(64, 96), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-(1 << 20), 1 << 20, shape, generator=g, dtype=torch.int32)


def binom_bounds(n, p, alpha=1e-7):
    """The exact two-sided ``alpha`` acceptance interval of a Binomial(n, p) count."""
    if p <= 0:
        return 0, 0
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    lo, hi = max(0, int(mean - 12 * sd - 10)), min(n, int(mean + 12 * sd + 10))
    k = np.arange(lo, hi + 1)
    logpmf = (math.lgamma(n + 1) - np.array([math.lgamma(x + 1) for x in k])
              - np.array([math.lgamma(n - x + 1) for x in k])
              + k * math.log(p) + (n - k) * math.log1p(-p))
    cdf = np.cumsum(np.exp(logpmf))
    return int(k[np.searchsorted(cdf, alpha / 2)]), int(k[np.searchsorted(cdf, 1 - alpha / 2)])


def _wrap(x):
    return (x - INT32_MIN) % (1 << 32) + INT32_MIN


def _run(inj, acc, calls, comp="o"):
    """Per call's hits: (number of elements, deltas wrapped to INT32)."""
    n, deltas = [], []
    for c in range(calls):
        hit = inj(comp, 0, c, "prefill", 0, acc)
        if hit is None:
            n.append(0)
            continue
        idx, new = hit
        assert idx.numel() == idx.unique().numel()
        n.append(idx.numel())
        deltas += _wrap(new.long() - acc.reshape(-1)[idx].long()).tolist()
    return n, deltas


SINGLES = {_wrap(v) for v in VALUES}
PAIRS = {_wrap(a + b) for a in VALUES for b in VALUES}


@pytest.mark.parametrize("p, k", [(1e-4, 768), (2e-7, 768), (3e-3, 64)])
def test_counts_and_values_reproduce_the_table(p, k):
    table = VoltageTable(_doc(p, k))
    acc = _acc()
    calls = 300
    inj = Injector("timing", ["o"], table=table, voltage=0.75, seed=11)
    n, deltas = _run(inj, acc, calls)
    pe = p_element(p, k)
    lo, hi = binom_bounds(calls * acc.numel(), pe)
    assert lo <= sum(n) <= hi and inj.count == sum(n)
    # every error is a sum of table values, exactly; singles and pairs are told apart
    assert SINGLES.isdisjoint(PAIRS)
    singles = [d for d in deltas if d in SINGLES]
    multi = len(deltas) - len(singles)
    pmf = cycles_pmf(p, k)
    lo, hi = binom_bounds(len(deltas), float(pmf[0]))
    assert lo <= len(singles) <= hi
    if multi:
        pairs = sum(d in PAIRS for d in deltas)
        assert pairs >= 1
    total = sum(COUNTS)
    for v, c in zip(VALUES, COUNTS):
        lo, hi = binom_bounds(len(singles), c / total)
        assert lo <= sum(d == _wrap(v) for d in singles) <= hi


def test_one_cycle_per_element_takes_the_table_values_exactly():
    """p = 1 and K = 1: every element errs once, with a value of f_e, in its proportions."""
    table = VoltageTable(_doc(1.0, 1))
    acc = _acc((128, 128))
    idx, new = Injector("timing", ["o"], table=table, voltage=0.75, seed=2)(
        "o", 0, 0, "prefill", 0, acc)
    assert idx.numel() == acc.numel()
    d = _wrap(new.long() - acc.reshape(-1)[idx].long())
    assert set(d.tolist()) == SINGLES
    for v, c in zip(VALUES, COUNTS):
        lo, hi = binom_bounds(acc.numel(), c / sum(COUNTS))
        assert lo <= int((d == v).sum()) <= hi


def test_k_overrides_and_cycles_pmf():
    # K: int, dict, or the table's k_eff; P(n >= 2 | n >= 1) of the truncated binomial
    assert p_element(1e-4, 768) == pytest.approx(1 - (1 - 1e-4) ** 768, rel=1e-12)
    pmf = cycles_pmf(0.01, 100)
    expect = [math.comb(100, j) * 0.01 ** j * 0.99 ** (100 - j) / (1 - 0.99 ** 100)
              for j in range(1, 6)]
    assert pmf[:5].tolist() == pytest.approx(expect, rel=1e-9)
    assert cycles_pmf(1e-30, 768).tolist() == [1.0]
    table = VoltageTable(_doc(1e-3))
    acc = _acc()
    a = Injector("timing", ["o"], table=table, voltage=0.75, K={"o": 10}, seed=1)
    b = Injector("timing", ["o"], table=table, voltage=0.75, K=10, seed=1)
    c = Injector("timing", ["o"], table=table, voltage=0.75, seed=1)
    ha, hb, hc = (i("o", 0, 0, "prefill", 0, acc) for i in (a, b, c))
    assert torch.equal(ha[0], hb[0]) and ha[0].numel() < hc[0].numel()


def test_zero_rows_and_voltages_above_them_inject_nothing():
    table = VoltageTable(_doc())
    acc = _acc()
    for v in (0.80, 0.85, 0.90):
        inj = Injector("timing", ["o"], table=table, voltage=v)
        assert not inj.may_fault("o", 0, 0, "prefill", 0, acc.numel())
        assert inj("o", 0, 0, "prefill", 0, acc) is None


def test_seeding_and_look_ahead():
    table = VoltageTable(_doc(2e-7))
    acc = _acc()

    def hit(seed, call, layer=1):
        return Injector("timing", ["o"], table=table, voltage=0.75, seed=seed)(
            "o", layer, call, "prefill", 3, acc)
    a, b = hit(7, 0), hit(7, 0)
    assert (a is None) == (b is None)
    found = [c for c in range(400) if hit(7, c) is not None]
    assert found and hit(7, found[0]) is not None
    x, y = hit(7, found[0]), hit(7, found[0])
    assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    inj = Injector("timing", ["o"], table=table, voltage=0.75, seed=7)
    for c in range(400):  # the look-ahead says exactly which calls get errors
        assert inj.may_fault("o", 1, c, "prefill", 3, acc.numel()) == (c in found)


def test_dropped_products_come_from_f_drop():
    table = VoltageTable(_doc(1.0, 1))
    acc = _acc()
    idx, new = Injector("timing", ["k"], table=table, voltage=0.75, values="drop", seed=4)(
        "k", 0, 0, "prefill", 0, acc)
    d = new.long() - acc.reshape(-1)[idx].long()
    assert set(d.tolist()) == set(DROPS)


def test_bad_settings_are_one_line():
    table = VoltageTable(_doc())
    cases = [
        (dict(voltage=0.7), r"^.*has no row at 0.7 V for component 'o' \(rows: 0.75 to 0.8 V\)$"),
        (dict(voltage=None), r"^timing mode needs a voltage, not None$"),
        (dict(voltage=0.75, K=0), r"^K must be a positive integer, not 0 \(component 'o'\)$"),
        (dict(voltage=0.75, values="bits"), r"^values must be one of error, drop, not 'bits'$"),
    ]
    for kw, msg in cases:
        with pytest.raises(InjectionError, match=msg):
            Injector("timing", ["o"], table=table, **kw)
    with pytest.raises(InjectionError, match=r"^timing mode needs a voltage table"):
        Injector("timing", ["o"], table={"format": FORMAT}, voltage=0.75)
    with pytest.raises(InjectionError, match=r"has no component 'q'"):
        Injector("timing", ["q"], table=table, voltage=0.75)
    with pytest.raises(TableError, match=r"^table is not a realm-vtable/1 voltage table$"):
        VoltageTable({"format": "x"})
    bad = _doc()
    bad["components"]["o"]["rows"][1]["p"] = 1.5
    with pytest.raises(TableError, match=r"p must be in \[0, 1\], not 1.5$"):
        VoltageTable(bad)


def test_classic_abft_removes_every_timing_error(tmp_path):
    """Behind classic ABFT with recovery, the timing injector's errors leave the logits
    bit-identical to the clean model; unprotected, they change them."""
    m, rt, windows = llm_fixtures.tiny_quantized(str(tmp_path / "tiny"), 2, 2, 32)
    comps = ["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"]
    doc = _doc(3e-3, 16)
    for c in comps:
        doc["components"][c] = doc["components"]["o"]
    table = VoltageTable(doc)
    from golden.params import StatParams

    params = {c: StatParams.from_paper(1.273, 17.619, 0.0) for c in comps}

    def logits(inj):
        return llm_fixtures.window_logits(m, rt, windows, inj)

    clean = logits(None)
    base = Injector("timing", comps, table=table, voltage=0.75, seed=5)
    assert not torch.equal(logits(base), clean)
    classic = abft.AbftInjector(Injector("timing", comps, table=table, voltage=0.75, seed=5),
                                abft.parse_array("8x8-ws"), "classic", params, rt)
    assert torch.equal(logits(classic), clean)
    assert classic.stats["errors"] > 0 and classic.stats["errors_kept"] == 0


def test_dry_run_decides_like_the_model(tmp_path):
    """The campaign's shortcut (realm.campaign.worker.dry_run): the closed loop's statistics over
    the clean pass's calls on zero accumulators equal those of the real evaluation."""
    from golden.params import StatParams
    from realm.campaign import worker
    from realm.llm import metrics

    m, rt, windows = llm_fixtures.tiny_quantized(str(tmp_path / "tiny"), 2, 2, 32)
    ev = metrics.Evaluator(m, rt, windows)
    comps = ["k", "o"]
    doc = _doc(2e-3, 16)
    table = VoltageTable(doc)
    params = {c: StatParams.from_paper(1.273, 17.619, 1.0) for c in comps}
    for policy in ("classic", "approx", "realm"):
        def loop():
            return abft.AbftInjector(Injector("timing", comps, table=table, voltage=0.75,
                                              seed=3), abft.parse_array("5x7-os"), policy,
                                     params, rt)
        real = loop()
        ev.run(real)
        dry = worker.dry_run(loop(), ev.logs)
        assert dry == real.stats and real.stats["errors"] > 0
