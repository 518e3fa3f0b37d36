"""``hw.config.ArrayConfig``: every field validated with a one-line error naming the field, the
rule and the value; JSON round trip; the CLI reports the same errors."""
import json
import re
import subprocess
import sys

import pytest

from hw.config import Abft, ArrayConfig, Dataflow

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
    r = subprocess.run([sys.executable, "-m", "hw", "generate", "--rows", "0", "-o",
                        str(tmp_path / "x.v")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == \
        "python -m hw: error: rows must be an integer from 1 to 256, not 0"
    assert not (tmp_path / "x.v").exists()


def test_cli_generate_has_no_paths(tmp_path):
    out = tmp_path / "a.v"
    r = subprocess.run([sys.executable, "-m", "hw", "generate", "--rows", "2", "--cols", "3",
                        "--dataflow", "os", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "module systolic_array" in text
    assert "/work" not in text and "/home" not in text and ".py:" not in text
