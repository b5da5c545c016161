#!/usr/bin/env python3
"""Instructions per echoed message on echo-server's read path, counted by
valgrind's callgrind: repeatable on this shared machine, where wall-clock
figures swing by 20%, so it is the figure to compare before and after a change
to the hot path. User space only (the kernel's TCP work is not counted).

The server runs under callgrind on core 1; ws-bench sends 100 connections x
16 B with 16 in flight to it over loopback for a few seconds. The figure is
the inclusive count of the connection's read callback, ConnectionStream.didRead
(parse, unmask, the handler, framing into the cork, the leftover stash) divided
by the messages the handler saw.

With --json PATH the figures are also written there with the run's date,
commit and machine (`make bench-instructions` writes
docs/benchmarks-instructions.json, which docs/benchmarks.md quotes).

Usage: instructions.py [--server PATH] [--seconds S] [--json PATH]
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def annotate(path, *flags):
    return subprocess.run(["callgrind_annotate", *flags, path], capture_output=True, text=True, check=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(TOP, ".build", "release", "echo-server"))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", help="also write the figures here, with the run's stamp")
    args = ap.parse_args()
    port = free_port()
    out = tempfile.NamedTemporaryFile(suffix=".callgrind", delete=False).name
    server = subprocess.Popen(["taskset", "-c", "1", "valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                               args.server, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError("echo-server did not start under valgrind")
                time.sleep(0.2)
        subprocess.run(["taskset", "-c", "0", os.path.join(HERE, ".build", "release", "ws-bench"),
                        "--url", "ws://127.0.0.1:%d/ws" % port, "--connections", "100", "--size", "16",
                        "--in-flight", "16", "--duration", str(args.seconds), "--warmup", "0.5", "--quiet"],
                       check=True, stdout=subprocess.DEVNULL, timeout=args.seconds + 120)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    inclusive = annotate(out, "--inclusive=yes")
    # Two figures, each found in both code structures (the connection as a
    # TCPStream subclass before the runtime split, the connection with a
    # ConnectionStream after), so a worktree of an older main is measured the
    # same way:
    #   read callback: the connection's didRead, inclusive (parse, unmask, the
    #     handler, framing into the cork, the leftover stash);
    #   readFrames: the parse-and-dispatch loop alone (the figure this page
    #     used first).
    patterns = {
        "read callback": r"(16ConnectionStreamC7didReadyySiF|15WebSocketServer0aB10ConnectionC7didReadyySiF)$",
        "readFrames": r"ConnectionC10readFrames(yyF|.*3nowyAA11LoopContextC_s6UInt64VtF)$",
    }
    figures = {}
    for line in inclusive.splitlines():
        m = re.match(r"\s*([\d,]+) \(.*?\)\s+\S*?:(\S+)", line)
        if not m:
            continue
        for name, pattern in patterns.items():
            if name not in figures and re.search(pattern, m.group(2)):
                figures[name] = int(m.group(1).replace(",", ""))
    read_path = figures.get("read callback")
    messages = 0
    for line in annotate(out, "--tree=caller").splitlines():
        m = re.search(r"\(([\d,]+)x\)", line)
        if m and "didReceive" in line:
            messages = max(messages, int(m.group(1).replace(",", "")))
    if os.environ.get("KEEP_PROFILE"):
        print("profile kept: %s" % out)
    if not read_path or not messages:
        print("could not find readFrames or the handler calls in the profile (kept: %s)" % out, file=sys.stderr)
        return 1
    if not os.environ.get("KEEP_PROFILE"):
        os.unlink(out)
    extra = ""
    if "readFrames" in figures:
        extra = " (readFrames alone: %.0f)" % (figures["readFrames"] / messages)
    print("%d messages; read path: %.0f instructions per message%s" % (messages, read_path / messages, extra))
    if args.json:
        import json
        sys.path.insert(0, HERE)
        from run_bench import run_stamp
        with open(args.json, "w") as f:
            json.dump(dict(run_stamp(), messages=messages, readCallback=read_path / messages,
                           readFrames=figures["readFrames"] / messages if "readFrames" in figures else None), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
