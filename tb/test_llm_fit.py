"""Critical-region fit (``realm.abft.fit``): on grids whose critical cells come from a known
region, the fitted rule classifies every cell as the region does; sensitive components get
theta_freq = 0; the GEMM-to-tile rescaling matches the authors' (their ``recompute_ratio.py``); and
the tile
parameters, run through ``golden.stats.decide`` on tiles of equal errors, recompute exactly the
tile-domain image of the critical cells."""
import math

import pytest

from golden.params import read_params
from golden.stats import decide
from realm.abft import fit
from realm.abft import loop as abft
from tb.cli_fixtures import realm

XS, YS = range(14, 31, 2), range(0, 15, 2)


def _grid(a, b, theta, sensitive=False):
    lo = -1 if sensitive else theta
    return {(x, y): (0.0, lo < y < a * x - b) for x in XS for y in YS}


@pytest.mark.parametrize("a, b, theta, sensitive", [
    (1.273, 20.076, 5.951, False),  # the authors' K parameters
    (1.44, 24.0, 7.5, False),       # Fig. 6, resilient panel (read off the figure)
    (1.55, 25.4, 0.0, True),        # Fig. 6, sensitive panel
    (2.0, 30.0, 3.0, False),
])
def test_fit_reproduces_the_region_on_the_grid(a, b, theta, sensitive):
    grid = _grid(a, b, theta, sensitive)
    f = fit.fit_component(grid)
    assert f["sensitive"] == sensitive and f["missed"] == 0 and f["false"] == 0
    lo = -1 if f["sensitive"] else f["theta_freq"]
    got = {k: lo < k[1] < f["a"] * k[0] - f["b"] for k in grid}
    assert got == {k: c for k, (_, c) in grid.items()}
    assert f["critical"] == sum(c for _, c in grid.values()) > 0
    if not sensitive:  # half a step below the lowest critical row
        assert f["theta_freq"] == min(y for (x, y), (_, c) in grid.items() if c) - 1


def test_fit_without_critical_cells_never_recomputes():
    f = fit.fit_component({(x, y): (26.0, False) for x in XS for y in YS})
    assert f["b"] == fit.B_MAX and f["critical"] == 0


def test_cells_mean_over_seeds_and_tolerances():
    recs = [{"point": {"mode": "msd", "components": ["k"], "msd_log2": 20, "freq_log2": 4},
             "ppl": v} for v in (26.2, 26.5)]
    recs.append({"point": {"mode": "bitflip", "components": ["k"]}, "ppl": 99.0})
    assert fit.cells(recs, 26.0) == {"k": {(20, 4): (26.35, True)}}
    assert fit.cells(recs, 26.0, tol=0.4) == {"k": {(20, 4): (26.35, False)}}
    assert fit.cells(recs, 26.0, rel=0.01) == {"k": {(20, 4): (26.35, True)}}  # limit 26.26
    assert fit.cells(recs, 26.0, rel=0.02) == {"k": {(20, 4): (26.35, False)}}  # limit 26.52


def test_resolved_rule_keeps_only_cells_whose_interval_is_clear_of_the_limit():
    """Hand-worked 95 % t intervals (t(1) = 12.706) against clean 26.0 + 0.3: seeds 26.10 / 26.12
    give ΔPPL 0.11 ± 0.127 (within), 26.2 / 26.5 give 0.35 ± 1.906 (straddles: unresolved),
    27.0 / 27.02 give 1.01 ± 0.127 (beyond), 27.0 / 27.2 give 1.1 ± 1.271 (unresolved), one
    seed cannot be judged, and a diverged seed (ppl None) is beyond whatever the other did.
    Mutants: the interval replaced by the mean, None read as critical or as clean."""
    def rec(y, ppl):
        return {"point": {"mode": "msd", "components": ["k"], "msd_log2": 20, "freq_log2": y},
                "ppl": ppl}
    recs = [rec(0, 26.1), rec(0, 26.12), rec(2, 26.2), rec(2, 26.5), rec(4, 27.0),
            rec(4, 27.02), rec(6, 30.0), rec(8, None), rec(8, 26.0), rec(10, 27.0),
            rec(10, 27.2)]
    got = fit.cells(recs, 26.0, rule="resolved")["k"]
    assert {k: c for k, (_, c) in got.items()} == {
        (20, 0): False, (20, 2): None, (20, 4): True, (20, 6): None, (20, 8): True,
        (20, 10): None}
    assert got[(20, 2)][0] == pytest.approx(26.35) and got[(20, 8)][0] == math.inf
    by_mean = fit.cells(recs, 26.0)["k"]
    assert {k: c for k, (_, c) in by_mean.items()} == {
        (20, 0): False, (20, 2): True, (20, 4): True, (20, 6): True, (20, 8): True,
        (20, 10): True}
    with pytest.raises(ValueError, match="rule must be"):
        fit.cells(recs, 26.0, rule="median")


def test_unresolved_cells_neither_place_the_lines_nor_count_as_false():
    """The region 7 < y < 1.5 x - 22 with two cells unresolved: one in the bottom row (were it
    critical, the component would be sensitive) and one inside the region, off its boundary
    (were it clean, every slope would recompute it falsely). The fit is the full region's, with
    ``unresolved`` 2 and one critical cell fewer."""
    full = _grid(1.5, 22.0, 7.0)
    assert full[(30, 0)] == (0.0, False) and full[(30, 10)] == (0.0, True)
    grid = {**full, (30, 0): (0.0, None), (30, 10): (0.0, None)}
    ref = fit.fit_component(full)
    want = {**ref, "unresolved": 2, "critical": ref["critical"] - 1}
    assert fit.fit_component(grid) == want
    assert want["sensitive"] is False and want["false"] == 0 and want["theta_freq"] == 7.0
    assert ref["unresolved"] == 0


def test_tile_rescaling_matches_the_authors():
    """2048 x 2048 output on a 256 x 256 OS array: 64 tiles, s = 6 (the authors' tile rule)."""
    config = abft.parse_array("256x256-os")
    f = {"a": 1.273, "b": 20.076, "theta_freq": 5.951, "sensitive": False}
    p, info = fit.tile_params(f, config, (1, 2048, 2048, 2048))
    assert info["units_per_call"] == 64
    assert info["b_tile"] == pytest.approx(20.076 - 6 * 0.273, abs=1e-4)
    assert info["theta_freq_tile"] == pytest.approx(5.951 - 6, abs=1e-4)
    assert p.freq_th == 0 and p.am1 == round(0.273 * 256) and p.b_q == round(18.438 * 256)


@pytest.mark.parametrize("sensitive", [False, True])
def test_tile_params_decide_the_rescaled_region(sensitive):
    """GEMM 64x64x64 on a 16x16 OS array: 16 tiles, s = 4. A tile carrying 2^(y-4) errors of
    2^(x-y) each (the grid cell (x, y) spread over the tiles) is recomputed by decide() exactly
    when the cell is critical."""
    config = abft.parse_array("16x16-os")
    a, b, theta = (1.5, 26.0, 0.0) if sensitive else (1.5, 22.0, 7.0)
    grid = _grid(a, b, theta, sensitive)
    f = fit.fit_component(grid)
    p, info = fit.tile_params(f, config, (1, 64, 64, 64))
    assert info["units_per_call"] == 16
    checked = 0
    for (x, y), (_, crit) in grid.items():
        if y < 4 or x - y < 0 or y - 4 > math.log2(config.cols):
            continue  # fewer than one error per tile, or more than a tile's columns
        d = [1 << (x - y)] * (1 << (y - 4)) + [0] * (config.cols - (1 << (y - 4)))
        assert decide(d, p).flag_realm == crit, (x, y)
        checked += 1
    assert checked >= 20


def test_fit_cli_writes_parameter_files(tmp_path):
    """``realm llm fit`` on a grid file whose critical cells come from a known
    region (two components, one of them still incomplete): fit.json, the Fig. 6 plot, and a
    parameter file per array whose sets are the fit rescaled by hand-counted tiles."""
    import csv
    import json

    from golden.params import StatParams
    from realm.llm.tiny import tiny_model_dir

    tiny = tiny_model_dir(str(tmp_path / "tiny"), layers=2)
    grid = tmp_path / "grid.jsonl"
    a, b, theta = 1.5, 22.0, 7.0
    lines = [{"kind": "header", "settings": {"model": tiny, "length": 32},
              "baseline": {"w8a8": {"ppl": 20.0}}}]
    for x in XS:
        for y in YS:
            crit = theta < y < a * x - b
            lines.append({"point": {"experiment": "g", "mode": "msd", "components": ["q"],
                                    "msd_log2": x, "freq_log2": y, "seed": 0},
                          "ppl": 25.0 if crit else 20.1})
            if x < 20:  # 'o' is still running: not fitted
                lines.append({"point": {"experiment": "g", "mode": "msd", "components": ["o"],
                                        "msd_log2": x, "freq_log2": y, "seed": 0}, "ppl": 20.0})
    grid.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = tmp_path / "params"
    r = realm("llm", "fit", grid, "--arrays", "16x16-ws,5x7-os", "--out-dir", out,
              "--rule", "mean")
    assert r.returncode == 0, r.stderr
    assert "incomplete grids, not fitted: o" in r.stdout
    f = json.loads((out / "fit.json").read_text())["fits"]
    assert set(f) == {"q"} and f["q"]["theta_freq"] == 7.0 and f["q"]["false"] == 0
    assert (out / "critical_region.png").stat().st_size > 1000
    # q of the tiny model: M = 32 tokens, K = N = 64. 16x16 WS: 4 N x 4 K x 2 M-chunks = 32
    # tiles (s = 5); 5x7 OS: 7 M x 10 N = 70 tiles
    for arr, units in (("16x16-ws", 32), ("5x7-os", 70)):
        sets = read_params(str(out / f"{arr}.json"), abft.parse_array(arr), ["q"])
        s = math.log2(units)
        fa, fb = f["q"]["a"], f["q"]["b"]
        want = StatParams.from_paper(fa, fb - (fa - 1) * s, max(0.0, 7.0 - s),
                                     sensitive=7.0 - s < 0)
        assert sets["q"] == (0, want)
    # granularity.csv: per array the tile's threshold, 7 - log2(units), and the unit's integer
    with open(out / "granularity.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["component"], r["array"], int(r["units_per_call"])) for r in rows] == [
        ("q", "16x16-ws", 32), ("q", "5x7-os", 70)]
    for r in rows:
        theta = 7.0 - math.log2(int(r["units_per_call"]))
        assert float(r["theta_freq_tile_log2"]) == pytest.approx(theta, abs=1e-3)
        assert float(r["theta_freq_gemm_log2"]) == 7.0
        th = read_params(str(out / f"{r['array']}.json"), abft.parse_array(r["array"]),
                         ["q"])["q"][1].freq_th
        assert int(r["freq_th"]) == th and r["tolerates_a_significant_error"] == str(int(th > 0))


def test_abs_msd_sees_errors_that_cancel_in_the_signed_sum():
    """Two bit-30 errors of opposite sign in one tile: the signed MSD is 0, so θ = b and the
    statistical rule (and the MSD threshold) tolerate them; summing magnitudes (msd_mode 1,
    ``fit --msd-mode abs``) flags the tile. One such error alone is flagged either way."""
    config = abft.parse_array("16x16-os")
    f = {"a": 2.0, "b": 39.0, "theta_freq": 0.0, "sensitive": True}
    signed, _ = fit.tile_params(f, config, (1, 64, 64, 64))
    mag, _ = fit.tile_params(f, config, (1, 64, 64, 64), msd_mode=1)
    assert (signed.msd_mode, mag.msd_mode) == (0, 1)
    assert (signed.am1, signed.b_q, signed.freq_th) == (mag.am1, mag.b_q, mag.freq_th)
    pair = [1 << 30, -(1 << 30)] + [0] * 14
    one = [1 << 30] + [0] * 15
    assert not decide(pair, signed).flag_realm and not decide(pair, signed).flag_approx
    assert decide(pair, mag).flag_realm and decide(pair, mag).flag_approx
    assert decide(one, signed).flag_realm and decide(one, mag).flag_realm
