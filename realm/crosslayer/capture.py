"""Cross-layer check: real W8A8 SmolLM2 GEMM tiles on the array, with the LLM injector's
errors made hardware faults (paper §VI: the errors the LLM study injects are those the
array's accumulators would hold).

:func:`capture` runs one prefill window of the W8A8 model with the closed loop's injector
(:class:`realm.abft.loop.AbftInjector`, policy ``none``, decisions recorded) on the chosen
components of one layer, and keeps every targeted GEMM call's INT8 operands, its INT32
accumulator and the injector's errors, placed on the array as the closed loop places them
(element, new value, and in WS the K-chunk that carries the error).

:func:`jobs` cuts each call into sub-GEMMs the array runs whole: the rows and columns of one
decision unit over the call's whole K (WS: ``cols`` activation vectors x ``cols`` output
columns, one decision unit per K-chunk; OS: one ``rows`` x ``cols`` output tile). Every
sub-GEMM holding an error becomes a faulty job; ``clean`` more are drawn at random. A job's
errors become faults of the array's fault port (:func:`hw_fault`): a ``gemm.acc`` change of
element (i, j) by ``delta`` is a ``flip`` of ``pe.acc``, with the mask ``p ^ (p + delta)``, at
the PE and edge that write the value ``p`` carrying it: in WS the bottom PE of column ``j``
when vector ``i`` of the error's K-chunk leaves the column (its partial sum over that chunk);
in OS PE (i, j) at its last multiply-accumulate (the element itself). The flipped register
then holds ``p + delta``, and the product the element's ``new`` value.

Each job carries what the array must produce, from sources other than the RTL: the product
(the model's own accumulator with the injector's new values), the checksum differences and
decisions of every decision unit from the transaction-level model (:mod:`golden.tiler`,
:func:`golden.stats.decide`), and the closed loop's recorded decisions of the same units.
:func:`check` compares one RTL result with them.
"""
import dataclasses

import torch

from golden.arith import wrap
from golden.faults import Fault
from golden.stats import decide
from golden.stimulus import accept_cycles
from golden.tiler import Tiling
from golden.workload import TiledGemm
from hw.config import Dataflow


@dataclasses.dataclass
class Call:
    """One captured GEMM call: operands ``a`` [G, M, K], ``b`` [G, K, N] (int64), the model's
    accumulator ``acc`` [G, M, N], its errors (:class:`realm.abft.loop.Errors` or None) and the
    closed loop's decisions ``{unit id: (d, TileDecision)}``."""
    component: str
    layer: int
    call: int
    a: torch.Tensor
    b: torch.Tensor
    acc: torch.Tensor
    errors: object
    decisions: dict


def _gemms(a, b, acc):
    """(a, b, acc) as stacks of GEMMs: a linear's one, or a BMM's B·H heads in order."""
    if acc.dim() == 2:
        return a[None], b[None], acc[None]
    bsz, h, t, n = acc.shape
    rep = h // b.shape[1]
    bb = b.repeat_interleave(rep, 1)  # head h uses kv group h // rep
    return (a.reshape(bsz * h, t, -1), bb.reshape(bsz * h, -1, n), acc.reshape(bsz * h, t, n))


@torch.no_grad()
def capture(model, rt, window, config, params, components, layer, *, ber, bits, seed):
    """The targeted calls of one prefill ``window`` (see the module docstring): a list of
    :class:`Call`. ``params`` {component: StatParams} decide the recorded tiles."""
    from realm.abft.loop import AbftInjector
    from realm.llm.inject import Injector
    base = Injector("bitflip", components, layers=[layer], ber=ber, bits=bits, seed=seed)
    inj = AbftInjector(base, config, "none", params, rt)
    inj.record = True
    calls = []

    def keep(component, lay, call, a, b, acc):
        if not base.targets(component, lay, rt.stage):
            return
        calls.append(Call(component, lay, call, *(t.long() for t in _gemms(a, b, acc)),
                          None, {}))

    rt.capture, rt.injector = keep, inj
    try:
        rt.start(0)
        model(window[None])
    finally:
        rt.capture, rt.injector = None, None
    for c in calls:  # the errors the injector drew and placed in each call
        c.errors = inj.placed.get((c.component, c.layer, c.call))
    for comp, lay, call, unit, d, dec in inj.decisions:
        c = next(c for c in calls if (c.component, c.layer, c.call) == (comp, lay, call))
        c.decisions[unit] = (d, dec)
    return calls


@dataclasses.dataclass
class Job:
    """One sub-GEMM of a :class:`Call` for the array, with what it must produce."""
    component: str
    layer: int
    call: int
    g: int
    m0: int
    n0: int
    a: torch.Tensor
    b: torch.Tensor
    program: list
    faults: list
    product: torch.Tensor  # expected (the model's accumulator with the injector's errors)
    units: list  # per decision unit, in program order: (d, TileDecision) expected
    recorded: dict  # local unit id -> (d, TileDecision) the closed loop recorded
    errors: int


def block(config):
    """(rows, cols) of a job's output block: WS ``cols`` x ``cols``, OS ``rows`` x ``cols``."""
    return (config.cols if config.dataflow is Dataflow.WS else config.rows), config.cols


def hw_fault(config, program, i, j, delta, kc, a, b):
    """The ``pe.acc`` flip that changes output (i, j) of the sub-GEMM ``a @ b`` run as
    ``program`` by ``delta`` (see the module docstring; ``kc`` is the WS K-chunk)."""
    aw, beats = config.acc_width, accept_cycles(config, program)
    if config.dataflow is Dataflow.WS:
        r = config.rows
        vectors = [t for kind, t in beats if kind == "a"]
        cycle = vectors[kc * a.shape[0] + i] + (r - 1) + j
        p = int(a[i, kc * r:(kc + 1) * r] @ b[kc * r:(kc + 1) * r, j])
        row, col = r - 1, j
    else:
        cycle = [t for kind, t in beats if kind == "ab"][-1] + i + j
        p = int(a[i] @ b[:, j])
        row, col = i, j
    mod = (1 << aw) - 1
    return Fault(site="pe.acc", row=row, col=col, kind="flip", cycle=cycle,
                 mask=(p & mod) ^ ((p + delta) & mod))


def jobs(config, calls, params, clean, seed, min_tiles=0):
    """The faulty jobs of ``calls`` and ``clean`` clean ones per call, then one more clean one
    per call in turn until the jobs hold ``min_tiles`` decision units (see the module
    docstring); jobs whose faults would need the fault port twice in one cycle are left out
    and counted: returns ``(jobs, skipped)``."""
    bm, bn = block(config)
    gen = torch.Generator().manual_seed(seed)
    blocks = []
    for c in calls:
        errs = {}
        e = c.errors
        if e is not None:
            for q in range(e.idx.numel()):
                key = (int(e.g[q]), int(e.row[q]) // bm * bm, int(e.col[q]) // bn * bn)
                errs.setdefault(key, []).append(q)
        blocks.append(errs)
    out, skipped, taken = [], 0, [set(b) for b in blocks]
    for c, errs in zip(calls, blocks):
        for key, qs in errs.items():
            job = _job(config, c, key, qs, params[c.component])
            if job is None:
                skipped += 1
            else:
                out.append(job)
    rounds = 0
    while calls and (rounds < clean or sum(len(j.units) for j in out) < min_tiles):
        for c, used in zip(calls, taken):
            g_, m, _ = c.a.shape
            n = c.b.shape[2]
            if len(used) >= g_ * (m // bm) * (n // bn):
                continue  # every block of this call is taken
            while True:
                key = (int(torch.randint(g_, (1,), generator=gen)),
                       int(torch.randint(m // bm, (1,), generator=gen)) * bm,
                       int(torch.randint(n // bn, (1,), generator=gen)) * bn)
                if key not in used:
                    break
            used.add(key)
            out.append(_job(config, c, key, [], params[c.component]))
        rounds += 1
    return out, skipped


def _job(config, c, key, errs, p):
    g, m0, n0 = key
    full = Tiling(config, c.a.shape[1], c.a.shape[2], c.b.shape[2], gemms=c.a.shape[0])
    bm, bn = block(config)
    a, b = c.a[g, m0:m0 + bm], c.b[g, :, n0:n0 + bn]
    program = [("params", 0, p), ("select", 0)] + TiledGemm(config, a, b).program()
    product = c.acc[g, m0:m0 + bm, n0:n0 + bn].clone()
    e, faults, local = c.errors, [], []
    for q in errs:
        i, j = int(e.row[q]) - m0, int(e.col[q]) - n0
        kc = int(e.kc[q]) if e.kc is not None else 0
        delta = int(e.delta[q])
        faults.append(hw_fault(config, program, i, j, delta, kc, a, b))
        local.append((i, j, delta, kc))
        product[i, j] = int(e.new[q])
    if len({f.cycle for f in faults}) < len(faults):
        return None
    tiling = Tiling(config, a.shape[0], a.shape[1], b.shape[1])
    d = torch.zeros(tiling.units, config.cols, dtype=torch.int64)
    if local:
        i, j, delta, kc = (torch.tensor(v) for v in zip(*local))
        units, du = tiling.differences(0, i, j, delta, kc if tiling.ws else None)
        d[units] = du
    lengths = tiling.unit_length(torch.arange(tiling.units)).tolist()
    units = [(row[:n], decide(row[:n], p)) for row, n in zip(d.tolist(), lengths)]
    recorded = {}
    for u, rec in c.decisions.items():
        ug, mc, kc, nc = (int(v) for v in full._split(torch.tensor(u)))
        if (ug, mc * bm, nc * bn) == key:
            recorded[kc] = rec
    return Job(c.component, c.layer, c.call, g, m0, n0, a, b, program, faults, product, units,
               recorded, len(errs))


def check(config, job, result):
    """Mismatches of one RTL ``result`` (``product`` [M, N] list, ``decisions`` as
    :func:`realm.rtl.tb_gemm.decisions` lists them, ``golden`` whether its trace equalled the golden
    cycle model's) against ``job``: a list of one-line strings, empty when all agree."""
    bad = []
    if not result["golden"]:
        bad.append("RTL trace differs from the golden cycle model: " + result.get("first", ""))
    got = torch.tensor(result["product"], dtype=torch.int64)
    want = wrap(job.product, config.acc_width)
    if not torch.equal(got, want):
        bad.append(f"product differs from the injected accumulator at "
                   f"{(got != want).nonzero().tolist()[:4]}")
    dec = result["decisions"]
    if len(dec) != len(job.units):
        return bad + [f"{len(dec)} decisions, {len(job.units)} decision units"]
    for u, (r, (d, want_dec)) in enumerate(zip(dec, job.units)):
        fields = {"d": (r["d"], d), "msd": (r["msd"], want_dec.msd),
                  "freq_eff": (r["freq_eff"], want_dec.freq_eff),
                  "mismatch": (r["mismatch"], want_dec.mismatch),
                  "classic": (r["classic"], want_dec.flag_classic),
                  "approx": (r["approx"], want_dec.flag_approx),
                  "realm": (r["realm"], want_dec.flag_realm),
                  "recompute": (r["recompute"], want_dec.recompute)}
        diff = {k: v for k, v in fields.items() if v[0] != v[1]}
        if diff:
            bad.append(f"unit {u}: RTL != transaction-level model {diff}")
        if u in job.recorded:
            rd, rdec = job.recorded[u]
            if rd != d or rdec != want_dec:
                bad.append(f"unit {u}: closed loop recorded {rd} {rdec}, transaction level "
                           f"{d} {want_dec}")
    touched = {u for u, (d, _) in enumerate(job.units) if any(d)}
    if touched - set(job.recorded):
        bad.append(f"units {sorted(touched - set(job.recorded))} have errors the closed loop "
                   "did not record")
    return bad


def component_params(config, fit_path, model_name, length):
    """{component: StatParams} of ``config``'s array from the GEMM-domain fits of
    ``fit_path`` (``docs/results/abft/params/fit.json``) for prefill windows of ``length``."""
    import json

    from realm.abft.fit import component_gemms, tile_params
    from realm.campaign.spec import model_shape
    with open(fit_path) as f:
        fits = json.load(f)["fits"]
    gemms = component_gemms(model_shape(model_name), length)
    return {c: tile_params(fits[c], config, gemms[c])[0] for c in fits if c in gemms}
