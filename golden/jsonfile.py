"""One reader for the project's JSON input files (fault lists, campaign specs, parameter files,
voltage tables): a missing or malformed file is one line naming it, raised as the caller's own
error class."""
import json
import os


def read_json(path, what, error):
    """The JSON document in ``path``; ``error(message)`` (e.g. ``SpecError``) if the file does
    not exist or is not valid JSON, the message naming ``what`` (e.g. "spec file") and
    ``path``."""
    if not os.path.exists(path):
        raise error(f"{what} {path!r} does not exist")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise error(f"{what} {path!r} is not valid JSON: {e}") from None
