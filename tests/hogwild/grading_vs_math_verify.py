"""The C++ grader against math-verify, the field's reference grader, on a table of answer pairs:
python3 grading_vs_math_verify.py GRADING_VERDICTS_BINARY grading_pairs.tsv

Each row (reference TAB predicted [TAB note]) is graded by math-verify as
verify(parse("\\boxed{reference}"), parse("\\boxed{predicted}")) and by the C++ grader (the
grading_verdicts binary). They must agree, except on rows whose note begins
"math-verify differs:", where they must differ: an exception that math-verify no longer makes
is an error too, so the list stays true. Exit 77 (ctest: skipped) when math_verify is missing."""
import subprocess
import sys

try:
    from math_verify import parse, verify
except ImportError as error:
    print(f"SKIP: {sys.executable} cannot import math_verify ({error}); "
          "install it with .venv/bin/pip install -r scripts/requirements.txt")
    sys.exit(77)

EXCEPTION = "math-verify differs:"


def rows(path):
    with open(path, encoding="utf-8") as table:
        for number, line in enumerate(table, start=1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) not in (2, 3):
                sys.exit(f"{path}:{number}: expected reference TAB predicted [TAB note], "
                         f"got {len(fields)} field(s)")
            note = fields[2] if len(fields) == 3 else ""
            if note and not note.startswith(EXCEPTION):
                sys.exit(f"{path}:{number}: a note must begin {EXCEPTION!r}, got {note!r}")
            yield number, fields[0], fields[1], note


def main():
    binary, table = sys.argv[1], sys.argv[2]
    run = subprocess.run([binary, table], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"{binary} failed ({run.returncode}): {run.stderr.strip()}")
    cpp = {}
    for line in run.stdout.splitlines():
        number, verdict = line.split("\t")
        cpp[int(number)] = verdict == "1"

    failures = []
    pairs = exceptions = equal = 0
    for number, reference, predicted, note in rows(table):
        pairs += 1
        ours = cpp.get(number)
        if ours is None:
            failures.append(f"line {number}: no C++ verdict")
            continue
        theirs = bool(verify(parse("\\boxed{" + reference + "}"),
                             parse("\\boxed{" + predicted + "}")))
        equal += theirs
        pair = f"line {number}: reference {reference!r}, predicted {predicted!r}"
        if note:
            exceptions += 1
            if ours == theirs:
                failures.append(f"{pair}: listed as an exception but both say {ours}")
        elif ours != theirs:
            failures.append(f"{pair}: C++ says {ours}, math-verify says {theirs}")

    print(f"{pairs} pairs ({equal} equivalent by math-verify), {exceptions} listed exceptions, "
          f"{len(failures)} failure(s)")
    for failure in failures:
        print(failure)
    if pairs < 60 or equal == 0 or equal == pairs:
        sys.exit(f"the table needs at least 60 pairs with both verdicts, "
                 f"has {pairs} ({equal} equal)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
