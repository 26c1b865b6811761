#!/usr/bin/env python3
"""Records and summary of benchmarks/compare_peers.sh (not in CI). Subcommands:

  peers_table.py hogwild RECORDS BENCH_JSON BENCH_STDERR ROUND MODE WEIGHTS LOAD
      one bench_decode run (--benchmark_out JSON, its stderr for the streaming-read bandwidth)
  peers_table.py llama RECORDS RESULT_JSON ROUND MODE LOAD
      one benchmarks/peers_llama.py run (its JSON line)
  peers_table.py prefill RECORDS LOG
      the per-run lines of benchmarks/compare_prefill.sh
  peers_table.py summary RECORDS JSON_OUT META_JSON
      prints the tables (medians over rounds) and writes JSON_OUT

The first three append one JSON line per run to RECORDS and print it as a line of text.
MODE is decode (idle only) or busy (idle, then with one competing busy process).
"""
import json
import re
import statistics
import sys

ENGINES = ("hogwild_native", "hogwild_f32", "llama.cpp")


def append(records, record):
    with open(records, "a") as f:
        f.write(json.dumps(record) + "\n")


def fmt(value, spec=".1f"):
    return "n/a" if value is None else format(value, spec)


def hogwild(records, bench_json, bench_stderr, round_, mode, weights, load):
    with open(bench_json) as f:
        data = json.load(f)
    with open(bench_stderr) as f:
        found = re.search(r"streaming read, \d+ threads: ([0-9.]+) GB/s", f.read())
    bandwidth = float(found.group(1)) if found else None
    runs = {}
    for b in data.get("benchmarks", []):
        name = re.search(r"batch:(\d+)/busy:([01])", b["name"])
        if not name:
            continue
        if b.get("error_occurred"):
            sys.exit(f"peers_table: {b['name']}: {b.get('error_message', 'error')}")
        runs[(int(name.group(1)), name.group(2) == "1")] = b
    batches = sorted({batch for batch, _ in runs})
    if len(batches) != 1:
        sys.exit(f"peers_table: expected one batch in {bench_json}, found {batches}")
    batch = batches[0]
    idle = runs.get((batch, False))
    busy = runs.get((batch, True))
    if idle is None or (mode == "busy") != (busy is not None):
        sys.exit(f"peers_table: {bench_json} lacks the idle or busy run of batch {batch}")
    record = {"round": int(round_), "mode": mode, "batch": batch, "engine": f"hogwild_{weights}",
              "tok_s": idle["tokens/s"], "roofline": idle["roofline"],
              "mb_step": idle["MB/step"], "step_ms": idle["real_time"],
              "bandwidth_gbs": bandwidth, "load": load}
    line = (f"round {round_} {mode} batch {batch} hogwild {weights}: {idle['tokens/s']:.1f} tok/s"
            f" (roofline {idle['roofline']:.2f}, {idle['MB/step']:.1f} MB/step,"
            f" read {fmt(bandwidth, '.2f')} GB/s)")
    if busy is not None:
        record.update(busy_tok_s=busy["tokens/s"], busy_roofline=busy["roofline"],
                      kept=busy["tokens/s"] / idle["tokens/s"])
        line += f", busy {busy['tokens/s']:.1f} tok/s (kept {record['kept']:.0%})"
    append(records, record)
    print(f"{line}; load {load}", flush=True)


def llama(records, result_json, round_, mode, load):
    result = json.loads(result_json)
    record = {"round": int(round_), "mode": mode, "batch": result["batch"], "engine": "llama.cpp",
              "tok_s": result["tok_s"], "steps": result["steps"],
              "llama_cpp": result["llama_cpp"], "load": load}
    line = (f"round {round_} {mode} batch {result['batch']} llama.cpp: {result['tok_s']:.1f} tok/s"
            f" ({result['steps']} steps)")
    if mode == "busy":
        record.update(busy_tok_s=result["busy_tok_s"], kept=result["busy_tok_s"] / result["tok_s"])
        line += f", busy {result['busy_tok_s']:.1f} tok/s (kept {record['kept']:.0%})"
    append(records, record)
    print(f"{line}; load {load}", flush=True)


def prefill(records, log):
    pattern = re.compile(r"^round (\d+) tokens (\d+) (hogwild weights=(\w+)|torch eager): "
                         r"([0-9.]+) tok/s(?: \(load ([0-9.]+)\))?")
    count = 0
    with open(log) as f:
        for text in f:
            m = pattern.match(text)
            if not m:
                continue
            engine = f"hogwild_{m.group(4)}" if m.group(4) else "torch"
            append(records, {"round": int(m.group(1)), "mode": "prefill",
                             "tokens": int(m.group(2)), "engine": engine,
                             "tok_s": float(m.group(5)), "load": m.group(6)})
            count += 1
    if count == 0:
        sys.exit(f"peers_table: no prefill runs in {log}")


def median(values):
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b else None


def summary(records_path, json_out, meta_json):
    with open(records_path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    result = json.loads(meta_json)
    result["runs"] = records

    def group(mode, key):
        out = {}
        for r in records:
            if r["mode"] == mode:
                out.setdefault(r[key], {}).setdefault(r["engine"], []).append(r)
        return out

    # Decode: medians over rounds, ratios of the medians (and the median of per-round ratios).
    decode = {}
    rows = []
    for batch, by_engine in sorted(group("decode", "batch").items()):
        entry = {}
        for engine in ENGINES:
            runs = by_engine.get(engine, [])
            e = {"tok_s": [r["tok_s"] for r in runs],
                 "median_tok_s": median([r["tok_s"] for r in runs])}
            if engine.startswith("hogwild"):
                e["median_roofline"] = median([r["roofline"] for r in runs])
                e["median_bandwidth_gbs"] = median(
                    [r["bandwidth_gbs"] for r in runs if r["bandwidth_gbs"] is not None])
            entry[engine] = e
        llama_by_round = {r["round"]: r["tok_s"] for r in by_engine.get("llama.cpp", [])}
        for weights in ("native", "f32"):
            ours = entry[f"hogwild_{weights}"]
            entry[f"ratio_{weights}_llama"] = ratio(ours["median_tok_s"],
                                                    entry["llama.cpp"]["median_tok_s"])
            per_round = [r["tok_s"] / llama_by_round[r["round"]]
                         for r in by_engine.get(f"hogwild_{weights}", [])
                         if llama_by_round.get(r["round"])]
            entry[f"ratio_{weights}_llama_per_round"] = per_round
        decode[str(batch)] = entry
        rows.append([f"decode b{batch}", fmt(entry["hogwild_native"]["median_tok_s"]),
                     fmt(entry["hogwild_f32"]["median_tok_s"]),
                     fmt(entry["llama.cpp"]["median_tok_s"]),
                     fmt(entry["ratio_native_llama"], ".2f"), fmt(entry["ratio_f32_llama"], ".2f"),
                     fmt(entry["hogwild_native"]["median_roofline"], ".2f"),
                     fmt(entry["hogwild_f32"]["median_roofline"], ".2f")])
    if decode:
        result["decode"] = decode

    # Busy: idle and busy medians per engine, kept = busy / idle of the medians.
    busy = {}
    busy_rows = []
    for batch, by_engine in sorted(group("busy", "batch").items()):
        entry = {}
        for engine in ENGINES:
            runs = by_engine.get(engine, [])
            idle = median([r["tok_s"] for r in runs])
            loaded = median([r["busy_tok_s"] for r in runs])
            entry[engine] = {"idle_tok_s": [r["tok_s"] for r in runs],
                             "busy_tok_s": [r["busy_tok_s"] for r in runs],
                             "median_idle_tok_s": idle, "median_busy_tok_s": loaded,
                             "kept": ratio(loaded, idle)}
        for weights in ("native", "f32"):
            entry[f"busy_ratio_{weights}_llama"] = ratio(
                entry[f"hogwild_{weights}"]["median_busy_tok_s"],
                entry["llama.cpp"]["median_busy_tok_s"])
        busy[str(batch)] = entry
        for state in ("idle", "busy"):
            cells = [entry[e][f"median_{state}_tok_s"] for e in ENGINES]
            busy_rows.append([f"{state} b{batch}", *(fmt(c) for c in cells),
                              fmt(ratio(cells[0], cells[2]), ".2f"),
                              fmt(ratio(cells[1], cells[2]), ".2f"), "", ""])
        busy_rows.append([f"kept b{batch}", *(fmt(entry[e]["kept"], ".0%") for e in ENGINES),
                          "", "", "", ""])
    if busy:
        result["busy"] = busy

    # Prefill (compare_prefill.sh): medians per length, ratios ours / torch.
    prefill_out = {}
    prefill_rows = []
    for tokens, by_engine in sorted(group("prefill", "tokens").items()):
        entry = {e: {"tok_s": [r["tok_s"] for r in runs],
                     "median_tok_s": median([r["tok_s"] for r in runs])}
                 for e, runs in by_engine.items()}
        torch = entry.get("torch", {}).get("median_tok_s")
        for weights in ("native", "f32"):
            entry[f"ratio_{weights}_torch"] = ratio(
                entry.get(f"hogwild_{weights}", {}).get("median_tok_s"), torch)
        prefill_out[str(tokens)] = entry
        prefill_rows.append([f"prefill {tokens}",
                             fmt(entry.get("hogwild_native", {}).get("median_tok_s")),
                             fmt(entry.get("hogwild_f32", {}).get("median_tok_s")), fmt(torch),
                             fmt(entry["ratio_native_torch"], ".2f"),
                             fmt(entry["ratio_f32_torch"], ".2f")])
    if prefill_out:
        result["prefill"] = prefill_out

    rounds = result.get("rounds")
    print(f"\nmedians over {rounds} round(s); tok/s; threads {result.get('threads')}; "
          f"model {result.get('model')}")
    widths = [12, 10, 10, 10, 10, 10, 10, 10]

    def show(cells):
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(cells, widths))).rstrip())

    if rows or busy_rows:
        show(["case", "hw native", "hw f32", "llama.cpp", "nat/llama", "f32/llama",
              "roofl nat", "roofl f32"])
        for r in rows:
            show(r)
        if busy_rows:
            print("one competing busy process (kept = busy / idle):")
            for r in busy_rows:
                show(r)
    if prefill_rows:
        show(["case", "hw native", "hw f32", "torch", "nat/torch", "f32/torch"])
        for r in prefill_rows:
            show(r)
    with open(json_out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"JSON: {json_out}")


def main():
    commands = {"hogwild": (hogwild, 7), "llama": (llama, 5), "prefill": (prefill, 2),
                "summary": (summary, 3)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or \
            len(sys.argv) - 2 != commands[sys.argv[1]][1]:
        sys.exit(__doc__)
    function, _ = commands[sys.argv[1]]
    function(*sys.argv[2:])


if __name__ == "__main__":
    main()
