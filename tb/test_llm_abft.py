"""Statistical ABFT in the loop of the W8A8 model (``realm.abft.loop``) on a tiny LLaMA: classic
ABFT with recovery gives logits bit-identical to the clean model, a policy that tolerates
everything gives the unprotected injected logits, every decision equals ``golden.stats.decide``
on differences formed independently from the accumulators, the recompute counts add up, and
parameter files round-trip with one-line errors for files that do not fit."""
import copy
import json
import math

import pytest
import torch

from golden.arith import wrap
from golden.params import ParamsError, StatParams, read_params, write_params
from golden.stats import decide
from golden.tiler import Tiling
from realm.abft import loop as abft
from realm.abft import report as abft_report
from realm.llm import inject
from realm.llm.tiny import tiny_model_dir
from tb import llm_fixtures
from tb.cli_fixtures import realm

COMPS = ["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"]
ARRAYS = ["16x16-ws", "5x7-os", "3x5-ws", "8x8-os"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return llm_fixtures.tiny_quantized(str(tmp_path_factory.mktemp("llm") / "tiny"), 3, 2, 40)


def _params(**kw):
    """The authors' K parameters (their ``recompute_ratio.py``) for every component, in hardware
    units."""
    p = StatParams.from_paper(1.273, 20.076 - 9 * 0.273, 0.0, **kw)
    return {c: p for c in COMPS}


def _base(seed, ber=3e-3, bits=(0, 31)):
    return inject.Injector("bitflip", COMPS, ber=ber, bits=bits, seed=seed)


@pytest.mark.parametrize("array", ARRAYS)
def test_classic_recovery_is_clean_and_none_is_unprotected(tiny, array):
    m, rt, w = tiny
    config = abft.parse_array(array)
    clean = llm_fixtures.window_logits(m, rt, w, None)
    for seed in range(3):
        unprot = llm_fixtures.window_logits(m, rt, w, _base(seed))
        classic = abft.AbftInjector(_base(seed), config, "classic", _params(), rt)
        got = llm_fixtures.window_logits(m, rt, w, classic)
        s = classic.stats
        assert s["errors"] > 20 and s["tiles_aliased"] == 0
        assert s["tiles_recomputed"] == s["tiles_mismatch"] == s["flag_classic"] > 0
        assert s["errors_kept"] == 0
        assert torch.equal(got, clean)
        assert not torch.equal(unprot, clean)
        none = abft.AbftInjector(_base(seed), config, "none", _params(), rt)
        assert torch.equal(llm_fixtures.window_logits(m, rt, w, none), unprot)
        assert none.stats["errors_kept"] == none.stats["errors"] > 0
        assert none.stats["tiles_recomputed"] == none.stats["macs_recomputed"] == 0
        # a statistical policy that can never fire (freq_th above any count) keeps every error
        lax = _params(msd_th=(1 << 40) - 1)
        lax = {c: p.__class__(**{**p.__dict__, "freq_th": 1 << 20}) for c, p in lax.items()}
        for pol in ("realm", "approx"):
            inj = abft.AbftInjector(_base(seed), config, pol, lax, rt)
            assert torch.equal(llm_fixtures.window_logits(m, rt, w, inj), unprot)
            assert inj.stats["errors_kept"] == inj.stats["errors"]


@pytest.mark.parametrize("array", ["5x7-os", "8x8-os"])
def test_decisions_equal_decide_on_independent_differences(tiny, array):
    """OS tiles: each tile's d is the column sum of (faulty - clean) over the tile's rows,
    computed here from the accumulators; the loop's decisions and recovered errors follow."""
    m, rt, w = tiny
    config = abft.parse_array(array)
    calls = []

    class Capture:
        def __init__(self, inner):
            self.inner, self.count = inner, 0

        def may_fault(self, *a):
            return self.inner.may_fault(*a)

        def __call__(self, c, layer, call, stage, window, acc):
            kept = self.inner(c, layer, call, stage, window, acc)
            calls.append((c, acc.clone(), rt.k, copy.deepcopy(base_hit[-1]), kept))
            return kept

    base_hit = []

    class Base(inject.Injector):
        def __call__(self, *a):
            h = super().__call__(*a)
            base_hit.append(h)
            return h

    params = _params()
    inj = abft.AbftInjector(Base("bitflip", COMPS, ber=2e-3, bits=(10, 29), seed=7), config,
                            "realm", params, rt)
    inj.record = True
    llm_fixtures.window_logits(m, rt, w, Capture(inj))
    decisions = iter(inj.decisions)
    n_tiles = flagged = 0
    for comp, acc, k, hit, kept in calls:
        if hit is None:
            continue
        idx, new = hit
        faulty = acc.clone().reshape(-1)
        faulty[idx] = new
        err = faulty.long() - acc.reshape(-1).long()
        shape = acc.shape
        t = abft.gemm_tiling(config, tuple(shape), k)
        g, mm, nn = t.gemms, t.m, t.n
        err = err.reshape(g, mm, nn)
        kept_idx = set() if kept is None else set(kept[0].tolist())
        for gi in range(g):
            for m0 in range(0, mm, config.rows):
                for n0 in range(0, nn, config.cols):
                    blk = err[gi, m0:m0 + config.rows, n0:n0 + config.cols]
                    if not blk.any():
                        continue
                    d = wrap(blk.sum(0), 32).tolist() + [0] * (config.cols - blk.shape[1])
                    want = decide(d, params[comp])
                    got = next(decisions)
                    assert got[0] == comp and got[4] == d and got[5] == want
                    n_tiles += 1
                    flagged += want.flag_realm
                    # errors of a flagged tile are recovered, the others kept
                    flat = [((gi * mm + m0 + r) * nn + n0 + c) for r, c in blk.nonzero().tolist()]
                    assert all((f in kept_idx) != want.flag_realm for f in flat)
    assert next(decisions, None) is None
    assert n_tiles == inj.stats["tiles_faulty"] > 10
    assert flagged == inj.stats["tiles_recomputed"] > 0
    assert inj.stats["tiles_recomputed"] < n_tiles  # the statistical rule tolerates some


def test_totals_count_every_tile_of_the_targets(tiny):
    """The denominators: tiles and MACs of every targeted GEMM call, against hand counts for
    the tiny model (d=64, 4 heads of 16, 2 KV heads, MLP 128, windows of 40 tokens)."""
    from realm.llm import metrics

    m, rt, w = tiny
    ev = metrics.Evaluator(m, rt, w)
    config = abft.parse_array("16x16-ws")
    # q: M=40, K=64, N=64: WS units = ceil(64/16) N-chunks x 4 K-chunks x ceil(40/16) = 48
    tiles, macs = abft.totals(ev.logs, config, lambda c, layer, call: c == "q" and layer == 1)
    assert (tiles, macs) == (2 * 4 * 4 * 3, 2 * 40 * 64 * 64)
    # qk: 4 heads of 40 x 16 x 40: per head 3 N-chunks x 1 K-chunk x 3 M-chunks
    tiles, macs = abft.totals(ev.logs, config, lambda c, layer, call: c == "qk")
    assert (tiles, macs) == (2 * 3 * 4 * 9, 2 * 3 * 4 * 40 * 16 * 40)
    # OS 5x7, down: M=40, K=128, N=64: 8 x 10 tiles
    tiles, _ = abft.totals(ev.logs, abft.parse_array("5x7-os"),
                           lambda c, layer, call: c == "down" and layer == 0)
    assert tiles == 2 * 8 * 10


def test_params_file_round_trip_and_errors(tmp_path):
    config = abft.parse_array("16x16-ws")
    ps = {c: (StatParams.from_paper(1.5, 22.0 + i, 2.0 + i / 2), {"a": 1.5}) for i, c in
          enumerate(["k", "o"])}
    path = tmp_path / "p.json"
    write_params(path, config, ps, model="tiny")
    got = read_params(path, config, ["k", "o"])
    assert {c: s for c, (s, _) in got.items()} == {"k": 0, "o": 1}
    assert {c: p for c, (_, p) in got.items()} == {c: p for c, (p, _) in ps.items()}
    errors = {
        "is for the 16x16-ws array, not 16x16-os": lambda: read_params(
            path, abft.parse_array("16x16-os")),
        "has no parameter set for component 'v'": lambda: read_params(path, config, ["v"]),
        "does not exist": lambda: read_params(tmp_path / "nope.json", config),
        "array must look like 64x64-ws or 16-os, not '64by64'": lambda: abft.parse_array(
            "64by64"),
        "rows must be an integer from 1 to 256, not 300": lambda: abft.parse_array("300-ws"),
        "policy must be one of none, classic, approx, realm, not 'dmr'": lambda:
            abft.AbftInjector(_base(0), config, "dmr", _params(), None),
    }
    for msg, fn in errors.items():
        with pytest.raises(ParamsError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            fn()
    doc = json.loads(path.read_text())
    doc["components"]["k"]["freq_th"] = 1 << 9  # a 16-entry unit counts to 16 at most
    path.write_text(json.dumps(doc))
    with pytest.raises(ParamsError, match=r"'k': freq_th must be an integer in 0..31"):
        read_params(path, config)
    doc["components"]["k"]["freq_th"] = 3
    doc["components"]["o"]["set"] = 4
    path.write_text(json.dumps(doc))
    with pytest.raises(ParamsError, match=r"'o' uses parameter set 4; the array holds sets "
                       r"0..3"):
        read_params(path, config.replace(param_sets=4))
    with pytest.raises(ParamsError, match="no parameter set for component 'down'"):
        abft.AbftInjector(_base(0), config, "realm", {"k": StatParams()}, None)


def test_ws_placement_is_seeded_and_shared_by_policies(tiny):
    """Every policy sees the same errors in the same K-chunks (common random numbers): the
    flags counted by each run on the first faulty call agree."""
    m, rt, w = tiny
    config = abft.parse_array("3x5-ws")
    first = {}
    for pol in ("none", "classic", "approx", "realm"):
        inj = abft.AbftInjector(inject.Injector("bitflip", ["q"], layers=[0], ber=5e-3,
                                                bits=(0, 29), seed=4), config, pol, _params(), rt)
        llm_fixtures.window_logits(m, rt, w[:1], inj)
        first[pol] = {k: inj.stats[k] for k in ("errors", "tiles_faulty", "flag_classic",
                                                "flag_approx", "flag_realm")}
    assert first["none"]["errors"] > 5
    assert all(v == first["none"] for v in first.values())
    t = Tiling(config, 40, 64, 64)
    assert t.chunks[1] == 22  # K-chunks the placement draws from


def _params_file(path, array):
    config = abft.parse_array(array)
    p = StatParams.from_paper(1.273, 20.076 - 9 * 0.273, 0.0)
    write_params(path, config, {c: (p, None) for c in COMPS}, model="tiny")
    return str(path)


def test_campaign_policies_share_draws_classic_clean_none_unprotected(tmp_path):
    """One campaign: the four policies see the same errors; classic is exactly the clean W8A8
    perplexity, none exactly the plain injected run's, and the counts are consistent."""
    from realm.campaign import runner as campaign

    tiny = tiny_model_dir(str(tmp_path / "tiny"), layers=2)
    params = _params_file(tmp_path / "p.json", "5x7-os")
    exp = {"components": ["q", "sv"], "bers": [3e-3], "bits": [[0, 29]]}
    spec = llm_fixtures.tiny_spec(tiny, [{"name": "plain", **exp},
                                    {"name": "abft", **exp, "arrays": ["5x7-os"], "params": params,
                                     "policies": ["none", "classic", "approx", "realm"]}])
    out = tmp_path / "r.jsonl"
    assert campaign.run(spec, str(out), workers=1, threads=1, progress=False,
                        compile=False) == 2 * 2 + 2 * 2 * 4
    header, done = campaign.read_results(str(out))
    clean = header["baseline"]["w8a8"]["ppl"]
    recs = list(done.values())
    exact = 0
    for comp in ("q", "sv"):
        for seed in (0, 1):
            mine = [r for r in recs if r["point"]["components"] == [comp]
                    and r["point"]["seed"] == seed]
            plain = next(r for r in mine if "policy" not in r["point"])
            pol = {r["point"]["policy"]: r for r in mine if "policy" in r["point"]}
            assert len({r["errors"] for r in pol.values()}) == 1 and pol["none"]["errors"] > 0
            assert pol["none"]["ppl"] == plain["ppl"] != clean
            c = pol["classic"]
            if c["tiles_aliased"] == 0:  # every faulty tile had a non-zero difference
                assert c["ppl"] == clean and c["errors_kept"] == 0
                exact += 1
            else:  # errors that cancel in a column are invisible to ABFT and stay
                assert c["errors_kept"] >= 2 * c["tiles_aliased"]
            assert c["tiles_recomputed"] == c["tiles_mismatch"]
            # windows x layers x tiles per call: q 7 x 10 (M 32, N 64); sv 4 heads x 7 x 3 (N 16)
            assert pol["none"]["tiles"] == (2 * 2 * 7 * 10 if comp == "q" else 2 * 2 * 4 * 7 * 3)
            for p, r in pol.items():
                assert r["errors_kept"] <= r["errors"]
                assert r["tiles_recomputed"] == (0 if p == "none" else r[f"flag_{p}"])
    assert exact >= 2
    from realm.abft import report as abft_report

    rs, hl = abft_report.summarize(str(out), str(tmp_path / "sum"))
    assert {r["policy"] for r in rs} == {"none", "classic", "approx", "realm"}
    assert sum(r["dppl"] == 0 for r in rs if r["policy"] == "classic") >= 1
    assert (tmp_path / "sum" / "summary.md").exists() and len(hl) == 2


@pytest.mark.parametrize("args, msg", [
    (["--policies", "none,dmr"], "realm llm abft: error: argument --policies: must be "
     "comma-separated policies of none, classic, approx, realm, not 'none,dmr'"),
    (["--array", "16x16-os"], "is for the 5x7-os array, not 16x16-os"),
    (["--ber", "2"], "BER 2.0 is outside [0, 1]"),
    (["--array", "0x4-ws"], "rows must be an integer from 1 to 256, not 0"),
    (["--components", "zz"], "unknown component 'zz'"),
    (["--ber", "1e-3:1e-6"], "realm llm abft: error: argument --ber: must be LO:HI with 0 < LO "
     "<= HI, or comma-separated BERs, not '1e-3:1e-6'"),
    (["--bits", "0-"], "realm llm abft: error: argument --bits: must be comma-separated bits or "
     "LO-HI ranges, not '0-'"),
])
def test_cli_bad_input_one_line(tmp_path, args, msg):

    tiny = tiny_model_dir(str(tmp_path / "tiny"), layers=2)
    text = str(tmp_path / "tiny" / "text.txt")
    params = _params_file(tmp_path / "p.json", "5x7-os")
    base = ["--model", tiny, "--text", text, "--array", "5x7-os", "--params", params,
            "--out", str(tmp_path / "r.jsonl"), "--no-progress", "--no-compile"]
    r = realm("llm", "abft", *base, *args)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and msg in r.stderr
    assert not (tmp_path / "r.jsonl").exists()  # nothing ran


def _refit_setup(tmp_path):
    """(spec, parameter file, array, parameter set): a realm campaign of 'q' and 'o' on a tiny
    model whose parameter file the test rewrites."""
    tiny = tiny_model_dir(str(tmp_path / "tiny"), layers=2)
    text = str(tmp_path / "tiny" / "text.txt")
    path = tmp_path / "p.json"
    spec = {"model": tiny, "text": text, "calib_text": text, "windows": 2, "length": 32,
            "experiments": [{"name": "a", "components": ["q", "o"], "bers": [1e-3],
                             "arrays": ["5x7-os"], "params": str(path), "policies": ["realm"]}]}
    return spec, path, abft.parse_array("5x7-os"), StatParams.from_paper(1.273, 20.076, 0.0)


def test_refit_reruns_only_the_changed_component(tmp_path):
    """A point's identity holds the digest of its own component's parameter set: refitting 'o'
    (or adding a component to the file) leaves the key of every 'q' point unchanged."""
    from realm.campaign.spec import expand, point_key

    spec, path, config, p = _refit_setup(tmp_path)
    keys = []
    for params in ({"q": (p, None), "o": (p, None)},
                   {"q": (p, None), "k": (p, None), "o": (p.__class__(**{**p.__dict__,
                                                                         "freq_th": 3}), None)}):
        write_params(path, config, params, model="tiny")
        keys.append({tuple(x["components"]): point_key(x)
                     for x in expand(spec)[1]})
    assert keys[0][("q",)] == keys[1][("q",)]
    assert keys[0][("o",)] != keys[1][("o",)]


def test_summary_uses_only_points_of_the_current_parameters(tmp_path):
    """After a refit of 'o', its old points stay in the results file but leave the summary;
    'q' keeps its points."""
    from realm.campaign.spec import expand

    spec, path, config, p = _refit_setup(tmp_path)
    write_params(path, config, {"q": (p, None), "o": (p, None)}, model="tiny")
    points = expand(spec)[1]
    header = {"baseline": {"w8a8": {"ppl": 10.0}}}
    fields = dict(ppl=11.0, errors=1, errors_kept=0, tiles=4, tiles_recomputed=1, macs=8,
                  macs_recomputed=2, tiles_aliased=0,
                  **{f"flag_{d}": 1 for d in abft_report.DETECTORS})
    out = tmp_path / "r.jsonl"
    with open(out, "w") as f:
        f.write(json.dumps({"kind": "header", **header}) + "\n")
        for pt in points:
            f.write(json.dumps({"point": pt, **fields}) + "\n")
    assert sorted(r["component"] for r in abft_report.rows(str(out))[1]) == ["o", "q"]
    refit = p.__class__(**{**p.__dict__, "freq_th": 3})
    write_params(path, config, {"q": (p, None), "o": (refit, None)}, model="tiny")
    assert [r["component"] for r in abft_report.rows(str(out))[1]] == ["q"]
    # `realm llm summarize` of a closed-loop file writes the closed loop's summary (it once
    # wrote the characterization's, the policies pooled into one mean per BER)
    r = realm("llm", "summarize", out, "--out-dir", tmp_path / "sum")
    assert r.returncode == 0, r.stderr
    hl = json.loads((tmp_path / "sum" / "headline.json").read_text())
    assert [(h["component"], h["array"]) for h in hl["rows"]] == [("q", "5x7-os")]
    assert (tmp_path / "sum" / "summary.md").read_text().startswith(
        "# Statistical ABFT on the W8A8 model: summary")


class _Fixed:
    """A base injector that corrupts the same elements of every call: ``{flat index: added
    value}``."""
    components, seed, count = frozenset({"q"}), 0, 0

    def __init__(self, adds):
        self.adds = adds

    def may_fault(self, *a):
        return True

    def __call__(self, component, layer, call, stage, window, acc):
        idx = torch.tensor(sorted(self.adds))
        return idx, acc.reshape(-1)[idx] + torch.tensor([self.adds[i] for i in idx.tolist()],
                                                       dtype=torch.int32)


@pytest.mark.parametrize("array, shape, k, adds, unit_macs", [
    # WS 3x5, [15, 5] from K = 3 (one K-chunk): three units of 5 vectors x 3 x 5 = 75 MACs;
    # errors at rows 0, 6, 12, one per unit
    ("3x5-ws", (15, 5), 3, {0 * 5 + 0: 1 << 20, 6 * 5 + 2: 1, 12 * 5 + 4: 3}, 75),
    # OS 5x7, [10, 14] from K = 4: four units of 5 rows x 7 cols over K = 4, 140 MACs; errors
    # in units (0, 0), (0, 1), (1, 1)
    ("5x7-os", (10, 14), 4, {0 * 14 + 0: 1 << 20, 1 * 14 + 9: 1, 7 * 14 + 12: 3}, 140),
])
def test_recompute_counts_only_the_flagged_tiles(array, shape, k, adds, unit_macs):
    """Three faulty tiles, one with a 2**20 error, two with errors of 1 and 3: the MSD
    threshold (2**10) recomputes the first alone, so it counts that tile's MACs (hand-worked)
    and passes on the two small errors, unchanged; classic ABFT recomputes all three."""
    import types

    config = abft.parse_array(array)
    p = StatParams.from_paper(1.273, 20.076 - 9 * 0.273, 0.0, msd_th=1 << 10)
    acc = torch.arange(math.prod(shape), dtype=torch.int32).reshape(shape)
    rt = types.SimpleNamespace(k=k)
    approx = abft.AbftInjector(_Fixed(adds), config, "approx", {"q": p}, rt)
    idx, new = approx("q", 0, 0, "prefill", 0, acc)
    small = sorted(i for i, v in adds.items() if v < 1 << 10)
    assert idx.tolist() == small
    assert new.tolist() == [int(acc.reshape(-1)[i]) + adds[i] for i in small]
    s = approx.stats
    assert (s["errors"], s["tiles_faulty"], s["tiles_recomputed"], s["errors_kept"]) == (3, 3, 1, 2)
    assert s["macs_recomputed"] == unit_macs
    classic = abft.AbftInjector(_Fixed(adds), config, "classic", {"q": p}, rt)
    assert classic("q", 0, 0, "prefill", 0, acc) is None
    assert classic.stats["macs_recomputed"] == 3 * unit_macs
