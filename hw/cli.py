"""The command-line conventions every entry point shares (``realm``, ``python -m hw``,
``python -m golden.llm``, ``python -m synth``): one error path, one line, exit status 2 for bad
input; the array-configuration options and their validation."""
import argparse
import sys

from .config import Abft, ArrayConfig, Dataflow

#: Exit status of a command given bad input.
BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line,
    ``<prog>: error: <message>``, with exit status :data:`BAD_INPUT`."""

    def error(self, message):
        fail(self.prog, message)


def fail(prog, message, status=BAD_INPUT):
    """Print ``<prog>: error: <message>`` on stderr and exit with ``status`` (default
    :data:`BAD_INPUT`; 1 for work that ran and failed)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(status)


def config_args(p):
    """Add the options of an :class:`~hw.config.ArrayConfig` to parser ``p``."""
    p.add_argument("--rows", type=int, default=8, help="array rows, 1-256 (default 8)")
    p.add_argument("--cols", type=int, default=8, help="array columns, 1-256 (default 8)")
    p.add_argument("--dataflow", default="ws", choices=[d.value for d in Dataflow],
                   help="ws: weight-stationary, os: output-stationary (default ws)")
    p.add_argument("--abft", default="none", choices=[a.value for a in Abft],
                   help="fault-tolerance logic to add (default none)")
    p.add_argument("--acc-width", type=int, default=32, help="accumulator bits (default 32)")
    p.add_argument("--fault-port", action="store_true", help="add the fault-injection port")


def config_from_args(parser, args):
    """The :class:`~hw.config.ArrayConfig` the options describe; a bad value is a parser
    error."""
    try:
        return ArrayConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                           abft=args.abft, acc_width=args.acc_width,
                           fault_port=args.fault_port)
    except ValueError as e:
        parser.error(str(e))


def int_list(count, *, lo=1):
    """An argparse ``type`` for ``count`` comma-separated integers, each at least ``lo``."""
    def parse(text):
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            values = []
        if len(values) != count or any(v < lo for v in values):
            raise argparse.ArgumentTypeError(f"must be {count} comma-separated integers of at "
                                             f"least {lo}, not {text!r}")
        return values
    return parse


def checked(kind, ok, rule):
    """An argparse ``type``: ``kind`` (``int`` or ``float``) for which ``ok(value)`` holds;
    otherwise the error says the value ``must be <rule>``."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"must be {rule}, not {text!r}")
        return v
    return parse
