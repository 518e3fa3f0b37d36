"""The fast path (:mod:`realm.rtl.fastsim`): the compiled harness's whole per-cycle output trace
equals the golden model's, with and without seeded random faults, and the cocotb bench's on the
same program; its input table is the driver's; its records and decoded outputs
(:mod:`realm.rtl.fastcodec`) are those of the per-port mapping of :mod:`golden.ports`; a missing
compiler or a failed build is one line."""
import json
import os

import cocotb
import numpy as np
import pytest
import torch

from golden.array import ArrayModel
from golden.stats import policy_sets
from golden.stimulus import Driver, collect, input_table
from hw.config import ArrayConfig
from realm.rtl import fastcodec, fastsim, sim
from realm.rtl.sim import suite_seed
from tb.cli_fixtures import realm
from tb.faultgen import random_campaign, single_flip_campaign
from tb.scenarios import SCENARIOS, make_program

# Non-power-of-two sizes, both dataflows, abft none and realm, all with the fault port. The
# first has output lanes that are not whole bytes; the last two are test_abft's odd sizes,
# whose cocotb builds the cocotb comparison shares.
CONFIGS = [ArrayConfig(rows=3, cols=3, dataflow="ws", acc_width=20, fault_port=True),
           ArrayConfig(rows=2, cols=5, dataflow="os", fault_port=True),
           ArrayConfig(rows=3, cols=5, dataflow="ws", abft="realm", fault_port=True),
           ArrayConfig(rows=5, cols=3, dataflow="os", abft="realm", fault_port=True)]


def _programs(config, seed, campaign=True):
    """``(name, program, faults)``: every scenario fault-free, then (with ``campaign``) a flip of
    every accumulator bit and a seeded random campaign (their tiles use parameter sets 0-3)."""
    abft = config.abft.value != "none"
    for scenario in SCENARIOS:
        prefix = policy_sets(config) + [("select", 2)] if abft else []
        yield scenario, prefix + make_program(config, scenario, seed), []
    if campaign:
        yield ("single flips",) + single_flip_campaign(config, seed)
        yield ("random faults",) + random_campaign(config, seed, tiles=30)


def _first_difference(got, want):
    assert len(got) == len(want), f"trace lengths differ: {len(got)} != {len(want)}"
    for t, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return t, {k: (g.get(k), w[k]) for k in w if g.get(k) != w[k]}
    return None


@pytest.mark.parametrize("config", CONFIGS, ids=[c.id for c in CONFIGS])
def test_fastsim_matches_golden(config):
    seed = suite_seed()
    fastsim.build(config)
    for name, program, faults in _programs(config, seed):
        want = ArrayModel(config, faults).run(Driver(config, program))
        got = fastsim.run_program(config, program, faults)
        diff = _first_difference(got, want)
        assert diff is None, (f"{name}, {len(faults)} faults: cycle {diff[0]}: fast path != "
                              f"golden (fast, golden): {diff[1]}; REALM_SEED={seed}")
        if faults:
            assert any(o["o_c"] != w["o_c"] for o, w in zip(got, ArrayModel(config).run(
                Driver(config, program)))), "the faults changed nothing"


def test_int32_accumulator_wraps():
    """The INT32 accumulator wraps: an OS tile of K = 131,073 all-minimum products (2**14
    each) sums to 2**31 + 2**14, which 32 bits hold as -2**31 + 2**14 (closed form), in every
    output of the RTL. (The cocotb bench would spend a minute of Python on the 131,073 beats;
    test_array checks the wrap cycle by cycle at 16 bits.)"""
    config, k = CONFIGS[1], 131073  # 2x5-os, 32-bit accumulators
    assert config.acc_width == 32
    program = [("tile", torch.full((config.rows, k), -128), torch.full((k, config.cols), -128))]
    got = collect(config, fastsim.run_program(config, program))
    assert got == [[-(1 << 31) + (1 << 14)] * config.cols] * config.rows


# Input lanes that are not whole bytes, and a parameter-set port too narrow to exist.
PACKING = CONFIGS + [
    ArrayConfig(rows=3, cols=2, dataflow="os", data_width=6, acc_width=20, abft="realm"),
    ArrayConfig(rows=4, cols=1, dataflow="ws", data_width=5, abft="realm", param_sets=1)]


@pytest.mark.parametrize("config", PACKING, ids=[c.id for c in PACKING])
def test_input_table_is_the_drivers(config):
    """Each row of :func:`golden.stimulus.input_table` is what :meth:`Driver.inputs` gives for
    that item (parameter writes, set selections, resets and gaps included), the last row the
    driver's idle inputs once it is done; the harness records packed from the table at once
    equal those packed from :func:`golden.ports.input_ports` row by row. (No simulator.)"""
    from golden.ports import input_ports
    lay = fastcodec._Layout(config)
    for name, program, _ in _programs(config, suite_seed(), config.param_sets >= 4):
        table = input_table(config, program)
        records = fastcodec._item_records(config, lay, table)
        driver = Driver(config, program)
        rows = []
        while not driver.done:
            rows.append(driver.inputs())
            driver.update(dict.fromkeys(Driver.READY.values(), True))
        rows.append(driver.inputs())
        assert len(rows) == len(table["ready"]), name
        for i, want in enumerate(rows):
            assert fastcodec._row(table, i) == want, f"{name}: row {i}"
            rec = records[i].copy()
            rec[1:] = 0
            lay.write(rec, input_ports(config, want))
            assert (rec == records[i]).all(), f"{name}: record {i}"


def _random_words(lay, g, cycles, ports):
    """``(table, values)``: ``cycles`` rows of ``ports`` (``(name, width)``) laid out from the
    word offsets ``lay`` gives them, each port's value kept from the cycle before or drawn
    afresh (then often a sign bit or a full word), and the values as ints."""
    offsets = lay.out_off if ports is lay.outputs else lay.in_off
    table = np.zeros((cycles, max(offsets.values(), default=0) + 8), dtype=np.uint32)
    values = {}
    for name, width in ports:
        v, column = 0, []
        for t in range(cycles):
            if t == 0 or g.random() < 0.4:
                v = int.from_bytes(g.bytes(8 + width // 8), "little") & ((1 << width) - 1)
            column.append(v)
            for k in range(fastcodec._words(width)):
                table[t, offsets[name] + k] = v >> (32 * k) & 0xFFFFFFFF
        values[name] = column
    return table, values


@pytest.mark.parametrize("config", PACKING, ids=[c.id for c in PACKING])
def test_decode_is_output_dict(config):
    """:func:`~realm.rtl.fastcodec.decode_trace` of output words that change in some cycles
    and not others equals :func:`golden.ports.output_dict` reading each port's value of each
    cycle on its own (every key, in its order; a fresh dict and fresh lists per cycle). (No
    simulator.)"""
    from golden.ports import output_dict
    lay = fastcodec._layout(config)
    table, values = _random_words(lay, np.random.default_rng(suite_seed()), 60, lay.outputs)
    table = table[:, :lay.out_words]

    def port(t):
        def get(name, signed):
            if name not in values:
                return 0
            v, width = values[name][t], lay.width[name]
            return v - (1 << width) if signed and v >> (width - 1) else v
        return get
    got = fastcodec.decode_trace(config, table)
    want = [output_dict(config, port(t)) for t in range(len(table))]
    assert got == want
    assert [list(d) for d in got] == [list(d) for d in want]
    assert len({id(v) for d in got for v in d.values() if isinstance(v, list)}) == sum(
        isinstance(v, list) for d in got for v in d.values())


@pytest.mark.parametrize("config", [CONFIGS[3], PACKING[-1]], ids=lambda c: c.id)
def test_records_are_writes(config):
    """The records :meth:`~realm.rtl.fastcodec._Layout.records` packs all at once equal those
    :meth:`~realm.rtl.fastcodec._Layout.write` writes one by one: word 0, each port's value
    and mask bit, the ports wider than 64 bits, a port too narrow to exist skipped."""
    lay = fastcodec._layout(config)
    g = np.random.default_rng(suite_seed())
    _, values = _random_words(lay, g, 12, lay.inputs)
    rows = [{name: column[t] for name, column in values.items() if g.random() < 0.6}
            for t in range(12)] + [{}, {"no_such_port": 1}]
    first = [int(v) for v in g.integers(-1, 1 << 31, len(rows))]
    records = lay.records(first, rows)
    for rec, word0, ports in zip(records, first, rows):
        want = np.zeros(lay.record, dtype="<u4")
        want[0] = word0 & 0xFFFFFFFF
        lay.write(want, ports)
        assert rec.tolist() == want.tolist(), ports


def test_one_fault_per_cycle():
    """Two faults in one cycle: the fault port takes one, so encoding fails as
    :func:`golden.ports.active_fault` does, naming the first such cycle; faults without the
    fault port fail too. (No simulator.)"""
    from golden.faults import Fault
    flips = [Fault("pe.acc", 0, 0, "flip", 1, cycle=5, duration=3),
             Fault("pe.acc", 1, 1, "flip", 2, cycle=9), Fault("pe.acc", 1, 0, "flip", 4, cycle=7)]
    with pytest.raises(ValueError, match=r"^cycle 7: the fault port takes one fault per cycle$"):
        fastcodec.encode_program(CONFIGS[1], [], flips)
    with pytest.raises(ValueError, match=r"^faults need a configuration with the fault port, "):
        fastcodec.encode_program(PACKING[4], [], flips[:1])


@cocotb.test()
async def cocotb_trace(dut):
    """Play the seeded random campaign of ``$REALM_TILES`` tiles; write the trace as JSON to
    ``$REALM_TRACE``."""
    from realm.rtl.common import ArrayTB, config_from_env
    config = config_from_env()
    program, faults = random_campaign(config, suite_seed(), int(os.environ["REALM_TILES"]))
    cycles = len(ArrayModel(config, faults).run(Driver(config, program)))
    tb = ArrayTB(dut, config)
    await tb.start()
    got = await tb.run(Driver(config, program), cycles, faults)
    with open(os.environ["REALM_TRACE"], "w") as f:
        json.dump(got, f)


def test_fastsim_matches_cocotb(tmp_path):
    """The same faulty program through cocotb and through the harness: equal traces."""
    config, tiles = CONFIGS[2], 30
    seed = suite_seed()
    env = {"REALM_CONFIG": config.to_json(), "REALM_TILES": str(tiles),
           "REALM_TRACE": str(tmp_path / "trace.json")}
    sim.run(sim.build(config), "tb.test_fastsim", "cocotb_trace", env, seed=seed,
            test_dir=tmp_path)
    want = json.loads((tmp_path / "trace.json").read_text())
    program, faults = random_campaign(config, seed, tiles)
    assert faults
    got = fastsim.run_program(config, program, faults)
    diff = _first_difference(got, want)
    assert diff is None, f"cycle {diff[0]}: fast path != cocotb (fast, cocotb): {diff[1]}"


def test_missing_compiler_is_one_line(monkeypatch, tmp_path):
    """No C++ compiler on PATH: one line from :func:`realm.rtl.fastsim.build` and from ``realm sim
    --fast``, before anything is generated."""
    want = ("c++ not found on PATH: the fast simulation path builds its harness with "
            "verilator, c++ and make")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(fastsim.FastSimError) as e:
        fastsim.build(CONFIGS[0])
    assert str(e.value) == want
    r = realm("sim", "--fast", "--rows", "2", "--cols", "2", "--gemm", "2,2,2",
              env={"PATH": str(tmp_path)})
    assert (r.returncode, r.stderr.splitlines()) == (2, [f"realm sim: error: {want}"])


def test_failed_build_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(sim, "BUILD", tmp_path)
    monkeypatch.setattr(fastsim, "harness_source", lambda config: "int main() { return x; }\n")
    with pytest.raises(fastsim.FastSimError) as e:
        fastsim.build(CONFIGS[0])
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"Verilator build of {CONFIGS[0].id} failed (")
    assert "(main.cpp:1:21: error: " in message and "was not declared" in message
    assert message.endswith(
        f"; full log {tmp_path / 'fast' / CONFIGS[0].id / 'build.log'}")


def test_realm_fast(tmp_path):
    """``realm run --fast`` multiplies a user's matrices; ``realm sim --fast --faults`` runs
    them into the realm array (both on the harnesses built above)."""
    g = np.random.default_rng(3)
    a, b = g.integers(-32, 32, (7, 4)), g.integers(-32, 32, (4, 6))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "c.npy"
    r = realm("run", "--fast", "--rows", "3", "--cols", "3", "--fault-port", "--acc-width", "20",
              "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy", "--product", out,
              "-o", tmp_path / "run.json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (np.load(out) == a @ b).all()
    assert "compiled Verilator harness" in r.stdout and "not run under --fast" in r.stdout


def test_realm_sim_fast_matches_cocotb(tmp_path):
    """``realm sim --faults`` with and without ``--fast``: the same cycles, product, decisions
    and counters (on the cocotb and harness builds of the tests above)."""
    faults = {"format": "realm-faults/1", "faults": [
        {"site": "pe.acc", "row": r, "col": c, "cycle": t, "kind": "flip", "bit": b}
        for r, c, t, b in ((1, 2, 14, 20), (0, 4, 31, 3), (2, 0, 47, 30))]}
    (tmp_path / "f.json").write_text(json.dumps(faults))
    results = []
    for fast in ([], ["--fast"]):
        out = tmp_path / f"sim{len(fast)}.json"
        r = realm("sim", *fast, "--rows", "3", "--cols", "5", "--gemm", "9,7,8",
                  "--faults", tmp_path / "f.json", "-o", out)
        assert r.returncode == 0 and "match       YES" in r.stdout, r.stdout + r.stderr
        results.append(json.loads(out.read_text()))
    cocotb_run, fast_run = results
    assert fast_run["simulator"] == "fast" and cocotb_run["simulator"] == "cocotb"
    assert fast_run["wrong_elements"] > 0 and any(d["mismatch"] for d in fast_run["decisions"])
    for key in ("cycles", "macs", "tiles", "wrong_elements", "decisions", "counters", "faults"):
        assert fast_run[key] == cocotb_run[key], key
