"""The batched cycle model (``golden.array.BatchedArrayModel``) against the unbatched one: a fault
campaign of many trials run as one batch equals, trial by trial and cycle by cycle, the
unbatched model run once per trial, on every output (values and their Python types). Likewise
the batched statistical unit against ``golden.stats.StatUnitModel``."""
import pytest
import torch

from golden import schedule
from golden.array import ArrayModel, BatchedArrayModel, unbatch
from golden.faultgen import generator, trial_faults
from golden.faults import Fault
from golden.stats import StatUnitModel, policy_sets
from golden.stats_batch import BatchedStatUnitModel
from golden.stimulus import Driver, stack
from hw.config import ArrayConfig
from hw.facts import FAULT_KINDS, fault_sites
from realm.rtl.sim import suite_seed
from tb.faultgen import random_campaign
from tb.scenarios import make_program, random_param_set

CONFIGS = [ArrayConfig(rows=r, cols=c, dataflow=d, abft=a)
           for (r, c) in [(3, 3), (2, 5), (5, 7)] for d in ("ws", "os")
           for a in ("none", "classic", "approx", "realm")]
EDGES = [ArrayConfig(rows=r, cols=c, dataflow=d, abft="realm")
         for (r, c) in [(1, 1), (1, 4), (4, 1)] for d in ("ws", "os")]
# Accumulators narrower than, as wide as and wider than 32 bits; 4- and 16-bit operands.
WIDTHS = [ArrayConfig(rows=3, cols=4, dataflow=d, abft=a, data_width=dw, acc_width=aw)
          for (dw, aw) in [(8, 16), (4, 8), (16, 32), (16, 48), (8, 24)] for d in ("ws", "os")
          for a in ("none", "realm")]


def ref_traces(config, programs, faults_per_trial):
    """The unbatched model run once per trial."""
    return [ArrayModel(config, f).run(Driver(config, p))
            for p, f in zip(programs, faults_per_trial)]


def batch_traces(config, program, faults_per_trial):
    """One batched run, split into per-trial traces."""
    trace = BatchedArrayModel(config, faults_per_trial).run(Driver(config, program))
    return [[unbatch(out, t) for out in trace] for t in range(len(faults_per_trial))]


def assert_same(got, want):
    """Require equal per-trial traces: same length, keys, values and value types each cycle."""
    assert len(got) == len(want)
    for t, (g_trace, w_trace) in enumerate(zip(got, want)):
        assert len(g_trace) == len(w_trace), f"trial {t}: trace lengths differ"
        for cycle, (g, w) in enumerate(zip(g_trace, w_trace)):
            same = list(g) == list(w) and all(type(g[k]) is type(w[k]) and g[k] == w[k]
                                              for k in w)
            assert same, f"trial {t}, cycle {cycle}: batched != unbatched: " + str(
                {k: (g.get(k), w[k]) for k in w if g.get(k) != w[k] or type(g[k]) is not
                 type(w[k])})


def campaign(config, trials):
    """A program of random tiles and its fault campaign: trial 0 clean, trial 1 with the
    program's own faults (:func:`tb.faultgen.random_campaign`), the others drawn per trial."""
    program, faults = random_campaign(config, suite_seed(), 4)
    return program, [[], faults] + trial_faults(config, program, suite_seed(), trials - 2)


@pytest.mark.parametrize("config", CONFIGS + EDGES + WIDTHS, ids=lambda c: c.id)
def test_campaign_equals_trials(config):
    """24 trials of one program, each with its own random faults, in one batch."""
    program, faults = campaign(config, 24)
    want = ref_traces(config, [program] * len(faults), faults)
    assert_same(batch_traces(config, program, faults), want)
    # The campaign reaches every site and kind, with multi-cycle faults, and changes outputs.
    used = [f for fs in faults for f in fs]
    assert {f.site for f in used} == set(fault_sites(config))
    assert {f.kind for f in used} == set(FAULT_KINDS)
    assert any(f.duration > 1 for f in used)
    assert sum(w != want[0] for w in want[1:]) >= len(want) // 2


@pytest.mark.parametrize("chunk", [3, schedule.CHUNK])
@pytest.mark.parametrize("config", CONFIGS[3::4] + CONFIGS[1::8], ids=lambda c: c.id)
def test_overlapping_faults_compose_as_unbatched(config, chunk, monkeypatch):
    """Faults sharing a cycle (and, by construction here, a register): list order decides, as
    in the unbatched model; of two MSD faults in one cycle the last one acts."""
    program, _ = random_campaign(config, suite_seed(), 3)
    faults = trial_faults(config, program, suite_seed(), 12, overlap=True)
    stacked = []
    for t, fs in enumerate(faults):
        extra = [Fault(f.site, f.row, f.col, FAULT_KINDS[(t + i) % 3], f.mask >> 1 | 1,
                       cycle=f.cycle, duration=f.duration) for i, f in enumerate(fs)]
        stacked.append([x for pair in zip(fs, extra) for x in pair])
    assert any(f.site == "stat.msd" for fs in stacked for f in fs) or config.abft.value == "none"
    want = ref_traces(config, [program] * len(stacked), stacked)  # in one chunk
    monkeypatch.setattr(schedule, "CHUNK", chunk)
    assert_same(batch_traces(config, program, stacked), want)


@pytest.mark.parametrize("chunk", [5, schedule.CHUNK])
@pytest.mark.parametrize("config", CONFIGS[3::4], ids=lambda c: c.id)
def test_permanent_faults(config, chunk, monkeypatch):
    """Faults lasting longer than any run (stuck-at for 10**12 cycles), from the first cycle or
    from the middle of the program, over the trials' other faults; the schedule expanded in
    chunks of 5 cycles too (faults across chunk boundaries)."""
    program, _ = random_campaign(config, suite_seed(), 3)
    faults = trial_faults(config, program, suite_seed(), 8)
    r, c = config.rows - 1, config.cols - 1
    forever = [Fault("pe.b", r, c, "stuck1", 0x41, cycle=0, duration=10**12),
               Fault("pe.acc", r, 0, "stuck0", 1 << 31, cycle=40, duration=10**12),
               Fault("stat.msd", 0, 0, "stuck1", 1 << 20, cycle=30, duration=10**12),
               Fault("ck.y", 0, c, "flip", 1 << 3, cycle=35, duration=10**12)]
    faults = [fs + [forever[t % 4]] for t, fs in enumerate(faults)]
    want = ref_traces(config, [program] * len(faults), faults)  # in one chunk
    monkeypatch.setattr(schedule, "CHUNK", chunk)
    assert_same(batch_traces(config, program, faults), want)
    clean = ArrayModel(config).run(Driver(config, program))
    assert sum(w != clean for w in want) >= len(want) // 2


@pytest.mark.parametrize("config", CONFIGS[1::2], ids=lambda c: c.id)
@pytest.mark.parametrize("scenario", ["random", "gaps", "reset_mid", "extremes"])
def test_per_trial_operands(config, scenario):
    """Trials with their own operands (and faults) in one batch."""
    trials = 6
    head = policy_sets(config) + [("select", 2)] if config.abft.value != "none" else []
    programs = [head + make_program(config, scenario, suite_seed() + t) for t in range(trials)]
    faults = trial_faults(config, programs[0], suite_seed(), trials)
    want = ref_traces(config, programs, faults)
    assert_same(batch_traces(config, stack(programs), faults), want)
    assert want[0] != want[1]


def test_stack_rejects_different_programs():
    config = ArrayConfig(rows=2, cols=2)
    a = make_program(config, "random", 1)
    with pytest.raises(ValueError, match="^programs to stack must have the same operations$"):
        stack([a, a + [("idle", 1)]])
    with pytest.raises(ValueError, match="differ in a 'stream' operation's parameters"):
        stack([a, [a[0], (a[1][0], a[1][1], 1)]])


@pytest.mark.parametrize("faults, message", [
    ([Fault("ck.y", 0, 0, "flip", 1)], "site 'ck.y' needs checksum logic"),
    ([Fault("pe.acc", 2, 0, "flip", 1)], r"fault at \(2, 0\) is outside site 'pe.acc'"),
    ([Fault("pe.x", 0, 0, "flip", 1)], "site 'pe.x' is not a register of the array model"),
])
def test_bad_faults(faults, message):
    with pytest.raises(ValueError, match="^" + message):
        BatchedArrayModel(ArrayConfig(rows=2, cols=2), [[], faults])


def test_empty_batch():
    with pytest.raises(ValueError, match="^a batch needs at least one trial$"):
        BatchedArrayModel(ArrayConfig(rows=2, cols=2), [])


def test_msd_wider_than_int64():
    config = ArrayConfig(rows=2, cols=2, abft="realm", acc_width=64)
    ArrayModel(config)  # the unbatched unit computes on Python ints
    with pytest.raises(ValueError, match="^the batched statistical unit holds the MSD in an "
                       "int64: 66 bits do not fit$"):
        BatchedArrayModel(config, [[]])


def stat_stimulus(seed, n, trials, cycles=600, aw=32, sets=4):
    """Shared control (valid, end, selections, parameter writes) and per-trial differences of
    every magnitude (zeros, the most negative value, opposite signs)."""
    g = generator(seed, "batched stats", n)
    rnd = lambda hi: int(torch.randint(0, hi, (1,), generator=g))  # noqa: E731
    out = []
    for cycle in range(cycles):
        inp = {"valid": int(rnd(4) != 0), "end": int(rnd(5) == 0), "sel": rnd(sets)}
        d = []
        for _ in range(trials):
            kind = rnd(6)
            d.append(0 if kind == 0 else -(1 << (aw - 1)) if kind == 1 else
                     (rnd(2) * 2 - 1) * rnd(1 << rnd(aw - 1) + 1))
        inp["d"] = d
        if cycle < 8 or rnd(50) == 0:
            inp["cfg"] = random_param_set(rnd, sets, n)
        faulted = [t for t in range(trials) if rnd(12) == 0]
        inp["msd"] = {t: (FAULT_KINDS[rnd(3)], 1 << rnd(32 + 5)) for t in faulted}
        out.append(inp)
    return out


@pytest.mark.parametrize("abft, n", [("classic", 8), ("approx", 8), ("realm", 8), ("realm", 40)])
def test_stat_unit_batch_equals_trials(abft, n):
    """The statistical unit alone: trials with their own differences and MSD faults."""
    from golden.arith import fault_masks
    trials, aw = 5, 32
    stim = stat_stimulus(suite_seed(), n, trials)
    width = BatchedStatUnitModel(n, aw, abft, 4, 8, 10, batch=trials).widths["msd"]
    batched = BatchedStatUnitModel(n, aw, abft, 4, 8, 10, batch=trials)
    got = []
    for inp in stim:
        m = inp["msd"]
        fault = (torch.tensor(list(m)), *torch.tensor(
            [fault_masks([km], width) for km in m.values()]).reshape(-1, 3).T) if m else None
        out = batched.step({**inp, "d": torch.tensor(inp["d"])}, fault)
        got.append([{k: (v if not isinstance(v, torch.Tensor) else
                         int(v[t]) if v.dim() == 1 else v[t].tolist()) for k, v in out.items()}
                    for t in range(trials)])
    for t in range(trials):
        model = StatUnitModel(n, aw, abft, 4, 8, 10)
        want = [model.step({**inp, "d": inp["d"][t]}, inp["msd"].get(t)) for inp in stim]
        assert_same([[g[t] for g in got]], [want])
    assert sum(o["o_done"] for o in want) > 50
