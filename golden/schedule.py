"""Faults by the clock edge they act on: the fault lists of a batch of trials (one list for the
unbatched model) turned into what :mod:`golden.array` applies each cycle, index and mask tensors
over the trials' registers. The lists are gathered into tensors once and expanded into cycles
a chunk of cycles at a time, so a fault may last any number of cycles (a stuck-at fault for
the whole run) and a campaign of many trials costs a few tensor operations per chunk."""
import torch

from hw.config import Abft, Dataflow
from hw.facts import FAULT_KINDS, SITES

#: Cycles expanded at a time.
CHUNK = 256
_KIND = {k: i for i, k in enumerate(FAULT_KINDS)}


def _int64(m):
    """A 64-bit mask as the int64 value with the same bits."""
    return m - (1 << 64) if m >= 1 << 63 else m


class FaultSchedule:
    """The faults of ``trials`` (one fault list per trial) for a model of ``config``; the masks
    of a site in ``dtypes`` are cast to that dtype (its registers' dtype, wide enough for the
    site: bit patterns are kept).

    :meth:`at` gives ``(regs, msd)`` for one cycle. ``regs`` lists ``(site, index, keep, set,
    flip, width)``: a layer of faults on one site, ``index`` the faulted registers as flat
    indices into the site's register tensor (trials first), each with the
    :func:`golden.arith.fault_masks` triple of its fault. Faults that hit one register in one
    cycle are in successive layers, in list order: applied in turn, as the unbatched model
    applies them. ``msd`` is the fault of the statistical unit's MSD register, each trial's
    last active one (the unit takes one): ``(kind, mask)`` for the unbatched unit,
    ``(trials, keep, set, flip)`` for the batched one, or None.

    Raises
    ------
    ValueError
        If a fault names no register of ``config``, or an unknown kind.
    """

    def __init__(self, config, trials, batched, dtypes=None):
        c = config
        self._batched = batched
        by_site = {}
        for t, faults in enumerate(trials):
            for f in faults:
                by_site.setdefault(f.site, []).append((t, f))
        self._msd = [f for _, f in by_site.get("stat.msd", ())]
        self._tables = {}
        for site, faults in by_site.items():
            self._check(c, site, faults)
            width = SITES[site].width(c)
            size, per_row, by_row = self._layout(c, site)
            start, end, flat, kind, mask = torch.tensor(
                [(f.cycle, f.cycle + f.duration,
                  t * size + (f.row * per_row + f.col if by_row else f.col), _KIND[f.kind],
                  _int64(f.mask & ((1 << 64) - 1))) for t, f in faults], dtype=torch.int64).T
            masks = self._masks(kind, mask, width)
            if dtypes and site in dtypes:
                masks = [m.to(dtypes[site]) for m in masks]
            self._tables[site] = (start, end, flat, *masks, width)
        self._chunk, self._cycles = None, {}

    def at(self, cycle):
        """Return ``(regs, msd)`` of the faults acting on the edge that ends ``cycle``."""
        if self._chunk != cycle // CHUNK:
            self._chunk = cycle // CHUNK
            self._cycles = self._expand(self._chunk * CHUNK)
        regs, msd = self._cycles.get(cycle, ((), None))
        return regs, msd

    @staticmethod
    def _check(c, site, faults):
        if site not in SITES:
            raise ValueError(f"site {site!r} is not a register of the array model")
        if SITES[site].abft and c.abft is Abft.NONE:
            raise ValueError(f"site {site!r} needs checksum logic (abft other than 'none')")
        nrows, ncols = SITES[site].grid(c)
        for _, f in faults:
            if not (0 <= f.row < nrows and 0 <= f.col < ncols):
                raise ValueError(f"fault at ({f.row}, {f.col}) is outside site {site!r} "
                                 f"({nrows} x {ncols})")
            if f.kind not in _KIND:
                raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not "
                                 f"{f.kind!r}")

    @staticmethod
    def _layout(c, site):
        """``(size, per_row, by_row)``: registers per trial of ``site``'s tensor, and how a
        fault's (row, col) indexes them (``row * per_row + col``, or by ``col`` alone, or by
        ``row`` alone for the WS checksum column)."""
        if site.startswith("pe."):
            return c.rows * c.cols, c.cols, True
        if site == "stat.msd":
            return 1, 0, False  # by trial
        if site == "ck.acc" and c.dataflow is Dataflow.WS:
            return c.rows, 1, True  # (row, 0)
        return c.cols, 0, False

    @staticmethod
    def _masks(kind, mask, width):
        """The :func:`golden.arith.fault_masks` triples of single faults, element-wise."""
        full = _int64((1 << width) - 1)
        m = mask & full
        flip, stuck1 = kind == _KIND["flip"], kind == _KIND["stuck1"]
        keep = torch.where(flip, full, full & ~m)
        return keep, torch.where(stuck1, m, 0), torch.where(flip, m, 0)

    def _expand(self, c0):
        """``{cycle: (regs, msd)}`` for the cycles ``c0`` to ``c0 + CHUNK - 1``."""
        cycles = {}
        for site, (start, end, flat, keep, set_, flip, width) in self._tables.items():
            sel = ((start < c0 + CHUNK) & (end > c0)).nonzero()[:, 0]
            lo = start[sel].clamp(min=c0)
            n = (end[sel].clamp(max=c0 + CHUNK) - lo).clamp(min=0)
            entry = sel.repeat_interleave(n)  # one per fault and cycle, in list order
            if not len(entry):
                continue
            first = (n.cumsum(0) - n).repeat_interleave(n)
            cycle = lo.repeat_interleave(n) + torch.arange(len(entry)) - first - c0
            key = cycle * (int(flat.max()) + 1) + flat[entry]
            key, perm = key.sort(stable=True)
            entry, cycle = entry[perm], cycle[perm]
            new = torch.ones(len(key), dtype=torch.bool)
            new[1:] = key[1:] != key[:-1]
            if site == "stat.msd":
                last = torch.ones(len(key), dtype=torch.bool)
                last[:-1] = new[1:]
                entry, cycle = entry[last], cycle[last]
                for cy, group in zip(*self._groups(cycle, cycle, entry)):
                    cycles.setdefault(cy + c0, [[], None])[1] = self._msd_fault(
                        group, flat, keep, set_, flip)
                continue
            # Layer: the rank of a fault among those on its register in its cycle.
            pos = torch.arange(len(key))
            layer = pos - torch.cummax(torch.where(new, pos, 0), 0).values
            run = cycle * (int(layer.max()) + 1) + layer
            run, perm = run.sort(stable=True)
            entry, cycle = entry[perm], cycle[perm]
            for cy, group in zip(*self._groups(run, cycle, entry)):
                cycles.setdefault(cy + c0, [[], None])[0].append(
                    (site, flat[group], keep[group], set_[group], flip[group], width))
        return {cy: tuple(v) for cy, v in cycles.items()}

    @staticmethod
    def _groups(key, cycle, entry):
        """Split ``entry`` into its runs of equal ``key`` (sorted); return each run's cycle and
        entries."""
        new = torch.ones(len(key), dtype=torch.bool)
        new[1:] = key[1:] != key[:-1]
        return cycle[new].tolist(), entry.tensor_split(new.nonzero()[1:, 0].tolist())

    def _msd_fault(self, group, flat, keep, set_, flip):
        if not self._batched:
            f = self._msd[int(group[-1])]
            return f.kind, f.mask
        return flat[group], keep[group], set_[group], flip[group]
