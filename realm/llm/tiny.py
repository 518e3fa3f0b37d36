"""A tiny random-initialized LLaMA (2 layers by default, d=64, GQA 4/2 heads; or OPT, Gemma 3,
Qwen2 of the same size) with a word-level
tokenizer and a generated text file, saved as an ordinary Hugging Face model directory and made
offline in seconds: every code path (loader, campaign, CLI) runs on it without a download or a
corpus. ``realm bench-ray`` times campaigns on it; the tests use it throughout."""
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


#: The families a tiny model can be built in (``tiny_model_dir(arch=...)``): LLaMA (the default,
#: and Mistral's layout), OPT (LayerNorm, biases, fc1/fc2), Gemma 3 ((1 + w) RMSNorm, sliding
#: window) and Qwen2 (q/k/v biases); each saved as an ordinary Hugging Face directory.
ARCHS = ("llama", "opt", "gemma3", "qwen2")


def _model(arch, vocab, layers):
    import transformers as tf

    ids = dict(bos_token_id=1, eos_token_id=2, vocab_size=vocab, max_position_embeddings=512)
    if arch == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, **ids))
    if arch == "opt":
        return tf.OPTForCausalLM(tf.OPTConfig(
            hidden_size=64, ffn_dim=128, num_hidden_layers=layers, num_attention_heads=4,
            word_embed_proj_dim=64, pad_token_id=0, **ids))
    if arch == "gemma3":
        return tf.Gemma3ForCausalLM(tf.Gemma3TextConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=16,
            layer_types=["sliding_attention", "full_attention"] * (layers // 2)
            + ["full_attention"] * (layers % 2), pad_token_id=0, **ids))
    if arch == "qwen2":
        return tf.Qwen2ForCausalLM(tf.Qwen2Config(
            hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, **ids))
    raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")


def tiny_model_dir(path, seed=0, layers=2, arch="llama"):
    """Create (once) a tiny random-initialized causal LM of family ``arch`` (:data:`ARCHS`;
    LLaMA by default) + tokenizer + ``text.txt`` under ``path``."""
    if os.path.exists(os.path.join(path, "config.json")):
        return path
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    os.makedirs(path, exist_ok=True)
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *WORDS])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>")
    torch.manual_seed(seed)
    model = _model(arch, len(vocab), layers)
    with torch.no_grad():  # give the residual stream an outlier channel, as real LLMs have
        model.get_input_embeddings().weight[:, 5] *= 20
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
