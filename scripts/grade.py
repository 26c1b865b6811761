#!/usr/bin/env python3
"""Re-grades hogwild results files with math-verify, the field's reference grader.

    .venv/bin/python scripts/grade.py [--dry-run] RESULTS.h5|FOLDER...

The engine decides each problem's `correct` at run time with its own grader (src/hogwild/grading.h,
no Python needed). This script grades the same stored answers again with math-verify:
verify(parse("\\boxed{reference_answer}"), parse("\\boxed{answer}")), and writes
  /problems/<id>                     attr mv_correct (int8: 1, 0, or -1 when the problem has no
                                     reference answer or failed to run)
  /problems/<id>/checkpoints_mv_correct  int8 [n], one per row of /problems/<id>/checkpoints
  /                                  attr mv_accuracy (float64: mean of mv_correct over the graded
                                     problems; NaN when none is graded)
It prints one summary line per file and every problem where math-verify and the engine's
`correct` disagree. A folder stands for every *.h5 in it. With --dry-run nothing is written.
A file that is not a hogwild results file (no hogwild_version attribute or no /problems group)
is refused with one line and exit status 1; the other files are still graded.
"""
import argparse
import math
import os
import sys

try:
    import h5py
    import numpy as np
    from math_verify import parse, verify
except ImportError as error:
    sys.exit(f"grade.py: {error}; install the script packages: "
             ".venv/bin/pip install -r scripts/requirements.txt")


class Refused(Exception):
    """A file this script will not grade; the message is the one line to print."""


def text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value[()])
    return str(value)


def math_verify_correct(answer, reference):
    """1 or 0 by math-verify; -1 when there is no reference to grade against."""
    if not reference.strip():
        return -1
    if not answer.strip():
        return 0
    gold = parse("\\boxed{" + reference + "}")
    predicted = parse("\\boxed{" + answer + "}")
    return 1 if verify(gold, predicted) else 0


def grade_file(path, dry_run):
    """Grades one file; returns its summary line and the disagreement lines."""
    if not h5py.is_hdf5(path):
        raise Refused(f"grade.py: {path} is not a hogwild results file (not HDF5)")
    try:
        handle = h5py.File(path, "r" if dry_run else "r+")
    except OSError as error:
        raise Refused(f"grade.py: {path}: cannot open ({error})") from error
    with handle as results:
        if "hogwild_version" not in results.attrs or \
                not isinstance(results.get("problems"), h5py.Group):
            raise Refused(f"grade.py: {path} is not a hogwild results file "
                          "(no hogwild_version attribute or no /problems group)")
        # Grade everything first, then write, so that an error while grading leaves the file as
        # it was.
        grades = {}
        disagreements = []
        for name, group in results["problems"].items():
            if not isinstance(group, h5py.Group):
                continue
            attrs = group.attrs
            reference = text(attrs.get("reference_answer", ""))
            answer = text(attrs.get("answer", ""))
            failed = text(attrs.get("stop_reason", "")) == "failed"
            verdict = -1 if failed else math_verify_correct(answer, reference)
            checkpoints = None
            table = group.get("checkpoints")
            if isinstance(table, h5py.Dataset) and table.dtype.names and \
                    "answer" in table.dtype.names:
                checkpoints = np.array(
                    [math_verify_correct(text(row["answer"]), reference) for row in table[()]],
                    dtype=np.int8)
            grades[name] = (verdict, checkpoints)
            engine = int(attrs["correct"]) if "correct" in attrs else -1
            if engine != verdict:
                disagreements.append(f"  {name}: answer {answer!r}, reference {reference!r}: "
                                     f"engine correct={engine}, math-verify {verdict}")

        graded = [verdict for verdict, _ in grades.values() if verdict >= 0]
        accuracy = sum(graded) / len(graded) if graded else math.nan
        if not dry_run:
            for name, (verdict, checkpoints) in grades.items():
                group = results["problems"][name]
                group.attrs["mv_correct"] = np.int8(verdict)
                if checkpoints is not None:
                    if "checkpoints_mv_correct" in group:
                        del group["checkpoints_mv_correct"]
                    group.create_dataset("checkpoints_mv_correct", data=checkpoints)
            results.attrs["mv_accuracy"] = np.float64(accuracy)
        engine_accuracy = results.attrs.get("accuracy", math.nan)
    summary = (f"{path}: {len(grades)} problems, {len(graded)} graded, math-verify accuracy "
               f"{accuracy:.4f}, engine accuracy {float(engine_accuracy):.4f}, "
               f"{len(disagreements)} disagreement(s)" + (" (dry run: nothing written)"
                                                        if dry_run else ""))
    return summary, disagreements


def expand(paths):
    """Files as given; a folder is every *.h5 in it (sorted). Missing paths are refused."""
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith(".h5") and os.path.isfile(os.path.join(path, name)):
                    yield os.path.join(path, name)
        else:
            yield path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results files (.h5) or folders of them")
    parser.add_argument("--dry-run", action="store_true", help="grade and print; write nothing")
    args = parser.parse_args()
    status = 0
    files = 0
    for path in expand(args.results):
        files += 1
        try:
            if not os.path.isfile(path):
                raise Refused(f"grade.py: {path}: no such file")
            summary, disagreements = grade_file(path, args.dry_run)
        except Refused as refusal:
            print(refusal, file=sys.stderr)
            status = 1
            continue
        print(summary)
        for line in disagreements:
            print(line)
    if files == 0:
        print(f"grade.py: no *.h5 results files in {' '.join(args.results)}", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
