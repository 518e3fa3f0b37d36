"""Seeded fault campaigns for the ABFT tests: stimulus programs with the fault lists that go
with them. Fault cycles come from the golden model's handshake schedule
(:func:`golden.stimulus.accept_cycles`), so each fault lands where it is meant to."""
import torch

from golden.faults import SITES, Fault
from golden.stats import policy_sets  # re-exported: tb.faultgen.policy_sets
from golden.stimulus import accept_cycles
from hw.facts import FAULT_KINDS, fault_sites
from hw.config import Dataflow

from .scenarios import generator, operands


def single_flip_campaign(config, seed):
    """One flip per PE accumulator per bit. WS: each vector is a tile of its own carrying one
    flip, written into PE (r, c) as it adds that vector's product; vectors are grouped by
    anti-diagonal r + c so that the flips' cycles never collide. OS: each tile carries one
    flip per column, all in row r at bit b, as the first product is accumulated."""
    g = generator(seed, "single", config.id)
    rows, cols, aw = config.rows, config.cols, config.acc_width
    prog = policy_sets(config) + [("select", 0)]
    targets = []
    if config.dataflow is Dataflow.WS:
        order = sorted(((r, c) for r in range(rows) for c in range(cols)),
                       key=lambda rc: (rc[0] + rc[1], rc[0]))
        targets = [(r, c, b) for (r, c) in order for b in range(aw)]
        prog += [("load", operands(config, (rows, cols), "random", g)),
                 ("stream", operands(config, (len(targets), rows), "random", g), 0, True)]
        beats = [cy for kind, cy in accept_cycles(config, prog) if kind == "a"]
        faults = [Fault("pe.acc", r, c, "flip", 1 << b, cycle=t + r + c)
                  for (r, c, b), t in zip(targets, beats)]
    else:
        for r in range(rows):
            for b in range(aw):
                prog.append(("tile", operands(config, (rows, 2), "random", g),
                             operands(config, (2, cols), "random", g), 0, True))
                targets.append((r, b))
        beats = [cy for kind, cy in accept_cycles(config, prog) if kind == "ab"][::2]
        faults = [Fault("pe.acc", r, c, "flip", 1 << b, cycle=t + r + c)
                  for (r, b), t in zip(targets, beats) for c in range(cols)]
    return prog, faults


def random_campaign(config, seed, tiles):
    """``tiles`` random tiles (random and extreme operands, every parameter set in turn), about
    two thirds of them hit by 1 to 3 random faults anywhere the fault port reaches: any site,
    kind, bit or multi-bit mask, cycle within the tile, duration 1 to 3."""
    g = generator(seed, "random", config.id)
    rnd = lambda hi: int(torch.randint(0, hi, (1,), generator=g))  # noqa: E731
    rows, cols = config.rows, config.cols
    prog = policy_sets(config)
    spans = []
    for t in range(tiles):
        kind = ("random", "extremes", "max")[rnd(3)]
        prog.append(("select", rnd(4)))
        start = len(prog)
        if config.dataflow is Dataflow.WS:
            m = 1 + rnd(cols)
            prog += [("load", operands(config, (rows, cols), kind, g)),
                     ("stream", operands(config, (m, rows), kind, g), rnd(2))]
        else:
            k = 1 + rnd(2 * rows)
            prog.append(("tile", operands(config, (rows, k), kind, g),
                         operands(config, (k, cols), kind, g), rnd(2), True))
        spans.append((start, len(prog)))
    return prog, _random_faults(config, _beat_cycles(config, prog), spans, rnd)


def trial_faults(config, program, seed, trials, overlap=False):
    """Fault lists for ``trials`` independent trials of ``program`` (a fault campaign), drawn as
    :func:`random_campaign` draws its faults, each trial from its own seed. The program's tiles
    are its ``load``/``stream`` pairs (WS) or its ``tile`` operations (OS). With ``overlap``,
    faults may share cycles, registers and the MSD register (the golden model takes any list;
    the fault port only one fault per cycle)."""
    ws = config.dataflow is Dataflow.WS
    spans = [(i, i + 1 + ws) for i, op in enumerate(program) if op[0] == ("load" if ws else "tile")]
    beats = _beat_cycles(config, program)
    faults = []
    for t in range(trials):
        g = generator(seed, "trial", config.id, t)
        rnd = lambda hi: int(torch.randint(0, hi, (1,), generator=g))  # noqa: E731
        faults.append(_random_faults(config, beats, spans, rnd, overlap))
    return faults


def _beat_cycles(config, prog):
    """``(first, last)``: the cycles of each operation's first and last accepted beat, by
    program position."""
    rows = config.rows
    cycles = accept_cycles(config, prog)
    beat_op = []
    for i, op in enumerate(prog):
        n = {"load": rows, "stream": len(op[1]) if op[0] == "stream" else 0,
             "tile": op[1].shape[1] if op[0] == "tile" else 0}.get(op[0], 0)
        beat_op += [i] * n
    first = {}
    last = {}
    for (kind, cy), i in zip(cycles, beat_op):
        first.setdefault(i, cy)
        last[i] = cy
    return first, last


def _random_faults(config, beats, spans, rnd, overlap=False):
    """About two thirds of the tiles ``prog[start:end]`` (``spans``) hit by 1 to 3 faults
    within the cycles of their beats (``beats`` from :func:`_beat_cycles`)."""
    rows, cols = config.rows, config.cols
    first, last = beats
    sites = fault_sites(config)
    faults, used = [], set()
    for start, end in spans:
        if rnd(3) == 0:
            continue
        lo = min(first[i] for i in range(start, end) if i in first)
        hi = max(last[i] for i in range(start, end) if i in last) + rows + cols + 2
        for _ in range(1 + rnd(3)):
            site = sites[rnd(len(sites))]
            nrows, ncols = SITES[site].grid(config)
            width = SITES[site].width(config)
            mask = 1 << rnd(width) if rnd(2) else rnd((1 << width) - 1) + 1
            cycle, dur = lo + rnd(hi - lo + 1), 1 + rnd(3)
            if not overlap and any(c in used for c in range(cycle, cycle + dur)):
                continue
            used.update(range(cycle, cycle + dur))
            faults.append(Fault(site, rnd(nrows), rnd(ncols), FAULT_KINDS[rnd(3)],
                                mask, cycle=cycle, duration=dur))
    return faults
