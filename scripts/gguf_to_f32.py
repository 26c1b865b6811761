#!/usr/bin/env python3
"""Rewrite a GGUF file with every tensor in F32 (dequantized with gguf-py), metadata unchanged.

Usage: gguf_to_f32.py IN.gguf OUT.gguf [--overwrite]

For benchmarks that compare engines on the same fp32 weights (benchmarks/compare_peers.sh on an
F32 file: hogwild's exact path against llama.cpp's F32 path). The tokenizer, the architecture
keys and the tensor names are copied as they are; only the tensor types change.
"""

import argparse
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", metavar="IN.gguf")
    ap.add_argument("target", metavar="OUT.gguf")
    ap.add_argument("--overwrite", action="store_true", help="replace OUT.gguf if it exists")
    args = ap.parse_args()
    try:
        import gguf
    except ImportError:
        sys.exit("gguf_to_f32: the gguf package is missing (bash scripts/setup.sh installs it)")
    if not os.path.isfile(args.source):
        sys.exit(f"gguf_to_f32: no file {args.source}")
    if os.path.exists(args.target) and not args.overwrite:
        sys.exit(f"gguf_to_f32: {args.target} exists (--overwrite replaces it)")
    if os.path.realpath(args.source) == os.path.realpath(args.target):
        sys.exit("gguf_to_f32: IN and OUT are the same file")
    reader = gguf.GGUFReader(args.source)
    arch_field = reader.fields.get("general.architecture")
    if arch_field is None:
        sys.exit(f"gguf_to_f32: {args.source} has no general.architecture")
    writer = gguf.GGUFWriter(args.target + ".part", arch_field.contents())
    for name, field in reader.fields.items():
        # The header counts and the alignment are the writer's; the architecture it wrote already.
        if name.startswith("GGUF.") or name in ("general.architecture", "general.alignment"):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub_type)
    for tensor in reader.tensors:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        # GGUF shapes are innermost first; numpy's are outermost first.
        writer.add_tensor(tensor.name, values.reshape(list(reversed(tensor.shape.tolist()))))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(args.target + ".part", args.target)
    print(f"gguf_to_f32: wrote {args.target} ({len(reader.tensors)} tensors, F32)")


if __name__ == "__main__":
    main()
