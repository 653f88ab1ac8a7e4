#!/usr/bin/env python3
"""Round trips over stdio against the real binary: ping, getStatus {} and
submitTask of `true`, p50/p99 in microseconds (client overhead included).
Usage: latency.py BINARY"""
import sys
import tempfile

from mcp_stdio import Server, percentiles


def main():
    with tempfile.TemporaryDirectory() as state:
        s = Server(sys.argv[1], ["--state-dir", state])
        s.initialize()
        rows = [
            ("ping", percentiles(lambda: s.request("ping"), 2000)),
            ("getStatus {}", percentiles(lambda: s.call("getStatus", {}), 2000)),
            ("submitTask, waits (no spawn)", percentiles(
                lambda: s.call("submitTask", {"command": "true", "delaySec": 3600}), 500)),
            ("submitTask `true` (runs at once)", percentiles(
                lambda: s.call("submitTask", {"command": "true"}), 500)),
        ]
        s.close()
    for name, (p50, p99) in rows:
        print(f"{name:34} p50 {p50:8.0f} us   p99 {p99:8.0f} us")


if __name__ == "__main__":
    main()
