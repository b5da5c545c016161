#!/usr/bin/env python3
"""The README's headline table, computed from the benchmark pages' JSON, so
the README quotes exactly what those runs measured. Every ratio is the ratio
of the medians (this project's median over the peer's, same run).

Usage: readme_figures.py          prints the table
       readme_figures.py --write  rewrites the block between the README's
                                  figures markers
       readme_figures.py --check  exits 1 when the README's block differs
"""
import json
import os
import statistics
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- figures:begin (scripts/readme_figures.py) -->", "<!-- figures:end -->"


def load(name):
    with open(os.path.join(TOP, "docs", name)) as f:
        return json.load(f)


def x(a, b):
    return "%.2f×" % (a / b)


def rows():
    load_run = load("benchmarks-load.json")
    small, large = load_run["summary"]["16B-16"], load_run["summary"]["64KiB-4"]
    idle = {name: statistics.median(r["idleBytesPerConnection"] for r in runs)
            for name, runs in load_run["idle"].items() if runs}
    tls = load("benchmarks-tls.json")
    wss = {name: statistics.median(values) for name, values in tls["throughput"].items()}
    pubsub = load("benchmarks-pubsub.json")
    fan = {name: statistics.median(r["perServerCPUSecond"] for r in runs) for name, runs in pubsub["results"].items()}
    ours_fan = fan["uv-pubsub (this project)"]
    load_page = "[benchmarks.md](docs/benchmarks.md), run of %s at %s" % (load_run.get("date", "?"), load_run.get("commit", "?"))
    files = load("benchmarks-files.json")
    per_cpu = {name: statistics.median(r["requestsPerServerCPUSecond"] for r in runs)
               for name, runs in files["results"].items()}
    async_run = load("benchmarks-async.json")
    async_small = {name: statistics.median(values) for name, values in async_run["throughput"]["16"].items()}
    return [
        ("Echo, 100 connections × 16 B, 16 in flight", "%s msg per server-CPU-second" % format(round(small["echo-server"]), ","),
         "%s µWebSockets (epoll), %s SwiftNIO, %s node `ws`" % (
             x(small["echo-server"], small["µWebSockets (epoll)"]), x(small["echo-server"], small["SwiftNIO NIOWebSocket"]),
             x(small["echo-server"], small["node ws"])), load_page),
        ("Echo, 10 connections × 64 KiB, 4 in flight", "%s msg per server-CPU-second" % format(round(large["echo-server"]), ","),
         "%s µWebSockets (epoll), %s SwiftNIO" % (
             x(large["echo-server"], large["µWebSockets (epoll)"]), x(large["echo-server"], large["SwiftNIO NIOWebSocket"])),
         load_page),
        ("Async echo (a task per connection), 100 × 16 B, 16 in flight", "%s msg per server-CPU-second" % format(
            round(async_small["echo-server --async"]), ","),
         "%s Hummingbird WebSocket" % x(async_small["echo-server --async"], async_small["Hummingbird WebSocket"]),
         "[benchmarks-async.md](docs/benchmarks-async.md), run of %s at %s" % (async_run["date"], async_run["commit"])),
        ("Idle connection at 10,000 connections", "%s B of server memory" % format(round(idle["echo-server"]), ","),
         "µWebSockets (epoll) %s B, node `ws` %s B" % (format(round(idle["µWebSockets (epoll)"]), ","), format(round(idle["node ws"]), ",")),
         load_page),
        ("Echo over TLS (`wss://`), 100 × 1 KiB, 16 in flight", "%s msg per server-CPU-second" % format(round(wss["echo-server wss://"]), ","),
         "%s SwiftNIO + NIOSSL, %s node `ws` on https" % (
             x(wss["echo-server wss://"], wss["SwiftNIO + NIOSSL"]), x(wss["echo-server wss://"], wss["node ws, https"])),
         "[benchmarks-tls.md](docs/benchmarks-tls.md), run of %s" % tls["date"]),
        ("Fan-out, one publisher to 1,000 subscribers", "%s copies per server-CPU-second" % format(round(ours_fan), ","),
         "%s µWebSockets (libuv), %s node `ws`, %s Python `websockets`" % (
             x(ours_fan, fan["µWebSockets libuv"]), x(ours_fan, fan["node ws"]), x(ours_fan, fan["python websockets"])),
         "[benchmarks-pubsub.md](docs/benchmarks-pubsub.md), run of %s at %s" % (pubsub["date"], pubsub["commit"])),
        ("Static files, 1 KiB over 32 keep-alive connections", "%s requests per server-CPU-second" % format(
            round(per_cpu["echo-server"]), ","),
         "%s nginx (one worker), %s nginx with `open_file_cache`" % (
             x(per_cpu["echo-server"], per_cpu["nginx"]), x(per_cpu["echo-server"], per_cpu["nginx open_file_cache"])),
         "[benchmarks-files.md](docs/benchmarks-files.md), run of %s at %s" % (files["date"], files["commit"])),
    ]


def table():
    lines = [BEGIN,
             "| load (server on one core, 127.0.0.1) | this project | this project ÷ peer (ratio of the medians) | from |",
             "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % row for row in rows()]
    lines.append(END)
    return "\n".join(lines)


def main(argv):
    path = os.path.join(TOP, "README.md")
    text = open(path).read()
    start, end = text.find(BEGIN), text.find(END)
    if argv[:1] == ["--check"]:
        if start < 0 or end < 0 or text[start:end + len(END)] != table():
            print("README.md's figures differ from the benchmark JSON; run scripts/readme_figures.py --write")
            print(table())
            return 1
        return 0
    if argv[:1] == ["--write"]:
        with open(path, "w") as f:
            f.write(text[:start] + table() + text[end + len(END):])
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
