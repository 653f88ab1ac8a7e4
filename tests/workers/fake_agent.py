#!/usr/bin/env python3
"""A stand-in for an agent CLI (claude -p, codex exec, ...) in tests and benchmarks.

It behaves like one run of such a CLI: prints stream-JSON event lines, takes a
while, exits with a given code, and on request allocates memory or prints a lot.
With --pid-dir it leaves evidence of its own life, so a test can observe how
many ran at once from the processes themselves:
  <dir>/<pid>.alive   exists while it runs
  <dir>/<pid>.seen    how many .alive files it saw just after creating its own
"""
import argparse
import json
import os
import sys
import time


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-p", "--prompt", default="")
    p.add_argument("--output-format", default="stream-json")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds to take")
    p.add_argument("--exit", type=int, default=0, help="exit code")
    p.add_argument("--alloc-mb", type=int, default=0, help="allocate and touch this many MiB, then hold it")
    p.add_argument("--print-mb", type=int, default=0, help="print this many MiB of event lines")
    p.add_argument("--pid-dir", default="")
    p.add_argument("--check-stdin", action="store_true", help="report whether stdin is at EOF at once")
    args = p.parse_args()

    alive = None
    if args.pid_dir:
        alive = os.path.join(args.pid_dir, "%d.alive" % os.getpid())
        open(alive, "w").close()
        seen = sum(1 for n in os.listdir(args.pid_dir) if n.endswith(".alive"))
        with open(os.path.join(args.pid_dir, "%d.seen" % os.getpid()), "w") as f:
            f.write(str(seen))
    try:
        emit({"type": "system", "subtype": "init", "pid": os.getpid()})
        if args.check_stdin:
            # An agent CLI blocks for ever on a stdin nobody writes to; /dev/null reads EOF.
            emit({"type": "stdin", "eof": sys.stdin.read() == ""})
        if args.alloc_mb:
            held = []
            for _ in range(0, args.alloc_mb, 8):
                held.append(b"\x01" * (8 << 20))  # written, so resident
            emit({"type": "allocated", "mb": args.alloc_mb})
        if args.print_mb:
            line = json.dumps({"type": "assistant", "message": {"content": "x" * 1000}}) + "\n"
            data = line * ((1 << 20) // len(line) + 1)
            left = args.print_mb << 20
            while left > 0:
                chunk = data[:left]
                sys.stdout.write(chunk)
                left -= len(chunk)
            sys.stdout.flush()
        if args.sleep:
            time.sleep(args.sleep)
        emit({"type": "result", "subtype": "success" if args.exit == 0 else "error",
              "result": "done: " + args.prompt, "is_error": args.exit != 0})
    finally:
        if alive:
            os.unlink(alive)
    return args.exit


if __name__ == "__main__":
    sys.exit(main())
