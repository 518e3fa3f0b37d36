"""Faults by the clock edge they act on: the fault lists of a batch of trials (one list for the
unbatched model) turned into what :mod:`golden.array` applies each cycle, index and mask tensors
over the trials' registers."""
import bisect

import torch

from hw.config import Abft, Dataflow

from .arith import fault_masks
from .faults import SITES


class FaultSchedule:
    """The faults of every trial, by the clock edge they act on: :meth:`at` gives ``(regs,
    msd)`` for a cycle. ``regs[site]`` is ``(index, keep, set, flip, width)``: the faulted
    registers as an index over (trial, position) and one :func:`golden.arith.fault_masks`
    triple per register (faults hitting the same register in the same cycle compose in list
    order). ``msd`` is the fault of the statistical unit's MSD register, each trial's last
    active one (the unit takes one): ``(kind, mask)`` for the unbatched unit, ``(trials, keep,
    set, flip)`` for the batched one, or None. The schedule is kept per stretch of cycles with
    the same active faults, so a fault may last any number of cycles."""

    def __init__(self, config, trials, batched):
        self._config, self._batched = config, batched
        spans = []
        for t, faults in enumerate(trials):
            for i, f in enumerate(faults):
                self._check(config, f)
                if f.duration > 0:
                    spans.append((f.cycle, f.cycle + f.duration, (t, i), f))
        starting, ending = {}, {}
        for span in spans:
            starting.setdefault(span[0], []).append(span)
            ending.setdefault(span[1], []).append(span)
        self._starts, self._active = [], []
        active = {}
        for cycle in sorted(starting.keys() | ending.keys()):
            for span in ending.get(cycle, ()):
                del active[span[2]]
            for span in starting.get(cycle, ()):
                active[span[2]] = span[3]
            self._starts.append(cycle)
            self._active.append(self._merge([(key[0], active[key]) for key in sorted(active)]))

    def at(self, cycle):
        i = bisect.bisect_right(self._starts, cycle) - 1
        return self._active[i] if i >= 0 else ({}, None)

    @staticmethod
    def _check(c, f):
        if f.site not in SITES:
            raise ValueError(f"site {f.site!r} is not a register of the array model")
        if SITES[f.site].abft and c.abft is Abft.NONE:
            raise ValueError(f"site {f.site!r} needs checksum logic (abft other than 'none')")
        nrows, ncols = SITES[f.site].grid(c)
        if not (0 <= f.row < nrows and 0 <= f.col < ncols):
            raise ValueError(f"fault at ({f.row}, {f.col}) is outside site {f.site!r} "
                             f"({nrows} x {ncols})")

    def _merge(self, faults):
        """``(regs, msd)`` of the ``(trial, fault)`` pairs active together, in list order."""
        c = self._config
        ops, msd = {}, {}
        for t, f in faults:
            group, name = f.site.split(".", 1)
            if group == "stat":
                msd[t] = f
                continue
            pos = ((f.row, f.col) if group == "pe" else
                   (f.row,) if name == "acc" and c.dataflow is Dataflow.WS else (f.col,))
            ops.setdefault(f.site, {}).setdefault((t, *pos), []).append((f.kind, f.mask))
        regs = {}
        for site, by_reg in ops.items():
            width = c.data_width if site in ("pe.a", "pe.b") else c.acc_width
            index = tuple(torch.tensor(col) for col in zip(*by_reg))
            masks = torch.tensor([fault_masks(fs, width) for fs in by_reg.values()]).T
            regs[site] = (index, *masks, width)
        if not msd:
            return regs, None
        if not self._batched:
            return regs, (msd[0].kind, msd[0].mask)
        w = SITES["stat.msd"].width(c)
        return regs, (torch.tensor(list(msd)),
                      *torch.tensor([fault_masks([(f.kind, f.mask)], w)
                                     for f in msd.values()]).T)
