"""The statistical unit of :mod:`golden.stats` over a batch of independent trials, for
:func:`golden.array.BatchedArrayModel`: the same pipeline (:meth:`golden.stats.StatUnitModel.step`,
written once), its per-trial values in tensors."""
import torch

from hw.facts import LOG_FRAC

from .arith import apply_masks, bit_length
from .stats import StatUnitModel, log2q


def log2q_tensor(x):
    """:func:`log2q` of each element of a non-negative int64 tensor."""
    p = bit_length(x) - 1
    up, down = (LOG_FRAC - p).clamp(min=0), (p - LOG_FRAC).clamp(min=0)
    frac = torch.where(p >= LOG_FRAC, x >> down, x << up) & ((1 << LOG_FRAC) - 1)
    return torch.where(x > 0, (p << LOG_FRAC) | frac, 0)


class BatchedStatUnitModel(StatUnitModel):
    """:class:`golden.stats.StatUnitModel` over ``batch`` independent trials that share their
    control (valid, end, parameter sets and selections) and differ in their differences ``d``:
    every per-trial register and output is an int64 tensor whose first dimension is the trial.
    Trial ``i`` behaves exactly as a :class:`StatUnitModel` fed trial ``i``'s ``d``.

    :meth:`step` takes ``d`` as a tensor of ``batch`` values (or one value for all), and
    ``msd_fault`` as ``(trials, keep, set, flip)``: the trials whose MSD register is faulted
    and, per trial, the :func:`golden.arith.fault_masks` of its fault. The outputs are those of
    :class:`StatUnitModel` with every value but ``o_done`` a tensor over the trials
    (``c_hist``: trials x bins).

    Raises
    ------
    ValueError
        If the MSD does not fit an int64 (``acc_width + clog2(n) + 1`` above 63 bits).
    """

    def __init__(self, n, acc_width, abft, param_sets=4, hist_bins=8, counter_width=32, *,
                 batch):
        self.batch = batch
        self._consts = {}  # one read-only tensor per Python int seen, shared by all trials
        super().__init__(n, acc_width, abft, param_sets, hist_bins, counter_width)
        if self.widths["msd"] > 63:
            raise ValueError(f"the batched statistical unit holds the MSD in an int64: "
                             f"{self.widths['msd']} bits do not fit")

    def reset(self):
        super().reset()
        b, n = self.batch, self.n
        self.banks = tuple(torch.zeros(b, self.banks_n, n, dtype=torch.int64) for _ in range(2))
        self.hist = torch.zeros(b, self.bins, dtype=torch.int64)
        self.s2a["hits"] = torch.zeros(b, n, dtype=torch.int64)
        self.s2b["parts"] = torch.zeros(b, -(-n // self.group), dtype=torch.int64)

    def _vector(self, x):
        if isinstance(x, int):
            if x not in self._consts:
                self._consts[x] = torch.full((self.batch,), x, dtype=torch.int64)
            return self._consts[x]
        return torch.as_tensor(x, dtype=torch.int64).expand(self.batch)

    def outputs(self):
        out = {k: (v if k == "o_done" else self._vector(v)) for k, v in self.out.items()}
        out.update({f"c_{k}": self._vector(v) for k, v in self.counters.items()})
        out["c_hist"] = self.hist
        return out

    def _value(self, x):
        return self._vector(x)

    @staticmethod
    def _bit(cond):
        return cond.long() if isinstance(cond, torch.Tensor) else int(cond)

    def _sat(self, v):
        return v.clamp(max=self.cmax) if isinstance(v, torch.Tensor) else min(self.cmax, v)

    @staticmethod
    def _log2q(x):
        return log2q_tensor(x) if isinstance(x, torch.Tensor) else log2q(x)

    def _bank_write(self, bank, idx, nz, mag):
        # In place: the step has read this cycle's banks already.
        nzs, logs = self.banks
        nzs[:, bank, idx] = nz
        logs[:, bank, idx] = self._log2q(self._vector(mag))
        return self.banks

    def _hist_add(self, d, nz):
        per = -(-self.aw // self.bins)
        b = ((bit_length(self._vector(d).abs()) - 1) // per).clamp(min=0)
        hist = self.hist.clone()
        hist[torch.arange(self.batch), b] += nz
        return self._sat(hist)

    def _hits(self, bank, cnt, theta):
        nzs, logs = self.banks
        theta = torch.as_tensor(theta).reshape(-1, 1)
        below = torch.arange(self.n) < cnt
        return (below & (nzs[:, bank] != 0) & (logs[:, bank] > theta)).long()

    def _parts(self, hits):
        pad = -self.n % self.group
        hits = torch.nn.functional.pad(hits, (0, pad))
        return hits.reshape(self.batch, -1, self.group).sum(-1)

    @staticmethod
    def _total(parts):
        return parts.sum(-1)

    def _msd_fault(self, pair, fault):
        w = self.widths["msd"]
        trials, keep, set_, flip = fault
        pair = self._vector(pair).clone()
        pair[trials] = apply_masks(pair[trials], keep, set_, flip, w) & ((1 << w) - 1)
        return pair
