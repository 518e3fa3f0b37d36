"""Debian tools fetched at run time, never installed and never committed: OpenSTA (``opensta``)
and Icarus Verilog (``iverilog``) for the timing characterization (:mod:`synth.timing`), and
the OSU 0.18 um cell package (``qflow-tech-osu018``) for :mod:`synth.flow`.

Each package is fetched once with ``apt-get download`` (after an ``apt-get update`` if the
package lists do not know it) and unpacked with ``dpkg-deb -x`` into ``build/tools/<package>/``,
as the Liberty always was; the ``.deb`` file name is kept in ``source.txt`` there. The packages
are GPL: fetching them is cleaner than committing them.

The binaries run from where they were unpacked. Their shared libraries (Tcl, readline, zlib,
bzip2) are looked up with ``ldd``; one the system lacks is fetched the same way from its own
Debian package and found through ``LD_LIBRARY_PATH`` (Tcl's scripts through ``TCL_LIBRARY``).
Where a tool cannot be had (no ``apt-get``, no network, a library with no known package),
:class:`ToolUnavailable` says so in one line.
"""
import dataclasses
import os
import pathlib
import shutil
import subprocess
import tempfile

from hw import paths

TOOLS = paths.BUILD / "tools"

#: The Debian packages of the shared libraries the tools link (bookworm names).
LIBRARY_PACKAGES = {
    "libtcl8.6.so": "libtcl8.6",
    "libreadline.so.8": "libreadline8",
    "libtinfo.so.6": "libtinfo6",
    "libz.so.1": "zlib1g",
    "libbz2.so.1.0": "libbz2-1.0",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
}

_ARCH_LIB = "usr/lib/x86_64-linux-gnu"


class ToolUnavailable(RuntimeError):
    """A tool (or its library) cannot be fetched or run here; the message is one line."""


def fetch_deb(package, root=None):
    """Return the directory ``package`` is unpacked in (``build/tools/<package>``), fetching
    and unpacking it the first time."""
    root = pathlib.Path(root or TOOLS)
    dest = root / package
    if (dest / "source.txt").exists():
        return dest
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ToolUnavailable(f"cannot fetch Debian package {package}: apt-get and dpkg-deb "
                              "are needed (a Debian or Ubuntu machine)")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        tmp = pathlib.Path(tmp)
        cmd = ["apt-get", "download", package]
        r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        debs = sorted(tmp.glob(f"{package}_*.deb"))
        if r.returncode != 0 or not debs:
            why = (r.stderr.strip().splitlines() or ["no .deb file"])[-1]
            raise ToolUnavailable(f"cannot download Debian package {package}: {why}")
        unpacked = tmp / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True)
        (unpacked / "source.txt").write_text(debs[0].name + "\n")
        try:
            unpacked.rename(dest)  # atomic: a concurrent fetch may have won
        except OSError:
            if not (dest / "source.txt").exists():
                raise
    return dest


def source(package, root=None):
    """The ``.deb`` file ``package`` was unpacked from."""
    return (pathlib.Path(root or TOOLS) / package / "source.txt").read_text().strip()


@dataclasses.dataclass(frozen=True)
class Tool:
    """Unpacked executables and the environment they run in."""

    name: str
    paths: dict
    env: dict
    packages: tuple

    def __getitem__(self, name):
        return self.paths[name]

    def run(self, argv, **kw):
        """``subprocess.run`` of ``argv`` in this tool's environment."""
        return subprocess.run(argv, env={**os.environ, **self.env}, **kw)


def _missing(binaries, env):
    missing = []
    for b in binaries:
        r = subprocess.run(["ldd", str(b)], capture_output=True, text=True,
                           env={**os.environ, **env})
        for line in r.stdout.splitlines():
            if "not found" in line:
                name = line.split("=>")[0].strip()
                if name not in missing:
                    missing.append(name)
    return missing


def _with_libraries(name, binaries, packages, root):
    """The environment ``binaries`` need: fetch the packages of the libraries ``ldd`` does
    not find, until none is missing."""
    env, libdirs = {}, []
    packages = list(packages)
    while True:
        missing = _missing(binaries, env)
        if not missing:
            return env, tuple(packages)
        new = []
        for lib in missing:
            pkg = LIBRARY_PACKAGES.get(lib)
            if pkg is None or pkg in packages:
                raise ToolUnavailable(f"{name} needs the shared library {lib}, which this "
                                      "machine lacks and no fetched package provides")
            new.append(pkg)
        for pkg in new:
            d = fetch_deb(pkg, root)
            packages.append(pkg)
            for sub in (_ARCH_LIB, "lib/x86_64-linux-gnu"):
                if (d / sub).is_dir():
                    libdirs.append(str(d / sub))
            tcl = d / "usr/share/tcltk/tcl8.6"
            if (tcl / "init.tcl").exists():
                env["TCL_LIBRARY"] = str(tcl)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            libdirs + [p for p in [os.environ.get("LD_LIBRARY_PATH")] if p])


def opensta(root=None):
    """OpenSTA (Debian ``opensta``): ``tool["sta"]``."""
    d = fetch_deb("opensta", root)
    sta = d / "usr/bin/sta"
    env, packages = _with_libraries("OpenSTA", [sta], ["opensta"], root)
    return Tool("OpenSTA", {"sta": sta}, env, packages)


def icarus(root=None):
    """Icarus Verilog (Debian ``iverilog``): ``tool["iverilog"]``, ``tool["vvp"]`` and
    ``tool["ivl"]``, the directory to pass as ``iverilog -B`` and ``vvp -M`` (the compiled-in
    one is the package's install path)."""
    d = fetch_deb("iverilog", root)
    ivl = d / _ARCH_LIB / "ivl"
    paths = {"iverilog": d / "usr/bin/iverilog", "vvp": d / "usr/bin/vvp", "ivl": ivl}
    binaries = [paths["iverilog"], paths["vvp"], ivl / "ivl", ivl / "system.vpi"]
    env, packages = _with_libraries("Icarus Verilog", binaries, ["iverilog"], root)
    return Tool("Icarus Verilog", paths, env, packages)
