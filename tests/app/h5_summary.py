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


with h5py.File(sys.argv[1], "r") as f:
    summary = {"attrs": attrs(f), "problems": {}}
    for name, group in f["problems"].items():
        problem = {"attrs": attrs(group), "workers": {}, "steps": [],
                   "transcript": text(group["transcript"][()])}
        for worker, data in group["workers"].items():
            problem["workers"][worker] = {"tokens": [int(t) for t in data["tokens"][()]],
                                          "text": text(data["text"][()])}
        for row in group["steps"][()]:
            problem["steps"].append({field: row[field].item() for field in row.dtype.names})
        summary["problems"][name] = problem
    json.dump(summary, sys.stdout, allow_nan=True)
