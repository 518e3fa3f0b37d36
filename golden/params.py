"""A parameter set of the statistical unit, end to end: :class:`StatParams` (quantized from the
paper's (a, b, theta_freq), checked against an array's register widths, packed into the
``cfg_*`` ports) and the ``realm-params/1`` file that carries one set per network component
for one array (written by ``realm llm fit``, read by the closed loop, ``realm run --params`` and
the RTL benches; paper §IV-B, Fig. 7c).

The file: ``{"format": "realm-params/1", "model": ..., "array": "<rows>x<cols>-<dataflow>",
"meta": {...}, "components": {name: {"set": index, "am1", "b_q", "freq_th", "msd_th",
"msd_mode", ...provenance}}}``.
"""
import dataclasses
import json
import math
import os

from hw.facts import REALM, UNIT_POLICIES, stat_widths

#: The file format's name.
FORMAT = "realm-params/1"


class ParamsError(ValueError):
    """A parameter set or file that cannot program the array it is used with (one line)."""


@dataclasses.dataclass(frozen=True)
class StatParams:
    """One parameter set of the statistical unit (one per network component), in hardware
    units: ``am1`` = (a - 1) * 256, ``b_q`` = b * 256, the frequency and MSD thresholds, the
    policy code (:data:`hw.facts.UNIT_POLICIES`) and the MSD mode (0 signed, 1 magnitudes)."""

    am1: int = 0
    b_q: int = 0
    freq_th: int = 0
    msd_th: int = 0
    policy: int = REALM
    msd_mode: int = 0

    @classmethod
    def from_paper(cls, a, b, theta_freq, *, msd_th=None, policy="realm", msd_mode=0,
                   sensitive=False):
        """Quantize the paper's (a, b, theta_freq) (log2 units). ``msd_th`` defaults to the
        MSD where the inclined line meets the horizontal one, ``2**((theta_freq + b) / a)``
        (the authors' MSD-only baseline, the paper's ApproxABFT-like comparison)."""
        if a < 1:
            raise ValueError(f"a must be at least 1, not {a}")
        freq_th = 0 if sensitive else math.floor(2 ** theta_freq)
        if msd_th is None:
            msd_th = math.floor(2 ** ((theta_freq + b) / a))
        return cls(am1=round((a - 1) * 256), b_q=round(b * 256), freq_th=freq_th,
                   msd_th=msd_th, policy=UNIT_POLICIES[policy], msd_mode=msd_mode)

    def check(self, config, name="parameter set"):
        """Raise :class:`ParamsError` unless every field fits the registers of ``config``'s
        statistical unit (widths from :func:`hw.facts.stat_widths`)."""
        w = stat_widths(config.stat_n, config.acc_width)
        limits = {"am1": (0, 1023), "b_q": (-(1 << 15), (1 << 15) - 1),
                  "freq_th": (0, (1 << w["freq"]) - 1), "msd_th": (0, (1 << w["msd"]) - 1),
                  "policy": (0, max(UNIT_POLICIES.values())), "msd_mode": (0, 1)}
        for field, (lo, hi) in limits.items():
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ParamsError(f"{name}: {field} must be an integer in {lo}..{hi} for "
                                  f"{config.name}, not {v!r}")
        return self

    def ports(self, index):
        """Port values that write this set into parameter set ``index`` (with ``cfg_we``
        high)."""
        return {"cfg_set": index, "cfg_am1": self.am1, "cfg_b": self.b_q,
                "cfg_freq": self.freq_th, "cfg_msd_th": self.msd_th,
                "cfg_policy": self.policy, "cfg_msd_mode": self.msd_mode}


def write_params(path, config, params, *, model, meta=None):
    """Write a parameter file for ``config`` with ``params`` = {component: (StatParams, info)}
    where ``info`` is a dict of provenance (fitted values, tolerance) kept beside the hardware
    values. Sets are numbered in the order given."""
    comps = {}
    if len(params) > config.param_sets:
        raise ParamsError(f"{len(params)} components need {len(params)} parameter sets; the "
                          f"array holds {config.param_sets}")
    for i, (comp, (p, info)) in enumerate(params.items()):
        p.check(config, f"component {comp!r}")
        comps[comp] = {"set": i, "am1": p.am1, "b_q": p.b_q, "freq_th": p.freq_th,
                       "msd_th": p.msd_th, "msd_mode": p.msd_mode, **(info or {})}
    doc = {"format": FORMAT, "model": model, "array": config.name,
           "meta": meta or {}, "components": comps}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return doc


def read_params(path, config, components=None):
    """{component: (set, StatParams)} from a parameter file, checked against ``config`` (the
    array it will program) and the components that need a set."""
    from golden.jsonfile import read_json

    doc = read_json(path, "parameter file", ParamsError)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ParamsError(f"parameter file {path!r} is not in the {FORMAT} format")
    if doc.get("array") != config.name:
        raise ParamsError(f"parameter file {path!r} is for the {doc.get('array')} array, not "
                          f"{config.name}")
    comps = doc.get("components")
    if not isinstance(comps, dict):
        raise ParamsError(f"parameter file {path!r} has no 'components' object")
    missing = [c for c in (components or []) if c not in comps]
    if missing:
        raise ParamsError(f"parameter file {path!r} has no parameter set for component "
                          f"{missing[0]!r}")
    out = {}
    for comp, e in comps.items():
        try:
            p = StatParams(am1=e["am1"], b_q=e["b_q"], freq_th=e["freq_th"], msd_th=e["msd_th"],
                           policy=REALM, msd_mode=e.get("msd_mode", 0))
            s = e["set"]
        except (KeyError, TypeError) as err:
            raise ParamsError(f"parameter file {path!r}: component {comp!r} lacks {err}") from None
        p.check(config, f"component {comp!r}")
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < config.param_sets:
            raise ParamsError(f"component {comp!r} uses parameter set {s!r}; the array holds "
                              f"sets 0..{config.param_sets - 1}")
        out[comp] = (s, p)
    return out
