"""A minimal MCP client over stdio for the end-to-end benchmarks: starts the
real binary, initializes, calls tools, and reads /proc figures of the server."""
import json
import os
import subprocess
import threading
import queue
import time


class Server:
    """Raises ConnectionError from calls once the server's stdout has closed
    (it exited or was killed), so callers that restart it can tell."""

    def __init__(self, binary, args=(), env=None, stderr=subprocess.DEVNULL):
        self.proc = subprocess.Popen(
            [binary, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr, env=env)
        self._closed = False
        self._next_id = 0
        self._pending = {}
        self._lock = threading.Lock()  # _pending, _next_id, _closed
        # Writes hold their own lock: a write blocked on a full pipe must not
        # keep the reader from taking replies, or both ends wait on each other.
        self._write_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if "id" in msg and ("result" in msg or "error" in msg):
                with self._lock:
                    box = self._pending.pop(msg["id"], None)
                if box is not None:
                    box.put(msg)
        with self._lock:
            self._closed = True
            pending, self._pending = self._pending, {}
        for box in pending.values():
            box.put(None)

    def send(self, method, params=None):
        """Sends a request without waiting; pass what it returns to reply()."""
        with self._lock:
            if self._closed:
                raise ConnectionError(f"{method}: the server's stdout is closed")
            self._next_id += 1
            rid = self._next_id
            box = queue.Queue(maxsize=1)
            self._pending[rid] = box
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self._write(msg)
        return method, box

    def reply(self, sent, timeout=60):
        method, box = sent
        reply = box.get(timeout=timeout)
        if reply is None:
            raise ConnectionError(f"{method}: the server closed stdout before replying")
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def request(self, method, params=None, timeout=60):
        return self.reply(self.send(method, params), timeout)

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self._write(msg)

    def _write(self, msg):
        with self._write_lock:
            try:
                self.proc.stdin.write((json.dumps(msg) + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError) as e:  # ValueError: stdin already closed
                raise ConnectionError(f"{msg.get('method')}: {e}") from e

    def initialize(self):
        self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "1"}})
        self.notify("notifications/initialized")

    def call(self, tool, arguments, timeout=60):
        result = self.request("tools/call", {"name": tool, "arguments": arguments}, timeout)
        if result.get("isError"):
            raise RuntimeError(f"{tool}: {result['content'][0]['text']}")
        return result["structuredContent"]

    def proc_status(self):
        """VmRSS, VmHWM (KiB) and Threads of the server process."""
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
        return out

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    def close(self, timeout=30):
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def percentiles(fn, n):
    """p50 and p99 of n calls of fn, in microseconds."""
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def wait_idle(server, timeout=600):
    """Polls getStatus {} until nothing is queued, waiting or running."""
    deadline = time.monotonic() + timeout
    while True:
        o = server.call("getStatus", {})["orchestrator"]
        if o["queueDepth"] == 0 and o["running"] == 0:
            return o
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not become idle")
        time.sleep(0.005)  # polling interval of a benchmark client


def wait_all(server, ids, timeout=120):
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} tasks still not finished")
        for task_id in list(pending)[:100]:
            status = server.call("getStatus", {"taskId": task_id})["task"]["status"]
            if status in ("completed", "failed", "cancelled"):
                pending.discard(task_id)
        time.sleep(0.05)  # polling interval of a benchmark client, not synchronisation
