#!/usr/bin/env python3
"""Checks one Hogwild block_attention call (written by the attention_check binary) against
docs/design.md §3-§4 computed in torch, float64.

Usage:
    attention_check.py DIR [--device cpu|cuda] [--tolerance 1e-4] [--json OUT.json]

The reference works from the layout only (meta.json: each block's length and pages, each query
row's view of blocks, their lengths and the row's position in the view), not from the engine's
view entries: for a row at view position i and a block b starting at s_b in the view, keys
j <= i - s_b of b are visible; the score is rot(q, i - s_b) . k_j / sqrt(d) (keys are stored
rotated to their block-local positions, NeoX rotate-half with inv_freq = theta^(-2k/d)); one
softmax over the visible keys of all the row's blocks; GQA head h reads KV head h / (H / KvH).

Tolerance 1e-4 (relative, absolute below magnitude 1), as tests/kernels/test_backend_ops.cpp for
the GPU: fp32 accumulation in another order, exp2f, fp32 RoPE arguments (~1e-6 each); bf16
pools are compared with the rounded values the pools hold, so the same bound applies. Any
indexing, rotation or visibility error is O(0.1-1). Exit 0 pass, 1 fail, 77 without torch.
"""

import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--json")
    args = parser.parse_args()
    try:
        import numpy as np
        import torch
    except ImportError as error:
        print(f"attention_check: skipped: {error}")
        return 77
    try:
        with open(os.path.join(args.dir, "meta.json")) as file:
            meta = json.load(file)
    except (OSError, ValueError) as error:
        print(f"attention_check: {args.dir}/meta.json: {error}", file=sys.stderr)
        return 1
    heads, kv_heads, d = meta["heads"], meta["kv_heads"], meta["head_dim"]
    page_size, n, pool_rows = meta["page_size"], meta["rows"], meta["pool_rows"]
    device = torch.device(args.device)

    def load(name, rows, cols):
        data = np.fromfile(os.path.join(args.dir, name), dtype="<f4")
        if data.size != rows * cols:
            raise ValueError(f"{name}: {data.size} floats, expected {rows} x {cols}")
        return torch.from_numpy(data.reshape(rows, cols)).to(device, torch.float64)

    q = load("q.f32", n, heads * d).view(n, heads, d)
    keys = load("keys.f32", pool_rows, kv_heads * d).view(pool_rows, kv_heads, d)
    values = load("values.f32", pool_rows, kv_heads * d).view(pool_rows, kv_heads, d)
    out = load("out.f32", n, heads * d).view(n, heads, d)
    inv_freq = meta["theta"] ** (-2.0 * torch.arange(d // 2, dtype=torch.float64, device=device)
                                 / d)

    def rotate(x, position):  # NeoX rotate-half by `position` (x: [heads, d])
        angle = position * inv_freq
        cos, sin = torch.cos(angle), torch.sin(angle)
        a, b = x[:, : d // 2], x[:, d // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=1)

    def block_rows(block, count):  # pool rows of the first `count` keys of a block
        pages = torch.tensor(meta["blocks"][block]["pages"], device=device)
        j = torch.arange(count, device=device)
        return pages[j // page_size] * page_size + j % page_size

    group = heads // kv_heads
    expected = torch.zeros_like(out)
    for r, query in enumerate(meta["queries"]):
        i, start, scores, value_rows = query["position"], 0, [], []
        for block, length in zip(query["view"], query["lengths"]):
            visible = min(length, i - start + 1)
            if visible > 0:
                rows = block_rows(block, visible)
                k = keys[rows].repeat_interleave(group, dim=1)  # [visible, heads, d]
                qr = rotate(q[r], i - start)  # [heads, d]
                scores.append(torch.einsum("hd,jhd->hj", qr, k) / d ** 0.5)
                value_rows.append(values[rows].repeat_interleave(group, dim=1))
            start += length
        if scores:
            weights = torch.softmax(torch.cat(scores, dim=1), dim=1)  # one softmax over blocks
            expected[r] = torch.einsum("hj,jhd->hd", weights, torch.cat(value_rows, dim=0))
    error = ((out - expected).abs() / expected.abs().clamp(min=1.0)).max().item()
    finite = bool(torch.isfinite(out).all())
    passed = finite and error <= args.tolerance
    record = {"backend": meta["backend"], "kv": meta["kv"], "workers": meta["workers"],
              "keys": meta["keys"], "rows": n, "max_error": error, "tolerance": args.tolerance,
              "status": "PASS" if passed else "FAIL"}
    print(f"attention_check: {meta['backend']} {meta['kv']} K/V, {meta['workers']} workers, "
          f"{meta['keys']} keys, {n} rows: max error {error:.2e} "
          f"({'<=' if passed else '>'} {args.tolerance:g}){'' if finite else ', NON-FINITE'} "
          f"{record['status']}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(record, file, indent=1)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
