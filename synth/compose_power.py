"""Activity-based power of an array composed from its leaf blocks (:mod:`synth.leaves`), for
arrays too large to simulate flat (256x256 has 65,536 PEs).

``P(config) = sum over leaves of count x (mean per-instance power of the leaf)``. Each distinct
leaf is synthesized once (:func:`synth.compose.leaf_figures`, cached in
``build/synth/leaves/<key>/``) and its mapped netlist is simulated at gate level
(:mod:`synth.netsim`) with up to ``lanes`` lanes, each lane one *instance* of the leaf at a
different place of the array, driven with the input trace that instance sees while the array
runs a clean (fault-free) LLM-like GEMM. The energy model is :class:`synth.power.EnergyModel`.

Workload timeline (:class:`Timeline`), modelled on :func:`synth.power.workload_program`:

* operands per tile from :func:`golden.workload.llm_like_operands` (seed ``seed + tile``);
  ``depth`` = 64 as in :func:`synth.power.workload_program`;
* **WS** tile period ``P = R + M + (R + C - 1) + 1``: weight load for ``R`` cycles
  (``w_valid``), then ``M = depth`` activation vectors (``a_valid``), then the pipeline's
  latency; PE (r, c) sees ``x[m, r]`` at ``s + R + m + r + c`` and the partial sum
  ``sum_{k<r} x[m, k] w[k, c]`` (exact, computed with torch) at the same cycle, 0 elsewhere
  (the input gates zero idle lanes, so zeros flow);
* **OS** tile period ``P = K + R + C - 1 + R``: ``K = depth`` beats, the flush, then ``R``
  drain cycles; PE (r, c) sees ``A[r, k]``, ``B[k, c]`` at ``s + k + r + c``.

Per-port rules (by leaf kind and port name; inputs not named are held at 0; ``rst`` is high
for one warm-up cycle; warm-up cycles are not counted):

* **WS PE** (``WSProcessingElement*``): ``i_a`` activation as above; ``i_p`` exact partial sum
  of the rows above; ``w_load`` high during the ``R`` load cycles; ``i_w`` the value of the
  weight shift chain (during load cycle ``j``, row ``r`` receives the weight of row
  ``j + r + 1 - R`` of the new tile, or of the old tile's row ``r + 1 + j`` before the new
  values reach it; held afterwards). Checksum PEs (``-weight_width``): column ``C`` with weight
  ``sum_c w[r, c]`` (eᵀW) and the matching partial sums.
* **OS PE** (``OSProcessingElement*``): ``i_a``, ``i_b`` streamed as above; ``i_c`` the north
  neighbour's accumulator (its running sum during compute, ``C[r-1-j, c]`` at drain cycle j);
  ``drain`` high for the last ``R`` cycles of each tile. Checksum PEs (``-a_width``): row
  ``R`` with activations ``sum_r A[r, k]`` (eᵀA).
* Lanes of PE leaves are distinct array positions drawn (seeded, without replacement) from the
  positions whose leaf key is this leaf's (recomputed with :mod:`synth.leaves`' own rules):
  every grid position gets one seeded random score and the ``lanes`` best-scored positions
  of the leaf are taken. Every leaf's random generator is seeded with ``(seed, crc32(key))``, so a
  leaf shared by two
  variants gets the same lanes and traces in both (common random numbers: the overhead of a
  variant is not blurred by the sampling noise of the PE grid).
* **reg<w>**: ``w == data_width``: an operand stream (WS: activations ``x[:, r]``; OS: half
  of the lanes ``A`` rows, half ``B`` columns) delayed by a random skew ``d``; wider: WS the
  bottom row's column sums ``y[m, c]``, OS the eᵀA sums.
* **gate<w>**: ``en`` = the accept window (WS stream, OS beats); ``i`` the operand lane there.
* **control-***: the handshake of the GEMM: WS ``w_valid`` during load, ``a_valid`` during
  the stream, ``a_last`` every ``stat_n``-th vector and on the last; OS ``ab_valid`` during the
  beats, ``ab_last`` on the last beat.
* **lanesum**: WS a weight row per load cycle (held after); OS one beat ``A[:, k]``, ``en``
  high while the beats are accepted.
* **ycell-ws***: ``o_p`` = ``y[m, c]``, ``prev`` = ``sum_{c'<c} y[m, c']`` at output time.
* **ycell-os***: ``drain`` pattern; ``o_p`` the bottom PE's accumulator (running sum, then
  ``C[R-1-j, c]``); ``ck_c`` the checksum row's accumulator (``sum_r C[r, c]`` at the end);
  ``check`` one pulse after the drain; ``shift`` for ``C`` cycles after; ``y_east`` the east
  neighbour's column sum while shifting.
* **wsdiff/stat** (statistical unit): clean run, so the difference is 0: ``yc = ck = sum_c
  y[m, c]`` (WS) or ``i_d = 0`` (OS); ``o_valid``/``i_valid`` one pulse per output vector (WS)
  or per column while shifting (OS); ``o_last``/``i_end`` every ``stat_n`` valid pulses and on
  the last; ``i_sel`` the variant's parameter set; the four parameter sets of
  :func:`golden.stats.policy_sets` are written during warm-up.

Limits: the timeline is a model of the array's schedule, not the testbench driver's exact
cycles (validate against :func:`synth.power.config_power` with :func:`validate`); wires, clock
tree and glitches are not modelled (as in :mod:`synth.power`).
"""
import json
import math
import pathlib
import time
import zlib

import numpy as np

from hw.config import Abft, Dataflow

from . import leaves as L
from .compose import LEAVES, leaf_figures
from .netsim import Simulator
from .power import CLOCK_MHZ, SEED, EnergyModel, load_netlist

DEPTH = 64
WARMUP = 6


class Timeline:
    """Operands and the cycle schedule of ``n_tiles`` tiles of a clean GEMM on ``config``."""

    def __init__(self, config, cycles, seed, depth=DEPTH):
        import torch

        from golden.workload import llm_like_operands
        c = self.c = config
        R, C = c.rows, c.cols
        self.ws = c.dataflow is Dataflow.WS
        self.depth = depth
        self.P = R + depth + R + C if self.ws else depth + R + C - 1 + R
        self.n_tiles = max(1, math.ceil(cycles / self.P))
        self.T = self.n_tiles * self.P
        self.tiles = []
        for t in range(self.n_tiles):
            if self.ws:
                x, w = llm_like_operands(depth, R, C, seed + t, c.data_width)
                wext = torch.cat([w, w.sum(1, keepdim=True)], 1)  # R x (C+1), eᵀW column
                # psum[m, r, c] = sum_{k<r} x[m,k] wext[k,c]
                prod = x[:, :, None] * wext[None, :, :]
                psum = torch.cumsum(prod, 1) - prod
                y = prod[:, :, :C].sum(1)  # M x C
                self.tiles.append(dict(x=x.numpy(), w=wext.numpy(), psum=psum.numpy(),
                                       y=y.numpy()))
            else:
                a, b = llm_like_operands(R, depth, C, seed + t, c.data_width)
                aext = torch.cat([a, a.sum(0, keepdim=True)], 0)  # (R+1) x K, eᵀA row
                prod = aext[:, :, None] * b[None, :, :]  # (R+1) x K x C
                run = torch.cumsum(prod, 1)  # run[r, k, c] = sum_{k'<=k}
                self.tiles.append(dict(a=aext.numpy(), b=b.numpy(), run=run.numpy(),
                                       out=run[:, -1, :].numpy()))
        self.t = np.arange(self.T)
        self.s = (self.t // self.P) * self.P  # tile start
        self.u = self.t - self.s  # cycle in tile
        self.tile = self.t // self.P

    def _gather(self, key, idx_fn):
        """``(T, L)`` array: per tile, ``idx_fn(tile_dict, u)`` for the cycles of that tile."""
        out = None
        for t, d in enumerate(self.tiles):
            sl = slice(t * self.P, (t + 1) * self.P)
            v = idx_fn(d, self.u[sl][:, None])
            if out is None:
                out = np.zeros((self.T,) + v.shape[1:], dtype=np.int64)
            out[sl] = v
        return out

    def window(self, lo, n):
        """``(T, 1)`` mask of ``lo <= u < lo + n`` (per tile)."""
        return ((self.u >= lo) & (self.u < lo + n))[:, None]


def _take(arr, *idx, valid):
    idx = [np.where(valid, i, 0) for i in idx]
    return np.where(valid, arr[tuple(idx)], 0)


# ---------------------------------------------------------------------------------------------
# Traces per leaf kind: f(tl, rng, lanes, positions) -> {port: (T, L) int array}.

def _ws_pe(tl, pos):
    R, M = tl.c.rows, tl.depth
    r, c = pos[:, 0][None, :], pos[:, 1][None, :]

    def f(d, u):
        m = u - R - r - c
        ok = (m >= 0) & (m < M)
        return {"i_a": _take(d["x"], m, r, valid=ok),
                "i_p": _take(d["psum"], m, r, c, valid=ok)}
    tr = {k: np.zeros((tl.T, len(pos)), dtype=np.int64) for k in ("i_a", "i_p", "i_w")}
    for t, d in enumerate(tl.tiles):
        sl = slice(t * tl.P, (t + 1) * tl.P)
        u = tl.u[sl][:, None]
        for k, v in f(d, u).items():
            tr[k][sl] = v
        prev = tl.tiles[t - 1]["w"] if t else np.zeros_like(d["w"])
        j = u
        k = j + r + 1 - R
        load = j < R
        new = d["w"][np.clip(k, 0, R - 1), c]
        old = prev[np.clip(r + 1 + j, 0, R - 1), c]
        held = d["w"][np.minimum(r + 1, R - 1), c]
        tr["i_w"][sl] = np.where(load, np.where(k >= 0, new, old), held)
    tr["w_load"] = np.broadcast_to(tl.window(0, R), tr["i_a"].shape).astype(np.int64)
    return tr


def _os_pe(tl, pos):
    R, C, K = tl.c.rows, tl.c.cols, tl.depth
    F = K + R + C - 1
    r, c = pos[:, 0][None, :], pos[:, 1][None, :]
    tr = {k: np.zeros((tl.T, len(pos)), dtype=np.int64) for k in ("i_a", "i_b", "i_c")}
    for t, d in enumerate(tl.tiles):
        sl = slice(t * tl.P, (t + 1) * tl.P)
        u = tl.u[sl][:, None]
        k = u - r - c
        ok = (k >= 0) & (k < K)
        tr["i_a"][sl] = _take(d["a"], r, k, valid=ok)
        tr["i_b"][sl] = _take(d["b"], k, c, valid=ok)
        # north neighbour (r-1): products fed before u: k' <= u - 1 - (r-1) - c
        kn = np.clip(u - r - c, -1, K - 1)
        rn = np.maximum(r - 1, 0)
        runn = _take(d["run"], rn, kn, c, valid=(kn >= 0) & (r > 0) & (u < F))
        jd = u - F
        src = r - 1 - jd
        drn = _take(d["out"], src, c, valid=(jd >= 0) & (src >= 0) & (r > 0))
        tr["i_c"][sl] = np.where(u < F, runn, drn)
    tr["drain"] = np.broadcast_to(tl.window(F, R), tr["i_a"].shape).astype(np.int64)
    return tr


def _pe_positions(config):
    """``{leaf key: [(r, c), ...]}`` of the PE leaves (:func:`synth.leaves.positions`;
    checksum column WS: c = cols; checksum row OS: r = rows)."""
    return {k: v for k, v in L.positions(config).items()
            if k.startswith(("WSProcessingElement", "OSProcessingElement"))}


def _reg(tl, rng, n, width):
    R, C, M = tl.c.rows, tl.c.cols, tl.depth
    tr = np.zeros((tl.T, n), dtype=np.int64)
    for t, d in enumerate(tl.tiles):
        sl = slice(t * tl.P, (t + 1) * tl.P)
        u = tl.u[sl][:, None]
        if tl.ws:
            if width == tl.c.data_width:  # activation skew
                r = rng.integers(0, R, n)[None, :]
                dl = rng.integers(0, R, n)[None, :]
                m = u - R - dl
                tr[sl] = _take(d["x"], m, r, valid=(m >= 0) & (m < M))
            else:  # output alignment: bottom-row column sums
                col = rng.integers(0, C, n)[None, :]
                dl = rng.integers(0, C, n)[None, :]
                m = u - 2 * R - col - dl
                tr[sl] = _take(d["y"], m, col, valid=(m >= 0) & (m < M))
        else:
            dl = rng.integers(0, max(R, C), n)[None, :]
            k = u - dl
            ok = (k >= 0) & (k < M)
            if width == tl.c.data_width:
                r = rng.integers(0, R, n)[None, :]
                col = rng.integers(0, C, n)[None, :]
                half = (np.arange(n) % 2 == 0)[None, :]
                tr[sl] = np.where(half, _take(d["a"], r, k, valid=ok),
                                  _take(d["b"], k, col, valid=ok))
            else:  # eᵀA sums
                tr[sl] = _take(d["a"], np.full_like(k, R), k, valid=ok)
    return {"i": tr}


def _gate(tl, rng, n):
    R, C, M = tl.c.rows, tl.c.cols, tl.depth
    tr = np.zeros((tl.T, n), dtype=np.int64)
    lo = R if tl.ws else 0
    for t, d in enumerate(tl.tiles):
        sl = slice(t * tl.P, (t + 1) * tl.P)
        u = tl.u[sl][:, None]
        m = u - lo
        ok = (m >= 0) & (m < M)
        if tl.ws:
            r = rng.integers(0, R, n)[None, :]
            tr[sl] = _take(d["x"], m, r, valid=ok)
        else:
            r = rng.integers(0, R, n)[None, :]
            col = rng.integers(0, C, n)[None, :]
            half = (np.arange(n) % 2 == 0)[None, :]
            tr[sl] = np.where(half, _take(d["a"], r, m, valid=ok),
                              _take(d["b"], m, col, valid=ok))
    en = np.broadcast_to(tl.window(lo, M), tr.shape).astype(np.int64)
    return {"en": en, "i": tr}


def _control(tl, n):
    R, M, N = tl.c.rows, tl.depth, tl.c.stat_n
    u = tl.u[:, None]
    shape = (tl.T, n)
    b = lambda x: np.broadcast_to(x, shape).astype(np.int64)
    if tl.ws:
        m = u - R
        return {"w_valid": b(u < R), "a_valid": b((m >= 0) & (m < M)),
                "a_last": b((m >= 0) & (m < M) & (((m + 1) % N == 0) | (m == M - 1)))}
    return {"ab_valid": b(u < M), "ab_last": b(u == M - 1)}


def _packed(values, width):
    """Pack a (T, L, lanes) int array into Python ints (T, L) of ``lanes * width`` bits."""
    mask = (1 << width) - 1
    T, Ln, n = values.shape
    out = np.empty((T, Ln), dtype=object)
    for i in range(T):
        for j in range(Ln):
            v = 0
            for q in range(n - 1, -1, -1):
                v = (v << width) | (int(values[i, j, q]) & mask)
            out[i, j] = v
    return out


def _lanesum(tl, rng, n, width):
    R, C, M = tl.c.rows, tl.c.cols, tl.depth
    if tl.ws:
        vals = np.zeros((tl.T, C), dtype=np.int64)
        for t, d in enumerate(tl.tiles):
            for j in range(tl.P):
                vals[t * tl.P + j] = d["w"][min(j, R - 1), :C]
    else:
        vals = np.zeros((tl.T, R), dtype=np.int64)
        for t, d in enumerate(tl.tiles):
            vals[t * tl.P:t * tl.P + M] = d["a"][:R, :].T
    # lanes: the same stream shifted by a random number of tiles' worth of cycles is the same
    # data; use cyclic time shifts so that lanes differ
    shifts = rng.integers(0, tl.T, n)
    v = np.stack([np.roll(vals, s, axis=0) for s in shifts], 1)
    if tl.ws:
        return {"i": _packed(v, width)}
    en = (tl.u < M).astype(np.int64)  # OS: the beats are accepted
    return {"i": _packed(v, width), "en": np.stack([np.roll(en, s) for s in shifts], 1)}


def _ycell_ws(tl, rng, cols):
    R, M = tl.c.rows, tl.depth
    col = np.asarray(cols)[None, :]
    tr = {k: np.zeros((tl.T, len(cols)), dtype=np.int64) for k in ("o_p", "prev")}
    for t, d in enumerate(tl.tiles):
        sl = slice(t * tl.P, (t + 1) * tl.P)
        u = tl.u[sl][:, None]
        m = u - 2 * R - col
        ok = (m >= 0) & (m < M)
        cum = np.cumsum(d["y"], 1) - d["y"]
        tr["o_p"][sl] = _take(d["y"], m, col, valid=ok)
        tr["prev"][sl] = _take(cum, m, col, valid=ok)
    return tr


def _ycell_os(tl, rng, n):
    R, C, K = tl.c.rows, tl.c.cols, tl.depth
    F = K + R + C - 1
    col = rng.integers(0, C, n)[None, :]
    tr = {k: np.zeros((tl.T, n), dtype=np.int64) for k in ("o_p", "ck_c", "y_east")}
    for t, d in enumerate(tl.tiles):
        sl = slice(t * tl.P, (t + 1) * tl.P)
        u = tl.u[sl][:, None]
        kb = np.clip(u - (R - 1) - col - 1, -1, K - 1)
        run = _take(d["run"], np.full_like(kb, R - 1), kb, col, valid=kb >= 0)
        kc = np.clip(u - R - col - 1, -1, K - 1)
        ck = _take(d["run"], np.full_like(kc, R), kc, col, valid=kc >= 0)
        jd = u - F
        src = R - 1 - jd
        drn = _take(d["out"], src, col, valid=(jd >= 0) & (src >= 0))
        tr["o_p"][sl] = np.where(u < F, run, drn)
        tr["ck_c"][sl] = ck
        colsum = d["out"][:R].sum(0)
        js = u - F - R - 1
        ce = col + 1 + js
        tr["y_east"][sl] = _take(colsum, ce, valid=(js >= 0) & (ce < C))
    shape = (tl.T, n)
    b = lambda x: np.broadcast_to(x, shape).astype(np.int64)
    # within a tile of P = F + R cycles the check/shift land at the next tile's start
    u = tl.u[:, None]
    tr.update(drain=b((u >= F) & (u < F + R)), check=b(u == 0) & (tl.t[:, None] > 0),
              shift=b((u >= 1) & (u <= C)) & (tl.t[:, None] > tl.P))
    return {k: np.asarray(v, dtype=np.int64) for k, v in tr.items()}


def _stat(tl, n, key):
    R, C, M, N = tl.c.rows, tl.c.cols, tl.depth, tl.c.stat_n
    sel = {Abft.CLASSIC: 0, Abft.APPROX: 1, Abft.REALM: 2}[tl.c.abft]
    shape = (tl.T, n)
    b = lambda x: np.broadcast_to(x, shape).astype(np.int64)
    u = tl.u[:, None]
    if key.startswith("wsdiff"):
        m = u - 2 * R - C
        ok = (m >= 0) & (m < M)
        yt = np.zeros((tl.T, 1), dtype=np.int64)
        for t, d in enumerate(tl.tiles):
            sl = slice(t * tl.P, (t + 1) * tl.P)
            yt[sl] = _take(d["y"].sum(1), m[sl], valid=ok[sl])
        return {"yc": b(yt), "ck": b(yt), "o_valid": b(ok),
                "o_last": b(ok & (((m + 1) % N == 0) | (m == M - 1))), "i_sel": b(sel)}
    j = u - 1
    ok = (j >= 0) & (j < C) & (tl.t[:, None] > tl.P)
    return {"i_d": b(0), "i_valid": b(ok), "i_end": b(ok & (((j + 1) % N == 0) | (j == C - 1))),
            "i_sel": b(sel)}


def _cfg_warmup(config, netlist):
    """Warm-up inputs: reset, then the four parameter-set writes of the tests."""
    steps = [{"rst": 1}]
    ports = netlist.ports
    if "cfg_we" in ports:
        from golden.stats import policy_sets
        for _, s, p in policy_sets(config):
            steps.append({"cfg_we": 1, **p.ports(s)})
        steps.append({"cfg_we": 0})
    return steps


def leaf_traces(key, config, tl, rng, lanes, pe_pos):
    """``(traces, n_lanes)`` for leaf ``key`` of ``config``."""
    if key in pe_pos:
        pos = np.asarray(pe_pos[key])
        n = min(lanes, len(pos))
        # one random score per grid position (same for every variant of the array, since the
        # generator is seeded by the key): the n best-scored positions of this leaf
        score = rng.random((tl.c.rows + 1) * (tl.c.cols + 1))
        order = np.argsort(score[pos[:, 0] * (tl.c.cols + 1) + pos[:, 1]], kind="stable")
        pick = pos[order[:n]]
        return (_ws_pe(tl, pick) if tl.ws else _os_pe(tl, pick)), n
    n = lanes
    if key.startswith("reg"):
        return _reg(tl, rng, n, int(key[3:])), n
    if key.startswith("gate"):
        return _gate(tl, rng, n), n
    if key.startswith("control"):
        return _control(tl, n), n
    if key.startswith("lanesum"):
        lanes_w = key[len("lanesum"):].split("-")[0].split("x")
        n = min(n, 8)
        return _lanesum(tl, rng, n, int(lanes_w[1])), n
    if key.startswith("ycell-ws"):
        # the narrowed 'prev' width identifies the column; sample columns of this key
        cols = [col for _, col in L.positions(tl.c)[key]]
        cols = list(np.asarray(cols)[rng.choice(len(cols), min(n, len(cols)), replace=False)])
        return _ycell_ws(tl, rng, cols), len(cols)
    if key.startswith("ycell-os"):
        return _ycell_os(tl, rng, n), n
    if key.startswith(("wsdiff", "stat")):
        n = min(n, 4)
        return _stat(tl, n, key), n
    raise ValueError(f"no trace rule for leaf {key}")


def simulate_leaf(netlist, traces, warmup=(), clock_mhz=CLOCK_MHZ):
    """Simulate ``netlist`` with ``traces`` ((T, lanes) per input) after uncounted ``warmup``
    steps; return the per-lane mean power figures (:meth:`EnergyModel.report`)."""
    shapes = {np.shape(v) for v in traces.values()}
    (T, lanes), = shapes
    ports = netlist.ports
    traces = {k: v for k, v in traces.items() if k in ports}
    sim = Simulator(netlist, lanes)
    for w in warmup:
        sim.step({k: v for k, v in w.items() if k in ports})
    sim.step({"rst": 0} if "rst" in ports else None)
    sim.clear_counts()
    for t in range(T):
        sim.step({k: v[t] for k, v in traces.items()})
    return EnergyModel(netlist).report(sim.toggles, sim.cycles, lanes, clock_mhz)


def compose_power(config, cycles=400, seed=SEED, lanes=64, root=LEAVES, progress=None,
                  clock_mhz=CLOCK_MHZ):
    """Composed power of ``config``: ``total_uw``/``dynamic_uw`` (and the other
    :meth:`EnergyModel.report` components) as sums of count x mean leaf power, and
    ``leaves`` {key: count, lanes, per-instance and total power}."""
    t0 = time.perf_counter()
    tl = Timeline(config, cycles, seed)
    pe_pos = _pe_positions(config)
    inst = L.instances(config)
    fields = ("switching_uw", "internal_uw", "clock_uw", "leakage_uw", "dynamic_uw", "total_uw")
    total = dict.fromkeys(fields, 0.0)
    cells = flops = 0
    by_leaf = {}
    for i, (key, (count, build)) in enumerate(inst.items()):
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        leaf_figures(key, build, root)
        nl = load_netlist(pathlib.Path(root) / key / "netlist.json", "top")
        traces, n = leaf_traces(key, config, tl, rng, lanes, pe_pos)
        unknown = sorted(p for p, v in nl.ports.items()
                         if v.direction == "input" and p not in traces
                         and p not in ("clk", "rst") and not p.startswith("cfg_"))
        r = simulate_leaf(nl, traces, _cfg_warmup(config, nl), clock_mhz)
        for k in fields:
            total[k] += count * r[k]
        cells += count * len(nl.cells)
        flops += count * nl.n_flops
        by_leaf[key] = {"count": count, "lanes": n, "cells": len(nl.cells),
                        "instance_uw": r["total_uw"], "instance_dynamic_uw": r["dynamic_uw"],
                        "total_uw": count * r["total_uw"],
                        "dynamic_uw": count * r["dynamic_uw"], "held_at_0": unknown}
        if progress:
            progress(f"  {key} x{count}: {r['total_uw']:.2f} uW/inst ({n} lanes)")
    return {"config": config.id, **total, "cells": cells, "flops": flops, "cycles": tl.T, "tiles": tl.n_tiles,
            "tile_period": tl.P, "seed": seed, "clock_mhz": clock_mhz,
            "seconds": round(time.perf_counter() - t0, 1), "leaves": by_leaf}


def validate(configs, cycles=1000, seed=SEED, outdir="build/synth", progress=print):
    """Composed vs flat (:func:`synth.power.config_power`) power; return rows with the error."""
    from .power import config_power
    rows = []
    for c in configs:
        comp = compose_power(c, cycles=cycles, seed=seed)
        flat = config_power(c, pathlib.Path(outdir) / c.id, cycles=cycles, seed=seed)
        row = {"config": c.id, "composed_uw": comp["total_uw"], "flat_uw": flat["total_uw"],
               "composed_dyn_uw": comp["dynamic_uw"], "flat_dyn_uw": flat["dynamic_uw"],
               "err_pct": 100 * (comp["total_uw"] / flat["total_uw"] - 1),
               "clock_err_pct": 100 * (comp["clock_uw"] / flat["clock_uw"] - 1),
               "sw_int_err_pct": 100 * ((comp["switching_uw"] + comp["internal_uw"])
                                        / (flat["switching_uw"] + flat["internal_uw"]) - 1),
               "composed_flops": comp["flops"], "flat_flops": flat["flops"],
               "composed_cells": comp["cells"], "flat_cells": flat["cells"],
               "dyn_err_pct": 100 * (comp["dynamic_uw"] / flat["dynamic_uw"] - 1)}
        rows.append(row)
        if progress:
            progress(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                 for k, v in row.items()}))
    return rows


def power256(out="build/synth/power256.json", size=256, cycles=400, seed=SEED, lanes=64,
             progress=print):
    """Composed power of ``size`` x ``size`` ws/os x none/classic/approx/realm, with the
    overhead over ``none`` of the same dataflow; written to ``out``."""
    from hw.config import ArrayConfig
    results = []
    for df in ("ws", "os"):
        base = None
        for ab in ("none", "classic", "approx", "realm"):
            c = ArrayConfig(rows=size, cols=size, dataflow=df, abft=ab)
            r = compose_power(c, cycles=cycles, seed=seed, lanes=lanes)
            if ab == "none":
                base = r
            r["overhead_pct"] = {k: 100 * (r[k] / base[k] - 1) for k in ("total_uw",
                                                                          "dynamic_uw")}
            results.append(r)
            if progress:
                progress(f"{c.id}: {r['total_uw'] / 1e3:.1f} mW, dyn "
                         f"{r['dynamic_uw'] / 1e3:.1f} mW, +{r['overhead_pct']['total_uw']:.2f}% "
                         f"({r['seconds']} s)")
            pathlib.Path(out).write_text(json.dumps(results, indent=1) + "\n")
    return results
