#!/usr/bin/env python3
"""Several servers on one PostgreSQL store (docs/CLUSTER.md): throughput of
trivial tasks with 1, 2 and 3 servers, and add→start latency on an idle
cluster (the anchor: graphile-worker, 4.16 ms on average from add to start).
The same figures for one server on the embedded SQLite store come first, as
the reference measured in the same run.

  bench/cluster.py                 full run on the release build
  bench/cluster.py --quick         less work: checks that it runs, not its figures
  bench/cluster.py --build DIR     use DIR's binary (default build/release)
  bench/cluster.py --url URL       use this PostgreSQL instead of starting one
  bench/cluster.py --json FILE     also write the figures to FILE

Throughput: N `true` tasks submitted round-robin over the servers, each
server's submits pipelined on its own stdio connection, timed from the first
submit until every task is completed (read back with getStatus {taskIds}).
Latency: one `true` task at a time on an idle cluster, startedAt minus
submittedAt as the servers record them (millisecond resolution; both on this
machine's clock), submitted round-robin over the servers.

Each cluster size gets a database of its own, and each server its own state
directory, --node-name and --http 127.0.0.1:0. Without --url, a throwaway
PostgreSQL 15 is started with scripts/postgres (durability off, as in the
tests) and stopped at the end. Not part of bench/run: CI's quick run has no
PostgreSQL. Build first: scripts/build release."""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mcp_stdio import Server  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def iso_ms(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000


def quantile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


class Postgres:
    """The PostgreSQL the cluster shares: started here unless a URL is given."""

    def __init__(self, url, work):
        self.dir = None
        if url:
            self.url = url
            return
        self.dir = os.path.join(work, "postgres")
        self.url = subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "start", self.dir],
                                  check=True, capture_output=True, text=True).stdout.strip()

    def database(self, name):
        """A fresh database on the same server; its URL."""
        subprocess.run(["psql", "-q", self.url, "-c", f"DROP DATABASE IF EXISTS {name}",
                        "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self):
        if self.dir:
            subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "stop", self.dir], check=False)


class Cluster:
    def __init__(self, binary, work, store, size, args):
        self.servers = []
        config = os.path.join(work, "cluster.json")
        with open(config, "w") as f:
            # Retention above the run's task count: an evicted task could not be
            # told from a lost one.
            json.dump({"cluster": {"leaseMs": args.lease_ms, "heartbeatMs": args.heartbeat_ms},
                       "retention": {"count": 10 * (args.tasks_total + args.samples_total)}}, f)
        try:
            for i in range(size):
                state = os.path.join(work, f"node-{i}")
                os.makedirs(state, exist_ok=True)
                where = ["--store", store, "--node-name", f"node-{i}"] if store else []
                server = Server(binary, ["--state-dir", state, *where, "--config", config,
                                         "--http", "127.0.0.1:0", "--stdio",
                                         "--max-concurrent", str(args.max_concurrent)])
                self.servers.append(server)
                server.initialize()
            self.wait_joined()
        except BaseException:
            self.close()
            raise

    def wait_joined(self, timeout=30):
        """Until every server sees all of them alive."""
        deadline = time.monotonic() + timeout
        for s in self.servers:
            while True:
                o = s.call("getStatus", {})["orchestrator"]
                nodes = o.get("nodes", [])
                if len(self.servers) == 1 or sum(1 for n in nodes if n.get("alive")) >= len(self.servers):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the nodes did not all join: {nodes}")
                time.sleep(0.05)

    def close(self):
        for s in self.servers:
            s.close()


def submit_all(server, count):
    """Pipelined submits on one connection; the task ids."""
    sent = [server.send("tools/call", {"name": "submitTask", "arguments": {"command": "true"}})
            for _ in range(count)]
    ids = []
    for s in sent:
        result = server.reply(s)
        if result.get("isError"):
            raise RuntimeError(result["content"][0]["text"])
        ids.append(result["structuredContent"]["taskId"])
    return ids


def wait_completed(server, ids, timeout=600):
    """Polls getStatus {taskIds} (100 at a time) until every task has ended."""
    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending:
        still = []
        for i in range(0, len(pending), 100):
            out = server.call("getStatus", {"taskIds": pending[i:i + 100]})
            if out.get("unknown"):
                raise RuntimeError(f"tasks unknown to the cluster: {out['unknown'][:5]}")
            for t in out["tasks"]:
                if t["status"] in ("failed", "cancelled"):
                    raise RuntimeError(f"task {t['taskId']} ended {t['status']}: {t.get('message', '')}")
                if t["status"] != "completed":
                    still.append(t["taskId"])
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} tasks did not complete in {timeout} s")
            time.sleep(0.02)


def throughput(cluster, count):
    """Tasks per second from the first submit to the last completion."""
    per = [count // len(cluster.servers) + (1 if i < count % len(cluster.servers) else 0)
           for i in range(len(cluster.servers))]
    ids = [None] * len(cluster.servers)
    errors = []

    def submit(i):
        try:
            ids[i] = submit_all(cluster.servers[i], per[i])
        except Exception as e:  # reported below, on the main thread
            errors.append(e)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(cluster.servers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    submitted = time.perf_counter() - t0
    wait_completed(cluster.servers[0], [i for part in ids for i in part])
    elapsed = time.perf_counter() - t0
    return count / elapsed, submitted


def add_to_start(cluster, samples):
    """startedAt − submittedAt of one task at a time, ms: (p50, p99, mean)."""
    values = []
    for k in range(samples):
        server = cluster.servers[k % len(cluster.servers)]
        task_id = server.call("submitTask", {"command": "true"})["taskId"]
        while True:
            r = server.call("getResult", {"taskId": task_id, "waitSec": 10, "maxBytes": 1})
            if r["status"] in ("completed", "failed", "cancelled"):
                break
        if r["status"] != "completed":
            raise RuntimeError(f"latency task {task_id} ended {r['status']}")
        task = server.call("getStatus", {"taskId": task_id})["task"]
        values.append(iso_ms(task["startedAt"]) - iso_ms(task["submittedAt"]))
    values.sort()
    return quantile(values, 0.5), quantile(values, 0.99), sum(values) / len(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--url", help="a PostgreSQL server URL (default: start one)")
    ap.add_argument("--sizes", default="1,2,3", help="cluster sizes, comma-separated")
    ap.add_argument("--tasks", type=int, help="tasks per throughput run (default 2000, quick 100)")
    ap.add_argument("--samples", type=int, help="latency samples per size (default 300, quick 20)")
    ap.add_argument("--max-concurrent", type=int, default=8, help="per server")
    ap.add_argument("--lease-ms", type=int, default=30000)
    ap.add_argument("--heartbeat-ms", type=int, default=5000)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    tasks = args.tasks or (100 if args.quick else 2000)
    samples = args.samples or (20 if args.quick else 300)
    args.tasks_total, args.samples_total = tasks, samples
    binary = os.path.join(args.build, "app", "mcp-orchestrator")
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench/cluster.py: {binary} is missing; build first (scripts/build release)")

    rows = []
    with tempfile.TemporaryDirectory(prefix="orch-bench-cluster-") as work:
        # mkdtemp makes it 0700: as root, the PostgreSQL started inside runs as
        # the postgres user, who must be able to enter it.
        os.chmod(work, 0o755)
        pg = Postgres(args.url, work)
        try:
            # The reference, side by side: one server on its embedded SQLite store.
            runs = [(1, None)] + [(int(s), "postgresql") for s in args.sizes.split(",")]
            for size, kind in runs:
                store = pg.database(f"orch_bench_{size}") if kind else None
                node_work = os.path.join(work, f"size-{size}-{kind or 'sqlite'}")
                os.makedirs(node_work)
                cluster = Cluster(binary, node_work, store, size, args)
                try:
                    rate, submitted = throughput(cluster, tasks)
                    p50, p99, mean = add_to_start(cluster, samples)
                finally:
                    cluster.close()
                row = {"servers": size, "store": kind or "sqlite", "tasks": tasks, "tasksPerSec": round(rate, 1),
                       "submitSec": round(submitted, 3), "addToStartMs": {
                           "p50": round(p50, 1), "p99": round(p99, 1), "mean": round(mean, 2),
                           "samples": samples}}
                rows.append(row)
                print(f"{size} server(s), {kind or 'sqlite':10}: {rate:7.1f} tasks/s ({tasks} `true` tasks, submits took "
                      f"{submitted:.2f} s) | add→start p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                      f"mean {mean:.2f} ms ({samples} samples)", flush=True)
        finally:
            pg.stop()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"maxConcurrentPerServer": args.max_concurrent, "heartbeatMs": args.heartbeat_ms,
                       "leaseMs": args.lease_ms, "runs": rows}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
