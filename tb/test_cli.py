"""The ``realm`` command line: bad input is one line and exit status 2, said before any
simulator is built; ``realm run`` multiplies a user's matrices on the RTL and writes exactly
``A @ B`` (checked against numpy's int64 product)."""

import numpy as np
import pytest

from tb.cli_fixtures import realm


@pytest.mark.parametrize("args, message", [
    (["sim", "--gemm", "0,2,3"],
     "realm sim: error: argument --gemm: must be 3 comma-separated integers of at least 1, "
     "not '0,2,3'"),
    (["sim", "--gemm", "4,4"],
     "realm sim: error: argument --gemm: must be 3 comma-separated integers of at least 1, "
     "not '4,4'"),
    (["sim", "--rows", "0"], "realm sim: error: rows must be an integer from 1 to 256, not 0"),
    (["bench", "--sizes", "8,0"],
     "realm bench: error: argument --sizes: must be comma-separated sizes from 1 to 256, "
     "not '8,0'"),
    (["bench", "--batch", "0"],
     "realm bench: error: argument --batch: must be an integer of at least 1, not '0'"),
    (["synth", "--workers", "0"],
     "realm synth: error: argument --workers: must be an integer of at least 1, not '0'"),
    (["llm", "eval", "--ber", "2"],
     "realm llm eval: error: argument --ber: must be a probability above 0 and at most 1, "
     "not '2'"),
    (["llm", "eval", "--components", "zz"],
     "realm llm eval: error: argument --components: must be comma-separated components of q, "
     "k, v, qk, sv, o, gate, up, down, fc1, fc2, not 'zz'"),
    (["llm", "eval", "--components", "o"],
     "realm llm eval: error: --components target an injection: add --ber or --msd"),
    (["crosslayer", "--components", "q,zz"],
     "realm crosslayer: error: argument --components: must be comma-separated components of "
     "q, k, v, qk, sv, o, gate, up, down, not 'q,zz'"),
    (["crosslayer", "--layer", "30"],
     "realm crosslayer: error: --layer must be below the model's 30 layers, not 30"),
    (["crosslayer", "--ber", "0.5"], "realm crosslayer: error: --ber must be in (0, 0.01], "
     "not 0.5"),
    (["crosslayer", "--length", "60"],
     "realm crosslayer: error: --length must be a multiple of 8 from 16 on, not 60"),
    (["crosslayer", "--engine", "ray", "--address", "nohost"],
     "realm crosslayer: error: --address must be auto or HOST:PORT, not 'nohost'"),
    (["energy", "campaign", "spec.json", "--address", "auto"],
     "realm energy campaign: error: --address goes with --engine ray"),
    (["llm", "abft", "--engine", "gpu"],
     "realm llm abft: error: argument --engine: invalid choice: 'gpu' (choose from 'local', "
     "'ray')"),
    (["characterize", "--workers", "0"],
     "realm characterize: error: argument --workers: must be an integer of at least 1, "
     "not '0'"),
])
def test_bad_input_is_one_line(args, message):
    r = realm(*args)
    assert (r.returncode, r.stderr.splitlines()) == (2, [message])


def _matrices(tmp_path, a, b):
    np.savetxt(tmp_path / "a.csv", a, fmt="%d", delimiter=",")
    np.save(tmp_path / "b.npy", b)
    return ["--a", str(tmp_path / "a.csv"), "--b", str(tmp_path / "b.npy")]


def test_run_rejects_bad_matrices(tmp_path):
    r = realm("run", "--rows", "2", "--cols", "2",
              *_matrices(tmp_path, np.ones((3, 2)), np.ones((3, 3))))
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        "realm run: error: A is 3x2 and B is 3x3: the columns of A must equal the rows of B"])
    r = realm("run", "--rows", "2", "--cols", "2",
              *_matrices(tmp_path, np.full((3, 2), 200), np.ones((2, 3))))
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        "realm run: error: A must hold INT8 values (-128 to 127), not 200 to 200"])


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_run_multiplies_your_matrices(tmp_path, dataflow):
    g = np.random.default_rng(13)
    a = g.integers(-128, 128, (5, 3))
    b = g.integers(-128, 128, (3, 4))
    a[0, :] = -128  # the extremes too
    b[:, 0] = -128
    out = tmp_path / ("c.csv" if dataflow == "ws" else "c.npy")
    r = realm("run", "--rows", "2", "--cols", "2", "--dataflow", dataflow,
              *_matrices(tmp_path, a, b), "--product", str(out), "-o",
              str(tmp_path / "run.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "match       YES" in r.stdout
    if dataflow == "ws":
        assert (np.loadtxt(out, delimiter=",", dtype=np.int64, ndmin=2) == a @ b).all()
    else:  # the INT32 accumulators stored as int32, and said so (they were int64, "INT32")
        c = np.load(out)
        assert c.dtype == np.int32 and (c == a @ b).all()
        assert f"product     {out} (5x4, INT32 accumulators, stored as int32)" in r.stdout


def test_run_with_a_parameter_file_reports_each_tile(tmp_path):
    """`realm run --params F --component o --faults L`: the unit runs on the file's set for 'o',
    and every tile's reported differences (read from the o_d port), MSD, θ, freq_eff and
    flags equal the transaction-level model `golden.stats.decide` on those differences."""
    import json

    from golden.params import StatParams, write_params
    from golden.stats import decide
    from realm.abft import loop as abft
    g = np.random.default_rng(5)
    a, b = g.integers(-128, 128, (6, 3)), g.integers(-128, 128, (3, 2))
    config = abft.parse_array("2x2-ws")
    sets = {"k": StatParams.from_paper(1.273, 20.076, 0.5),
            "o": StatParams.from_paper(1.5, 24.0, 0.0, sensitive=True)}
    write_params(tmp_path / "p.json", config, {c: (p, None) for c, p in sets.items()},
                      model="test")
    faults = {"format": "realm-faults/1", "faults": [
        {"site": "pe.acc", "row": r, "col": c, "cycle": t, "kind": "flip", "bit": 20}
        for r, c, t in ((1, 1, 9), (0, 0, 12), (1, 0, 16))]}
    (tmp_path / "f.json").write_text(json.dumps(faults))
    r = realm("run", "--rows", "2", "--cols", "2", *_matrices(tmp_path, a, b),
              "--params", str(tmp_path / "p.json"), "--component", "o",
              "--faults", str(tmp_path / "f.json"), "-o", str(tmp_path / "run.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads((tmp_path / "run.json").read_text())
    assert res["params"]["component"] == "o" and res["params"]["select"] == 1
    dec = res["decisions"]
    # one difference per streamed vector per weight tile: 6 vectors x 2 K-chunks x 1 N-chunk
    assert sum(len(t["d"]) for t in dec) == 6 * 2 and any(t["mismatch"] for t in dec)
    for t in dec:
        want = decide(t["d"], sets["o"])
        assert (t["msd"], t["freq_eff"], t["mismatch"], t["classic"], t["approx"],
                t["realm"]) == (want.msd, want.freq_eff, want.mismatch, want.flag_classic,
                                want.flag_approx, want.flag_realm), t
        assert t["theta_log2"] * 16 == want.theta


def test_run_parameter_file_errors(tmp_path):
    from golden.params import StatParams, write_params
    from realm.abft import loop as abft
    p = StatParams.from_paper(1.273, 20.076, 0.5)
    write_params(tmp_path / "p.json", abft.parse_array("4x4-os"), {"k": (p, None)},
                      model="test")
    a = tmp_path / "a.csv"
    a.write_text("1,2\n3,4\n")
    base = ["run", "--a", str(a), "--b", str(a), "--params", str(tmp_path / "p.json")]
    for extra, msg in ((["--rows", "2", "--cols", "2"], "is for the 4x4-os array, not 2x2-ws"),
                       (["--rows", "4", "--cols", "4", "--dataflow", "os", "--component", "q"],
                        "has no set for component 'q' (it has k)")):
        r = realm(*base, *extra)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and msg in r.stderr, \
            r.stderr
    r = realm("run", "--a", str(a), "--b", str(a), "--component", "k")
    assert r.returncode == 2 and "--component needs --params" in r.stderr


# --- Inputs checked before any work: each case failed late, with a traceback, or not at all
# before the one-dispatcher contract (realm.cli.args).

def _faults(tmp_path, *entries):
    import json
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"format": "realm-faults/1", "faults": list(entries)}))
    return str(path)


PE = {"site": "pe.acc", "row": 0, "col": 0, "kind": "flip", "bit": 3}


@pytest.mark.parametrize("entries, message", [
    ([{**PE, "cycle": 10, "duration": 3}, {**PE, "col": 1, "cycle": 12}],
     "fault 1: cycle 12 is taken by fault 0 (the fault port injects one fault per cycle)"),
    ([{"site": "gemm.acc", "component": "o", "layer": 0, "row": 0, "col": 0, "bit": 3}],
     "fault 0: site 'gemm.acc' addresses the LLM model's GEMMs (realm llm eval --faults), not "
     "the array's registers"),
])
def test_sim_rejects_what_the_fault_port_cannot_inject(tmp_path, entries, message):
    """Both used to pass the checks and fail inside the simulator after the build."""
    r = realm("sim", "--rows", "2", "--cols", "2", "--faults", _faults(tmp_path, *entries),
              "-o", str(tmp_path / "r.json"))
    assert (r.returncode, r.stderr.splitlines()) == (2, [f"realm sim: error: {message}"])
    assert not (tmp_path / "r.json").exists()


def test_outputs_under_a_file_are_refused_before_work(tmp_path):
    """``-o`` (and ``--product``) whose folder is a file: one line, nothing built or run."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = realm("sim", "--rows", "2", "--cols", "2", "-o", str(blocker / "r.json"))
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        f"realm sim: error: --output: {str(blocker)!r} is not a folder (a file of that name is "
        "in the way)"])
    a = tmp_path / "a.csv"
    a.write_text("1,2\n3,4\n")
    r = realm("run", "--rows", "2", "--cols", "2", "--a", str(a), "--b", str(a),
              "--product", str(blocker / "c.npy"), "-o", str(tmp_path / "run.json"))
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        f"realm run: error: --product: {str(blocker)!r} is not a folder (a file of that name "
        "is in the way)"])
    assert not (tmp_path / "run.json").exists()


def test_empty_npy_is_one_line(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"")
    r = realm("run", "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "a.npy"))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"realm run: error: --a: {str(tmp_path / 'a.npy')!r} is not a "
                               "matrix of integers (")


def test_summarize_of_a_missing_file_writes_nothing(tmp_path):
    r = realm("llm", "summarize", "missing.jsonl", cwd=tmp_path)
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        "realm llm summarize: error: RESULTS: no such file: 'missing.jsonl'"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--layers", "99", "--ber", "1e-5"],
     "--layers: layer 99 is not in 0..29 (the model has 30 layers)"),
    (["--length", "100000"], "--length 100000 exceeds the model's context of 8192 tokens"),
])
def test_eval_checks_the_model_before_loading_it(args, message):
    """The layer used to be accepted (exit 0, an 'injected' result equal to the clean one);
    the length failed after the model loaded. SmolLM2-135M: 30 layers, context 8192."""
    r = realm("llm", "eval", *args)
    assert (r.returncode, r.stderr.splitlines()[-1:]) == (2, [f"realm llm eval: error: {message}"])


def test_eval_fault_list_must_fit_the_model(tmp_path):
    """SmolLM2-135M's o projection has 576 output features: column 576 is outside."""
    f = _faults(tmp_path, {"site": "gemm.acc", "component": "o", "layer": 3, "call": 0,
                           "row": 5, "col": 576, "bit": 30})
    r = realm("llm", "eval", "--faults", f)
    assert (r.returncode, r.stderr.splitlines()[-1:]) == (2, [
        "realm llm eval: error: fault 0: col 576 is not below the 576 columns of o's "
        "accumulator"])


def test_text_too_short_for_the_windows(tmp_path):
    (tmp_path / "short.txt").write_text("a few words only\n")
    r = realm("llm", "eval", "--text", str(tmp_path / "short.txt"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[-1].startswith(
        f"realm llm eval: error: {tmp_path / 'short.txt'} has ")
    assert "fewer than the 0 + 4 windows x 512 the run needs" in r.stderr


def test_a_missing_extra_is_named(monkeypatch):
    from realm.cli import args
    monkeypatch.setitem(args.EXTRAS, "sim", ("cocotb", "no_such_module_here"))
    with pytest.raises(args.BadInput, match=r"^this command needs the 'sim' extra "
                       r"\(no_such_module_here is not installed\): pip install "
                       r"'realm-sa\[sim\]'$"):
        args.need("synth", "sim")


def _parse(*argv):
    from realm.cli.main import parser
    return parser().parse_args(list(argv))


@pytest.mark.parametrize("argv, option", [
    (["energy", "characterize"], "out"), (["energy", "spec", "t.json"], "out"),
    (["energy", "campaign", "s.json"], "out"), (["energy", "report", "r.jsonl", "--table", "t"],
                                                "out"),
    (["crosslayer"], "out"), (["crosslayer"], "workdir"), (["llm", "fit", "g.jsonl"], "out_dir"),
    (["llm", "abft"], "out"), (["bench"], "output")])
def test_defaults_write_under_build(argv, option):
    """No command writes into the committed docs/results/ unless told to (make does)."""
    assert str(getattr(_parse(*argv), option)).startswith("build/")


def test_faults_go_into_an_unprotected_array_when_asked(tmp_path):
    """--abft none --faults: the unprotected array with the fault port (it used to be turned
    into the realm variant); without --abft the realm variant is chosen, and said."""
    f = _faults(tmp_path, {**PE, "cycle": 10})
    a = _parse("sim", "--rows", "2", "--cols", "2", "--abft", "none", "--faults", f, "-o",
               str(tmp_path / "r.json"))
    a.check(a)
    assert (a.config.id, len(a.fault_list)) == ("2x2-ws-fi", 1)
    a = _parse("sim", "--rows", "2", "--cols", "2", "--faults", f, "-o", str(tmp_path / "r.json"))
    a.check(a)
    assert a.config.id == "2x2-ws-realm-fi"


def _result(abft, simulator):
    r = {"seed": 1, "gemm": [4, 4, 4], "tiles": 1, "cycles": 10, "macs": 64,
         "simulator": simulator, "rtl_seconds": 1.0, "rtl_macs_per_s": 64.0,
         "build_seconds": 1.0, "golden_macs_per_s": 1.0, "matches_oracle": True,
         "wrong_elements": 0, "matches_golden_every_cycle": None if simulator == "fast" else True}
    if abft != "none":
        r.update(counters={"tiles_mismatch": 1, "tiles_checked": 2, "errors_above": 1,
                           "tiles_flagged": 1, "hist": [0, 1]}, decisions=[])
    return r


@pytest.mark.parametrize("abft, simulator, want, unwanted", [
    ("classic", "fast", ["by the array's policy (classic)", "match       YES: product vs int64 "
                         "oracle: equal (the per-cycle comparison with the golden model is not "
                         "run under --fast)"], ["(realm)", "every cycle"]),
    ("none", "cocotb", ["detected    nothing: the array has no checksum logic (--abft none)",
                        "RTL vs golden model on every output, every cycle: equal"], ["policy"]),
])
def test_report_says_what_ran(capsys, tmp_path, abft, simulator, want, unwanted):
    """The summary named the realm policy whatever --abft was, and printed 'match YES' beside
    a golden comparison that --fast does not run."""
    import time

    from golden.faults import Fault
    from hw.config import ArrayConfig
    from realm.rtl.simulate import report
    config = ArrayConfig(rows=2, cols=2, abft=abft, fault_port=True)
    status = report(config, _result(abft, simulator), tmp_path / "r.json", time.perf_counter(),
                    [Fault("pe.acc", 0, 0, "flip", 8, cycle=3)])
    out = capsys.readouterr().out
    assert status == 0
    assert all(w in out for w in want), out
    assert not any(u in out for u in unwanted), out


def test_synth_one_size_gets_its_power():
    """make synth ROWS=8 used to estimate no power and ignore --power-sizes."""
    a = _parse("synth", "--rows", "8")
    a.check(a)
    assert (a.shapes, a.large, a.power_shapes) == ([(8, 8)], [], [(8, 8)])
    a = _parse("synth", "--rows", "8", "--cols", "4", "--power-sizes", "")
    a.check(a)
    assert (a.shapes, a.power_shapes) == ([(8, 4)], [])
    a = _parse("synth", "--sizes", "4", "--power-sizes", "4")
    a.check(a)
    assert (a.shapes, a.large, a.power_shapes) == ([(4, 4)], [32, 64, 128, 256], [(4, 4)])


def test_synth_report_names_only_sections_it_has():
    from synth.report import _timing
    rep = {"composed": [], "flat": []}
    lines = []
    _timing(rep, lines)
    assert not any("256x256" in line or "composed" in line for line in lines), lines


def test_a_large_cocotb_build_says_what_it_builds(monkeypatch, capsys, tmp_path):
    from realm.cli import sim
    from realm.rtl import simulate
    monkeypatch.setattr(simulate, "run_gemm", lambda *a, **k: "ran")
    a = _parse("sim", "--rows", "32", "--cols", "32", "-o", str(tmp_path / "r.json"))
    a.check(a)
    assert sim._gemm(a, a.gemm) == "ran"
    out = capsys.readouterr().out
    assert out.startswith("building    32x32-ws for cocotb") and "--fast" in out, out
    a = _parse("sim", "--rows", "16", "--cols", "16", "-o", str(tmp_path / "r.json"))
    a.check(a)
    sim._gemm(a, a.gemm)
    assert capsys.readouterr().out == ""


def _raise(exc):
    raise exc


@pytest.mark.parametrize("make, status", [
    (lambda: _raise(__import__("realm.cli.args").cli.args.BadInput("x")), 2),
    (lambda: __import__("hw.config").config.ArrayConfig(rows=0), 2),   # a ValueError of ours
    (lambda: __import__("realm.rtl.simulate").rtl.simulate.load_matrix("/nonexistent", "A"), 2),
    (lambda: _raise(FileNotFoundError("f")), 2),
    (lambda: _raise(__import__("realm.cli.args").cli.args.Failed("x")), 1),
    (lambda: __import__("torch").zeros(2).view(3), None),               # a library's: a bug
    (lambda: int("x"), None),                                           # Python's own: a bug
    (lambda: _raise(KeyError("k")), None),
])
def test_exit_status_tells_input_and_failures_from_bugs(make, status):
    """Bad input is 2 and work that failed is 1, both one line; anything raised inside a
    library or by Python itself is a bug and keeps its traceback (None)."""
    from realm.cli.args import exit_status
    with pytest.raises(Exception) as e:
        make()
    assert exit_status(e.value) == status


def test_each_output_option_names_its_own_default():
    """``realm run -o`` said build/sim/result-<id>.json, which is ``sim``'s file."""
    from realm.cli.main import parser
    sub = next(a for a in parser()._actions if a.dest == "command").choices
    helps = {name: next(a.help for a in sub[name]._actions if a.dest == "output")
             for name in ("sim", "run")}
    assert helps == {"sim": "JSON result (default build/sim/result-<id>.json)",
                     "run": "JSON result (default build/sim/run-<id>.json)"}
