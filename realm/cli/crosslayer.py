"""``realm crosslayer``: real SmolLM2 GEMM tiles through the RTL with the LLM injector's errors
as hardware faults, checked against every model (:mod:`realm.crosslayer.run`)."""
import sys

from .args import (NATURAL, BadInput, comma_list, command, engine_args, engine_from_args, int_list,
                   need, workers_arg)
from .paths import existing, writable


def add(sub):
    from golden.faults import LLAMA_COMPONENTS
    x = command(sub, "crosslayer", check=check, run=run,
                help="real LLM tiles and faults through the RTL",
                description="Capture the INT8 operands of the W8A8 SmolLM2's GEMMs on one "
                "WikiText-2 window, draw errors with the LLM injector (as the closed loop "
                "does), cut every call into blocks the array runs whole, inject the errors as "
                "pe.acc flips through the fault port, run them on the RTL (Verilator) and check "
                "outputs, checksum differences and decisions against the golden cycle model, "
                "the transaction-level statistical model, the closed loop's records and the "
                "model's own accumulators. Exit status 1 on any mismatch.")
    x.add_argument("--rows", type=int, default=8, help="array rows (default 8)")
    x.add_argument("--cols", type=int, default=8, help="array columns (default 8)")
    x.add_argument("--dataflow", type=comma_list(what="dataflows", choices=("ws", "os")),
                   default=["ws", "os"], help="dataflows, comma-separated (default ws,os)")
    x.add_argument("--components", type=comma_list(what="components",
                                                    choices=LLAMA_COMPONENTS),
                   default=list(LLAMA_COMPONENTS), help="components, comma-separated (default "
                   "all nine)")
    x.add_argument("--layer", type=NATURAL, default=14, help="decoder layer (default 14)")
    x.add_argument("--length", type=int, default=512, help="window length in tokens "
                   "(default 512)")
    x.add_argument("--ber", type=float, default=1e-5, help="injector BER (default 1e-5)")
    x.add_argument("--bits", type=int_list(2, lo=0), default=[0, 30], metavar="LO,HI",
                   help="flipped bit range (default 0,30)")
    x.add_argument("--clean", type=NATURAL, default=1, help="clean blocks per GEMM call "
                   "(default 1)")
    x.add_argument("--min-tiles", type=NATURAL, default=1000, help="add clean blocks, one per "
                   "call in turn, until each dataflow has this many tiles (default 1000)")
    x.add_argument("--seed", type=NATURAL, default=0, help="seed of the errors and blocks")
    x.add_argument("--fit", default="docs/results/abft/params/fit.json", metavar="FILE",
                   help="critical-region fits the parameter sets come from (default "
                   "docs/results/abft/params/fit.json)")
    workers_arg(x)
    engine_args(x)
    x.add_argument("--out", default="build/crosslayer", metavar="DIR",
                   help="summary directory (default build/crosslayer; make crosslayer writes "
                   "docs/results/crosslayer)")
    x.add_argument("--workdir", default="build/crosslayer/work", metavar="DIR",
                   help="jobs, raw results and simulator logs (default build/crosslayer/work)")


def check(a):
    from hw.config import ArrayConfig
    from hw.paths import repo_path
    need("sim", "llm")
    try:
        ArrayConfig(rows=a.rows, cols=a.cols, abft="realm", fault_port=True)
    except ValueError as e:
        raise BadInput(str(e)) from None
    if not 0 < a.ber <= 1e-2:
        raise BadInput(f"--ber must be in (0, 0.01], not {a.ber}")
    lo, hi = a.bits
    if not 0 <= lo <= hi <= 31:
        raise BadInput(f"--bits must be LO,HI with 0 <= LO <= HI <= 31, not {lo},{hi}")
    if a.length < 16 or a.length % 8:
        raise BadInput(f"--length must be a multiple of 8 from 16 on, not {a.length}")
    from realm.campaign.spec import model_shape
    a.fit = str(existing(repo_path(a.fit), "--fit"))
    layers = model_shape("smollm2-135m")[1]
    if a.layer >= layers:
        raise BadInput(f"--layer must be below the model's {layers} layers, not {a.layer}")
    writable(a.out, "--out", folder=True)
    writable(a.workdir, "--workdir", folder=True)
    a.run_engine = engine_from_args(a)  # the cluster joined before the model loads


def run(a):
    from realm.crosslayer.run import run as crosslayer
    line = " ".join(["realm crosslayer", *sys.argv[2:]])
    return crosslayer(a.out, a.workdir, rows=a.rows, cols=a.cols, dataflows=a.dataflow,
                      components=a.components, layer=a.layer, length=a.length, ber=a.ber,
                      bits=a.bits, seed=a.seed, clean=a.clean, min_tiles=a.min_tiles,
                      fit=a.fit, workers=a.workers, engine=a.run_engine, command_line=line)
