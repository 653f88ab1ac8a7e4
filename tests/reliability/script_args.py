"""The command line every reliability script shares: the binary, how long to
run, where its result goes; and a SIGTERM that still runs the clean-up."""
import argparse
import signal
import sys


def parser(doc, default_seconds, report_id):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally blocks stop what was started
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--seconds", type=float, default=default_seconds)
    p.add_argument("--minutes", type=float, help="overrides --seconds")
    p.add_argument("--report-id", default=report_id)
    p.add_argument("--report-dir", help="default: build/reliability in the repository")
    return p


def run_seconds(opts):
    return opts.minutes * 60 if opts.minutes else opts.seconds
