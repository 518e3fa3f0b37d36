"""The ``realm`` command line run inside the test's own process: what ``python -m realm ARGS``
would give (exit status, stdout, stderr) without a fresh interpreter importing torch and
transformers for each check (3-8 CPU s a call on the 2-core machine). The process-level entry
point (``realm`` and ``python -m realm`` from an installed wheel) is tested by
``tb/test_install.py``; commands whose test needs a process of their own (killed mid-run) keep
``subprocess``."""
import contextlib
import io
import os
import sys
from dataclasses import dataclass

import torch

from hw.paths import ROOT
from realm.cli.main import main


@dataclass(frozen=True)
class Completed:
    """The fields of :class:`subprocess.CompletedProcess` the tests read."""
    returncode: int
    stdout: str
    stderr: str


def realm(*args, cwd=ROOT, env=None):
    """Run ``realm ARGS`` in this process from directory ``cwd`` with ``env`` added to the
    environment; the working directory, environment and torch's thread count are restored
    after. An exception the command lets out propagates (a subprocess would print it as a
    traceback and exit 1)."""
    out, err = io.StringIO(), io.StringIO()
    here, saved, threads = os.getcwd(), dict(os.environ), torch.get_num_threads()
    try:
        os.chdir(cwd)
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse: --help (0) and usage errors (2)
                code = 0 if e.code is None else e.code
                if not isinstance(code, int):  # sys.exit("message"), as Python prints it
                    print(code, file=sys.stderr)
                    code = 1
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)
        torch.set_num_threads(threads)
    return Completed(int(code), out.getvalue(), err.getvalue())
