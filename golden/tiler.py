"""A GEMM as the array runs it, at transaction level: its decision units (the tiles the
statistical unit checks one at a time) and the checksum differences ``d`` that errors in the
output accumulators produce in them (paper §IV-A/B, Fig. 7; :mod:`hw.checksum`, :mod:`hw.stats`).

``C[M, N] = A[M, K] @ B[K, N]`` on a ``rows`` x ``cols`` array, in the order of
:class:`golden.workload.TiledGemm`:

* **WS**: one ``rows`` x ``cols`` weight tile per (N-chunk ``nc``, K-chunk ``kc``), ``nc``
  outer; the M activation vectors stream through it and its partial sums are added outside the
  array (wrapping). The statistical unit closes a tile every ``cols`` vectors
  (:attr:`hw.config.ArrayConfig.stat_n`), so a decision unit is (``nc``, ``kc``, M-chunk ``mc``
  of ``cols`` vectors), with one difference per vector: ``d_m = eᵀy_m - eᵀW x_m``, i.e. the sum
  of the errors of that vector's partial outputs in that weight tile.
* **OS**: one ``rows`` x ``cols`` output tile per (``mc``, ``nc``), ``mc`` outer, over the
  whole K; one difference per output column: ``d_j = eᵀY_j - eᵀA B_j``, the sum of the errors
  of column ``j`` of the tile.

An error is an additive change ``delta`` of one output element's accumulator, located at
(GEMM ``g``, row, col) and, in WS, at the K-chunk whose partial sum carries it. Differences wrap
at ``acc_width`` as the checksum registers do. Several independent GEMMs of one shape (the heads
of an attention BMM) are numbered ``g`` and tiled one after the other.
"""
import dataclasses
import math

import torch

from hw.config import Dataflow

from .arith import wrap

_I64 = torch.int64


@dataclasses.dataclass(frozen=True)
class Tiling:
    """The decision units of ``gemms`` GEMMs of shape M x K x N on ``config``'s array."""

    config: object
    m: int
    k: int
    n: int
    gemms: int = 1

    def __post_init__(self):
        for name in ("m", "k", "n", "gemms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")

    @property
    def ws(self):
        return self.config.dataflow is Dataflow.WS

    @property
    def chunks(self):
        """(M-chunks, K-chunks, N-chunks): K-chunks is 1 in OS (the whole K in one tile)."""
        c = self.config
        if self.ws:
            return (math.ceil(self.m / c.cols), math.ceil(self.k / c.rows),
                    math.ceil(self.n / c.cols))
        return math.ceil(self.m / c.rows), 1, math.ceil(self.n / c.cols)

    @property
    def units(self):
        """Decision units of all the GEMMs."""
        mc, kc, nc = self.chunks
        return self.gemms * mc * kc * nc

    @property
    def macs(self):
        """Multiply-accumulates of the products themselves (padding excluded)."""
        return self.gemms * self.m * self.k * self.n

    def _unit(self, g, mc, kc, nc):
        m_, k_, n_ = self.chunks
        if self.ws:  # program order: nc, kc, mc
            return ((g * n_ + nc) * k_ + kc) * m_ + mc
        return (g * m_ + mc) * n_ + nc

    def _split(self, unit):
        """(g, mc, kc, nc) of unit ids (a tensor)."""
        m_, k_, n_ = self.chunks
        if self.ws:
            mc, rest = unit % m_, unit // m_
            kc, rest = rest % k_, rest // k_
            return rest // n_, mc, kc, rest % n_
        nc, rest = unit % n_, unit // n_
        return rest // m_, rest % m_, torch.zeros_like(unit), nc

    def unit_macs(self, unit):
        """MACs of each decision unit in ``unit`` (a tensor of ids): what recomputing it costs."""
        c = self.config
        _, mc, kc, nc = self._split(torch.as_tensor(unit, dtype=_I64))
        if self.ws:
            rows = torch.clamp(self.m - mc * c.cols, max=c.cols)
            ks = torch.clamp(self.k - kc * c.rows, max=c.rows)
            return rows * ks * torch.clamp(self.n - nc * c.cols, max=c.cols)
        return (torch.clamp(self.m - mc * c.rows, max=c.rows) * self.k
                * torch.clamp(self.n - nc * c.cols, max=c.cols))

    def unit_length(self, unit):
        """Differences the statistical unit receives for each unit (WS: its vectors; OS:
        ``cols``, padding columns included)."""
        c = self.config
        unit = torch.as_tensor(unit, dtype=_I64)
        if self.ws:
            return torch.clamp(self.m - self._split(unit)[1] * c.cols, max=c.cols)
        return torch.full_like(unit, c.cols)

    def locate(self, g, row, col, kc=None):
        """(unit id, position of the difference in the unit) of errors at (g, row, col) carried
        by K-chunk ``kc`` (WS; ignored in OS). Tensors of equal shape."""
        c = self.config
        g, row, col = (torch.as_tensor(v, dtype=_I64) for v in (g, row, col))
        if self.ws:
            kc = torch.as_tensor(kc, dtype=_I64)
            return self._unit(g, row // c.cols, kc, col // c.cols), row % c.cols
        return self._unit(g, row // c.rows, 0, col // c.cols), col % c.cols

    def differences(self, g, row, col, delta, kc=None):
        """The checksum differences of the units the errors touch: ``(units, d)`` where
        ``units`` [U] are the touched unit ids (ascending) and ``d`` [U, cols] their differences
        (int64, wrapped to ``acc_width``; positions past :meth:`unit_length` are 0). A unit whose
        errors cancel has all-zero ``d``: ABFT cannot see it."""
        c = self.config
        unit, pos = self.locate(g, row, col, kc)
        delta = torch.as_tensor(delta, dtype=_I64)
        units, inv = torch.unique(unit, return_inverse=True)
        d = torch.zeros(units.numel(), c.cols, dtype=_I64)
        d.index_put_((inv, pos), delta, accumulate=True)
        return units, wrap(d, c.acc_width)
