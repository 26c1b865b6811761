#!/usr/bin/env python3
"""The engine's whole forward pass against transformers on tiny random HF checkpoints.

Usage:
    hf_forward_check.py --driver BIN [--device cpu|cuda] [--dtype f32|bf16] [--work DIR]
                        [--archs llama,qwen2,qwen3] [--greedy 32] [--json OUT.json]

For each architecture it writes a random checkpoint with transformers itself (2 layers, hidden
256, 4 heads, 2 KV heads, head_dim 64, ffn 512, vocab 1024; qwen3 with tied embeddings), stored
in --dtype, then runs the prompt and --greedy greedy steps twice: with transformers (eager
attention, on --device, computing in --dtype) and with BIN (benchmarks/forward_check.cpp, the
engine on the backend of the same name, TransformerOptions::dtype = --dtype). It compares

  * the log-softmax of the last prompt position, max |difference| over the vocabulary;
  * the greedy ids, up to the first step where transformers' top-1/top-2 margin is under
    2 x the tolerance (a near-tie that either side may legitimately break the other way; after
    it the sequences may differ).

Tolerances on the log-probabilities:
  * f32: 1e-4. Both sides compute in fp32 from the same fp32 weights; only the order of the sums
    differs (~1e-6 relative each); 1e-4 leaves two orders of magnitude and catches any real
    error (a wrong RoPE, norm, bias or head mapping moves log-probs by O(0.1-1)).
  * bf16: 2 * d + 0.02, where d is the distance between transformers in bf16 and transformers in
    fp32 on the same (bf16-stored) weights, measured in the same run. transformers rounds every
    activation to bf16; the engine's bf16 path keeps activations, norms, softmax and accumulation
    in fp32 and rounds only weights and K/V, so its distance to transformers-bf16 is at most
    about transformers' own rounding error d; 2x covers rounding at different places, and 0.02
    keeps a floor when d is tiny. The distance to transformers-fp32 is reported too (an engine
    that still computes bf16 runs in fp32, as today, lands at ~1e-3 from it).

Prints one line per architecture and writes --json (a list of per-architecture records). Exit 0
when all pass, 1 when one fails, 77 (a skip) when torch or transformers cannot be imported,
2 on a bad argument.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings

PROMPT = [3, 17, 5, 99, 42, 7, 7, 61, 2, 0, 88, 500, 1023, 64]
SHAPE = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=64, vocab_size=1024, max_position_embeddings=2048,
             rms_norm_eps=1e-6)


def config_for(arch, transformers):
    if arch == "llama":
        return transformers.LlamaConfig(**SHAPE, rope_theta=10000.0, tie_word_embeddings=False)
    if arch == "qwen2":
        return transformers.Qwen2Config(**SHAPE, rope_theta=1000000.0, tie_word_embeddings=False)
    if arch == "qwen3":
        return transformers.Qwen3Config(**SHAPE, rope_theta=1000000.0, tie_word_embeddings=True)
    raise ValueError(arch)


def rope_theta_of(config):
    theta = getattr(config, "rope_theta", None)
    params = getattr(config, "rope_parameters", None)
    if theta is None and isinstance(params, dict):
        theta = params.get("rope_theta")
    return float(theta)


def write_checkpoint(arch, directory, store_dtype, seed, torch, transformers):
    """A random model with weights scaled so activations stay O(1) and logits spread over a few
    units (transformers' own 0.02-std init gives near-ties everywhere), saved as safetensors."""
    config = config_for(arch, transformers)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).float()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                tensor.copy_(1 + 0.1 * torch.randn(tensor.shape, generator=generator))
            elif name.endswith("bias"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
            elif "embed_tokens" in name or "lm_head" in name:
                std = 2 / math.sqrt(config.hidden_size)
                tensor.copy_(std * torch.randn(tensor.shape, generator=generator))
            else:
                std = 1 / math.sqrt(tensor.shape[-1])
                tensor.copy_(std * torch.randn(tensor.shape, generator=generator))
    model = model.to(store_dtype)
    model.save_pretrained(directory, safe_serialization=True)
    # transformers 5 writes rope_parameters.rope_theta; the 4.x checkpoints on the hub (and the
    # engine's reader) use the top-level rope_theta: write both.
    path = os.path.join(directory, "config.json")
    with open(path) as file:
        saved = json.load(file)
    saved.setdefault("rope_theta", rope_theta_of(config))
    with open(path, "w") as file:
        json.dump(saved, file, indent=2)


def transformers_run(directory, device, dtype, greedy, torch, transformers):
    """Last-position logits (float64 list) and `greedy` argmax ids with their margins."""
    kwargs = {"attn_implementation": "eager"}
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, **kwargs)
    except TypeError:
        model = transformers.AutoModelForCausalLM.from_pretrained(directory, torch_dtype=dtype,
                                                                  **kwargs)
    model = model.to(device).eval()
    ids = torch.tensor([PROMPT], device=device)
    tokens, margins = [], []
    with torch.no_grad():
        out = model(ids, use_cache=True)
        last = out.logits[0, -1].double().cpu()
        logits, past = last, out.past_key_values
        for step in range(greedy):
            top = torch.topk(logits, 2)
            token = int(torch.argmax(logits))  # the lowest id on a tie, as the driver
            tokens.append(token)
            margins.append(float(top.values[0] - top.values[1]))
            if step + 1 == greedy:
                break
            out = model(torch.tensor([[token]], device=device), past_key_values=past,
                        use_cache=True)
            logits, past = out.logits[0, -1].double().cpu(), out.past_key_values
    return last, tokens, margins


def log_softmax(values, torch):
    return torch.log_softmax(torch.as_tensor(values, dtype=torch.float64), dim=0)


def run_driver(driver, directory, backend, dtype, greedy):
    command = [driver, "--model", directory, "--backend", backend, "--tokens",
               ",".join(map(str, PROMPT)), "--greedy", str(greedy), "--dtype", dtype]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: "
                           f"{done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def first_divergence(ours, theirs):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return i
    return None if len(ours) == len(theirs) else min(len(ours), len(theirs))


def check(arch, args, torch, transformers):
    store = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    directory = os.path.join(args.work, f"{arch}-{args.dtype}")
    os.makedirs(directory, exist_ok=True)
    start = time.time()
    write_checkpoint(arch, directory, store, seed=1234, torch=torch, transformers=transformers)
    hf_last, hf_greedy, hf_margins = transformers_run(directory, args.device, store, args.greedy,
                                                      torch, transformers)
    backend = "cuda" if args.device.startswith("cuda") else "cpu"
    ours = run_driver(args.driver, directory, backend, args.dtype, args.greedy)
    ours_lp = log_softmax(ours["logits_last"], torch)
    hf_lp = log_softmax(hf_last, torch)
    distance = float((ours_lp - hf_lp).abs().max())
    record = {"arch": arch, "device": args.device, "dtype": args.dtype,
              "logprob_max_diff": distance}
    if args.dtype == "f32":
        tolerance = 1e-4
    else:
        f32_last, f32_greedy, _ = transformers_run(directory, args.device, torch.float32,
                                                   args.greedy, torch, transformers)
        f32_lp = log_softmax(f32_last, torch)
        reference_noise = float((hf_lp - f32_lp).abs().max())
        tolerance = 2 * reference_noise + 0.02
        record["transformers_bf16_vs_f32"] = reference_noise
        record["ours_vs_transformers_f32"] = float((ours_lp - f32_lp).abs().max())
        f32_diverged = first_divergence(ours["greedy"], f32_greedy)
        record["greedy_agree_transformers_f32"] = \
            len(f32_greedy) if f32_diverged is None else f32_diverged
    record["tolerance"] = tolerance
    diverged = first_divergence(ours["greedy"], hf_greedy)
    near_tie = diverged is not None and diverged < len(hf_margins) and \
        hf_margins[diverged] < 2 * tolerance
    record.update(greedy_ours=ours["greedy"], greedy_transformers=hf_greedy,
                  greedy_agree=len(hf_greedy) if diverged is None else diverged,
                  greedy_first_divergence=diverged,
                  greedy_divergence_margin=hf_margins[diverged] if near_tie else None,
                  seconds=round(time.time() - start, 2))
    problems = []
    if not distance <= tolerance:  # NaN fails too
        problems.append(f"log-probs differ by {distance:.3g} > {tolerance:.3g}")
    if diverged is not None and not near_tie:
        problems.append(f"greedy ids differ at step {diverged} (margin "
                        f"{hf_margins[diverged] if diverged < len(hf_margins) else 'n/a'})")
    record["status"] = "FAIL" if problems else "PASS"
    record["problems"] = problems
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--driver", required=True, help="the forward_check binary")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda[:N]")
    parser.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    parser.add_argument("--work", default="build/hf-forward-check")
    parser.add_argument("--archs", default="llama,qwen2,qwen3")
    parser.add_argument("--greedy", type=int, default=32)
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args()
    if not os.access(args.driver, os.X_OK):
        print(f"hf_forward_check: --driver {args.driver} is not an executable", file=sys.stderr)
        return 2
    archs = args.archs.split(",")
    if any(a not in ("llama", "qwen2", "qwen3") for a in archs) or args.greedy < 0:
        print(f"hf_forward_check: --archs {args.archs}: llama, qwen2, qwen3; --greedy >= 0",
              file=sys.stderr)
        return 2
    try:
        import torch
        import transformers
    except ImportError as error:
        print(f"hf_forward_check: skipped: {error}")
        return 77
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("hf_forward_check: --device cuda but torch sees no GPU", file=sys.stderr)
        return 1
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # past_key_values renames
    records = []
    for arch in archs:
        try:
            record = check(arch, args, torch, transformers)
        except Exception as error:  # one line naming the architecture, then the next one
            record = {"arch": arch, "device": args.device, "dtype": args.dtype, "status": "FAIL",
                      "problems": [f"{type(error).__name__}: {error}"]}
        records.append(record)
        if record["status"] == "PASS":
            print(f"{arch:6s} {args.dtype:4s} PASS  log-prob diff {record['logprob_max_diff']:.2e}"
                  f" <= {record['tolerance']:.2e}; greedy {record['greedy_agree']}/{args.greedy}"
                  f" agree" + ("" if record["greedy_first_divergence"] is None else
                               f" (then a near-tie, margin "
                               f"{record['greedy_divergence_margin']:.3g})")
                  + ("" if "greedy_agree_transformers_f32" not in record else
                     f"; {record['greedy_agree_transformers_f32']}/{args.greedy} with "
                     f"transformers-f32"))
        else:
            print(f"{arch:6s} {args.dtype:4s} FAIL  " + "; ".join(record["problems"]))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(records, file, indent=1)
    return 0 if all(r["status"] == "PASS" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
