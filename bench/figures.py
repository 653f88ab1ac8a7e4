"""The measurements bench/run sets side by side: each function drives the real
binary (or the peer, or the raw-limit program) and returns plain numbers.
Sizes come from the caller, so --quick runs the same code on less work."""
import json
import os
import subprocess
import tempfile
import time

from desktop_commander import DesktopCommander
from http_latency import HttpSession, ping_under_long_polls, start_http_server
from mcp_stdio import Server, percentiles, wait_idle

MIB = 1 << 20


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def vm_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


# --- start-up and idle memory ----------------------------------------------

def startup(make_server, runs):
    """Median ms from spawn to the initialize answer, and the idle VmRSS (KiB)
    one second after it (a settle time, so lazy start-up work is counted)."""
    times, rss = [], []
    for i in range(runs):
        t0 = time.perf_counter()
        server = make_server()
        server.initialize()
        times.append((time.perf_counter() - t0) * 1e3)
        if i == 0:
            time.sleep(1.0)
            rss.append(vm_kib(server.proc.pid, "VmRSS"))
        server.close()
    return {"ms": median(times), "rss_kib": rss[0]}


# --- round trips -------------------------------------------------------------

def stdio_round_trips(client, binary, state, method, n):
    """p50/p99 µs of `method` over stdio from bench/stdio_round_trip, a C++
    client that costs next to nothing (a Python client adds ≈40 µs a call)."""
    out = subprocess.run([client, str(n), method, "--", binary, "--state-dir", state], check=True,
                         capture_output=True, text=True).stdout
    figures = json.loads(out)
    return figures["p50_us"], figures["p99_us"]


def dc_call_latency(workdir, n, path=None):
    """DC's cheapest call (list_sessions), p50/p99 in µs."""
    dc = DesktopCommander(workdir, path)
    dc.initialize()
    figures = percentiles(lambda: dc.text("list_sessions", {}), n)
    dc.close()
    return figures


# --- trivial tasks against the raw spawn rate --------------------------------

def raw_spawn_rate(raw_limit, count, concurrency, mode="spawn"):
    """Tasks per second of bench/raw_limit: "spawn" is `sh -c true` alone,
    "kept" the same behind a forked supervising process per task."""
    out = subprocess.run([raw_limit, mode, str(count), str(concurrency)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["per_second"]


def raw_pipe(raw_limit, count):
    out = subprocess.run([raw_limit, "pipe", str(count)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def trivial_task_rate(binary, state, count, concurrency):
    """`sh -c true` tasks per second, from the first submit to the last task
    completed. Submits are pipelined (one client, not waiting between them),
    so the figure is the server's, not the client's round trips."""
    server = Server(binary, ["--state-dir", state, "--max-concurrent", str(concurrency)])
    server.initialize()
    t0 = time.perf_counter()
    sent = [server.send("tools/call", {"name": "submitTask", "arguments": {"command": "true"}})
            for _ in range(count)]
    for s in sent:
        result = server.reply(s)
        if result.get("isError"):
            raise RuntimeError(result["content"][0]["text"])
    # Counts by status cover only the tasks retention keeps, so wait for an
    # idle engine instead of counting completions.
    counts = wait_idle(server)["tasks"]
    elapsed = time.perf_counter() - t0
    server.close()
    if counts.get("failed", 0) or counts.get("cancelled", 0):
        raise RuntimeError(f"trivial tasks did not all complete: {counts}")
    return count / elapsed


# --- output floods -------------------------------------------------------------

def flood_command(mib):
    """Prints exactly `mib` MiB as 1 KiB lines (so line-based peers can page it)."""
    return f"yes \"$(printf '%01023d' 0)\" | head -n {mib * 1024}"


def ours_flood(binary, state, tasks, mib):
    server = Server(binary, ["--state-dir", state, "--max-concurrent", str(tasks)])
    server.initialize()
    ids = [server.call("submitTask", {"command": flood_command(mib)})["taskId"] for _ in range(tasks)]
    deadline = time.monotonic() + 600
    results = {}
    while len(results) < tasks and time.monotonic() < deadline:
        for task_id in ids:
            if task_id not in results:
                r = server.call("getResult", {"taskId": task_id, "stream": "stdout", "maxBytes": 1})
                if r["status"] not in ("queued", "waiting", "running"):
                    results[task_id] = r
        time.sleep(0.05)  # polling interval of a benchmark client
    hwm = vm_kib(server.proc.pid, "VmHWM")
    server.close()
    exact = sum(1 for r in results.values()
                if r["status"] == "completed" and r["stdout"]["totalBytes"] == mib * MIB)
    return {"hwm_kib": hwm, "exact": exact, "tasks": tasks}


def dc_flood(workdir, tasks, mib):
    dc = DesktopCommander(workdir)
    dc.initialize()
    pids = [dc.start(flood_command(mib)) for _ in range(tasks)]
    kept = [dc.finished_lines(pid) for pid in pids]
    hwm = vm_kib(dc.proc.pid, "VmHWM")
    dc.close()
    want = mib * 1024
    # DC counts the empty string after the last newline as a line.
    whole = sum(1 for total, evicted in kept if total + evicted >= want and evicted == 0)
    lost_kib = sum(max(0, want - total) for total, _ in kept)
    return {"hwm_kib": hwm, "exact": whole, "tasks": tasks, "lost_kib": lost_kib}


# --- paging through output ------------------------------------------------------

def page_through(binary, state, runs):
    """ms to read a finished task's 1 MiB of stdout: in one 1 MiB window, and
    in getResult's default 16 KiB windows (64 calls)."""
    server = Server(binary, ["--state-dir", state])
    server.initialize()
    task_id = server.call("submitTask", {"command": flood_command(1)})["taskId"]
    server.call("getResult", {"taskId": task_id, "waitSec": 30, "maxBytes": 1})

    def read_all(window):
        offset, got = 0, 0
        while True:
            r = server.call("getResult", {"taskId": task_id, "stream": "stdout",
                                          "offset": offset, "maxBytes": window})
            got += r["stdout"]["nextOffset"] - r["stdout"]["offset"]
            offset = r["stdout"]["nextOffset"]
            if offset >= r["stdout"]["totalBytes"]:
                break
        if got != MIB:
            raise RuntimeError(f"page-through returned {got} bytes, not {MIB}")

    def timed(window):
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            read_all(window)
            samples.append((time.perf_counter() - t0) * 1e3)
        return median(samples)

    figures = {"one_window_ms": timed(MIB), "default_windows_ms": timed(16384)}
    server.close()
    return figures


# --- retention soak ---------------------------------------------------------------

def soak(binary, work, total, batch=500):
    """RSS (KiB) after the first tenth of `total` trivial tasks and at the end,
    with retention.count 1000."""
    config = os.path.join(work, "soak-config.json")
    with open(config, "w") as f:
        f.write('{"retention": {"count": 1000}}')
    server = Server(binary, ["--state-dir", os.path.join(work, "soak"), "--config", config,
                             "--max-concurrent", "8"])
    server.initialize()
    warm, done = None, 0
    while done < total:
        n = min(batch, total - done)
        sent = [server.send("tools/call", {"name": "submitTask", "arguments": {"argv": ["true"]}})
                for _ in range(n)]
        for s in sent:
            server.reply(s)
        wait_idle(server)
        done += n
        if warm is None and done >= total // 10:
            warm = vm_kib(server.proc.pid, "VmRSS")
    end = vm_kib(server.proc.pid, "VmRSS")
    server.close()
    return {"warm_kib": warm, "end_kib": end, "tasks": total}


# --- HTTP under long-polls ----------------------------------------------------------

def http_ping_under_long_polls(binary, state, polls, n):
    proc, host, port, token = start_http_server(binary, state)
    try:
        return ping_under_long_polls(HttpSession(host, port, token), host, port, token, polls, n)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# --- Google Benchmark -----------------------------------------------------------------

def micro(binary, min_time):
    """{benchmark name: ns per iteration} from one Google Benchmark binary."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, f"--benchmark_min_time={min_time}", f"--benchmark_out={out.name}",
                        "--benchmark_out_format=json"], check=True, stdout=subprocess.DEVNULL)
        report = json.load(open(out.name))
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
    failed = [b["name"] for b in report["benchmarks"] if b.get("error_occurred")]
    if failed:
        raise RuntimeError(f"{binary}: {failed} reported an error")
    return {b["name"]: b["real_time"] * scale[b["time_unit"]] for b in report["benchmarks"]}


def new_state(work, name):
    path = os.path.join(work, name)
    os.makedirs(path, exist_ok=True)
    return path


def scratch():
    return tempfile.TemporaryDirectory(prefix="orch-bench-")
