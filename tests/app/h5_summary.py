"""Prints an HDF5 results file of `hogwild run` as JSON (read with h5py, independently of the
engine's writer), for the end-to-end tests: python3 h5_summary.py RESULTS.h5"""
import json
import math
import sys

import h5py


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def attrs(node):
    out = {}
    for key, value in node.attrs.items():
        if isinstance(value, (bytes, str)):
            out[key] = text(value)
        elif hasattr(value, "item"):
            out[key] = value.item()
            if isinstance(out[key], float) and math.isnan(out[key]):
                out[key] = None  # JSON has no NaN
        else:
            out[key] = value
    return out


def number(value):
    """NaN as None, infinities as "inf"/"-inf": JSON has neither."""
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


with h5py.File(sys.argv[1], "r") as f:
    summary = {"attrs": attrs(f), "problems": {}}
    for name, group in f["problems"].items():
        problem = {"attrs": attrs(group), "workers": {}, "steps": [],
                   "transcript": text(group["transcript"][()])}
        for worker, data in group["workers"].items():
            problem["workers"][worker] = {"tokens": [int(t) for t in data["tokens"][()]],
                                          "text": text(data["text"][()])}
            if "logprobs" in data:  # record_logprobs K > 0
                problem["workers"][worker].update({
                    "logprobs": [number(v) for v in data["logprobs"][()]],
                    "top_ids": [[int(t) for t in row] for row in data["top_ids"][()]],
                    "top_ids_shape": list(data["top_ids"].shape),
                    "top_logprobs": [[number(v) for v in row] for row in data["top_logprobs"][()]],
                    "top_logprobs_shape": list(data["top_logprobs"].shape)})
        for row in group["steps"][()]:
            problem["steps"].append({field: row[field].item() for field in row.dtype.names})
        for table in ("checkpoints", "events"):  # absent in older files / without checkpoints
            if table in group:
                problem[table] = [{field: text(row[field]) if isinstance(row[field], bytes)
                                   else row[field].item() for field in row.dtype.names}
                                  for row in group[table][()]]
        summary["problems"][name] = problem
    json.dump(summary, sys.stdout, allow_nan=True)
