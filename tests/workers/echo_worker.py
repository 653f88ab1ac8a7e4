#!/usr/bin/env python3
"""A pool worker speaking the JSON-lines protocol of SPEC §6, for tests and benchmarks.

Each request {"id": ..., "input": {...}} is answered with optional progress lines
and one result (or error) line. Input keys (all optional):
  echo       returned in the result
  sleep      seconds to take
  progress   number of progress lines to send first
  stderr     text to write to stderr
  error      answer with this error message instead of a result
  crash      exit at once with this code, mid-task
  malformed  print a line that is not JSON
  alloc_mb   allocate and touch this many MiB and keep it (RSS grows)
  hang_once  a file path: if it does not exist, create it and hang (the first
             attempt hangs until killed, a retry answers at once)
The result is {"echo": ..., "pid": <worker pid>, "served": <tasks so far>}.
"""
import json
import os
import sys
import time

held = []


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    served = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        rid = req["id"]
        inp = req.get("input") or {}
        if not isinstance(inp, dict):
            inp = {"echo": inp}
        served += 1
        if "stderr" in inp:
            sys.stderr.write(inp["stderr"])
            sys.stderr.flush()
        for i in range(int(inp.get("progress", 0))):
            send({"id": rid, "progress": {"current": i + 1, "total": inp["progress"], "message": "step %d" % (i + 1)}})
        if inp.get("alloc_mb"):
            held.append(b"\x01" * (int(inp["alloc_mb"]) << 20))
        if inp.get("hang_once") and not os.path.exists(inp["hang_once"]):
            open(inp["hang_once"], "w").close()
            time.sleep(3600)
        if inp.get("sleep"):
            time.sleep(float(inp["sleep"]))
        if "crash" in inp:
            os._exit(int(inp["crash"]))
        if inp.get("malformed"):
            sys.stdout.write("this is not json\n")
            sys.stdout.flush()
            continue
        if "error" in inp:
            send({"id": rid, "error": {"message": str(inp["error"])}})
            continue
        send({"id": rid, "result": {"echo": inp.get("echo"), "pid": os.getpid(), "served": served}})


if __name__ == "__main__":
    main()
