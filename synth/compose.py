"""Area of an array composed from its leaf blocks (:mod:`synth.leaves`), for sizes too large to
synthesize flat (256x256 has 65,536 PEs and about 1.3 million skew and alignment flip-flops).

Each distinct leaf is synthesized once, with the same flow as the flat arrays
(:func:`synth.flow.synthesize`), and cached in ``build/synth/leaves/<key>/``; the array's cells,
flip-flops and area are the instance-count-weighted sums. The critical path is the longest
leaf path: wires and the buffer trees of the broadcast nets (``w_load``, ``drain``, the
accept signals) are not modelled. :func:`validate` compares the composition with flat
synthesis where both exist.
"""
import pathlib

from amaranth.back import verilog

from .flow import synthesize_cached
from .leaves import instances

LEAVES = pathlib.Path("build/synth/leaves")


_VERILOG = {}


def leaf_verilog(key, build):
    """The Verilog of one leaf (top module ``top``), generated once per process: a key names
    one leaf, and the sweep, the compositions and the composed power all ask for it."""
    if key not in _VERILOG:
        _VERILOG[key] = verilog.convert(build(), name="top", emit_src=False)
    return _VERILOG[key]


def leaf_figures(key, build, root=LEAVES):
    """Synthesize one leaf (cached by its Verilog text); return its figures."""
    return synthesize_cached(leaf_verilog(key, build), pathlib.Path(root) / key, top="top")


def compose(config, root=LEAVES, progress=None):
    """Composed figures of ``config``: cells, flops, area, delay, and the area by leaf."""
    total = {"cells": 0, "flops": 0, "area_um2": 0.0, "delay_ps": 0.0}
    by_leaf = {}
    for key, (count, build) in instances(config).items():
        if progress:
            progress(f"  leaf {key} x{count}")
        f = leaf_figures(key, build, root)
        for k in ("cells", "flops", "area_um2"):
            total[k] += count * f[k]
        total["delay_ps"] = max(total["delay_ps"], f["delay_ps"] or 0.0)
        by_leaf[key] = {"count": count, "area_um2": f["area_um2"], "delay_ps": f["delay_ps"],
                        "total_um2": count * f["area_um2"]}
    pe_grid = sum(v["total_um2"] for key, v in by_leaf.items() if _is_pe(key)
                  and not _is_checksum_pe(key))
    return {**total, "pe_grid_um2": pe_grid, "leaves": by_leaf}


def _is_pe(key):
    return key.startswith(("WSProcessingElement", "OSProcessingElement"))


def _is_checksum_pe(key):
    return "-weight_width" in key or "-a_width" in key


def breakdown(config, base, composed):
    """Where the extra area of a protected ``composed`` array goes, against the composed
    unprotected ``base`` of the same size: ``{block: um2}`` with blocks named after the
    leaves (PE-class differences go to ``"edge PEs"``)."""
    extra = {}
    for key, leaf in composed["leaves"].items():
        delta = leaf["total_um2"] - base["leaves"].get(key, {}).get("total_um2", 0.0)
        if delta:
            name = _block_name(key)
            extra[name] = extra.get(name, 0.0) + delta
    for key, leaf in base["leaves"].items():
        if key not in composed["leaves"]:
            name = _block_name(key)
            extra[name] = extra.get(name, 0.0) - leaf["total_um2"]
    return extra


def _block_name(key):
    if _is_pe(key):
        return "checksum PEs" if _is_checksum_pe(key) else "edge PEs (unused outputs)"
    for prefix, name in (("lanesum", "checksum adder tree"), ("ycell", "output-checksum cells"),
                         ("wsdiff", "statistical unit"), ("stat", "statistical unit"),
                         ("control", "control"), ("reg", "delay registers"),
                         ("gate", "input gates")):
        if key.startswith(prefix):
            return name
    return key
