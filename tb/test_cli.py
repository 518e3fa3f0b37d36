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
    (["synth", "--jobs", "0"], "realm synth: error: --jobs must be at least 1, not 0"),
    (["llm", "eval", "--ber", "2"],
     "realm llm eval: error: argument --ber: must be a probability above 0 and at most 1, "
     "not '2'"),
    (["llm", "eval", "--components", "zz"],
     "realm llm eval: error: argument --components: must be one of q, k, v, qk, sv, o, gate, "
     "up, down, fc1, fc2, not 'zz'"),
    (["llm", "eval", "--components", "o"],
     "realm llm: error: --components target an injection: add --ber or --msd"),
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
