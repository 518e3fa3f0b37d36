"""A second stage with more text where a verdict is still in doubt (``realm llm refine``).

Adaptive seeds (:mod:`realm.campaign.adaptive`) resolve a cell whose noise is the fault draw;
where the noise is the text (2,044 scored tokens: 4 windows of 512), a cell can straddle the
tolerance at any number of seeds. :func:`refine_spec` reads a finished adaptive campaign's
verdicts and writes the spec of a second campaign over its *decisive* cells only, with more
windows of the same text (16 x 512: 8,176 scored tokens) and the same settings otherwise:

* a cell is decisive when its verdict is ``unresolved`` (or still ``open``), or when it is
  carried by one seed (leaving some one seed out moves its mean across the tolerance);
* each decisive cell becomes one experiment named ``<experiment>@<n>`` (n counts from 1 in the
  verdicts file's order), so the second campaign runs exactly those cells, and readers that
  look for an experiment by name (:mod:`realm.llm.transfer`) find its refinements too;
* the experiments are adaptive again (``rel`` tolerance, ``max_seeds`` cap).

The second results file has its own clean baseline over its own windows; each cell is judged
against that (:func:`realm.llm.transfer.cells` takes a refinement beside the main file and
lets its cells replace the main file's).
"""
import json

from realm.campaign.runner import read_results
from realm.campaign.spec import SpecError

#: Windows of a refinement by default: 16 x 512 tokens, 4 x the 4-window campaigns (issue 22).
WINDOWS = 16
#: Settings a refinement copies from the first campaign's header (all but the windows).
COPIED = ("model", "text", "length", "calib_text", "calib_windows", "calib_length", "alpha",
          "per_tensor", "smooth", "requant")


def decisive(rows):
    """The verdict rows (as read from a ``.verdicts.csv``) whose cell is still in doubt."""
    return [r for r in rows if r["verdict"] in ("unresolved", "open")
            or r["one_seed"] in (True, "True")]


def experiment_of(name, cell):
    """The spec experiment that runs exactly one cell (a verdicts row's ``cell`` as a dict)."""
    e = {"name": name, "mode": cell["mode"]}
    if cell["mode"] != "bitflip" or "array" in cell or "voltage" in cell:
        raise SpecError(f"cell {json.dumps(cell, sort_keys=True)}: only bit-flip cells without "
                        "an array can be refined")
    e["components"] = [cell["components"] if len(cell["components"]) > 1
                       else cell["components"][0]]
    e["layers"] = ["all"] if cell["layers"] is None else [cell["layers"]]
    e["stages"] = [cell["stage"]]
    lo, hi = cell["bits"]
    e["bits"] = [lo if lo == hi else [lo, hi]]
    e["bers"] = [cell["ber"]]
    return e


def refine_spec(results, windows=WINDOWS, rel=0.0167, max_seeds=4, seeds=(0, 1)):
    """(spec, decisive rows) of the second stage of ``results`` (a results JSONL with its
    ``.verdicts.csv`` beside it)."""
    from realm.campaign.adaptive import read_verdicts, verdicts_path

    header, _ = read_results(results)
    if header is None:
        raise SpecError(f"{results} holds no campaign results")
    rows = read_verdicts(results)
    if rows is None:
        raise SpecError(f"{verdicts_path(results)} not found: refine needs a campaign run with "
                        "adaptive seeds")
    st = header["settings"]
    if windows <= st["windows"]:
        raise SpecError(f"--windows {windows} is not more than the campaign's {st['windows']}")
    if max_seeds < len(seeds):
        raise SpecError(f"--max-seeds {max_seeds} is below the {len(seeds)} seeds each cell runs")
    picked = decisive(rows)
    counts = {}
    experiments = []
    for r in picked:
        n = counts[r["experiment"]] = counts.get(r["experiment"], 0) + 1
        e = experiment_of(f"{r['experiment']}@{n}", json.loads(r["cell"]))
        e["adaptive"] = {"tolerance": {"rel": rel}, "max_seeds": max_seeds}
        experiments.append(e)
    spec = {**{k: st[k] for k in COPIED if k in st}, "windows": windows, "seeds": list(seeds),
            "experiments": experiments}
    return spec, picked
