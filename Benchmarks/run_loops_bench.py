#!/usr/bin/env python3
"""Several loops, side by side: docs/benchmarks-loops.md (and .json).

Two questions, each answered by alternating `echo-server --loops 1` and
`--loops 2` over the same load, 5 repeats, medians:

1. Is the machinery free when unused? Both servers pinned to core 1, ws-bench
   to core 0, 100 connections x 16 B, 16 in flight, in messages per
   server-CPU-second. Two loops on one core pay for their second thread, its
   wake-ups and the kernel's spreading of connections; the target is at most
   5% below one loop.

2. What does a second loop buy when the server is the bottleneck? On 2 cores
   the load generator needs a core too, so the load is made cheap for the
   client and costly for the server: 1 KiB JSON, permessage-deflate without
   context, sent uncompressed, so the server inflates nothing but compresses
   every answer (level 6) while ws-bench only inflates. Nothing is pinned: the
   server may use both cores. The figure is messages per second (wall).

Every load goes to 127.0.0.1 only and every run is bounded in time.

Usage: run_loops_bench.py [--repeats N] [--duration S] [--out docs/benchmarks-loops.md]
       run_loops_bench.py --render docs/benchmarks-loops.json
"""
import argparse
import json
import os
import subprocess
import tempfile

from run_bench import run_stamp, stamp_line, fmt, free_port, med, stop, wait_until_listening, ws_bench_json

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
ECHO = os.path.join(TOP, ".build", "release", "echo-server")
WS_BENCH = os.path.join(HERE, ".build", "release", "ws-bench")

SCENARIOS = [
    {"key": "same-core", "title": "Same core: 100 connections x 16 B, 16 in flight, server on core 1",
     "server_cpus": "1", "client_cpus": "0", "server_flags": [],
     "bench_flags": ["--connections", "100", "--size", "16", "--in-flight", "16"],
     "metric": "messagesPerServerCPUSecond", "unit": "msg per server-CPU-second"},
    {"key": "server-bound", "title": "Both cores, server-bound: 100 connections x 1 KiB JSON, 16 in flight, "
                                    "server compresses every answer",
     "server_cpus": None, "client_cpus": None, "server_flags": ["--compression"],
     "bench_flags": ["--connections", "100", "--size", "1024", "--in-flight", "16", "--json-payload", "--text",
                     "--compression-no-context", "--send-uncompressed"],
     "metric": "messagesPerSecond", "unit": "msg/s (wall)"},
]
LOOPS = [1, 2]

NOTES = """## How the two runs are arranged, and what they show

**Same core.** Both servers are pinned to core 1 (`taskset -c 1`) and
ws-bench to core 0, so the figure per server-CPU-second compares the same
work on the same core. With two loops, the kernel spreads the 100
connections over them (`SO_REUSEPORT`), each loop's `epoll_wait` returns half
as many ready connections, and the two threads take turns on the core. The
group's own machinery (the inbox, the identities, the shared connection
count) costs nothing per message: it is touched per connection or per
cross-thread call only. What two loops on one core can cost is scheduling:
measured with this script, two loops as ordinary threads reach 0.926 of one
loop (ratio of the medians; 0.927 median of the paired
ratios), because a loop woken by its peer's data preempts the other
mid-batch, trading a batch for a smaller one at the price of a context
switch. Loops that outnumber the CPUs their process may use therefore run as
`SCHED_BATCH` threads, which wait for each other's time slice instead; the
tables above are with that.

**Both cores, server-bound.** On a 2-core machine the load generator needs
a core as well, so a plain echo cannot show what a second loop buys: the
client spends about as much per message as the server. This run makes the
server's side the costly one, as in a feed that compresses JSON for its
subscribers: permessage-deflate without context, the client sends its 1 KiB
JSON messages uncompressed (`--send-uncompressed`) and only inflates the
answers, while the server compresses every answer at level 6. Nothing is
pinned. With one loop the server uses one core and ws-bench much of the
other; with two the server takes about one and a half cores and ws-bench the
rest, so the speed-up is bounded by the core the client keeps, not by the
server: on a machine with cores to spare for the load, each further loop
adds a core's worth.

**From other threads.** The micro benchmark "Cross-thread sends" in
[benchmarks.md](benchmarks.md) posts from 4 threads into one loop through
`WebSocketServerGroup.send(_:type:to:)` (its rate is in the micro table there), with 0
allocations per message (`make bench-check` holds it to that)."""


def pinned(cpus, cmd):
    return (["taskset", "-c", cpus] if cpus else []) + cmd


def start_server(loops, scenario, port):
    log = tempfile.TemporaryFile()
    cmd = [ECHO, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--loops", str(loops)]
    proc = subprocess.Popen(pinned(scenario["server_cpus"], cmd + scenario["server_flags"]),
                            stdout=log, stderr=subprocess.STDOUT)
    return wait_until_listening(proc, port, log, "echo-server --loops %d" % loops)


def measure(loops, scenario, duration, warmup):
    port = free_port()
    proc = start_server(loops, scenario, port)
    try:
        cmd = [WS_BENCH, "--url", "ws://127.0.0.1:%d/ws" % port, "--duration", str(duration),
               "--warmup", str(warmup), "--server-pid", str(proc.pid)]
        report = ws_bench_json(pinned(scenario["client_cpus"], cmd + scenario["bench_flags"]), duration + warmup + 120,
                               "echo-server --loops %d" % loops)
    finally:
        stop(proc)
    return {"messagesPerSecond": report["messagesPerSecond"],
            "messagesPerServerCPUSecond": report.get("messagesPerServerCPUSecond"),
            "serverCores": (report.get("serverCPUSeconds") or 0) / report["seconds"] if report.get("seconds") else None}


def render(path, data):
    lines = ["# Several loops, side by side", "",
             "Made by `make bench-loops` (Benchmarks/run_loops_bench.py) %s: %d repeats of %s s (after %s s of "
             "warm-up), `--loops 1` and `--loops 2` alternated within each repeat; medians, with the min-max spread. "
             "The ratio of the medians and the median of the paired ratios (each repeat's two runs, seconds apart) are "
             "both given; we count an aim as met only when both statistics meet it."
             % (stamp_line(data), data["repeats"], data["duration"], data["warmup"]), ""]
    for scenario in SCENARIOS:
        runs = data["results"][scenario["key"]]
        metric = scenario["metric"]
        one = [r[metric] for r in runs["1"]]
        two = [r[metric] for r in runs["2"]]
        paired = [b / a for a, b in zip(one, two) if a and b]
        lines += ["## " + scenario["title"], "",
                  "| loops | %s, median | min-max | server cores used, median |" % scenario["unit"],
                  "|---|---|---|---|"]
        for loops, values in (("1", one), ("2", two)):
            cores = [r["serverCores"] for r in runs[loops] if r["serverCores"] is not None]
            lines.append("| %s | %s | %s-%s | %s |" % (loops, fmt(med(values)), fmt(min(values)), fmt(max(values)),
                                                      fmt(med(cores), 2)))
        lines += ["", "2 loops ÷ 1 loop: **%s** (ratio of the medians), **%s** (median of the paired ratios; "
                  "each: %s)." % (fmt(med(two) / med(one), 3), fmt(med(paired), 3),
                                  ", ".join(fmt(p, 3) for p in paired)), ""]
        data.setdefault("ratios", {})[scenario["key"]] = {"ratioOfMedians": med(two) / med(one),
                                                        "medianOfPaired": med(paired)}
    lines += NOTES.splitlines()
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--out", default=os.path.join(TOP, "docs", "benchmarks-loops.md"))
    parser.add_argument("--render", help="re-render the page from a saved JSON")
    args = parser.parse_args()
    if args.render:
        with open(args.render) as f:
            data = json.load(f)
        render(os.path.splitext(args.render)[0] + ".md", data)
        return
    data = {**run_stamp(), "repeats": args.repeats, "duration": args.duration,
            "warmup": args.warmup, "results": {s["key"]: {str(n): [] for n in LOOPS} for s in SCENARIOS}}
    for repeat in range(args.repeats):
        for scenario in SCENARIOS:
            # Alternate which goes first, so a drift does not favour one.
            order = LOOPS if repeat % 2 == 0 else list(reversed(LOOPS))
            for loops in order:
                result = measure(loops, scenario, args.duration, args.warmup)
                data["results"][scenario["key"]][str(loops)].append(result)
                print("repeat %d %-12s loops %d: %s" % (repeat + 1, scenario["key"], loops,
                                                       fmt(result[scenario["metric"]])), flush=True)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1)
    render(args.out, data)
    print(open(args.out).read())


if __name__ == "__main__":
    main()
