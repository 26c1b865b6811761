#!/usr/bin/env python3
"""Prefill time of PyTorch eager (transformers, sdpa attention, fp32) on a checkpoint that
scripts/gguf_to_hf.py made from the same GGUF: one forward over the given token ids with the KV
cache built and logits for the last token only (as hogwild's prefill). Not in CI.

Usage: prefill_torch.py HF_DIR IDS_FILE THREADS [REPEATS]
IDS_FILE: token ids on one line (hogwild tokenize). Prints one line per repeat:
  torch: N tokens in S s (R tok/s)
"""
import sys
import time


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    hf_dir, ids_file, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    repeats = int(sys.argv[4]) if len(sys.argv) == 5 else 1
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    with open(ids_file) as f:
        ids = [int(x) for x in f.read().split()]
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32,
                                                 attn_implementation="sdpa")
    model.eval()
    input_ids = torch.tensor([ids], dtype=torch.long)
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            out = model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
            seconds = time.perf_counter() - start
            assert out.logits.shape[1] == 1
            print(f"torch: {len(ids)} tokens in {seconds:.3f} s ({len(ids) / seconds:.1f} tok/s)",
                  flush=True)


if __name__ == "__main__":
    main()
