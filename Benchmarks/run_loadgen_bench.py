#!/usr/bin/env python3
"""ws-bench against µWebSockets' own load generator: docs/benchmarks-loadgen.md (and .json).

Both clients drive the same server (any echo server that takes the port as
its one argument and answers WebSockets at every path, µWebSockets' echo
say: µWebSockets' `load_test` asks for "/"), pinned to core 1, with the
client on core 0, alternated within each repeat: 100 connections, one 16 B
message in flight on each (load_test's only mode). The figure is messages
generated per client-CPU-second: what a client spends to produce the load.

load_test is not part of this repository and nothing here builds it
(docs/benchmarks.md, "Against µWebSockets", says where it comes from). It
prints its rate every 4 seconds and never stops: it runs for a set time, its
CPU time is read from /proc at each line, and the first interval (its
connects) is left out. ws-bench measures its own window after a warm-up.

The second part shows `--threads`: ws-bench with one thread and with two
against `echo-server --loops 2` (this repository's, from .build/release),
alternated, nothing pinned: 64 connections, 8 messages of 4 KiB in flight on
each, where one client thread at a whole core is the bottleneck.

Every load goes to 127.0.0.1 only and every run is bounded in time.

Usage: run_loadgen_bench.py --load-test PATH --server PATH [--repeats N]
       run_loadgen_bench.py --render docs/benchmarks-loadgen.json
"""
import argparse
import os
import subprocess
import tempfile
import time

from run_bench import render_saved, run_stamp, save_run, stamp_line, BIN, TOP, fmt, free_port, med, stop, wait_until_listening, ws_bench_json

WS_BENCH = os.path.join(BIN, "ws-bench")
CONNECTIONS, SIZE = 100, 16
ECHO_SERVER = os.path.join(TOP, ".build", "release", "echo-server")
THREADS_LOAD = ["--connections", "64", "--in-flight", "8", "--size", "4096"]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(server):
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(["taskset", "-c", "1", server, str(port)], stdout=log, stderr=subprocess.STDOUT)
    return port, wait_until_listening(proc, port, log, server)


def ws_bench(port, duration):
    report = ws_bench_json(["taskset", "-c", "0", WS_BENCH, "--url", "ws://127.0.0.1:%d/" % port,
                              "--connections", str(CONNECTIONS), "--size", str(SIZE), "--in-flight", "1",
                              "--duration", str(duration), "--warmup", "2"], duration + 120)
    return report["messages"] / report["clientCPUSeconds"], report["messagesPerSecond"]


def load_test(path, port, intervals):
    """(messages per client-CPU-second, messages per second) over `intervals`
    of load_test's 4-second reports after its first."""
    # stdbuf: its printf would otherwise sit in a 4 KiB pipe buffer for minutes.
    proc = subprocess.Popen(["taskset", "-c", "0", "stdbuf", "-oL", path, str(CONNECTIONS), "127.0.0.1", str(port), "0", "0", str(SIZE)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    samples = []  # (messages per second over the last interval, CPU seconds at the line)
    deadline = time.time() + 4 * (intervals + 1) + 30
    try:
        for line in proc.stdout:
            if line.startswith("Msg/sec:"):
                samples.append((float(line.split()[1]), cpu_seconds(proc.pid)))
                if len(samples) == intervals + 1:
                    break
            if time.time() > deadline:
                raise RuntimeError("load_test gave %d reports in time" % len(samples))
    finally:
        proc.kill()
        proc.wait()
    measured = samples[1:]
    messages = sum(rate * 4 for rate, _ in measured)
    cpu = samples[-1][1] - samples[0][1]
    return messages / cpu, messages / (4 * len(measured))


def threads_run(threads, duration=5):
    """(messages per second, client CPU in cores) of ws-bench with `threads`
    loops against a fresh echo-server --loops 2."""
    port = free_port()
    log = tempfile.TemporaryFile()
    server = subprocess.Popen([ECHO_SERVER, "--host", "127.0.0.1", "--port", str(port), "--loops", "2",
                               "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(server, port, log, "echo-server")
        report = ws_bench_json([WS_BENCH, "--url", "ws://127.0.0.1:%d/ws" % port, *THREADS_LOAD, "--threads",
                                str(threads), "--duration", str(duration), "--warmup", "1"], duration + 120, "echo-server")
    finally:
        stop(server)
    return report["messagesPerSecond"], report["clientCPUSeconds"] / report["seconds"]


def render(path, data):
    ours, theirs = data["ws-bench"], data["load_test"]
    paired = med([a / b for a, b in zip(ours, theirs) if a and b])
    lines = ["# ws-bench against µWebSockets' load_test", "",
             "Made by `make bench-loadgen` (Benchmarks/run_loadgen_bench.py) %s: %d repeats, the two clients "
             "alternated within each, the server (%s) on core 1 and the client on core 0. %d connections with one "
             "%d B message in flight on each (load_test's only mode); ws-bench also checks every echoed byte, "
             "load_test counts bytes only. The figure is messages generated per client-CPU-second; the rate each "
             "reached is beside it." % (stamp_line(data), data["repeats"], data["server"], CONNECTIONS, SIZE), "",
             "| client | msg per client-CPU-second, median | min-max | msg per second, median |", "|---|---|---|---|"]
    for name, values, rates in (("ws-bench", ours, data["ws-bench rate"]), ("µWebSockets load_test", theirs,
                                                                             data["load_test rate"])):
        lines.append("| %s | %s | %s-%s | %s |" % (name, fmt(med(values)), fmt(min(values)), fmt(max(values)),
                                                 fmt(med(rates))))
    lines += ["", "ws-bench ÷ load_test: **%s** (ratio of the medians), **%s** (median of the paired ratios)." % (
        fmt(med(ours) / med(theirs), 2), fmt(paired, 2)), ""]
    if "threads 1" in data:
        one, two = data["threads 1"], data["threads 2"]
        lines += ["## --threads 2 against echo-server --loops 2", "",
                  "Alternated in each repeat, nothing pinned (both clients and both server loops share the 2 cores): "
                  "%s (connections, in flight each, payload bytes). One thread can use one core at most; "
                  "two take what the server leaves." % " ".join(THREADS_LOAD), "",
                  "| ws-bench | msg/s, median | min-max | client CPU, cores (median) |", "|---|---|---|---|"]
        for name, runs in (("--threads 1", one), ("--threads 2", two)):
            rates = [r[0] for r in runs]
            lines.append("| %s | %s | %s-%s | %s |" % (name, fmt(med(rates)), fmt(min(rates)), fmt(max(rates)),
                                                     fmt(med([r[1] for r in runs]), 2)))
        lines += ["", "--threads 2 ÷ --threads 1: **%s** (ratio of the medians), **%s** (median of the paired ratios)." % (
            fmt(med([r[0] for r in two]) / med([r[0] for r in one]), 2),
            fmt(med([b[0] / a[0] for a, b in zip(one, two)]), 2)), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-test", help="µWebSockets' benchmarks/load_test, built elsewhere")
    parser.add_argument("--server", help="an echo server at every path, taking the port as its one argument")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(TOP, "docs", "benchmarks-loadgen.md"))
    parser.add_argument("--render", help="re-render the page from a saved JSON")
    args = parser.parse_args()
    if args.render:
        return render_saved(args.render, render)
    if not (args.load_test and args.server):
        raise SystemExit("--load-test and --server are needed (see the docstring)")
    data = {**run_stamp(), "repeats": args.repeats, "server": os.path.basename(args.server),
            "ws-bench": [], "ws-bench rate": [], "load_test": [], "load_test rate": []}
    for repeat in range(args.repeats):
        order = ["ws-bench", "load_test"] if repeat % 2 == 0 else ["load_test", "ws-bench"]
        for name in order:
            port, proc = serve(args.server)
            try:
                value, rate = ws_bench(port, 12) if name == "ws-bench" else load_test(args.load_test, port, 3)
            finally:
                stop(proc)
            data[name].append(value)
            data[name + " rate"].append(rate)
            print("repeat %d %-10s %s msg per client-CPU-second (%s msg/s)" % (repeat + 1, name, fmt(value), fmt(rate)),
                  flush=True)
    data["threads 1"], data["threads 2"] = [], []
    for repeat in range(args.repeats):
        for threads in ((1, 2) if repeat % 2 == 0 else (2, 1)):
            rate, cores = threads_run(threads)
            data["threads %d" % threads].append([rate, cores])
            print("repeat %d --threads %d: %s msg/s, client %s cores" % (repeat + 1, threads, fmt(rate), fmt(cores, 2)),
                  flush=True)
    save_run(args.out, data, render)


if __name__ == "__main__":
    main()
