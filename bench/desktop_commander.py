"""Desktop Commander (npm @wonderwhy-er/desktop-commander, pinned in
bench/peers/package.json), the most used Node MCP server for running
commands, driven over stdio as the peer the benchmarks set beside ours.

It runs with a throwaway HOME holding a pre-seeded config (telemetry off,
onboarding off, no blocked commands), its feature-flag fetch pointed at a
closed loopback port, and nothing but loopback reachable from the figures it
is asked for. Install: `npm ci --ignore-scripts` in bench/peers (bench/run
does it)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from mcp_stdio import Server

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
ENTRY = os.path.join(PEERS, "node_modules", "@wonderwhy-er", "desktop-commander", "dist", "index.js")


def install():
    """`npm ci` in bench/peers unless it is already installed from this lock."""
    stamp = os.path.join(PEERS, "node_modules", ".bench-lock")
    with open(os.path.join(PEERS, "package-lock.json"), "rb") as f:
        lock = f.read()
    if os.path.exists(ENTRY) and os.path.exists(stamp) and open(stamp, "rb").read() == lock:
        return
    # No install scripts: DC's postinstall only reports the install and fetches
    # ripgrep, which the benchmarks do not use.
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
                    "--fetch-retries=1", "--fetch-timeout=60000"],
                   cwd=PEERS, check=True, stdin=subprocess.DEVNULL, timeout=900,
                   env=dict(os.environ, CI="true"))
    with open(stamp, "wb") as f:
        f.write(lock)


def path_without_pyenv():
    """PATH minus pyenv's shim directories: DC runs `python3 --version` on
    every call, and a pyenv shim makes that a slow shell script."""
    keep = [p for p in os.environ.get("PATH", "").split(":") if ".pyenv" not in p]
    return ":".join(keep)


class DesktopCommander(Server):
    def __init__(self, workdir, path=None):
        self.home = tempfile.mkdtemp(prefix="dc-home-")
        config_dir = os.path.join(self.home, ".claude-server-commander")
        os.makedirs(config_dir)
        with open(os.path.join(config_dir, "config.json"), "w") as f:
            json.dump({"telemetryEnabled": False, "pendingWelcomeOnboarding": False,
                       "defaultShell": "/bin/bash", "allowedDirectories": [workdir]}, f)
        env = dict(os.environ, HOME=self.home, DESKTOP_COMMANDER_DISABLE_TELEMETRY="1",
                   DC_FLAG_URL="http://127.0.0.1:9/flags.json")
        if path is not None:
            env["PATH"] = path
        super().__init__("node", [ENTRY, "--no-onboarding"], env=env)

    def initialize(self):
        result = self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                             "clientInfo": {"name": "bench", "version": "1"}})
        self.notify("notifications/initialized")
        return result

    def text(self, tool, arguments, timeout=600):
        """A tool call's text content (DC returns no structuredContent)."""
        result = self.request("tools/call", {"name": tool, "arguments": arguments}, timeout)
        text = "".join(c.get("text", "") for c in result.get("content", []))
        if result.get("isError"):
            raise RuntimeError(f"{tool}: {text[:300]}")
        return text

    def start(self, command):
        """start_process; returns the pid DC reports."""
        text = self.text("start_process", {"command": command, "timeout_ms": 100})
        match = re.search(r"PID (\d+)", text)
        if not match:
            raise RuntimeError(f"start_process: no PID in {text[:200]!r}")
        return int(match.group(1))

    def finished_lines(self, pid, timeout=600):
        """Waits until the process has completed; returns (lines retained,
        lines evicted) as DC reports them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text("read_process_output", {"pid": pid, "offset": -1, "length": 1})
            if "Process completed" in text:
                total = int(re.search(r"total: (\d+) lines", text).group(1))
                evicted = re.search(r"the (\d+) earliest lines were evicted", text)
                return total, int(evicted.group(1)) if evicted else 0
            time.sleep(0.1)  # polling interval of a benchmark client
        raise TimeoutError(f"DC process {pid} did not complete")

    def close(self, timeout=30):
        code = super().close(timeout)
        shutil.rmtree(self.home, ignore_errors=True)
        return code
