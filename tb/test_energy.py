"""Voltage tables and the energy model (docs/energy.md §1, §4-§7): PE
operand streams cut from GEMMs feed the golden PE exactly those GEMMs' products and partial
sums; the bounded tail's closed-form fit recovers a known exponent; table rows count the
waveform's errors exactly where measured and continue them through the tail to zero at the
endpoint; the energy of ``none`` at nominal voltage is exactly the baseline; recompute ratios
of the analytic unit model; sweet spots; spec and CLI errors are one line."""
import math

import numpy as np
import pytest

from realm.abft.loop import parse_array
from realm.energy import model as energy
from realm.energy import report as energy_report
from synth import vtable


class FakeWave:
    """A waveform whose cycle ``c`` needs ``req[c]`` ps and, when late, latches ``err[c]``."""

    def __init__(self, req, err):
        self.req, self.err = np.asarray(req, float), np.asarray(err, np.int64)
        self.cycles = len(self.req)

    def requirement(self):
        return self.req

    def errors(self, clock):
        return np.where(self.req > clock, self.err, 0)

    def bit_errors(self, clock):
        e = self.errors(clock)
        return ((np.abs(e)[:, None] >> np.arange(32)) & 1).astype(bool)


def _bounded(rng, n, u, xf, k):
    """``n`` draws of u + (xf - u) y with P(Y > y) = (1 - y)^k."""
    return u + (xf - u) * (1 - rng.random(n) ** (1 / k))


def test_tail_fit_recovers_the_exponent():
    rng = np.random.default_rng(3)
    body = rng.uniform(0, 1000, 100000)
    tail = _bounded(rng, 2000, 1000.0, 3000.0, 40.0)
    t = vtable.fit_tail(np.r_[body, tail], 3000.0, n=2000)
    assert t["u_ps"] == pytest.approx(1000.0, abs=1.0)
    assert t["k"] == pytest.approx(40.0, rel=0.1)  # 2,000 exceedances: sd about 2.2 %
    assert vtable.tail_probability(t, 3000.0) == 0.0
    assert vtable.tail_probability(t, t["u_ps"]) == pytest.approx(t["fraction"])
    with pytest.raises(ValueError, match=r"^a cycle needs 3100.000 ps, beyond the STA bound "
                       r"3000.000 ps$"):
        vtable.fit_tail([3100.0] * 100, 3000.0, n=10)


def test_component_table_rows():
    rng = np.random.default_rng(1)
    req = rng.uniform(500, 1000, 20000)
    err = rng.choice([1 << 30, -(1 << 31), 1 << 26], 20000)
    prods = rng.integers(-200, 200, 20000)
    wave = FakeWave(req, err)
    ref = 1000.0 / vtable.MARGIN  # the clock at nominal is 1000 ps
    t = vtable.component_table(wave, prods, 1200.0, ref, "0.90:0.60:0.01", n_tail=50,
                               p_floor=0.3)
    rows, tail = t["rows"], t["tail"]
    assert tail["rho"] == 1.0  # every late cycle latches a wrong word here
    assert rows[0]["source"] == "tail" and rows[-1]["p"] >= 0.3  # stops at the floor
    for r in rows:
        late = req > r["clock_ps"]
        if r["source"] == "measured":
            assert r["p"] == late.mean() and r["errors"] == late.sum()
            vals, counts = np.unique(err[late], return_counts=True)
            assert r["f_e"] == {"values": vals.tolist(), "counts": counts.tolist()}
            dv, dc = np.unique(-prods[late], return_counts=True)
            assert r["f_drop"] == {"values": dv.tolist(), "counts": dc.tolist()}
        else:
            assert r["clock_ps"] >= tail["u_ps"]
            assert r["p"] == pytest.approx(vtable.tail_probability(tail, r["clock_ps"]))
    ps = [r["p"] for r in rows]
    assert ps == sorted(ps)  # lower voltage, shorter clock, more errors
    # a clock at or past the endpoint has no error
    t = vtable.component_table(wave, prods, 1200.0, 1300.0 / vtable.MARGIN, "0.90,0.75")
    assert t["rows"][0]["source"] == "zero" and t["rows"][0]["p"] == 0.0
    assert t["rows"][1]["source"] == "tail" and t["rows"][1]["p"] > 0.0


def test_none_at_nominal_is_exactly_the_baseline():
    for lf in (0.0, 0.1, 0.3, 0.37):
        for gamma in (1.0, 3.0):
            m = energy.EnergyModel(leak_frac=lf, leak_exp=gamma)
            assert m.scale(0.9) == 1.0
            assert m.energy(0.9, 0.0, 0.0) == 1.0
    ovh, _ = energy.overheads("ws")
    assert ovh["none"] == 0.0
    assert energy.EnergyModel().energy(0.9, ovh["none"], 0.0) == 1.0


def test_energy_model_values():
    m = energy.EnergyModel(leak_frac=0.0)
    # docs/energy.md §6: dynamic-only 0.85 -> 0.892, 0.80 -> 0.790, 0.70 -> 0.605
    for v, e in ((0.85, 0.892), (0.80, 0.790), (0.70, 0.605)):
        assert m.scale(v) == pytest.approx(e, abs=5e-4)
    m = energy.EnergyModel()
    assert m.energy(0.8, 0.01, 0.25) == pytest.approx(m.scale(0.8) * 1.01 + 0.25 * 1.01)
    with pytest.raises(energy.EnergyError, match=r"^leakage share must be in \[0, 1\], not 1.5$"):
        energy.EnergyModel(leak_frac=1.5)
    with pytest.raises(energy.EnergyError, match=r"^recompute ratio must be in \[0, 1\]"):
        m.energy(0.8, 0.0, 1.5)


def test_overheads_from_our_synthesis_report():
    for df in ("ws", "os"):
        ovh, src = energy.overheads(df)
        assert 0 < ovh["classic"] <= ovh["approx"] < ovh["realm"] < 0.02
        assert ovh["dmr"] == 1.0 and ovh["thundervolt"] == 0.031
        assert "report.json" in src["realm"]


def test_overheads_come_from_the_first_report_that_has_the_size(tmp_path, monkeypatch):
    """A local report (build/synth/report.json) is read first; a size it lacks comes from the
    committed report; a size neither has is one error naming both and the command."""
    import json

    from hw import paths

    rows = [{"rows": 128, "cols": 128, "dataflow": "ws", "abft": ab, "power_overhead_pct": pct}
            for ab, pct in (("none", 0.0), ("classic", 1.5), ("approx", 2.0), ("realm", 2.5))]
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "report.json").write_text(json.dumps({"composed": rows}))
    monkeypatch.setattr(paths, "BUILD", tmp_path)
    ovh, src = energy.overheads("ws", size=128)
    assert (ovh["classic"], ovh["approx"], ovh["realm"]) == (0.015, 0.02, 0.025)
    assert src["realm"].endswith("report.json: 128x128-ws-realm power overhead 2.500 %")
    ovh, src = energy.overheads("ws", size=256)  # the committed report's
    assert "docs/results/synth/report.json" in src["realm"] and 0 < ovh["realm"] < 0.02
    with pytest.raises(energy.EnergyError) as e:
        energy.overheads("os", size=64)
    assert str(e.value) == (
        f"the synthesis report '{tmp_path / 'synth' / 'report.json'}' or "
        f"'{paths.RESULTS / 'synth' / 'report.json'}' has no 64x64-os-classic power figure "
        "(realm synth --sizes '' --large 64 --composed-power 64 composes it)")


def test_unit_ratio_against_closed_form():
    config = parse_array("256x256-ws")
    # one linear GEMM [512, 576] x [576, 768]: WS units of 256 vectors x 256 columns per K-chunk
    logs = [[("q", 0, 0, 512 * 768, (512, 768), 576)]]
    p = 1e-9
    r, macs = energy.unit_ratio(logs, config, lambda *a: True, p)
    assert macs == 512 * 576 * 768
    pi = -math.expm1(256 * 256 * 256 * math.log1p(-p))  # every unit is full-size here
    assert r == pytest.approx(pi, rel=1e-12)
    r2, _ = energy.dmr_ratio(logs, config, lambda *a: True, p)
    assert r2 == pytest.approx(1 - (1 - pi) ** 2, rel=1e-12)
    assert energy.unit_ratio(logs, config, lambda *a: False, p) == (0.0, 0)


def test_sweet_spot_and_savings():
    rows = {"none": [{"v": 0.9, "upper": 0.0, "energy": 1.0, "r": 0.0},
                     {"v": 0.8, "upper": 0.1, "energy": 0.8, "r": 0.0},
                     {"v": 0.7, "upper": 5.0, "energy": 0.6, "r": 0.0}],
            "realm": [{"v": 0.9, "upper": 0.0, "energy": 1.01, "r": 0.0},
                      {"v": 0.7, "upper": 0.2, "energy": 0.65, "r": 0.01}]}
    assert energy_report.sweet_spot(rows["none"], 0.3)["v"] == 0.8
    island = rows["none"] + [{"v": 0.6, "upper": 0.0, "energy": 0.4, "r": 0.0}]
    assert energy_report.sweet_spot(island, 0.3)["v"] == 0.8  # not below a failing voltage
    t = energy_report.table2({"k": rows}, 0.3)["k"]
    assert t["v"] == 0.7 and t["best_other"] == "none"
    assert t["saving_nominal"] == pytest.approx(0.35)
    assert t["saving_vs_best"] == pytest.approx(1 - 0.65 / 0.8)
    assert energy_report.upper([1.0, 1.0]) == (1.0, 1.0)
    assert energy_report.upper([0.0, 2.0])[1] == pytest.approx(1.0 + 12.706 * 1.0)
    assert energy_report.upper([0.0, math.inf]) == (math.inf, math.inf)


def _energy(args):
    """The exit status of ``realm energy ARGS`` run in this process (parse errors exit)."""
    from realm.cli.main import main

    try:
        return main(["energy", *args])
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("args, message", [
    (["characterize", "--grid", "0.9:0.5:0.01"], "voltage 0.5 V is outside curve A's range "
     "0.60 to 0.90 V"),
    (["characterize", "--grid", "0.9:0.6:-1"], "voltage grid step must be positive, not '-1'"),
    (["characterize", "--components", "q,x"], "argument --components: must be comma-separated "
     "components of q, k, v, qk, sv, o, gate, up, down, not 'q,x'"),
    (["characterize", "--cycles", "10"], "argument --cycles: must be an integer >= 200, not "
     "'10'"),
])
def test_cli_bad_input_is_one_line(args, message, capsys):
    assert _energy(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"realm energy characterize: error: {message}"]


def test_cli_missing_tools_is_one_line(monkeypatch, capsys):
    from synth import tools

    def unavailable():
        raise tools.ToolUnavailable("cannot fetch Debian package opensta: apt-get and dpkg-deb "
                                    "are needed (a Debian or Ubuntu machine)")
    monkeypatch.setattr(tools, "opensta", unavailable)
    assert _energy(["characterize", "--components", "q"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "realm energy characterize: error: cannot fetch Debian package opensta: apt-get and "
        "dpkg-deb are needed (a Debian or Ubuntu machine)"]


def _tiny_table(path):
    import json

    from realm.energy.vtable import FORMAT
    rows = [{"v": 0.85, "p": 0.0}, {"v": 0.8, "p": 1e-6, "f_e": {"values": [1], "counts": [1]}}]
    path.write_text(json.dumps({"format": FORMAT, "array": "256x256-ws", "dataflow": "ws",
                                "components": {c: {"k": 576, "k_eff": 768, "rows": rows}
                                               for c in ("k", "o")}}))
    return str(path)


def test_timing_spec_errors_are_one_line(tmp_path):
    from realm.campaign.spec import SpecError, expand

    table = _tiny_table(tmp_path / "t.json")
    comps = ["q", "k", "v", "qk", "sv", "o", "gate", "up", "down"]
    shape = (comps, 30, {c: 576 for c in comps}, 9, 64)
    params = "docs/results/abft/params/{array}.json"
    ok = {"name": "x", "mode": "timing", "components": ["k"], "voltages": [0.8], "table": table}
    cases = [
        ({"voltages": [0.7]}, f"experiment 'x': {table!r} has no row at 0.7 V for component "
         "'k' (rows: 0.8 to 0.85 V)"),
        ({"table": None}, "experiment 'x': a timing experiment needs 'table', the path of a "
         "voltage table (realm energy characterize)"),
        ({"components": ["q"]}, f"experiment 'x': {table!r} has no component 'q' (it has k, o)"),
        ({"arrays": ["64x64-ws"], "params": params, "policies": ["none"]},
         "experiment 'x': the table is for the 256x256-ws array, not 64x64-ws"),
        ({"arrays": ["256x256-ws"], "params": params, "policies": ["razor"]},
         "experiment 'x': policy must be one of none, classic, approx, realm, dmr, thundervolt, "
         "not 'razor'"),
        ({"mode": "bitflip", "bers": [1e-6], "arrays": ["256x256-ws"], "params": params,
          "policies": ["dmr"]},
         "experiment 'x': policy must be one of none, classic, approx, realm, not 'dmr'"),
    ]
    for change, msg in cases:
        exp = {**ok, **change}
        with pytest.raises(SpecError) as e:
            expand({"experiments": [exp]}, shape=shape)
        assert str(e.value) == msg
    _, points = expand({"experiments": [{**ok, "voltages": [0.85, 0.8, 0.9]}]},
                                shape=shape)
    assert [p["voltage"] for p in points] == [0.85, 0.8, 0.9] and "bits" not in points[0]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_streams_feed_the_pe_its_gemms(dataflow):
    """A PE stream cut from GEMMs (realm.energy.streams): within the PE's port ranges, the
    golden PE's accumulator adds exactly the stream's products, and a WS partial sum in is
    the sum of the products of the rows above in the K-chunk."""
    import torch

    from hw.config import ArrayConfig
    from realm.energy import streams
    from synth import timing

    pe = timing.select_pe(ArrayConfig(rows=32, cols=32, dataflow=dataflow))
    g = torch.Generator().manual_seed(0)
    gemms = [(torch.randint(-128, 128, (2, 40, 70), generator=g, dtype=torch.int8),
              torch.randint(-128, 128, (2, 70, 9), generator=g, dtype=torch.int8))]
    lo, hi = timing.leaf_rows(pe)
    assert 0 <= lo <= pe.at[0] <= hi < 32
    s = timing.check_stream(pe, streams.pe_stream(pe, gemms, 3000, 5, (lo, hi)))
    acc = timing.expected_acc(pe, s)
    prods = streams.products(pe, s)
    a, b = (t.numpy().astype(np.int64) for t in gemms[0])
    if dataflow == "ws":
        assert np.array_equal(acc, s["i_p"] + prods)
        # the first segment (a load, then all 40 vectors: M < the segment length) is some
        # row r of some K-chunk kc, column n and head g of the GEMM, with its partial sums
        seg = slice(1, 41)
        assert s["w_load"][0] == 1 and s["w_load"][seg].sum() == 0 and s["w_load"][41] == 1
        def fits(g_, kc, r, n):
            k0, k = kc * 32, kc * 32 + r
            x, w = (a[g_, :, k], b[g_, k, n]) if k < 70 else (np.zeros(40, np.int64), 0)
            return (np.array_equal(s["i_a"][seg], x) and s["i_w"][0] == w
                    and np.array_equal(s["i_p"][seg], a[g_, :, k0:min(k, 70)]
                                       @ b[g_, k0:min(k, 70), n]))  # rows past K: padding
        assert any(fits(g_, kc, r, n) for g_ in range(2) for kc in range(3)
                   for r in range(lo, hi + 1) for n in range(9))
    else:
        prev = np.r_[0, acc[:-1]]
        assert np.array_equal(np.where(s["drain"] == 1, s["i_c"], prev + prods), acc)
        # the first element: a drain, then the 70 products of one row of a and column of b
        assert s["drain"][0] == 1 and s["drain"][1:71].sum() == 0 and s["drain"][71] == 1
        assert any(np.array_equal(s["i_a"][1:71], a[g_, i]) and
                   np.array_equal(s["i_b"][1:71], b[g_, :, j])
                   for g_ in range(2) for i in range(40) for j in range(9))
