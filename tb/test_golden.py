"""The golden model on its own (no simulator): the cycle model against the transaction-level
``matmul`` and an independent int64 oracle, wrapping, the skew buffers and fault application."""
import pytest
import torch

from golden.arith import apply_fault, pack, unpack, wrap
from golden.array import ArrayModel, Skew, matmul
from golden.faultgen import generator
from golden.stimulus import Driver, check_results, collect
from golden.workload import TiledGemm, llm_like_operands
from hw.config import ArrayConfig
from realm.rtl.sim import suite_seed
from tb.scenarios import SCENARIOS, make_program


def test_wrap_known_values():
    t = torch.tensor([2**31, -2**31 - 1, 2**32 + 5, 16384 * 3, -5])
    assert wrap(t, 32).tolist() == [-2**31, 2**31 - 1, 5, 49152, -5]
    assert wrap(t, 16).tolist() == [0, -1, 5, 49152 - 65536, -5]


@pytest.mark.parametrize("width", [8, 16, 24, 32, 40])
def test_wrap_equals_modular_reduction(width):
    """Every path of ``wrap`` (narrowing casts at 8, 16 and 32 bits, arithmetic otherwise;
    int64 and int32 tensors, Python ints) against Python's modulo."""
    g = generator(suite_seed(), "wrap", width)
    x = torch.cat([torch.randint(-2**62, 2**62, (4000,), generator=g),
                   torch.tensor([2**63 - 1, -2**63, 0, -1, 2**31, -2**31 - 1, 2**15, -129])])
    half = 1 << (width - 1)
    want = [(v + half) % (1 << width) - half for v in x.tolist()]
    assert wrap(x, width).tolist() == want
    assert [wrap(v, width) for v in x.tolist()] == want
    x32 = x.to(torch.int32)
    assert wrap(x32, width).dtype == torch.int32
    assert wrap(x32, width).tolist() == [(v + half) % (1 << width) - half
                                         for v in x32.tolist()]


def test_int32_arithmetic_wraps():
    """The PE accumulators are int32 tensors up to acc_width 32 (golden.array.acc_dtype): sums
    and products of int32 tensors must wrap modulo 2**32, as two's complement hardware does."""
    g = generator(suite_seed(), "int32")
    a = torch.randint(-2**31, 2**31, (5000,), generator=g)
    b = torch.randint(-2**31, 2**31, (5000,), generator=g)
    for got, exact in [(a.int() + b.int(), a + b), (a.int() * b.int(), a * b),
                       (a.int() - b.int(), a - b)]:
        assert got.dtype == torch.int32
        assert got.tolist() == wrap(exact, 32).tolist()


def test_pack_unpack_roundtrip():
    lanes = [-128, 127, 0, -1, 5]
    assert unpack(pack(lanes, 8), 8, 5) == lanes
    assert pack([-1, 1], 8) == 0x01FF


@pytest.mark.parametrize("kind, mask, value, want", [
    ("flip", 1 << 30, 5, 5 + 2**30),
    ("flip", 1 << 30, -5, -5 - 2**30),
    ("flip", 1 << 31, 0, -2**31),
    ("stuck0", 0xFF, -1, -256),
    ("stuck1", 1 << 31, 7, 7 - 2**31),
    ("stuck1", 0x3, 4, 7),
])
def test_apply_fault(kind, mask, value, want):
    assert apply_fault(value, kind, mask, 32) == want


def test_skew_delays_lane_i_by_i():
    s = Skew(3)
    outs = []
    for t in range(5):
        lanes = torch.tensor([10 * t, 10 * t + 1, 10 * t + 2])
        outs.append(s.out(lanes).tolist())
        s.push(lanes)
    assert outs[4] == [40, 31, 22]
    assert outs[0] == [0, 0, 0]


CONFIGS = [ArrayConfig(rows=r, cols=c, dataflow=d) for (r, c) in [(1, 1), (2, 3), (5, 4), (8, 8)]
           for d in ("ws", "os")]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.id)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cycle_model_matches_oracle(config, scenario):
    program = make_program(config, scenario, suite_seed())
    results = collect(config, ArrayModel(config).run(Driver(config, program)))
    check_results(config, program, results)


@pytest.mark.parametrize("config", CONFIGS[2:], ids=lambda c: c.id)
def test_tiled_gemm(config):
    gemm = TiledGemm(config, *llm_like_operands(13, 21, 11, suite_seed()))
    trace = ArrayModel(config).run(Driver(config, gemm.program()))
    assert torch.equal(gemm.assemble(collect(config, trace)), gemm.x @ gemm.w)


def test_matmul_is_python_int_oracle():
    g = generator(suite_seed(), "matmul")
    config = ArrayConfig(acc_width=16)
    a = torch.randint(-128, 128, (4, 9), generator=g)
    b = torch.randint(-128, 128, (9, 3), generator=g)
    got = matmul(a, b, config).tolist()
    for i in range(4):
        for j in range(3):
            s = sum(int(a[i, k]) * int(b[k, j]) for k in range(9))
            s = (s + 2**15) % 2**16 - 2**15
            assert got[i][j] == s


def test_ws_timing_contract():
    """A vector accepted in cycle t leaves in cycle t + rows + cols - 1."""
    config = ArrayConfig(rows=3, cols=4, dataflow="ws")
    program = [("load", torch.ones(3, 4, dtype=torch.int64)), ("stream", torch.ones(1, 3), 0)]
    trace = ArrayModel(config).run(Driver(config, program))
    accepted = next(t for t, o in enumerate(trace) if t >= 3 and o["a_ready"])
    assert accepted == 3  # three weight rows first
    assert [t for t, o in enumerate(trace) if o["o_valid"]] == [accepted + 3 + 4 - 1]
    assert trace[accepted + 6]["o_c"] == [3, 3, 3, 3]


def test_os_timing_contract():
    """The last beat accepted in cycle t: rows leave in t+rows+cols-1 .. t+2*rows+cols-2,
    bottom row first; the array accepts again the cycle after."""
    config = ArrayConfig(rows=3, cols=2, dataflow="os")
    a = torch.tensor([[1, 2], [3, 4], [5, 6]])
    b = torch.tensor([[1, 0], [0, 1]])
    trace = ArrayModel(config).run(Driver(config, [("tile", a, b)]))
    t = 1  # beats in cycles 0 and 1
    valid = [c for c, o in enumerate(trace) if o["o_valid"]]
    assert valid == list(range(t + 3 + 2 - 1, t + 2 * 3 + 2 - 2 + 1))
    assert [trace[c]["o_row"] for c in valid] == [2, 1, 0]
    assert [trace[c]["o_c"] for c in valid] == [[5, 6], [3, 4], [1, 2]]
    assert trace[valid[-1]]["o_last"] and trace[valid[-1] + 1]["ab_ready"]
    assert not trace[valid[-1]]["ab_ready"]
