"""``golden.faults``: the JSON fault-list format, its round trip, and bad lists rejected with a
message naming the entry; the golden model applies faults exactly where and when they say."""
import json
import re

import pytest
import torch

from golden.array import ArrayModel
from golden.faults import FaultListError, dump_faults, load_faults, parse_faults
from golden.stimulus import Driver
from hw.config import ArrayConfig
from tb.cli_fixtures import realm

CFG = ArrayConfig(rows=4, cols=4, abft="realm", fault_port=True)


def test_roundtrip(tmp_path):
    doc = {"format": "realm-faults/1", "faults": [
        {"site": "pe.acc", "row": 1, "col": 2, "cycle": 40, "kind": "flip", "bit": 30},
        {"site": "ck.y", "row": 0, "col": 3, "cycle": 9, "kind": "stuck1", "mask": "0xff",
         "duration": 5},
        {"site": "stat.msd", "row": 0, "col": 0, "cycle": 2, "kind": "stuck0", "bit": 34},
        {"site": "gemm.acc", "component": "o", "layer": 3, "call": 0, "row": 17, "col": 200,
         "kind": "flip", "bit": 30}]}
    faults = parse_faults(doc, CFG)
    assert faults[0].mask == 1 << 30 and faults[1].mask == 0xFF and faults[1].duration == 5
    path = tmp_path / "f.json"
    dump_faults(faults, path)
    assert load_faults(path, CFG) == faults


BAD = [
    ([{"site": "pe.acc", "row": 4, "col": 0, "cycle": 1, "bit": 3}],
     "fault 0: row must be 0 to 3, not 4"),
    ([{"site": "pe.acc", "row": 0, "col": 0, "cycle": 1, "bit": 3},
      {"site": "pe.acc", "row": 0, "col": 0, "cycle": 1, "bit": 32}],
     "fault 1: bit must be 0 to 31, not 32"),
    ([{"site": "pe.a", "row": 0, "col": 0, "cycle": 1, "bit": 8}],
     "fault 0: bit must be 0 to 7, not 8"),
    ([{"site": "pe.x", "row": 0, "col": 0}], "fault 0: unknown site 'pe.x' (known: "),
    ([{"site": "pe.acc", "row": 0, "col": 0, "cycle": 1}],
     "fault 0: give exactly one of 'bit' or 'mask'"),
    ([{"site": "pe.acc", "row": 0, "col": 0, "cycle": 1, "mask": "0x1ffffffff"}],
     "fault 0: mask 0x1ffffffff must be non-zero and fit in 32 bits"),
    ([{"site": "pe.acc", "row": 0, "col": 0, "cycle": -1, "bit": 1}],
     "fault 0: cycle must be at least 0, not -1"),
    ([{"site": "pe.acc", "row": 0, "col": 0, "cycle": 1, "bit": 1, "kind": "melt"}],
     "fault 0: kind must be one of flip, stuck0, stuck1, not 'melt'"),
    ([{"site": "pe.acc", "row": 0, "col": 0, "cycle": 1, "bit": 1, "when": 3}],
     "fault 0: unknown field 'when' for site 'pe.acc'"),
    ([{"site": "ck.acc", "row": 0, "col": 1, "cycle": 1, "bit": 1}],
     "fault 0: col must be 0 to 0, not 1"),
    ([17], "fault 0: an entry must be a JSON object, not 17"),
    ({"format": "other/2", "faults": []}, "fault list format must be 'realm-faults/1'"),
    ({"faults": {}}, "fault list must be a JSON list of entries"),
]


@pytest.mark.parametrize("doc, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_entries(doc, message):
    with pytest.raises(FaultListError, match="^" + re.escape(message)):
        parse_faults(doc, CFG)


def test_abft_sites_need_abft():
    with pytest.raises(FaultListError, match=r"^fault 0: site 'ck\.y' needs checksum logic"):
        parse_faults([{"site": "ck.y", "row": 0, "col": 0, "cycle": 0, "bit": 0}],
                     CFG.replace(abft="none"))


def test_malformed_and_missing_files(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"faults": [')
    with pytest.raises(FaultListError, match="is not valid JSON"):
        load_faults(p, CFG)
    with pytest.raises(FaultListError, match="does not exist"):
        load_faults(tmp_path / "none.json", CFG)


def test_cli_rejects_bad_fault_list(tmp_path):
    p = tmp_path / "f.json"
    p.write_text(json.dumps([{"site": "pe.acc", "row": 9, "col": 0, "cycle": 1, "bit": 1}]))
    r = realm("sim", "--faults", p)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith("fault 0: row must be 0 to 7, not 9")


def test_golden_applies_flip_at_its_cycle():
    """A flip of bit 20 of PE (1, 2)'s partial sum as vector 0 passes: y[2] of that vector
    moves by exactly +-2**20, nothing else changes."""
    cfg = ArrayConfig(rows=3, cols=4)
    w = torch.arange(12).reshape(3, 4) - 6
    x = torch.tensor([[1, -2, 3], [4, 5, -6]])
    program = [("load", w), ("stream", x, 0)]
    clean = ArrayModel(cfg).run(Driver(cfg, program))
    t0 = 3  # three weight rows, then vector 0 in cycle 3
    faults = parse_faults([{"site": "pe.acc", "row": 1, "col": 2, "cycle": t0 + 1 + 2,
                            "bit": 20}], cfg)
    hit = ArrayModel(cfg, faults).run(Driver(cfg, program))
    outs = [(o["o_c"], h["o_c"]) for o, h in zip(clean, hit) if o["o_valid"]]
    (c0, h0), (c1, h1) = outs
    partial = int(x[0, 0] * w[0, 2] + x[0, 1] * w[1, 2])  # PE (1, 2)'s sum for vector 0
    delta = -(1 << 20) if (partial >> 20) & 1 else 1 << 20  # two's complement bit 20
    assert partial == -4 and delta == -(1 << 20)
    assert [h - c for h, c in zip(h0, c0)] == [0, 0, delta, 0]
    assert h1 == c1
