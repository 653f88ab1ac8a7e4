#!/usr/bin/env python3
"""Round trips over Streamable HTTP against the real binary, beside the same
calls over stdio in the same run (so the ratio is what counts): ping,
getStatus {} and tools/list, p50/p99 in microseconds, one keep-alive
connection; then ping's latency while 64 getResult long-polls hold their
connections open (the HTTP pool must not let them starve it).
Usage: http_latency.py BINARY"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from mcp_stdio import Server, percentiles

N = 2000


class HttpSession:
    """One MCP session over one keep-alive connection."""

    def __init__(self, host, port, token):
        self.conn = http.client.HTTPConnection(host, port, timeout=120)
        self.headers = {"Accept": "application/json, text/event-stream",
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}"}
        self.next_id = 0
        result = self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                             "clientInfo": {"name": "bench", "version": "1"}})
        self.headers["MCP-Protocol-Version"] = result["protocolVersion"]
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, message):
        self.conn.request("POST", "/mcp", json.dumps(message), self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if "Mcp-Session-Id" not in self.headers and response.getheader("Mcp-Session-Id"):
            self.headers["Mcp-Session-Id"] = response.getheader("Mcp-Session-Id")
        return response, body

    def request(self, method, params=None):
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        response, body = self.post(message)
        if response.status != 200:
            raise RuntimeError(f"{method}: HTTP {response.status} {body[:200]!r}")
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            for line in body.decode().splitlines():
                if line.startswith("data: "):
                    parsed = json.loads(line[6:])
                    if parsed.get("id") == self.next_id:
                        return parsed["result"]
        return json.loads(body)["result"]


def start_http_server(binary, state, args=()):
    """Starts the binary on a free loopback port; returns (process, host,
    port, token) once it has written its endpoint file."""
    proc = subprocess.Popen([binary, "--http", "127.0.0.1:0", "--state-dir", state, *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (proc, *http_endpoint(proc, state))


def http_endpoint(proc, state, timeout=10):
    """(host, port, token) of a server started with --http on `state`, once
    it has written <state>/http.json (remove a stale one before the start)."""
    endpoint = os.path.join(state, "http.json")
    deadline = time.monotonic() + timeout
    while not os.path.exists(endpoint):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"the server on {state} wrote no {endpoint}")
        time.sleep(0.02)  # polling for the file, with a deadline
    with open(endpoint) as f:
        url = json.load(f)["url"]
    with open(os.path.join(state, "http-token")) as f:
        token = f.read().strip()
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port), token


def ping_under_long_polls(s, host, port, token, polls, n):
    """ping's p50/p99 over session `s` while `polls` other connections each
    hold a getResult waitSec:50 long-poll open."""
    task = s.request("tools/call", {"name": "submitTask", "arguments": {"command": "sleep 600"}})
    task_id = task["structuredContent"]["taskId"]
    threads = []
    try:
        for _ in range(polls):
            p = HttpSession(host, port, token)
            t = threading.Thread(target=p.request, args=(
                "tools/call", {"name": "getResult", "arguments": {"taskId": task_id, "waitSec": 50}}))
            t.start()
            threads.append(t)
        time.sleep(0.5)  # let the long-polls reach the server; the figure does not depend on it
        return percentiles(lambda: s.request("ping"), n)
    finally:
        # Ends the long-polls, and leaves no sleeping task for a keeper to hold.
        s.request("tools/call", {"name": "cancelTask", "arguments": {"taskId": task_id}})
        for t in threads:
            t.join()


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as state:
        stdio = Server(binary, ["--state-dir", os.path.join(state, "stdio")])
        stdio.initialize()
        proc, host, port, token = start_http_server(binary, os.path.join(state, "http"))
        try:
            s = HttpSession(host, port, token)
            rows = []
            for name, over_http, over_stdio in [
                ("ping", lambda: s.request("ping"), lambda: stdio.request("ping")),
                ("getStatus {}", lambda: s.request("tools/call", {"name": "getStatus", "arguments": {}}),
                 lambda: stdio.call("getStatus", {})),
                ("tools/list", lambda: s.request("tools/list"), lambda: stdio.request("tools/list")),
            ]:
                rows.append((name, percentiles(over_http, N), percentiles(over_stdio, N)))

            under_load = ping_under_long_polls(s, host, port, token, 64, 500)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            stdio.close()
    print(f"{'call':16} {'HTTP p50':>10} {'HTTP p99':>10} {'stdio p50':>10} {'stdio p99':>10}  HTTP/stdio p50")
    for name, (h50, h99), (s50, s99) in rows:
        print(f"{name:16} {h50:8.0f}us {h99:8.0f}us {s50:8.0f}us {s99:8.0f}us  {h50 / s50:5.2f}x")
    print(f"ping over HTTP while 64 long-polls wait: p50 {under_load[0]:.0f} us, p99 {under_load[1]:.0f} us")


if __name__ == "__main__":
    main()
