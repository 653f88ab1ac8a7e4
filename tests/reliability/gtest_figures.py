#!/usr/bin/env python3
"""Runs a GoogleTest binary and writes its outcome as a reliability result
(report_file.py): tests passed and failed, plus every integer a test recorded
with RecordProperty("figure: <name>", n), summed over the tests.
Usage: gtest_figures.py --id ID --test "HUMAN NAME" [--report-dir DIR] -- BINARY [ARGS...]
Exits with the binary's exit code."""
import argparse
import collections
import json
import os
import shlex
import subprocess
import sys
import tempfile

from report_file import build_name, write_report

PREFIX = "figure: "


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--report-dir")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "result.json")
        rc = subprocess.call([*command, f"--gtest_output=json:{out}"])
        with open(out) as f:
            result = json.load(f)
    figures = collections.Counter()
    for suite in result.get("testsuites", []):
        for case in suite.get("testsuite", []):
            failed = bool(case.get("failures"))
            figures["tests failed" if failed else "tests passed"] += 1
            for key, value in case.items():
                if key.startswith(PREFIX) and str(value).isdigit():
                    figures[key[len(PREFIX):]] += int(value)
    binary = command[0]
    shown = {"build": build_name(binary), "tests passed": figures.pop("tests passed", 0),
             "tests failed": figures.pop("tests failed", 0), **figures}
    suite = os.path.join("build", build_name(binary), "tests", os.path.basename(binary))
    # The binary's own arguments (a --gtest_filter) are part of what was run.
    run = " ".join([suite, *(shlex.quote(a) for a in command[1:])])
    write_report(opts.id, opts.test, f"tests/reliability/gtest_figures.py --id {opts.id} --test '{opts.test}' -- "
                 f"{run}", shown, opts.report_dir)
    for key, value in shown.items():
        print(f"{key:>28}: {value}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
