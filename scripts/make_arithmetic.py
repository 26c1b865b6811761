"""Writes a small set of one- and two-step arithmetic word problems as JSONL (GSM8K's fields:
"question", and "answer" ending in "#### N"), for the CPU sweeps on the 135M demo model, which
solves almost no GSM8K problem. Deterministic: the same seed gives the same file.

    python3 scripts/make_arithmetic.py configs/problems/arithmetic.jsonl [--count 40] [--seed 1]
"""
import argparse
import json
import random
import sys

NAMES = ["Tom", "Ana", "Li", "Sam", "Maya", "Omar", "Eva", "Ken"]
THINGS = ["apples", "books", "coins", "pencils", "stickers", "marbles", "cards", "shells"]


def one_step(rng):
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    a, b = rng.randint(2, 20), rng.randint(2, 9)
    kind = rng.choice(["add", "sub", "mul"])
    if kind == "add":
        return f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have?", a + b
    if kind == "sub":
        a += b
        return f"{name} has {a} {thing} and gives away {b}. How many {thing} are left?", a - b
    return f"{name} has {b} boxes with {a} {thing} in each box. How many {thing} in all?", a * b


def two_step(rng):
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9)
    return (f"{name} has {a} bags with {b} {thing} in each bag, then loses {c} {thing}. "
            f"How many {thing} are left?", a * b - c)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    lines = []
    for i in range(args.count):
        question, answer = (one_step if i % 2 == 0 else two_step)(rng)
        lines.append(json.dumps({"question": question, "answer": f"#### {answer}"}))
    try:
        with open(args.output, "x", encoding="utf-8") as out:  # never replaces a file
            out.write("\n".join(lines) + "\n")
    except FileExistsError:
        sys.exit(f"make_arithmetic.py: {args.output} exists; it is never replaced")


if __name__ == "__main__":
    main()
