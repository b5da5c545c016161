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

With --cache-sim the whole server process is counted instead (user space,
instrumentation switched on once it listens), with callgrind's cache and
branch simulation: instructions, first-level data-cache read misses and
mispredicted conditional and indirect branches, each per echoed message.
`--peer PATH` measures another echo server that way (µWebSockets' echo, say,
taking the port as its one argument), so the two can be put side by side.

Usage: instructions.py [--server PATH | --peer PATH] [--seconds S] [--json PATH] [--cache-sim]
"""
import argparse
import json
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
    ap.add_argument("--cache-sim", action="store_true", help="whole process, with cache and branch simulation")
    ap.add_argument("--peer", help="another echo server taking its port as its one argument (with --cache-sim)")
    args = ap.parse_args()
    if args.peer and not args.cache_sim:
        ap.error("--peer needs --cache-sim: only whole-process counts compare across servers")
    port = free_port()
    out = tempfile.NamedTemporaryFile(suffix=".callgrind", delete=False).name
    command = [args.peer, str(port)] if args.peer else \
        [args.server, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    simulation = ["--cache-sim=yes", "--branch-sim=yes", "--instr-atstart=no"] if args.cache_sim else []
    server = subprocess.Popen(["taskset", "-c", "1", "valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
                              + simulation + command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        if args.cache_sim:
            subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True, stdout=subprocess.DEVNULL)
        # With the whole process counted from the first message, so is every
        # message: no warm-up, and the report's count is the divisor.
        report = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        subprocess.run(["taskset", "-c", "0", os.path.join(HERE, ".build", "release", "ws-bench"),
                        "--url", "ws://127.0.0.1:%d/ws" % port, "--connections", "100", "--size", "16",
                        "--in-flight", "16", "--duration", str(args.seconds),
                        "--warmup", "0" if args.cache_sim else "0.5", "--quiet", "--json", report],
                       check=True, stdout=subprocess.DEVNULL, timeout=args.seconds + 120)
        with open(report) as f:
            sent = json.load(f)["messages"]
        os.unlink(report)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    if args.cache_sim:
        return report_whole_process(out, sent, args)
    inclusive = annotate(out, "--inclusive=yes")
    # Two figures, each found in every code structure the project has had
    # (the connection as a TCPStream subclass, then with a ConnectionStream,
    # then one object per socket), so a worktree of an older main is
    # measured the same way:
    #   read callback: the connection's read of plaintext, inclusive (parse,
    #     unmask, the handler, framing into the cork, the leftover stash);
    #   readFrames: the parse-and-dispatch loop alone (the figure this page
    #     used first).
    patterns = {
        "read callback": r"(16ConnectionStreamC7didReadyySiF|15WebSocketServer0aB10ConnectionC7didReadyySiF"
                         r"|ConnectionC12plainDidReadyySiF)$",
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
        sys.path.insert(0, HERE)
        from run_bench import run_stamp
        # Stamped before the file is opened: opening truncates it, and a
        # tracked file that differs makes the stamp say "+changes".
        stamp = run_stamp()
        with open(args.json, "w") as f:
            json.dump(dict(stamp, messages=messages, readCallback=read_path / messages,
                           readFrames=figures["readFrames"] / messages if "readFrames" in figures else None), f, indent=1)
    return 0


def report_whole_process(out, messages, args):
    """Per-message figures of the whole process from callgrind's totals,
    divided by the messages ws-bench counted (a peer's handler has no symbol
    this script could count calls of)."""
    events = totals = None
    for line in annotate(out).splitlines():
        if line.startswith("Events shown:"):
            events = line.split(":", 1)[1].split()
        elif "PROGRAM TOTALS" in line:
            totals = [int(x.replace(",", "")) for x in re.findall(r"[\d,]+(?= |$)", line.split("PROGRAM TOTALS")[0])]
    if not events or not totals or not messages:
        print("no totals in the profile (kept: %s)" % out, file=sys.stderr)
        return 1
    os.unlink(out)
    per = {name: total / messages for name, total in zip(events, totals)}
    # Ir instructions, D1mr first-level data-cache read misses, Bcm and Bim
    # mispredicted conditional and indirect branches (callgrind's names).
    print("%d messages; per message: %.0f instructions, %.3f D1 read misses, %.3f mispredicted conditional "
          "branches, %.3f mispredicted indirect calls" % (messages, per.get("Ir", 0), per.get("D1mr", 0),
                                                           per.get("Bcm", 0), per.get("Bim", 0)))
    if args.json:
        sys.path.insert(0, HERE)
        from run_bench import run_stamp
        # Stamped before the file is opened: opening truncates it, and a
        # tracked file that differs makes the stamp say "+changes".
        stamp = run_stamp()
        with open(args.json, "w") as f:
            json.dump(dict(stamp, messages=messages, server=args.peer or "echo-server",
                           perMessage={k: per[k] for k in ("Ir", "D1mr", "Bcm", "Bim") if k in per}), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
