"""Where the project's files live and go: the one home of the root, build, cache and results
paths for every package.

The root is the checkout when the code runs from one (its ``pyproject.toml`` sits there), else
the working directory (installed from a wheel). Build products go under ``build/``, converted
models and activation scales under ``$REALM_CACHE`` or ``cache/``, committed results are read
from ``docs/results/``.
"""
import os
import pathlib

_CHECKOUT = pathlib.Path(__file__).resolve().parent.parent
#: The checkout, or the working directory when installed.
ROOT = _CHECKOUT if (_CHECKOUT / "pyproject.toml").exists() else pathlib.Path.cwd()
#: Generated files (simulator builds, tools fetched from Debian, synthesis, default outputs).
BUILD = ROOT / "build"
#: The committed results (``make characterize``, ``make abft``, ``make energy`` regenerate them).
RESULTS = ROOT / "docs" / "results"
#: Converted models and calibration scales (522 MB for SmolLM2-135M): ``$REALM_CACHE`` if set.
CACHE = pathlib.Path(os.environ.get("REALM_CACHE") or ROOT / "cache")


def repo_path(path):
    """``path`` under :data:`ROOT` unless absolute (a string, as given)."""
    return path if os.path.isabs(path) else os.path.join(ROOT, path)
