"""Real operand streams for the timing characterization of one PE (docs/energy.md §1 item 3): the
INT8 operands that SmolLM2's W8A8 GEMMs feed one processing element of the array, per component,
in the order the dataflow feeds them.

:func:`capture` runs one prefill window through the W8A8 model with the runtime's capture hook
(:attr:`realm.llm.quant.Runtime.capture`) and keeps every call's operands as stacks of GEMMs
``a`` [G, M, K] @ ``b`` [G, K, N] (a linear is one GEMM; an attention BMM is one per head).

:func:`pe_stream` cuts a component's GEMMs into the stream one PE sees, in segments, each drawn
from a random layer, GEMM, position and output column (seeded):

* **WS** (:class:`hw.pe.WSProcessingElement` at array row ``r``): one weight-load cycle
  (``w_load``, the new weight on ``i_w``, no activation, partial sum 0: the array streams no
  vector while it loads a tile), then ``segment`` consecutive activation vectors: ``i_a`` the
  activation of reduction index ``k = kc * rows + r`` of K-chunk ``kc``, ``i_p`` the partial sum
  of the ``r`` products above it in the chunk. Rows past K are the tile's zero padding (weight
  and activation 0; the partial sum still passes through). The row is drawn uniformly from the
  rows of the characterized PE's leaf (the array positions that share its netlist), so the
  stream mixes every partial-sum depth that netlist sees.
* **OS** (:class:`hw.pe.OSProcessingElement`): one ``drain`` cycle with ``i_c = 0`` (the
  accumulation restarts from 0), then the K products of one output element, ``i_a`` the
  activation and ``i_b`` the weight, in reduction order.

The streams are checked against the PE's ports (:func:`synth.timing.check_stream`) by the
characterization that uses them. Every cycle of a stream is a MAC cycle of the component's
GEMMs as the array runs them, so the fraction of erroneous cycles is the per-PE, per-cycle
error probability of that component, padding included.
"""
import math

import numpy as np
import torch

from golden.faults import LLAMA_COMPONENTS

#: The components of a LLaMA-style model, in the model's order.
#: WS: activation vectors per weight load in a stream (the array streams all M tokens per load;
#: shorter segments mix more weights, layers and rows into the same number of cycles).
SEGMENT = 127


def gemm_stack(a, b):
    """``(a, b)`` of one capture as GEMM stacks ``[G, M, K]``, ``[G, K, N]`` (int8): a linear's
    one GEMM; a BMM's ``B * H`` heads, head ``h`` using ``b``'s group ``h // (H / G)``."""
    if a.dim() == 2:
        return a[None], b[None]
    bsz, h, t, k = a.shape
    rep = h // b.shape[1]
    bb = b.repeat_interleave(rep, 1)
    return a.reshape(bsz * h, t, k), bb.reshape(bsz * h, k, -1)


@torch.no_grad()
def capture(model, rt, window, components=LLAMA_COMPONENTS, layers=None):
    """{component: [(a [G, M, K], b [G, K, N]) per layer]} (int8 GEMM stacks) of one prefill
    ``window`` (LongTensor [L]) of the W8A8 model ``model`` with runtime ``rt``; ``layers``:
    None (all) or the layer indices kept."""
    out = {c: [] for c in components}

    def keep(component, layer, call, a, b, acc):
        if component in out and (layers is None or layer in layers):
            out[component].append(tuple(t.to(torch.int8).clone() for t in gemm_stack(a, b)))

    rt.capture, injector = keep, rt.injector
    rt.injector = None
    try:
        rt.start(0)
        model(input_ids=window[None], use_cache=False)
    finally:
        rt.capture, rt.injector = None, injector
    missing = [c for c, v in out.items() if not v]
    if missing:
        raise ValueError(f"the model ran no GEMM of component {missing[0]!r}")
    return out


def _draw(rng, gemms):
    a, b = gemms[int(rng.integers(len(gemms)))]
    g = int(rng.integers(a.shape[0]))
    return a[g].numpy().astype(np.int64), b[g].numpy().astype(np.int64)


def ws_stream(gemms, rows, leaf_rows, cycles, seed, segment=SEGMENT):
    """The WS stream (see the module docstring) of ``cycles`` cycles from ``gemms`` (one
    component's GEMM stacks) for a PE whose netlist serves array rows ``leaf_rows`` (lo, hi
    inclusive) of a ``rows``-row array."""
    rng = np.random.default_rng(seed)
    lo, hi = leaf_rows
    cols = {"i_a": [], "i_p": [], "i_w": [], "w_load": []}
    total = 0
    while total < cycles:
        a, b = _draw(rng, gemms)
        m, k = a.shape
        n = int(rng.integers(b.shape[1]))
        kc = int(rng.integers(math.ceil(k / rows)))
        r = int(rng.integers(lo, hi + 1))
        k0, kr = kc * rows, kc * rows + r
        seg = min(segment, m)
        m0 = int(rng.integers(m - seg + 1))
        x = a[m0:m0 + seg]
        above = x[:, k0:min(kr, k)] @ b[k0:min(kr, k), n]
        w = int(b[kr, n]) if kr < k else 0
        xa = x[:, kr] if kr < k else np.zeros(seg, dtype=np.int64)
        cols["i_a"] += [np.zeros(1, np.int64), xa]
        cols["i_p"] += [np.zeros(1, np.int64), above]
        cols["i_w"] += [np.array([w]), np.zeros(seg, np.int64)]
        cols["w_load"] += [np.ones(1, np.int64), np.zeros(seg, np.int64)]
        total += seg + 1
    return {p: np.concatenate(v)[:cycles] for p, v in cols.items()}


def os_stream(gemms, cycles, seed):
    """The OS stream (see the module docstring) of ``cycles`` cycles from ``gemms``."""
    rng = np.random.default_rng(seed)
    cols = {"i_a": [], "i_b": [], "i_c": [], "drain": []}
    total = 0
    while total < cycles:
        a, b = _draw(rng, gemms)
        i, j = int(rng.integers(a.shape[0])), int(rng.integers(b.shape[1]))
        k = a.shape[1]
        cols["i_a"] += [np.zeros(1, np.int64), a[i]]
        cols["i_b"] += [np.zeros(1, np.int64), b[:, j]]
        cols["i_c"] += [np.zeros(k + 1, np.int64)]
        cols["drain"] += [np.ones(1, np.int64), np.zeros(k, np.int64)]
        total += k + 1
    return {p: np.concatenate(v)[:cycles] for p, v in cols.items()}


def pe_stream(pe, gemms, cycles, seed, leaf_rows=None):
    """The stream of ``cycles`` cycles that ``gemms`` feed ``pe`` (a :class:`synth.timing.PE`),
    restricted to the ports the PE has (inputs the array ties to 0 are left out).
    ``leaf_rows``: WS, the array rows of the PE's leaf (default: its own row only;
    :func:`synth.timing.leaf_rows`)."""
    from hw.config import Dataflow

    c = pe.config
    if c.dataflow is Dataflow.WS:
        s = ws_stream(gemms, c.rows, leaf_rows or (pe.at[0], pe.at[0]), cycles, seed)
    else:
        s = os_stream(gemms, cycles, seed)
    return {p: s[p] for p in pe.inputs()}


def reduction_lengths(gemms):
    """{component: K} of captured GEMM stacks (the reduction length of each component)."""
    return {c: int(v[0][0].shape[-1]) for c, v in gemms.items()}


def products(pe, stream):
    """Per cycle, the product the PE adds (``i_a`` times its weight register in WS, ``i_a *
    i_b`` in OS, 0 on drain cycles): what a dropped update (ThUnderVolt) removes."""
    from hw.config import Dataflow

    if pe.config.dataflow is Dataflow.WS:
        w = np.asarray(stream["i_w"])
        load = np.asarray(stream["w_load"]).astype(bool)
        # the weight register: the last loaded weight, used from the cycle after the load
        idx = np.where(load, np.arange(len(w)), -1)
        last = np.maximum.accumulate(idx)
        held = np.r_[0, np.where(last >= 0, w[np.maximum(last, 0)], 0)[:-1]]
        return np.asarray(stream["i_a"]) * held
    drain = np.asarray(stream["drain"]).astype(bool)
    return np.where(drain, 0, np.asarray(stream["i_a"]) * np.asarray(stream["i_b"]))
