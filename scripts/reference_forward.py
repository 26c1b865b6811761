#!/usr/bin/env python3
"""Independent float64 numpy forward pass of Llama / Qwen2 / Qwen3 models, for checking the engine.

Usage:
    reference_forward.py MODEL --tokens 1,2,3 [--greedy N] [--out OUT.json]
                         [--all-positions LOGPROBS.bin]
    reference_forward.py MODEL --tokens 1,2,3 --check-transformers
    reference_forward.py --self-check-transformers

MODEL is a Hugging Face folder (config.json + model.safetensors, or shards with
model.safetensors.index.json; F32/F16/BF16 tensors) or a GGUF file (llama/qwen2/qwen3; every
tensor dequantized by the gguf package and llama q/k rows un-permuted, see gguf_to_hf.py).

OUT.json gets:
  "tokens":          the prompt ids;
  "logprobs_last":   log_softmax of the last prompt position's logits (full vocabulary);
  "greedy":          N greedy continuation ids (argmax each step; EOS does not stop it), computed
                     with a K/V cache;
  "greedy_logprobs": the log-probability of each greedy id when it was chosen;
  "greedy_margins":  top-1 minus top-2 logit at each greedy step (a small margin means the
                     engine may legitimately pick the other token);
  "greedy_text":     the greedy ids decoded, when MODEL carries a vocabulary (GGUF tokens or
                     tokenizer.json).
--all-positions writes the log-probs of every prompt position as raw little-endian float32,
row-major [len(tokens), vocab]. Without --out the JSON goes to stdout.

The model (one function per op below; all arithmetic in float64):
  x = embed_tokens[tokens]
  per layer:  h = RMSNorm(x);  x += o_proj(Attention(q_proj h, k_proj h, v_proj h))
              h = RMSNorm(x);  x += down_proj(silu(gate_proj h) * up_proj h)
  logits = lm_head(RMSNorm(x))  (lm_head = embed_tokens when tie_word_embeddings)
  RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w
  Attention: q/k/v (+ bias where the checkpoint has one: Qwen2), Qwen3 RMSNorm over each q/k head
  (q_norm/k_norm) before RoPE, NeoX rotate-half RoPE, grouped-query attention (query head h uses
  kv head h // (heads / kv_heads)), causal softmax(q.k / sqrt(head_dim)).
  RoPE: inv_freq[i] = theta^(-2i/d), angle = position * inv_freq[i] for dims i and i + d/2,
  x' = x * cos + rotate_half(x) * sin with rotate_half([a, b]) = [-b, a].
  rope_scaling follows transformers' modeling_rope_utils: "linear" (inv_freq / factor),
  "llama3" (_compute_llama3_parameters) and "yarn" (_compute_yarn_parameters). For YaRN,
  transformers multiplies cos and sin by attention_factor (default 0.1 * ln(factor) + 1), which
  scales both q and k, hence every q.k logit by attention_factor^2; this script does the same.
  The YaRN factor is rope_scaling["factor"] (transformers 4.50-4.55 replaced it by
  max_position_embeddings / original_max_position_embeddings when the latter is given; the tiny
  models of make_tiny_model.py make the two equal).

--check-transformers (HF folders only) also runs transformers (float64, eager attention) on the
same tokens and reports the largest log-prob difference; --self-check-transformers does that
for a set of tiny models made by make_tiny_model.py. Both print a note and exit 0 when torch or
transformers is not importable. transformers computes RoPE angles in float32, so agreement is
to about 1e-5, not 1e-12.
"""

import argparse
import importlib.util
import json
import math
import os
import sys

import numpy as np

SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SCRIPTS_DIR)
from gguf_to_hf import InputError, bf16_bits_to_float32, load_gguf_model, run_main  # noqa: E402

PROGRAM = "reference_forward.py"


# ---------------------------------------------------------------------------------------------
# Loading


def read_safetensors(path):
    """{name: float32 array} from one .safetensors file (F32, F16 or BF16 tensors)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise InputError(f"{path}: not a safetensors file (too short)")
    header_size = int.from_bytes(data[:8], "little")
    if 8 + header_size > len(data):
        raise InputError(f"{path}: not a safetensors file (bad header size)")
    try:
        header = json.loads(data[8:8 + header_size])
    except ValueError as e:
        raise InputError(f"{path}: not a safetensors file ({e})") from None
    base = 8 + header_size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = info["data_offsets"]
            dtype, shape = info["dtype"], info["shape"]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: malformed header entry for {name}") from None
        if not 0 <= begin <= end <= len(data) - base:
            raise InputError(f"{path}: tensor {name} lies outside the file (truncated?)")
        raw = np.frombuffer(data, dtype=np.uint8, count=end - begin, offset=base + begin)
        if dtype == "F32":
            values = raw.view("<f4").astype(np.float32)
        elif dtype == "F16":
            values = raw.view("<f2").astype(np.float32)
        elif dtype == "BF16":
            values = bf16_bits_to_float32(raw.view("<u2"))
        else:
            raise InputError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        if values.size != int(np.prod(shape)):
            raise InputError(f"{path}: tensor {name} has {values.size} values for shape {shape}")
        tensors[name] = values.reshape(shape)
    return tensors


def load_hf_folder(directory):
    """(config dict, {name: float32 array}) from a HF checkpoint folder."""
    config_path = os.path.join(directory, "config.json")
    if not os.path.isfile(config_path):
        raise InputError(f"{directory}: no config.json")
    try:
        with open(config_path) as f:
            config = json.load(f)
    except ValueError as e:
        raise InputError(f"{config_path}: invalid JSON ({e})") from None
    index_path = os.path.join(directory, "model.safetensors.index.json")
    if os.path.isfile(index_path):
        with open(index_path) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.isfile(os.path.join(directory, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        raise InputError(f"{directory}: no model.safetensors or model.safetensors.index.json")
    tensors = {}
    for file_name in files:
        path = os.path.join(directory, file_name)
        if not os.path.isfile(path):
            raise InputError(f"{path}: listed in the index but missing")
        tensors.update(read_safetensors(path))
    return config, tensors


def is_gguf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"


class Model:
    """The hyperparameters and float64 weights of one model."""

    def __init__(self, config, tensors, path):
        self.path = path
        try:
            self.read_config(config)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}: config lacks or mangles {e}") from None

        self.w = {}
        for name, values in tensors.items():
            self.w[name] = np.ascontiguousarray(values, dtype=np.float64)
        if self.tied or "lm_head.weight" not in self.w:
            if not self.tied:
                raise InputError(f"{path}: no lm_head.weight and tie_word_embeddings is false")
            if "model.embed_tokens.weight" in self.w:
                self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.check_tensors()
        self.inv_freq, self.attention_factor = rope_parameters(self)

    def read_config(self, config):
        path = self.path
        model_type = config.get("model_type")
        if model_type is None:  # fall back on "architectures": ["Qwen2ForCausalLM"]
            by_class = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2",
                        "Qwen3ForCausalLM": "qwen3"}
            model_type = by_class.get((config.get("architectures") or [None])[0])
        if model_type not in ("llama", "qwen2", "qwen3"):
            raise InputError(f"{path}: unsupported model_type {model_type!r} (llama, qwen2, qwen3)")
        self.arch = model_type
        self.config = config
        self.hidden = int(config["hidden_size"])
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.kv_heads = int(config.get("num_key_value_heads") or self.heads)
        self.head_dim = int(config.get("head_dim") or self.hidden // self.heads)
        self.vocab = int(config["vocab_size"])
        self.eps = float(config.get("rms_norm_eps", 1e-6))
        self.theta = float(config.get("rope_theta", 10000.0))
        self.rope_scaling = config.get("rope_scaling")
        self.max_position = int(config.get("max_position_embeddings", 2048))
        self.tied = bool(config.get("tie_word_embeddings", False))
        if self.heads % self.kv_heads != 0:
            raise InputError(f"{path}: {self.heads} heads is not a multiple of {self.kv_heads} kv heads")

    def check_tensors(self):
        h, d, q, kv = self.hidden, self.head_dim, self.heads, self.kv_heads
        expected = {"model.embed_tokens.weight": (self.vocab, h), "model.norm.weight": (h,),
                    "lm_head.weight": (self.vocab, h)}
        for layer in range(self.layers):
            p = f"model.layers.{layer}."
            ffn = self.w.get(p + "mlp.gate_proj.weight", np.zeros((0, h))).shape[0]
            expected.update({
                p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                p + "self_attn.q_proj.weight": (q * d, h), p + "self_attn.k_proj.weight": (kv * d, h),
                p + "self_attn.v_proj.weight": (kv * d, h), p + "self_attn.o_proj.weight": (h, q * d),
                p + "mlp.gate_proj.weight": (ffn, h), p + "mlp.up_proj.weight": (ffn, h),
                p + "mlp.down_proj.weight": (h, ffn)})
            if self.arch == "qwen2":
                expected.update({p + "self_attn.q_proj.bias": (q * d,),
                                 p + "self_attn.k_proj.bias": (kv * d,),
                                 p + "self_attn.v_proj.bias": (kv * d,)})
            if self.arch == "qwen3":
                expected.update({p + "self_attn.q_norm.weight": (d,),
                                 p + "self_attn.k_norm.weight": (d,)})
        for name, shape in expected.items():
            if name not in self.w:
                raise InputError(f"{self.path}: missing tensor {name}")
            if self.w[name].shape != shape:
                raise InputError(f"{self.path}: tensor {name} has shape {list(self.w[name].shape)}, "
                                 f"expected {list(shape)}")


def load_model(path):
    if os.path.isdir(path):
        config, tensors = load_hf_folder(path)
    elif os.path.isfile(path):
        if not is_gguf(path):
            raise InputError(f"{path}: neither a GGUF file nor a HF checkpoint folder")
        config, tensors = load_gguf_model(path)
    else:
        raise InputError(f"{path}: no such file or folder")
    return Model(config, tensors, path)


# ---------------------------------------------------------------------------------------------
# RoPE frequencies (transformers' modeling_rope_utils, in float64)


def default_inv_freq(theta, dim):
    """inv_freq[i] = theta^(-2i/dim), i = 0 .. dim/2 - 1."""
    return 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)


def llama3_inv_freq(inv_freq, scaling):
    """_compute_llama3_parameters: wavelengths longer than original/low_freq_factor are divided
    by factor, shorter than original/high_freq_factor are kept, in between interpolated with
    smooth = (original / wavelen - low) / (high - low)."""
    factor = float(scaling["factor"])
    low = float(scaling["low_freq_factor"])
    high = float(scaling["high_freq_factor"])
    original = float(scaling["original_max_position_embeddings"])
    low_freq_wavelen = original / low
    high_freq_wavelen = original / high
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (original / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return np.where(medium, smoothed, scaled)


def yarn_parameters(theta, dim, scaling, max_position):
    """_compute_yarn_parameters: (inv_freq, attention_factor).

    Dimensions that turn fewer than beta_slow times over the original context are interpolated
    (inv_freq / factor), those that turn more than beta_fast times are kept, with a linear ramp
    between; attention_factor = 0.1 * ln(factor) + 1 unless the config gives one.
    """
    factor = float(scaling["factor"])
    original = float(scaling.get("original_max_position_embeddings") or max_position)
    beta_fast = float(scaling.get("beta_fast") or 32)
    beta_slow = float(scaling.get("beta_slow") or 1)

    def get_mscale(scale, mscale=1.0):
        return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

    attention_factor = scaling.get("attention_factor")
    if attention_factor is None:
        mscale, mscale_all_dim = scaling.get("mscale"), scaling.get("mscale_all_dim")
        if mscale and mscale_all_dim:
            attention_factor = get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
        else:
            attention_factor = get_mscale(factor)

    def correction_dim(rotations):
        # the dimension whose wavelength fits `rotations` times into the original context
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if scaling.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # transformers' guard against a zero-width ramp
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    extrapolation_weight = 1 - ramp
    pos_freqs = theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolation_weight) \
        + (1.0 / pos_freqs) * extrapolation_weight
    return inv_freq, float(attention_factor)


def rope_parameters(model):
    """(inv_freq [head_dim/2], attention_factor) for the model's rope_scaling."""
    scaling = model.rope_scaling
    kind = None if not scaling else scaling.get("rope_type", scaling.get("type"))
    inv_freq = default_inv_freq(model.theta, model.head_dim)
    if kind in (None, "default"):
        return inv_freq, 1.0
    if kind == "linear":
        return inv_freq / float(scaling["factor"]), 1.0
    if kind == "llama3":
        return llama3_inv_freq(inv_freq, scaling), 1.0
    if kind == "yarn":
        return yarn_parameters(model.theta, model.head_dim, scaling, model.max_position)
    raise InputError(f"{model.path}: unsupported rope_scaling type {kind!r}")


# ---------------------------------------------------------------------------------------------
# Ops


def rms_norm(x, weight, eps):
    """x / sqrt(mean(x^2) + eps) * weight, over the last axis."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def linear(x, weight, bias=None):
    """x @ weight^T (+ bias); weight is [out_features, in_features]."""
    y = x @ weight.T
    return y if bias is None else y + bias


def silu(x):
    """x * sigmoid(x)."""
    return x / (1.0 + np.exp(-x))


def rope_cos_sin(positions, inv_freq, attention_factor):
    """cos, sin [T, head_dim]: angle[t, i] = positions[t] * inv_freq[i % (head_dim/2)], both
    multiplied by attention_factor (transformers' attention_scaling; 1 except for YaRN)."""
    angles = np.outer(np.asarray(positions, dtype=np.float64), inv_freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles) * attention_factor, np.sin(angles) * attention_factor


def rotate_half(x):
    """[a, b] -> [-b, a] over the last axis (halves of each head)."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, cos, sin):
    """NeoX RoPE on x [heads, T, head_dim]: x * cos + rotate_half(x) * sin."""
    return x * cos + rotate_half(x) * sin


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def causal_attention(q, k, v, q_positions, k_positions):
    """softmax(q k^T / sqrt(d) + causal mask) v with grouped-query heads.

    q [H, T, d]; k, v [KV, S, d]; query head h reads kv head h // (H / KV); a query at position
    p sees the keys at positions <= p.
    """
    group = q.shape[0] // k.shape[0]
    k = np.repeat(k, group, axis=0)
    v = np.repeat(v, group, axis=0)
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
    visible = np.asarray(k_positions)[None, :] <= np.asarray(q_positions)[:, None]
    scores = np.where(visible[None], scores, -np.inf)
    return softmax(scores) @ v


class KVCache:
    """Per-layer keys and values ([KV, positions, head_dim], after RoPE) of the tokens seen."""

    def __init__(self, model):
        shape = (model.kv_heads, 0, model.head_dim)
        self.k = [np.zeros(shape) for _ in range(model.layers)]
        self.v = [np.zeros(shape) for _ in range(model.layers)]
        self.length = 0


def split_heads(x, heads, head_dim):
    """[T, heads * head_dim] -> [heads, T, head_dim]."""
    return x.reshape(x.shape[0], heads, head_dim).transpose(1, 0, 2)


def attention_block(model, layer, x, positions, cache):
    p = f"model.layers.{layer}.self_attn."
    w = model.w
    q = linear(x, w[p + "q_proj.weight"], w.get(p + "q_proj.bias"))
    k = linear(x, w[p + "k_proj.weight"], w.get(p + "k_proj.bias"))
    v = linear(x, w[p + "v_proj.weight"], w.get(p + "v_proj.bias"))
    q = split_heads(q, model.heads, model.head_dim)
    k = split_heads(k, model.kv_heads, model.head_dim)
    v = split_heads(v, model.kv_heads, model.head_dim)
    if model.arch == "qwen3":  # per-head RMSNorm of q and k before RoPE
        q = rms_norm(q, w[p + "q_norm.weight"], model.eps)
        k = rms_norm(k, w[p + "k_norm.weight"], model.eps)
    cos, sin = rope_cos_sin(positions, model.inv_freq, model.attention_factor)
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    cache.k[layer] = np.concatenate([cache.k[layer], k], axis=1)
    cache.v[layer] = np.concatenate([cache.v[layer], v], axis=1)
    k_positions = np.arange(cache.k[layer].shape[1])
    out = causal_attention(q, cache.k[layer], cache.v[layer], positions, k_positions)
    out = out.transpose(1, 0, 2).reshape(x.shape[0], model.heads * model.head_dim)
    return linear(out, w[p + "o_proj.weight"], w.get(p + "o_proj.bias"))


def mlp_block(model, layer, x):
    """SwiGLU: down_proj(silu(gate_proj x) * up_proj x)."""
    p = f"model.layers.{layer}.mlp."
    gate = linear(x, model.w[p + "gate_proj.weight"])
    up = linear(x, model.w[p + "up_proj.weight"])
    return linear(silu(gate) * up, model.w[p + "down_proj.weight"])


def forward(model, tokens, cache):
    """Logits [len(tokens), vocab] for `tokens` following the cache's tokens; extends the cache."""
    tokens = np.asarray(tokens, dtype=np.int64)
    positions = np.arange(cache.length, cache.length + len(tokens))
    x = model.w["model.embed_tokens.weight"][tokens]
    for layer in range(model.layers):
        p = f"model.layers.{layer}."
        h = rms_norm(x, model.w[p + "input_layernorm.weight"], model.eps)
        x = x + attention_block(model, layer, h, positions, cache)
        h = rms_norm(x, model.w[p + "post_attention_layernorm.weight"], model.eps)
        x = x + mlp_block(model, layer, h)
    cache.length += len(tokens)
    x = rms_norm(x, model.w["model.norm.weight"], model.eps)
    return linear(x, model.w["lm_head.weight"])


def run(model, tokens, greedy_steps=0):
    """(log-probs [T, vocab] of the prompt, greedy ids, their log-probs, top-1 - top-2 margins)."""
    cache = KVCache(model)
    logits = forward(model, tokens, cache)
    prompt_logprobs = log_softmax(logits)
    greedy, greedy_logprobs, margins = [], [], []
    last = logits[-1]
    for step in range(greedy_steps):
        top2 = np.argsort(last)[-2:]
        token = int(top2[-1])
        greedy.append(token)
        greedy_logprobs.append(float(log_softmax(last)[token]))
        margins.append(float(last[top2[-1]] - last[top2[-2]]))
        if step + 1 < greedy_steps:
            last = forward(model, [token], cache)[-1]
    return prompt_logprobs, greedy, greedy_logprobs, margins


# ---------------------------------------------------------------------------------------------
# Decoding ids to text (for eyeballing greedy output only)


def byte_decoder():
    """Inverse of GPT-2's bytes_to_unicode (byte-level BPE vocabularies)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def load_vocabulary(path):
    """(id -> token string list, "gpt2" | "llama") or None when the model has no vocabulary."""
    if os.path.isfile(path):
        import gguf
        reader = gguf.GGUFReader(path)
        field = reader.fields.get("tokenizer.ggml.tokens")
        if field is None:
            return None
        model_field = reader.fields.get("tokenizer.ggml.model")
        kind = model_field.contents() if model_field is not None else "gpt2"
        return field.contents(), kind
    tokenizer_json = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(tokenizer_json):
        return None
    with open(tokenizer_json) as f:
        tokenizer = json.load(f)
    vocab = dict(tokenizer.get("model", {}).get("vocab", {}))
    for added in tokenizer.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    if not vocab:
        return None
    tokens = [""] * (max(vocab.values()) + 1)
    for text, i in vocab.items():
        tokens[i] = text
    kind = "gpt2" if tokenizer.get("decoder", {}).get("type") == "ByteLevel" else "llama"
    return tokens, kind


def decode(ids, vocabulary):
    tokens, kind = vocabulary
    if kind == "llama":  # SentencePiece: "▁" is a space, <0xNN> a byte
        out = bytearray()
        for i in ids:
            piece = tokens[i] if i < len(tokens) else ""
            if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                out.append(int(piece[3:5], 16))
            else:
                out += piece.replace("\u2581", " ").encode()
        return out.decode("utf-8", errors="replace")
    decoder = byte_decoder()
    out = bytearray()
    for i in ids:
        piece = tokens[i] if i < len(tokens) else ""
        if all(c in decoder for c in piece):
            out += bytes(decoder[c] for c in piece)
        else:  # special tokens such as <|im_end|> are stored verbatim
            out += piece.encode()
    return out.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# Optional comparison with transformers


def transformers_logprobs(directory, tokens):
    """log_softmax of transformers' logits [T, vocab] (float64, eager), or None if unavailable."""
    try:
        import torch
        import transformers
    except ImportError:
        return None
    load = transformers.AutoModelForCausalLM.from_pretrained
    try:  # transformers >= 4.56 calls it dtype, older versions torch_dtype
        model = load(directory, dtype=torch.float64, attn_implementation="eager")
    except TypeError:
        model = load(directory, torch_dtype=torch.float64, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([tokens], dtype=torch.long)).logits[0]
    return torch.log_softmax(logits.double(), dim=-1).numpy()


def compare_with_transformers(directory, tokens, tolerance=1e-4):
    """Returns (ok, max abs difference) or None when transformers is not importable."""
    if not os.path.isdir(directory):
        raise InputError("--check-transformers needs a HF checkpoint folder")
    theirs = transformers_logprobs(directory, tokens)
    if theirs is None:
        return None
    ours, _, _, _ = run(load_model(directory), tokens)
    diff = float(np.max(np.abs(ours - theirs)))
    return diff <= tolerance, diff


SELF_CHECK_MODELS = [
    ["--arch", "llama"],
    ["--arch", "llama", "--tied", "--rope-scaling", "llama3", "--kv-heads", "1"],
    ["--arch", "llama", "--rope-scaling", "yarn", "--dtype", "bf16", "--sharded"],
    ["--arch", "qwen2"],
    ["--arch", "qwen2", "--rope-scaling", "yarn", "--kv-heads", "4"],
    ["--arch", "qwen3", "--tied"],
    ["--arch", "qwen3", "--rope-scaling", "llama3", "--dtype", "f16", "--head-dim", "32"],
]


def self_check_transformers():
    try:
        import transformers
    except ImportError:
        transformers = None
    if transformers is None or importlib.util.find_spec("torch") is None:
        print("self-check skipped: torch/transformers not importable")
        return True
    import tempfile
    import make_tiny_model
    tokens = [1, 5, 17, 300, 42, 42, 7, 511, 0, 99, 3, 250]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for i, extra in enumerate(SELF_CHECK_MODELS):
            out = os.path.join(tmp, f"m{i}")
            make_tiny_model.make_tiny_model(make_tiny_model.parse_args(
                extra + ["--out", out, "--seed", str(i)]))
            good, diff = compare_with_transformers(out, tokens)
            ok &= good
            print(f"{'ok  ' if good else 'FAIL'} max |logprob diff| {diff:.3e}  {' '.join(extra)}")
    print("self-check", "passed" if ok else "FAILED", f"(transformers {transformers.__version__})")
    return ok


# ---------------------------------------------------------------------------------------------


def parse_tokens(text):
    try:
        tokens = [int(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise InputError(f"--tokens {text!r}: expected comma-separated integers") from None
    if not tokens:
        raise InputError("--tokens is empty")
    return tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", metavar="MODEL", help="HF folder or GGUF file")
    parser.add_argument("--tokens", help="prompt token ids, comma-separated")
    parser.add_argument("--greedy", type=int, default=0, metavar="N", help="greedy continuation length")
    parser.add_argument("--out", metavar="OUT.json", help="write the JSON here (default stdout)")
    parser.add_argument("--all-positions", metavar="LOGPROBS.bin",
                        help="write float32 log-probs [len(tokens), vocab] of every position")
    parser.add_argument("--check-transformers", action="store_true",
                        help="compare the prompt log-probs with transformers (HF folders)")
    parser.add_argument("--self-check-transformers", action="store_true",
                        help="compare with transformers on tiny models of every supported kind")
    args = parser.parse_args()

    if args.self_check_transformers:
        sys.exit(0 if self_check_transformers() else 1)
    if args.model is None or args.tokens is None:
        parser.error("MODEL and --tokens are required")
    if args.greedy < 0:
        raise InputError("--greedy must be >= 0")
    tokens = parse_tokens(args.tokens)

    if args.check_transformers:
        result = compare_with_transformers(args.model, tokens)
        if result is None:
            print("check skipped: torch/transformers not importable")
            return
        good, diff = result
        print(f"{'ok' if good else 'FAIL'}: max |logprob diff| vs transformers {diff:.3e}")
        sys.exit(0 if good else 1)

    model = load_model(args.model)
    if max(tokens) >= model.vocab or min(tokens) < 0:
        raise InputError(f"--tokens: ids must be in [0, {model.vocab})")
    if len(tokens) + args.greedy > model.max_position:
        print(f"warning: {len(tokens) + args.greedy} positions exceed max_position_embeddings "
              f"{model.max_position}", file=sys.stderr)
    logprobs, greedy, greedy_logprobs, margins = run(model, tokens, args.greedy)

    result = {"model": os.path.abspath(args.model), "tokens": tokens,
              "logprobs_last": [float(x) for x in logprobs[-1]]}
    if args.greedy:
        result.update({"greedy": greedy, "greedy_logprobs": greedy_logprobs,
                       "greedy_margins": margins})
        vocabulary = load_vocabulary(args.model)
        if vocabulary is not None:
            result["greedy_text"] = decode(greedy, vocabulary)
    if args.all_positions:
        logprobs.astype("<f4").tofile(args.all_positions)
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        if args.greedy:
            print(f"greedy: {greedy}")
            if "greedy_text" in result:
                print(f"greedy text: {result['greedy_text']!r}")
    else:
        print(text)


if __name__ == "__main__":
    run_main(main, PROGRAM)
