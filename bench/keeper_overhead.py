#!/usr/bin/env python3
"""What the task keeper costs (docs/RECOVERY.md): trivial `true` tasks,
submit → all completed, through the same binary twice in one run — once with
mcp-orchestrator-keeper beside it (every task under a keeper, the default),
once from a copy without it (tasks spawned directly; they cannot survive a
crash). Alternates the two, R rounds each, and prints tasks/s and the ratio.
Usage: keeper_overhead.py BINARY [TASKS] [CONCURRENCY] [ROUNDS]"""
import os
import shutil
import statistics
import sys
import tempfile
import time

from mcp_stdio import Server, wait_all


def run(binary, tasks, concurrency):
    with tempfile.TemporaryDirectory() as state:
        server = Server(binary, ["--state-dir", state, "--max-concurrent", str(concurrency)])
        server.initialize()
        t0 = time.monotonic()
        ids = [server.call("submitTask", {"argv": ["true"]})["taskId"] for _ in range(tasks)]
        wait_all(server, ids)
        elapsed = time.monotonic() - t0
        server.close()
        return tasks / elapsed


def main():
    binary = os.path.realpath(sys.argv[1])
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    keeper = os.path.join(os.path.dirname(binary), "mcp-orchestrator-keeper")
    if not os.access(keeper, os.X_OK):
        sys.exit(f"no keeper beside {binary}")
    with tempfile.TemporaryDirectory() as alone:
        direct_binary = os.path.join(alone, "mcp-orchestrator")
        shutil.copy2(binary, direct_binary)
        kept, direct = [], []
        for _ in range(rounds):
            kept.append(run(binary, tasks, concurrency))
            direct.append(run(direct_binary, tasks, concurrency))
    k, d = statistics.median(kept), statistics.median(direct)
    print(f"{tasks} `true` tasks, concurrency {concurrency}, median of {rounds} alternating runs")
    print(f"  with keeper:    {k:8.0f} tasks/s   (runs: {', '.join(f'{x:.0f}' for x in kept)})")
    print(f"  without keeper: {d:8.0f} tasks/s   (runs: {', '.join(f'{x:.0f}' for x in direct)})")
    print(f"  ratio kept/direct: {k / d:.2f}")


if __name__ == "__main__":
    main()
