"""The campaign spec of an error model (``realm energy spec``): of a voltage table, one timing
experiment per component at the voltages where a perplexity pass sees errors of that component;
of a BER curve, one closed-loop bitflip experiment on the BERs of a voltage grid, which
``realm energy bitflip`` places back on the curve exactly."""
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
    if table.doc.get("per") == "element":  # no dropped products: ThUnderVolt does not apply
        policies = [p for p in policies if p != "thundervolt"]
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


def make_bitflip_spec(curve, voltages, bits, seeds, policies, components, array,
                      params="docs/results/abft/params/{array}.json", settings=SETTINGS):
    """The spec (dict) of the bitflip model on ``curve`` (:class:`realm.energy.errmodel.BerCurve`)
    at ``voltages``: one closed-loop experiment, each component its own group, on the BERs
    ``curve.ber(V)`` of the voltages with errors (above the onset the array is error-free and
    nothing is run). :class:`realm.energy.errmodel.CurveError` for a voltage off the curve."""
    bers = sorted({float(f"{curve.ber(v):.12g}") for v in voltages} - {0.0})  # 1e-07, not
    # 9.99...96e-08: a grid BER the campaign already ran is the same point
    if not bers:
        raise ValueError(f"no voltage of the grid has errors on the curve {curve.name} (its "
                         f"errors start at {curve.v_max_errors():g} V)")
    exp = {"name": f"bitflip-{curve.name}", "mode": "bitflip", "components": list(components),
           "bers": bers, "bits": [b if b[0] != b[1] else b[0] for b in bits],
           "arrays": [array], "policies": list(policies), "params": params}
    return {**settings, "seeds": list(seeds), "experiments": [exp]}
