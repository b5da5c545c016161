#!/usr/bin/env python3
"""TLS, side by side: docs/benchmarks-tls.md (and .json).

Three questions, every server pinned to core 1 and ws-bench to core 0, the
servers alternated within each repeat, medians over the repeats:

1. What does TLS cost per message? 100 connections x 1 KiB, 16 in flight, in
   messages per server-CPU-second: echo-server over ws:// and over wss://,
   node `ws` on node's https server, and SwiftNIO's NIOWebSocket behind
   NIOSSL (BoringSSL). All TLS servers use the same certificate (ECDSA P-256).
2. What does an idle TLS connection hold? 10,000 connections, opened and
   left idle; server RSS per connection over its own baseline, ws:// and wss://.
3. How many handshakes does a core do? 3,000 connections opened (TCP, TLS,
   the WebSocket upgrade), held a second and closed; the server's CPU time
   for all of it, from /proc, divided into the connections.

Every load goes to 127.0.0.1 only and every run is bounded in time.

Usage: run_tls_bench.py [--repeats N] [--duration S] [--out docs/benchmarks-tls.md]
       run_tls_bench.py --render docs/benchmarks-tls.json
"""
import argparse
import contextlib
import os
import subprocess
import tempfile
import time

from run_bench import render_saved, run_stamp, save_run, stamp_line, BIN, HERE, TOP, fmt, free_port, med, stop, wait_until_listening, ws_bench_json

ECHO = os.path.join(TOP, ".build", "release", "echo-server")
WS_BENCH = os.path.join(BIN, "ws-bench")
# Set by main once the run's certificate is made.
CA_FILE = [None]


def servers(cert, key):
    tls = ["--tls-cert", cert, "--tls-key", key]
    return {
        "echo-server ws://": (lambda p: [ECHO, "--host", "127.0.0.1", "--port", str(p), "--log-level", "warning"], "ws"),
        "echo-server wss://": (lambda p: [ECHO, "--host", "127.0.0.1", "--port", str(p), "--log-level", "warning"] + tls,
                               "wss"),
        "node ws, https": (lambda p: ["node", os.path.join(HERE, "peers", "ws-echo.js"), str(p), "--tls", cert, key], "wss"),
        "SwiftNIO + NIOSSL": (lambda p: [os.path.join(BIN, "nio-echo"), str(p), cert, key], "wss"),
    }


def start(command, port):
    log = tempfile.TemporaryFile()
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs")
    proc = subprocess.Popen(["taskset", "-c", "1"] + command(port), stdout=log, stderr=subprocess.STDOUT, env=env)
    return wait_until_listening(proc, port, log, command(port)[0])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ws_bench(scheme, port, pid, flags, timeout):
    cmd = ["taskset", "-c", "0", WS_BENCH, "--url", "%s://127.0.0.1:%d/ws" % (scheme, port),
           "--server-pid", str(pid)] + flags
    if scheme == "wss":
        # The run's own certificate, verified against the authority that
        # signed it (make-tls-cert.sh writes ca.pem beside it).
        cmd += ["--ca-file", CA_FILE[0]]
    return ws_bench_json(cmd, timeout)


@contextlib.contextmanager
def serving(command):
    """A server on a free port, stopped (SIGTERM) when the block ends."""
    port = free_port()
    proc = start(command, port)
    try:
        yield port, proc
    finally:
        stop(proc)


def throughput(command, scheme, duration, warmup):
    with serving(command) as (port, proc):
        report = ws_bench(scheme, port, proc.pid, ["--connections", "100", "--size", "1024", "--in-flight", "16",
                                                  "--duration", str(duration), "--warmup", str(warmup)],
                          duration + warmup + 120)
    return report["messagesPerServerCPUSecond"]


def idle_flags(connections, seconds):
    return ["--idle", "--connections", str(connections), "--source-addresses", "4", "--duration", str(seconds),
            "--warmup", "0"]


def idle(command, scheme, connections):
    with serving(command) as (port, proc):
        report = ws_bench(scheme, port, proc.pid, idle_flags(connections, 3), 300)
    return report["idleBytesPerConnection"]


def handshakes(command, scheme, connections):
    with serving(command) as (port, proc):
        before = cpu_seconds(proc.pid)
        ws_bench(scheme, port, proc.pid, idle_flags(connections, 1), 300)
        time.sleep(0.5)  # the closes' last callbacks
        spent = cpu_seconds(proc.pid) - before
    return connections / spent if spent > 0 else None


def render(path, data):
    t = data["throughput"]
    plain, ours = t["echo-server ws://"], t["echo-server wss://"]
    paired = lambda a, b: med([y / x for x, y in zip(a, b) if x and y])
    lines = ["# TLS, side by side", "",
             "Made by `make bench-tls` (Benchmarks/run_tls_bench.py) %s: %d repeats, servers alternated within each, "
             "every server on core 1 and ws-bench on core 0; medians with the min-max spread. Ratios are given both as "
             "the ratio of the medians and as the median of the paired ratios (each repeat's runs, seconds apart); we count "
             "an aim as met only when both statistics meet it. One certificate (ECDSA P-256) for every TLS server; TLS 1.3 "
             "everywhere (ws-bench's client offers it, every server takes it). The client offers OpenSSL's default "
             "order, AES-256-GCM first: echo-server's own order picks AES-128-GCM, node and NIOSSL follow the client "
             "(about 6%% more per byte here, by `openssl speed`)." % (stamp_line(data), data["repeats"]), "",
             "![TLS throughput and idle memory](benchmarks-tls.png)", "",
             "## 100 connections x 1 KiB, 16 in flight (%s s each, after %s s of warm-up)" % (data["duration"], data["warmup"]),
             "", "| server | msg per server-CPU-second, median | min-max |", "|---|---|---|"]
    for name, values in t.items():
        lines.append("| %s | %s | %s-%s |" % (name, fmt(med(values)), fmt(min(values)), fmt(max(values))))
    lines += ["", "- echo-server wss:// ÷ its own ws://: **%s** (ratio of the medians), **%s** (median of the paired "
              "ratios)." % (fmt(med(ours) / med(plain), 3), fmt(paired(plain, ours), 3))]
    for peer in ("node ws, https", "SwiftNIO + NIOSSL"):
        if t.get(peer):
            lines.append("- echo-server wss:// ÷ %s: **%s** (ratio of the medians), **%s** (median of the paired "
                         "ratios)." % (peer, fmt(med(ours) / med(t[peer]), 2), fmt(paired(t[peer], ours), 2)))
    i = data["idle"]
    lines += ["", "## %s idle connections" % fmt(data["idleConnections"]), "",
              "| server | B of RSS per idle connection, median | each run |", "|---|---|---|"]
    for name, values in i.items():
        lines.append("| %s | %s | %s |" % (name, fmt(med(values)), ", ".join(fmt(v) for v in values)))
    lines += ["", "TLS adds **%s B** per idle connection (difference of the medians)." %
              fmt(med(i["echo-server wss://"]) - med(i["echo-server ws://"]))]
    h = data["handshakes"]
    lines += ["", "## Opening %s connections (TCP, then TLS, then the WebSocket upgrade), held 1 s, closed" %
              fmt(data["handshakeConnections"]), "",
              "| server | connections per server-CPU-second, median | each run |", "|---|---|---|"]
    for name, values in h.items():
        lines.append("| %s | %s | %s |" % (name, fmt(med(values)), ", ".join(fmt(v) for v in values)))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def chart(path, data):
    """Two panels: messages per server-CPU-second, and RSS per idle connection."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is missing (make bench-deps installs it): %s not drawn" % path)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [2, 1.3]})
    colors = ["#9aa3b2", "#2f6fde", "#e07b39", "#3c9d5d"]
    names = list(data["throughput"])
    values = [med(data["throughput"][n]) for n in names]
    bars = a.barh(names, values, color=colors[:len(names)])
    for bar, v in zip(bars, values):
        a.annotate(fmt(v), (v, bar.get_y() + bar.get_height() / 2), va="center", ha="left", fontsize=8)
    a.invert_yaxis()
    a.set_xlim(0, max(values) * 1.2)
    a.set_xlabel("messages per server-CPU-second (median)")
    a.set_title("100 connections x 1 KiB, 16 in flight")
    idle_names = list(data["idle"])
    idle_values = [med(data["idle"][n]) for n in idle_names]
    bars = b.barh(idle_names, idle_values, color=colors[:len(idle_names)])
    for bar, v in zip(bars, idle_values):
        b.annotate("%s B" % fmt(v), (v, bar.get_y() + bar.get_height() / 2), va="center", ha="left", fontsize=8)
    b.invert_yaxis()
    b.set_xlim(0, max(idle_values) * 1.35)
    b.set_xlabel("bytes of server RSS per idle connection")
    b.set_title("%s idle connections" % fmt(data["idleConnections"]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--idle-connections", type=int, default=10000)
    parser.add_argument("--handshake-connections", type=int, default=3000)
    parser.add_argument("--out", default=os.path.join(TOP, "docs", "benchmarks-tls.md"))
    parser.add_argument("--render", help="re-render the page from a saved JSON")
    args = parser.parse_args()
    if args.render:
        return render_saved(args.render, render, chart)
    folder = tempfile.mkdtemp(prefix="uvws-tls-bench-")
    subprocess.run(["bash", os.path.join(TOP, "scripts", "make-tls-cert.sh"), folder], check=True, stdout=subprocess.DEVNULL)
    table = servers(os.path.join(folder, "server.pem"), os.path.join(folder, "server.key"))
    CA_FILE[0] = os.path.join(folder, "ca.pem")
    ours = ["echo-server ws://", "echo-server wss://"]
    data = {**run_stamp(), "repeats": args.repeats, "duration": args.duration, "warmup": args.warmup,
            "idleConnections": args.idle_connections, "handshakeConnections": args.handshake_connections,
            "throughput": {n: [] for n in table}, "idle": {n: [] for n in ours}, "handshakes": {n: [] for n in ours}}
    for repeat in range(args.repeats):
        names = list(table) if repeat % 2 == 0 else list(reversed(table))
        for name in names:
            command, scheme = table[name]
            value = throughput(command, scheme, args.duration, args.warmup)
            data["throughput"][name].append(value)
            print("repeat %d 1 KiB %-22s %s" % (repeat + 1, name, fmt(value)), flush=True)
        if repeat < 3:
            for name in (ours if repeat % 2 == 0 else list(reversed(ours))):
                command, scheme = table[name]
                data["idle"][name].append(idle(command, scheme, args.idle_connections))
                data["handshakes"][name].append(handshakes(command, scheme, args.handshake_connections))
                print("repeat %d idle %-22s %s B, %s connections per CPU-second" % (
                    repeat + 1, name, fmt(data["idle"][name][-1]), fmt(data["handshakes"][name][-1])), flush=True)
    save_run(args.out, data, render, chart)


if __name__ == "__main__":
    main()
