#!/usr/bin/env python3
"""How long the server takes to answer a 1 MiB getResult window, apart from
the client: time to the reply's first byte, then to its last, then the
client's json.loads, over a plain pipe (no reader thread, no queue).
bench/run's page-through figure is the sum as a Python MCP client sees it;
this splits it.

  bench/window_first_byte.py [--build DIR] [--runs N]

Prints the median of each part over N reads (default 30) of one finished
task's 1 MiB of stdout, on DIR's binary (default build/release)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from figures import MIB, flood_command  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PipeClient:
    def __init__(self, binary, state):
        self.proc = subprocess.Popen([binary, "--state-dir", state], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.next_id = 0

    def send(self, method, params):
        self.next_id += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}) + "\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()
        return self.next_id

    def reply_line(self, wanted):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the server closed its stdout")
            if json.loads(line).get("id") == wanted:
                return line

    def call(self, name, arguments):
        line = self.reply_line(self.send("tools/call", {"name": name, "arguments": arguments}))
        return json.loads(line)["result"]["structuredContent"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    binary = os.path.join(args.build, "app", "mcp-orchestrator")
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench/window_first_byte.py: {binary} is missing; build first (scripts/build release)")
    with tempfile.TemporaryDirectory(prefix="orch-first-byte-") as state:
        c = PipeClient(binary, state)
        c.reply_line(c.send("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                           "clientInfo": {"name": "window_first_byte", "version": "1"}}))
        c.proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        task = c.call("submitTask", {"command": flood_command(1)})["taskId"]
        c.call("getResult", {"taskId": task, "waitSec": 30, "maxBytes": 1})
        first, rest, parse = [], [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            wanted = c.send("tools/call", {"name": "getResult", "arguments": {
                "taskId": task, "stream": "stdout", "offset": 0, "maxBytes": MIB}})
            head = c.proc.stdout.read(1)
            t1 = time.perf_counter()
            line = head + c.proc.stdout.readline()
            t2 = time.perf_counter()
            reply = json.loads(line)
            t3 = time.perf_counter()
            if reply.get("id") != wanted or len(reply["result"]["structuredContent"]["stdout"]["text"]) != MIB:
                raise RuntimeError("the reply is not the 1 MiB window asked for")
            first.append((t1 - t0) * 1e3)
            rest.append((t2 - t1) * 1e3)
            parse.append((t3 - t2) * 1e3)
        c.close()
    print(f"1 MiB window, median of {args.runs}: first byte {statistics.median(first):.2f} ms, "
          f"rest of the reply {statistics.median(rest):.2f} ms, client json.loads "
          f"{statistics.median(parse):.2f} ms")


if __name__ == "__main__":
    main()
