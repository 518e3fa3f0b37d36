"""Adaptive seeds (realm/campaign/stats.py, realm/campaign/adaptive.py): the t quantiles against
the textbook table, cell verdicts against hand-worked intervals, the next round's points from
hand-made records, the spec's one-line errors, and a campaign on a tiny model that adds a seed
to the cell whose interval straddles the tolerance and to no other."""
import csv
import json
import math
import os

import pytest

from realm.campaign import adaptive
from realm.campaign import runner as campaign
from realm.campaign.spec import SpecError, expand
from realm.campaign.stats import mean_ci, t975, verdict
from realm.llm.tiny import tiny_model_dir
from tb.cli_fixtures import realm


def test_t_quantiles():
    """Textbook t(0.975, df) (df 11 and 14 were read as df 15's 2.131 before: anti-conservative);
    past 30 within 1e-3 of the exact quantiles 2.0211 (40), 2.0003 (60), 1.9799 (120)."""
    assert [t975(d) for d in (1, 2, 11, 14, 29, 30)] == [12.706, 4.303, 2.201, 2.145, 2.045,
                                                         2.042]
    for df, exact in ((40, 2.0211), (60, 2.0003), (120, 1.9799), (10 ** 6, 1.95997)):
        assert abs(t975(df) - exact) < 1e-3
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            t975(bad)


def test_verdicts_hand_worked():
    """Two seeds 0.1 and 0.3: mean 0.2, s = 0.1414, half-width 12.706 · 0.1414 / √2 = 1.2706,
    so [-1.0706, 1.4706] straddles 0.44: open below the cap, unresolved at it."""
    v = verdict([0.1, 0.3], 0.44, cap=8)
    assert v["verdict"] == "open" and v["n"] == 2
    assert v["lo"] == pytest.approx(-1.0706, abs=1e-4) and v["hi"] == pytest.approx(1.4706,
                                                                                   abs=1e-4)
    assert v["median"] == pytest.approx(0.2) and (v["min"], v["max"]) == (0.1, 0.3)
    assert verdict([0.1, 0.3], 0.44, cap=2)["verdict"] == "unresolved"
    assert verdict([0.0, 0.0], 0.44, cap=8)["verdict"] == "within"      # [0, 0]
    assert verdict([1.0, 1.0], 0.44, cap=8)["verdict"] == "beyond"      # [1, 1]
    assert verdict([0.44, 0.44], 0.44, cap=8)["verdict"] == "within"    # the edge is within
    # three seeds 0.2, 0.3, 0.4: s = 0.1, df 2, half 4.303 · 0.1 / √3 = 0.24843
    # -> [0.05157, 0.54843]
    v = verdict([0.2, 0.3, 0.4], 0.55, cap=3)
    assert v["verdict"] == "within" and v["hi"] == pytest.approx(0.54843, abs=1e-5)
    assert verdict([0.2, 0.3, 0.4], 0.5, cap=3)["verdict"] == "unresolved"
    # the interval's lower end exactly at the tolerance still straddles it (beyond needs lo > tol)
    lo = verdict([0.1, 0.3], 0.0, cap=8)["lo"]
    assert verdict([0.1, 0.3], lo, cap=8)["verdict"] == "open"
    # one seed: no interval
    one = verdict([0.1], 0.44, cap=4)
    assert one["verdict"] == "open" and one["lo"] is None


def test_one_seed_carries_and_infinite_seeds():
    """Down at 1e-5 (26.54 / 26.37 / 98.68 against a clean 26.14): the mean is beyond 0.44 only
    because of the third seed; an infinite or NaN perplexity makes the cell beyond."""
    d = [26.54 - 26.14, 26.37 - 26.14, 98.68 - 26.14]
    v = verdict(d, 0.44, cap=8)
    assert v["mean"] == pytest.approx(24.39, abs=1e-2) and v["median"] == pytest.approx(0.40)
    assert v["verdict"] == "open" and v["one_seed"] is True
    assert verdict([0.1, 0.2, 0.3], 0.44, cap=8)["one_seed"] is False
    assert verdict([0.1, 1.0], 0.44, cap=8)["one_seed"] is True     # 0.55: beyond; 0.1 alone not
    for bad in (math.inf, math.nan):
        v = verdict([0.1, bad], 0.44, cap=8)
        assert v["verdict"] == "beyond" and v["mean"] == math.inf and v["one_seed"] is True
    assert mean_ci([1.0, math.inf]) == (math.inf, None)


def _pt(ber, seed):
    return {"experiment": "e", "metric": "ppl", "mode": "bitflip", "components": ["k"],
            "layers": None, "stage": "prefill", "bits": [30, 30], "ber": ber, "seed": seed}


def _rec(ber, seed, ppl):
    return {"point": _pt(ber, seed), "ppl": ppl}


def test_next_round_hand_made():
    """Clean 26.0, tolerance 0.44 absolute, cap 3. Cell 1e-6: 26.1 / 26.1 (within: no seed);
    1e-5: 26.1 / 26.7 (straddles: seed 2); 1e-4: only seed 0 ran (waits for seed 1); 1e-3:
    27 / 27 (beyond). With seed 2 of 1e-5 at 26.4 the cell has 3 seeds = the cap: no more."""
    points = [_pt(b, s) for b in (1e-6, 1e-5, 1e-4, 1e-3) for s in (0, 1)]
    recs = [_rec(1e-6, 0, 26.1), _rec(1e-6, 1, 26.1), _rec(1e-5, 0, 26.1), _rec(1e-5, 1, 26.7),
            _rec(1e-4, 0, 26.0), _rec(1e-3, 0, 27.0), _rec(1e-3, 1, 27.0)]
    done = {json.dumps(r["point"], sort_keys=True): r for r in recs}
    rule = {"e": ({"abs": 0.44}, 3)}
    assert adaptive.next_points(points, done, 26.0, rule) == [_pt(1e-5, 2)]
    r = _rec(1e-5, 2, 26.4)
    done[json.dumps(r["point"], sort_keys=True)] = r
    assert adaptive.next_points(points, done, 26.0, rule) == []
    rows = {json.loads(x["cell"])["ber"]: x for x in adaptive.verdict_rows(points, done, 26.0,
                                                                           rule)}
    assert {b: x["verdict"] for b, x in rows.items()} == {
        1e-6: "within", 1e-5: "unresolved", 1e-4: "open", 1e-3: "beyond"}
    assert rows[1e-5]["seeds"] == "0 1 2" and rows[1e-5]["n"] == 3
    # relative tolerance: 0.0167 x 26.0 = 0.4342
    assert adaptive.tolerance({"rel": 0.0167}, 26.0) == pytest.approx(0.4342)
    assert adaptive.next_points(points, done, 26.0, {"other": ({"abs": 0.44}, 3)}) == []


@pytest.mark.parametrize("rule,msg", [
    ({"tolerance": {"abs": 0.3}}, "must be an object with 'tolerance' and 'max_seeds'"),
    ({"tolerance": {"abs": 0}, "max_seeds": 4}, "tolerance must be"),
    ({"tolerance": {"pct": 1}, "max_seeds": 4}, "tolerance must be"),
    ({"tolerance": {"rel": 0.01}, "max_seeds": 1}, "max_seeds must be an integer >= the "
                                                   "experiment's seeds and >= 2, not 1"),
    ({"tolerance": {"rel": 0.01}, "max_seeds": 4, "x": 1}, "must be an object"),
])
def test_bad_rules_are_one_line(rule, msg):
    spec = {"seeds": [0, 1, 2], "experiments": [{"name": "e", "bers": [1e-3], "adaptive": rule}]}
    with pytest.raises(SpecError, match="experiment 'e': adaptive") as e:
        adaptive.rules(spec)
    assert msg in str(e.value) and "\n" not in str(e.value)
    spec["experiments"][0].update(metric="gen", adaptive={"tolerance": {"abs": 1},
                                                          "max_seeds": 4})
    with pytest.raises(SpecError, match="needs metric 'ppl'"):
        adaptive.rules(spec)


def test_campaign_adds_seeds_where_the_verdict_is_open(tmp_path):
    """A tiny model: the clean cell (BER 0) and a noisy cell. The tolerance is set to the noisy
    cell's own mean over seeds 0 and 1, so its interval straddles it: the campaign adds seed 2
    to that cell alone, then stops at the cap of 3, and writes the verdicts."""
    tiny = tiny_model_dir(str(tmp_path / "tiny"))
    base = {"model": tiny, "text": os.path.join(tiny, "text.txt"),
            "calib_text": os.path.join(tiny, "text.txt"), "windows": 2, "length": 32,
            "calib_windows": 2, "calib_length": 32, "seeds": [0, 1]}
    exp = {"name": "a", "components": ["down"], "bits": [[0, 29]], "bers": [0, 1e-2]}
    out = tmp_path / "r.jsonl"
    assert campaign.run({**base, "experiments": [exp]}, str(out), progress=False,
                        compile=False) == 4
    header, done = campaign.read_results(str(out))
    clean = header["baseline"]["w8a8"]["ppl"]
    noisy = [r["ppl"] for r in done.values() if r["point"]["ber"] > 0]
    assert len(set(noisy)) == 2, noisy          # the seeds differ, so the interval has width
    tol = sum(noisy) / 2 - clean
    spec = {**base, "experiments": [{**exp, "adaptive": {"tolerance": {"abs": tol},
                                                         "max_seeds": 3}}]}
    expand(spec)
    assert campaign.run(spec, str(out), progress=False, compile=False) == 1
    _, done = campaign.read_results(str(out))
    seeds = sorted((r["point"]["ber"], r["point"]["seed"]) for r in done.values())
    assert seeds == [(0, 0), (0, 1), (1e-2, 0), (1e-2, 1), (1e-2, 2)]
    with open(adaptive.verdicts_path(str(out))) as f:
        rows = {json.loads(r["cell"])["ber"]: r for r in csv.DictReader(f)}
    d = [r["ppl"] - clean for r in done.values() if r["point"]["ber"] > 0]
    want = verdict(d, tol, 3)["verdict"]
    assert want in ("within", "beyond", "unresolved")
    assert (rows[0]["verdict"], rows[1e-2]["verdict"], rows[1e-2]["n"]) == ("within", want, "3")
    sp = tmp_path / "spec.json"
    sp.write_text(json.dumps(spec))
    r = realm("llm", "campaign", sp, "--out", out, "--workers", "1", "--no-compile",
              "--no-progress")
    code, stdout = r.returncode, r.stdout
    counts = {v: [r["verdict"] for r in rows.values()].count(v) for v in ("within", "beyond",
                                                                         "unresolved")}
    assert code == 0 and stdout.splitlines()[0].startswith("0 points run")
    assert (f"verdicts of 2 adaptive cells: {counts['within']} within, {counts['beyond']} beyond, "
            f"{counts['unresolved']} unresolved (") in stdout


def test_rules_and_rounds_edge_cases():
    """Kills make mutate's survivors in the rules and rounds: the seed count the cap must cover
    (the experiment's own seeds, else the spec's, else one), an unnamed experiment's name in
    the error, a later experiment's rule still checked, a spec without experiments, a relative
    tolerance through a round, a record without a perplexity (an exploded pass) as beyond, and
    a waiting cell before an open one not stopping the round."""
    from realm.campaign.spec import adaptive_rules

    rule = {"tolerance": {"rel": 0.01}, "max_seeds": 2}
    with pytest.raises(SpecError, match="experiment 'e': adaptive max_seeds must be .* not 2"):
        adaptive_rules({"seeds": [0, 1, 2], "experiments": [{"name": "e", "adaptive": rule}]})
    with pytest.raises(SpecError, match="experiment 'e': adaptive max_seeds .* not 2"):
        adaptive_rules({"experiments": [{"name": "e", "seeds": [0, 1, 2], "adaptive": rule}]})
    assert adaptive_rules({"seeds": [0, 1, 2], "experiments": [
        {"name": "e", "seeds": [4, 5], "adaptive": rule}]}) == {"e": ({"rel": 0.01}, 2)}
    assert adaptive_rules({"experiments": [{"adaptive": rule}]}) == {"exp0": ({"rel": 0.01}, 2)}
    with pytest.raises(SpecError, match="^experiment 'exp1': adaptive tolerance"):
        adaptive_rules({"experiments": [{"bers": [0]}, {"adaptive": {**rule,
                                                                     "tolerance": {"rel": -1}}}]})
    assert adaptive_rules({}) == {}
    # a waiting cell (1e-6: seed 1 missing) listed before an open one (1e-5); a relative
    # tolerance of 0.02 x 26.0 = 0.52; 1e-4's seed 1 exploded (no perplexity): beyond
    points = [_pt(b, s) for b in (1e-6, 1e-5, 1e-4) for s in (0, 1)]
    recs = [_rec(1e-6, 0, 26.1), _rec(1e-5, 0, 26.1), _rec(1e-5, 1, 26.9), _rec(1e-4, 0, 26.0),
            {"point": _pt(1e-4, 1), "ppl": None}]
    done = {json.dumps(r["point"], sort_keys=True): r for r in recs}
    rel = {"e": ({"rel": 0.02}, 4)}
    assert adaptive.next_points(points, done, 26.0, rel) == [_pt(1e-5, 2)]
    rows = {json.loads(r["cell"])["ber"]: r for r in adaptive.verdict_rows(points, done, 26.0,
                                                                          rel)}
    assert rows[1e-5]["tolerance"] == pytest.approx(0.52) and rows[1e-5]["verdict"] == "open"
    assert rows[1e-4]["verdict"] == "beyond" and rows[1e-4]["max"] == math.inf


def test_verdicts_file_hand_worked(tmp_path):
    """Every column of the verdicts CSV for the hand-made cells of test_next_round_hand_made
    once 1e-5 has its third seed: d = 0.1, 0.7, 0.4 -> mean 0.4, s 0.3, half-width
    4.303 · 0.3 / √3 = 0.74533, median 0.4, unresolved at the cap of 3, and carried by one seed
    (without 0.1 the mean is 0.55 > 0.44); the tally counts each verdict once."""
    points = [_pt(b, s) for b in (1e-6, 1e-5, 1e-4, 1e-3) for s in (0, 1)]
    recs = [_rec(1e-6, 0, 26.1), _rec(1e-6, 1, 26.1), _rec(1e-5, 0, 26.1), _rec(1e-5, 1, 26.7),
            _rec(1e-5, 2, 26.4), _rec(1e-4, 0, 26.0), _rec(1e-3, 0, 27.0), _rec(1e-3, 1, 27.0)]
    done = {json.dumps(r["point"], sort_keys=True): r for r in recs}
    path = tmp_path / "r.verdicts.csv"
    tally = adaptive.write_verdicts(
        adaptive.verdict_rows(points, done, 26.0, {"e": ({"abs": 0.44}, 3)}), path)
    assert tally == {"within": 1, "unresolved": 1, "open": 1, "beyond": 1, "one_seed": 1}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(adaptive.FIELDS)
    r = next(x for x in rows if json.loads(x["cell"])["ber"] == 1e-5)
    assert json.loads(r["cell"]) == {"ber": 1e-5, "bits": [30, 30], "components": ["k"],
                                     "layers": None, "mode": "bitflip", "stage": "prefill"}
    got = {k: float(r[k]) for k in ("mean", "lo", "hi", "median", "min", "max", "tolerance")}
    want = {"mean": 0.4, "lo": 0.4 - 0.74533, "hi": 0.4 + 0.74533, "median": 0.4, "min": 0.1,
            "max": 0.7, "tolerance": 0.44}
    assert got == pytest.approx(want, abs=1e-4)
    assert (r["experiment"], r["n"], r["seeds"], r["verdict"], r["one_seed"]) == (
        "e", "3", "0 1 2", "unresolved", "True")
    assert adaptive.verdicts_path("a/b/campaign.jsonl") == "a/b/campaign.verdicts.csv"


def test_rests_on_reads_seeds_tokens_model_granularity_and_verdicts():
    """realm.campaign.provenance.rests_on on hand-made records: 3 windows x 101 tokens score
    300; cell A (o, bit 30, two seeds 20.1 / 20.1: ΔPPL 0.1 ± 0) within 0.5, cell B (o, bits
    0-29, 20.0 / 21.0: 0.5 ± 6.353) unresolved, cell C (k on 8x8-ws, one diverged seed and
    three more) beyond; seeds 2-4 with one cell above 2; the header's environment; a DMR point
    (no ppl) is no cell. With a verdicts file's rows, their tally instead. Mutants: any part
    left out or miscounted."""
    from realm.campaign.provenance import rests_on

    def rec(seed, ppl, **p):
        point = {"experiment": "e", "mode": "bitflip", "components": ["o"], "bits": [30, 30],
                 "ber": 1e-4, "seed": seed, **p}
        return {"point": point, "ppl": ppl} if ppl != "none" else {"point": point}
    recs = [rec(0, 20.1), rec(1, 20.1), rec(0, 20.0, bits=[0, 29]), rec(1, 21.0, bits=[0, 29])]
    recs += [rec(s, v, components=["k"], array="8x8-ws", policy="none")
             for s, v in enumerate([None, 20.0, 20.0, 20.0])]
    recs.append(rec(0, "none", components=["k"], array="8x8-ws", policy="dmr"))
    header = {"settings": {"model": "m", "text": "t.txt", "windows": 3, "length": 101},
              "baseline": {"w8a8": {"ppl": 20.0}},
              "env": {"torch": "9.9", "transformers": "8.8", "cpu_capability": "X",
                      "device": "cpu"}}
    assert rests_on(header, recs, tol=0.5) == (
        "**Rests on**: model m, 3 × 101-token windows of t.txt (300 scored tokens per point); "
        "3 cells, 2–4 seeds per cell (1 of 3 cells got more than 2); error model: bit flips in "
        "bit 30; bit flips in a uniform bit of 0–29; granularity: decided per tile of 8x8-ws; "
        "verdicts (95 % t interval of each cell's ΔPPL against 0.5; unresolved: it straddles): "
        "1 within, 1 beyond, 1 unresolved; environment: torch 9.9, transformers 8.8, CPU "
        "kernels X.")
    rows = [{"verdict": "within", "one_seed": "False"}, {"verdict": "open", "one_seed": "True"}]
    got = rests_on({"settings": {}}, recs[:2], verdicts=rows)
    assert got == (
        "**Rests on**: 1 cells, 2 seeds per cell; error model: bit flips in bit 30; granularity: "
        "no ABFT decisions (errors per GEMM call); verdicts (adaptive seeds, 95 % t interval of "
        "ΔPPL against the tolerance): 1 within, 0 beyond, 0 unresolved, 1 open, 1 carried by "
        "one seed; environment: not recorded (the file predates its record).")
    assert rests_on({"settings": {}}, recs[:2]).endswith(
        "no verdicts here: each cell is the mean ± 95 % t interval of its seeds; environment: "
        "not recorded (the file predates its record).")
