"""Validation Dice of several training runs side by side, as a Markdown table.

    python compare_runs.py RUN_DIR... [--at ITERATION]

Reads each run's metrics.jsonl (written by `edge-seg-train base`) and prints,
for the validation at ITERATION (default: the last validation every run
reached), the mean Dice and the Dice per structure, one column per run, plus
each run's mean Dice at every validation they share. Needs only the standard
library.
"""
import json
import os
import sys


def validations(run):
    path = os.path.join(run, "metrics.jsonl")
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        sys.exit(f"{path}: cannot read: {e.strerror}")
    out = {}
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            sys.exit(f"{path}: line {n} is not JSON: {e}")
        if "val_dice" in row:
            out[row["iteration"]] = row
    if not out:
        sys.exit(f"{path}: no validation rows")
    return out


args = sys.argv[1:]
at = None
if "--at" in args:
    i = args.index("--at")
    at = int(args[i + 1])
    del args[i:i + 2]
if not args:
    sys.exit(__doc__)
runs = {os.path.basename(os.path.normpath(r)): validations(r) for r in args}
shared = sorted(set.intersection(*(set(v) for v in runs.values())))
if at is None:
    if not shared:
        sys.exit("the runs share no validation iteration")
    at = shared[-1]
for name, vals in runs.items():
    if at not in vals:
        sys.exit(f"{name}: no validation at iteration {at}")

names = list(runs)
print("| iterations | " + " | ".join(names) + " |")
print("|---" * (len(names) + 1) + "|")
for it in shared:
    print(f"| {it} | " + " | ".join(f"{runs[n][it]['val_dice']:.3f}" for n in names) + " |")
print()
print(f"| structure (iteration {at}) | " + " | ".join(names) + " |")
print("|---" * (len(names) + 1) + "|")
classes = list(runs[names[0]][at]["val_dice_per_class"])
for c in classes:
    print(f"| {c} | " + " | ".join(f"{runs[n][at]['val_dice_per_class'].get(c, float('nan')):.2f}" for n in names) + " |")
