"""One reliability result as build/reliability/<id>.json, the shape
scripts/reliability-report turns into docs/RELIABILITY.md:
{"id", "test", "command", "figures": {name: number or string}, "machine", "date"}."""
import datetime
import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = os.path.join(REPO, "build", "reliability")


def machine():
    """"<nproc> vCPU, <MemTotal GiB> GiB, <OS pretty name>" of this machine."""
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    pretty = "Linux"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    pretty = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass  # no os-release: the kernel's name is all we know
    return f"{os.cpu_count()} vCPU, {mem_kib / 1024 / 1024:.1f} GiB, {pretty}"


def build_name(binary):
    """The preset a binary was built with: build/<preset>/app/mcp-orchestrator."""
    return os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(binary))))


def duration_flag(seconds):
    """The scripts' own flag for a run this long: --minutes N or --seconds N."""
    return f"--minutes {seconds / 60:g}" if seconds >= 60 and seconds % 60 == 0 else f"--seconds {seconds:g}"


def duration_words(seconds):
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def write_report(report_id, test, command, figures, directory=None):
    directory = directory or DEFAULT_DIR
    os.makedirs(directory, exist_ok=True)
    report = {"id": report_id, "test": test, "command": command, "figures": figures,
              "machine": machine(), "date": datetime.date.today().isoformat()}
    path = os.path.join(directory, f"{report_id}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
