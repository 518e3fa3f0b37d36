"""GEMM workloads for ``make sim`` and ``make bench``: an INT8 matrix product with the value
statistics of a real LLM layer, cut into array tiles, and the reassembly of the tiles' outputs.

Activations are drawn heavy-tailed (Laplace) with a few outlier channels, as LLM activations
are, and quantized per tensor; weights are Gaussian and quantized per output channel
(SmoothQuant-style W8A8, as the paper's LLMs run).
"""
import dataclasses

import torch

from hw.config import Dataflow

from .arith import wrap


def llm_like_operands(m, k, n, seed, data_width=8):
    """Return ``(x, w)``: ``x`` is m x k activations, ``w`` is k x n weights, both signed
    ``data_width`` integer tensors."""
    g = torch.Generator().manual_seed(seed)
    qmax = (1 << (data_width - 1)) - 1
    u = torch.rand(m, k, generator=g) - 0.5
    x = -torch.sign(u) * torch.log1p(-2 * u.abs())  # Laplace(0, 1)
    outliers = torch.randperm(k, generator=g)[:max(1, k // 32)]
    x[:, outliers] *= 20
    x = torch.round(x / x.abs().max() * qmax).to(torch.int64)
    w = torch.randn(k, n, generator=g)
    w = torch.round(w / w.abs().amax(dim=0, keepdim=True) * qmax).to(torch.int64)
    return x, w


@dataclasses.dataclass
class TiledGemm:
    """``x @ w`` cut into tiles of ``config``'s array: ``program`` feeds the array,
    :meth:`assemble` rebuilds the product from the array's outputs."""

    config: object
    x: torch.Tensor
    w: torch.Tensor

    def _blocks(self, size, block):
        return [(i, min(i + block, size)) for i in range(0, size, block)]

    @property
    def tiles(self):
        c, (m, k), n = self.config, self.x.shape, self.w.shape[1]
        if c.dataflow is Dataflow.WS:
            return len(self._blocks(n, c.cols)) * len(self._blocks(k, c.rows))
        return len(self._blocks(m, c.rows)) * len(self._blocks(n, c.cols))

    @property
    def macs(self):
        """Multiply-accumulates of the product itself (padding excluded)."""
        return self.x.shape[0] * self.x.shape[1] * self.w.shape[1]

    def program(self):
        c, (m, k), n = self.config, self.x.shape, self.w.shape[1]
        prog = []
        if c.dataflow is Dataflow.WS:
            for n0, n1 in self._blocks(n, c.cols):
                for k0, k1 in self._blocks(k, c.rows):
                    wt = torch.zeros(c.rows, c.cols, dtype=torch.int64)
                    wt[:k1 - k0, :n1 - n0] = self.w[k0:k1, n0:n1]
                    xt = torch.zeros(m, c.rows, dtype=torch.int64)
                    xt[:, :k1 - k0] = self.x[:, k0:k1]
                    prog += [("load", wt), ("stream", xt, 0)]
        else:
            for m0, m1 in self._blocks(m, c.rows):
                for n0, n1 in self._blocks(n, c.cols):
                    at = torch.zeros(c.rows, k, dtype=torch.int64)
                    at[:m1 - m0] = self.x[m0:m1]
                    bt = torch.zeros(k, c.cols, dtype=torch.int64)
                    bt[:, :n1 - n0] = self.w[:, n0:n1]
                    prog.append(("tile", at, bt, 0, True))
        return prog

    def assemble(self, vectors):
        """Rebuild the m x n product from the collected output vectors (in program order);
        partial sums over reduction tiles add with the accumulator's wrap."""
        c, (m, k), n = self.config, self.x.shape, self.w.shape[1]
        out = torch.zeros(m, n, dtype=torch.int64)
        it = iter(torch.as_tensor(vectors, dtype=torch.int64))
        if c.dataflow is Dataflow.WS:
            for n0, n1 in self._blocks(n, c.cols):
                for _ in self._blocks(k, c.rows):
                    part = torch.stack([next(it) for _ in range(m)])
                    out[:, n0:n1] = wrap(out[:, n0:n1] + part[:, :n1 - n0], c.acc_width)
        else:
            for m0, m1 in self._blocks(m, c.rows):
                for n0, n1 in self._blocks(n, c.cols):
                    part = torch.stack([next(it) for _ in range(c.rows)])
                    out[m0:m1, n0:n1] = part[:m1 - m0, :n1 - n0]
        return out

    def reference(self):
        """The int64 product wrapped to the accumulator width (the oracle)."""
        return wrap(self.x @ self.w, self.config.acc_width)
