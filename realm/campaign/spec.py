"""Campaign specs: a JSON object expanded into points and validated before any model loads
(:func:`expand`); :mod:`realm.campaign.runner` runs them. The format:

Spec (JSON object; every key but ``experiments`` is optional)::

    {"model": "smollm2-135m",          # preset or local HF directory (realm.llm.loader)
     "text": "wikitext-2:test",        # evaluation text: a path, or wikitext-2:test / :valid
     "windows": 4, "length": 512,      # PPL windows: n non-overlapping windows of L tokens
     "calib_text": "wikitext-2:valid", "calib_windows": 8, "calib_length": 512,
     "alpha": 0.5, "per_tensor": false, "smooth": true,
     "requant": null,                  # re-quantized outputs: null or "authors" (q/k/v, SV,
                                       # gate/up/down), "linear-only", or a list of components
     "gen": {"prompts": 4, "prompt_len": 128, "new_tokens": 32},
     "seeds": [0, 1],
     "experiments": [
       {"name": "components", "metric": "ppl", "mode": "bitflip",
        "components": ["q", "k", ["q", "k"], "all"],   # each entry is one target group
        "layers": ["all"],                               # "all", an int, or a list of ints
        "bits": [30],                                    # an int, or [lo, hi] uniform per flip
        "bers": [1e-8, 1e-6, 1e-4]},
       {"name": "msd", "mode": "msd", "components": ["o"], "msd_log2": [14, 20, 26],
        "freq_log2": [0, 4, 8]},
       {"name": "stages", "metric": "gen", "stages": ["prefill", "decode", "both"], ...},
       {"name": "abft", "components": ["k"], "bers": [1e-6, 1e-4], "bits": [30, [0, 29]],
        "arrays": ["64x64-ws"],                        # ROWSxCOLS-DATAFLOW: statistical ABFT
        "policies": ["none", "classic", "approx", "realm"],   # in the loop (realm.abft.loop)
        "params": "docs/results/abft/params/{array}.json"},   # from the repository root
       {"name": "volts", "mode": "timing", "components": ["k"],   # timing errors at a voltage
        "voltages": [0.83, 0.82],                # rows of the voltage table (realm.energy.vtable)
        "table": "docs/results/energy/tables/256x256-ws-A-on0.84.json",
        "arrays": ["256x256-ws"], "params": "docs/results/abft/params/{array}.json",
        "policies": ["none", "dmr", "thundervolt", "classic", "approx", "realm"]},
       {"name": "edge", "components": ["v"], "bers": [1e-5, 1e-4],   # more seeds where the
        "adaptive": {"tolerance": {"rel": 0.0167}, "max_seeds": 8}}]}  # verdict is open

A point is one (experiment, component group, layer group, stage, bits, BER or (MSD, freq) or
voltage, seed [, array, policy]). A timing point draws its errors from the voltage table at its
voltage (:class:`realm.llm.inject.Injector` mode ``timing``); its policies may also be ``dmr``
(no evaluation: DMR leaves no error; the recompute ratio is computed from the table) and
``thundervolt`` (the erroneous updates dropped: error values from the table's dropped
products, no recomputation). A point names its parameter file and a digest of the sets its
components use, so refitting a component reruns that component's points, and nothing else;
:func:`point_key` is its identity in a results file (:mod:`realm.campaign.runner`). An
``adaptive`` experiment gets more seeds where its verdict against a tolerance is open
(:mod:`realm.campaign.adaptive`).
"""
import itertools
import json
import math

from hw.facts import ABFT_POLICIES, TIMING_POLICIES
from realm.llm import loader, quant

GLOBAL = {"model": loader.DEFAULT_MODEL, "text": "wikitext-2:test", "windows": 4, "length": 512,
          "calib_text": "wikitext-2:valid", "calib_windows": 8, "calib_length": 512,
          "alpha": 0.5, "per_tensor": False, "smooth": True, "requant": None,
          "gen": {"prompts": 4, "prompt_len": 128, "new_tokens": 32}, "seeds": [0]}
#: settings keys added after results files were first written, with the value they implied
#: (files written before ``requant`` existed used the linear-only placement)
GLOBAL_DEFAULTS = {"requant": "linear-only"}
EXPERIMENT = {"name", "metric", "mode", "components", "layers", "stages", "bits", "bers",
              "msd_log2", "freq_log2", "seeds", "plot", "arrays", "policies", "params",
              "voltages", "table", "adaptive"}
#: Policies only a timing experiment has: DMR (duplicate, compare, recompute on mismatch) and
#: ThUnderVolt (Razor flip-flops drop the erroneous updates).
METRICS = ("ppl", "gen")


class SpecError(ValueError):
    """A sweep spec that cannot run; the message is one line naming the bad entry."""


def model_shape(model_name):
    """What validation needs from a model's config, without loading weights: (component names,
    number of layers, {component: (out features or None for BMMs)}, heads, head_dim)."""
    from transformers import AutoConfig

    path, _ = loader.resolve(model_name)
    cfg = AutoConfig.from_pretrained(path)
    cfg = getattr(cfg, "text_config", cfg)
    mt = cfg.model_type
    if mt not in quant.ARCHS:
        raise SpecError(f"model type {mt!r} is not supported (supported: "
                        f"{', '.join(sorted(quant.ARCHS))})")
    lin = list(quant.ARCHS[mt]["linears"])
    comps = lin[:3] + list(quant.BMMS) + lin[3:]
    h = cfg.num_attention_heads
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // h
    kv = getattr(cfg, "num_key_value_heads", None) or h
    ffn = getattr(cfg, "intermediate_size", None) or getattr(cfg, "ffn_dim", None)
    outs = {"q": h * d, "k": kv * d, "v": kv * d, "o": cfg.hidden_size, "gate": ffn, "up": ffn,
            "down": cfg.hidden_size, "fc1": ffn, "fc2": cfg.hidden_size}
    return comps, cfg.num_hidden_layers, outs, h, d


def _groups(value, what, name):
    if not isinstance(value, list) or not value:
        raise SpecError(f"experiment {name!r}: {what} must be a non-empty list")
    return value


def _gemm_elems(comp, outs, heads, head_dim, rows, keys):
    """Elements of the smallest accumulator of ``comp`` with ``rows`` query tokens."""
    if comp == "qk":
        return rows * heads * keys
    if comp == "sv":
        return rows * heads * head_dim
    return rows * outs[comp]


def check_model_faults(faults, shape, length):
    """Raise :class:`SpecError` unless every entry of the fault list ``faults`` is a ``gemm.acc``
    entry that fits the model of ``shape`` (:func:`model_shape`'s) on windows of ``length``
    tokens: a component it has, a layer below its count, a row below ``length`` (a prefill
    call's query tokens) and a column below the accumulator's width (a linear layer's output
    features; QKᵀ: heads x keys; SV: heads x head_dim)."""
    from golden.faults import GEMM_SITE

    comps, n_layers, outs, heads, head_dim = shape
    for i, f in enumerate(faults):
        if f.site != GEMM_SITE:
            raise SpecError(f"fault {i}: site {f.site!r} is the array's; the model takes "
                            f"{GEMM_SITE!r} entries")
        if f.component not in comps:
            raise SpecError(f"fault {i}: the model has no component {f.component!r} (it has "
                            f"{', '.join(comps)})")
        if f.layer >= n_layers:
            raise SpecError(f"fault {i}: layer {f.layer} is not in 0..{n_layers - 1}")
        cols = {"qk": heads * length, "sv": heads * head_dim}.get(f.component)
        cols = outs[f.component] if cols is None else cols
        if f.row >= length:
            raise SpecError(f"fault {i}: row {f.row} is not below the {length} tokens of a "
                            "window")
        if f.col >= cols:
            raise SpecError(f"fault {i}: col {f.col} is not below the {cols} columns of "
                            f"{f.component}'s accumulator")


def expand(spec, shape=None):
    """Validate a spec (dict) and return (settings, list of points). ``shape`` is
    :func:`model_shape`'s result (computed from the spec's model when None)."""
    if not isinstance(spec, dict):
        raise SpecError("a spec must be a JSON object")
    unknown = sorted(set(spec) - set(GLOBAL) - {"experiments"})
    if unknown:
        raise SpecError(f"unknown spec key {unknown[0]!r} (known: "
                        f"{', '.join(sorted([*GLOBAL, 'experiments']))})")
    g = {**GLOBAL, **{k: v for k, v in spec.items() if k != "experiments"}}
    g["gen"] = {**GLOBAL["gen"], **g["gen"]}
    for k in ("windows", "length", "calib_windows", "calib_length"):
        if not isinstance(g[k], int) or g[k] < 2:
            raise SpecError(f"{k} must be an integer >= 2, not {g[k]!r}")
    comps, n_layers, outs, heads, head_dim = shape or model_shape(g["model"])
    rq = g["requant"]
    if rq is not None and rq not in quant.REQUANT_PLACEMENTS and (not isinstance(rq, list) or any(
            c not in comps or c == "qk" for c in rq)):
        raise SpecError(f"requant must be null, one of {', '.join(quant.REQUANT_PLACEMENTS)}, or a "
                        f"list of linear components and sv, not {rq!r}")
    exps = spec.get("experiments")
    if not isinstance(exps, list) or not exps:
        raise SpecError("spec needs a non-empty 'experiments' list")
    points, names = [], set()
    for j, e in enumerate(exps):
        name = e.get("name", f"exp{j}") if isinstance(e, dict) else f"exp{j}"
        if not isinstance(e, dict):
            raise SpecError(f"experiment {j} must be a JSON object")
        if name in names:
            raise SpecError(f"experiment name {name!r} is used twice")
        names.add(name)
        bad = sorted(set(e) - EXPERIMENT)
        if bad:
            raise SpecError(f"experiment {name!r}: unknown key {bad[0]!r}")
        metric = e.get("metric", "ppl")
        if metric not in METRICS:
            raise SpecError(f"experiment {name!r}: metric must be one of {', '.join(METRICS)}, "
                            f"not {metric!r}")
        mode = e.get("mode", "bitflip")
        if mode not in ("bitflip", "msd", "timing"):
            raise SpecError(f"experiment {name!r}: mode must be bitflip, msd or timing, not "
                            f"{mode!r}")
        cgroups = []
        for c in _groups(e.get("components", ["all"]), "components", name):
            grp = comps if c == "all" else ([c] if isinstance(c, str) else c)
            if not isinstance(grp, list) or not grp:
                raise SpecError(f"experiment {name!r}: bad component group {c!r}")
            for x in grp:
                if x not in comps:
                    raise SpecError(f"experiment {name!r}: unknown component {x!r} (known: "
                                    f"{', '.join(comps)})")
            cgroups.append(list(grp))
        lgroups = []
        for lg in _groups(e.get("layers", ["all"]), "layers", name):
            grp = lg if isinstance(lg, list) else (None if lg == "all" else [lg])
            for x in grp or []:
                if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < n_layers:
                    raise SpecError(f"experiment {name!r}: layer {x!r} is not in 0..{n_layers - 1}")
            lgroups.append(grp)
        stages = _groups(e.get("stages", ["prefill"] if metric == "ppl" else ["both"]),
                         "stages", name)
        for s in stages:
            if s not in ("prefill", "decode", "both"):
                raise SpecError(f"experiment {name!r}: stage must be prefill, decode or both, "
                                f"not {s!r}")
            if metric == "ppl" and s == "decode":
                raise SpecError(f"experiment {name!r}: stage 'decode' needs metric 'gen' (the "
                                "perplexity pass is a single prefill)")
        bits = []
        for b in _groups(e.get("bits", [30]), "bits", name):
            lo, hi = (b, b) if isinstance(b, int) else (tuple(b) if isinstance(b, list)
                                                         and len(b) == 2 else (None, None))
            if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= 31):
                raise SpecError(f"experiment {name!r}: bit {b!r} must be 0..31 or [lo, hi]")
            bits.append([lo, hi])
        seeds = _groups(e.get("seeds", g["seeds"]), "seeds", name)
        if mode == "timing":
            grid = _timing_grid(e, name, cgroups)
            bits = [None]
        elif mode == "bitflip":
            grid = []
            for ber in _groups(e.get("bers"), "bers", name):
                if isinstance(ber, bool) or not isinstance(ber, (int, float)) or \
                        not 0.0 <= ber <= 1.0 or math.isnan(ber):
                    raise SpecError(f"experiment {name!r}: BER {ber!r} is outside [0, 1]")
                grid.append({"ber": float(ber)})
        else:
            msds = _groups(e.get("msd_log2"), "msd_log2", name)
            freqs = _groups(e.get("freq_log2"), "freq_log2", name)
            for v in msds + freqs:
                if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 31:
                    raise SpecError(f"experiment {name!r}: msd_log2/freq_log2 {v!r} must be an "
                                    "integer in 0..31")
            if metric == "ppl":
                rows = keys = g["length"]
            else:  # a decode step has one query row
                keys = g["gen"]["prompt_len"]
                rows = keys if set(stages) == {"prefill"} else 1
            for grp in cgroups:
                for c in grp:
                    n = _gemm_elems(c, outs, heads, head_dim, rows, keys)
                    if n is not None and 2 ** max(freqs) > n:
                        raise SpecError(f"experiment {name!r}: freq 2^{max(freqs)} is larger than "
                                        f"the {n}-element {c} GEMM")
            grid = [{"msd_log2": m, "freq_log2": f} for m in msds for f in freqs]
        abft = _abft_grid(e, name, cgroups, mode == "timing")
        if mode == "timing":
            _check_table_arrays(e, name, abft)
        for cg, lg, st, bt, gp, sd, ab in itertools.product(cgroups, lgroups, stages, bits, grid,
                                                            seeds, abft):
            p = {"experiment": name, "metric": metric, "mode": mode, "components": cg,
                 "layers": lg, "stage": st, **({"bits": bt} if bt is not None else {}), **gp,
                 "seed": int(sd), **ab}
            if ab:  # the digests of this point's own components only
                p["params_sha"] = {c: ab["params_sha"][c] for c in cg}
            if e.get("plot"):
                p["plot"] = e["plot"]
            points.append(p)
    adaptive_rules(spec)  # its one-line errors before any model loads
    settings = {k: g[k] for k in GLOBAL if k != "seeds"}
    return settings, points


def adaptive_rules(spec):
    """{experiment name: (tolerance dict, max_seeds)} of a spec's adaptive experiments; one-line
    :class:`SpecError` for a malformed rule (:mod:`realm.campaign.adaptive` runs them)."""
    out = {}
    for j, e in enumerate(spec.get("experiments", [])):
        a = e.get("adaptive")
        if a is None:
            continue
        name = e.get("name", f"exp{j}")
        where = f"experiment {name!r}: adaptive"
        if not isinstance(a, dict) or set(a) != {"tolerance", "max_seeds"}:
            raise SpecError(f"{where} must be an object with 'tolerance' and 'max_seeds', "
                            f"not {a!r}")
        tol, cap = a["tolerance"], a["max_seeds"]
        if not (isinstance(tol, dict) and len(tol) == 1 and set(tol) <= {"abs", "rel"}
                and _positive(next(iter(tol.values())))):
            raise SpecError(f"{where} tolerance must be {{\"abs\": x}} or {{\"rel\": x}} with "
                            f"x > 0, not {tol!r}")
        seeds = e.get("seeds", spec.get("seeds", [0]))
        n = len(seeds) if isinstance(seeds, list) else 1
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < max(n, 2):
            raise SpecError(f"{where} max_seeds must be an integer >= the experiment's seeds "
                            f"and >= 2, not {cap!r}")
        if e.get("metric", "ppl") != "ppl":
            raise SpecError(f"{where} needs metric 'ppl' (the tolerance is on perplexity)")
        out[name] = (dict(tol), cap)
    return out


def _positive(x):
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def _timing_grid(e, name, cgroups):
    """The voltage part of a timing experiment's points; the table is read and checked here
    (every component of the experiment has a row at every voltage)."""
    from realm.energy.vtable import TableError, VoltageTable, table_path

    if not isinstance(e.get("table"), str):
        raise SpecError(f"experiment {name!r}: a timing experiment needs 'table', the path of "
                        "a voltage table (realm energy characterize)")
    try:
        table = VoltageTable.read(table_path(e["table"]))
        volts = _groups(e.get("voltages"), "voltages", name)
        for v in volts:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 2:
                raise SpecError(f"experiment {name!r}: voltage {v!r} must be a number of volts")
            for c in {c for g in cgroups for c in g}:
                table.row(c, v)
    except TableError as err:
        raise SpecError(f"experiment {name!r}: {err}") from None
    return [{"voltage": float(v), "table": e["table"]} for v in volts]


def _check_table_arrays(e, name, abft):
    from realm.energy.vtable import VoltageTable, table_path

    table = VoltageTable.read(table_path(e["table"]))
    for ab in abft:
        if ab and ab["array"] != table.array:
            raise SpecError(f"experiment {name!r}: the table is for the {table.array} array, "
                            f"not {ab['array']}")
        if ab and ab["policy"] == "thundervolt" and table.doc.get("per") == "element":
            raise SpecError(f"experiment {name!r}: thundervolt does not apply to a per-element "
                            "table (it has no dropped products)")


def _abft_grid(e, name, cgroups, timing=False):
    """The (array, policy, parameter file) part of an experiment's points: [{}] without
    ``arrays``; every parameter file is read and checked against its array here, before any
    model is loaded. Timing experiments also have the policies of :data:`TIMING_POLICIES`."""
    from golden.params import ParamsError, read_params
    from realm.abft import loop as abft

    keys = [k for k in ("arrays", "policies", "params") if k in e]
    if not keys:
        return [{}]
    if len(keys) < 3:
        raise SpecError(f"experiment {name!r}: arrays, policies and params go together")
    out = []
    for arr in _groups(e["arrays"], "arrays", name):
        try:
            config = abft.parse_array(arr)
        except ParamsError as err:
            raise SpecError(f"experiment {name!r}: {err}") from None
        arr = config.name
        if not isinstance(e["params"], str):
            raise SpecError(f"experiment {name!r}: params must be a path pattern (with {{array}})")
        path = abft.params_path(e["params"], arr)
        try:
            sets = read_params(path, config, sorted({c for g in cgroups for c in g}))
        except ParamsError as err:
            raise SpecError(f"experiment {name!r}: {err}") from None
        known = ABFT_POLICIES + (TIMING_POLICIES if timing else ())
        for pol in _groups(e["policies"], "policies", name):
            if pol not in known:
                raise SpecError(f"experiment {name!r}: policy must be one of "
                                f"{', '.join(known)}, not {pol!r}")
            out.append({"array": arr, "policy": pol, "params": e["params"],
                        "params_sha": {c: params_sha(sets[c]) for g in cgroups for c in g}})
    return out


def params_sha(entry):
    """Short digest of one component's parameter set (its hardware values; not the set index,
    which does not change a decision)."""
    import hashlib

    _, p = entry
    return hashlib.sha1(json.dumps([p.am1, p.b_q, p.freq_th, p.msd_th, p.msd_mode]).encode()
                        ).hexdigest()[:12]


def point_key(p):
    """Canonical identity of a point (used to resume)."""
    return json.dumps({k: v for k, v in p.items() if k != "plot"}, sort_keys=True)


def load_spec(path):
    """Read a spec file (one-line errors for missing or malformed files)."""
    from golden.jsonfile import read_json

    return read_json(path, "spec file", SpecError)
