"""A timing campaign end to end on a tiny LLaMA (docs/energy.md §5-§7): every policy at a voltage
sees the same error draws (common random numbers), ``none`` equals a plain timing run, classic
ABFT (decided without the model) is the clean perplexity, DMR is clean with the recompute ratio
of the unit model, ThUnderVolt drops products; the energy report reads the results, and ``none``
at nominal costs exactly the baseline."""
import json

from golden.params import StatParams, write_params
from hw.facts import POLICIES
from realm.abft import loop as abft
from realm.campaign import runner as campaign
from realm.energy import model as energy
from realm.energy import write as energy_write
from realm.energy.vtable import FORMAT, VoltageTable
from realm.llm.tiny import tiny_model_dir
from tb import llm_fixtures

COMPS = ["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"]


def _table(path, array):
    rows = [{"v": 0.85, "clock_ps": 3000.0, "p": 0.0, "source": "zero"},
            {"v": 0.8, "clock_ps": 2800.0, "p": 2e-4, "source": "tail",
             "f_e": {"values": [1 << 30, -(1 << 31), 1 << 24], "counts": [3, 2, 1]},
             "f_drop": {"values": [-300, 41], "counts": [1, 1]}}]
    doc = {"format": FORMAT, "array": array, "dataflow": array.rsplit("-", 1)[1],
           "setting": "test", "components": {c: {"k": 64, "k_eff": 64, "rows": rows}
                                               for c in COMPS}}
    path.write_text(json.dumps(doc))
    return str(path)


def test_timing_campaign_policies_and_report(tmp_path, monkeypatch):
    tiny = tiny_model_dir(str(tmp_path / "tiny"), layers=2)
    array = "5x7-os"
    config = abft.parse_array(array)
    params = str(tmp_path / "p.json")
    p = StatParams.from_paper(1.273, 20.076 - 9 * 0.273, 2.0)
    write_params(params, config, {c: (p, None) for c in COMPS}, model="tiny")
    table = _table(tmp_path / "t.json", array)
    exp = {"mode": "timing", "components": ["q"], "voltages": [0.85, 0.8], "table": table}
    spec = llm_fixtures.tiny_spec(tiny, [{"name": "plain", **exp},
                                    {"name": "volts", **exp, "arrays": [array], "params": params,
                                     "policies": list(POLICIES)}])
    out = tmp_path / "r.jsonl"
    assert campaign.run(spec, str(out), workers=1, threads=1, progress=False,
                        compile=False) == 2 * 2 + 2 * 2 * 6
    header, done = campaign.read_results(str(out))
    clean = header["baseline"]["w8a8"]["ppl"]
    recs = list(done.values())
    for seed in (0, 1):
        mine = [r for r in recs if r["point"]["seed"] == seed and r["point"]["voltage"] == 0.8]
        plain = next(r for r in mine if "policy" not in r["point"])
        pol = {r["point"]["policy"]: r for r in mine if "policy" in r["point"]}
        assert plain["faults"] > 0 and pol["none"]["ppl"] == plain["ppl"] != clean
        assert {pol[x]["errors"] for x in ("none", "classic", "approx", "realm")} == {
            plain["faults"]}
        assert pol["thundervolt"]["faults"] == plain["faults"]  # same elements, dropped values
        assert pol["thundervolt"]["ppl"] != plain["ppl"]
        c = pol["classic"]
        assert c["tiles_aliased"] == 0 and c["errors_kept"] == 0 and c["ppl"] == clean
        assert c.get("dry") is True  # decided without evaluating the model
        assert c["macs_recomputed"] <= c["macs"] == pol["none"]["macs"]
        d = pol["dmr"]
        assert d["ppl"] == clean and d["errors"] is None
        logs = [[("q", layer, 0, 32 * 64, (32, 64), 64) for layer in range(2)]] * 2
        r, macs = energy.dmr_ratio(logs, config, lambda *a: True, 2e-4)
        assert d["macs"] == macs and abs(d["macs_recomputed"] / macs - r) < 1e-12
        # at 0.85 V the table has no error: every policy is the clean model
        hi = [x for x in recs if x["point"]["seed"] == seed and x["point"]["voltage"] == 0.85]
        assert all(x["ppl"] == clean for x in hi)
    # the power overheads are the table's array's (5x7 OS), from a local synthesis report: at
    # nominal (no error, nothing recomputed) a policy costs exactly 1 + its overhead
    from hw import paths as hw_paths
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "report.json").write_text(json.dumps({"composed": [
        {"rows": 5, "cols": 7, "dataflow": "os", "abft": ab, "power_overhead_pct": pct}
        for ab, pct in (("classic", 1.0), ("approx", 2.0), ("realm", 3.0))]}))
    monkeypatch.setattr(hw_paths, "BUILD", tmp_path)
    res = energy_write.analyse(recs, clean, VoltageTable.read(table), {}, "os", 0.3)
    assert res["overhead_sources"]["realm"].endswith("5x7-os-realm power overhead 3.000 %")
    cur = res["curves"]["q"]
    assert set(cur) == set(POLICIES)
    assert cur["none"][0] == {"v": 0.9, "dppl": 0.0, "upper": 0.0, "r": 0.0, "energy": 1.0}
    assert [cur[p][0]["energy"] for p in ("classic", "approx", "realm", "dmr", "thundervolt")] \
        == [1.01, 1.02, 1.03, 2.0, 1.031]
    assert cur["classic"][-1]["dppl"] == 0.0
    paths = energy_write.write(tmp_path / "rep", res, VoltageTable.read(table), focus=("q",))
    assert {p.name for p in paths} >= {"table2.csv", "curves.csv", "fig9_q.png"}
