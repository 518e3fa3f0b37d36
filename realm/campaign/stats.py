"""Statistics over a campaign's seeds: Student t intervals, and the verdict of a cell (a point
without its seed) against a perplexity tolerance, which :mod:`realm.campaign.adaptive` uses to
decide whether a cell needs another seed.

A cell's seeds give degradations ``d_i = PPL_i - PPL_clean``. With ``n >= 2`` finite values the
95 % interval is ``mean ± t(n-1) · s / sqrt(n)`` (two-sided Student t, ``s`` the sample
standard deviation). Against a tolerance ``tol`` the cell is

* ``within`` when the interval's upper end is ``<= tol``,
* ``beyond`` when its lower end is ``> tol`` (or a seed's perplexity is infinite or NaN: the
  mean is then unbounded whatever the others do),
* ``open`` when the interval straddles ``tol`` and fewer than ``cap`` seeds ran, and
* ``unresolved`` when it still straddles at ``cap`` seeds.

A verdict is *carried by one seed* when leaving some one seed out puts the mean on the other
side of ``tol`` (e.g. 26.54 / 26.37 / 98.68 against a clean 26.14: the mean is beyond, without
the third seed within).
"""
import math
import statistics

#: Two-sided 95 % Student t quantiles t(0.975, df), df = 1 .. 30 (three decimals, the
#: textbook table).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
        16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074,
        23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}
Z975 = 1.959964
VERDICTS = ("within", "beyond", "open", "unresolved")


def t975(df):
    """t(0.975, df) for an integer ``df >= 1``: the table to 30, beyond it the Cornish-Fisher
    expansion in 1/df (within 1e-3 of the exact quantile past 30)."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"degrees of freedom must be an integer >= 1, not {df!r}")
    if df in T975:
        return T975[df]
    z = Z975
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_ci(values):
    """(mean, half-width of the 95 % interval); an infinite mean if any value is infinite, the
    half-width None for fewer than two values."""
    if any(math.isinf(v) for v in values):
        return math.inf, None
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, None
    return m, t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def _side(mean, tol):
    return "beyond" if mean > tol else "within"


def verdict(deltas, tol, cap):
    """The cell's verdict (module docstring) from its degradations ``deltas`` (one per seed),
    with its evidence: a dict of ``n``, ``mean``, ``lo``, ``hi`` (the 95 % interval; None
    below two seeds), ``median``, ``min``, ``max``, ``verdict`` and ``one_seed`` (the mean's
    side rests on a single seed)."""
    n = len(deltas)
    if n == 0:
        raise ValueError("a cell needs at least one seed")
    vals = [math.inf if math.isnan(d) else d for d in deltas]
    out = {"n": n, "median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    mean, half = mean_ci(vals)
    out.update(mean=mean, lo=None if half is None else mean - half,
               hi=None if half is None else mean + half)
    if math.isinf(mean):
        v = "beyond"
    elif half is None or out["lo"] <= tol < out["hi"]:
        v = "unresolved" if n >= cap else "open"
    else:
        v = "within" if out["hi"] <= tol else "beyond"
    side = _side(mean, tol)
    out["verdict"] = v
    out["one_seed"] = n >= 2 and any(
        _side(statistics.fmean(vals[:i] + vals[i + 1:]), tol) != side for i in range(n))
    return out
