#!/usr/bin/env python3
"""Batched decode throughput of llama.cpp (llama-cpp-python's low-level API, CPU) measured as
bench_decode measures hogwild: BATCH sequences, each first given CONTEXT cached tokens (the same
ids as bench_decode: (p * 7 + s) % 1000 + 100), then STEPS timed decode steps of one token per
sequence in ONE llama_decode call (n_seq_max = BATCH, logits for every token), after 2 untimed
steps. tok/s = BATCH * STEPS / seconds. Called by compare_peers.sh; not in CI.

Usage: peers_llama.py MODEL THREADS BATCH STEPS CONTEXT [--busy]
--busy: a second measurement on a fresh context with one competing busy process (a forked child
spinning on a core, as bench_decode --busy) started just before the timed steps and killed just
after them. Prints one JSON line: {"batch", "steps", "tok_s", "busy_tok_s", "llama_cpp"}.
"""
import ctypes
import json
import os
import signal
import sys
import time

WARMUP_STEPS = 2


def fail(message):
    print(f"peers_llama: {message}", file=sys.stderr)
    sys.exit(1)


def parse_args(argv):
    usage = "usage: peers_llama.py MODEL THREADS BATCH STEPS CONTEXT [--busy]"
    busy = "--busy" in argv
    args = [a for a in argv if a != "--busy"]
    if len(args) != 5:
        fail(usage)
    model = args[0]
    try:
        threads, batch, steps, context = (int(a) for a in args[1:])
    except ValueError:
        fail(usage)
    if not (1 <= threads <= 1024 and 1 <= batch <= 64 and steps >= 1 and context >= 1):
        fail("THREADS in [1, 1024], BATCH in [1, 64], STEPS >= 1 and CONTEXT >= 1")
    if not os.path.isfile(model):
        fail(f"no model at {model}")
    return model, threads, batch, steps, context, busy


def start_spinner():
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            x = 0
            while True:
                x += 1
        finally:
            os._exit(0)
    return pid


def stop_spinner(pid):
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def main():
    model_path, threads, batch, steps, context, busy = parse_args(sys.argv[1:])
    import llama_cpp

    # Only errors from llama.cpp's log (the default prints every loading detail).
    @llama_cpp.llama_log_callback
    def log_errors(level, text, user_data):
        if level == 3:
            sys.stderr.write(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(log_errors, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(model_path.encode(), model_params)
    if not model:
        fail(f"llama.cpp could not load {model_path}")

    # Each sequence holds CONTEXT + warm-up + timed tokens; per-sequence cells rounded to 256
    # (the KV cache is split evenly across n_seq_max sequences unless unified).
    per_sequence = -(-(context + WARMUP_STEPS + steps + 1) // 256) * 256
    chunk = 64  # bench_decode prefills each sequence in chunks of 64 tokens

    def measure(with_busy):
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = batch * per_sequence
        params.n_batch = max(chunk, batch)
        params.n_ubatch = max(chunk, batch)
        params.n_seq_max = batch
        params.n_threads = threads
        params.n_threads_batch = threads
        ctx = llama_cpp.llama_init_from_model(model, params)
        if not ctx:
            fail(f"llama.cpp could not create a context (n_ctx {params.n_ctx}, n_seq_max {batch})")
        lb = llama_cpp.llama_batch_init(max(chunk, batch), 0, batch)
        try:
            for s in range(batch):  # the cached tokens, as bench_decode
                for first in range(0, context, chunk):
                    count = min(chunk, context - first)
                    lb.n_tokens = count
                    for i in range(count):
                        p = first + i
                        lb.token[i] = (p * 7 + s) % 1000 + 100
                        lb.pos[i] = p
                        lb.n_seq_id[i] = 1
                        lb.seq_id[i][0] = s
                        lb.logits[i] = 1 if i == count - 1 else 0
                    if llama_cpp.llama_decode(ctx, lb) != 0:
                        fail("llama_decode failed in the prefill")
            lb.n_tokens = batch
            for s in range(batch):
                lb.token[s] = 42 + s
                lb.n_seq_id[s] = 1
                lb.seq_id[s][0] = s
                lb.logits[s] = 1

            def step(position):
                for s in range(batch):
                    lb.pos[s] = position
                if llama_cpp.llama_decode(ctx, lb) != 0:
                    fail(f"llama_decode failed at position {position}")

            for w in range(WARMUP_STEPS):
                step(context + w)
            llama_cpp.llama_synchronize(ctx)
            spinner = start_spinner() if with_busy else None
            try:
                start = time.perf_counter()
                for t in range(steps):
                    step(context + WARMUP_STEPS + t)
                llama_cpp.llama_synchronize(ctx)
                llama_cpp.llama_get_logits_ith(ctx, batch - 1)
                seconds = time.perf_counter() - start
            finally:
                if spinner is not None:
                    stop_spinner(spinner)
            return batch * steps / seconds
        finally:
            llama_cpp.llama_batch_free(lb)
            llama_cpp.llama_free(ctx)

    result = {"batch": batch, "steps": steps, "context": context, "threads": threads,
              "tok_s": measure(False), "busy_tok_s": measure(True) if busy else None,
              "llama_cpp": getattr(llama_cpp, "__version__", "?")}
    llama_cpp.llama_model_free(model)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
