#!/usr/bin/env python3
"""Output never sits in the server's memory: N concurrent tasks each print
M MiB (long lines from /dev/zero, or 2-byte lines from `yes`, which exercise
the ::progress line scanner). Reports wall time, the server's peak RSS
(VmHWM) and CPU, and checks every byte was counted.
Usage: output_flood.py BINARY [N] [MiB] [zero|lines]"""
import sys
import tempfile
import time

from mcp_stdio import Server, wait_all


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    mib = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    kind = sys.argv[4] if len(sys.argv) > 4 else "zero"
    size = mib << 20
    source = "cat /dev/zero" if kind == "zero" else "yes"
    with tempfile.TemporaryDirectory() as state:
        server = Server(binary, ["--state-dir", state, "--max-concurrent", str(n)])
        server.initialize()
        cpu0 = server.cpu_seconds()
        t0 = time.monotonic()
        ids = [server.call("submitTask", {"command": f"{source} | head -c {size}"})["taskId"]
               for _ in range(n)]
        wait_all(server, ids, timeout=600)
        wall = time.monotonic() - t0
        cpu = server.cpu_seconds() - cpu0
        hwm = server.proc_status()["VmHWM"]
        totals = []
        for task_id in ids:
            r = server.call("getResult", {"taskId": task_id, "stream": "stdout", "maxBytes": 1})
            totals.append((r["status"], r["stdout"]["totalBytes"]))
        server.close()
    exact = all(s == "completed" and t == size for s, t in totals)
    print(f"tasks x output        {n} x {mib} MiB ({kind})")
    print(f"all completed after   {wall:.2f} s")
    print(f"server VmHWM          {hwm / 1024:.1f} MiB")
    print(f"server CPU            {cpu:.2f} s ({cpu / (n * mib / 1024):.2f} s per GiB)")
    print(f"every byte counted    {'yes' if exact else 'NO: ' + str(totals)}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
