"""``python -m hw generate``: write the Verilog of one array configuration (the design card's
generator entry). Every other command is in the project's one CLI, ``realm`` (``realm --help``);
``realm generate`` is this same command."""
import sys

from .cli import Parser, config_args, config_from_args


def add_generate(sub):
    """Add the ``generate`` subcommand to the subparsers ``sub``."""
    p = sub.add_parser("generate", help="write the Verilog of one configuration",
                       description="Write the Verilog of one array configuration.")
    config_args(p)
    p.add_argument("-o", "--output", required=True, help="output Verilog file")
    p.set_defaults(func=cmd_generate)
    return p


def cmd_generate(parser, args):
    from .generate import write_verilog
    config = config_from_args(parser, args)
    path = write_verilog(config, args.output)
    print(f"wrote {path} ({config.id})")


def main(argv=None):
    parser = Parser(prog="python -m hw", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_generate(sub)
    args = parser.parse_args(argv)
    return args.func(parser, args) or 0


if __name__ == "__main__":
    sys.exit(main())
