"""Seeded random fault lists for fault campaigns over a stimulus program: each trial its own
list, drawn from its own seed (faults are data; every random choice is seeded). The golden
model's batched campaigns (``realm bench``) and the tests' campaigns draw them here."""
import zlib

import torch

from golden.faults import Fault
from golden.stimulus import accept_cycles
from hw.config import Dataflow
from hw.facts import FAULT_KINDS, SITES, fault_sites


def generator(seed, *names):
    """A torch generator seeded from ``seed`` and a stable hash of ``names``."""
    key = zlib.crc32("/".join(map(str, names)).encode())
    return torch.Generator().manual_seed((seed * 1_000_003 + key) % (1 << 63))



def trial_faults(config, program, seed, trials, overlap=False):
    """Fault lists for ``trials`` independent trials of ``program`` (a fault campaign), drawn as
    :func:`random_campaign` draws its faults, each trial from its own seed. The program's tiles
    are its ``load``/``stream`` pairs (WS) or its ``tile`` operations (OS). With ``overlap``,
    faults may share cycles, registers and the MSD register (the golden model takes any list;
    the fault port only one fault per cycle)."""
    ws = config.dataflow is Dataflow.WS
    spans = [(i, i + 1 + ws) for i, op in enumerate(program) if op[0] == ("load" if ws else "tile")]
    beats = beat_cycles(config, program)
    faults = []
    for t in range(trials):
        g = generator(seed, "trial", config.id, t)
        rnd = lambda hi: int(torch.randint(0, hi, (1,), generator=g))  # noqa: E731
        faults.append(random_faults(config, beats, spans, rnd, overlap))
    return faults


def beat_cycles(config, prog):
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


def random_faults(config, beats, spans, rnd, overlap=False):
    """About two thirds of the tiles ``prog[start:end]`` (``spans``) hit by 1 to 3 faults
    within the cycles of their beats (``beats`` from :func:`beat_cycles`)."""
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
