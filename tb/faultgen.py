"""Seeded fault campaigns for the ABFT tests: stimulus programs with the fault lists that go
with them. Fault cycles come from the golden model's handshake schedule
(:func:`golden.stimulus.accept_cycles`), so each fault lands where it is meant to."""
import torch

from golden.faultgen import beat_cycles, generator, random_faults
from golden.faults import Fault
from golden.stats import policy_sets
from golden.stimulus import accept_cycles
from hw.config import Dataflow

from .scenarios import operands


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
    return prog, random_faults(config, beat_cycles(config, prog), spans, rnd)
