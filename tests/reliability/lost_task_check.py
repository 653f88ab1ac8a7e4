#!/usr/bin/env python3
"""Lost-task checker in the spirit of Jepsen's total-queue (docs/RELIABILITY.md).

Starts the real server (stdio and HTTP on 127.0.0.1, state in a temp dir) and
submits a stream of uniquely named tasks from two clients at once, one over
stdio and one over HTTP. Each task appends its name to one file when it runs.
Meanwhile the main thread SIGKILLs the server every few seconds and starts it
again on the same state dir; the clients reconnect and resubmit what was not
acknowledged with the same idempotencyKey. At the end it drains (waits for
every acknowledged task to reach a final state) and checks the history:

  lost        acknowledged, but never ran, or never reached a final state
  duplicated  ran more often than its policy allows (no retry: once; with a
              retry policy: at most its attempt count, which a crash raises)
  retried     ran more than once where an at-least-once retry after a crash
              allows it (counted, not a failure)
  unexpected  ran but was never submitted, a final status that contradicts
              what ran (completed without running, failed although it ran
              and its end is known), or one idempotencyKey acknowledged
              with two task ids

The recovery policy (docs/RECOVERY.md): a task still running at the crash is
adopted by its keeper and followed to its true end; one whose end cannot be
known ends `failed`/`lost` and is retried per its retry policy. Half the tasks
carry a retry policy, half do not.

With --nodes N --store postgresql://… it runs N servers on one PostgreSQL
store (docs/CLUSTER.md): the stdio client submits to the first, the HTTP
client to the second, and each kill takes a node at random and starts it
again on its state dir (so under the same node name). A node's death gives
its running tasks to the others, one attempt more than their policy: that
many runs are counted as retried, not duplicated.

Exits 1 when lost, duplicated or unexpected is not 0, when a client saw an
error from a server that was not being killed, or when a process is left.
Usage: lost_task_check.py --binary PATH [--seconds N | --minutes N]
                          [--rate PER_CLIENT_PER_S] [--report-id ID]
                          [--nodes N --store URL]"""
import collections
import contextlib
import http.client
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))
from http_latency import HttpSession, http_endpoint  # noqa: E402
from mcp_stdio import Server  # noqa: E402
from report_file import build_name, duration_flag, duration_words, write_report  # noqa: E402
from leftovers import end_leftovers  # noqa: E402
import script_args  # noqa: E402

FINAL = ("completed", "failed", "cancelled")
# Transport failures a client sees when the server dies under it.
CONNECTION_ERRORS = (ConnectionError, OSError, http.client.HTTPException)


class Generation:
    """One server process: its stdio client and its HTTP endpoint."""

    def __init__(self, number, server, host, port, token):
        self.number = number
        self.server = server
        self.host, self.port, self.token = host, port, token
        self.killed = False  # set before the SIGKILL: errors after it are expected


class RunAborted(Exception):
    """The run ended early (an error in the main thread): clients stop."""


class Cluster:
    """One server across its kills and restarts; thread-safe. (With --nodes,
    one of several such servers on one store.)"""

    def __init__(self, binary, work, store=None, name="state"):
        self.binary = binary
        self.state = os.path.join(work, name)
        self.config = os.path.join(work, "config.json")
        self.store = store
        # Keep every task for the drain, and room to queue what the kills hold up.
        config = {"retention": {"count": 10_000_000, "maxAgeHours": 240}, "limits": {"queueSize": 100_000}}
        if store:
            # Short leases: a killed node's tasks go to the others within seconds.
            config["cluster"] = {"leaseMs": 2000, "heartbeatMs": 250}
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.log = open(os.path.join(work, "server.log"), "ab")
        self.cond = threading.Condition()
        self.gen = None
        self.aborted = False
        self.starts = 0
        self.kills = 0
        self.restart_ms = []

    def start(self):
        endpoint = os.path.join(self.state, "http.json")
        if os.path.exists(endpoint):
            os.remove(endpoint)  # the killed server's; the new one writes its own
        t = time.monotonic()
        store = ["--store", self.store] if self.store else []
        server = Server(self.binary, ["--stdio", "--http", "127.0.0.1:0", "--state-dir", self.state,
                                      "--config", self.config] + store, stderr=self.log)
        host, port, token = http_endpoint(server.proc, self.state, timeout=30)
        server.initialize()
        with self.cond:
            self.starts += 1
            self.restart_ms.append((time.monotonic() - t) * 1000)
            self.gen = Generation(self.starts, server, host, port, token)
            self.cond.notify_all()

    def kill(self):
        with self.cond:
            gen, self.gen = self.gen, None
            gen.killed = True
        gen.server.proc.send_signal(signal.SIGKILL)
        gen.server.proc.wait()
        try:
            gen.server.proc.stdin.close()
        except OSError:
            pass  # a write cut short by the kill left bytes that cannot be flushed
        self.kills += 1

    def abort(self):
        """Ends the run: every client waiting for a server gives up."""
        with self.cond:
            self.aborted = True
            self.cond.notify_all()

    def stop(self):
        with self.cond:
            gen, self.gen = self.gen, None
        gen.server.close(timeout=60)

    def current(self, newer_than=0, timeout=60):
        """The running generation, waiting for one newer than `newer_than`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.gen is None or self.gen.number <= newer_than:
                if self.aborted:
                    raise RunAborted()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no server came back")
                self.cond.wait(left)
            return self.gen


class History:
    """What the clients attempted and what the server acknowledged; thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = set()
        self.acked = {}       # name -> task id
        self.retry = {}       # name -> maxAttempts of its policy
        self.transport = {}   # name -> "stdio" | "http"
        self.conflicts = []   # (name, first id, second id): one key, two tasks
        self.refused = []     # (name, message): a tool error, honestly refused
        self.live_errors = []  # transport errors while the server was alive

    def ack(self, name, task_id):
        with self.lock:
            first = self.acked.setdefault(name, task_id)
            if first != task_id:
                self.conflicts.append((name, first, task_id))


def task_arguments(name, ran_file, transport, index, task_ms=0):
    line = f"echo {name} >> {ran_file}"
    if task_ms:
        line += f"; sleep {task_ms / 1000:g}"  # ran, and still running when a kill comes
    args = {"name": name, "idempotencyKey": name}
    if transport == "stdio":
        args["command"] = line
    else:
        args["argv"] = ["/bin/sh", "-c", line]
    if index % 2 == 0:
        args["retry"] = {"maxAttempts": 3, "backoff": "fixed", "delayMs": 0}
    return args


class StdioClient:
    def __init__(self, gen):
        self.gen = gen

    def submit(self, args):
        return self.gen.server.call("submitTask", args, timeout=30)


class HttpClient:
    def __init__(self, gen):
        self.gen = gen
        self.session = HttpSession(gen.host, gen.port, gen.token)

    def submit(self, args):
        result = self.session.request("tools/call", {"name": "submitTask", "arguments": args})
        if result.get("isError"):
            raise RuntimeError(f"submitTask: {result['content'][0]['text']}")
        return result["structuredContent"]


def submitter(transport, cluster, history, ran_file, rate, stop_at, task_ms):
    """Submits `rate` tasks a second until stop_at, each until acknowledged
    (or refused), reconnecting to each new server generation."""
    make = StdioClient if transport == "stdio" else HttpClient
    gen = client = None
    dead = 0  # the generation whose death the client saw last
    prefix = transport[0]
    t0 = time.monotonic()
    index = 0
    while time.monotonic() < stop_at:
        name = f"{prefix}{index:07d}"
        args = task_arguments(name, ran_file, transport, index, task_ms)
        with history.lock:
            history.attempted.add(name)
            history.retry[name] = args.get("retry", {}).get("maxAttempts", 1)
            history.transport[name] = transport
        while True:
            try:
                if client is None:
                    gen = cluster.current(newer_than=dead)
                    client = make(gen)
                history.ack(name, client.submit(args)["taskId"])
                break
            except RuntimeError as e:
                if client is not None and str(e).startswith("submitTask:"):
                    with history.lock:
                        history.refused.append((name, str(e)))
                    break
                error = e  # a JSON-RPC error or an HTTP status
            except CONNECTION_ERRORS + (TimeoutError, queue.Empty) as e:
                error = e
            client = None
            if gen is not None and gen.killed:
                dead = gen.number
            else:
                with history.lock:
                    history.live_errors.append(f"{transport} {name}: {error!r}")
                time.sleep(0.1)  # back-off before asking the same server again
        index += 1
        pause = t0 + index / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # pacing the stream, not synchronisation


def run_submitter(*args):
    try:
        submitter(*args)
    except RunAborted:
        pass  # the main thread failed and says why


def drain(cluster, ids, timeout):
    """Final task objects by id once all are final, or when time runs out."""
    server = cluster.current().server
    final = {}
    pending = list(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        still = []
        for i in range(0, len(pending), 100):
            batch = pending[i:i + 100]
            tasks = server.call("getStatus", {"taskIds": batch}, timeout=60)["tasks"]
            for task in tasks:
                if task.get("status") in FINAL:
                    final[task["taskId"]] = task
                else:
                    still.append(task["taskId"])
            known = {t["taskId"] for t in tasks}
            still.extend(t for t in batch if t not in known)
        pending = still
        if pending:
            time.sleep(0.2)  # polling interval while the queue drains
    for task_id in pending:
        final.setdefault(task_id, None)
    return final


def check(history, final, runs, clustered=False):
    verdict = collections.Counter()
    examples = collections.defaultdict(list)

    def note(kind, text):
        verdict[kind] += 1
        if len(examples[kind]) < 5:
            examples[kind].append(text)

    for name, task_id in history.acked.items():
        task = final.get(task_id)
        ran = runs.get(name, 0)
        if task is None:
            note("lost", f"{name} {task_id}: never reached a final state")
            continue
        status, reason, attempt = task["status"], task.get("reason", ""), task.get("attempt", 1)
        if reason == "lost":
            verdict["ended_lost"] += 1
        if ran == 0:
            kind = "unexpected" if status == "completed" else "lost"
            note(kind, f"{name} {task_id}: {status}/{reason} but never ran")
        elif status != "completed" and reason != "lost":
            note("unexpected", f"{name} {task_id}: ran, yet {status}/{reason}")
        if ran > 1:
            # A node's death gives its running task one attempt more (docs/CLUSTER.md).
            allowed = history.retry[name] + (1 if clustered else 0)
            if ran <= min(attempt, allowed):
                note("retried", f"{name} {task_id}: ran {ran}x in {attempt} attempts")
            else:
                note("duplicated", f"{name} {task_id}: ran {ran}x, attempt {attempt}, "
                                   f"maxAttempts {history.retry[name]}")
    for name, first, second in history.conflicts:
        note("unexpected", f"{name}: one idempotencyKey acknowledged as {first} and {second}")
    for name in runs:
        if name not in history.attempted:
            note("unexpected", f"{name}: ran but was never submitted")
        elif name not in history.acked:
            note("recovered", f"{name}: ran, acknowledgement lost in a crash")
    return verdict, examples


def statistics_median(values):
    return sorted(values)[len(values) // 2] if values else 0


def read_runs(ran_file):
    runs = collections.Counter()
    if os.path.exists(ran_file):
        with open(ran_file) as f:
            for line in f:
                runs[line.strip()] += 1
    return runs


def main():
    parser = script_args.parser(__doc__, 60, "lost-task")
    parser.add_argument("--rate", type=float, default=20, help="submits per second per client")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(2, 5), metavar=("MIN", "MAX"),
                        help="seconds between kills, drawn uniformly")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (state, server.log) and keep it")
    parser.add_argument("--task-ms", type=int, default=0,
                        help="each task sleeps this long after it recorded its run")
    parser.add_argument("--nodes", type=int, default=1, help="servers on one store (needs --store)")
    parser.add_argument("--store", help="a postgresql:// URL the nodes share (an empty database), or "
                        "\"fresh\": a new database on the server ORCH_TEST_POSTGRES_URL names, dropped at the end "
                        "(exit 77, skipped, when it is unset)")
    opts = parser.parse_args()
    if opts.nodes > 1 and not opts.store:
        parser.error("--nodes needs --store postgresql://…")
    fresh = None
    if opts.store == "fresh":
        server_url = os.environ.get("ORCH_TEST_POSTGRES_URL")
        if not server_url:
            print("skipped: ORCH_TEST_POSTGRES_URL is unset (scripts/postgres start DIR prints one)")
            return 77
        fresh = f"lost_task_{os.getpid()}_{random.randrange(1 << 30)}"
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", server_url, "-c", f"CREATE DATABASE {fresh}"], check=True)
        opts.store = server_url.rsplit("/", 1)[0] + "/" + fresh
        opts.store_shown = "fresh"
    try:
        return run(opts)
    finally:
        if fresh:
            subprocess.run(["psql", "-q", server_url, "-c", f"DROP DATABASE IF EXISTS {fresh} WITH (FORCE)"], check=False)


def run(opts):
    seconds = script_args.run_seconds(opts)
    seed = opts.seed if opts.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)

    with (contextlib.nullcontext(opts.keep) if opts.keep else tempfile.TemporaryDirectory(prefix="lost-task-")) as work:
        os.makedirs(work, exist_ok=True)
        ran_file = os.path.join(work, "ran")
        nodes = [Cluster(opts.binary, work, opts.store, f"node{i}") if opts.store else Cluster(opts.binary, work)
                 for i in range(max(1, opts.nodes))]
        cluster = nodes[0]
        history = History()
        for node in nodes:
            node.start()
        t0 = time.monotonic()
        stop_at = t0 + seconds
        threads = [threading.Thread(target=run_submitter,
                                    args=(t, nodes[i % len(nodes)], history, ran_file, opts.rate, stop_at, opts.task_ms))
                   for i, t in enumerate(("stdio", "http"))]
        for t in threads:
            t.start()
        try:
            while True:
                pause = rng.uniform(*opts.kill_every)
                if time.monotonic() + pause >= stop_at:
                    break
                time.sleep(pause)  # the fault schedule
                victim = rng.choice(nodes)
                victim.kill()
                victim.start()
            for t in threads:
                t.join()
            ids = sorted(set(history.acked.values()))
            final = drain(cluster, ids, timeout=120 + len(ids) / 50)
            for node in nodes:
                node.stop()
        finally:
            for node in nodes:
                node.abort()
            for t in threads:
                t.join()
            for node in nodes:
                if node.gen is not None:
                    node.kill()
            leftover = end_leftovers([node.state for node in nodes] + [ran_file])
        runs = read_runs(ran_file)
        elapsed = time.monotonic() - t0
        with open(os.path.join(work, "server.log"), "rb") as f:
            log_tail = f.read()[-4000:].decode(errors="replace")

    verdict, examples = check(history, final, runs, clustered=bool(opts.store))
    figures = {
        "build": build_name(opts.binary),
        "seconds": round(elapsed),
        "nodes": len(nodes),
        "kills survived": sum(node.kills for node in nodes),
        "tasks submitted": len(history.attempted),
        "tasks checked": len(history.acked),
        "over stdio": sum(1 for n in history.acked if history.transport[n] == "stdio"),
        "over HTTP": sum(1 for n in history.acked if history.transport[n] == "http"),
        "lost": verdict["lost"],
        "duplicated": verdict["duplicated"],
        "unexpected": verdict["unexpected"],
        "retried after a crash": verdict["retried"],
        "ended lost (end unknown)": verdict["ended_lost"],
        "refused": len(history.refused),
        "errors while up": len(history.live_errors),
        "processes left": leftover,
        "restart p50 ms": round(statistics_median([ms for node in nodes for ms in node.restart_ms])),
    }
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    for kind, texts in examples.items():
        for text in texts:
            print(f"  {kind}: {text}")
    for text in history.refused[:5] + history.live_errors[:5]:
        print(f"  note: {text}")
    command = (f"tests/reliability/lost_task_check.py --binary build/{build_name(opts.binary)}/app/mcp-orchestrator "
               f"{duration_flag(seconds)} --rate {opts.rate:g} --kill-every {opts.kill_every[0]:g} {opts.kill_every[1]:g}")
    title = (f"Lost-task check, {duration_words(seconds)} of SIGKILLs every "
             f"{opts.kill_every[0]:g}-{opts.kill_every[1]:g} s")
    if opts.task_ms:
        command += f" --task-ms {opts.task_ms}"
        title += f", tasks of {opts.task_ms} ms"
    if opts.store:
        command += f" --nodes {len(nodes)} --store {getattr(opts, 'store_shown', 'postgresql://…')}"
        title += f", {len(nodes)} servers on one PostgreSQL"
    write_report(opts.report_id, title, command, figures, opts.report_dir)
    failed = (verdict["lost"] or verdict["duplicated"] or verdict["unexpected"] or leftover
              or history.live_errors)
    if failed:
        print(f"FAILED (seed {seed}); server log tail:\n{log_tail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
