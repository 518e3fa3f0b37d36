"""Supply voltage -> timing errors of one PE, from its characterization (:mod:`synth.timing`):
per accumulator bit and per MAC cycle, the probability that a flip-flop latches a wrong value,
and the distribution of the signed error values. Method: docs/energy.md §2-§4.

* **Delay scaling** (§2). Every delay scales by one factor ``s(V) = d(V) / d(V_n)``,
  ``V_n = 0.9 V``. :data:`CURVES`: ``A`` (default), the normalized 16 nm curve of docs/energy.md's
  table (UCSD ASIC-Clouds), interpolated linearly in ``log s`` between its points; ``B`` and
  ``C``, the alpha-power law ``s(V) = [V / (V - Vth)^a] / [V_n / (V_n - Vth)^a]`` with ``(Vth,
  a) = (0.30, 1.30)`` and ``(0.35, 1.30)``, for sensitivity; ``A-fit``, the alpha-power fit
  docs/energy.md gives for curve A, ``(0.49, 0.89)``. (That fit does not reproduce the table it
  was fitted to once normalized at 0.9 V: 1.060 for 1.031 at 0.85 V, 1.411 for 1.326 at
  0.70 V; hence the table is the default.)
* **Mapping to ReaLM's timing** (§3). Our netlist supplies the relative path structure;
  time is rescaled so that the reference PE's shortest clock period (its STA critical path
  plus setup, ``P_ref``) plays the role of ReaLM's 439 ps critical path in a 500 ps clock:
  the clock is ``T' = margin * P_ref`` in our nominal time, ``margin = 500 / 439`` by default.
  At voltage ``V`` every delay, setup times included, is ``s(V)`` times longer, which is the
  clock ``T(V) = T' / s(V)`` in our nominal time (docs/energy.md's ``tau(V) = T'/s(V) - t_su``,
  with the flip-flops' own setup per bit and edge). The reference is the array's PE: for a
  checksum PE, the array PE next to it, whose path sets the clock. :func:`onset_margin` gives
  the margin that puts the first simulated error just below a chosen voltage instead
  (docs/energy.md's "anchored" mode).
* **Errors** (§4). ``p_bit[k](V)``: the fraction of cycles in which bit ``k`` latched with
  the clock ``T(V)`` (:meth:`synth.waveform.Waveform.latched`) differs from its settled value;
  ``p(V)``: the fraction in which the word does (the per-element, per-MAC-cycle error
  probability); ``f_e(V)``: the signed error values ``latched - correct`` of the erroneous
  cycles, with their counts. Probabilities below about ``1 / cycles`` read as 0: no tail
  model here (docs/energy.md §4), nor conversion to a K-term output element
  (``1 - (1 - p)^K``, §5).
"""
import bisect
import csv
import dataclasses
import json
import math
import pathlib

import numpy as np

__all__ = ["Curve", "CURVES", "V_NOMINAL", "CLOCK_PS", "CRIT_PATH_PS", "MARGIN", "parse_grid",
           "check_grid", "clock_period", "onset_margin", "error_table", "write_table"]

#: ReaLM's nominal supply (V), clock (ps) and STA critical path (ps) at nominal [ReaLM §V].
V_NOMINAL = 0.9
CLOCK_PS = 500.0
CRIT_PATH_PS = 439.0
#: The timing margin of ReaLM's design: its clock over its critical path.
MARGIN = CLOCK_PS / CRIT_PATH_PS
#: ``f_e`` is written value by value up to this many distinct values per voltage.
MAX_VALUES = 1000


@dataclasses.dataclass(frozen=True)
class Curve:
    """A delay-vs-voltage curve, normalized to 1 at :data:`V_NOMINAL`, valid from ``v_min``
    to ``v_max`` (V): alpha-power (``vth``, ``alpha``) or tabulated (``points``, ``(V, s)``
    pairs in increasing V)."""

    name: str
    description: str
    v_min: float
    v_max: float
    vth: float = None
    alpha: float = None
    points: tuple = ()

    def slowdown(self, v):
        """``s(v)``, the delay at ``v`` over the delay at :data:`V_NOMINAL`."""
        if self.points:
            vs = [p[0] for p in self.points]
            i = min(max(bisect.bisect_right(vs, v) - 1, 0), len(vs) - 2)
            (v0, s0), (v1, s1) = self.points[i], self.points[i + 1]
            t = (v - v0) / (v1 - v0)
            return math.exp(math.log(s0) * (1 - t) + math.log(s1) * t)

        def d(x):
            return x / (x - self.vth) ** self.alpha
        return d(v) / d(V_NOMINAL)

    def to_dict(self):
        d = {"name": self.name, "description": self.description,
             "range_v": [self.v_min, self.v_max]}
        if self.points:
            d["points"] = [list(p) for p in self.points]
        else:
            d.update(vth=self.vth, alpha=self.alpha)
        return d


#: The curves of docs/energy.md §2 (table "Slowdown s(V) for each curve").
CURVES = {
    "A": Curve("A", "16 nm, UCSD ASIC-Clouds logistic, normalized (docs/energy.md table), "
               "log-linear between points", 0.60, 0.90,
               points=((0.60, 2.157), (0.65, 1.610), (0.70, 1.326), (0.72, 1.253),
                       (0.75, 1.171), (0.80, 1.083), (0.85, 1.031), (0.90, 1.0))),
    "A-fit": Curve("A-fit", "alpha-power fit docs/energy.md gives for curve A", 0.55, 0.90,
                   vth=0.49, alpha=0.89),
    "B": Curve("B", "alpha-power, generic FinFET guess", 0.55, 0.90, vth=0.30, alpha=1.30),
    "C": Curve("C", "alpha-power, Vth 0.35 V", 0.55, 0.90, vth=0.35, alpha=1.30),
}


def _curve(curve):
    if isinstance(curve, Curve):
        return curve
    try:
        return CURVES[curve]
    except KeyError:
        raise ValueError(f"delay curve must be one of {', '.join(CURVES)}, not "
                         f"{curve!r}") from None


def parse_grid(text):
    """Voltages from ``"START:STOP:STEP"`` (both ends included, ``STEP`` > 0, in the direction
    of ``STOP``) or ``"V1,V2,..."``; ``ValueError`` in one line if ``text`` is neither."""
    rule = f"voltage grid must be comma-separated voltages or START:STOP:STEP, not {text!r}"
    parts = text.split(":")
    try:
        if len(parts) == 3:
            start, stop, step = (float(p) for p in parts)
            values = [start, stop, step]
        elif len(parts) == 1:
            values = [float(p) for p in text.split(",") if p.strip()]
        else:
            raise ValueError
    except ValueError:
        raise ValueError(rule) from None
    if any(not math.isfinite(v) for v in values):
        raise ValueError(rule)
    if len(parts) == 3:
        if not step > 0:
            raise ValueError(f"voltage grid step must be positive, not {parts[2]!r}")
        n = int(math.floor(abs(stop - start) / step + 1e-9)) + 1
        sign = 1 if stop >= start else -1
        values = [round(start + sign * i * step, 6) for i in range(n)]
    return values


def check_grid(grid, curve="A"):
    """``grid`` (a string for :func:`parse_grid`, or numbers) as a tuple of voltages, each
    within ``curve``'s range; ``ValueError`` in one line otherwise."""
    c = _curve(curve)
    values = parse_grid(grid) if isinstance(grid, str) else list(grid)
    if not values:
        raise ValueError("voltage grid is empty")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"voltage grid must hold numbers, not {v!r}")
    outside = [v for v in values if not c.v_min - 1e-9 <= v <= c.v_max + 1e-9]
    if outside:
        v = max(outside, key=lambda x: max(c.v_min - x, x - c.v_max))  # the farthest out
        raise ValueError(f"voltage {v:g} V is outside curve {c.name}'s range "
                         f"{c.v_min:.2f} to {c.v_max:.2f} V")
    return tuple(float(v) for v in values)


def clock_period(v, reference_ps, curve="A", margin=MARGIN):
    """``T(V)`` (ps, our nominal time): the clock at voltage ``v``, ``margin`` times
    ``reference_ps`` (the reference PE's shortest period) at nominal voltage, every delay
    ``s(v)`` times longer."""
    return margin * reference_ps / _curve(curve).slowdown(v)


def onset_margin(wave, reference_ps, v_onset, curve="A"):
    """The margin at which ``wave``'s latest change just meets setup at ``v_onset``
    (:attr:`synth.waveform.Waveform.safe_clock`): the first errors appear just below
    ``v_onset`` (docs/energy.md §3, anchored mode)."""
    return wave.safe_clock * _curve(curve).slowdown(v_onset) / reference_ps


def _msb_class(e):
    """``"+k"`` / ``"-k"``: the sign and ``floor(log2 |e|)`` of a non-zero error."""
    return f"{'+' if e > 0 else '-'}{int(e if e > 0 else -e).bit_length() - 1}"


def error_table(wave, grid, reference_ps, curve="A", margin=MARGIN):
    """Per voltage of ``grid``: ``s``, ``clock_ps``, ``p``, ``p_bit``, ``f_e`` (``[[value,
    count], ...]``, or ``None`` past :data:`MAX_VALUES` distinct values), ``f_e_msb``
    (counts by sign and ``floor(log2 |e|)``) and ``errors`` (count) of ``wave``; and the
    per-cycle errors, ``[voltage, cycle]``."""
    c = _curve(curve)
    grid = check_grid(grid, c)
    rows, per_cycle = [], []
    for v in grid:
        s = c.slowdown(v)
        clock = clock_period(v, reference_ps, c, margin)
        e = wave.errors(clock)
        bits = wave.bit_errors(clock)
        wrong = e[e != 0]
        values, counts = np.unique(wrong, return_counts=True)
        msb = {}
        for val, n in zip(values.tolist(), counts.tolist()):
            key = _msb_class(val)
            msb[key] = msb.get(key, 0) + n
        rows.append({"v": v, "s": round(s, 6), "clock_ps": round(clock, 3),
                     "cycles": wave.cycles, "errors": int(len(wrong)),
                     "p": len(wrong) / wave.cycles,
                     "p_bit": [round(float(x), 8) for x in bits.mean(axis=0)],
                     "f_e": ([[int(a), int(b)] for a, b in zip(values, counts)]
                             if len(values) <= MAX_VALUES else None),
                     "f_e_msb": dict(sorted(msb.items(), key=lambda kv: -kv[1]))})
        per_cycle.append(e)
    model = {"curve": c.to_dict(), "v_nominal": V_NOMINAL, "margin": margin,
             "reference_period_ps": reference_ps,
             "clock_ps": round(margin * reference_ps, 3)}
    return {"model": model, "table": rows}, np.array(per_cycle)


def write_table(out, characterization, table, per_cycle):
    """Write ``timing.json`` (the characterization and the table), ``pv.csv`` (one row per
    voltage) and ``errors.npz`` (the per-cycle errors) into directory ``out``."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"format": "realm-timing/1", **characterization, **table}
    (out / "timing.json").write_text(json.dumps(doc, indent=1) + "\n")
    with open(out / "pv.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["v", "s", "clock_ps", "cycles", "errors", "p", "top_error_msb"])
        for r in table["table"]:
            top = next(iter(r["f_e_msb"]), "")
            w.writerow([r["v"], r["s"], r["clock_ps"], r["cycles"], r["errors"], r["p"], top])
    np.savez_compressed(out / "errors.npz", v=np.array([r["v"] for r in table["table"]]),
                        errors=per_cycle)
    return out / "timing.json"
