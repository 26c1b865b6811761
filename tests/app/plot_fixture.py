"""Synthetic `hogwild run` results files for the tests of scripts/plot.py, written with h5py in the
layout of src/io/results.h (plus the optional items a sweep adds: run_id, method, varied, budget,
batch_problems, tensor, worker_groups, world_size; answer_source/answer_worker; started_pass in
/steps; the /checkpoints and /events tables).

    from plot_fixture import write_results, write_synthetic_sweep
    expected = write_synthetic_sweep("/tmp/sweep")   # three runs; returns what the plots must show

A run is a plain dict (see RUNS below); write_results(path, run) writes one file, so a test can
build any other case. Nothing here is used by scripts/plot.py itself.
"""
import json
import os

import h5py
import numpy as np

STR = h5py.string_dtype("utf-8")
CHECKPOINTS = [32, 64, 128, 256]
BUDGET = 256
NAMES = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi"]

QUESTIONS = [
    ("p0", "Tom has 3 boxes with 4 apples in each box. He eats 2 apples. How many are left?", "10"),
    ("p1", "What is 6 times 7?", "42"),
    ("p2", "A train leaves at 3 pm and arrives at 10 pm. How many hours does the trip take?", "7"),
]


def _problem(index, forward_passes, correct, checkpoint_correct, workers, finisher_at=None,
             checks=(), stop_reason="answer"):
    """One problem: its final correctness, its correctness at each checkpoint it reached, and
    `workers` lanes of steps (each worker finishes a step every 20 + 7*worker passes)."""
    pid, question, reference = QUESTIONS[index]
    answer = reference if correct == 1 else str(int(reference) + 1)
    steps, tokens = [], {}
    for worker in range(workers):
        period = 20 + 7 * worker
        start, step, token = 0, 1, 0
        end_of_work = finisher_at if finisher_at is not None else forward_passes
        while start + period <= end_of_work:
            steps.append((worker, step, token, token + period, start, start + period))
            token += period
            start += period
            step += 1
        # The rest is the worker's unfinished step.
        tokens[NAMES[worker]] = token + (end_of_work - start)
    steps.sort(key=lambda row: (row[5], row[0]))
    events = [(p, w, "check") for p, w in checks]
    if finisher_at is not None:
        events.append((finisher_at, -1, "finisher"))
    events.append((forward_passes, 1 % workers if finisher_at is None else -1, "answer"))
    checkpoints = [(c, reference if ok else "", ok, min(c, forward_passes), c / 20.0)
                   for c, ok in zip(CHECKPOINTS, checkpoint_correct) if c <= forward_passes]
    return {
        "attrs": {"id": pid, "question": question, "reference_answer": reference,
                  "answer": answer, "correct": correct, "stop_reason": stop_reason, "error": "",
                  "forward_passes": forward_passes, "generated_tokens": forward_passes * workers,
                  "seconds": forward_passes / 20.0, "index": index,
                  "answer_source": "finisher" if finisher_at is not None else "step_end",
                  "answer_worker": -1 if finisher_at is not None else 1 % workers},
        "tokens": tokens, "steps": steps, "checkpoints": checkpoints, "events": events,
    }


def _timings(tensor, groups, compute, tensor_s, worker_s):
    rows = []
    for rank in range(tensor * groups):
        jitter = 1.0 + 0.05 * rank
        c, t, w = compute * jitter, tensor_s * jitter, worker_s * jitter
        rows.append((rank, rank // tensor, rank % tensor, c + t + w, c, t, w))
    return rows


def _config(workers, layout, batch, tensor=1, groups=1):
    return (f"model: models/demo.gguf\nworkers: {workers}\nlayout: {layout}\nbudget: {BUDGET}\n"
            f"batch_problems: {batch}\nparallel:\n  tensor: {tensor}\n  worker_groups: {groups}\n")


# Three runs: two Hogwild! runs with every optional item (one takes its grid from the attributes,
# the other only from /timings and its config), and one of the original layout without any.
RUNS = [
    {"file": "method=hogwild,workers=4.h5",
     "attrs": {"run_id": "method=hogwild,workers=4,layout=combined", "method": "hogwild",
               "workers": 4, "layout": "combined", "budget": BUDGET, "batch_problems": 4,
               "tensor": 2, "worker_groups": 2, "world_size": 4, "tokens_per_second": 180.0,
               "varied": {"method": "hogwild", "workers": 4}},
     "config": _config(4, "combined", 4, 2, 2),
     "problems": [
         _problem(0, 96, 1, [0, 1], 4, checks=[(40, 0), (60, 2), (75, -1)]),
         _problem(1, 256, 1, [0, 0, 1, 1], 4, finisher_at=240, checks=[(100, 1), (180, 3)]),
         _problem(2, 200, 0, [0, 0, 1], 4),
     ],
     "timings": _timings(2, 2, 8.0, 1.5, 2.5),
     # Accuracy (%) at 32, 64, 128, 256 forward passes, then the final one.
     "expected": [0.0, 100 / 3, 100.0, 200 / 3, 200 / 3]},
    {"file": "method=hogwild,workers=2.h5",
     "attrs": {"run_id": "method=hogwild,workers=2,layout=combined", "method": "hogwild",
               "workers": 2, "layout": "combined", "tokens_per_second": 110.0,
               "varied": {"method": "hogwild", "workers": 2}},
     "config": _config(2, "combined", 4, 2, 2),
     "problems": [
         _problem(0, 150, 1, [0, 0, 1], 2, checks=[(70, 1)]),
         _problem(1, 256, 0, [0, 0, 0, 0], 2, finisher_at=230),
         _problem(2, 180, 1, [0, 1, 1], 2),
     ],
     "timings": _timings(2, 2, 5.0, 1.1, 1.2),
     "expected": [0.0, 100 / 3, 200 / 3, 200 / 3, 200 / 3]},
    {"file": "single.h5", "legacy": True,
     "attrs": {"workers": 1, "layout": "combined", "tokens_per_second": 70.0},
     "config": _config(1, "combined", 4),
     "problems": [
         _problem(0, 120, 1, [], 1),
         _problem(1, 256, 0, [], 1, stop_reason="budget"),
         _problem(2, 210, 0, [], 1),
     ],
     "timings": None,
     "expected": [None, None, None, None, 100 / 3]},
]


def _table(group, name, fields, rows):
    dtype = np.dtype(fields)
    group.create_dataset(name, data=np.array([tuple(r) for r in rows], dtype=dtype))


def write_results(path, run):
    """Writes one results file for `run` (a dict like those in RUNS). With run["legacy"] only the
    original items of the layout are written."""
    legacy = run.get("legacy", False)
    problems = run["problems"]
    scored = [p["attrs"]["correct"] for p in problems if p["attrs"]["correct"] != -1]
    with h5py.File(path, "w") as f:
        f.attrs["config"] = run["config"]
        f.attrs["model"] = "models/demo.gguf"
        f.attrs["created"] = "2025-01-01T00:00:00Z"
        f.attrs["hogwild_version"] = "0.0.0-test"
        for key, value in run["attrs"].items():
            f.attrs[key] = json.dumps(value) if isinstance(value, dict) else value
        f.attrs["problems"] = np.int64(len(problems))
        f.attrs["failed_problems"] = np.int64(0)
        f.attrs["accuracy"] = float(sum(scored)) / len(scored) if scored else float("nan")
        f.attrs["total_seconds"] = 30.0
        f.attrs["generated_tokens"] = np.int64(sum(p["attrs"]["generated_tokens"]
                                                   for p in problems))
        root = f.create_group("problems")
        for problem in problems:
            a = problem["attrs"]
            g = root.create_group(a["id"])
            for key, value in a.items():
                if legacy and key in ("answer_source", "answer_worker"):
                    continue
                if key == "correct":
                    value = np.int8(value)
                elif key == "answer_worker":
                    value = np.int32(value)
                elif isinstance(value, int):
                    value = np.int64(value)
                g.attrs[key] = value
            workers = g.create_group("workers")
            for name, count in problem["tokens"].items():
                w = workers.create_group(name)
                w.create_dataset("tokens", data=np.arange(count, dtype=np.int32))
                w.create_dataset("text", data="x" * count, dtype=STR)
            step_fields = [("worker", "<i4"), ("step", "<i4"), ("first_token", "<i4"),
                           ("end_token", "<i4")]
            if not legacy:
                step_fields.append(("started_pass", "<i4"))
            step_fields += [("finished_pass", "<i4"), ("seconds", "<f8")]
            rows = []
            for worker, step, first, end, started, finished in problem["steps"]:
                row = [worker, step, first, end] + ([] if legacy else [started])
                rows.append(row + [finished, finished / 20.0])
            _table(g, "steps", step_fields, rows)
            g.create_dataset("transcript", data="(synthetic)", dtype=STR)
            if legacy:
                continue
            _table(g, "checkpoints", [("checkpoint", "<i4"), ("answer", STR), ("correct", "i1"),
                                      ("forward_passes", "<i4"), ("seconds", "<f8")],
                   problem["checkpoints"])
            _table(g, "events", [("pass", "<i4"), ("worker", "<i4"), ("kind", STR)],
                   problem["events"])
        if run["timings"] is not None:
            _table(f, "timings", [("rank", "<i4"), ("group", "<i4"), ("tensor_rank", "<i4"),
                                  ("seconds", "<f8"), ("compute_seconds", "<f8"),
                                  ("tensor_seconds", "<f8"), ("worker_seconds", "<f8")],
                   run["timings"])


def write_synthetic_sweep(folder):
    """Writes RUNS into `folder` (created if needed). Returns {file name: run dict}; each run's
    "expected" lists its accuracy (%) at CHECKPOINTS and finally, None where it has none."""
    os.makedirs(folder, exist_ok=True)
    for run in RUNS:
        write_results(os.path.join(folder, run["file"]), run)
    return {run["file"]: run for run in RUNS}
