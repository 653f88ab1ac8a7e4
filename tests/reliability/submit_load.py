#!/usr/bin/env python3
"""Submit load over Streamable HTTP (docs/RELIABILITY.md): CLIENTS keep-alive
connections, each paced to RATE/CLIENTS submits a second, for the given time,
against the real server (127.0.0.1, state in a temp dir). Reports errors,
submit latency p50/p99/max, the achieved rate, and the server's RSS at the
start, every --sample-sec and at the end; then waits for every task to end.

What the tasks do (--kind):
  waiting  (default) a `true` command delayed by an hour, tagged `load`; a
           control thread cancels all of them once a second, and retention
           evicts them. It measures the submit path (tool call, scheduler,
           store write) and keeps memory bounded, without running 1,000
           processes a second, which a 2-vCPU machine cannot
           (docs/PERFORMANCE.md: about 200 `true` tasks/s).
  process  `true` commands; the backlog grows past what can run.
  pool     the C++ echo worker on a pool profile (SPEC §6).

Exits 1 on any error: a failed submit, a transport error, or a task that did
not end as its kind should (completed; cancelled for `waiting`).
Usage: submit_load.py --binary PATH [--seconds N | --minutes N] [--rate N]
                      [--clients N] [--worker PATH] [--report-id ID]"""
import json
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))
from http_latency import HttpSession, start_http_server  # noqa: E402
from report_file import build_name, duration_flag, duration_words, write_report  # noqa: E402
from leftovers import end_leftovers  # noqa: E402
import script_args  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client(threading.Thread):
    """One keep-alive connection submitting at a fixed pace until stop_at."""

    def __init__(self, endpoint, arguments, rate, start_at, stop_at):
        super().__init__()
        self.endpoint, self.arguments, self.rate = endpoint, arguments, rate
        self.start_at, self.stop_at = start_at, stop_at
        self.latencies = []
        self.errors = []
        self.ids = []

    def connect(self):
        try:
            return HttpSession(*self.endpoint)
        except Exception as e:  # noqa: BLE001 - counted, and the run fails
            self.errors.append(f"connect: {e!r}")
            return None

    def run(self):
        session = self.connect()  # before the clock starts
        n = 0
        while True:
            due = self.start_at + n / self.rate
            if due >= self.stop_at or time.monotonic() >= self.stop_at:
                break  # a client that fell behind does not make up for it
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing, not synchronisation
            n += 1
            session = session or self.connect()
            if session is None:
                continue
            t = time.perf_counter()
            try:
                result = session.request("tools/call", {"name": "submitTask", "arguments": self.arguments})
            except Exception as e:  # noqa: BLE001 - counted, and the run fails
                self.errors.append(repr(e))
                session = None  # reconnect for the next submit
                continue
            self.latencies.append(time.perf_counter() - t)
            if result.get("isError"):
                self.errors.append(result["content"][0]["text"])
            else:
                self.ids.append(result["structuredContent"]["taskId"])


class Canceller(threading.Thread):
    """Cancels every waiting `load` task once a second until stop_at."""

    def __init__(self, endpoint, stop_at):
        super().__init__()
        self.endpoint, self.stop_at = endpoint, stop_at
        self.errors = []
        self.session = HttpSession(*endpoint)
        self.start()

    def cancel_all(self):
        result = self.session.request("tools/call", {"name": "cancelTask", "arguments": {"all": True, "tag": "load"}})
        if result.get("isError"):
            self.errors.append(result["content"][0]["text"])

    def run(self):
        while time.monotonic() < self.stop_at:
            time.sleep(1)  # the cancel cadence
            try:
                self.cancel_all()
            except Exception as e:  # noqa: BLE001 - counted, and the run fails
                self.errors.append(f"cancelTask: {e!r}")
                self.session = HttpSession(*self.endpoint)

    def finish(self):
        """One last cancel for what was submitted after the last tick."""
        self.session = HttpSession(*self.endpoint)
        self.cancel_all()
        return self.errors


def wait_idle(endpoint, timeout):
    session = HttpSession(*endpoint)  # fresh: an idle keep-alive connection is closed by the server
    deadline = time.monotonic() + timeout
    while True:
        result = session.request("tools/call", {"name": "getStatus", "arguments": {}})
        o = result["structuredContent"]["orchestrator"]
        if o["queueDepth"] == 0 and o["running"] == 0:
            return o
        if time.monotonic() > deadline:
            raise TimeoutError(f"not idle after {timeout} s: {o['tasks']}")
        time.sleep(0.1)  # polling while the backlog drains


def main():
    parser = script_args.parser(__doc__, 20, "submit-load")
    parser.add_argument("--rate", type=float, default=1000, help="submits per second, all clients")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--kind", choices=("waiting", "process", "pool"), default="waiting")
    parser.add_argument("--worker", help="pool worker; default: orch_echo_worker beside the binary's build")
    parser.add_argument("--sample-sec", type=float, default=60)
    opts = parser.parse_args()
    seconds = script_args.run_seconds(opts)
    worker = opts.worker or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(opts.binary))),
                                         "tests", "orch_echo_worker")

    with tempfile.TemporaryDirectory(prefix="submit-load-") as work:
        config = os.path.join(work, "config.json")
        with open(config, "w") as f:
            json.dump({"profiles": {"echo": {"mode": "pool", "argv": [worker],
                                             "pool": {"min": 2, "max": 2}}},
                       "limits": {"queueSize": 100_000}}, f)
        arguments = {"waiting": {"argv": ["true"], "delaySec": 3600, "tags": ["load"]},
                     "process": {"argv": ["true"]},
                     "pool": {"profile": "echo", "input": {"echo": "x"}}}[opts.kind]
        proc, host, port, token = start_http_server(
            opts.binary, os.path.join(work, "state"), ["--config", config])
        try:
            endpoint = (host, port, token)
            rss = [(0, rss_kib(proc.pid))]
            start_at = time.monotonic() + 0.5  # every client connected before the clock starts
            stop_at = start_at + seconds
            clients = [Client(endpoint, arguments, opts.rate / opts.clients, start_at, stop_at)
                       for _ in range(opts.clients)]
            for c in clients:
                c.start()
            canceller = Canceller(endpoint, stop_at) if opts.kind == "waiting" else None
            next_sample = start_at + opts.sample_sec
            while any(c.is_alive() for c in clients):
                clients[0].join(timeout=max(0.0, min(next_sample, stop_at + 60) - time.monotonic()))
                if time.monotonic() >= next_sample and time.monotonic() < stop_at:
                    rss.append((round(time.monotonic() - start_at), rss_kib(proc.pid)))
                    print(f"{rss[-1][0]:>6} s  RSS {rss[-1][1]} KiB", flush=True)
                    next_sample += opts.sample_sec
                if not clients[0].is_alive():
                    for c in clients:
                        c.join()
            submit_end = time.monotonic()
            server_cpu = cpu_seconds(proc.pid)
            client_cpu = sum(os.times()[:2])
            rss.append((round(submit_end - start_at), rss_kib(proc.pid)))
            if canceller:
                canceller.join()
                errors_cancel = canceller.finish()
            o = wait_idle(endpoint, timeout=120 + seconds)
            rss.append(("idle", rss_kib(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            leftover = end_leftovers([os.path.join(work, "state")])

    latencies = sorted(x for c in clients for x in c.latencies)
    errors = [e for c in clients for e in c.errors]
    submitted = sum(len(c.ids) for c in clients)
    expected = "cancelled" if opts.kind == "waiting" else "completed"
    not_completed = {k: v for k, v in o["tasks"].items() if k != expected and v}
    if canceller:
        errors += errors_cancel
    ms = lambda q: round(latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000, 2) if latencies else 0
    figures = {
        "build": build_name(opts.binary),
        "seconds": round(seconds),
        "clients": opts.clients,
        "target rate/s": round(opts.rate),
        "achieved rate/s": round(submitted / (submit_end - start_at)),
        "submits": submitted,
        "errors": len(errors) + sum(not_completed.values()),
        "submit p50 ms": ms(0.5),
        "submit p99 ms": ms(0.99),
        "submit max ms": ms(1.0),
        "server CPU %": round(100 * server_cpu / (submit_end - start_at)),
        "client CPU %": round(100 * client_cpu / (submit_end - start_at)),
        "RSS start KiB": rss[0][1],
        "RSS end KiB": rss[-2][1],
        "RSS max KiB": max(r for _, r in rss),
        "processes left": leftover,
    }
    for key, value in figures.items():
        print(f"{key:>18}: {value}")
    print("RSS samples (s, KiB):", " ".join(f"{t}:{r}" for t, r in rss))
    for e in errors[:10]:
        print(f"  error: {e}")
    if not_completed:
        print(f"  tasks not completed: {not_completed}")
    command = (f"tests/reliability/submit_load.py --binary build/{build_name(opts.binary)}/app/mcp-orchestrator "
               f"{duration_flag(seconds)} --rate {opts.rate:g} --clients {opts.clients} --kind {opts.kind}")
    write_report(opts.report_id, f"Submit load over HTTP, {opts.clients} clients, {opts.kind} tasks, "
                 f"{duration_words(seconds)}", command, figures, opts.report_dir)
    return 1 if figures["errors"] or leftover else 0


if __name__ == "__main__":
    sys.exit(main())
