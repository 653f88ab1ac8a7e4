"""Processes a reliability run left behind: anything whose command line
names one of the run's paths (the state dir: servers and task keepers; a
file the tasks write: task commands)."""
import os
import signal
import time


def processes_naming(paths):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # it ended while we looked
        if state != "Z" and any(p.encode() in cmdline for p in paths):
            found.append(int(entry))
    return found


def end_leftovers(paths, grace=15):
    """Waits up to `grace` seconds for processes naming one of `paths` to end
    on their own (keepers of tasks a killed server left running), then
    SIGKILLs their process groups (never our own). Returns how many were
    still alive at the deadline."""
    deadline = time.monotonic() + grace
    while processes_naming(paths) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc with a deadline
    left = processes_naming(paths)
    for pid in left:
        try:
            group = os.getpgid(pid)
            if group == os.getpgrp():
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # gone meanwhile
    return len(left)
