"""``realm llm transfer`` (realm/llm/transfer.py): component verdicts of two models side by side,
on hand-made results files whose verdicts are worked out by hand, and the command's files and
one-line errors."""
import json

import pytest

from realm.llm import transfer
from tb.cli_fixtures import realm


def _results(path, model, clean, cells, extra=(), windows=4, experiment="components"):
    """A results file: header, then per (component, BER) one record per seed's perplexity."""
    lines = [{"kind": "header", "settings": {"model": model, "windows": windows, "length": 512},
              "baseline": {"w8a8": {"ppl": clean}}}]
    for comp, by_ber in cells.items():
        for ber, ppls in by_ber.items():
            for seed, ppl in enumerate(ppls):
                lines.append({"point": {"experiment": experiment, "metric": "ppl",
                                        "mode": "bitflip", "components": [comp], "layers": None,
                                        "stage": "prefill", "bits": [30, 30], "ber": ber,
                                        "seed": seed}, "ppl": ppl})
    lines += list(extra)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return str(path)


# A: clean 20, tolerance 5 % = 1.0. k within at 1e-6 and 1e-5 (equal seeds: no spread), beyond
# at 1e-4: resilient, tolerable 1e-5. o beyond from 1e-5: sensitive, tolerable 1e-6.
A = {"k": {1e-6: [20.2, 20.2], 1e-5: [20.5, 20.5], 1e-4: [25.0, 25.0]},
     "o": {1e-6: [20.0, 20.0], 1e-5: [30.0, 30.0], 1e-4: [40.0, 40.0]},
     "v": {1e-6: [20.0, 20.0]}}
# B: clean 40, tolerance 2.0. k at 1e-5: d 0.5 and 1.5, mean 1.0, half-width 12.706 · 0.7071 / √2
# = 6.353: unresolved (its mean is within); o within to 1e-5 (d = 1), beyond at 1e-4.
B = {"k": {1e-6: [40.0, 40.0], 1e-5: [40.5, 41.5], 1e-4: [50.0, 50.0]},
     "o": {1e-6: [40.0, 40.0], 1e-5: [41.0, 41.0], 1e-4: [60.0, 60.0]}}


def test_verdicts_side_by_side_hand_worked(tmp_path):
    other = {"point": {"experiment": "components", "metric": "ppl", "mode": "bitflip",
                       "components": ["k"], "layers": None, "stage": "prefill",
                       "bits": [0, 29], "ber": 1e-6, "seed": 0}, "ppl": 99.0}
    a = _results(tmp_path / "a.jsonl", "m-a", 20.0, A, extra=[other])  # other bits: left out
    b = _results(tmp_path / "b.jsonl", "m-b", 40.0, B)
    res = transfer.compare(a, b, rel=0.05)
    rows = {r["component"]: r for r in res["rows"]}
    assert list(rows) == ["k", "o"] and res["clean"] == (20.0, 40.0)   # v only in A
    k, o = rows["k"], rows["o"]
    assert (k["a"]["kind"], k["a"]["tolerable"], k["a"]["breaks"]) == ("resilient", 1e-5, 1e-4)
    assert (k["b"]["kind"], k["b"]["tolerable"], k["b"]["tolerable_mean"], k["b"]["breaks"],
            k["b"]["unresolved"]) == ("unresolved", 1e-6, 1e-5, 1e-4, [1e-5])
    assert abs(k["b"]["cells"][1e-5]["hi"] - (1.0 + 6.353)) < 1e-3
    assert (o["a"]["kind"], o["a"]["tolerable"], o["a"]["breaks"]) == ("sensitive", 1e-6, 1e-5)
    assert (o["b"]["kind"], o["b"]["tolerable"], o["b"]["breaks"]) == ("resilient", 1e-5, 1e-4)
    assert (k["transfers"], k["mean_steps"], o["transfers"], o["mean_steps"]) == (
        False, 0, False, 1)
    assert k["a"]["seeds"] == [2] and o["grid"] == [1e-6, 1e-5, 1e-4]
    assert k["a"]["tokens"] == [2044] and k["b"]["cells"][1e-5]["tokens"] == 2044
    # the same model against itself transfers everywhere
    assert all(r["transfers"] for r in transfer.compare(a, a, rel=0.05)["rows"])


def test_command_writes_table_and_json(tmp_path):
    a = _results(tmp_path / "a.jsonl", "m-a", 20.0, A)
    b = _results(tmp_path / "b.jsonl", "m-b", 40.0, B)
    r = realm("llm", "transfer", a, b, "--tolerance", "0.05", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "out" / "transfer.md").read_text()
    assert md in r.stdout and "| k | resilient / unresolved | 1e-05 / 1e-06 | 1e-05 / 1e-05 |" \
        in md and "| o | sensitive / resilient | 1e-06 / 1e-05 | 1e-06 / 1e-05 | 1e-05 / 0.0001" \
        in md
    doc = json.loads((tmp_path / "out" / "transfer.json").read_text())
    assert doc["names"] == ["m-a", "m-b"] and doc["rows"][0]["b"]["unresolved"] == [1e-5]
    assert doc["rows"][0]["b"]["cells"]["1e-05"]["verdict"] == "unresolved"


def test_bad_input_is_one_line(tmp_path):
    a = _results(tmp_path / "a.jsonl", "m-a", 20.0, A)
    for args, message in (
            ((a, tmp_path / "none.jsonl"), "none.jsonl"),
            ((a, a, "--experiment", "grid"), "has no point of experiment 'grid'"),
            ((a, a, "--names", "x,y,z"), "--names must name the two models, not 3")):
        r = realm("llm", "transfer", *args)
        assert r.returncode != 0 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_refinement_replaces_its_cells_judged_against_its_own_clean(tmp_path):
    """B's k at 1e-5 is unresolved on 4 windows; its second stage (16 windows: 8,176 tokens, a
    clean 40.2 of its own) gives 40.3 / 40.4: ΔPPL 0.15 ± 12.706 · 0.0707 / √2 = 0.635, below
    2.01 (5 % of 40.2): within. k of B is then resilient, tolerable 1e-5, as A's: it transfers.
    The refinement's 1e-4 cell (41.0 / 42.0) shows which clean and tolerance it is judged
    against: mean ΔPPL 1.3 and tolerance 2.01 (its own 40.2), not 1.5 and 2.0 (the main
    file's); 1.3 ± 6.35 is unresolved. Mutants: the main file's clean, the refinement ignored,
    the experiment's refinements not matched."""
    a = _results(tmp_path / "a.jsonl", "m-a", 20.0, A)
    b = _results(tmp_path / "b.jsonl", "m-b", 40.0, B)
    b2 = _results(tmp_path / "b2.jsonl", "m-b", 40.2, {"k": {1e-5: [40.3, 40.4],
                                                             1e-4: [41.0, 42.0]}},
                  windows=16, experiment="components@1")
    res = transfer.compare(a, b, rel=0.05, refined=(None, b2))
    k = {r["component"]: r for r in res["rows"]}["k"]["b"]
    assert k["cells"][1e-5]["verdict"] == "within" and k["cells"][1e-5]["tokens"] == 8176
    assert abs(k["cells"][1e-5]["hi"] - (0.15 + 0.635)) < 1e-3
    assert abs(k["cells"][1e-4]["mean"] - 1.3) < 1e-9   # 41.5 - 40.2, not - 40.0
    assert (k["cells"][1e-4]["verdict"], k["cells"][1e-4]["tolerance"]) == ("unresolved",
                                                                             0.05 * 40.2)
    assert k["cells"][1e-6]["tokens"] == 2044 and k["tokens"] == [2044, 8176]
    assert (k["kind"], k["tolerable"], k["breaks"], k["unresolved"]) == (
        "resilient", 1e-5, None, [1e-4])
    assert {r["component"]: r for r in res["rows"]}["k"]["transfers"]
    r = realm("llm", "transfer", a, b, "--tolerance", "0.05", "--refined-b", b2)
    assert r.returncode == 0 and "| 2044 / 2044-8176 |" in r.stdout, r.stderr
    assert "each judged against the refinement's own clean perplexity" in r.stdout
    assert "refinement" not in transfer.markdown(transfer.compare(a, b, rel=0.05))
    r = realm("llm", "transfer", a, b, "--refined-a", b2)
    assert r.returncode == 2 and "is a campaign of 'm-b', not of 'm-a'" in r.stderr


def test_refine_writes_one_experiment_per_decisive_cell(tmp_path):
    """From a verdicts file (hand-made rows): the unresolved cell, the open one and the one
    carried by one seed become experiments components@1..3 with the first campaign's settings
    and 16 windows; clear cells are left out; expanding the spec gives exactly those cells."""
    import csv

    from realm.campaign import adaptive
    from realm.campaign.refine import refine_spec
    from realm.campaign.spec import SpecError, expand
    res = tmp_path / "c.jsonl"
    settings = {"model": "m", "text": "wikitext-2:test", "windows": 4, "length": 512,
                "calib_text": "wikitext-2:valid", "calib_windows": 8, "calib_length": 512,
                "alpha": 0.5, "per_tensor": False, "smooth": True, "requant": None,
                "gen": {"prompts": 4, "prompt_len": 128, "new_tokens": 32}}
    res.write_text(json.dumps({"kind": "header", "settings": settings,
                               "baseline": {"w8a8": {"ppl": 26.0}}}) + "\n")

    def row(comp, ber, verdict, one_seed=False, bits=(30, 30), layers=None):
        cell = {"ber": ber, "bits": list(bits), "components": comp, "layers": layers,
                "mode": "bitflip", "stage": "prefill"}
        return {"experiment": "components", "cell": json.dumps(cell, sort_keys=True), "n": 2,
                "verdict": verdict, "one_seed": one_seed}
    rows = [row(["q"], 1e-6, "within"), row(["o"], 1e-5, "unresolved"),
            row(["k"], 1e-4, "beyond", one_seed=True), row(["down"], 1e-4, "beyond"),
            row(["q", "k"], 1e-3, "open", bits=(0, 29), layers=[0, 1])]
    with open(adaptive.verdicts_path(str(res)), "w", newline="") as f:
        w = csv.DictWriter(f, adaptive.FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    spec, picked = refine_spec(str(res), windows=16, rel=0.02, max_seeds=5, seeds=(0, 1))
    assert [r["cell"] for r in picked] == [rows[i]["cell"] for i in (1, 2, 4)]
    assert {k: spec[k] for k in ("windows", "length", "seeds", "model")} == {
        "windows": 16, "length": 512, "seeds": [0, 1], "model": "m"}
    assert [e["name"] for e in spec["experiments"]] == [
        "components@1", "components@2", "components@3"]
    assert spec["experiments"][2] == {
        "name": "components@3", "mode": "bitflip", "components": [["q", "k"]],
        "layers": [[0, 1]], "stages": ["prefill"], "bits": [[0, 29]], "bers": [1e-3],
        "adaptive": {"tolerance": {"rel": 0.02}, "max_seeds": 5}}
    shape = (["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"], 2,
             {"q": 64, "k": 64, "v": 64, "o": 64, "gate": 128, "up": 128, "down": 64}, 2, 32)
    st, points = expand(spec, shape=shape)
    assert st["windows"] == 16 and len(points) == 6   # 3 cells x 2 seeds
    got = sorted({adaptive.cell_key({k: v for k, v in p.items() if k not in (
        "experiment", "metric")}) for p in points})
    assert got == sorted(r["cell"] for r in picked)
    with pytest.raises(SpecError, match="not more than the campaign's 4"):
        refine_spec(str(res), windows=4)
    r = realm("llm", "refine", res, "--out", tmp_path / "s.json")
    assert r.returncode == 0 and "3 decisive cells" in r.stdout, r.stderr
    assert "1 beyond, carried by one seed, 1 open, 1 unresolved" in r.stdout
