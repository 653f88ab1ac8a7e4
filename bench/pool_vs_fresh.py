#!/usr/bin/env python3
"""Worker pools and agent-like load (docs/PERFORMANCE.md, "Worker pools").

1. Round trip of one task through a warm pool worker vs. a fresh process per
   task of the same Python worker (tests/workers/echo_worker.py), measured
   side by side in one run: submitTask, then getResult with waitSec until it
   completed, one task at a time. The fresh-process profile feeds the worker
   the same request on stdin; it answers and exits at EOF.
2. The server's peak RSS while 64 agent-like tasks (tests/workers/fake_agent.py,
   stream-JSON lines) run at once and each prints 64 MiB.

Usage: pool_vs_fresh.py BINARY [ROUNDS] [AGENTS] [MiB]"""
import json
import os
import statistics
import sys
import tempfile
import time

from mcp_stdio import Server, wait_all

HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = os.path.join(HERE, "..", "tests", "workers")


def round_trip(server, args):
    t0 = time.perf_counter()
    task_id = server.call("submitTask", args)["taskId"]
    while True:
        r = server.call("getResult", {"taskId": task_id, "waitSec": 30, "maxBytes": 1})
        if r["status"] not in ("queued", "waiting", "running"):
            break
    elapsed = time.perf_counter() - t0
    if r["status"] != "completed":
        raise RuntimeError(f"task {task_id} ended {r['status']}: {r.get('message')}")
    return elapsed


def main():
    binary = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    agents = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    mib = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    worker = os.path.abspath(os.path.join(WORKERS, "echo_worker.py"))
    agent = os.path.abspath(os.path.join(WORKERS, "fake_agent.py"))
    request = json.dumps({"id": "bench", "input": {"echo": "x"}}) + "\n"
    with tempfile.TemporaryDirectory() as state:
        config = {
            "limits": {"maxConcurrent": agents},
            "profiles": {
                "warm": {"mode": "pool", "argv": ["python3", "-u", worker], "pool": {"min": 1, "max": 1}},
                "fresh": {"argv": ["python3", "-u", worker]},
                "agent": {"argv": ["python3", agent, "-p", "{prompt}", "--print-mb", str(mib)],
                          "maxConcurrent": agents},
            },
        }
        config_path = os.path.join(state, "config.json")
        with open(config_path, "w") as f:
            json.dump(config, f)
        server = Server(binary, ["--state-dir", os.path.join(state, "s"), "--config", config_path])
        server.initialize()
        # Warm-up: the pool's worker has started, caches are hot for both.
        for _ in range(5):
            round_trip(server, {"profile": "warm", "input": {"echo": "x"}})
            round_trip(server, {"profile": "fresh", "stdin": request})
        warm, fresh = [], []
        for _ in range(rounds):  # interleaved, so both see the same machine
            warm.append(round_trip(server, {"profile": "warm", "input": {"echo": "x"}}))
            fresh.append(round_trip(server, {"profile": "fresh", "stdin": request}))
        rss_before = server.proc_status()["VmHWM"]
        t0 = time.monotonic()
        ids = [server.call("submitTask", {"profile": "agent", "params": {"prompt": f"task {i}"}})["taskId"]
               for i in range(agents)]
        wait_all(server, ids, timeout=1200)
        flood_wall = time.monotonic() - t0
        hwm = server.proc_status()["VmHWM"]
        totals = [server.call("getResult", {"taskId": i, "stream": "stdout", "maxBytes": 1}) for i in ids]
        server.close()
    ok = all(r["status"] == "completed" and r["stdout"]["totalBytes"] >= mib << 20 for r in totals)
    w, f = statistics.median(warm), statistics.median(fresh)
    print(f"rounds                      {rounds} each, interleaved")
    print(f"warm pool worker, median    {w * 1000:.2f} ms per task (p90 {sorted(warm)[int(rounds * 0.9)] * 1000:.2f})")
    print(f"fresh process, median       {f * 1000:.2f} ms per task (p90 {sorted(fresh)[int(rounds * 0.9)] * 1000:.2f})")
    print(f"fresh / warm                {f / w:.1f}x")
    print(f"agents x output             {agents} x {mib} MiB of stream-JSON lines, all at once")
    print(f"all completed after         {flood_wall:.1f} s")
    print(f"server VmHWM before / after {rss_before / 1024:.1f} / {hwm / 1024:.1f} MiB")
    print(f"every task completed        {'yes' if ok else 'NO'}")
    passed = ok and f / w >= 20 and hwm < 64 * 1024
    print(f"goals (>= 20x, < 64 MiB)    {'met' if passed else 'NOT met'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
