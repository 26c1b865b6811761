#!/usr/bin/env python3
"""The summary of one benchmarks/device_check.sh run: a table (stdout) and LOGS/summary.json.

Usage:
    device_summary.py LOGS [--gpu TEXT] [--seconds N]

Reads what the steps left in LOGS (steps.tsv, hf_forward_*.json, attention_check_*.json,
decode_graphs_{on,off}.json, bench.json; any of them may be missing when its step failed or ran
out of time) and evaluates issue 13's targets:
  * decode step <= 1.2x the roofline at 4 workers, 8k keys (graphs on);
  * aggregate tokens/s at 4 workers >= 3.8x that of 1 worker (8k keys);
  * one layer's attention, 4 workers vs 1 at 16k keys, <= 1.25x;
  * graphs on faster than off at 1 worker (the launch overhead they remove is not measured
    separately here: the figure is the step-time difference).
A target whose figure is missing is "not measured". summary.json:
  {"gpu", "seconds", "steps": [{name, status, seconds, note}], "forward": {dtype: [records]},
   "attention": {kv: record}, "decode": {"graphs_on": ..., "graphs_off": ...},
   "attention_bench": [{name, us}], "targets": [{name, value, target, met}], "paths": {...}}
"""

import argparse
import json
import os
import sys


def load(path):
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def find(results, workers, context):
    for r in (results or {}).get("results", []):
        if r["workers"] == workers and r["context"] == context:
            return r
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logs")
    parser.add_argument("--gpu", default="")
    parser.add_argument("--seconds", type=int, default=0)
    args = parser.parse_args()
    logs = args.logs
    if not os.path.isdir(logs):
        print(f"device_summary: {logs} is not a folder", file=sys.stderr)
        return 1
    summary = {"gpu": args.gpu, "seconds": args.seconds, "steps": [], "forward": {},
               "attention": {}, "decode": {}, "attention_bench": [], "targets": []}
    try:
        with open(os.path.join(logs, "steps.tsv")) as file:
            for line in file:
                name, status, seconds, note = (line.rstrip("\n").split("\t") + [""] * 4)[:4]
                summary["steps"].append({"name": name, "status": status,
                                         "seconds": int(seconds or 0), "note": note})
    except OSError:
        pass
    for dtype in ("bf16", "f32"):
        records = load(os.path.join(logs, f"hf_forward_{dtype}.json"))
        if records is not None:
            summary["forward"][dtype] = records
    for kv in ("f32", "bf16"):
        record = load(os.path.join(logs, f"attention_check_{kv}.json"))
        if record is not None:
            summary["attention"][kv] = record
    for mode in ("on", "off"):
        decode = load(os.path.join(logs, f"decode_graphs_{mode}.json"))
        if decode is not None:
            summary["decode"][f"graphs_{mode}"] = decode
    bench = load(os.path.join(logs, "bench.json"))
    for b in (bench or {}).get("benchmarks", []):
        summary["attention_bench"].append({"name": b.get("name"), "us": b.get("real_time")})

    def target(name, value, bound, met, note=""):
        summary["targets"].append({"name": name, "value": value, "target": bound,
                                   "met": met if value is not None else None, "note": note})

    on = summary["decode"].get("graphs_on")
    off = summary["decode"].get("graphs_off")
    r4 = find(on, 4, 8192)
    target("decode step / roofline, 4 workers, 8k keys", r4 and r4["roofline_ratio"], "<= 1.2",
           r4 is not None and r4["roofline_ratio"] <= 1.2)
    r1 = find(on, 1, 8192)
    scaling = r4["tokens_per_s"] / r1["tokens_per_s"] if r4 and r1 else None
    target("tokens/s 4 workers vs 1, 8k keys", scaling, ">= 3.8",
           scaling is not None and scaling >= 3.8)
    a4, a1 = find(on, 4, 16384), find(on, 1, 16384)
    attention = a4["attention_us"] / a1["attention_us"] if a4 and a1 else None
    target("attention 4 workers vs 1, 16k keys", attention, "<= 1.25",
           attention is not None and attention <= 1.25)
    g_on, g_off = find(on, 1, 8192), find(off, 1, 8192)
    gain = g_off["step_ms"] - g_on["step_ms"] if g_on and g_off else None
    target("graphs: step ms saved at 1 worker, 8k keys", gain, "> 0", gain is not None and gain > 0,
           "asked through TransformerOptions::graphs: an engine without graphs gives about 0")
    for decode in (on, off):
        if decode and (decode.get("weights_dtype") != decode.get("dtype_asked") or
                       decode.get("kv_dtype") != decode.get("dtype_asked")):
            summary.setdefault("notes", []).append(
                f"decode (graphs {'on' if decode.get('graphs_asked') else 'off'}): "
                f"{decode.get('dtype_asked')} asked, weights {decode.get('weights_dtype')}, "
                f"KV {decode.get('kv_dtype')}: the engine does not implement the asked dtype yet")

    with open(os.path.join(logs, "summary.json"), "w") as file:
        json.dump(summary, file, indent=1)

    print("\n==== figures")
    for dtype, records in summary["forward"].items():
        for r in records:
            extra = f", greedy {r.get('greedy_agree')}/{len(r.get('greedy_transformers', []))}" \
                if "greedy_agree" in r else ""
            diff = r.get("logprob_max_diff")
            print(f"forward vs transformers {dtype:4s} {r['arch']:6s} {r['status']:4s} "
                  f"log-prob diff {diff if diff is None else f'{diff:.2e}'} "
                  f"(tol {r.get('tolerance', float('nan')):.2e}){extra}")
    for kv, r in summary["attention"].items():
        print(f"attention vs torch {kv:4s} K/V: {r['status']} max error {r['max_error']:.2e} "
              f"({r['workers']} workers, {r['keys']} keys)")
    for mode, decode in summary["decode"].items():
        print(f"\ndecode, {mode.replace('_', ' ')}: weights {decode['weights_dtype']}, KV "
              f"{decode['kv_dtype']} ({decode['dtype_asked']} asked), copy "
              f"{decode['copy_bandwidth_gbps']:.0f} GB/s, {decode['weight_bytes'] / 1e9:.1f} GB "
              f"of weights")
        print(f"{'W':>3} {'context':>7} {'step ms':>9} {'roofline':>9} {'ratio':>6} "
              f"{'tok/s':>8} {'scaling':>7} {'attn us':>8}")
        for r in decode["results"]:
            print(f"{r['workers']:>3} {r['context']:>7} {r['step_ms']:>9.3f} "
                  f"{r['roofline_ms']:>9.3f} {r['roofline_ratio']:>5.2f}x {r['tokens_per_s']:>8.1f}"
                  f" {r['scaling']:>6.2f}x {r['attention_us']:>8.1f}")
    print("\n==== issue 13 targets")
    for t in summary["targets"]:
        value = "not measured" if t["value"] is None else f"{t['value']:.3f}"
        verdict = "-" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"{t['name']:45s} {value:>12s}  target {t['target']:8s} {verdict}")
    for note in summary.get("notes", []):
        print(f"note: {note}")
    print(f"\nsummary.json: {os.path.join(logs, 'summary.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
