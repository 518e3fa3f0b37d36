"""Timing characterization (``synth.timing``) and the voltage -> error model (``synth.voltage``)
on tiny PEs (2-bit operands, 8-bit accumulators): OpenSTA's per-bit arrivals bound the
SDF-annotated gate-level simulation, edge by edge; a flip-flop sampling after everything has
settled latches exactly the golden model's value; sampling early gives exactly the errors read
back, independently, from the simulation's VCD; the voltage curves are docs/energy.md's; bad grids
and missing tools are one line."""
import csv
import json
import re

import numpy as np
import pytest

from hw.config import ArrayConfig
from synth import timing, tools, voltage
from synth.sta import icarus_sdf
from synth.timing import characterize, check_stream, expected_acc, select_pe
from synth.waveform import Waveform
from tb.cli_fixtures import realm

#: (dataflow, checksum PE) of the tiny PEs: a WS PE deep in its column (a wide partial sum
#: in), an OS PE (drain), and a pipelined OS checksum PE.
PES = [("ws", False), ("os", False), ("os", True)]
CYCLES = 1500
#: SDF delays have 6 decimals of a ns and the simulation resolves 1 fs, so a simulated
#: arrival is a sum of the delays OpenSTA adds, each rounded to 1 fs.
ROUNDING_PS = 0.01


def tiny(dataflow):
    return ArrayConfig(rows=4, cols=4, dataflow=dataflow, data_width=2, acc_width=8)


@pytest.fixture(scope="module", params=PES, ids=[f"{d}-{'check' if c else 'pe'}" for d, c in PES])
def char(request, tmp_path_factory):
    dataflow, check = request.param
    pe = select_pe(tiny(dataflow), check=check)
    return characterize(pe, tmp_path_factory.mktemp(pe.name), cycles=CYCLES, seed=7, vcd=True)


def test_settle_within_sta(char):
    """No bit changes later than OpenSTA's arrival at its D pin for the edge it ends on (a
    bit that settles at 1 rose last, one at 0 fell last), timed with the delays the
    simulation uses (the SDF's); those agree with the Liberty's STA within 2 %."""
    wave, sta, lib = char.wave, char.sta_sdf, char.sta
    bits = (wave.settled[:, None] >> np.arange(wave.acc_width)) & 1
    for k in range(wave.acc_width):
        rose = wave.settle[bits[:, k] == 1, k]
        fell = wave.settle[bits[:, k] == 0, k]
        assert rose.max(initial=0) <= sta.rise[k] + ROUNDING_PS, k
        assert fell.max(initial=0) <= sta.fall[k] + ROUNDING_PS, k
    # the bound is approached: the latest simulated change is within 10 % of the latest arrival
    assert 0.9 * sta.acc_critical < wave.max_settle <= sta.acc_critical + ROUNDING_PS
    assert np.allclose(sta.arrival, lib.arrival, rtol=0.02)
    assert abs(sta.min_period / lib.min_period - 1) < 0.02
    assert 150 < lib.setup < 200 and lib.acc_period <= lib.min_period + ROUNDING_PS


def test_settled_is_golden(char):
    assert np.array_equal(char.wave.settled, expected_acc(char.pe, char.stream))


def test_waveform_reloads(char, tmp_path):
    """The saved events rebuild the same waveform (new tables need no new simulation)."""
    char.wave.save(tmp_path / "events.npz")
    again = Waveform.load(tmp_path / "events.npz")
    clock = 0.7 * char.sta.min_period
    assert np.array_equal(again.settle, char.wave.settle)
    assert np.array_equal(again.errors(clock), char.wave.errors(clock))
    assert again.safe_clock == char.wave.safe_clock


def test_long_period_latches_the_correct_value(char):
    """A clock longer than the critical path latches the golden value in every cycle: 1 %
    above the PE's STA period, and just above the accumulator's period with the simulation's
    delays; from the waveform's own shortest safe clock on there is no error, 1 fs below it
    the cycles whose last change comes latest go wrong."""
    wave, sta = char.wave, char.sta_sdf
    want = expected_acc(char.pe, char.stream)
    for clock in (1.01 * char.sta.min_period, sta.acc_period + 0.001, wave.safe_clock):
        assert np.array_equal(wave.latched(clock), want), clock
        assert not wave.errors(clock).any()
    assert wave.safe_clock <= sta.acc_period + ROUNDING_PS
    assert wave.errors(wave.safe_clock - 0.001).any()


def vcd_changes(path, name="acc_d"):
    """``[(time_fs, value)]`` of vector ``name`` in a VCD file, in file order (values with X
    or Z, before reset, left out)."""
    code, t, out = None, 0, []
    for line in path.read_text().splitlines():
        w = line.split()
        if not w:
            continue
        if w[0] == "$var" and w[4] == name:
            code = w[3]
        elif w[0].startswith("#"):
            t = int(w[0][1:])
        elif w[0].startswith("b") and len(w) == 2 and w[1] == code and w[0][1:].isdigit():
            out.append((t, int(w[0][1:], 2)))
    return out


def ref_errors(char, clock_ps):
    """Per cycle, from the simulation's VCD: bit by bit, the value after the latest change
    that meets the flip-flop's setup for its edge at a ``clock_ps`` clock, the word signed,
    minus the golden model's value."""
    wave, aw, sta = char.wave, char.wave.acc_width, char.sta_sdf
    period = round(wave.period * 1000)
    setup = {1: [round(x * 1000) for x in sta.setup_rise],
             0: [round(x * 1000) for x in sta.setup_fall]}
    changes = vcd_changes(char.netlist.verilog.parent / "acc_d.vcd")
    want = expected_acc(char.pe, char.stream)
    i, value, out = 0, None, []
    for c in range(wave.cycles):
        edge = wave.origin_fs + c * period
        while i < len(changes) and changes[i][0] <= edge:  # the previous cycles
            value = changes[i][1]
            i += 1
        latched = value
        for t, new in (ch for ch in changes[i:] if ch[0] < edge + period):
            for k in range(aw):
                bit = (new >> k) & 1
                if bit != (value >> k) & 1 and t - edge <= (int(np.floor(clock_ps * 1000))
                                                             - setup[bit][k]):
                    latched = latched & ~(1 << k) | (bit << k)
            value = new
        latched -= (latched >> (aw - 1)) << aw
        out.append(latched - int(want[c]))
    return np.array(out)


def test_short_period_errors_match_the_waveform(char):
    """At a clock well below the critical path, errors appear, and each cycle's error is,
    read independently from the VCD, what the flip-flops latch minus the golden value."""
    wave = char.wave
    clock = 0.7 * char.sta.min_period
    errors = wave.errors(clock)
    assert np.count_nonzero(errors) > CYCLES // 20
    assert np.array_equal(errors, ref_errors(char, clock))
    assert np.array_equal(wave.bit_errors(clock).any(axis=1), errors != 0)


# ---------------------------------------------------------------------------------------------
# The voltage model.

def test_curves_are_energy_md():
    """The slowdowns of docs/energy.md §2 (table "Slowdown s(V) for each curve"), and where they
    cross ReaLM's margin 500/439 (the STA onset: B 0.792 V, C 0.808 V)."""
    grid = (0.85, 0.80, 0.75, 0.72, 0.70, 0.65, 0.60)
    table = {"A": (1.031, 1.083, 1.171, 1.253, 1.326, 1.610, 2.157),
             "B": (1.058, 1.127, 1.211, 1.272, 1.318, 1.455, 1.642),
             "C": (1.069, 1.154, 1.261, 1.339, 1.400, 1.588, 1.858)}
    for name, want in table.items():
        c = voltage.CURVES[name]
        assert tuple(round(c.slowdown(v), 3) for v in grid) == want, name
        assert c.slowdown(voltage.V_NOMINAL) == pytest.approx(1.0, abs=1e-12)
    onset = {}
    for name in ("B", "C"):
        lo, hi = 0.6, 0.9
        for _ in range(50):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if voltage.CURVES[name].slowdown(mid) > voltage.MARGIN else (lo,
                                                                                        mid)
        onset[name] = round(lo, 3)
    assert onset == {"B": 0.792, "C": 0.808}


def test_table_counts_the_waveform(char):
    """p, p_bit and f_e of the table are the waveform's errors at the clock T(V), counted."""
    ref = char.sta.min_period
    grid = (0.9, 0.8, 0.7, 0.6)
    table, per_cycle = voltage.error_table(char.wave, grid, ref)
    for row, errors in zip(table["table"], per_cycle):
        clock = voltage.MARGIN * ref / voltage.CURVES["A"].slowdown(row["v"])
        assert row["clock_ps"] == round(clock, 3)
        assert np.array_equal(errors, char.wave.errors(clock))
        assert row["errors"] == np.count_nonzero(errors) and row["p"] == row["errors"] / CYCLES
        values, counts = np.unique(errors[errors != 0], return_counts=True)
        assert row["f_e"] == [[int(v), int(n)] for v, n in zip(values, counts)]
        assert sum(row["f_e_msb"].values()) == row["errors"]
        assert row["p_bit"] == [round(float(x), 8) for x in
                                char.wave.bit_errors(clock).mean(axis=0)]
    assert table["table"][0]["errors"] == 0  # nominal voltage: margin 1.139, no error
    assert table["table"][-1]["errors"] > 0  # 0.6 V: s = 2.157


@pytest.mark.parametrize("grid, message", [
    ("abc", "voltage grid must be comma-separated voltages or START:STOP:STEP, not 'abc'"),
    ("0.9,x", "voltage grid must be comma-separated voltages or START:STOP:STEP, not '0.9,x'"),
    ("nan", "voltage grid must be comma-separated voltages or START:STOP:STEP, not 'nan'"),
    ("0.9:0.6", "voltage grid must be comma-separated voltages or START:STOP:STEP, "
                "not '0.9:0.6'"),
    ("", "voltage grid is empty"),
    (" , ", "voltage grid is empty"),
    ([], "voltage grid is empty"),
    ("0.9:0.6:0", "voltage grid step must be positive, not '0'"),
    ("0.9:0.5:0.01", "voltage 0.5 V is outside curve A's range 0.60 to 0.90 V"),
    ("0.95,0.8", "voltage 0.95 V is outside curve A's range 0.60 to 0.90 V"),
    ([0.8, "0.7"], "voltage grid must hold numbers, not '0.7'"),
])
def test_bad_grid_is_one_line(grid, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        voltage.check_grid(grid, "A")


def test_grid_ranges():
    assert voltage.check_grid("0.9:0.85:0.01") == (0.9, 0.89, 0.88, 0.87, 0.86, 0.85)
    assert voltage.check_grid("0.6:0.62:0.01", "B") == (0.6, 0.61, 0.62)
    assert voltage.check_grid("0.55", "C") == (0.55,)
    with pytest.raises(ValueError, match=r"^voltage 0\.55 V is outside curve A's range "):
        voltage.check_grid("0.55", "A")


@pytest.mark.parametrize("args, message", [
    (["--grid", "0.9:x:0.1"], "realm timing: error: voltage grid must be comma-separated "
     "voltages or START:STOP:STEP, not '0.9:x:0.1'"),
    (["--curve", "B", "--grid", "0.5,0.9"],
     "realm timing: error: voltage 0.5 V is outside curve B's range 0.55 to 0.90 V"),
    (["--at", "0,4", "--cols", "4"], "realm timing: error: there is no PE at (0, 4) in a 8x4 "
     "ws array"),
    (["--stream", "none.npz"], "realm timing: error: --stream must be 'uniform' or an "
     "existing .npz file, not 'none.npz'"),
])
def test_cli_bad_input_is_one_line(args, message):
    r = realm("timing", *args)
    assert (r.returncode, r.stderr.splitlines()) == (2, [message])


def test_cli_runs_a_user_stream(tmp_path):
    """``realm timing --stream FILE.npz``: the stream's cycles, checked against the golden
    model, and the table's files agree with each other."""
    pe = select_pe(tiny("os"))
    stream = timing.uniform_stream(pe, 300, seed=3, k=16)
    np.savez(tmp_path / "s.npz", **stream)
    out = tmp_path / "out"
    r = realm("timing", "--rows", "4", "--cols", "4", "--dataflow", "os", "--data-width", "2",
              "--acc-width", "8", "--stream", str(tmp_path / "s.npz"), "--grid", "0.9,0.7,0.6",
              "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "timing.json").read_text())
    assert doc["gls"]["cycles"] == 300 and doc["gls"]["stream"] == str(tmp_path / "s.npz")
    errors = np.load(out / "errors.npz")
    assert errors["v"].tolist() == [0.9, 0.7, 0.6] and errors["errors"].shape == (3, 300)
    rows = list(csv.DictReader((out / "pv.csv").read_text().splitlines()))
    for row, line, e in zip(doc["table"], rows, errors["errors"]):
        assert row["errors"] == np.count_nonzero(e) == int(line["errors"])
        assert float(line["p"]) == row["p"] == row["errors"] / 300
    assert doc["table"][0]["errors"] == 0 and doc["table"][2]["errors"] > 0


# ---------------------------------------------------------------------------------------------
# Streams and tools.

def test_stream_is_checked():
    pe = select_pe(tiny("ws"))
    good = {"i_a": np.zeros(3, int), "i_p": np.zeros(3, int), "i_w": np.zeros(3, int),
            "w_load": np.zeros(3, int)}
    assert check_stream(pe, good).keys() == good.keys()
    cases = [
        ({**good, "drain": good["i_a"]}, "the operand stream must have exactly the PE's "
         "inputs i_a, i_p, i_w, w_load (missing: none; unknown: drain)"),
        ({**good, "i_a": np.array([0, 2, 0])}, "operand stream i_a must be within -2..1 "
         "(2 bits), not 0..2"),
        ({**good, "w_load": np.zeros(2, int)}, "operand stream w_load has 2 cycles, not 3"),
        ({k: v[:0] for k, v in good.items()}, "the operand stream has no cycle"),
    ]
    for stream, message in cases:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            check_stream(pe, stream)


def test_missing_tools_are_one_line(tmp_path, monkeypatch, capsys):
    """Without apt-get (here: not on PATH, nothing fetched yet) the tools are one line, from
    the library and from the CLI, before any work."""
    monkeypatch.setenv("PATH", str(tmp_path))
    message = ("cannot fetch Debian package opensta: apt-get and dpkg-deb are needed (a "
               "Debian or Ubuntu machine)")
    with pytest.raises(tools.ToolUnavailable, match=f"^{re.escape(message)}$"):
        tools.opensta(root=tmp_path / "tools")
    monkeypatch.setattr(tools, "TOOLS", tmp_path / "tools")
    from realm.cli.main import main
    assert main(["timing", "--data-width", "2", "--acc-width", "8"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"realm timing: error: {message}"]


def test_missing_library_is_one_line(monkeypatch):
    monkeypatch.setattr(tools, "_missing", lambda binaries, env: ["libfoo.so.1"])
    with pytest.raises(tools.ToolUnavailable, match=r"^OpenSTA needs the shared library "
                       r"libfoo\.so\.1, which this machine lacks and no fetched package "
                       r"provides$"):
        tools.opensta()


def test_sdf_for_icarus():
    text = ("(INTERCONNECT a b (0.000000::0.000000))\n"
            "(IOPATH A Y (0.1::0.128) (::0.2))\n(SETUP (posedge D) (posedge CLK) (0.19::0.18))")
    assert icarus_sdf(text) == (
        "(INTERCONNECT a b (0.000000:0.000000:0.000000))\n"
        "(IOPATH A Y (0.128:0.128:0.128) (0.2:0.2:0.2))\n"
        "(SETUP (posedge D) (posedge CLK) (0.18:0.18:0.18))")
    with pytest.raises(ValueError, match=r"^non-zero interconnect delay in the SDF: "):
        icarus_sdf("(INTERCONNECT a b (0.0::0.01))")
