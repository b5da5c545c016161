#!/usr/bin/env python3
"""Runs the load-benchmark matrix side by side and writes docs/benchmarks.md.

Every server gets core 1 and ws-bench core 0 (taskset). Within each repeat the
servers take turns, so slow drifts of this shared machine hit them alike; the
report gives medians over the repeats, the min-max spread, the ratio to
echo-server, server CPU, messages per server-CPU-second and, for the idle
scenario, RSS per connection. Every load goes to 127.0.0.1 only and every run
is bounded in time.

Usage: run_bench.py [--quick] [--repeats N] [--out docs/benchmarks.md]
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
BIN = os.path.join(HERE, ".build", "release")
VENV_PY = os.path.join(TOP, ".venv", "bin", "python")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# name -> (command builder, ws-bench extra flags)
SERVERS = {
    "echo-server": (lambda p: [os.path.join(TOP, ".build", "release", "echo-server"), "--host", "127.0.0.1", "--port", str(p),
                               "--log-level", "warning"], []),
    "libuv raw TCP echo": (lambda p: [os.path.join(BIN, "uv-tcp-echo"), str(p)], ["--raw"]),
    "SwiftNIO NIOWebSocket": (lambda p: [os.path.join(BIN, "nio-echo"), str(p)], []),
    "node ws": (lambda p: ["node", os.path.join(HERE, "peers", "ws-echo.js"), str(p)], []),
    "Python websockets (uvloop)": (lambda p: [VENV_PY, os.path.join(HERE, "peers", "websockets_echo.py"), str(p)], []),
}

MAIN_SERVERS = list(SERVERS)


def add_peers(spec):
    """Extra echo servers for one run, "NAME=PATH;NAME=PATH": binaries built
    elsewhere (µWebSockets' echo, say; docs/benchmarks.md says how) that take
    the port to listen on 127.0.0.1 as their one argument and echo at /ws.
    They join every scenario and the idle figure. Returns their names."""
    names = []
    for item in filter(None, (x.strip() for x in spec.split(";"))):
        name, _, path = item.partition("=")
        if not path or not os.access(path, os.X_OK):
            raise SystemExit("--peers: %r is not NAME=EXECUTABLE" % item)
        SERVERS[name] = ((lambda exe: lambda p: [exe, str(p)])(path), [])
        names.append(name)
    return names
SERVERS["echo-server, 4 KiB reads"] = SERVERS["echo-server"]
READS_4K = ["--receive-buffer-size", "4096"]



@dataclass
class Scenario:
    key: str
    title: str
    connections: int
    size: int
    in_flight: int
    server_flags: dict = field(default_factory=dict)
    extra_servers: list = field(default_factory=list)
    # Only these servers (None: all of them).
    only: list = None
    # Server-bound: a ballast process shares core 1 with the server, so the
    # server gets half a core and is always the bottleneck. On 2 cores this is
    # the one way to measure a server saturated with ws-bench idle part of the
    # time: unbound, a one-core client and the raw echo tie, because both pay
    # the same loopback TCP work per batch (docs/benchmarks.md, "Headroom").
    server_bound: bool = False

    def servers(self, all_servers):
        return [n for n in all_servers if self.only is None or n in self.only] + self.extra_servers


FULL = [
    Scenario("16B-1", "100 connections × 16 B, 1 in flight", 100, 16, 1),
    Scenario("16B-16", "100 connections × 16 B, 16 in flight", 100, 16, 16),
    Scenario("16B-16-bound", "100 connections × 16 B, 16 in flight, server-bound (half of core 1)", 100, 16, 16,
             only=["echo-server", "libuv raw TCP echo"], server_bound=True),
    Scenario("1KiB-16", "100 connections × 1 KiB, 16 in flight", 100, 1024, 16),
    # The raw echo reads 64 KiB at a time; echo-server up to its one receive
    # ring per loop, twice receiveBufferSize (128 KiB by default), so a 64 KiB
    # message comes in one read. Reads sized for ASP.NET's 4 KiB are measured too.
    Scenario("64KiB-1", "10 connections × 64 KiB, 1 in flight", 10, 65536, 1),
    Scenario("64KiB-4", "10 connections × 64 KiB, 4 in flight", 10, 65536, 4,
             server_flags={"echo-server, 4 KiB reads": READS_4K}, extra_servers=["echo-server, 4 KiB reads"]),
]
QUICK = [FULL[1], FULL[2], FULL[5]]


def start_ballast(seconds):
    """A busy loop on core 1 beside the server, ended by its PID (and by
    `timeout` in any case)."""
    return subprocess.Popen(["taskset", "-c", "1", "timeout", str(int(seconds)), "sh", "-c", "while :; do :; done"])


def start(name, port, flags=()):
    cmd, _ = SERVERS[name]
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs")
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(["taskset", "-c", "1"] + cmd(port) + list(flags), stdout=log, stderr=subprocess.STDOUT, env=env)
    return wait_until_listening(proc, port, log, name)


def wait_until_listening(proc, port, log, name):
    """`proc` once it accepts on `port`; its log in the error if it never does."""
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    log.seek(0)
    raise RuntimeError("%s did not start: %s" % (name, log.read().decode(errors="replace")))


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ws_bench_json(command, timeout, what="the server"):
    """Runs a ws-bench command line with `--json` and `--quiet` added, bounded
    by `timeout` seconds, and returns its --json report; a failed run raises
    with ws-bench's output."""
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    try:
        result = subprocess.run(list(command) + ["--json", out, "--quiet"], capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError("ws-bench against %s failed:\n%s%s" % (what, result.stdout, result.stderr))
        with open(out) as f:
            return json.load(f)
    finally:
        os.unlink(out)


def bench(name, args, duration, warmup, flags=(), server_bound=False):
    port = free_port()
    proc = start(name, port, flags)
    ballast = start_ballast(duration + warmup + 60) if server_bound else None
    try:
        cmd = ["taskset", "-c", "0", os.path.join(BIN, "ws-bench"), "--url", "ws://127.0.0.1:%d/ws" % port,
               "--duration", str(duration), "--warmup", str(warmup), "--server-pid", str(proc.pid)]
        return ws_bench_json(cmd + args + SERVERS[name][1], duration + warmup + 120, name)
    finally:
        if ballast:
            stop(ballast)
        stop(proc)


def run_stamp():
    """What a page says of its run: the date, the commit measured (with
    "+changes" when the tree differed from it) and the machine."""
    import datetime
    import platform
    commit = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", TOP, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "commit": commit + ("+changes" if dirty else ""),
            "machine": "%s, %d cores" % (platform.platform(), os.cpu_count())}


def render_saved(path, render, chart=None):
    """`--render JSON`: the page (and its chart) again from a saved run."""
    with open(path) as f:
        data = json.load(f)
    render(os.path.splitext(path)[0] + ".md", data)
    if chart:
        chart(os.path.splitext(path)[0] + ".png", data)


def save_run(out, data, render, chart=None):
    """A run's JSON beside its page `out` (and chart), then the page printed."""
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1)
    render(out, data)
    if chart:
        chart(os.path.splitext(out)[0] + ".png", data)
    print(open(out).read())


def stamp_line(data):
    """"on DATE at commit C, on MACHINE" from a saved run (older runs saved the date only)."""
    return "on %s at commit %s, on %s" % (data.get("date", "an unrecorded date"), data.get("commit", "(not recorded)"),
                                         data.get("machine", "this 2-core machine"))


def med(values):
    return statistics.median(values) if values else float("nan")


def fmt(x, digits=0):
    if x is None or x != x:
        return "–"
    return "{:,.{}f}".format(x, digits)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, help="default 5, or 3 with --quick")
    ap.add_argument("--out", default=os.path.join(TOP, "docs", "benchmarks.md"))
    ap.add_argument("--render", metavar="JSON", help="only render the page again from a saved run")
    ap.add_argument("--idle-connections", type=int)
    ap.add_argument("--servers", default=";".join(MAIN_SERVERS), help="names separated by ';'")
    ap.add_argument("--peers", default=os.environ.get("BENCH_PEERS", ""),
                    help="extra echo servers, 'NAME=PATH;...' (default: $BENCH_PEERS); see add_peers")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        # The Summary section is computed again from the saved runs, so a
        # change to how it reads them needs no new run.
        load = saved["load_markdown"]
        idle_n = 0
        for line in load.splitlines():
            if line.startswith("### ") and "idle connections" in line:
                idle_n = int(line.split()[1].replace(",", ""))
        for old in ("### Targets", "### Summary"):
            if old in load:
                load = load[:load.index(old)].rstrip() + "\n\n"
        load += "\n".join(summary_table(saved["results"], saved["summary"], saved["idle"], idle_n))
        saved["load_markdown"] = load
        with open(args.render, "w") as f:
            json.dump(saved, f, indent=1)
        render(args.out, load)
        keys = set(saved["summary"])
        scenarios = [x for x in FULL if x.key in keys]
        servers = [n for n in MAIN_SERVERS if any(n in saved["summary"][k] for k in keys)]
        # Extra peers of that run (BENCH_PEERS) keep their bars.
        servers += [n for n in saved["idle"] if n not in servers and saved["idle"][n]]
        chart(os.path.join(os.path.dirname(args.out), "benchmarks.png"), scenarios, servers, saved["summary"], saved["idle"])
        return 0
    scenarios = QUICK if args.quick else FULL
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    duration, warmup = (2.0, 0.5) if args.quick else (5.0, 1.0)
    idle_n = args.idle_connections or (2000 if args.quick else 10000)
    peers = add_peers(args.peers)
    servers = args.servers.split(";") + peers
    for sc in scenarios:
        if sc.only is not None:
            sc.only = sc.only + peers
    started = time.time()

    results = {s.key: {n: [] for n in s.servers(servers)} for s in scenarios}
    idle = {n: [] for n in servers}
    for r in range(args.repeats):
        for sc in scenarios:
            # Alternate the order each repeat, so no server always runs first.
            names = sc.servers(servers)
            order = names if r % 2 == 0 else list(reversed(names))
            for name in order:
                rep = bench(name, ["--connections", str(sc.connections), "--size", str(sc.size),
                                   "--in-flight", str(sc.in_flight)],
                            duration, warmup, sc.server_flags.get(name, []), sc.server_bound)
                results[sc.key][name].append(rep)
                print("[%4.0fs] repeat %d %-12s %-28s %10.0f msg/s  server CPU %5.2fs  %10.0f msg/CPU-s  client CPU %3.0f%%" % (
                    time.time() - started, r + 1, sc.key, name, rep["messagesPerSecond"], rep["serverCPUSeconds"] or 0,
                    rep["messagesPerServerCPUSecond"] or 0, 100 * rep["clientCPUSeconds"] / rep["seconds"]), flush=True)
    for name in servers:
        if name == "libuv raw TCP echo":
            continue  # it has no WebSocket handshake to hold idle connections with
        rep = bench(name, ["--idle", "--connections", str(idle_n), "--source-addresses", "4"], 3.0, 0)
        idle[name].append(rep)
        print("[%4.0fs] idle %d %-28s %s B per connection" % (time.time() - started, idle_n, name, rep["idleBytesPerConnection"]), flush=True)

    write_report(args.out, scenarios, servers, results, idle, idle_n, args, duration, warmup, time.time() - started)


def write_report(path, scenarios, servers, results, idle, idle_n, args, duration, warmup, elapsed):
    lines = ["<!-- Tables written by Benchmarks/run_bench.py%s on %s. -->" % (
        " --quick" if args.quick else "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), ""]
    lines.append("Each cell: median of %d runs of %.0f s (after %.1f s warm-up), [min–max]. Server on core 1, ws-bench on core 0. "
                 "Run took %.0f s." % (args.repeats, duration, warmup, elapsed))
    lines.append("")
    summary = {}
    for sc in scenarios:
        key, flags = sc.key, sc.server_flags
        lines.append("### %s" % sc.title)
        lines.append("")
        lines.append("| server | msg/s | server CPU % (kernel share) | msg per server-CPU-second | echo-server ÷ this (per CPU-s) "
                     "| p50 µs | p99 µs | client CPU % (kernel share) |")
        lines.append("|---|---|---|---|---|---|---|---|")
        ours = med([r["messagesPerServerCPUSecond"] for r in results[key].get("echo-server", [])])
        for name in sc.servers(servers):
            runs = results[key][name]
            rate = [r["messagesPerSecond"] for r in runs]
            per_cpu = [r["messagesPerServerCPUSecond"] for r in runs if r["messagesPerServerCPUSecond"]]
            cpu = [100 * r["serverCPUSeconds"] / r["seconds"] for r in runs if r["serverCPUSeconds"] is not None]
            ccpu = [100 * r["clientCPUSeconds"] / r["seconds"] for r in runs]
            kernel = [100 * r["serverKernelCPUSeconds"] / r["serverCPUSeconds"] for r in runs
                      if r.get("serverKernelCPUSeconds") is not None and r["serverCPUSeconds"]]
            ckernel = [100 * r["clientKernelCPUSeconds"] / r["clientCPUSeconds"] for r in runs if r["clientCPUSeconds"]]
            p50 = [r["latencyMicroseconds"]["p50"] for r in runs]
            p99 = [r["latencyMicroseconds"]["p99"] for r in runs]
            ratio = ours / med(per_cpu) if per_cpu else float("nan")
            summary.setdefault(key, {})[name] = med(per_cpu)
            label = name + (" (%s)" % " ".join(flags[name]) if name in flags else "")
            lines.append("| %s | %s [%s–%s] | %s (%s%%) | %s [%s–%s] | %s | %s | %s | %s (%s%%) |" % (
                label, fmt(med(rate)), fmt(min(rate)), fmt(max(rate)), fmt(med(cpu)), fmt(med(kernel)),
                fmt(med(per_cpu)), fmt(min(per_cpu) if per_cpu else None), fmt(max(per_cpu) if per_cpu else None),
                fmt(ratio, 2), fmt(med(p50), 1), fmt(med(p99), 1), fmt(med(ccpu)), fmt(med(ckernel))))
        lines.append("")
    lines.append("### %d idle connections (RSS per connection over the server's own baseline)" % idle_n)
    lines.append("")
    lines.append("| server | B per idle connection | of which anonymous (heap) | server RSS before → after |")
    lines.append("|---|---|---|---|")
    for name in servers:
        for r in idle[name]:
            lines.append("| %s | %s | %s | %s → %s KiB |" % (name, fmt(r["idleBytesPerConnection"]),
                                                        fmt(r.get("idleAnonymousBytesPerConnection")),
                                                        fmt(r["serverRSSBefore"] / 1024), fmt(r["serverRSSAfter"] / 1024)))
    lines.append("")
    lines.append("The rest of each figure is file-backed: code and libraries the first connections page in, "
                 "a one-time cost (about the same at 1,000 and at 20,000 connections) spread over the %s here."
                 % fmt(idle_n))
    lines.append("")
    lines += summary_table(results, summary, idle, idle_n)
    load = "\n".join(lines)
    # Stamped before the file is opened: opening truncates a tracked file,
    # which would make the stamp say "+changes".
    stamp = run_stamp()
    with open(os.path.splitext(path)[0] + "-load.json", "w") as f:
        json.dump(dict(stamp, results=results, idle=idle, summary=summary, load_markdown=load), f, indent=1)
    chart(os.path.join(os.path.dirname(path), "benchmarks.png" if not args.quick else "benchmarks-quick.png"),
          scenarios, servers, summary, idle)
    render(path, load)


def paired_ratios(runs, ours, other):
    """echo-server ÷ other, per CPU-second, for each repeat: the two ran within
    seconds of each other, so each ratio is one side-by-side measurement."""
    a = [r["messagesPerServerCPUSecond"] for r in runs.get(ours, [])]
    b = [r["messagesPerServerCPUSecond"] for r in runs.get(other, [])]
    return [x / y for x, y in zip(a, b) if x and y]


def summary_table(results, summary, idle, idle_n):
    """The comparisons a user weighs, computed from this run, never typed in."""
    raw, nio, node = "libuv raw TCP echo", "SwiftNIO NIOWebSocket", "node ws"
    rows = []

    def ratio_cells(key, other, percent, ours="echo-server"):
        # The median of the per-repeat ratios: each pairs two runs made
        # seconds apart, which is what alternating the servers is for, so a
        # slow spell of this shared machine cancels out within a pair. The
        # ratio of the two medians pairs nothing; both are shown.
        runs = results.get(key, {})
        pairs = paired_ratios(runs, ours, other)
        if not pairs:
            return None
        of_medians = summary[key][ours] / summary[key][other]
        # Ratios near 1 (against µWebSockets) need a second decimal.
        show = (lambda x: "%.0f%%" % (100 * x)) if percent else (lambda x: ("%.1f×" if x >= 2 else "%.2f×") % x)
        return "%s | %s | %s" % (show(med(pairs)), show(of_medians), ", ".join(show(x) for x in sorted(pairs)))

    def add(what, cells):
        if cells:
            rows.append("| %s | %s |" % (what, cells))

    add("small messages (100 × 16 B, 16 in flight): echo-server ÷ SwiftNIO `NIOWebSocket`", ratio_cells("16B-16", nio, False))
    add("the same: echo-server ÷ node `ws`", ratio_cells("16B-16", node, False))
    add("the same: echo-server as a share of the raw libuv TCP echo (no framing at all)", ratio_cells("16B-16", raw, True))
    add("the same with both servers saturated (server-bound)", ratio_cells("16B-16-bound", raw, True))
    add("large messages (10 × 64 KiB, 4 in flight): share of the raw libuv echo", ratio_cells("64KiB-4", raw, True))
    for peer in [n for n in results.get("16B-16", {}) if n not in MAIN_SERVERS and not n.startswith("echo-server")]:
        add("small messages: echo-server ÷ %s" % peer, ratio_cells("16B-16", peer, False))
        add("the same: %s as a share of the raw libuv echo" % peer, ratio_cells("16B-16", raw, True, ours=peer))
        add("server-bound: echo-server ÷ %s" % peer, ratio_cells("16B-16-bound", peer, False))
        add("the same: %s as a share of the raw libuv echo" % peer, ratio_cells("16B-16-bound", raw, True, ours=peer))
        add("large messages, one in flight: echo-server ÷ %s" % peer, ratio_cells("64KiB-1", peer, False))
        add("large messages, four in flight: echo-server ÷ %s" % peer, ratio_cells("64KiB-4", peer, False))
        add("the same: %s as a share of the raw libuv echo" % peer, ratio_cells("64KiB-4", raw, True, ours=peer))
    if "64KiB-4" in results and results["64KiB-4"].get("echo-server, 4 KiB reads"):
        add("the same with 4 KiB reads (`--receive-buffer-size 4096`)", "– | %.0f%% | –" % (
            100 * summary["64KiB-4"]["echo-server, 4 KiB reads"] / summary["64KiB-4"][raw]))
    rows.append("")
    if idle.get("echo-server"):
        others = ", ".join("%s %s B" % (n, fmt(med([r["idleBytesPerConnection"] for r in idle[n]])))
                           for n in idle if n != "echo-server" and idle[n])
        rows.append("Memory per idle connection at %s: echo-server %s B (%s)." % (
            fmt(idle_n), fmt(med([r["idleBytesPerConnection"] for r in idle["echo-server"]])), others))
        rows.append("")
    bound = results.get("16B-16-bound", {}).get(raw)
    free = results.get("16B-16", {}).get(raw)
    if bound:
        pct = lambda runs, k: med([100 * r[k] / r["seconds"] for r in runs])
        line = ("Load generator headroom: server-bound, the raw echo ran at %.0f%% CPU, its whole share of core 1 "
                "beside the ballast, while ws-bench used %.0f%% of core 0" % (pct(bound, "serverCPUSeconds"),
                                                                            pct(bound, "clientCPUSeconds")))
        if free:
            line += ("; unbound, %.0f%% and %.0f%%: a tie, because both pay the same loopback TCP work "
                     "(see Headroom)" % (pct(free, "serverCPUSeconds"), pct(free, "clientCPUSeconds")))
        rows.append(line + ".")
        rows.append("")
    if len(rows) <= 1:
        return []
    return ["### Summary", "",
            "Messages per server-CPU-second, echo-server against each peer in the same run.", "",
            "| comparison | median of the per-repeat ratios | ratio of the medians | per repeat |",
            "|---|---|---|---|"] + rows


def render(path, load):
    """The page: the template's prose around the load tables and the micro
    benchmark table (Benchmarks/micro-results.md, from `make bench-micro`)."""
    with open(os.path.join(HERE, "report-template.md")) as f:
        page = f.read()
    micro_path = os.path.join(HERE, "micro-results.md")
    micro = open(micro_path).read().strip() if os.path.exists(micro_path) else "(run `make bench-micro`)"
    load_json = os.path.splitext(path)[0] + "-load.json"
    if os.path.exists(load_json):
        with open(load_json) as f:
            saved = json.load(f)
        load = "Run %s.\n\n%s" % (stamp_line(saved), load.strip())
    page = page.replace("{{LOAD_RESULTS}}", load.strip()).replace("{{MICRO_RESULTS}}", micro)
    page = page.replace("{{LOOPS_RESULTS}}", loops_summary()).replace("{{TLS_RESULTS}}", tls_summary())
    page = page.replace("{{ASYNC_RESULTS}}", async_summary()).replace("{{LOADGEN_RESULTS}}", loadgen_summary())
    page = page.replace("{{FILES_RESULTS}}", files_summary()).replace("{{INSTRUCTIONS_RESULTS}}", instructions_summary())
    with open(path, "w") as f:
        f.write(page)
    print("wrote %s" % path)


def loops_summary():
    """The two ratios of docs/benchmarks-loops.json (`make bench-loops`)."""
    path = os.path.join(TOP, "docs", "benchmarks-loops.json")
    if not os.path.exists(path):
        return "(run `make bench-loops`)"
    with open(path) as f:
        data = json.load(f)
    rows = ["| run | metric | 1 loop, median | 2 loops, median | 2 ÷ 1, ratio of the medians | 2 ÷ 1, median of the paired ratios |",
            "|---|---|---|---|---|---|"]
    for key, title, metric in (("same-core", "100 × 16 B, 16 in flight, both on core 1", "messagesPerServerCPUSecond"),
                               ("server-bound", "100 × 1 KiB JSON compressed by the server, both cores",
                                "messagesPerSecond")):
        one = [r[metric] for r in data["results"][key]["1"]]
        two = [r[metric] for r in data["results"][key]["2"]]
        paired = [b / a for a, b in zip(one, two) if a and b]
        unit = "msg per server-CPU-s" if metric == "messagesPerServerCPUSecond" else "msg/s (wall)"
        rows.append("| %s | %s | %s | %s | %s | %s |" % (title, unit, fmt(med(one)), fmt(med(two)),
                                                        fmt(med(two) / med(one), 3), fmt(med(paired), 3)))
    return "From %s, %d repeats alternated:\n\n%s" % (data["date"], data["repeats"], "\n".join(rows))


def instructions_summary():
    """The count of docs/benchmarks-instructions.json (`make bench-instructions`)."""
    path = os.path.join(TOP, "docs", "benchmarks-instructions.json")
    if not os.path.exists(path):
        return "(run `make bench-instructions`)"
    with open(path) as f:
        data = json.load(f)
    return ("The count %s: **%s** instructions per 16 B message for the read callback, **%s** for `readFrames` "
            "(%s messages counted)." % (stamp_line(data), fmt(data["readCallback"]), fmt(data["readFrames"]),
                                        fmt(data["messages"])))


def files_summary():
    """The table of docs/benchmarks-files.json (`make bench-files`)."""
    path = os.path.join(TOP, "docs", "benchmarks-files.json")
    if not os.path.exists(path):
        return "(run `make bench-files`)"
    with open(path) as f:
        data = json.load(f)
    runs = data["results"]
    ours = [r["requestsPerServerCPUSecond"] for r in runs["echo-server"]]
    rows = ["| server | requests per server-CPU-second, median | echo-server ÷ this, ratio of the medians | "
            "median of the paired ratios |", "|---|---|---|---|"]
    for name, values in runs.items():
        values = [r["requestsPerServerCPUSecond"] for r in values]
        paired = [a / b for a, b in zip(ours, values) if a and b]
        cells = ("–", "–") if name == "echo-server" else (fmt(med(ours) / med(values), 2), fmt(med(paired), 2))
        rows.append("| %s | %s | %s | %s |" % (name, fmt(med(values)), *cells))
    return "Run %s, %d repeats alternated:\n\n%s" % (stamp_line(data), data["repeats"], "\n".join(rows))


def loadgen_summary():
    """The figures of docs/benchmarks-loadgen.json (`make bench-loadgen`)."""
    path = os.path.join(TOP, "docs", "benchmarks-loadgen.json")
    if not os.path.exists(path):
        return "(run `make bench-loadgen`)"
    with open(path) as f:
        data = json.load(f)
    ours, theirs = data["ws-bench"], data["load_test"]
    paired = med([a / b for a, b in zip(ours, theirs) if a and b])
    return ("From the run %s, %d repeats alternated: ws-bench %s and load_test %s messages per client-CPU-second "
            "(medians); ws-bench ÷ load_test **%s** (ratio of the medians), **%s** (median of the paired ratios)." % (
                stamp_line(data), data["repeats"], fmt(med(ours)), fmt(med(theirs)), fmt(med(ours) / med(theirs), 2),
                fmt(paired, 2)))


def async_summary():
    """The figures of docs/benchmarks-async.json (`make bench-async`)."""
    path = os.path.join(TOP, "docs", "benchmarks-async.json")
    if not os.path.exists(path):
        return "(run `make bench-async`)"
    with open(path) as f:
        data = json.load(f)
    names = ["echo-server, callbacks", "echo-server --async", "Hummingbird WebSocket"]
    paired = lambda a, b: med([y / x for x, y in zip(a, b) if x and y])
    rows = ["| 100 connections, 16 in flight | %s | async ÷ Hummingbird | async ÷ callbacks |" % " | ".join(names),
            "|---|---|---|---|---|---|"]
    for size, label in (("16", "16 B"), ("1024", "1 KiB")):
        t = data["throughput"][size]
        ours, hb, cb = t[names[1]], t[names[2]], t[names[0]]
        rows.append("| %s, msg per server-CPU-s (median) | %s | %s, %s | %s, %s |" % (
            label, " | ".join(fmt(med(t[n])) for n in names),
            fmt(med(ours) / med(hb), 2), fmt(paired(hb, ours), 2), fmt(med(ours) / med(cb), 2), fmt(paired(cb, ours), 2)))
    return ("From the run %s, %d repeats alternated; each ratio cell gives the ratio of the medians, then the median of the "
            "paired ratios.\n\n%s" % (stamp_line(data), data["repeats"], "\n".join(rows)))


def tls_summary():
    """The figures of docs/benchmarks-tls.json (`make bench-tls`)."""
    path = os.path.join(TOP, "docs", "benchmarks-tls.json")
    if not os.path.exists(path):
        return "(run `make bench-tls`)"
    with open(path) as f:
        data = json.load(f)
    t, i, h = data["throughput"], data["idle"], data["handshakes"]
    plain, ours = t["echo-server ws://"], t["echo-server wss://"]
    paired = lambda a, b: med([y / x for x, y in zip(a, b) if x and y])
    rows = ["| figure | echo-server ws:// | echo-server wss:// | node ws, https | SwiftNIO + NIOSSL |",
            "|---|---|---|---|---|",
            "| 100 × 1 KiB, 16 in flight, msg per server-CPU-s (median) | %s | %s | %s | %s |" % (
                fmt(med(plain)), fmt(med(ours)), fmt(med(t["node ws, https"])), fmt(med(t["SwiftNIO + NIOSSL"]))),
            "| RSS per idle connection at %s (median) | %s B | %s B | | |" % (
                fmt(data["idleConnections"]), fmt(med(i["echo-server ws://"])), fmt(med(i["echo-server wss://"]))),
            "| connections opened per server-CPU-second (median) | %s | %s | | |" % (
                fmt(med(h["echo-server ws://"])), fmt(med(h["echo-server wss://"])))]
    ratios = [("wss:// ÷ ws://", plain), ("wss:// ÷ node ws, https", t["node ws, https"]),
              ("wss:// ÷ SwiftNIO + NIOSSL", t["SwiftNIO + NIOSSL"])]
    lines = ["- %s: %s (ratio of the medians), %s (median of the paired ratios)." % (
        name, fmt(med(ours) / med(other), 2), fmt(paired(other, ours), 2)) for name, other in ratios]
    lines.append("- TLS adds %s B per idle connection." % fmt(med(i["echo-server wss://"]) - med(i["echo-server ws://"])))
    return "From %s, %d repeats alternated (idle and handshakes: 3):\n\n%s\n\n%s" % (
        data["date"], data["repeats"], "\n".join(rows), "\n".join(lines))


def chart(path, scenarios, servers, summary, idle):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is missing (make bench-deps installs it): %s not redrawn" % path)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 1.3]})
    width = 0.8 / len(servers)
    colors = ["#2f6fde", "#9aa3b2", "#e07b39", "#3c9d5d", "#a05195", "#d4a017", "#5b5b5b", "#8c564b"]
    ceiling = "libuv raw TCP echo"
    for i, name in enumerate(servers):
        # Relative to the raw echo of the same scenario, so that 16 B and
        # 64 KiB share one scale.
        # A server a scenario did not run gets no bar (NaN), not a zero.
        values = [(summary[s.key].get(name) or float("nan")) / (summary[s.key].get(ceiling) or float("nan"))
                  for s in scenarios]
        bars = a.bar([x + i * width for x in range(len(scenarios))], values, width, label=name, color=colors[i % len(colors)])
        if name == "echo-server" or name not in MAIN_SERVERS:  # ours and the extra peers (µWebSockets)
            for bar, v in zip(bars, values):
                if v != v:
                    continue
                a.annotate("%.2f" % v, (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    a.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(scenarios))])
    a.set_xticklabels([s.title.replace(" connections", "").replace(" (half of core 1)", "").replace(", ", "\n")
                       for s in scenarios], fontsize=8)
    a.axhline(1.0, color="#9aa3b2", linewidth=0.8, linestyle="--")
    a.set_ylabel("messages per server-CPU-second\nrelative to the raw libuv TCP echo")
    a.set_title("Echo throughput per unit of server CPU (median of repeats)")
    a.set_ylim(0, 1.35)
    a.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)
    names = [n for n in servers if idle[n]]
    b.barh(names, [med([r["idleBytesPerConnection"] for r in idle[n]]) for n in names],
           color=[colors[servers.index(n) % len(colors)] for n in names])
    b.set_xlabel("bytes of server RSS per idle connection")
    b.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    b.set_title("Idle memory")
    b.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
