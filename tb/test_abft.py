"""ABFT (``hw.checksum`` + ``hw.stats``) in Verilator against the golden model: clean tiles never
raise a flag, every single accumulator flip is detected by classic ABFT, random multi-fault
campaigns agree with the golden model on every output, difference, decision and counter, and
the recovery loop recomputes flagged tiles into the correct product."""
import json
import os
import pathlib

import cocotb
import pytest

from golden.stats import policy_sets
from golden.stimulus import Driver, RecoveryDriver, collect, expected
from hw import paths
from hw.config import ArrayConfig
from realm.rtl import sim
from realm.rtl.common import check_program, config_from_env, run_and_compare, sim_context
from realm.rtl.sim import suite_seed
from tb.decisions import check_decisions
from tb.faultgen import random_campaign, single_flip_campaign
from tb.scenarios import SCENARIOS, make_program


def _report(name, config, **figures):
    out = pathlib.Path(os.environ["REALM_REPORT_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{config.id}-{name}.json").write_text(json.dumps(figures))
    cocotb.log.info("%s %s: %s", config.id, name, figures)


def _decisions(trace):
    return [o for o in trace if o["o_done"]]


@cocotb.test()
@cocotb.parametrize(scenario=list(SCENARIOS))
async def abft_clean(dut, scenario):
    """No fault: every difference is 0 and no policy flags, even when sums wrap."""
    seed, config = sim_context()
    program = policy_sets(config) + [("select", 2)] + make_program(config, scenario, seed)
    got = await check_program(dut, config, program, seed)
    assert all(o["o_d"] == 0 for o in got if o["o_d_valid"])
    done = _decisions(got)
    assert done and all(o["o_flags"] == 0 and o["o_recompute"] == 0 for o in done)
    assert got[-1]["c_tiles_flagged"] == got[-1]["c_tiles_mismatch"] == 0


def _flip_d(value, bit, aw):
    """The difference a flip of ``bit`` makes to an ``aw``-bit register about to hold
    ``value``: +2**bit if that bit of ``value`` is 0, -2**bit if it is 1, wrapped to ``aw``
    bits (the same checksum difference whatever is added after it)."""
    delta = -(1 << bit) if (int(value) >> bit) & 1 else 1 << bit
    half = 1 << (aw - 1)
    return (delta + half) % (1 << aw) - half


def single_flip_ds(config, program, faults):
    """The signed difference of each fault of :func:`tb.faultgen.single_flip_campaign`, from
    the program's operands alone (int64 products, not the array or its model). WS: the flip
    lands on PE (r, c)'s new partial sum sum_{j<=r} x[j] W[j][c] of the faulted vector; OS: on
    the first product A[r][0] B[0][c] of the faulted tile."""
    aw = config.acc_width
    if config.dataflow.value == "ws":
        (w,) = [op[1].long() for op in program if op[0] == "load"]
        (x,) = [op[1].long() for op in program if op[0] == "stream"]
        return [_flip_d((x[i, :f.row + 1] * w[:f.row + 1, f.col]).sum(), f.mask.bit_length() - 1,
                        aw) for i, f in enumerate(faults)]
    tiles = [op for op in program if op[0] == "tile"]
    return [_flip_d(tiles[i // config.cols][1][f.row, 0].long()
                    * tiles[i // config.cols][2][0, f.col].long(), f.mask.bit_length() - 1, aw)
            for i, f in enumerate(faults)]


@cocotb.test()
async def abft_single_flips(dut):
    """A flip in every PE accumulator at every bit position is detected by classic ABFT: each
    difference it produces is exactly the +-2**bit the operands say (computed without the
    array)."""
    seed = suite_seed()
    config = config_from_env()
    program, faults = single_flip_campaign(config, seed)
    got = await run_and_compare(dut, config, lambda: Driver(config, program), faults, seed)
    done = _decisions(got)
    ds = [o["o_d"] for o in got if o["o_d_valid"]]
    per_tile = 1 if config.dataflow.value == "ws" else config.cols
    assert len(done) == len(faults) // per_tile
    assert ds == single_flip_ds(config, program, faults)
    assert all(o["o_flags"] & 1 for o in done)  # classic ABFT detects every flip
    if config.abft.value != "approx":  # (the approx variant recomputes on MSD alone)
        assert all(o["o_recompute"] for o in done)  # set 0 selects classic
    _report("single", config, faults=len(faults), faulty_tiles=len(done),
            detected=sum(o["o_flags"] & 1 for o in done))


@cocotb.test()
async def abft_random(dut):
    """Random multi-fault campaign: RTL and golden agree on every cycle."""
    seed = suite_seed()
    config = config_from_env()
    program, faults = random_campaign(config, seed, int(os.environ["REALM_TILES"]))
    got = await run_and_compare(dut, config, lambda: Driver(config, program), faults, seed)
    last = got[-1]
    assert last["c_tiles_mismatch"] > 0 and len(faults) > 0
    # every tile's decision against the transaction-level model, on its own differences
    compared = check_decisions(config, program, got, faults)
    assert compared > 0.5 * last["c_tiles_checked"]
    _report("random", config, faults=len(faults), tiles=last["c_tiles_checked"],
            faulty_tiles=last["c_tiles_mismatch"], flagged=last["c_tiles_flagged"],
            decisions_compared=compared)


@cocotb.test()
async def abft_param_file(dut):
    """A realm-params/1 file (realm.abft.loop) programs the unit's parameter sets: written,
    read back for this array, loaded through the cfg port, and every tile of a random faulty
    campaign is then decided as golden.stats.decide decides it with the file's values."""
    import tempfile

    from golden.params import StatParams, read_params, write_params
    from realm.abft import loop as abft

    seed = suite_seed()
    config = config_from_env()
    n = config.stat_n
    arr = abft.parse_array(f"{config.rows}x{config.cols}-{config.dataflow}")
    # four components, from sensitive to tolerant, each in its own set
    fitted = {"o": StatParams.from_paper(1.55, 25.4 - 3, 0.0, sensitive=True),
              "k": StatParams.from_paper(1.273, 20.076 - 0.273 * 4, 1.0),
              "sv": StatParams.from_paper(1.53, 24.66 - 0.53 * 4, 0.5, msd_mode=1),
              "down": StatParams.from_paper(1.1, 12.0, min(2.0, n.bit_length() - 1))}
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/params.json"
        write_params(path, arr, {c: (p, {"note": "test"}) for c, p in fitted.items()},
                          model="test")
        sets = read_params(path, config, list(fitted))  # sets < this array's param_sets
    assert {c: p for c, (_, p) in sets.items()} == fitted
    program, faults = random_campaign(config, seed + 2, int(os.environ["REALM_TILES"]) // 4)
    head = [("params", s, p) for s, p in sorted(sets.values(), key=lambda sp: sp[0])]
    assert [op[0] for op in program[:len(head)]] == ["params"] * len(head)
    program = head + program[len(head):]  # same cycle count: the fault schedule holds
    faults = [f for f in faults if f.site != "stat.msd"]
    got = await run_and_compare(dut, config, lambda: Driver(config, program), faults, seed)
    compared = check_decisions(config, program, got, faults)
    assert compared > 0.6 * got[-1]["c_tiles_checked"] and got[-1]["c_tiles_mismatch"] > 0


@cocotb.test()
async def abft_recovery(dut):
    """The recovery loop: faults hit the first run of some tiles; the unit flags them, the
    driver recomputes them (no fault then), and every tile's last run is the correct product."""
    seed = suite_seed()
    config = config_from_env()
    program, faults = random_campaign(config, seed + 1, 12)
    head = [op for op in program if op[0] == "params"]
    tiles, cur = [], []
    for op in program[len(head):]:
        if op[0] == "select" and cur:
            tiles.append(cur)
            cur = []
        cur.append(("select", 0) if op[0] == "select" else op)  # classic ABFT throughout
    tiles.append(cur)
    tiles[0] = head + tiles[0]
    drivers = []

    def factory():
        drivers.append(RecoveryDriver(config, tiles))
        return drivers[-1]
    got = await run_and_compare(dut, config, factory, faults, seed)
    runs = drivers[-1].runs
    assert len(runs) > len(tiles), "no tile was recomputed: the campaign needs a fault"
    per_run = []
    outputs = collect(config, got)
    for t in runs:
        n = len(expected(config, [op for op in tiles[t] if op[0] != "params"]))
        per_run.append(outputs[:n])
        outputs = outputs[n:]
    mismatch = [o["o_mismatch"] for o in _decisions(got)]
    final = {t: (r, mm) for t, r, mm in zip(runs, per_run, mismatch)}
    tolerated = 0
    for t, tile in enumerate(tiles):
        result, mm = final[t]
        if mm:  # an error the policy tolerates (the MSD-threshold variant's small errors)
            assert config.abft.value == "approx", f"tile {t}: classic ABFT left an error"
            tolerated += 1
            continue
        assert result == expected(config, [op for op in tile if op[0] != "params"]), \
            f"tile {t} is wrong after recovery"
    _report("recovery", config, tiles=len(tiles), recomputed=len(runs) - len(tiles),
            tolerated=tolerated)


def _run_config(config, testcase, tmp_path, **env):
    seed = suite_seed()
    build_dir = sim.build(config)
    reports = paths.BUILD / "campaigns"
    extra = {"REALM_CONFIG": config.to_json(), "REALM_REPORT_DIR": str(reports),
             **{k: str(v) for k, v in env.items()}}
    sim.run(build_dir, "tb.test_abft", testcase, extra, seed=seed, test_dir=tmp_path)
    from cocotb_tools.check_results import get_results
    return get_results(tmp_path / "results.xml")


SIZES = [4, 8, 16]
# 16x16 with the fault port takes minutes to build: behind the ``slow`` marker (make test-slow).
REALM = [pytest.param(ArrayConfig(rows=n, cols=n, dataflow=d, abft="realm", fault_port=True),
                      marks=[pytest.mark.slow] if n == 16 else [])
         for d in ("ws", "os") for n in SIZES]
# Sizes that are not powers of two: odd lanes left over at every level of the checksum adder
# trees (WS sums each weight row over 5 columns, OS each beat over 5 rows) and of the
# statistical unit's popcount.
REALM += [ArrayConfig(rows=3, cols=5, dataflow="ws", abft="realm", fault_port=True),
          ArrayConfig(rows=5, cols=3, dataflow="os", abft="realm", fault_port=True)]
VARIANTS = [ArrayConfig(rows=4, cols=4, dataflow=d, abft=a, fault_port=True)
            for d in ("ws", "os") for a in ("classic", "approx")]
#: Tiles of the random multi-fault campaign per array size in the default run; -m slow (make
#: test-slow) runs it again at three times as many (test_abft_long).
TILES = {3: 200, 4: 240, 5: 200, 8: 140, 16: 100}
LONG = 3


@pytest.mark.parametrize("config", REALM + VARIANTS,
                         ids=[c.values[0].id if hasattr(c, "values") else c.id
                              for c in REALM + VARIANTS])
def test_abft(config, tmp_path):
    """Every ABFT campaign on one build of ``config``."""
    n_clean = len(SCENARIOS)
    results = _run_config(config, "abft_", tmp_path, REALM_TILES=TILES[config.rows])
    assert results == (n_clean + 4, 0)


@pytest.mark.slow
@pytest.mark.parametrize("config", REALM + VARIANTS,
                         ids=[c.values[0].id if hasattr(c, "values") else c.id
                              for c in REALM + VARIANTS])
def test_abft_long(config, tmp_path):
    """The random multi-fault campaign at :data:`LONG` times the default run's tiles."""
    assert _run_config(config, "abft_random", tmp_path,
                       REALM_TILES=LONG * TILES[config.rows]) == (1, 0)
