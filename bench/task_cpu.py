#!/usr/bin/env python3
"""Where the CPU of a trivial task goes (docs/PERFORMANCE.md, Trivial tasks):
for each binary, `true` tasks submit → completed at a concurrency, with the
server's own CPU per task, its reaped children's (the keepers and their
`sh`; the keeper host is reaped only at exit), the benchmark client's, and
the whole machine's CPU per task and busy CPUs from /proc/stat; then
bench/raw_limit spawn and kept, with the same machine figures. Rounds
alternate the binaries, so drift on a shared machine hits all of them.
Usage: task_cpu.py RAW_LIMIT BINARY [BINARY...] [--tasks N] [--concurrency C] [--rounds R]"""
import argparse
import json
import os
import subprocess
import tempfile
import time

from mcp_stdio import Server, wait_idle

TICK = os.sysconf("SC_CLK_TCK")


def process_times(pid):
    """utime, stime, cutime, cstime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return [int(x) / TICK for x in fields[11:15]]


def machine_busy():
    """Busy and total jiffies of all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def machine_share(start, end, tasks):
    """CPUs busy and machine CPU per task between two machine_busy() reads."""
    (busy0, total0), (busy1, total1) = start, end
    busy_cpus = (busy1 - busy0) / (total1 - total0) * os.cpu_count()
    return f"{busy_cpus:.2f} CPUs busy, {(busy1 - busy0) / TICK * 1e3 / tasks:.3f} ms of machine CPU per task"


def ours(binary, tasks, concurrency):
    with tempfile.TemporaryDirectory() as d:
        server = Server(binary, ["--state-dir", os.path.join(d, "state"), "--max-concurrent", str(concurrency)])
        server.initialize()
        machine0 = machine_busy()
        before, client_before, t0 = process_times(server.proc.pid), os.times(), time.perf_counter()
        sent = [server.send("tools/call", {"name": "submitTask", "arguments": {"command": "true"}})
                for _ in range(tasks)]
        for s in sent:
            server.reply(s)
        wait_idle(server)
        elapsed = time.perf_counter() - t0
        after, client_after = process_times(server.proc.pid), os.times()
        machine1 = machine_busy()
        server.close()
    per_task = lambda a, b: (b - a) * 1e3 / tasks
    client = (client_after.user - client_before.user) + (client_after.system - client_before.system)
    return (f"{tasks / elapsed:.0f}/s; ms of CPU per task: server {per_task(before[0] + before[1], after[0] + after[1]):.3f}, "
            f"keepers and sh {per_task(before[2] + before[3], after[2] + after[3]):.3f}, client {client * 1e3 / tasks:.3f}; "
            f"{machine_share(machine0, machine1, tasks)}")


def raw(raw_limit, mode, tasks, concurrency):
    start = machine_busy()
    out = subprocess.run([raw_limit, mode, str(tasks), str(concurrency)], check=True,
                         capture_output=True, text=True).stdout
    return f"{json.loads(out)['per_second']:.0f}/s; {machine_share(start, machine_busy(), tasks)}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw_limit")
    p.add_argument("binaries", nargs="+")
    p.add_argument("--tasks", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    for r in range(a.rounds):
        for binary in a.binaries:
            print(f"round {r + 1} {binary}: {ours(binary, a.tasks, a.concurrency)}", flush=True)
        for mode in ("spawn", "kept"):
            print(f"round {r + 1} raw_limit {mode}: {raw(a.raw_limit, mode, a.tasks, a.concurrency)}", flush=True)


if __name__ == "__main__":
    main()
