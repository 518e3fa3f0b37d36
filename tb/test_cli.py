"""The ``realm`` command line: bad input is one line and exit status 2, said before any
simulator is built; ``realm run`` multiplies a user's matrices on the RTL and writes exactly
``A @ B`` (checked against numpy's int64 product)."""
import subprocess
import sys

import numpy as np
import pytest

from tb.sim import ROOT


def realm(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "realm", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["sim", "--gemm", "0,2,3"],
     "realm sim: error: argument --gemm: must be 3 comma-separated integers of at least 1, "
     "not '0,2,3'"),
    (["sim", "--gemm", "4,4"],
     "realm sim: error: argument --gemm: must be 3 comma-separated integers of at least 1, "
     "not '4,4'"),
    (["sim", "--rows", "0"], "realm: error: rows must be an integer from 1 to 256, not 0"),
    (["bench", "--sizes", "8,0"],
     "realm bench: error: argument --sizes: must be comma-separated sizes from 1 to 256, "
     "not '8,0'"),
    (["bench", "--batch", "0"], "realm: error: --batch must be a positive integer, not 0"),
    (["synth", "--jobs", "0"], "realm synth: error: --jobs must be at least 1, not 0"),
    (["llm", "eval", "--ber", "2"],
     "realm llm eval: error: argument --ber: must be a probability above 0 and at most 1, "
     "not '2'"),
    (["llm", "eval", "--components", "zz"],
     "realm llm eval: error: argument --components: must be one of q, k, v, qk, sv, o, gate, "
     "up, down, fc1, fc2, not 'zz'"),
    (["llm", "eval", "--components", "o"],
     "realm llm: error: --components target an injection: add --ber or --msd"),
    (["crosslayer", "--components", "q,zz"],
     "realm: error: --components: 'zz' is not one of q, k, v, qk, sv, o, gate, up, "
     "down"),
    (["crosslayer", "--layer", "30"],
     "realm: error: --layer must be below the model's 30 layers, not 30"),
    (["crosslayer", "--ber", "0.5"], "realm: error: --ber must be in (0, 0.01], "
     "not 0.5"),
    (["crosslayer", "--length", "60"],
     "realm: error: --length must be a multiple of 8 from 16 on, not 60"),
    (["crosslayer", "--engine", "ray", "--address", "nohost"],
     "realm: error: --address must be auto or HOST:PORT, not 'nohost'"),
    (["energy", "campaign", "spec.json", "--address", "auto"],
     "realm energy campaign: error: --address goes with --engine ray"),
    (["llm", "abft", "--engine", "gpu"],
     "realm llm abft: error: argument --engine: invalid choice: 'gpu' (choose from 'local', 'ray')"),
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
        "realm: error: A is 3x2 and B is 3x3: the columns of A must equal the rows of B"])
    r = realm("run", "--rows", "2", "--cols", "2",
              *_matrices(tmp_path, np.full((3, 2), 200), np.ones((2, 3))))
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        "realm: error: A must hold INT8 values (-128 to 127), not 200 to 200"])


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_run_multiplies_your_matrices(tmp_path, dataflow):
    g = np.random.default_rng(13)
    a = g.integers(-128, 128, (5, 3))
    b = g.integers(-128, 128, (3, 4))
    a[0, :] = -128  # the extremes too
    b[:, 0] = -128
    out = tmp_path / "c.csv"
    r = realm("run", "--rows", "2", "--cols", "2", "--dataflow", dataflow,
              *_matrices(tmp_path, a, b), "--product", str(out), "-o",
              str(tmp_path / "run.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "match       YES" in r.stdout
    assert (np.loadtxt(out, delimiter=",", dtype=np.int64, ndmin=2) == a @ b).all()


def test_run_with_a_parameter_file_reports_each_tile(tmp_path):
    """`realm run --params F --component o --faults L`: the unit runs on the file's set for 'o',
    and every tile's reported differences (read from the o_d port), MSD, θ, freq_eff and
    flags equal the transaction-level model `golden.stats.decide` on those differences."""
    import json

    from golden.llm import abft
    from golden.stats import StatParams, decide
    g = np.random.default_rng(5)
    a, b = g.integers(-128, 128, (6, 3)), g.integers(-128, 128, (3, 2))
    config = abft.parse_array("2x2-ws")
    sets = {"k": StatParams.from_paper(1.273, 20.076, 0.5),
            "o": StatParams.from_paper(1.5, 24.0, 0.0, sensitive=True)}
    abft.write_params(tmp_path / "p.json", config, {c: (p, None) for c, p in sets.items()},
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
    from golden.llm import abft
    from golden.stats import StatParams
    p = StatParams.from_paper(1.273, 20.076, 0.5)
    abft.write_params(tmp_path / "p.json", abft.parse_array("4x4-os"), {"k": (p, None)},
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
