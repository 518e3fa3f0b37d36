"""``realm generate``: write the Verilog of one array configuration (the design card's
generator)."""
from .args import command, config_args, config_from_args


def add(sub):
    p = command(sub, "generate", run=run, help="write the Verilog of one configuration",
                description="Write the Verilog of one array configuration.")
    config_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output Verilog file")


def run(args):
    from hw.generate import write_verilog

    from .paths import writable
    config = config_from_args(args)
    path = write_verilog(config, writable(args.output, "--output"))
    print(f"wrote {path} ({config.id})")
    return 0
