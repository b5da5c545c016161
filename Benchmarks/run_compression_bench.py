#!/usr/bin/env python3
"""permessage-deflate side by side: speed and memory, written to
docs/benchmarks-compression.md.

Speed: 100 connections x 1 KiB of JSON-like text, 16 in flight, compressed
both ways, against node `ws` (perMessageDeflate: true) and Python websockets
(compression on); messages per server-CPU-second, alternated over repeats.
Memory: RSS per idle connection at N connections that each negotiated
compression as a browser offers it (client_max_window_bits, contexts kept)
and echoed one compressed 1 KiB message; the same with no context takeover
either way, and without compression, for echo-server.

Usage: run_compression_bench.py [--repeats N] [--idle-connections N] [--out PATH]
       run_compression_bench.py --render docs/benchmarks-compression.json   (the page again, no run)
"""
import argparse
import json
import os
import time

import run_bench as rb

SPEED_SERVERS = ["echo-server", "node ws", "Python websockets (uvloop)"]
SPEED_ARGS = ["--connections", "100", "--size", "1024", "--in-flight", "16", "--text", "--json-payload", "--compression"]
# (label, server, server flags, ws-bench flags)
IDLE_CASES = [
    ("echo-server, compression (browser's offer)", "echo-server", ["--compression"], ["--compression"]),
    ("echo-server, compression, no context takeover either way", "echo-server", ["--compression"],
     ["--compression-no-context"]),
    ("echo-server, no compression", "echo-server", [], []),
    ("node ws, compression (browser's offer)", "node ws", ["--compression"], ["--compression"]),
    ("Python websockets, compression (browser's offer)", "Python websockets (uvloop)", ["--compression"], ["--compression"]),
]


READING = """## Reading the figures

- **Speed.** With compression, the work per message is zlib's: inflating
  and deflating 1 KiB dominates framing, so every server runs at 100% of
  its core and the ratio compares how each drives zlib. echo-server inflates
  into a buffer shared on the loop, 16 KiB at a time, and deflates with a
  compressor shared on the loop, reset after each message; neither
  allocates per message (the micro benchmark "Compressed echo in memory"
  makes no allocation beyond the harness's, `make bench-check`). node `ws`
  runs zlib through Node's asynchronous zlib bindings, one job per message
  on its thread pool, with a concurrency limit of 10; Python websockets
  calls zlib synchronously with smaller windows (12 bits, memLevel 5),
  which compress faster and worse.
- **Memory with a browser's offer.** The browser keeps its compression
  context, so the server keeps a decompressor per connection: zlib's
  inflate state (about 7 KiB) and the 4 KiB window the server asked for
  (`client_max_window_bits=12`), made at the first compressed message. The
  server's own direction keeps no context (`server_no_context_takeover`),
  so it holds no compressor per connection. node `ws` keeps a compressor
  (15-bit window, memLevel 8: about 256 KiB in zlib's arithmetic) and a
  decompressor per connection; Python websockets keeps both with 12-bit
  windows and memLevel 5.
- **Memory without context either way.** Such a connection holds the loop's
  shared extension and borrows a per-message codec only while a message is
  in flight: nothing of its own between messages. What remains of the
  difference from an uncompressed connection is the loop's fixed cost (the
  16 KiB inflate and 64 KiB deflate buffers, and the shared compressor and
  decompressor, made once per loop) spread over the connections."""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--idle-repeats", type=int, default=2)
    ap.add_argument("--idle-connections", type=int, default=10000)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--out", default=os.path.join(rb.TOP, "docs", "benchmarks-compression.md"))
    ap.add_argument("--render", metavar="JSON")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        args.idle_repeats = len(next(iter(saved["idle"].values())))
        write(args, saved["speed"], saved["idle"], saved.get("elapsed", 0), saved)
        return
    started = time.time()
    speed = {n: [] for n in SPEED_SERVERS}
    for r in range(args.repeats):
        order = SPEED_SERVERS if r % 2 == 0 else list(reversed(SPEED_SERVERS))
        for name in order:
            rep = rb.bench(name, SPEED_ARGS, args.duration, 1.0, ["--compression"])
            speed[name].append(rep)
            print("[%4.0fs] repeat %d %-28s %10.0f msg/s %10.0f msg/CPU-s" % (
                time.time() - started, r + 1, name, rep["messagesPerSecond"], rep["messagesPerServerCPUSecond"] or 0),
                flush=True)
    idle = {label: [] for label, *_ in IDLE_CASES}
    for r in range(args.idle_repeats):
        cases = IDLE_CASES if r % 2 == 0 else list(reversed(IDLE_CASES))
        for label, name, server_flags, bench_flags in cases:
            rep = rb.bench(name, ["--idle", "--idle-message", "--connections", str(args.idle_connections),
                                  "--source-addresses", "4", "--size", "1024", "--text", "--json-payload"] + bench_flags,
                           3.0, 0, server_flags)
            idle[label].append(rep)
            print("[%4.0fs] idle %s: %s B per connection" % (time.time() - started, label, rep["idleBytesPerConnection"]),
                  flush=True)
    # Stamped before the file is opened: opening truncates a tracked file,
    # which would make the stamp say "+changes".
    stamp = rb.run_stamp()
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(dict(stamp, speed=speed, idle=idle, elapsed=time.time() - started), f, indent=1)
    write(args, speed, idle, time.time() - started, stamp)


def write(args, speed, idle, elapsed, stamp):
    lines = ["# Benchmarks: permessage-deflate", "",
             "Written by Benchmarks/run_compression_bench.py (make bench-compression) from its run %s."
             % rb.stamp_line(stamp), "",
             "Measured as in [benchmarks.md](benchmarks.md): every server on core 1, ws-bench on core 0, the servers "
             "alternated within each repeat, medians over the repeats with [min–max]. Run took %.0f s." % elapsed, "",
             "## Speed: 100 connections × 1 KiB of JSON-like text, 16 in flight, compressed both ways", "",
             "Each server with its own defaults: echo-server `--compression` (level 6, no context of its own, "
             "the client's window 12 bits), node `ws` with `perMessageDeflate: true`, Python websockets with "
             "compression on (window 12 bits both ways, memLevel 5). ws-bench offers what browsers offer "
             "(`permessage-deflate; client_max_window_bits`) and keeps its context; its payloads are "
             "JSON records with the same keys and varying values.", "",
             "| server | msg/s | server CPU % | msg per server-CPU-second | echo-server ÷ this (ratio of the medians) "
             "| echo-server ÷ this (median of the per-repeat ratios) | p50 µs | p99 µs |", "|---|---|---|---|---|---|---|---|"]
    ours = [r["messagesPerServerCPUSecond"] for r in speed["echo-server"]]
    for name in SPEED_SERVERS:
        runs = speed[name]
        rate = [r["messagesPerSecond"] for r in runs]
        per_cpu = [r["messagesPerServerCPUSecond"] for r in runs if r["messagesPerServerCPUSecond"]]
        cpu = [100 * r["serverCPUSeconds"] / r["seconds"] for r in runs if r["serverCPUSeconds"] is not None]
        pairs = [a / b for a, b in zip(ours, [r["messagesPerServerCPUSecond"] for r in runs]) if a and b]
        lines.append("| %s | %s [%s–%s] | %s | %s [%s–%s] | %s | %s | %s | %s |" % (
            name, rb.fmt(rb.med(rate)), rb.fmt(min(rate)), rb.fmt(max(rate)), rb.fmt(rb.med(cpu)),
            rb.fmt(rb.med(per_cpu)), rb.fmt(min(per_cpu)), rb.fmt(max(per_cpu)),
            rb.fmt(rb.med(ours) / rb.med(per_cpu), 2), rb.fmt(rb.med(pairs), 2),
            rb.fmt(rb.med([r["latencyMicroseconds"]["p50"] for r in runs]), 1),
            rb.fmt(rb.med([r["latencyMicroseconds"]["p99"] for r in runs]), 1)))
    lines += ["", "## Memory: RSS per idle connection at %s connections, each after one compressed message" %
              rb.fmt(args.idle_connections), "",
              "Each connection negotiates, echoes one 1 KiB JSON message (compressed both ways when negotiated) "
              "and then idles; the figure is the server's RSS growth over its own baseline, divided by the "
              "connections (%d runs, median [min–max])." % args.idle_repeats, "",
              "| server and negotiation | B per idle connection |", "|---|---|"]
    for label, *_ in IDLE_CASES:
        values = [r["idleBytesPerConnection"] for r in idle[label] if r["idleBytesPerConnection"] is not None]
        lines.append("| %s | %s [%s–%s] |" % (label, rb.fmt(rb.med(values)), rb.fmt(min(values)), rb.fmt(max(values))))
    lines += ["", READING, ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("wrote " + args.out)


if __name__ == "__main__":
    main()
