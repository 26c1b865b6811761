#!/usr/bin/env python3
"""Write a GGUF holding one small tensor per GGML type, plus its reference dequantization.

Usage:
    make_quant_fixture.py OUT.gguf OUT.npz [--bin-dir DIR] [--seed S]

The GGUF (architecture "llama", no model metadata) holds one tensor of 2 rows x 512 columns per
type, named after the type: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
Types that the gguf package can quantize are quantized from random normal data with
gguf.quants.quantize; for the others (the K-quants) the blocks are random bytes whose fp16 scale
fields are overwritten with small finite values. F32/F16/BF16 also hold special values (signed
zeros, infinities, subnormals, the largest finite values; no NaNs, whose payloads conversions
may change).

The reference is gguf.quants.dequantize (the gguf Python package, independent of the engine)
applied to the tensor bytes read back from the written file. It is saved to OUT.npz (one float32
array of shape [2, 512] per type name) and, with --bin-dir, as DIR/<TYPE>.bin: raw little-endian
float32, row-major, for tests that do not want to parse .npz. DIR/manifest.txt lists the type
names, one per line.
"""

import argparse
import os
import sys

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as T
except ImportError:  # pragma: no cover - environment problem
    sys.exit("make_quant_fixture.py: error: the 'gguf' Python package is not installed "
             "(pip install -r scripts/requirements.txt)")

ROWS, COLS = 2, 512

# Type names in the order they are written.
TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]

# Byte offsets of the fp16 scale fields inside one K-quant block (ggml-common.h):
#   block_q4_K: d, dmin (fp16), scales[12], qs[128]             = 144 bytes
#   block_q5_K: d, dmin (fp16), scales[12], qh[32], qs[128]     = 176 bytes
#   block_q6_K: ql[128], qh[64], scales[16] (int8), d (fp16)    = 210 bytes
K_QUANT_HALF_FIELDS = {"Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}

SPECIAL_F32 = np.array([0.0, -0.0, np.inf, -np.inf, 1e-40, -1e-45, 3.4028235e38, -1.0, 1.0,
                        65504.0, 6e-8, -6.1e-5], dtype=np.float32)


def random_float_rows(rng):
    """Normal data with a few special values at the start of row 0."""
    data = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    data[0, :len(SPECIAL_F32)] = SPECIAL_F32
    return data


def k_quant_blocks(rng, type_name):
    """Random K-quant blocks with small finite fp16 scales (d in about [1e-3, 1e-1])."""
    qtype = T[type_name]
    block_elements, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = ROWS * COLS // block_elements
    blocks = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for offset in K_QUANT_HALF_FIELDS[type_name]:
        scale = (rng.uniform(1e-3, 1e-1, size=n_blocks) * rng.choice([-1.0, 1.0], size=n_blocks))
        blocks[:, offset:offset + 2] = scale.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(ROWS, -1)


def tensor_bytes(rng, type_name):
    """(array, raw_dtype) to hand to GGUFWriter.add_tensor for one type."""
    if type_name == "F32":
        return random_float_rows(rng), None
    if type_name == "F16":
        with np.errstate(over="ignore"):
            return random_float_rows(rng).astype(np.float16), None
    if type_name in K_QUANT_HALF_FIELDS:
        return k_quant_blocks(rng, type_name), T[type_name]
    data = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    if type_name == "BF16":
        data = random_float_rows(rng)
    else:
        data[1, :32] = 0.0  # one all-zero block: scale 0
        data[1, 32:64] *= 1e-3  # one block of tiny values
    return gguf.quants.quantize(data, T[type_name]), T[type_name]


def write_fixture(gguf_path, seed):
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(gguf_path, "llama")
    writer.add_string("general.name", "hogwild quantization fixture")
    for type_name in TYPES:
        array, raw_dtype = tensor_bytes(rng, type_name)
        writer.add_tensor(type_name, array, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def reference_dequantization(gguf_path):
    """Dequantizes every tensor of the written file with gguf.quants.dequantize."""
    reader = gguf.GGUFReader(gguf_path)
    result = {}
    for tensor in reader.tensors:
        raw = np.ascontiguousarray(tensor.data).view(np.uint8).reshape(ROWS, -1)
        values = gguf.quants.dequantize(raw, tensor.tensor_type)
        values = np.asarray(values, dtype=np.float32).reshape(ROWS, COLS)
        assert tensor.tensor_type.name == tensor.name, (tensor.name, tensor.tensor_type.name)
        assert list(tensor.shape) == [COLS, ROWS], list(tensor.shape)
        result[tensor.name] = values
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf_out", metavar="OUT.gguf")
    parser.add_argument("npz_out", metavar="OUT.npz")
    parser.add_argument("--bin-dir", metavar="DIR",
                        help="also write DIR/<TYPE>.bin (raw little-endian float32) and manifest.txt")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    for path in (args.gguf_out, args.npz_out):
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            sys.exit(f"make_quant_fixture.py: error: output folder {parent} does not exist")

    write_fixture(args.gguf_out, args.seed)
    reference = reference_dequantization(args.gguf_out)
    np.savez(args.npz_out, **reference)
    if args.bin_dir:
        os.makedirs(args.bin_dir, exist_ok=True)
        for name, values in reference.items():
            values.astype("<f4").tofile(os.path.join(args.bin_dir, name + ".bin"))
        with open(os.path.join(args.bin_dir, "manifest.txt"), "w") as f:
            f.write("".join(name + "\n" for name in reference))
    print(f"wrote {args.gguf_out} ({len(reference)} tensors) and {args.npz_out}")


if __name__ == "__main__":
    main()
