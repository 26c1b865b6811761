#!/usr/bin/env python3
"""Write a tiny Hugging Face checkpoint (Llama, Qwen2 or Qwen3) with random weights, for tests.

Usage:
    make_tiny_model.py --arch {llama,qwen2,qwen3} --out DIR [--seed S] [--dtype f32|bf16|f16]
        [--layers 2] [--hidden 64] [--heads 4] [--kv-heads 2] [--head-dim 16] [--ffn 128]
        [--vocab 512] [--tied] [--rope-scaling none|llama3|yarn] [--rope-theta 10000]
        [--max-position N] [--rms-eps 1e-6] [--sharded] [--tokenizer-from MODEL.gguf]

Writes DIR/config.json (as transformers saves it) and DIR/model.safetensors, or with --sharded
three files model-0000i-of-00003.safetensors plus model.safetensors.index.json. Same arguments
and seed give byte-identical files.

Weights (HF names and layout, [out_features, in_features]):
  * projections: normal with std 1/sqrt(in_features), so activations stay O(1);
  * model.embed_tokens.weight and lm_head.weight: normal with std 2/sqrt(hidden), so that the
    logits spread over a few units and greedy choices are not near-ties;
  * RMSNorm weights (input/post_attention layernorms, model.norm, Qwen3 q_norm/k_norm):
    1 + 0.1 * normal;
  * Qwen2 q/k/v biases: 0.1 * normal.
With --dtype bf16/f16 the fp32 values are rounded (to nearest even) when stored.

RoPE scaling, in transformers' rope_scaling format:
  llama3: {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}; the default
           --max-position is then 65536 (transformers warns unless it exceeds 8192)
  yarn:   {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings":
           max_position / 4}; original * factor == max_position_embeddings, so the transformers
           versions that take the factor from max_position / original agree with the others.

The tests feed token ids directly, so no tokenizer is written unless --tokenizer-from names a
GGUF whose vocabulary scripts/hf_tokenizer_from_gguf.py exports (the default --vocab is then
that GGUF's vocabulary size).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_to_hf import (DTYPES, InputError, export_tokenizer_files, hf_config,  # noqa: E402
                        open_gguf, run_main, save_hf_checkpoint)

DEFAULT_VOCAB = 512


def rope_scaling_dict(kind, max_position):
    if kind == "none":
        return None
    if kind == "llama3":
        return {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    if kind == "yarn":
        factor = 4.0
        if max_position % 4 != 0:
            raise InputError(f"--max-position {max_position} must be a multiple of 4 for yarn")
        return {"rope_type": "yarn", "factor": factor,
                "original_max_position_embeddings": int(max_position // factor)}
    raise InputError(f"unknown rope scaling {kind!r}")


def random_weights(args, rng):
    """{HF name: float32 array}, in the order a checkpoint lists them."""
    hidden, heads, kv_heads, head_dim, ffn = (args.hidden, args.heads, args.kv_heads,
                                              args.head_dim, args.ffn)

    def linear(out_features, in_features):
        return (rng.standard_normal((out_features, in_features)) / np.sqrt(in_features)).astype(np.float32)

    def norm(size):
        return (1.0 + 0.1 * rng.standard_normal(size)).astype(np.float32)

    def bias(size):
        return (0.1 * rng.standard_normal(size)).astype(np.float32)

    embedding_std = 2.0 / np.sqrt(hidden)
    tensors = {"model.embed_tokens.weight":
               (embedding_std * rng.standard_normal((args.vocab, hidden))).astype(np.float32)}
    for layer in range(args.layers):
        p = f"model.layers.{layer}."
        tensors[p + "input_layernorm.weight"] = norm(hidden)
        tensors[p + "self_attn.q_proj.weight"] = linear(heads * head_dim, hidden)
        tensors[p + "self_attn.k_proj.weight"] = linear(kv_heads * head_dim, hidden)
        tensors[p + "self_attn.v_proj.weight"] = linear(kv_heads * head_dim, hidden)
        if args.arch == "qwen2":
            tensors[p + "self_attn.q_proj.bias"] = bias(heads * head_dim)
            tensors[p + "self_attn.k_proj.bias"] = bias(kv_heads * head_dim)
            tensors[p + "self_attn.v_proj.bias"] = bias(kv_heads * head_dim)
        if args.arch == "qwen3":
            tensors[p + "self_attn.q_norm.weight"] = norm(head_dim)
            tensors[p + "self_attn.k_norm.weight"] = norm(head_dim)
        tensors[p + "self_attn.o_proj.weight"] = linear(hidden, heads * head_dim)
        tensors[p + "post_attention_layernorm.weight"] = norm(hidden)
        tensors[p + "mlp.gate_proj.weight"] = linear(ffn, hidden)
        tensors[p + "mlp.up_proj.weight"] = linear(ffn, hidden)
        tensors[p + "mlp.down_proj.weight"] = linear(hidden, ffn)
    tensors["model.norm.weight"] = norm(hidden)
    if not args.tied:
        tensors["lm_head.weight"] = (embedding_std * rng.standard_normal((args.vocab, hidden))).astype(np.float32)
    return tensors


def check_args(args):
    for name in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "max_position"):
        if getattr(args, name) <= 0:
            raise InputError(f"--{name.replace('_', '-')} must be positive")
    if args.heads % args.kv_heads != 0:
        raise InputError(f"--heads {args.heads} is not a multiple of --kv-heads {args.kv_heads}")
    if args.head_dim % 2 != 0:
        raise InputError(f"--head-dim {args.head_dim} must be even (RoPE rotates pairs)")


def make_tiny_model(args):
    if args.tokenizer_from:
        reader = open_gguf(args.tokenizer_from)  # fails early, with one line, on a bad path
        tokens = reader.fields.get("tokenizer.ggml.tokens")
        if tokens is None:
            raise InputError(f"{args.tokenizer_from}: no tokenizer.ggml.tokens")
        if args.vocab is None:
            args.vocab = len(tokens.data)
    if args.vocab is None:
        args.vocab = DEFAULT_VOCAB
    if args.max_position is None:
        args.max_position = 65536 if args.rope_scaling == "llama3" else 4096
    check_args(args)

    rng = np.random.default_rng(args.seed)
    tensors = random_weights(args, rng)
    config = hf_config(
        args.arch,
        hidden=args.hidden, intermediate=args.ffn, layers=args.layers, heads=args.heads,
        kv_heads=args.kv_heads, head_dim=args.head_dim, vocab=args.vocab, rms_eps=args.rms_eps,
        rope_theta=args.rope_theta, max_position=args.max_position, tied=args.tied,
        torch_dtype=DTYPES[args.dtype][1],
        rope_scaling=rope_scaling_dict(args.rope_scaling, args.max_position),
        bos_token_id=1 if args.vocab > 2 else None, eos_token_id=2 if args.vocab > 2 else None)
    save_hf_checkpoint(args.out, config, tensors, args.dtype, shards=3 if args.sharded else 1)
    if args.tokenizer_from:
        if not export_tokenizer_files(args.tokenizer_from, args.out):
            raise InputError("--tokenizer-from needs scripts/hf_tokenizer_from_gguf.py")
    return config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=["llama", "qwen2", "qwen3"], required=True)
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=16)
    parser.add_argument("--ffn", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=None,
                        help=f"vocabulary size (default {DEFAULT_VOCAB}, or the --tokenizer-from GGUF's)")
    parser.add_argument("--tied", action="store_true", help="tie lm_head to embed_tokens")
    parser.add_argument("--rope-scaling", choices=["none", "llama3", "yarn"], default="none")
    parser.add_argument("--rope-theta", type=float, default=10000.0)
    parser.add_argument("--max-position", type=int, default=None,
                        help="max_position_embeddings (default 4096; 65536 with llama3 scaling)")
    parser.add_argument("--rms-eps", type=float, default=1e-6)
    parser.add_argument("--sharded", action="store_true",
                        help="write 3 shards and model.safetensors.index.json")
    parser.add_argument("--tokenizer-from", metavar="MODEL.gguf",
                        help="export this GGUF's tokenizer into DIR")
    return parser.parse_args(argv)


def main():
    args = parse_args()
    config = make_tiny_model(args)
    print(f"wrote {args.out}: {config['architectures'][0]}, {args.layers} layers, "
          f"hidden {args.hidden}, vocab {args.vocab}, {args.dtype}")


if __name__ == "__main__":
    run_main(main, "make_tiny_model.py")
