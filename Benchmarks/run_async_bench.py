#!/usr/bin/env python3
"""The async face, side by side: docs/benchmarks-async.md (and .json).

echo-server's callback echo, echo-server --async (a task per connection
iterating its messages and sending each back) and Hummingbird's WebSocket
echo (hummingbird-websocket, the same async shape on SwiftNIO), each pinned
to core 1 with ws-bench on core 0, the servers alternated within each
repeat. 100 connections with 16 messages in flight, 16 B and 1 KiB; the
figure is messages per server-CPU-second, medians over the repeats, with
both the ratio of the medians and the median of the paired ratios.

Every load goes to 127.0.0.1 only and every run is bounded in time.

Usage: run_async_bench.py [--repeats N] [--duration S] [--out docs/benchmarks-async.md]
       run_async_bench.py --render docs/benchmarks-async.json
"""
import argparse
import os

from run_bench import render_saved, run_stamp, save_run, stamp_line, BIN, TOP, fmt, free_port, med, stop
from run_tls_bench import start, ws_bench

ECHO = os.path.join(TOP, ".build", "release", "echo-server")
SERVERS = {
    "echo-server, callbacks": lambda p: [ECHO, "--host", "127.0.0.1", "--port", str(p), "--log-level", "warning"],
    "echo-server --async": lambda p: [ECHO, "--host", "127.0.0.1", "--port", str(p), "--log-level", "warning",
                                      "--async"],
    "Hummingbird WebSocket": lambda p: [os.path.join(BIN, "hummingbird-echo"), str(p)],
}
SIZES = [16, 1024]
ASYNC, CALLBACKS, HUMMINGBIRD = "echo-server --async", "echo-server, callbacks", "Hummingbird WebSocket"


def throughput(command, size, duration, warmup):
    port = free_port()
    proc = start(command, port)
    try:
        report = ws_bench("ws", port, proc.pid, ["--connections", "100", "--size", str(size), "--in-flight", "16",
                                                 "--duration", str(duration), "--warmup", str(warmup)],
                          duration + warmup + 120)
    finally:
        stop(proc)
    return report["messagesPerServerCPUSecond"]


def paired(a, b):
    """The median of b/a over the repeats."""
    return med([y / x for x, y in zip(a, b) if x and y])


def render(path, data):
    lines = ["# The async face, side by side", "",
             "Made by `make bench-async` (Benchmarks/run_async_bench.py) %s: %d repeats, servers alternated within "
             "each, every server on core 1 and ws-bench on core 0; %s s per run after %s s of warm-up; medians with "
             "the min-max spread. Ratios are given both as the ratio of the medians and as the median of the paired "
             "ratios (each repeat's runs, seconds apart); an aim counts as met only when both meet it." % (
                 stamp_line(data), data["repeats"], data["duration"], data["warmup"]), "",
             "- **echo-server, callbacks**: the loop-thread handler, each chunk sent back inside the read callback.",
             "- **echo-server --async**: `AsyncWebSocketHandler`, a task per connection running "
             "`for try await message in connection.messages { try await connection.send(message) }`.",
             "- **Hummingbird WebSocket**: hummingbird-websocket 2.8 on SwiftNIO, the same loop over "
             "`inbound.messages(maxSize:)` writing each message back.", "",
             "![The async face against the callbacks and Hummingbird](benchmarks-async.png)", ""]
    for size in SIZES:
        key = str(size)
        t = data["throughput"][key]
        lines += ["## 100 connections × %s, 16 in flight" % ("16 B" if size == 16 else "1 KiB"), "",
                  "| server | msg per server-CPU-second, median | min-max |", "|---|---|---|"]
        for name in SERVERS:
            values = t[name]
            lines.append("| %s | %s | %s-%s |" % (name, fmt(med(values)), fmt(min(values)), fmt(max(values))))
        lines += ["",
                  "- async ÷ Hummingbird: **%s** (ratio of the medians), **%s** (median of the paired ratios)." % (
                      fmt(med(t[ASYNC]) / med(t[HUMMINGBIRD]), 2), fmt(paired(t[HUMMINGBIRD], t[ASYNC]), 2)),
                  "- async ÷ callbacks: **%s** (ratio of the medians), **%s** (median of the paired ratios)." % (
                      fmt(med(t[ASYNC]) / med(t[CALLBACKS]), 2), fmt(paired(t[CALLBACKS], t[ASYNC]), 2)), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def chart(path, data):
    """Grouped bars: messages per server-CPU-second per size and server."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is missing (make bench-deps installs it): %s not drawn" % path)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, axes = plt.subplots(1, len(SIZES), figsize=(11, 3.2))
    colors = ["#9aa3b2", "#2f6fde", "#e07b39"]
    for axis, size in zip(axes, SIZES):
        t = data["throughput"][str(size)]
        names = list(SERVERS)
        values = [med(t[n]) for n in names]
        bars = axis.barh(names, values, color=colors)
        for bar, v in zip(bars, values):
            axis.annotate(fmt(v), (v, bar.get_y() + bar.get_height() / 2), va="center", ha="left", fontsize=8)
        axis.invert_yaxis()
        axis.set_xlim(0, max(values) * 1.25)
        axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: "%.1fM" % (v / 1e6)))
        axis.set_xlabel("messages per server-CPU-second (median)")
        axis.set_title("100 connections × %s, 16 in flight" % ("16 B" if size == 16 else "1 KiB"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--out", default=os.path.join(TOP, "docs", "benchmarks-async.md"))
    parser.add_argument("--render", help="re-render the page from a saved JSON")
    args = parser.parse_args()
    if args.render:
        return render_saved(args.render, render, chart)
    # Stamped before anything is written, so the page names the tree measured.
    data = {**run_stamp(), "repeats": args.repeats, "duration": args.duration, "warmup": args.warmup,
            "throughput": {str(s): {n: [] for n in SERVERS} for s in SIZES}}
    for repeat in range(args.repeats):
        for size in SIZES:
            names = list(SERVERS) if repeat % 2 == 0 else list(reversed(SERVERS))
            for name in names:
                value = throughput(SERVERS[name], size, args.duration, args.warmup)
                data["throughput"][str(size)][name].append(value)
                print("repeat %d %5d B %-24s %s" % (repeat + 1, size, name, fmt(value)), flush=True)
    save_run(args.out, data, render, chart)


if __name__ == "__main__":
    main()
