"""``realm``: the project's one command line. ``realm COMMAND --help`` explains each command;
the contract every command keeps is in :mod:`realm.cli.args`."""
import sys

from . import bench, crosslayer, energy, generate, llm, sim, synth, timing
from .args import Parser, exit_status

DESCRIPTION = """\
The open reference implementation of ReaLM (DAC 2025): generate a protected INT8 systolic
array, simulate it against its golden model, synthesize it, and measure how much error an LLM
tolerates. Bad input is one line, '<command>: error: ...', exit status 2, said before any model
is loaded or simulator built; work that ran and failed exits 1."""

#: The command modules, in the order ``realm --help`` lists their commands.
COMMANDS = (generate, sim, bench, crosslayer, synth, timing, energy, llm)


def parser():
    """The ``realm`` argument parser: every command and subcommand."""
    p = Parser(prog="realm", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=Parser)
    for module in COMMANDS:
        module.add(sub)
    return p


def main(argv=None):
    """Parse ``argv`` (default: the process's), check, run; return the exit status. Bad input
    and failures the commands raise are one line on stderr, ``<full command>: error: ...``."""
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.check is not None:
            args.check(args)
        return args.run(args) or 0
    except Exception as e:
        status = exit_status(e)
        if status is None:
            raise
        print(f"{args.prog}: error: {e}", file=sys.stderr)
        return status
