"""Voltage tables per component: from a PE's waveform under one component's operand stream
(:mod:`synth.timing`, :mod:`realm.energy.streams`) to the per-MAC-cycle error probability
``p(V)`` and the error values ``f_e(V)`` the timing injector draws from (docs/energy.md §4, §5;
file format :mod:`realm.energy.vtable`).

* **Requirement of a cycle.** ``R_c`` (ps): the shortest clock from which cycle ``c`` latches
  the correct word at that clock and every longer one, i.e. the latest over the accumulator's
  flip-flops of (last change + setup time of its edge). ``P(R > T)`` bounds the error
  probability at clock ``T`` from above (a glitch can return a bit to its value in time).
* **Measured rows.** Where at least :data:`N_TAIL` cycles have ``R_c > T``, ``p(T)`` is the
  fraction of cycles whose latched word is wrong (:meth:`synth.waveform.Waveform.errors`), and
  ``f_e`` its error values with their counts, exactly.
* **Tail rows** (docs/energy.md §4, the parametric tail with a hard endpoint). Above the
  threshold ``u`` (the clock that :data:`N_TAIL` cycles exceed), ``P(R > T)`` is a generalized
  Pareto tail with negative shape and a given endpoint ``x_F`` (no cycle needs longer; the
  caller chooses it: the STA bound, i.e. the accumulator's SDF-timed period, or the streams'
  :func:`dynamic_endpoint` in the anchored mode): ``P(R > T) = P(R > u) (1 - (T - u) / (x_F -
  u))^k`` for ``u <= T < x_F`` and 0 from ``x_F``. With ``x_F`` fixed, the exponent has a
  closed-form maximum likelihood estimate from the :data:`N_TAIL` exceedances ``y_i = (R_i -
  u) / (x_F - u)``: ``k = n / sum(-log(1 - y_i))``. (Left free, the endpoint's estimate runs
  to the STA bound on our streams: their tails look exponential.) ``p(T) = rho P(R > T)``,
  ``rho = p(u) / P(R > u)`` (the fraction of late cycles that do latch a wrong word),
  continuous at ``u``. The error values of a tail row are those measured at ``u``: the errors
  the slowest cycles make.
* **Dropped products** (ThUnderVolt's TE-drop). ``f_drop``: per row, the values ``-w x`` of
  the products of the erroneous cycles (the update a Razor flip-flop would drop), measured rows
  exactly, tail rows as at ``u``.

Rows below the voltage where ``p`` first reaches :data:`P_FLOOR` are left out: there every
GEMM element of every component is wrong many times over.
"""
import math

import numpy as np

from .voltage import CURVES, MARGIN, check_grid, clock_period

__all__ = ["Waves", "requirement", "fit_tail", "dynamic_endpoint", "tail_probability",
           "component_table", "N_TAIL", "P_FLOOR"]

#: Exceedances the tail is fitted to, and the fewest late cycles a measured row needs.
N_TAIL = 50
#: The table stops at the first voltage where the per-cycle error probability reaches this.
P_FLOOR = 0.01


class Waves:
    """Waveforms of the chunks of one stream, simulated separately, read as one
    :class:`synth.waveform.Waveform` (cycles in chunk order)."""

    def __init__(self, waves):
        self.waves = list(waves)
        self.cycles = sum(w.cycles for w in self.waves)

    def errors(self, clock):
        return np.concatenate([w.errors(clock) for w in self.waves])

    def bit_errors(self, clock):
        return np.concatenate([w.bit_errors(clock) for w in self.waves])

    def requirement(self):
        return np.concatenate([w.requirement() for w in self.waves])

    @property
    def max_settle(self):
        return max(w.max_settle for w in self.waves)

    @property
    def safe_clock(self):
        return max(w.safe_clock for w in self.waves)


def requirement(wave):
    """Per cycle, ``R_c`` (ps): see the module docstring (0 for a cycle where no flip-flop
    changes)."""
    return wave.requirement()


def fit_tail(req, endpoint, n=N_TAIL):
    """The bounded tail of the requirements ``req`` (ps) with endpoint ``endpoint`` (ps):
    ``{"u_ps", "endpoint_ps", "k", "n", "fraction"}``, ``fraction = P(R > u)``; ``ValueError``
    if a requirement exceeds the endpoint or fewer than ``n + 1`` cycles are given."""
    req = np.sort(np.asarray(req, dtype=float))
    if len(req) <= n:
        raise ValueError(f"a tail fit needs more than {n} cycles, not {len(req)}")
    if req[-1] > endpoint:
        raise ValueError(f"a cycle needs {req[-1]:.3f} ps, beyond the STA bound "
                         f"{endpoint:.3f} ps")
    u = float(req[-n - 1])
    y = (req[-n:] - u) / (endpoint - u)
    y = np.minimum(y, 1 - 1e-12)
    s = float(-np.log1p(-y).sum())
    k = n / s if s > 0 else math.inf
    return {"u_ps": round(u, 6), "endpoint_ps": round(float(endpoint), 6), "k": k, "n": n,
            "fraction": n / len(req)}


def dynamic_endpoint(req, n=N_TAIL):
    """The latest requirement of ``req`` plus the mean spacing of its ``n`` largest: the
    endpoint of the anchored mode (no cycle of the stream is expected to need longer)."""
    req = np.sort(np.asarray(req, dtype=float))
    return float(req[-1] + (req[-1] - req[-n - 1]) / n)


def tail_probability(tail, clock):
    """``P(R > clock)`` of a :func:`fit_tail` tail, for ``clock >= u``."""
    u, xf = tail["u_ps"], tail["endpoint_ps"]
    if clock >= xf:
        return 0.0
    return tail["fraction"] * (1 - (clock - u) / (xf - u)) ** tail["k"]


def _hist(values):
    v, c = np.unique(np.asarray(values, dtype=np.int64), return_counts=True)
    return {"values": v.tolist(), "counts": c.tolist()}


def component_table(wave, products, endpoint, reference_ps, grid, curve="A", margin=MARGIN,
                    n_tail=N_TAIL, p_floor=P_FLOOR):
    """Rows (one per voltage of ``grid``, down to the first with ``p >= p_floor``) and the tail
    fit of one component: ``wave`` its :class:`synth.waveform.Waveform`, ``products`` the
    per-cycle products (:func:`realm.energy.streams.products`), ``endpoint`` the STA bound (ps),
    ``reference_ps`` the array PE's shortest period, the clock at ``V`` being
    :func:`synth.voltage.clock_period`."""
    c = CURVES[curve] if isinstance(curve, str) else curve
    grid = sorted(check_grid(grid, c), reverse=True)
    req = requirement(wave)
    tail = fit_tail(req, endpoint, n_tail)
    u = tail["u_ps"]
    e_u = wave.errors(u)
    late_u = int((req > u).sum())
    tail["rho"] = float((e_u != 0).sum()) / late_u
    products = np.asarray(products, dtype=np.int64)
    at_u = (_hist(e_u[e_u != 0]), _hist(-products[e_u != 0]))
    latest = float(req.max()) if len(req) else 0.0
    rows = []
    for v in grid:
        clock = clock_period(v, reference_ps, c, margin)
        row = {"v": v, "s": round(c.slowdown(v), 6), "clock_ps": round(clock, 3)}
        if clock >= endpoint:
            row.update(p=0.0, source="zero", errors=0)
        elif clock >= u:
            late = int((wave.errors(clock) != 0).sum()) if clock < latest else 0
            row.update(p=tail["rho"] * tail_probability(tail, clock), source="tail",
                       errors=late, f_e=at_u[0], f_drop=at_u[1])
        else:
            e = wave.errors(clock)
            bad = e != 0
            row.update(p=float(bad.mean()), source="measured", errors=int(bad.sum()),
                       f_e=_hist(e[bad]), f_drop=_hist(-products[bad]),
                       p_bit=[round(float(x), 8) for x in wave.bit_errors(clock).mean(axis=0)])
        rows.append(row)
        if row["p"] >= p_floor:
            break
    return {"cycles": wave.cycles, "tail": tail, "rows": rows}
