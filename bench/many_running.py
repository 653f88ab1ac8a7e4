#!/usr/bin/env python3
"""Hundreds of tasks running at once (issue: no thread or pump loop per task).
Submits N `sleep 600` tasks with --max-concurrent N, waits until all N run,
samples the server's threads, RSS and CPU, then cancels them all and checks
every one ends cancelled with its process gone.
Usage: many_running.py BINARY [N]"""
import os
import sys
import tempfile
import time

from mcp_stdio import Server


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    with tempfile.TemporaryDirectory() as state:
        server = Server(binary, ["--state-dir", state, "--max-concurrent", str(n),
                                 "--kill-grace-sec", "2"])
        server.initialize()
        idle = server.proc_status()
        t0 = time.monotonic()
        ids = [server.call("submitTask", {"command": "sleep 600"})["taskId"] for _ in range(n)]
        submitted = time.monotonic() - t0
        while server.call("getStatus", {})["orchestrator"]["running"] < n:
            if time.monotonic() - t0 > 120:
                raise TimeoutError("not all tasks started")
            time.sleep(0.01)  # sampling interval
        all_running = time.monotonic() - t0
        cpu0 = server.cpu_seconds()
        time.sleep(2)  # measure the server's idle cost while N tasks run
        busy = server.proc_status()
        cpu_idle = server.cpu_seconds() - cpu0
        pids = [server.call("getStatus", {"taskId": i})["task"]["pid"] for i in ids]
        t1 = time.monotonic()
        cancelled = server.call("cancelTask", {"all": True})["cancelled"]
        while server.call("getStatus", {})["orchestrator"]["running"] > 0:
            if time.monotonic() - t1 > 60:
                raise TimeoutError("tasks did not stop")
            time.sleep(0.01)
        stopped = time.monotonic() - t1
        statuses = [server.call("getStatus", {"taskId": i})["task"]["status"] for i in ids]
        server.close()
    left = [p for p in pids if alive(p)]
    ok = statuses.count("cancelled") == n and len(cancelled) == n and not left
    print(f"tasks running at once         {n} x sleep 600")
    print(f"submitted in                  {submitted * 1000:.0f} ms")
    print(f"all {n} running after          {all_running * 1000:.0f} ms")
    print(f"server threads idle / busy    {idle['Threads']} / {busy['Threads']}")
    print(f"server RSS idle / busy (KiB)  {idle['VmRSS']} / {busy['VmRSS']}")
    print(f"server CPU over 2 s busy      {cpu_idle * 1000:.0f} ms")
    print(f"cancel all -> none running    {stopped * 1000:.0f} ms")
    print(f"cancelled / processes left    {statuses.count('cancelled')}/{n} / {len(left)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
