#!/usr/bin/env python3
"""Two builds side by side on the trivial-task figure (docs/PERFORMANCE.md):
each round measures the raw spawn rate (bench/raw_limit), then `true` tasks
submit → completed through each binary, and prints every ratio to that
round's raw rate. Interleaved so that drift on a shared machine hits both.
Usage: task_rate_pair.py RAW_LIMIT BEFORE AFTER [ROUNDS] [TASKS] [CONCURRENCY]"""
import os
import sys
import tempfile

import figures


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    raw_limit, before, after = argv[1:4]
    given = [int(a) for a in argv[4:7]]
    rounds, tasks, concurrency = given + [3, 2000, 8][len(given):]
    ratios = {"before": [], "after": []}
    for r in range(rounds):
        raw = figures.raw_spawn_rate(raw_limit, tasks, concurrency)
        for name, binary in (("before", before), ("after", after)):
            with tempfile.TemporaryDirectory() as d:
                rate = figures.trivial_task_rate(binary, os.path.join(d, "state"), tasks, concurrency)
            ratios[name].append(rate / raw)
            print(f"round {r + 1}: raw {raw:.0f}/s, {name} {rate:.0f}/s = {rate / raw:.2f}x", flush=True)
    for name, values in ratios.items():
        print(f"{name}: " + ", ".join(f"{v:.2f}x" for v in values) + " raw")


if __name__ == "__main__":
    main(sys.argv)
