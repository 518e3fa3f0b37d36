"""The options every LLM command shares (model, text, windows, quantization) and their
checks, for :mod:`realm.cli.llm` and :mod:`realm.cli.sweeps`."""
from .args import POSITIVE, BadInput, checked, comma_list, need


def settings(a):
    from realm.campaign.spec import GLOBAL

    s = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GLOBAL.items() if k != "seeds"}
    for k in ("model", "text", "windows", "length", "alpha"):
        if getattr(a, k, None) is not None:
            s[k] = getattr(a, k)
    s["per_tensor"] = bool(getattr(a, "per_tensor", False))
    if getattr(a, "requant", None) is not None:
        from realm.llm.quant import REQUANT_PLACEMENTS
        s["requant"] = (a.requant[0] if len(a.requant) == 1 and a.requant[0] in REQUANT_PLACEMENTS
                        else [c for c in a.requant if c != "none"])
    s["smooth"] = not getattr(a, "no_smooth", False)
    return s


BIT = checked(int, lambda v: 0 <= v <= 31, "a bit of INT32, 0 to 31")


def _device_name(text):
    import re
    return re.fullmatch(r"cpu|cuda(:\d+)?", text) is not None


#: ``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (whether torch sees it is :func:`check_device`'s).
DEVICE = checked(str, _device_name, "cpu, cuda or cuda:N")


def device_arg(p):
    """Add ``--device`` (where the model runs) to parser ``p``."""
    p.add_argument("--device", type=DEVICE, default="cpu", metavar="cpu|cuda[:N]",
                   help="where the model runs: cpu (default) or a CUDA GPU torch sees; the INT32 "
                   "accumulators are exact on both, the FP parts round differently")


def check_device(a):
    """``--device`` names a device torch sees here; checked before anything loads or is
    written."""
    from realm.llm import loader

    try:
        loader.device(a.device)
    except loader.DeviceError as e:
        raise BadInput(f"--device {a.device}: {e}") from None


def components(text):
    """Comma-separated GEMM component names."""
    from golden.faults import LLM_COMPONENTS

    return comma_list(what="components", choices=LLM_COMPONENTS)(text)


def array(text):
    """``ROWSxCOLS-DATAFLOW`` (``64x64-ws``), kept as text once checked."""
    import argparse

    from hw.config import ArrayConfig
    try:
        ArrayConfig.from_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def requant(text):
    """An argparse ``type`` for ``--requant``: comma-separated components, ``none``, or a named
    placement."""
    from golden.faults import LLM_COMPONENTS
    from realm.llm.quant import REQUANT_PLACEMENTS

    names = (*LLM_COMPONENTS, "none", *REQUANT_PLACEMENTS)
    return comma_list(what="components or placements", choices=names)(text)


def check_text(a):
    """The text and the windows, checked before any weights load: the file exists, holds the
    windows, and a window fits the model's context."""
    from realm.llm import loader

    need("llm")
    s = settings(a)
    loader.check_windows(s["model"], loader.text_path(s["text"]), s["windows"], s["length"])



def common_args(p):
    p.add_argument("--model", help="preset (smollm2-135m, gemma3-270m) or a local HF model "
                   "directory (default smollm2-135m)")
    p.add_argument("--text", help="evaluation text file, or wikitext-2:test (default) / "
                   "wikitext-2:valid")
    p.add_argument("--windows", type=POSITIVE, help="number of windows (default 4)")
    p.add_argument("--length", type=POSITIVE, help="tokens per window (default 512)")
    p.add_argument("--alpha", type=checked(float, lambda v: 0 <= v <= 1, "from 0 to 1"),
                   help="SmoothQuant migration strength (default 0.5)")
    p.add_argument("--per-tensor", action="store_true",
                   help="per-tensor weight and activation scales (default per channel / token)")
    p.add_argument("--no-smooth", action="store_true", help="skip SmoothQuant smoothing")
    p.add_argument("--requant", metavar="COMP,...", type=requant,
                   help="outputs re-quantized with the clean scale: 'authors' (default: q k v sv "
                   "gate up down for LLaMA-like models, q k v sv for OPT, as the authors' code), "
                   "'linear-only' (the same without sv), 'none', or a list of components")
    p.add_argument("--threads", type=POSITIVE, default=2,
                   help="torch threads (default 2; bench: 1)")
    device_arg(p)
