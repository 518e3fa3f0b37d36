"""Synthesis flow on the smallest arrays: the leaf-block composition (``synth.compose``) against
flat synthesis of the same Verilog the tests simulate, and the CLI's errors. The full sweep is
``make synth`` only."""
import re

import pytest

from hw.config import ArrayConfig
from hw.generate import generate_verilog
from synth.compose import compose, leaf_verilog
from synth.flow import count_flops, synthesize, synthesize_config
from synth.leaves import instances
from tb.cli_fixtures import realm

# Non-square, both dataflows, unprotected and ReaLM: the flip-flops of the composition must be
# exactly those of the flat netlist (every register, with the WS partial sums' merged sign
# copies), and the area within the 3 %.
CASES = [("ws", "none"), ("os", "none"), ("os", "realm")]


@pytest.mark.parametrize("dataflow, abft", CASES, ids=[f"{d}-{a}" for d, a in CASES])
def test_composition_matches_flat(dataflow, abft, tmp_path):
    config = ArrayConfig(rows=2, cols=3, dataflow=dataflow, abft=abft)
    flat = synthesize_config(config, tmp_path / "flat")
    composed = compose(config, root=tmp_path / "leaves")
    assert composed["flops"] == flat["flops"]
    assert abs(composed["area_um2"] / flat["area_um2"] - 1) < 0.03
    assert composed["pe_grid_um2"] < composed["area_um2"]


def test_synthesis_reproduces(tmp_path):
    """The same Verilog gives the same netlist whatever ran before it in this process and in
    whatever directory (each synthesis is a fresh process: Yosys' name counters would
    otherwise change ABC's result)."""
    text = generate_verilog(ArrayConfig(rows=2, cols=2, dataflow="os", abft="classic"))
    runs = []
    for name in ("a", "a_much_longer_directory_name"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.v").write_text(text)
        runs.append(synthesize(tmp_path / name / "x.v", tmp_path / name))
        netlist = (tmp_path / name / "netlist.json").read_text()
        runs[-1]["netlist"] = re.sub(r'"(cell_|module_)?src": "[^"]*"', "", netlist)  # paths
    assert runs[0] == runs[1]


@pytest.fixture(scope="session")
def leaf_flops(tmp_path_factory):
    """Flip-flops of a leaf by key, synthesized once per session."""
    root, cache = tmp_path_factory.mktemp("leaf_flops"), {}

    def flops(key, build):
        if key not in cache:
            cache[key] = count_flops(leaf_verilog(key, build), root / str(len(cache)), top="top")
        return cache[key]
    return flops


def _check_flops(config, tmp_path, leaf_flops):
    flat = count_flops(generate_verilog(config), tmp_path / "flat")
    composed = sum(n * leaf_flops(key, build) for key, (n, build) in instances(config).items())
    assert composed == flat, f"{config.id}: composed {composed} flip-flops, flat {flat}"


# The generator's inventory (hw.parts) against flat synthesis, flip-flop for flip-flop: a WS
# column of 5 rows, the WS checksum tail of a 2-row array (a single wreduce pass left its eᵀy
# chain at full width there, synth.flow.synth_steps), a 12-row column (one pass narrowed
# rows 0-3 of a column only, and pe_10 sorts before pe_2) and a 4x4 ReaLM unit (|d| as a
# negation and a multiplexer left a constant-0 top bit that ABC folded in the flat netlist
# and not in the leaf, 4 flip-flops; hw.stats.magnitude now cancels the sign extension first).
@pytest.mark.parametrize("shape", ["5x2-ws-none", "2x3-ws-realm", "12x2-ws-classic",
                                   "4x4-ws-realm"])
def test_composed_flops_match_flat(shape, tmp_path, leaf_flops):
    size, dataflow, abft = shape.split("-")
    rows, cols = map(int, size.split("x"))
    _check_flops(ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, abft=abft), tmp_path,
                 leaf_flops)


SWEEP = [pytest.param(r, c, d, a, id=f"{r}x{c}-{d}-{a}", marks=[pytest.mark.slow])
         for r, c in [(2, 3), (3, 3), (4, 4), (5, 7)] for d in ("ws", "os")
         for a in ("none", "classic", "approx", "realm")]


@pytest.mark.parametrize("rows, cols, dataflow, abft", SWEEP)
def test_composed_flops_sweep(rows, cols, dataflow, abft, tmp_path, leaf_flops):
    """Every configuration of the sweep (``make test-slow``)."""
    _check_flops(ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, abft=abft), tmp_path,
                 leaf_flops)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_leaf_counts(dataflow):
    """Independent count of the PEs and skew registers of a 5x7 array."""
    config = ArrayConfig(rows=5, cols=7, dataflow=dataflow, abft="realm")
    leaves = instances(config)
    pes = sum(n for k, (n, _) in leaves.items() if k.startswith(("WSProc", "OSProc")))
    checksum_pes = 5 if dataflow == "ws" else 7
    assert pes == 5 * 7 + checksum_pes
    skew = 5 * 4 // 2 + (0 if dataflow == "ws" else 7 * 6 // 2)
    assert leaves["reg8"][0] == skew
    assert sum(n for k, (n, _) in leaves.items() if k.startswith(("wsdiff", "stat"))) == 1


@pytest.mark.parametrize("args, message", [
    (["--rows", "0"], "rows must be an integer from 1 to 256, not 0"),
    (["--cols", "4"], "--cols needs --rows"),
    (["--rows", "4", "--workers", "0"], "argument --workers: must be an integer of at least 1, "
     "not '0'"),
    (["--sizes", "4,300"], "argument --sizes: must be comma-separated array sizes from 1 to "
     "256, not '4,300'"),
    (["--large", "64", "--composed-power", "128"],
     "--composed-power 128 is not among the --large sizes (64)"),
    (["--rows", "4", "--composed-power", "4"],
     "--composed-power 4 is not among the --large sizes (none)"),
])
def test_cli_errors(args, message):
    r = realm("synth", *args)
    assert (r.returncode, r.stderr.splitlines()) == (2, [f"realm synth: error: {message}"])
