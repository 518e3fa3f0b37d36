"""The command line works from an installed wheel, outside the checkout: build the wheel of the
sources, install it (no dependencies) into a fresh virtual environment that borrows the project
environment's third-party packages, and run ``realm --help``, every command's ``--help`` and
one bad-input error from a directory that is not the checkout."""
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "hw", "golden", "synth", "tb", "realm")
COMMANDS = ("generate", "sim", "run", "bench", "bench-ray", "crosslayer", "synth", "timing",
            "energy", "llm", "characterize")
LLM_COMMANDS = ("convert", "eval", "bench", "campaign", "summarize", "fit", "abft")
ENERGY_COMMANDS = ("characterize", "spec", "campaign", "report")


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        s = ROOT / name
        (shutil.copytree(s, src / name, ignore=ignore) if s.is_dir()
         else shutil.copy(s, src / name))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-w", str(tmp / "dist"), str(src)], check=True, cwd=tmp)
    wheel, = (tmp / "dist").glob("realm_sa-*.whl")
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True,
                          text=True).stdout.strip()
    # The project's third-party packages, as a plain path: its .pth files (the editable
    # install of this checkout among them) are not read from there.
    (pathlib.Path(site) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(pip + ["--python", str(python), "install", "--no-deps", "--no-index",
                          str(wheel)], check=True, cwd=tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    return env, work


def _run(venv, *args):
    env, work = venv
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), cwd=work, capture_output=True, text=True, timeout=120,
                          env={**clean, "PATH": f"{env / 'bin'}{os.pathsep}{clean['PATH']}"})


def test_packages_come_from_the_wheel(venv):
    env, _ = venv
    r = _run(venv, str(env / "bin" / "python"), "-c",
             "import importlib.util, hw, golden, synth, realm; from realm.llm import loader; "
             "from realm.rtl import tb_gemm, fastsim; "
             "print(*(m.__file__ for m in (hw, golden, synth, realm, tb_gemm, fastsim)), "
             "loader.wikitext('test'), loader.wikitext('valid'), sep='\\n'); "
             "print(importlib.util.find_spec('tb'))")
    assert r.returncode == 0, r.stderr
    *paths, tests = r.stdout.split()
    assert len(paths) == 8 and all(p.startswith(str(env)) for p in paths), paths
    assert tests == "None"  # the tests do not ship


def test_realm_help(venv):
    env, _ = venv
    r = _run(venv, str(env / "bin" / "realm"), "--help")
    assert r.returncode == 0, r.stderr
    for cmd in COMMANDS:
        assert f"\n    {cmd}" in r.stdout


@pytest.mark.parametrize("cmd", [[c] for c in COMMANDS] + [["llm", c] for c in LLM_COMMANDS]
                         + [["energy", c] for c in ENERGY_COMMANDS],
                         ids=lambda c: "-".join(c))
def test_every_command_helps(venv, cmd):
    env, _ = venv
    r = _run(venv, str(env / "bin" / "realm"), *cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: realm"), r.stdout[:200]
    markup = [m for m in ("``", ":mod:", ":func:", ":class:", ":data:", ":meth:") if m in r.stdout]
    assert markup == [], f"reStructuredText markup in the help: {markup}"


def test_bad_input_is_one_line_and_exit_2(venv):
    env, _ = venv
    r = _run(venv, str(env / "bin" / "realm"), "sim", "--gemm", "0,2,3")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "realm sim: error: argument --gemm: must be 3 comma-separated integers of at least 1, "
        "not '0,2,3'"]
