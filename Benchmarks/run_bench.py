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
SERVERS["echo-server, 4 KiB ring"] = SERVERS["echo-server"]
RING_64K = ["--receive-buffer-size", "65536"]

FULL = [
    # (key, title, connections, size, in-flight, server flags, extra servers)
    ("16B-1", "100 connections × 16 B, 1 in flight", 100, 16, 1, {}, []),
    ("16B-16", "100 connections × 16 B, 16 in flight", 100, 16, 16, {}, []),
    ("1KiB-16", "100 connections × 1 KiB, 16 in flight", 100, 1024, 16, {}, []),
    # The raw echo reads 64 KiB at a time; echo-server gets the same read size
    # (ReceiveBufferSize 64 KiB, the tuning docs/options.md gives for large
    # messages). The default 4 KiB ring is measured too.
    ("64KiB-4", "10 connections × 64 KiB, 4 in flight", 10, 65536, 4,
     {"echo-server": RING_64K}, ["echo-server, 4 KiB ring"]),
]
QUICK = [FULL[1], FULL[3]]


def start(name, port, flags=()):
    cmd, _ = SERVERS[name]
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs")
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(["taskset", "-c", "1"] + cmd(port) + list(flags), stdout=log, stderr=subprocess.STDOUT, env=env)
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


def bench(name, args, duration, warmup, flags=()):
    port = free_port()
    proc = start(name, port, flags)
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    try:
        cmd = ["taskset", "-c", "0", os.path.join(BIN, "ws-bench"), "--url", "ws://127.0.0.1:%d/ws" % port,
               "--duration", str(duration), "--warmup", str(warmup), "--server-pid", str(proc.pid),
               "--json", out, "--quiet"] + args + SERVERS[name][1]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + warmup + 120)
        if result.returncode != 0:
            raise RuntimeError("ws-bench against %s failed:\n%s%s" % (name, result.stdout, result.stderr))
        with open(out) as f:
            return json.load(f)
    finally:
        stop(proc)
        os.unlink(out)


def med(values):
    return statistics.median(values) if values else float("nan")


def fmt(x, digits=0):
    if x is None or x != x:
        return "–"
    return "{:,.{}f}".format(x, digits)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(TOP, "docs", "benchmarks.md"))
    ap.add_argument("--render", metavar="JSON", help="only render the page again from a saved run")
    ap.add_argument("--idle-connections", type=int)
    ap.add_argument("--servers", default=";".join(MAIN_SERVERS), help="names separated by ';'")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        render(args.out, saved["load_markdown"])
        keys = set(saved["summary"])
        scenarios = [x for x in FULL if x[0] in keys]
        servers = [n for n in MAIN_SERVERS if any(n in saved["summary"][k] for k in keys)]
        chart(os.path.join(os.path.dirname(args.out), "benchmarks.png"), scenarios, servers, saved["summary"], saved["idle"])
        return 0
    scenarios = QUICK if args.quick else FULL
    duration, warmup = (2.0, 0.5) if args.quick else (5.0, 1.0)
    idle_n = args.idle_connections or (2000 if args.quick else 10000)
    servers = args.servers.split(";")
    started = time.time()

    results = {s[0]: {n: [] for n in servers + s[6]} for s in scenarios}
    idle = {n: [] for n in servers}
    for r in range(args.repeats):
        for key, title, conns, size, inflight, flags, extra in scenarios:
            # Alternate the order each repeat, so no server always runs first.
            names = servers + extra
            order = names if r % 2 == 0 else list(reversed(names))
            for name in order:
                rep = bench(name, ["--connections", str(conns), "--size", str(size), "--in-flight", str(inflight)],
                            duration, warmup, flags.get(name, []))
                results[key][name].append(rep)
                print("[%4.0fs] repeat %d %-8s %-28s %10.0f msg/s  server CPU %5.2fs  %10.0f msg/CPU-s" % (
                    time.time() - started, r + 1, key, name, rep["messagesPerSecond"], rep["serverCPUSeconds"] or 0,
                    rep["messagesPerServerCPUSecond"] or 0), flush=True)
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
    for key, title, conns, size, inflight, flags, extra in scenarios:
        lines.append("### %s" % title)
        lines.append("")
        lines.append("| server | msg/s | server CPU % | msg per server-CPU-second | echo-server ÷ this (per CPU-s) | p50 µs | p99 µs | client CPU % |")
        lines.append("|---|---|---|---|---|---|---|---|")
        ours = med([r["messagesPerServerCPUSecond"] for r in results[key].get("echo-server", [])])
        for name in servers + extra:
            runs = results[key][name]
            rate = [r["messagesPerSecond"] for r in runs]
            per_cpu = [r["messagesPerServerCPUSecond"] for r in runs if r["messagesPerServerCPUSecond"]]
            cpu = [100 * r["serverCPUSeconds"] / r["seconds"] for r in runs if r["serverCPUSeconds"] is not None]
            ccpu = [100 * r["clientCPUSeconds"] / r["seconds"] for r in runs]
            p50 = [r["latencyMicroseconds"]["p50"] for r in runs]
            p99 = [r["latencyMicroseconds"]["p99"] for r in runs]
            ratio = ours / med(per_cpu) if per_cpu else float("nan")
            summary.setdefault(key, {})[name] = med(per_cpu)
            label = name + (" (%s)" % " ".join(flags[name]) if name in flags else "")
            lines.append("| %s | %s [%s–%s] | %s | %s [%s–%s] | %s | %s | %s | %s |" % (
                label, fmt(med(rate)), fmt(min(rate)), fmt(max(rate)), fmt(med(cpu)),
                fmt(med(per_cpu)), fmt(min(per_cpu) if per_cpu else None), fmt(max(per_cpu) if per_cpu else None),
                fmt(ratio, 2), fmt(med(p50), 1), fmt(med(p99), 1), fmt(med(ccpu))))
        lines.append("")
    lines.append("### %d idle connections (RSS per connection over the server's own baseline)" % idle_n)
    lines.append("")
    lines.append("| server | B per idle connection | server RSS before → after |")
    lines.append("|---|---|---|")
    for name in servers:
        for r in idle[name]:
            lines.append("| %s | %s | %s → %s KiB |" % (name, fmt(r["idleBytesPerConnection"]),
                                                   fmt(r["serverRSSBefore"] / 1024), fmt(r["serverRSSAfter"] / 1024)))
    lines.append("")
    load = "\n".join(lines)
    with open(os.path.splitext(path)[0] + "-load.json", "w") as f:
        json.dump({"results": results, "idle": idle, "summary": summary, "load_markdown": load}, f, indent=1)
    chart(os.path.join(os.path.dirname(path), "benchmarks.png" if not args.quick else "benchmarks-quick.png"),
          scenarios, servers, summary, idle)
    render(path, load)


def render(path, load):
    """The page: the template's prose around the load tables and the micro
    benchmark table (Benchmarks/micro-results.md, from `make bench-micro`)."""
    with open(os.path.join(HERE, "report-template.md")) as f:
        page = f.read()
    micro_path = os.path.join(HERE, "micro-results.md")
    micro = open(micro_path).read().strip() if os.path.exists(micro_path) else "(run `make bench-micro`)"
    page = page.replace("{{LOAD_RESULTS}}", load.strip()).replace("{{MICRO_RESULTS}}", micro)
    with open(path, "w") as f:
        f.write(page)
    print("wrote %s" % path)


def chart(path, scenarios, servers, summary, idle):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 1.3]})
    width = 0.8 / len(servers)
    colors = ["#2f6fde", "#9aa3b2", "#e07b39", "#3c9d5d", "#a05195"]
    ceiling = "libuv raw TCP echo"
    for i, name in enumerate(servers):
        # Relative to the raw echo of the same scenario, so that 16 B and
        # 64 KiB share one scale.
        values = [(summary[s[0]].get(name) or 0) / (summary[s[0]].get(ceiling) or float("nan")) for s in scenarios]
        bars = a.bar([x + i * width for x in range(len(scenarios))], values, width, label=name, color=colors[i % 5])
        if name == "echo-server":
            for bar, v in zip(bars, values):
                a.annotate("%.2f" % v, (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    a.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(scenarios))])
    a.set_xticklabels([s[1].replace(" connections", "").replace(", ", "\n") for s in scenarios], fontsize=8)
    a.axhline(1.0, color="#9aa3b2", linewidth=0.8, linestyle="--")
    a.set_ylabel("messages per server-CPU-second\nrelative to the raw libuv TCP echo")
    a.set_title("Echo throughput per unit of server CPU (median of repeats)")
    a.set_ylim(0, 1.35)
    a.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)
    names = [n for n in servers if idle[n]]
    b.barh(names, [med([r["idleBytesPerConnection"] for r in idle[n]]) for n in names],
           color=[colors[servers.index(n) % 5] for n in names])
    b.set_xlabel("bytes of server RSS per idle connection")
    b.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    b.set_title("Idle memory")
    b.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
