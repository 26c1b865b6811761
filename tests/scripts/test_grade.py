"""scripts/grade.py on small results files made here with h5py (the layout of src/io/results.h):
python3 test_grade.py path/to/grade.py. Exit 77 (ctest: skipped) without h5py or math_verify."""
import hashlib
import math
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import math_verify  # noqa: F401  (grade.py needs it)
except ImportError as error:
    print(f"SKIP: {sys.executable} cannot import {error.name}; "
          "install the script packages with .venv/bin/pip install -r scripts/requirements.txt")
    sys.exit(77)

GRADE = sys.argv[1]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    return subprocess.run([sys.executable, GRADE, *args], capture_output=True, text=True,
                          check=False)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


STRING = h5py.string_dtype("utf-8")
# id: (answer, reference, engine correct, expected math-verify verdict)
PROBLEMS = {
    "p0": ("\\frac{1}{2}", "0.5", 1, 1),
    "p1": ("4", "3", 0, 0),
    "p2": ("1,234", "1234", 0, 1),  # the engine (as stored here) and math-verify disagree
    "p3": ("", "7", 0, 0),          # no answer: wrong
    "p4": ("5", "", -1, -1),        # no reference: unknown
}
CHECKPOINTS = [(64, "3", 0, 10, 0.5), (128, "0.50", 1, 20, 1.0), (192, "", 0, 30, 1.5)]


def make_results(path):
    with h5py.File(path, "w") as f:
        f.attrs["hogwild_version"] = "test"
        f.attrs["accuracy"] = 0.25
        for name, (answer, reference, correct, _) in PROBLEMS.items():
            group = f.create_group(f"problems/{name}")
            group.attrs.create("answer", answer, dtype=STRING)
            group.attrs.create("reference_answer", reference, dtype=STRING)
            group.attrs["correct"] = np.int8(correct)
            group.attrs.create("stop_reason", "finished", dtype=STRING)
        rows = np.array(CHECKPOINTS, dtype=[("checkpoint", "i8"), ("answer", STRING),
                                            ("correct", "i1"), ("forward_passes", "i8"),
                                            ("seconds", "f8")])
        f["problems/p0"].create_dataset("checkpoints", data=rows)
        failed = f.create_group("problems/failed")
        failed.attrs.create("answer", "", dtype=STRING)
        failed.attrs.create("reference_answer", "2", dtype=STRING)
        failed.attrs["correct"] = np.int8(-1)
        failed.attrs.create("stop_reason", "failed", dtype=STRING)


with tempfile.TemporaryDirectory() as folder:
    results = os.path.join(folder, "run.h5")
    make_results(results)

    # --dry-run: prints the grades, leaves the file byte-identical.
    before = digest(results)
    dry = run("--dry-run", results)
    check(dry.returncode == 0, f"--dry-run exits 0, got {dry.returncode}: {dry.stderr}")
    check(digest(results) == before, "--dry-run leaves the file byte-identical")
    check("math-verify accuracy 0.5000" in dry.stdout, f"dry-run summary: {dry.stdout!r}")
    check("1 disagreement(s)" in dry.stdout and "p2:" in dry.stdout,
          f"the disagreement on p2 is listed: {dry.stdout!r}")

    # A real run writes mv_correct, checkpoints_mv_correct and mv_accuracy.
    graded = run(results)
    check(graded.returncode == 0, f"grade exits 0, got {graded.returncode}: {graded.stderr}")
    check(len([line for line in graded.stdout.splitlines() if not line.startswith(" ")]) == 1,
          f"one summary line per file: {graded.stdout!r}")
    with h5py.File(results, "r") as f:
        for name, (_, _, _, expected) in PROBLEMS.items():
            got = f[f"problems/{name}"].attrs.get("mv_correct")
            check(got is not None and int(got) == expected and got.dtype == np.int8,
                  f"{name}: mv_correct {got!r}, expected int8 {expected}")
        check(int(f["problems/failed"].attrs["mv_correct"]) == -1, "a failed problem is -1")
        table = f["problems/p0/checkpoints_mv_correct"]
        check(table.dtype == np.int8 and list(table[()]) == [0, 1, 0],
              f"checkpoints_mv_correct {table[()]!r}")
        check("checkpoints_mv_correct" not in f["problems/p1"], "no table without checkpoints")
        check(math.isclose(float(f.attrs["mv_accuracy"]), 2 / 4),
              f"mv_accuracy {f.attrs.get('mv_accuracy')!r} (p0, p2 right of p0..p3)")
        check(f["problems/p2"].attrs["answer"] == "1,234", "the stored answers stay")

    # Grading twice replaces the table instead of failing; a folder grades every *.h5 in it.
    again = run(folder)
    check(again.returncode == 0 and again.stdout.startswith(results),
          f"a folder grades its *.h5 again: {again.returncode} {again.stdout!r} {again.stderr!r}")

    # Files that are not hogwild results are refused with one line, and left as they were.
    other = os.path.join(folder, "other.h5")
    with h5py.File(other, "w") as f:
        f.create_group("problems")
    plain = os.path.join(folder, "notes.txt")
    with open(plain, "w") as f:
        f.write("not HDF5\n")
    for path in (other, plain, os.path.join(folder, "missing.h5")):
        existed = os.path.exists(path)
        before = digest(path) if existed else None
        refused = run(path)
        lines = refused.stderr.strip().splitlines()
        check(refused.returncode == 1 and len(lines) == 1 and path in lines[0],
              f"{path} refused with one line: {refused.returncode} {refused.stderr!r}")
        check(not existed or digest(path) == before, f"{path} left byte-identical")
    # One bad file does not stop the others.
    mixed = run(plain, results)
    check(mixed.returncode == 1 and results in mixed.stdout,
          f"a refused file does not stop the next: {mixed.returncode} {mixed.stdout!r}")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
