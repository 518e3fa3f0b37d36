"""Test fixtures that need no download and no corpus: a tiny random-init LLaMA (2 layers, d=64,
GQA 4/2 heads) with a word-level tokenizer and a generated text file, saved as an ordinary Hugging
Face model directory so that every code path (loader, campaign, CLI) can use it."""
import os
import random

import torch

WORDS = ("the of and to in a is was for on as with by he it at from his an were are which this "
         "be that not or have had one all their but new first two after who they has been its "
         "more she year time would only into other most when over her some there may world "
         "between game war city during under while since early also season known series").split()


def tiny_text(path, n_words=20000, seed=0):
    """Write a reproducible pseudo-text of ``n_words`` words (12 per line)."""
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(n_words)]
    with open(path, "w") as f:
        for i in range(0, n_words, 12):
            f.write(" ".join(words[i:i + 12]) + "\n")
    return path


def tiny_model_dir(path, seed=0, layers=2):
    """Create (once) a tiny LlamaForCausalLM + tokenizer + ``text.txt`` under ``path``."""
    if os.path.exists(os.path.join(path, "config.json")):
        return path
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    os.makedirs(path, exist_ok=True)
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *WORDS])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>")
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
                      tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # give the residual stream an outlier channel, as real LLMs have
        model.model.embed_tokens.weight[:, 5] *= 20
    tmp = f"{path}.tmp{os.getpid()}"
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tiny_text(os.path.join(tmp, "text.txt"))
    try:
        os.replace(tmp, path)
    except OSError:  # another process finished first: its copy is identical
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def tiny_quantized(path, layers, windows, length, seed=0):
    """(model, runtime, windows): the tiny model of :func:`tiny_model_dir` made W8A8 (smoothed
    on its own windows), with ``windows`` random token windows of ``length``."""
    from transformers import AutoModelForCausalLM

    from golden.llm import quant

    d = tiny_model_dir(path, layers=layers)
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(3, 60, (windows, length), generator=g)
    rt = quant.quantize(m, quant.calibrate(m, w))
    return m, rt, w


def window_logits(model, rt, windows, injector):
    """The logits of ``model`` (quantized with runtime ``rt``) over ``windows`` (token tensors),
    window by window as the campaign evaluates them, with ``injector`` installed (None: clean);
    the runtime is left without an injector."""
    rt.injector = injector
    try:
        with torch.no_grad():
            out = []
            for w, x in enumerate(windows):
                rt.start(w)
                out.append(model(input_ids=x[None], use_cache=False).logits)
            return torch.cat(out)
    finally:
        rt.injector = None


def tiny_spec(model, experiments, **over):
    """A campaign spec over the tiny model directory ``model`` (:func:`tiny_model_dir`, its
    generated ``text.txt`` for evaluation and calibration): two windows of 32 tokens, seeds 0
    and 1; ``over`` replaces any key."""
    text = os.path.join(model, "text.txt")
    return {"model": model, "text": text, "calib_text": text, "windows": 2, "length": 32,
            "calib_windows": 2, "calib_length": 32, "seeds": [0, 1],
            "experiments": experiments, **over}


def kill_after_lines(cmd, out, lines, cwd, timeout=120):
    """Run ``cmd`` (a campaign's command line) in a process group of its own and kill the group
    (SIGKILL) as soon as its results file ``out`` has ``lines`` lines, or it has exited, or
    ``timeout`` seconds have passed: a driver killed mid-campaign."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(out) and len(open(out).read().splitlines()) >= lines:
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
