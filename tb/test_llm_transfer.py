"""``realm llm transfer`` (realm/llm/transfer.py): component verdicts of two models side by side,
on hand-made results files whose verdicts are worked out by hand, and the command's files and
one-line errors."""
import json

from realm.llm import transfer
from tb.cli_fixtures import realm


def _results(path, model, clean, cells, extra=()):
    """A results file: header, then per (component, BER) one record per seed's perplexity."""
    lines = [{"kind": "header", "settings": {"model": model},
              "baseline": {"w8a8": {"ppl": clean}}}]
    for comp, by_ber in cells.items():
        for ber, ppls in by_ber.items():
            for seed, ppl in enumerate(ppls):
                lines.append({"point": {"experiment": "components", "metric": "ppl",
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
