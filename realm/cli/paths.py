"""Input and output paths checked before any work: an input file that is not there, or an
output whose folder cannot be made or written, is one :class:`~realm.cli.args.BadInput` line
naming the option."""
import os
import pathlib

from .args import BadInput


def existing(path, option):
    """``path`` as a :class:`pathlib.Path`, required to be an existing file."""
    p = pathlib.Path(path)
    if not p.exists():
        raise BadInput(f"{option}: no such file: {str(path)!r}")
    if not p.is_file():
        what = "a folder" if p.is_dir() else "not a regular file"
        raise BadInput(f"{option}: {str(path)!r} is {what}")
    return p


def writable(path, option, *, folder=False):
    """``path`` as a :class:`pathlib.Path` whose folder (``path`` itself with ``folder``) is
    made now and can be written; nothing is written to ``path`` itself."""
    p = pathlib.Path(path)
    d = p if folder else p.parent
    try:
        d.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadInput(f"{option}: {str(d)!r} is not a folder (a file of that name is in the way)"
                       ) from None
    except OSError as e:
        raise BadInput(f"{option}: cannot make the folder {str(d)!r}: {e.strerror}") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise BadInput(f"{option}: the folder {str(d)!r} cannot be written")
    if not folder and p.is_dir():
        raise BadInput(f"{option}: {str(p)!r} is a folder, not a file")
    if not folder and p.exists() and not os.access(p, os.W_OK):
        raise BadInput(f"{option}: {str(p)!r} cannot be written")
    return p
