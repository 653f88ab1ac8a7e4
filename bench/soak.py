#!/usr/bin/env python3
"""Soak: many trivial tasks through one server with retention on (issue:
bounded growth). Submits TOTAL `true` tasks in batches, waits for each batch
to end, and after every REPORT tasks prints the server's RSS, its peak, the
tasks it still holds and the state directory's size on disk. Growth of RSS
after the first report (warm-up) must stay under 1 MiB in all, and the disk
size must level off.
Usage: soak.py BINARY [TOTAL] [REPORT] [--retention N]
       soak.py BINARY --quick      (2,000 tasks: a smoke run for CI)"""
import os
import sys
import tempfile
import time

from mcp_stdio import Server, wait_idle

BATCH = 500


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass  # evicted while we walked
    return total


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quick = "--quick" in sys.argv
    retention = 1000
    if "--retention" in sys.argv:
        retention = int(sys.argv[sys.argv.index("--retention") + 1])
        args = [a for a in args if a != str(retention)]
    binary = args[0]
    total = 2000 if quick else int(args[1]) if len(args) > 1 else 100_000
    report = 500 if quick else int(args[2]) if len(args) > 2 else 10_000
    with tempfile.TemporaryDirectory() as work:
        state = os.path.join(work, "state")
        config = os.path.join(work, "config.json")
        with open(config, "w") as f:
            f.write('{"retention": {"count": %d}}' % retention)
        server = Server(binary, ["--state-dir", state, "--config", config, "--max-concurrent", "8"])
        server.initialize()
        print(f"{total} `true` tasks, retention.count {retention}, batches of {BATCH}")
        print(f"{'tasks':>8} {'RSS KiB':>9} {'peak KiB':>9} {'held':>6} {'state dir KiB':>14} {'tasks/s':>8}")
        rows = []
        done = 0
        t0 = time.monotonic()
        while done < total:
            n = min(BATCH, total - done)
            for _ in range(n):
                server.call("submitTask", {"argv": ["true"]})
            o = wait_idle(server)
            done += n
            if done % report == 0 or done == total:
                st = server.proc_status()
                held = sum(o["tasks"].values())
                rows.append((done, st["VmRSS"], st["VmHWM"], held, dir_bytes(state) // 1024,
                             done / (time.monotonic() - t0)))
                print(f"{rows[-1][0]:>8} {rows[-1][1]:>9} {rows[-1][2]:>9} {rows[-1][3]:>6} "
                      f"{rows[-1][4]:>14} {rows[-1][5]:>8.0f}", flush=True)
        server.close()
    if len(rows) > 1:
        growth = rows[-1][1] - rows[0][1]
        print(f"RSS growth after warm-up ({rows[0][0]} tasks): {growth} KiB "
              f"({'within' if growth < 1024 else 'OVER'} the 1 MiB goal)")
        print(f"state dir: {rows[0][4]} KiB at warm-up, {rows[-1][4]} KiB at the end")


if __name__ == "__main__":
    main()
