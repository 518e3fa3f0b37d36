"""``golden.tiler`` against the golden cycle model: for the same operands and the same
accumulator errors (made by real ``pe.acc`` flips in the cycle model), the tiler's checksum
differences equal the ``o_d`` stream the array's checksum logic produces, unit by unit, for WS
with K larger than the array and for OS, at sizes that are not powers of two."""
import pytest
import torch

from golden.array import ArrayModel
from golden.faultgen import generator
from golden.faults import Fault
from golden.stimulus import Driver, collect
from golden.tiler import Tiling
from golden.workload import TiledGemm
from hw.config import ArrayConfig
from realm.rtl.sim import suite_seed

CASES = [  # rows, cols, dataflow, M, K, N
    (3, 5, "ws", 11, 7, 12),
    (4, 4, "ws", 9, 10, 8),
    (2, 5, "ws", 6, 5, 5),
    (5, 3, "os", 7, 9, 8),
    (4, 4, "os", 8, 5, 8),
    (3, 3, "os", 4, 3, 7),
]


def _cycle_model_errors(config, x, w, seed):
    """(per-element errors as (row, col, kc, delta) tensors, the model's d stream) of a run with
    a few random accumulator flips."""
    gemm = TiledGemm(config, x, w)
    prog = gemm.program()
    clean = ArrayModel(config).run(Driver(config, prog))
    g = generator(seed, "tiler", config.id)
    cycles = torch.randperm(len(clean) - 40, generator=g)[:8] + 20
    faults = [Fault("pe.acc", int(torch.randint(config.rows, (1,), generator=g)),
                    int(torch.randint(config.cols, (1,), generator=g)), "flip",
                    1 << int(torch.randint(32, (1,), generator=g)), cycle=int(cy))
              for cy in cycles]
    faulty = ArrayModel(config, faults).run(Driver(config, prog))
    vc = torch.tensor(collect(config, clean), dtype=torch.int64)
    vf = torch.tensor(collect(config, faulty), dtype=torch.int64)
    err = vf - vc  # [vectors, cols]
    m, k, n = x.shape[0], x.shape[1], w.shape[1]
    rows, cols, kcs = [], [], []
    lanes = torch.arange(config.cols)
    if config.dataflow.value == "ws":  # vectors: for nc, for kc, for m
        for nc in range(-(-n // config.cols)):
            for kc in range(-(-k // config.rows)):
                for i in range(m):
                    rows.append(torch.full_like(lanes, i))
                    cols.append(nc * config.cols + lanes)
                    kcs.append(torch.full_like(lanes, kc))
    else:  # tiles: for mc, for nc, rows of the tile in order
        for mc in range(-(-m // config.rows)):
            for nc in range(-(-n // config.cols)):
                for r in range(config.rows):
                    rows.append(torch.full_like(lanes, mc * config.rows + r))
                    cols.append(nc * config.cols + lanes)
                    kcs.append(torch.zeros_like(lanes))
    rows, cols, kcs = (torch.stack(t).reshape(-1) for t in (rows, cols, kcs))
    err = err.reshape(-1)
    hit = err != 0
    d_model = [o["o_d"] for o in faulty if o["o_d_valid"]]
    return (rows[hit], cols[hit], kcs[hit], err[hit]), d_model


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}-{c[2]}-m{c[3]}k{c[4]}n{c[5]}")
def test_tiler_differences_equal_cycle_model(case):
    r, c, df, m, k, n = case
    config = ArrayConfig(rows=r, cols=c, dataflow=df, abft="realm")
    g = generator(suite_seed(), "tiler-operands", config.id)
    x = torch.randint(-128, 128, (m, k), generator=g)
    w = torch.randint(-128, 128, (k, n), generator=g)
    (rows, cols, kcs, delta), d_model = _cycle_model_errors(config, x, w, suite_seed())
    assert delta.numel() > 0, "the flips must corrupt some output"
    tiling = Tiling(config, m, k, n)
    units, d = tiling.differences(0, rows, cols, delta, kcs)
    want = []
    for u in range(tiling.units):
        length = int(tiling.unit_length(torch.tensor([u]))[0])
        hit = (units == u).nonzero()
        want += d[hit[0, 0], :length].tolist() if hit.numel() else [0] * length
    assert len(d_model) == len(want)
    assert d_model == want
    assert any(v != 0 for v in want)


def test_tiling_counts_units_and_macs():
    """Unit counts, per-unit MACs and lengths against hand-counted values (3x5 WS, 5x3 OS)."""
    ws = Tiling(ArrayConfig(rows=3, cols=5, dataflow="ws"), 11, 7, 12, gemms=2)
    assert ws.chunks == (3, 3, 3) and ws.units == 2 * 27 and ws.macs == 2 * 11 * 7 * 12
    # unit 0: g0, nc0, kc0, mc0 = 5 vectors x 3 K x 5 N; the last unit of g0: nc2, kc2, mc2 =
    # 1 vector (11 - 10) x 1 K (7 - 6) x 2 N (12 - 10)
    assert ws.unit_macs(torch.tensor([0, 26])).tolist() == [75, 2]
    assert ws.unit_length(torch.tensor([0, 2, 26])).tolist() == [5, 1, 1]
    assert int(ws.unit_macs(torch.arange(ws.units)).sum()) == ws.macs
    os_ = Tiling(ArrayConfig(rows=5, cols=3, dataflow="os"), 7, 9, 8)
    assert os_.chunks == (2, 1, 3) and os_.units == 6
    assert os_.unit_macs(torch.arange(6)).tolist() == [135, 135, 90, 54, 54, 36]
    assert int(os_.unit_macs(torch.arange(6)).sum()) == os_.macs
    with pytest.raises(ValueError, match="k must be a positive integer, not 0"):
        Tiling(ArrayConfig(), 1, 0, 1)


def test_cancelling_errors_leave_no_difference():
    """Two errors of opposite sign in one OS column (or one WS vector) give d = 0: ABFT's blind
    spot, which the closed loop counts instead of hiding."""
    for df in ("ws", "os"):
        t = Tiling(ArrayConfig(rows=4, cols=4, dataflow=df), 8, 8, 8)
        rows, cols = ([0, 0], [1, 2]) if df == "ws" else ([0, 1], [2, 2])
        units, d = t.differences(0, rows, cols, [1 << 30, -(1 << 30)], [0, 0])
        assert units.tolist() == [0] and d.abs().sum() == 0
        units, d = t.differences(0, rows, cols, [1 << 31, 1 << 31], [0, 0])
        assert d.abs().sum() == 0  # 2^32 wraps to 0 at 32 bits


def test_unit_ids_of_later_gemms_and_int32_inputs():
    """Unit ids, their split and their costs for a GEMM other than the first, hand-worked, and
    int64 results whatever integer type the caller passes (a campaign's positions may be int32).
    Kills: ``/`` for ``//`` in the unit numbering and its inverse (exact only for g = 0), an
    input cast dropped (int32 unit ids), a bool accepted as a size.

    WS 3x5, M 11, K 7, N 12, 2 GEMMs: chunks (m 3, k 3, n 3); (g 1, nc 2, kc 2, mc 1) is unit
    ((1·3 + 2)·3 + 2)·3 + 1 = 52; row 7 is mc 1 at position 2, col 11 is nc 2; it costs
    5 vectors x 1 K (7 - 6) x 2 N (12 - 10) = 10 MACs. OS 5x3, M 7, K 9, N 8, 3 GEMMs: chunks
    (m 2, n 3); (g 2, mc 1, nc 2) is unit (2·2 + 1)·3 + 2 = 17; row 6 is mc 1, col 7 is nc 2
    at position 1; it costs 2 rows (7 - 5) x 9 x 2 columns (8 - 6) = 36 MACs."""
    i32 = torch.int32
    ws = Tiling(ArrayConfig(rows=3, cols=5, dataflow="ws"), 11, 7, 12, gemms=2)
    os_ = Tiling(ArrayConfig(rows=5, cols=3, dataflow="os"), 7, 9, 8, gemms=3)
    for t, args, unit, pos, parts, macs, length in (
            (ws, (1, 7, 11, 2), 52, 2, (1, 1, 2, 2), 10, 5),
            (os_, (2, 6, 7), 17, 1, (2, 1, 0, 2), 36, 3)):
        for typed in (lambda v: v, lambda v: torch.tensor([v], dtype=i32)):
            u, p = t.locate(*(typed(a) for a in args))
            assert (u.dtype, p.dtype) == (torch.int64, torch.int64)
            assert (int(u), int(p)) == (unit, pos)
            ids = typed(unit) if not isinstance(typed(unit), int) else torch.tensor([unit])
            split = t._split(torch.tensor([unit]))
            assert [int(v) for v in split] == list(parts)
            assert all(v.dtype == torch.int64 for v in split)
            m, n = t.unit_macs(ids), t.unit_length(ids)
            assert (m.dtype, n.dtype) == (torch.int64, torch.int64)
            assert (int(m), int(n)) == (macs, length)
        units, d = t.differences(*(torch.tensor([a], dtype=i32) for a in args[:3]),
                                 torch.tensor([-3], dtype=i32),
                                 *((torch.tensor([args[3]], dtype=i32),) if t is ws else ()))
        assert units.tolist() == [unit] and d.dtype == torch.int64
        assert d[0].tolist() == [(-3 if j == pos else 0) for j in range(t.config.cols)]
    for bad in (True, 2.0):
        with pytest.raises(ValueError, match=f"m must be a positive integer, not {bad!r}"):
            Tiling(ArrayConfig(), bad, 1, 1)
