#!/usr/bin/env python3
"""Static files against nginx, side by side: docs/benchmarks-files.md (and .json).

One 1 KiB file, served from the same folder by echo-server (`--static-root`)
and by Debian's nginx-light (one worker, access log off, sendfile on, its
defaults otherwise), each pinned to core 1, with wrk on core 0: 32
keep-alive connections, 5 s per run after 1 s of warm-up, the two servers
alternated within each repeat. The figure is requests per server-CPU-second
(wrk's request count over the CPU time the server's processes used in the
measured seconds, from /proc). A second nginx row turns on its
`open_file_cache`, which like our memory cache saves the open/fstat/close per
request.

Every request goes to 127.0.0.1 and every run is bounded in time.

With `--stall-baseline ECHO_SERVER` (an echo-server built from an earlier
commit, whose files were read whole with a blocking read on the loop), it
also runs the interop test's slow-reader load against both binaries, 3
repeats: 4 readers taking a 16 MB file at about 1.6 MB/s each (once, and
restarting every 2 MB), while ws-bench echoes 2,000 messages/s over 100
WebSocket connections, open loop; the echo's p99 and max and the server's
peak RSS. 16 MB is the largest file the old code served.

Usage: run_files_bench.py [--repeats N] [--duration S] [--stall-baseline PATH] [--out docs/benchmarks-files.md]
       run_files_bench.py --render docs/benchmarks-files.json
"""
import argparse
import json
import os
import re
import shutil
import statistics
import sys
import subprocess
import tempfile
import time

from run_bench import run_stamp, stamp_line, fmt, free_port, med, stop, wait_until_listening

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
ECHO = os.path.join(TOP, ".build", "release", "echo-server")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
SERVERS = ["echo-server", "nginx", "nginx open_file_cache"]

NGINX_CONF = """daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000;
    {cache}
    types {{ application/octet-stream bin; text/html html; }}
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def cpu_seconds(pids):
    """utime + stime of these processes (and nginx's worker, a child)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def start(name, root, port):
    log = tempfile.TemporaryFile()
    if name == "echo-server":
        cmd = [ECHO, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--static-root", root]
    else:
        prefix = tempfile.mkdtemp(prefix="uvws-nginx-bench-")
        cache = "open_file_cache max=1000 inactive=20s; open_file_cache_valid 1s;" if "cache" in name else ""
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(prefix=prefix, port=port, root=root, cache=cache))
        cmd = [NGINX, "-c", os.path.join(prefix, "nginx.conf"), "-p", prefix]
    proc = subprocess.Popen(["taskset", "-c", "1"] + cmd, stdout=log, stderr=subprocess.STDOUT)
    return wait_until_listening(proc, port, log, name)


def measure(name, root, duration, warmup):
    port = free_port()
    proc = start(name, root, port)
    try:
        url = "http://127.0.0.1:%d/1k.bin" % port
        subprocess.run(["taskset", "-c", "0", WRK, "-t1", "-c32", "-d%ds" % max(1, round(warmup)), url],
                       capture_output=True, timeout=warmup + 40)
        pids = [proc.pid] + children(proc.pid)
        before = cpu_seconds(pids)
        result = subprocess.run(["taskset", "-c", "0", WRK, "-t1", "-c32", "-d%ds" % max(1, round(duration)), url],
                                capture_output=True, text=True, timeout=duration + 30)
        used = cpu_seconds(pids) - before
    finally:
        stop(proc)
    out = result.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError("%s answered with errors:\n%s" % (name, out))
    seconds = float(re.search(r"requests in ([\d.]+)s", out).group(1))
    return {"requests": requests, "seconds": seconds, "serverCPUSeconds": used,
            "requestsPerSecond": requests / seconds, "requestsPerServerCPUSecond": requests / used if used else None}


def stall_comparison(baseline, repeats=3):
    """The slow-reader load of Tests/Interop/test_static_files.py against the
    old binary and this one (see the module's notes)."""
    sys.path.insert(0, os.path.join(TOP, "Tests", "Interop"))
    os.environ.setdefault("WS_BENCH", os.path.join(HERE, ".build", "release", "ws-bench"))
    import conftest
    from test_static_files import echo_p99_during_slow_downloads, peak_rss_kib
    root = tempfile.mkdtemp(prefix="uvws-stall-")
    with open(os.path.join(root, "b16.bin"), "wb") as f:
        for _ in range(16):
            f.write(bytes(range(256)) * 4096)
    rows = {}
    for _ in range(repeats):
        for restart in (None, 2 << 20):
            for label, binary in (("blocking read, whole file (baseline)", baseline), ("thread pool, streamed", ECHO)):
                conftest.ECHO_SERVER = binary
                server = conftest.EchoServer("--static-root", root)
                try:
                    report, _ = echo_p99_during_slow_downloads(server.port, "/b16.bin", restart_after=restart)
                    rss = peak_rss_kib(server.proc.pid)
                finally:
                    server.stop()
                key = "%s|%s" % ("readers restart every 2 MB" if restart else "readers download once", label)
                rows.setdefault(key, []).append({"p99": report["latencyMicroseconds"]["p99"],
                                                 "max": report["latencyMicroseconds"]["max"], "peakRSSKiB": rss})
                print(key, rows[key][-1], flush=True)
    return rows


def render_stall(rows):
    lines = ["## The loop while files stream to slow readers", "",
             "`--stall-baseline`: the echo's latency (open loop, 2,000 messages/s over 100 connections) while 4 slow "
             "readers take a 16 MB file, against a blocking baseline (a build of this project that reads each file "
             "whole on the loop thread and queues it whole: what the thread pool and streaming avoid). Medians of 3 runs.", "",
             "| readers | server | echo p99 | echo max | server peak RSS |", "|---|---|---|---|---|"]
    for key, runs in rows.items():
        load, server = key.split("|")
        lines.append("| %s | %s | %s µs | %s µs | %s MiB |" % (
            load, server, fmt(statistics.median(r["p99"] for r in runs)), fmt(statistics.median(r["max"] for r in runs)),
            fmt(statistics.median(r["peakRSSKiB"] for r in runs) / 1024, 1)))
    return lines + [""]


def render(path, data):
    runs = data["results"]
    ours = [r["requestsPerServerCPUSecond"] for r in runs["echo-server"]]
    lines = ["# Static files against nginx, side by side", "",
             "Made by `make bench-files` (Benchmarks/run_files_bench.py) %s: %d repeats of %s s (after %s s of "
             "warm-up), the servers alternated within each repeat; medians, with the min-max spread. A 1 KiB file, "
             "32 keep-alive connections from wrk (`-t1 -c32`) on core 0, each server alone on core 1. nginx is "
             "Debian's nginx-light with one worker, `access_log off`, `sendfile on`; the third row adds its "
             "`open_file_cache`. The ratio of the medians and the median of the paired ratios (each repeat's runs, "
             "seconds apart) are both given." % (stamp_line(data), data["repeats"], data["duration"], data["warmup"]),
             "", "| server | requests per server-CPU-second, median | min-max | requests/s (wall), median | "
                 "echo-server ÷ this: ratio of the medians | median of the paired ratios |",
             "|---|---|---|---|---|---|"]
    data["ratios"] = {}
    for name in SERVERS:
        values = [r["requestsPerServerCPUSecond"] for r in runs[name]]
        wall = [r["requestsPerSecond"] for r in runs[name]]
        paired = [a / b for a, b in zip(ours, values) if a and b]
        cells = ["–", "–"] if name == "echo-server" else [fmt(med(ours) / med(values), 2), fmt(med(paired), 2)]
        if name != "echo-server":
            data["ratios"][name] = {"ratioOfMedians": med(ours) / med(values), "medianOfPaired": med(paired)}
        lines.append("| %s | %s | %s-%s | %s | %s | %s |" % (name, fmt(med(values)), fmt(min(values)), fmt(max(values)),
                                                          fmt(med(wall)), *cells))
    lines.append("")
    if data.get("stall"):
        lines += render_stall(data["stall"])
    lines += [NOTES]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


NOTES = """## What each server does per request

- **echo-server** parses the request head, maps the path, finds the file in
  its loop's memory cache (checked on disk again once a second, on libuv's
  thread pool), and writes head and body with one `send`. The request and
  the response are one `read` and one `sendmsg`.
- **nginx** (defaults) opens the file, `fstat`s it, sends the head and
  `sendfile`s the body, and closes the file, per request. With
  `open_file_cache` it keeps the descriptor and its metadata.

The aim is at least 0.8× nginx on this figure; both statistics must meet it."""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--out", default=os.path.join(TOP, "docs", "benchmarks-files.md"))
    parser.add_argument("--render", help="re-render the page from a saved JSON")
    parser.add_argument("--stall-baseline", help="an older echo-server to compare the loop's latency with")
    args = parser.parse_args()
    if args.render:
        with open(args.render) as f:
            data = json.load(f)
        render(os.path.splitext(args.render)[0] + ".md", data)
        return
    root = tempfile.mkdtemp(prefix="uvws-files-bench-")
    os.chmod(root, 0o755)
    with open(os.path.join(root, "1k.bin"), "wb") as f:
        f.write(bytes(range(256)) * 4)
    os.chmod(os.path.join(root, "1k.bin"), 0o644)
    data = {**run_stamp(), "repeats": args.repeats, "duration": args.duration, "warmup": args.warmup,
            "results": {name: [] for name in SERVERS}}
    for repeat in range(args.repeats):
        order = SERVERS if repeat % 2 == 0 else list(reversed(SERVERS))
        for name in order:
            result = measure(name, root, args.duration, args.warmup)
            data["results"][name].append(result)
            print("repeat %d %-22s %s req per server-CPU-s, %s req/s" % (
                repeat + 1, name, fmt(result["requestsPerServerCPUSecond"]), fmt(result["requestsPerSecond"])), flush=True)
            time.sleep(0.2)
    if args.stall_baseline:
        data["stall"] = stall_comparison(args.stall_baseline)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1)
    render(args.out, data)
    print(open(args.out).read())


if __name__ == "__main__":
    main()
