"""Verilog generation for a configuration."""
import pathlib

from amaranth.back import verilog

from .array import SystolicArray

#: Name of the top-level Verilog module.
TOP = "systolic_array"


def generate_verilog(config, name=TOP):
    """Return the Verilog text of the array for ``config`` (no source paths in it)."""
    return verilog.convert(SystolicArray(config), name=name, emit_src=False)


def write_verilog(config, path, name=TOP):
    """Write the Verilog for ``config`` to ``path`` (parents created); return the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(generate_verilog(config, name))
    return path
