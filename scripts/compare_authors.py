#!/usr/bin/env python3
"""Side by side: the authors' Hogwild! loop as they wrote it, and `hogwild run`, token by token.

Usage:
    compare_authors.py --authors DIR --hf DIR [--site DIR] [--hogwild BIN] [--model GGUF]
                       [--passes N] [--problems K] [--step-end one_token|two_newlines]
                       [--work DIR]

--authors   an export of GitHub eqimp/hogwild_llm (branch main): formatting.py, generation.py,
            shared_cache/. Not part of this repository, and never copied into it.
--hf        the demo model as a Hugging Face checkpoint in float32, made from the same GGUF:
            scripts/gguf_to_hf.py models/SmolLM2-135M-Instruct.Q4_1.gguf DIR --dtype f32
--site      a folder put first on sys.path, holding the transformers the authors pinned
            (4.50.3; their cache classes do not run on transformers 5):
            pip install --target DIR --no-deps transformers==4.50.3 tokenizers==0.21.1
            huggingface_hub==0.30.2
--problems  the first K GSM8K test problems of ../shared/data/gsm8k/test.jsonl (default 2).
--step-end  one_token (default): their loop unmodified, the engine with prompts.step_end:
            one_token, the authors' rule (with SmolLM2 their steps practically never end, so this
            compares the two workers' first steps over the whole budget); two_newlines: the
            engine's default rule, and in their loop `MathFormatting.is_end_of_step` replaced by
            the same rule (scripts/hogwild_reference.py's StepEnd) -- the only change made to
            their code, so steps end, merge and get quick checks.

Their side: MathFormatting(tokenizer) with its defaults (Alice and Bob, the few-shot
collaboration prompt sent as the user message), generate_reasoning_2agents(max_steps=N) greedy
in float32 on the CPU, then compile_response_with_s1_finisher (their re-encoding finisher, 16
tokens). Their collaboration prompt (fmt.system_prompt) is written to WORK/authors_prompt.txt.

Our side: `hogwild run` on the GGUF (weights=f32, greedy, 2 workers, combined layout,
prompts.style: paper, prompts.user_file: WORK/authors_prompt.txt, budget N); tokens read from its
HDF5 results.

Each worker's token stream (step prefixes, quick checks, sampled tokens, in order) is rebuilt from
their per-pass ReasoningState snapshots (save_on_steps = every pass) and compared with the
engine's; then their finisher's text with ours. Exit 0: equal; 1: a difference (first differing
pass, worker, token printed); 77: an input is missing.
"""

import argparse
import json
import os
import subprocess
import sys
import time

SKIP = 77
SCRIPTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(SCRIPTS_DIR)
GSM8K = os.path.join(REPO, "..", "shared", "data", "gsm8k", "test.jsonl")
DEMO_MODEL = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def fail_skip(message):
    print(f"compare_authors: skipped: {message}")
    sys.exit(SKIP)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--authors", required=True)
    ap.add_argument("--hf", required=True)
    ap.add_argument("--site", default=None)
    ap.add_argument("--hogwild", default=os.path.join(REPO, "build", "cpu", "bin", "hogwild"))
    ap.add_argument("--model", default=DEMO_MODEL)
    ap.add_argument("--passes", type=int, default=192)
    ap.add_argument("--problems", type=int, default=2)
    ap.add_argument("--step-end", choices=("one_token", "two_newlines"), default="one_token")
    ap.add_argument("--work", default="/tmp/compare_authors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true",
                    help="reuse WORK/authors.json from an earlier run with the same arguments "
                         "(their side takes the longest)")
    return ap.parse_args()


def load_problems(count):
    if not os.path.isfile(GSM8K):
        fail_skip(f"{GSM8K} not found (the shared GSM8K test set)")
    out = []
    with open(GSM8K, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line)["question"])
            if len(out) == count:
                break
    return out


# ---------------------------------------------------------------------------------------------
# Their side


def import_authors(args):
    """Imports their modules, with the transformers of --site first on the path."""
    for needed in ("formatting.py", "generation.py", os.path.join("shared_cache", "__init__.py")):
        if not os.path.isfile(os.path.join(args.authors, needed)):
            fail_skip(f"{os.path.join(args.authors, needed)} not found (export eqimp/hogwild_llm)")
    if not os.path.isfile(os.path.join(args.hf, "config.json")):
        fail_skip(f"{args.hf}/config.json not found (make it with scripts/gguf_to_hf.py)")
    # Their CPU paths: no Triton kernels, no torch.compile (their own switches).
    os.environ.setdefault("HOGWILD_USE_TRITON", "0")
    os.environ.setdefault("HOGWILD_NO_COMPILE", "1")
    if args.site:
        sys.path.insert(0, os.path.abspath(args.site))
    sys.path.insert(0, os.path.abspath(args.authors))
    try:
        import torch
        import transformers
        import formatting
        import generation
    except ImportError as e:
        fail_skip(f"cannot import the authors' code or its packages: {e}")
    return torch, transformers, formatting, generation


def our_rule_for_them(fmt, tokenizer):
    """Replaces their step-end test by the engine's rule (hogwild_reference.StepEnd)."""
    sys.path.insert(0, SCRIPTS_DIR)
    from hogwild_reference import StepEnd

    def token_bytes(ids):
        # byte-level BPE: the bytes of the decoded text, as the engine's detector sees them
        return tokenizer.decode(ids).encode("utf-8", errors="surrogatepass")

    def is_end_of_step(worker_tokens):
        # the detector's state is the step text alone, so one push of the last token suffices
        return StepEnd(token_bytes(worker_tokens[:-1])).push(token_bytes(worker_tokens[-1:]))

    fmt.is_end_of_step = is_end_of_step


def worker_streams(states, passes, n_workers):
    """Each worker's tokens in order (prefixes, quick checks, sampled) and the pass that fed or
    sampled each, rebuilt from their per-pass snapshots: between snapshots i and i+1 a worker's
    step either grew by its sampled token, or ended (the step, with that token, joined the
    history) and the next step's prefix began."""
    streams = [[] for _ in range(n_workers)]
    for w in range(n_workers):
        streams[w] = [(t, 0) for t in states[0].current_step_tokens_by_worker[w]]
    for i in range(passes):
        if i + 1 not in states:
            break
        before, after = states[i], states[i + 1]
        if before.finished:
            break
        grown = after.history[len(before.history):]
        at = 0
        for w in range(n_workers):
            old, new = before.current_step_tokens_by_worker[w], after.current_step_tokens_by_worker[w]
            if len(new) == len(old) + 1 and new[:len(old)] == old:
                streams[w].append((new[-1], i + 1))
                continue
            # the finished step is old + [sampled] at this point of the history's growth
            step = grown[at:at + len(old) + 1]
            if step[:len(old)] != old or len(step) != len(old) + 1:
                raise RuntimeError(f"pass {i + 1}: worker {w}: cannot follow their state")
            at += len(step)
            streams[w].append((step[-1], i + 1))
            streams[w].extend((t, i + 1) for t in new)
    return streams


def run_theirs(args, problems, prompt_path):
    torch, transformers, formatting, generation = import_authors(args)
    torch.set_num_threads(args.threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.hf)
    if tokenizer.pad_token is None:  # their batches are left-padded; SmolLM2's own config pads
        tokenizer.pad_token = tokenizer.eos_token  # with <|im_end|>, ours has no pad token
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # as SmolLM2's GPT2 tokenizer
    model = transformers.AutoModelForCausalLM.from_pretrained(args.hf, torch_dtype=torch.float32)
    model.eval()
    model.generation_config.do_sample = False
    fmt = formatting.MathFormatting(tokenizer)
    with open(prompt_path, "w", encoding="utf-8") as f:
        f.write(fmt.system_prompt)
    if args.step_end == "two_newlines":
        our_rule_for_them(fmt, tokenizer)
    out = []
    for problem in problems:
        start = time.time()
        states = generation.generate_reasoning_2agents(
            problem=problem, model=model, tokenizer=tokenizer, fmt=fmt, max_steps=args.passes,
            save_on_steps=list(range(args.passes)))
        streams = worker_streams(states, args.passes, len(fmt.workers))
        final = states[args.passes]
        response = generation.compile_response_with_s1_finisher(
            problem=problem, model=model, tokenizer=tokenizer, fmt=fmt, reasoning_state=final,
            max_new_tokens=16)
        finisher = ""
        if fmt.s1_finisher_suffix in response:
            finisher = response[response.rindex(fmt.s1_finisher_suffix):]
            if tokenizer.eos_token and finisher.endswith(tokenizer.eos_token):
                finisher = finisher[:-len(tokenizer.eos_token)]
        out.append({"streams": streams, "finished": final.finished, "finisher": finisher,
                    "seconds": time.time() - start})
    return out, transformers.__version__, torch.__version__, tokenizer.decode


# ---------------------------------------------------------------------------------------------
# Our side


def run_ours(args, problems, prompt_path):
    if not os.access(args.hogwild, os.X_OK):
        fail_skip(f"{args.hogwild} not found (build the engine: cmake --build build/cpu)")
    if not os.path.isfile(args.model):
        fail_skip(f"{args.model} not found (the demo model)")
    import h5py
    config = os.path.join(args.work, "engine.yaml")
    output = os.path.join(args.work, "engine.h5")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"model: {json.dumps(os.path.abspath(args.model))}\nworkers: 2\n"
                "layout: combined\nmax_tokens_per_problem: 8192\nproblems:\n")
        for p in problems:
            f.write(f"  - question: {json.dumps(p)}\n")
        f.write(f"prompts:\n  style: paper\n  user_file: {json.dumps(prompt_path)}\n")
        if args.step_end != "two_newlines":  # the default rule needs no key
            f.write(f"  step_end: {args.step_end}\n")
    cmd = [args.hogwild, "run", config, f"budget={args.passes}", "weights=f32",
           "sampling.temperature=0", f"threads={args.threads}", f"output={output}", "--quiet",
           # always computed anew: a finished run of the same config would be resumed (nothing
           # recomputed), hiding a change of the engine
           "--overwrite"]
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.time() - start
    if done.returncode != 0:
        print(f"compare_authors: the engine failed: {' '.join(cmd)}\n{done.stdout}{done.stderr}")
        sys.exit(1)
    out = []
    with h5py.File(output, "r") as f:
        groups = sorted(f["problems"], key=lambda k: int(k.rsplit("-", 1)[-1]))
        for pid in groups:
            g = f["problems"][pid]
            names = sorted(g["workers"], key=lambda n: ("Alice", "Bob").index(n))
            tokens = [[int(t) for t in g["workers"][n]["tokens"][()]] for n in names]
            transcript = g["transcript"][()]
            transcript = transcript.decode() if isinstance(transcript, bytes) else transcript
            finisher = ""
            marker = "[finisher] "
            if marker in transcript:
                finisher = transcript[transcript.rindex(marker) + len(marker):]
                finisher = finisher[:-2] if finisher.endswith("\n\n") else finisher
            out.append({"tokens": tokens, "stop": g.attrs["stop_reason"],
                        "passes": int(g.attrs["forward_passes"]), "finisher": finisher})
    return out, cmd, seconds


# ---------------------------------------------------------------------------------------------


def compare(index, theirs, ours, decode):
    """One problem: a summary line and whether everything agreed."""
    ok = True
    lines = []
    for w, name in enumerate(("Alice", "Bob")):
        stream = theirs["streams"][w]
        engine = ours["tokens"][w]
        ids = [t for t, _ in stream]
        n = min(len(ids), len(engine))
        first = next((k for k in range(n) if ids[k] != engine[k]), None)
        if first is None and len(ids) != len(engine):
            first = n
        if first is None:
            lines.append(f"{name}: {len(ids)} tokens equal")
            continue
        ok = False
        pass_no = stream[first][1] if first < len(stream) else stream[-1][1] + 1
        a = ids[first] if first < len(ids) else None
        b = engine[first] if first < len(engine) else None
        lines.append(f"{name}: first difference at token {first} (pass {pass_no}): authors "
                     f"{a} {decode([a]) if a is not None else '(end)'!r}, engine {b} "
                     f"{decode([b]) if b is not None else '(end)'!r}; context "
                     f"{decode(ids[max(0, first - 12):first])!r}")
    if theirs["finisher"] != ours["finisher"]:
        ok = False
        lines.append(f"finisher differs: authors {theirs['finisher']!r}, engine "
                     f"{ours['finisher']!r}")
    else:
        lines.append(f"finisher equal {ours['finisher'][-24:]!r}")
    return ok, f"problem {index}: " + "; ".join(lines)


def main():
    args = parse_args()
    os.makedirs(args.work, exist_ok=True)
    problems = load_problems(args.problems)
    prompt_path = os.path.abspath(os.path.join(args.work, "authors_prompt.txt"))
    saved = os.path.join(args.work, "authors.json")
    key = {"passes": args.passes, "problems": problems, "step_end": args.step_end}
    if args.reuse and os.path.isfile(saved) and os.path.isfile(prompt_path):
        with open(saved, encoding="utf-8") as f:
            record = json.load(f)
        if record["key"] != key:
            fail_skip(f"{saved} was made with other arguments")
        theirs, tf_version, torch_version = record["theirs"], record["tf"], record["torch"]
        sys.path.insert(0, SCRIPTS_DIR)
        from hogwild_reference import Tok
        from gguf_to_hf import export_tokenizer_files
        folder = os.path.join(args.work, "tokenizer")
        os.makedirs(folder, exist_ok=True)
        export_tokenizer_files(args.model, folder)
        decode = Tok(folder).decode
    else:
        theirs, tf_version, torch_version, decode = run_theirs(args, problems, prompt_path)
        with open(saved, "w", encoding="utf-8") as f:
            json.dump({"key": key, "theirs": theirs, "tf": tf_version, "torch": torch_version}, f)
    ours, cmd, our_seconds = run_ours(args, problems, prompt_path)
    print(f"authors' loop: transformers {tf_version}, torch {torch_version}, float32 CPU, "
          f"{sum(t['seconds'] for t in theirs):.0f} s; engine: {our_seconds:.0f} s "
          f"({' '.join(cmd)})")
    print(f"step end: {args.step_end}; budget {args.passes} passes; {len(problems)} problems")
    all_ok = True
    for i, (t, o) in enumerate(zip(theirs, ours)):
        ok, line = compare(i, t, o, decode)
        print(("ok   " if ok else "DIFF ") + line + f" [engine stop {o['stop']}, "
              f"{o['passes']} passes]")
        all_ok = all_ok and ok
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
