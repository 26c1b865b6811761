#!/usr/bin/env python3
"""Convert a GGUF model (llama, qwen2, qwen3) into a Hugging Face checkpoint folder.

Usage:
    gguf_to_hf.py IN.gguf OUT_DIR [--dtype f32|bf16|f16] [--sharded] [--no-tokenizer]

Writes OUT_DIR/config.json (LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM with the
GGUF's hyperparameters), OUT_DIR/model.safetensors (or model-0000i-of-0000n.safetensors plus
model.safetensors.index.json with --sharded) holding every tensor dequantized with
gguf.quants.dequantize, renamed to its HF name and in HF layout, and the tokenizer files through
scripts/hf_tokenizer_from_gguf.py's export_tokenizer (skipped with a warning if that module is
missing, or with --no-tokenizer).

GGUF "llama" files store the rows of attn_q / attn_k permuted (llama.cpp's
convert_hf_to_gguf.py LlamaModel.permute) so that llama.cpp can use interleaved-pair RoPE; this
script undoes that permutation (head_count heads for q, head_count_kv for k), which gives the HF
layout where RoPE rotates the two halves of each head (NeoX rotate-half). qwen2/qwen3 GGUFs are
not permuted.

Also a library for the other scripts: load_gguf_model() (HF config dict + fp32 HF tensors),
hf_config() (a transformers-style config.json dict) and save_hf_checkpoint() (config + safetensors,
written here without the safetensors package so that bf16 needs no torch).
"""

import argparse
import json
import os
import re
import sys

import numpy as np

SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))

ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
}


class InputError(Exception):
    """A problem with the user's input (missing file, unsupported model): printed as one line."""


def run_main(main, program):
    """Runs main(), turning InputError / OSError into one line on stderr and exit status 1."""
    try:
        main()
    except InputError as e:
        sys.exit(f"{program}: error: {e}")
    except OSError as e:
        name = f" {e.filename}" if getattr(e, "filename", None) else ""
        sys.exit(f"{program}: error:{name}: {e.strerror or e}")
    except KeyboardInterrupt:
        sys.exit(130)


# ---------------------------------------------------------------------------------------------
# config.json


def hf_config(arch, *, hidden, intermediate, layers, heads, kv_heads, head_dim, vocab,
              rms_eps, rope_theta, max_position, tied, torch_dtype, rope_scaling=None,
              bos_token_id=None, eos_token_id=None):
    """A config.json dict as transformers' LlamaConfig / Qwen2Config / Qwen3Config save it."""
    if arch not in ARCHITECTURES:
        raise InputError(f"unsupported architecture {arch!r} (expected one of {', '.join(ARCHITECTURES)})")
    config = {
        "architectures": [ARCHITECTURES[arch]],
        "model_type": arch,
        "attention_bias": arch == "qwen2",
        "attention_dropout": 0.0,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "max_position_embeddings": max_position,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": rms_eps,
        "rope_scaling": rope_scaling,
        "rope_theta": rope_theta,
        "tie_word_embeddings": tied,
        "torch_dtype": torch_dtype,
        "use_cache": True,
        "vocab_size": vocab,
    }
    if arch == "llama":
        config.update({"mlp_bias": False, "pretraining_tp": 1})
    else:
        config.update({"max_window_layers": layers, "sliding_window": None,
                       "use_sliding_window": False})
    return config


# ---------------------------------------------------------------------------------------------
# safetensors writing (the format: u64 little-endian header length, JSON header, raw data)

DTYPES = {"f32": ("F32", "float32"), "bf16": ("BF16", "bfloat16"), "f16": ("F16", "float16")}


def float32_to_bf16_bits(values):
    """fp32 -> bf16 bit patterns, round to nearest even (as torch and ggml do; no NaNs expected)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_float32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def encode_tensor(values, dtype):
    """(safetensors dtype name, little-endian bytes) of an array stored as `dtype`."""
    if dtype == "f32":
        return "F32", np.ascontiguousarray(values, dtype="<f4").tobytes()
    if dtype == "f16":
        with np.errstate(over="ignore"):
            return "F16", np.ascontiguousarray(values, dtype=np.float32).astype("<f2").tobytes()
    if dtype == "bf16":
        return "BF16", float32_to_bf16_bits(values).astype("<u2").tobytes()
    raise InputError(f"unknown dtype {dtype!r} (expected f32, bf16 or f16)")


def write_safetensors(path, tensors, dtype):
    """Writes {name: fp32 array} to `path`, each stored as `dtype`; returns the data size."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, values in tensors.items():
        st_dtype, blob = encode_tensor(values, dtype)
        header[name] = {"dtype": st_dtype, "shape": list(np.shape(values)),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)
    return offset


def save_hf_checkpoint(out_dir, config, tensors, dtype="f32", shards=1):
    """Writes config.json and the weights ({HF name: fp32 array}) as safetensors into out_dir.

    shards > 1 splits the tensors, in order, into that many files named like transformers'
    model-00001-of-00003.safetensors, with model.safetensors.index.json mapping names to files.
    """
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    names = list(tensors)
    if shards <= 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype)
        return
    shards = min(shards, len(names))
    weight_map = {}
    total = 0
    for i, chunk in enumerate(np.array_split(np.arange(len(names)), shards)):
        file_name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {names[j]: tensors[names[j]] for j in chunk}
        total += write_safetensors(os.path.join(out_dir, file_name), part, dtype)
        weight_map.update({name: file_name for name in part})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# GGUF reading

GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}


def hf_tensor_name(gguf_name):
    """HF name of a GGUF tensor name, or None for tensors HF checkpoints do not have."""
    if gguf_name in GLOBAL_NAMES:
        return GLOBAL_NAMES[gguf_name]
    match = re.fullmatch(r"blk\.(\d+)\.(.+)", gguf_name)
    if match and match.group(2) in LAYER_NAMES:
        return f"model.layers.{match.group(1)}.{LAYER_NAMES[match.group(2)]}"
    return None


def unpermute_rows(w, n_head):
    """Inverse of llama.cpp's LlamaModel.permute.

    permute: w.reshape(n_head, 2, rows // n_head // 2, *rest).swapaxes(1, 2).reshape(w.shape)
    moves row (h, half, i) to (h, i, half), interleaving the two halves of each head's rows; the
    inverse reads the rows as (h, i, half) and swaps back. Works for weights [rows, cols] and
    biases [rows].
    """
    rows = w.shape[0]
    if rows % (2 * n_head) != 0:
        raise InputError(f"cannot un-permute {rows} rows over {n_head} heads")
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute_rows(w, n_head):
    """llama.cpp's LlamaModel.permute (used by tests of unpermute_rows)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def open_gguf(path):
    try:
        import gguf
    except ImportError:
        raise InputError("the 'gguf' Python package is not installed "
                         "(pip install -r scripts/requirements.txt)") from None
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    try:
        return gguf.GGUFReader(path)
    except Exception as e:  # the reader raises ValueError/struct errors on bad files
        raise InputError(f"{path}: not a readable GGUF file ({e})") from None


def field_value(reader, key, default=None):
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def short_float(value):
    """A float32 metadata value as the shortest decimal that round-trips (1e-05, not
    9.999999747378752e-06), as the original config.json had it."""
    return float(str(np.float32(value)))


def load_gguf_model(path, dtype_name="float32"):
    """Reads a GGUF model: (HF config dict, {HF name: float32 array in HF layout}).

    Every tensor is dequantized with gguf.quants.dequantize; GGUF "llama" q/k rows are
    un-permuted.
    """
    import gguf

    reader = open_gguf(path)
    arch = field_value(reader, "general.architecture")
    if arch not in ARCHITECTURES:
        raise InputError(f"{path}: unsupported architecture {arch!r} "
                         f"(expected one of {', '.join(ARCHITECTURES)})")

    def meta(key, default=None, required=True):
        value = field_value(reader, f"{arch}.{key}", default)
        if value is None and required:
            raise InputError(f"{path}: missing metadata key {arch}.{key}")
        return value

    hidden = int(meta("embedding_length"))
    heads = int(meta("attention.head_count"))
    kv_heads = int(meta("attention.head_count_kv", heads))
    head_dim = int(meta("attention.key_length", hidden // heads))
    tensors_by_name = {t.name: t for t in reader.tensors}
    if "token_embd.weight" not in tensors_by_name:
        raise InputError(f"{path}: no token_embd.weight tensor")
    if "rope_freqs.weight" in tensors_by_name:
        raise InputError(f"{path}: rope_freqs.weight (per-dimension RoPE factors) is not supported")
    vocab = int(meta("vocab_size", None, required=False)
                or tensors_by_name["token_embd.weight"].shape[1])

    rope_scaling = None
    scaling_type = meta("rope.scaling.type", None, required=False)
    if scaling_type not in (None, "none"):
        factor = short_float(meta("rope.scaling.factor"))
        rope_scaling = {"rope_type": scaling_type, "factor": factor}
        original = meta("rope.scaling.original_context_length", None, required=False)
        if original is not None:
            rope_scaling["original_max_position_embeddings"] = int(original)
        if scaling_type not in ("linear", "yarn"):
            raise InputError(f"{path}: unsupported rope scaling type {scaling_type!r}")

    def token_id(key):
        value = field_value(reader, f"tokenizer.ggml.{key}")
        return None if value is None else int(value)

    config = hf_config(
        arch,
        hidden=hidden,
        intermediate=int(meta("feed_forward_length")),
        layers=int(meta("block_count")),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=vocab,
        rms_eps=short_float(meta("attention.layer_norm_rms_epsilon")),
        rope_theta=short_float(meta("rope.freq_base", 10000.0)),
        max_position=int(meta("context_length", 2048)),
        tied="output.weight" not in tensors_by_name,
        torch_dtype=dtype_name,
        rope_scaling=rope_scaling,
        bos_token_id=token_id("bos_token_id"),
        eos_token_id=token_id("eos_token_id"),
    )

    tensors = {}
    for t in reader.tensors:
        name = hf_tensor_name(t.name)
        if name is None:
            print(f"gguf_to_hf: warning: skipping tensor {t.name} (no HF equivalent)", file=sys.stderr)
            continue
        shape = tuple(int(d) for d in reversed(t.shape))  # GGUF lists the innermost dim first
        try:
            values = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        except NotImplementedError:
            raise InputError(f"{path}: tensor {t.name} has type {t.tensor_type.name}, which the "
                             "gguf package cannot dequantize") from None
        values = np.asarray(values, dtype=np.float32).reshape(shape)
        if arch == "llama" and t.name.endswith(("attn_q.weight", "attn_q.bias")):
            values = unpermute_rows(values, heads)
        elif arch == "llama" and t.name.endswith(("attn_k.weight", "attn_k.bias")):
            values = unpermute_rows(values, kv_heads)
        tensors[name] = values
    return config, tensors


def export_tokenizer_files(gguf_path, out_dir):
    """Calls scripts/hf_tokenizer_from_gguf.py's export_tokenizer if that module exists."""
    if SCRIPTS_DIR not in sys.path:
        sys.path.insert(0, SCRIPTS_DIR)
    try:
        from hf_tokenizer_from_gguf import export_tokenizer
    except ImportError as e:
        print(f"warning: tokenizer files not written (scripts/hf_tokenizer_from_gguf.py: {e})",
              file=sys.stderr)
        return False
    try:
        export_tokenizer(gguf_path, out_dir)
    except ValueError as e:  # e.g. a tokenizer kind it cannot export
        print(f"warning: tokenizer files not written: {e}", file=sys.stderr)
        return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf_path", metavar="IN.gguf")
    parser.add_argument("out_dir", metavar="OUT_DIR")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="f32",
                        help="storage type of the safetensors (default f32)")
    parser.add_argument("--sharded", action="store_true",
                        help="write 3 shards and model.safetensors.index.json")
    parser.add_argument("--no-tokenizer", action="store_true", help="do not write tokenizer files")
    args = parser.parse_args()

    config, tensors = load_gguf_model(args.gguf_path, DTYPES[args.dtype][1])
    save_hf_checkpoint(args.out_dir, config, tensors, args.dtype, shards=3 if args.sharded else 1)
    if not args.no_tokenizer:
        export_tokenizer_files(args.gguf_path, args.out_dir)
    print(f"wrote {args.out_dir}: {config['architectures'][0]}, {len(tensors)} tensors ({args.dtype})")


if __name__ == "__main__":
    run_main(main, "gguf_to_hf.py")
