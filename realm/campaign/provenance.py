"""What a campaign's published numbers rest on, in one paragraph every summary starts with.

A verdict from 2 seeds and 2,044 tokens is not one from 4 seeds and 8,176; bit flips are not
timing errors; a decision per 256 x 256 tile is not one per 64 x 64 tile. :func:`rests_on`
reads it all off a results file (its header's settings and environment, its points) so that
no summary can leave it out:

* the model and the text: windows x length tokens, ``windows x (length - 1)`` scored per point;
* seeds per cell (a point without its seed): min … max, and how many cells got more than the
  fewest (adaptive seeds);
* the error model of its points (bit flips in which bits, MSD/frequency errors, timing errors
  from which voltage table) and the decision granularity (the arrays, or none);
* the verdicts: each cell's 95 % Student t interval of ΔPPL against the tolerance
  (:func:`realm.campaign.stats.verdict`, the cap being the seeds it has), counted as within,
  beyond and unresolved; or, given a campaign's ``.verdicts.csv``, its tally;
* the environment the baselines were computed in (or that the file predates its record).
"""
import math

from realm.campaign.stats import verdict


def _cells(records):
    from realm.campaign.adaptive import cell_key

    out = {}
    for r in records:
        if "ppl" not in r:
            continue  # e.g. DMR: no evaluation
        ppl = r["ppl"] if r["ppl"] is not None else math.inf
        out.setdefault(cell_key(r["point"]), []).append(ppl)
    return out


def error_models(points):
    """The error models of ``points``, in words, in a stable order."""
    single, ranges, other = set(), set(), set()
    for p in points:
        mode = p.get("mode", "bitflip")
        if mode == "msd":
            other.add("MSD/frequency errors per GEMM call")
        elif mode == "timing":
            other.add(f"timing errors from {p.get('table', 'a voltage table').rsplit('/', 1)[-1]}")
        else:
            lo, hi = p.get("bits", (30, 30))
            (single.add(lo) if lo == hi else ranges.add((lo, hi)))
    out = []
    if single:
        b = sorted(single)
        out.append(f"bit flips in bit {b[0]}" if len(b) == 1 else
                   f"bit flips in one bit of {', '.join(map(str, b))} per point")
    out += [f"bit flips in a uniform bit of {lo}–{hi}" for lo, hi in sorted(ranges)]
    return out + sorted(other)


def granularity(points):
    """The decision granularity of ``points``: the arrays whose tiles decide, or none."""
    arrays = sorted({p["array"] for p in points if p.get("array")})
    if not arrays:
        return "no ABFT decisions (errors per GEMM call)"
    return "decided per tile of " + ", ".join(arrays)


def scored_tokens(settings):
    """Tokens scored per point: ``windows x (length - 1)`` (each window's first token has no
    prediction); None when the settings do not say."""
    if "windows" not in settings or "length" not in settings:
        return None
    return settings["windows"] * (settings["length"] - 1)


def tally(cells, baseline, tol):
    """{verdict: count} of ``cells`` ({key: [ppl per seed]}) against ΔPPL ``tol``."""
    out = {}
    for ppls in cells.values():
        v = verdict([x - baseline for x in ppls], tol, cap=len(ppls))["verdict"]
        out[v] = out.get(v, 0) + 1
    return out


def rests_on(header, records, tol=None, verdicts=None):
    """One Markdown paragraph: what the results ``records`` of a file with ``header`` rest on.
    ``tol`` (ΔPPL) judges each cell's seeds; ``verdicts`` (rows of a ``.verdicts.csv``) gives
    an adaptive campaign's own tally instead."""
    st = header.get("settings", {})
    parts = []
    tokens = scored_tokens(st)
    if tokens is not None:
        parts.append(f"model {st.get('model', '?')}, {st['windows']} × {st['length']}-token "
                     f"windows of {st.get('text', '?')} ({tokens:,} scored tokens per point)")
    cells = _cells(records)
    if cells:
        n = sorted(len(v) for v in cells.values())
        more = sum(1 for x in n if x > n[0])
        seeds = f"{n[0]} seed{'s' * (n[0] > 1)} per cell" if n[0] == n[-1] else \
            f"{n[0]}–{n[-1]} seeds per cell ({more} of {len(n)} cells got more than {n[0]})"
        parts.append(f"{len(cells):,} cells, {seeds}")
    points = [r["point"] for r in records]
    if points:
        parts.append("error model: " + "; ".join(error_models(points)))
        parts.append("granularity: " + granularity(points))
    base = header.get("baseline", {}).get("w8a8", {}).get("ppl")
    if verdicts is not None:
        from realm.campaign.adaptive import tally as verdict_tally

        t = verdict_tally(verdicts)
        parts.append("verdicts (adaptive seeds, 95 % t interval of ΔPPL against the tolerance): "
                     + _counts(t) + f", {t['one_seed']} carried by one seed")
    elif tol is not None and base is not None and cells:
        parts.append(f"verdicts (95 % t interval of each cell's ΔPPL against {tol:.3g}; "
                     "unresolved: it straddles): " + _counts(tally(cells, base, tol)))
    elif cells:
        parts.append("no verdicts here: each cell is the mean ± 95 % t interval of its seeds")
    env = header.get("env")
    parts.append(f"environment: torch {env['torch']}, transformers {env['transformers']}, "
                 f"CPU kernels {env['cpu_capability']}" if env else
                 "environment: not recorded (the file predates its record)")
    return "**Rests on**: " + "; ".join(parts) + "."


def _counts(t):
    return ", ".join(f"{t.get(k, 0)} {k}" for k in ("within", "beyond", "unresolved", "open")
                     if k in t or k != "open")
