"""Injection modes against hand-computed oracles: bit-flip (fixed bit, bit range, dense and
sparse draws), magnitude/frequency (Q1.4), fault-list replay, targeting and seeding
(paper Sec. IV, Sec. VI)."""
import pytest
import torch

from golden import faults as flt
from realm.llm import inject
from realm.llm.inject import INT32_MAX, INT32_MIN, InjectionError, Injector


def _acc(shape=(64, 96), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-(1 << 20), 1 << 20, shape, generator=g, dtype=torch.int32)


def _apply(acc, hit):
    out = acc.clone().reshape(-1)
    if hit is not None:
        out[hit[0]] = hit[1]
    return out.view(acc.shape)


@pytest.mark.parametrize("bit", [0, 10, 30, 31])
def test_bitflip_fixed_bit_is_xor(bit):
    acc = _acc()
    inj = Injector("bitflip", ["o"], ber=0.01, bit=bit, seed=3)
    idx, new = inj("o", 0, 0, "prefill", 0, acc)
    assert idx.numel() == idx.unique().numel() and inj.count == idx.numel() > 0
    for i, v in zip(idx.tolist(), new.tolist()):
        expect = int(acc.reshape(-1)[i]) ^ (1 << bit)  # Python ints: two's complement by hand
        expect = expect - (1 << 32) if expect > INT32_MAX else expect
        if bit == 31:
            expect = int(acc.reshape(-1)[i]) + (-(1 << 31) if acc.reshape(-1)[i] >= 0 else 1 << 31)
        assert v == expect


def test_bit30_adds_or_subtracts_2_pow_30():
    """The authors' code: for |acc| < 2^27, flipping bit 30 adds 2^30 to non-negative values and
    subtracts
    2^30 from negative ones."""
    acc = torch.tensor([[0, 5, -1, -(1 << 26), (1 << 26) - 1] * 4], dtype=torch.int32)
    idx, new = Injector("bitflip", ["k"], ber=1.0, bit=30)("k", 0, 0, "prefill", 0, acc)
    assert idx.tolist() == list(range(20))
    old = acc.reshape(-1).long()
    assert torch.equal(new.long() - old, torch.where(old >= 0, 1 << 30, -(1 << 30)))


def test_bit_range_uniform_and_single_bit():
    acc = _acc((128, 128))
    idx, new = Injector("bitflip", ["q"], ber=0.2, bits=(0, 29), seed=1)("q", 0, 0, "prefill",
                                                                          0, acc)
    x = (acc.reshape(-1)[idx] ^ new).long() & 0xFFFFFFFF
    assert (x & (x - 1) == 0).all() and (x > 0).all()  # exactly one bit changed
    bits = torch.log2(x.double()).round().long()
    assert bits.min() == 0 and bits.max() == 29 and bits.unique().numel() == 30


def test_ber_zero_one_and_sparse_count():
    acc = _acc()
    assert Injector("bitflip", ["o"], ber=0.0)("o", 0, 0, "prefill", 0, acc) is None
    idx, _ = Injector("bitflip", ["o"], ber=1.0)("o", 0, 0, "prefill", 0, acc)
    assert idx.numel() == acc.numel()
    # the sparse path draws Binomial(numel, ber) flips: mean over 400 calls within 4 sigma
    inj = Injector("bitflip", ["o"], ber=1e-3, seed=5)
    n = [(h[0].numel() if (h := inj("o", 0, c, "prefill", 0, acc)) else 0) for c in range(400)]
    mean, p = sum(n) / len(n), acc.numel() * 1e-3
    assert abs(mean - p) < 4 * (p / 400) ** 0.5


def test_same_seed_same_faults_other_seed_other_faults():
    acc = _acc()
    a = Injector("bitflip", ["o"], ber=1e-2, bits=(0, 29), seed=7)("o", 1, 0, "prefill", 2, acc)
    b = Injector("bitflip", ["o"], ber=1e-2, bits=(0, 29), seed=7)("o", 1, 0, "prefill", 2, acc)
    c = Injector("bitflip", ["o"], ber=1e-2, bits=(0, 29), seed=8)("o", 1, 0, "prefill", 2, acc)
    d = Injector("bitflip", ["o"], ber=1e-2, bits=(0, 29), seed=7)("o", 1, 1, "prefill", 2, acc)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[0], d[0])
    # a call's draws do not depend on the calls before it
    inj = Injector("bitflip", ["o"], ber=1e-2, bits=(0, 29), seed=7)
    inj("o", 0, 0, "prefill", 2, acc)
    e = inj("o", 1, 0, "prefill", 2, acc)
    assert torch.equal(a[0], e[0]) and torch.equal(a[1], e[1])


@pytest.mark.parametrize("freq,msd", [(1, 1 << 30), (16, 1 << 20), (1000, 12345678)])
def test_msd_exactly_freq_elements_plus_msd_over_freq(freq, msd):
    acc = _acc()
    idx, new = Injector("msd", ["qk"], msd=msd, freq=freq, seed=2)("qk", 0, 0, "prefill", 0,
                                                                    acc)
    assert idx.numel() == freq == idx.unique().numel()
    mag = round(msd / freq)
    old = acc.reshape(-1)[idx].long()
    assert torch.equal(new.long(), (old + mag).clamp(INT32_MIN, INT32_MAX))


def test_msd_saturates_and_rejects_large_freq():
    acc = torch.full((4, 8), INT32_MAX - 5, dtype=torch.int32)
    _, new = Injector("msd", ["o"], msd=1 << 30, freq=2)("o", 0, 0, "prefill", 0, acc)
    assert (new == INT32_MAX).all()
    with pytest.raises(InjectionError, match="freq 33 is larger than the 32-element"):
        Injector("msd", ["o"], msd=1 << 30, freq=33)("o", 0, 0, "prefill", 0, acc)


def test_targeting_component_layer_stage():
    inj = Injector("bitflip", ["o", "down"], layers=[2, 5], stage="decode", ber=1.0)
    assert inj.targets("o", 2, "decode") and inj.targets("down", 5, "decode")
    assert not inj.targets("o", 3, "decode") and not inj.targets("q", 2, "decode")
    assert not inj.targets("o", 2, "prefill")
    assert inj("o", 2, 0, "prefill", 0, _acc()) is None
    assert Injector("bitflip", ["o"], stage="both", ber=1).targets("o", 0, "prefill")


def _faults(entries):
    return flt.parse_faults({"format": "realm-faults/1", "faults": entries})


def test_fault_list_replay_kinds_and_calls():
    acc = _acc((20, 12))
    fl = _faults([
        {"site": "gemm.acc", "component": "o", "layer": 1, "call": 0, "row": 3, "col": 4,
         "kind": "flip", "bit": 30},
        {"site": "gemm.acc", "component": "o", "layer": 1, "call": 0, "row": 0, "col": 0,
         "kind": "stuck1", "mask": "0xff"},
        {"site": "gemm.acc", "component": "o", "layer": 1, "call": 0, "row": 19, "col": 11,
         "kind": "stuck0", "mask": "0x80000000"},
        {"site": "gemm.acc", "component": "o", "layer": 1, "call": 0, "row": 3, "col": 4,
         "kind": "flip", "bit": 0},
        {"site": "gemm.acc", "component": "o", "layer": 1, "call": 2, "row": 1, "col": 1,
         "kind": "flip", "bit": 5}])
    inj = Injector("faults", [], faults=fl)
    assert inj.components == {"o"} and inj.layers == {1}
    out = _apply(acc, inj("o", 1, 0, "prefill", 0, acc))
    exp = acc.clone()
    exp[3, 4] = exp[3, 4] ^ (1 << 30) ^ 1           # two faults on one element compose
    exp[0, 0] = exp[0, 0] | 0xFF
    exp[19, 11] = exp[19, 11] & 0x7FFFFFFF          # sign bit stuck at 0
    assert torch.equal(out, exp)
    assert inj("o", 1, 1, "prefill", 0, acc) is None  # call 1: nothing listed
    assert inj("o", 0, 0, "prefill", 0, acc) is None  # other layer
    out = _apply(acc, inj("o", 1, 2, "decode", 0, acc))
    assert (out != acc).sum() == 1 and out[1, 1] == acc[1, 1] ^ 32


def test_fault_list_bmm_coordinates_and_range_error():
    acc = _acc((1, 3, 5, 7))  # [batch, heads, queries, keys]
    fl = _faults([{"site": "gemm.acc", "component": "qk", "layer": 0, "row": 4, "col": 2 * 7 + 6,
                   "kind": "flip", "bit": 2}])
    out = _apply(acc, Injector("faults", [], faults=fl)("qk", 0, 0, "prefill", 0, acc))
    assert (out != acc).nonzero().tolist() == [[0, 2, 4, 6]]
    bad = _faults([{"site": "gemm.acc", "component": "qk", "layer": 0, "row": 5, "col": 0,
                    "kind": "flip", "bit": 2}])
    with pytest.raises(InjectionError, match=r"fault 0: row 5, col 0 is outside the "
                       r"accumulator \[1, 3, 5, 7\] of qk layer 0 call 0"):
        Injector("faults", [], faults=bad)("qk", 0, 0, "prefill", 0, acc)


def test_bad_settings_one_line_errors():
    for kw, msg in [(dict(mode="bitflip", ber=1.5), "ber must be in"),
                    (dict(mode="bitflip", ber=-0.1), "ber must be in"),
                    (dict(mode="bitflip", bits=(3, 40)), "bits must satisfy"),
                    (dict(mode="msd", freq=0, msd=4), "msd mode needs freq >= 1"),
                    (dict(mode="nope"), "mode must be one of"),
                    (dict(mode="bitflip", stage="train"), "stage must be one of")]:
        with pytest.raises(InjectionError, match=msg) as e:
            Injector(components=["o"], **kw)
        assert "\n" not in str(e.value)


def test_bit_mask_sign_bit():
    m = inject.bit_mask(torch.tensor([0, 30, 31]))
    assert m.tolist() == [1, 1 << 30, INT32_MIN]
