"""Every statistical-unit decision of a simulated program against the transaction-level model
``golden.stats.decide``: the differences each tile produced (read from the ``o_d`` stream), the
parameter set in force when its last difference arrived (the unit samples ``sel`` with it), and
the flags, MSD, θ and freq_eff the unit reported. The unit applies a set's ``msd_mode`` to each
difference as it arrives, with the ``sel`` of that cycle: a tile whose selection changes to a set
of another ``msd_mode`` before its last difference (a program that selects the next tile's set
while this one drains) mixes the two sums, and is not compared. Independent of the cycle model:
it uses the program, the driver's inputs replayed against the trace's handshakes, and the
unit's outputs."""
from golden.stats import decide
from golden.stimulus import Driver
from hw.config import Dataflow


def tile_sizes(config, program):
    """Number of differences of each checked tile, in program order."""
    sizes = []
    for op in program:
        if op[0] == "stream" and config.dataflow is Dataflow.WS:
            m, every = len(op[1]), len(op) > 3 and op[3]
            sizes += [1] * m if every else [min(config.stat_n, m - i)
                                            for i in range(0, m, config.stat_n)]
        elif op[0] == "tile" and config.dataflow is Dataflow.OS and (len(op) <= 4 or op[4]):
            sizes.append(config.cols)
    return sizes


def inputs_per_cycle(config, program, trace):
    """The (sel, parameter sets written so far) the driver presented in each cycle of ``trace``."""
    driver, sets, out = Driver(config, program), {}, []
    for o in trace:
        inp = driver.inputs()
        if inp["cfg"] is not None:
            sets = {**sets, inp["cfg"][0]: inp["cfg"][1]}
        out.append((inp["sel"], sets))
        driver.update(o)
    return out


def check_decisions(config, program, trace, faults=()):
    """Require each tile's decision to equal ``decide`` on its differences; tiles whose MSD
    register a ``stat.msd`` fault may have touched (from the end of the previous tile to the
    decision) or whose differences were summed in two modes are skipped. Returns the number of
    tiles compared."""
    ds = [(cy, o["o_d"]) for cy, o in enumerate(trace) if o["o_d_valid"]]
    done = [o for o in trace if o["o_done"]]
    sizes = tile_sizes(config, program)
    assert len(done) == len(sizes), f"{len(done)} decisions for {len(sizes)} tiles"
    assert len(ds) == sum(sizes), "difference count differs from the program"
    state = inputs_per_cycle(config, program, trace)
    msd_faults = [c for f in faults if f.site == "stat.msd"
                  for c in range(f.cycle, f.cycle + f.duration)]
    realm, approx = config.abft.value == "realm", config.abft.value in ("approx", "realm")
    pos, prev_end, compared = 0, -1, 0
    for n, out in zip(sizes, done):
        cycles, d = zip(*ds[pos:pos + n])
        pos += n
        end = cycles[-1]
        sel, sets = state[end]
        hit = any(prev_end < c <= end + 8 for c in msd_faults)
        prev_end = end
        modes = {sets[state[c][0]].msd_mode if state[c][0] in sets else 0 for c in cycles}
        if hit or len(modes) > 1:
            continue
        want = decide(list(d), sets[sel])
        flags = want.flag_classic | (want.flag_approx and approx) << 1 | \
            (want.flag_realm and realm) << 2
        assert out["o_flags"] == flags, f"tile {compared}: flags {out['o_flags']} != {flags}"
        assert out["o_mismatch"] == want.mismatch
        if approx:
            assert out["o_msd"] == want.msd
        if realm:
            assert (out["o_freq_eff"], out["o_theta"]) == (want.freq_eff, want.theta)
        compared += 1
    return compared
