"""``hw.config.ArrayConfig``: every field validated with a one-line error naming the field, the
rule and the value; JSON round trip; the CLI reports the same errors."""
import json
import re

import pytest

from hw.config import Abft, ArrayConfig, Dataflow
from tb.cli_fixtures import realm

BAD = [
    ({"rows": 0}, "rows must be an integer from 1 to 256, not 0"),
    ({"rows": 257}, "rows must be an integer from 1 to 256, not 257"),
    ({"rows": "4"}, "rows must be an integer from 1 to 256, not '4'"),
    ({"rows": True}, "rows must be an integer from 1 to 256, not True"),
    ({"cols": -1}, "cols must be an integer from 1 to 256, not -1"),
    ({"cols": 2.0}, "cols must be an integer from 1 to 256, not 2.0"),
    ({"dataflow": "is"}, "dataflow must be one of 'ws', 'os', not 'is'"),
    ({"data_width": 1}, "data_width must be an integer from 2 to 16, not 1"),
    ({"data_width": 17}, "data_width must be an integer from 2 to 16, not 17"),
    ({"acc_width": 15}, "acc_width must be an integer from 16 to 64, not 15"),
    ({"data_width": 4, "acc_width": 7}, "acc_width must be an integer from 8 to 64, not 7"),
    ({"acc_width": 65}, "acc_width must be an integer from 16 to 64, not 65"),
    ({"abft": "tmr"}, "abft must be one of 'none', 'classic', 'approx', 'realm', not 'tmr'"),
    ({"fault_port": 1}, "fault_port must be true or false, not 1"),
]


@pytest.mark.parametrize("fields, message", BAD, ids=[m.split(" ")[0] + str(i)
                                                      for i, (_, m) in enumerate(BAD)])
def test_bad_field(fields, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ArrayConfig(**fields)


def test_defaults_and_id():
    c = ArrayConfig()
    assert (c.rows, c.cols, c.dataflow, c.data_width, c.acc_width, c.abft) == \
        (8, 8, Dataflow.WS, 8, 32, Abft.NONE)
    assert c.id == "8x8-ws"
    assert ArrayConfig(rows=2, cols=3, dataflow="os", acc_width=16, abft="realm",
                       fault_port=True).id == "2x3-os-i8a16-realm-fi"
    assert c.latency == 15


def test_json_roundtrip():
    c = ArrayConfig(rows=3, cols=5, dataflow="os", data_width=6, acc_width=20, abft="approx")
    text = c.to_json()
    assert json.loads(text)["dataflow"] == "os"
    assert ArrayConfig.from_json(text) == c


@pytest.mark.parametrize("text, message", [
    ("{", "configuration is not valid JSON"),
    ("[1]", "configuration JSON must be an object"),
    ('{"rows": 4, "depth": 2}', "unknown configuration field 'depth'"),
    ('{"rows": 0}', "rows must be an integer from 1 to 256, not 0"),
])
def test_bad_json(text, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        ArrayConfig.from_json(text)


def test_frozen():
    with pytest.raises(Exception):
        ArrayConfig().rows = 4
    assert ArrayConfig().replace(rows=4).rows == 4
    with pytest.raises(ValueError, match="^rows must be"):
        ArrayConfig().replace(rows=0)


def test_cli_reports_bad_config(tmp_path):
    r = realm("generate", "--rows", "0", "-o", tmp_path / "x.v")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == \
        "realm generate: error: rows must be an integer from 1 to 256, not 0"
    assert not (tmp_path / "x.v").exists()


def test_cli_generate_has_no_paths(tmp_path):
    out = tmp_path / "a.v"
    r = realm("generate", "--rows", "2", "--cols", "3", "--dataflow", "os", "-o", out)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "module systolic_array" in text
    assert "/work" not in text and "/home" not in text and ".py:" not in text


#: Every field changed alone from the default, and the id that names it (written out by hand).
ID_CASES = [
    ({}, "8x8-ws"), ({"rows": 3, "cols": 5}, "3x5-ws"), ({"dataflow": "os"}, "8x8-os"),
    ({"data_width": 4, "acc_width": 12}, "8x8-ws-i4a12"), ({"acc_width": 24}, "8x8-ws-i8a24"),
    ({"abft": "approx"}, "8x8-ws-approx"), ({"fault_port": True}, "8x8-ws-fi"),
    ({"param_sets": 16}, "8x8-ws-s16"), ({"hist_bins": 3}, "8x8-ws-h3"),
    ({"counter_width": 12}, "8x8-ws-n12"),
    ({"rows": 2, "cols": 7, "dataflow": "os", "abft": "realm", "fault_port": True,
      "param_sets": 1, "hist_bins": 5, "counter_width": 48}, "2x7-os-realm-fi-s1-h5-n48"),
]


@pytest.mark.parametrize("fields, name", ID_CASES, ids=[n for _, n in ID_CASES])
def test_id_names_every_field(fields, name):
    """The id differs for every field that changes the Verilog (the statistical unit's sizes
    included: they name build directories), and from_id reads it back exactly."""
    config = ArrayConfig(**fields)
    assert config.id == name
    assert ArrayConfig.from_id(name) == config


def test_ids_are_unique():
    ids = [ArrayConfig(**f).id for f, _ in ID_CASES]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("text, message", [
    ("8x8", "'8x8' is not an array configuration id"),
    ("8x8-ws-s4", "'8x8-ws-s4' is not an array configuration id; did you mean '8x8-ws'?"),
    ("8x8-ws-fi-realm", "'8x8-ws-fi-realm' is not an array configuration id ("),
    ("0x8-ws", "rows must be an integer from 1 to 256, not 0"),
])
def test_from_id_rejects(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ArrayConfig.from_id(text)


def test_name_is_size_and_dataflow():
    assert ArrayConfig(rows=64, cols=32, dataflow="os", abft="realm").name == "64x32-os"
    assert ArrayConfig.from_name("16-os", abft="classic") == ArrayConfig(
        rows=16, cols=16, dataflow="os", abft="classic")
    with pytest.raises(ValueError, match="array must look like 64x64-ws or 16-os, not '64by64'"):
        ArrayConfig.from_name("64by64")
