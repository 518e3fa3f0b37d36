"""The campaign spec of a voltage table (``realm energy spec``): one timing experiment per
component, at the voltages where a perplexity pass sees errors of that component."""
from realm.energy.vtable import p_element

#: A voltage enters the spec when one pass is expected to corrupt at least this many elements.
MIN_ERRORS = 0.05
#: Campaign settings of the spec (those of docs/results/abft, whose parameter files it uses).
SETTINGS = {"model": "smollm2-135m", "text": "wikitext-2:test", "windows": 4, "length": 512,
            "calib_text": "wikitext-2:valid", "calib_windows": 8, "calib_length": 512}


def elements(settings, comp):
    """Accumulator elements of ``comp`` in one perplexity pass of ``settings``' model."""
    from realm.campaign.spec import model_shape

    _, layers, outs, heads, head_dim = model_shape(settings["model"])
    t = settings["length"]
    per = {"qk": heads * t * t, "sv": heads * t * head_dim}.get(comp)
    return settings["windows"] * layers * (per if per is not None else t * outs[comp])


def make_spec(table, table_path, seeds, policies, every=1, components=None,
              params="docs/results/abft/params/{array}.json", settings=SETTINGS,
              max_p_element=1.0):
    """The spec (dict) of ``table`` read from ``table_path``: per component the voltages below
    nominal where a pass is expected to corrupt :data:`MIN_ERRORS` elements, down to the first
    where an element is wrong with probability ``max_p_element`` or more, every ``every``-th
    (the lowest always kept)."""
    exps = []
    for comp in components or table.components:
        n = elements(settings, comp)
        vs = []
        for v in table.voltages(comp):
            pe = p_element(table.row(comp, v).p, table.k_eff(comp))
            if v < 0.9 and pe * n >= MIN_ERRORS:
                vs.append(v)
                if pe >= max_p_element:
                    break
        keep = vs[::every]
        if vs and vs[-1] not in keep:
            keep.append(vs[-1])
        if not keep:
            continue
        exps.append({"name": f"volts-{comp}", "mode": "timing", "components": [comp],
                     "voltages": keep, "table": table_path, "arrays": [table.array],
                     "params": params, "policies": list(policies)})
    if not exps:
        raise ValueError(f"no voltage of {table_path} corrupts any element of one pass")
    return {**settings, "seeds": list(seeds), "experiments": exps}
