#!/usr/bin/env python3
"""Checks that every layer of the engine includes only the layers above it.

The order is the data flow of README.md's layout table: a file in layer L may include headers of
layers that come before L (and its own), never of a later one. Prints each violation as
'file:line: includes "header" (layer X is below layer Y)' and exits 1 if there is any.
"""
import os
import re
import sys

ORDER = ["common", "model", "tokenizer", "kernels", "comm", "cache", "engine", "hogwild", "io",
         "experiment", "app"]
ROOTS = ["src", "kernels", "comm"]


def layer_of_file(path):
    parts = path.split(os.sep)
    return parts[1] if parts[0] == "src" else parts[0]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    os.chdir(root)
    violations = 0
    checked = 0
    for top in ROOTS:
        for folder, _, files in os.walk(top):
            for name in sorted(files):
                if not name.endswith((".h", ".cpp", ".cu", ".cuh")):
                    continue
                path = os.path.join(folder, name)
                layer = layer_of_file(path)
                if layer not in ORDER:
                    print(f"{path}: folder '{layer}' is not in the layer order of {__file__}")
                    violations += 1
                    continue
                checked += 1
                with open(path, encoding="utf-8") as source:
                    for number, line in enumerate(source, 1):
                        match = re.match(r'\s*#\s*include\s+"([^"/]+)/', line)
                        if not match or match.group(1) not in ORDER:
                            continue
                        included = match.group(1)
                        if ORDER.index(included) > ORDER.index(layer):
                            print(f'{path}:{number}: includes "{line.split(chr(34))[1]}" '
                                  f"(layer {included} is below layer {layer})")
                            violations += 1
    print(f"check_layers: {checked} files, {violations} violation(s)")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
