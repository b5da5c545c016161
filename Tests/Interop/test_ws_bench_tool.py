"""ws-bench as a load tool for any server: URLs with DNS names and verified
certificates, headers and subprotocols, every error class with its exit
status, several threads merged, the per-second series as CSV, the HTML report
(opened in headless Chromium), `compare`, ramps and stages. Servers this
project did not write (Python `websockets`, node `ws`, nginx in front of
echo-server) and echo-server,
all on 127.0.0.1."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from conftest import free_port, headless_chromium
from test_nginx_keepalive import nginx_in_front  # noqa: F401 (a fixture)
from test_ws_bench import WS_BENCH



def bench(url, *args, timeout=60, timing=("--duration", "1", "--warmup", "0.2")):
    """Runs ws-bench (a short window unless `timing` says otherwise); its
    exit status and its --json report."""
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    result = subprocess.run([WS_BENCH, "--url", url, *timing, "--json", out, "--quiet", *args],
                            capture_output=True, text=True, timeout=timeout)
    with open(out) as f:
        text = f.read()
    os.unlink(out)
    return result, (json.loads(text) if text else None)


@pytest.fixture
def python_server():
    """Starts a Python server script of this folder on a free port (its first
    argument) and stops it after the test; returns the port."""
    procs = []

    def start(script, *args):
        port = free_port()
        proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), script), str(port),
                                 *[str(a) for a in args]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        assert "listening" in proc.stdout.readline()
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def python_peer(python_server):
    def start(mode, cert=None, key=None):
        return python_server("py_peer.py", mode, *([cert, key] if cert else []))
    return start


@pytest.fixture
def node_ws():
    """Starts node `ws` (Debian's node-ws) as an echo server on a free port:
    the benchmarks' peer, with its arguments (--compression, or --tls CERT
    KEY); returns the port."""
    procs = []
    script = os.path.join(os.path.dirname(__file__), "..", "..", "Benchmarks", "peers", "ws-echo.js")

    def start(*args):
        port = free_port()
        proc = subprocess.Popen(["node", script, str(port), *[str(a) for a in args]],
                                env={**os.environ, "NODE_PATH": "/usr/share/nodejs"},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        line = proc.stdout.readline()
        assert "listening" in line, line + proc.stdout.read()
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def ok(result, report):
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["failed"] == 0 and report["mismatches"] == 0 and report["messages"] > 10
    assert all(count == 0 for count in report["errors"].values())


def test_python_websockets_over_ws_and_verified_wss(python_peer, certificates):
    folder = certificates()
    ok(*bench("ws://127.0.0.1:%d/" % python_peer("echo"), "--connections", "4", "--in-flight", "4"))
    port = python_peer("echo", folder / "server.pem", folder / "server.key")
    # By name, through the resolver, verified against the run's authority.
    ok(*bench("wss://localhost:%d/" % port, "--connections", "4", "--ca-file", str(folder / "ca.pem")))
    # Against the system's authorities the same certificate is untrusted.
    result, report = bench("wss://localhost:%d/" % port, "--connections", "2")
    assert result.returncode == 1 and report["errors"]["tls-untrusted"] == 2
    ok(*bench("wss://127.0.0.1:%d/" % port, "--connections", "2", "--insecure"))


def test_node_ws_over_ws_wss_and_with_deflate(node_ws, certificates):
    ok(*bench("ws://127.0.0.1:%d/" % node_ws(), "--connections", "8", "--in-flight", "4", "--size", "1024"))
    folder = certificates()
    port = node_ws("--tls", folder / "server.pem", folder / "server.key")
    ok(*bench("wss://localhost:%d/" % port, "--connections", "4", "--ca-file", str(folder / "ca.pem")))
    # permessage-deflate offered and agreed (ws-bench fails the run if refused).
    ok(*bench("ws://127.0.0.1:%d/" % node_ws("--compression"), "--connections", "4", "--compression", "--json-payload",
              "--text", "--size", "2048"))
    result, report = bench("ws://127.0.0.1:%d/" % node_ws(), "--connections", "2", "--compression")
    assert result.returncode == 1 and report["failed"] == 2 and "permessage-deflate" in report["firstError"]


def test_through_nginx_to_echo_server(echo_server, nginx_in_front, certificates):  # noqa: F811
    server = echo_server()
    ok(*bench(nginx_in_front(server.port), "--connections", "8", "--in-flight", "4", "--size", "1024"))
    # nginx terminating TLS with a certificate made for the test, verified.
    folder = certificates()
    url = nginx_in_front(server.port, tls=(folder / "server.pem", folder / "server.key"))
    ok(*bench(url.replace("127.0.0.1", "localhost"), "--connections", "8", "--in-flight", "4", "--size", "1024",
              "--ca-file", str(folder / "ca.pem")))


def test_headers_and_subprotocols_reach_the_server(echo_server):
    server = echo_server("--allowed-origin", "http://good.test", "--subprotocol", "chat.v1")
    ok(*bench(server.url, "--connections", "2", "--header", "Origin: http://good.test", "--subprotocol", "chat.v1"))
    # Another origin is refused (403): the header reached the server, and a
    # refusal is a handshake-status error.
    result, report = bench(server.url, "--connections", "2", "--header", "Origin: http://evil.test")
    assert result.returncode == 1
    assert report["errors"]["handshake-status"] == 2 and report["handshakeStatuses"] == {"403": 2}


def test_every_error_class_is_counted_and_fails_the_run(echo_server, python_peer, certificates):
    closed = free_port()
    result, report = bench("ws://127.0.0.1:%d/ws" % closed, "--connections", "2")
    assert result.returncode == 1 and report["errors"]["refused"] == 2
    result, report = bench("ws://no-such-host.invalid:%d/ws" % closed, "--connections", "2")
    assert result.returncode == 1 and report["errors"]["dns"] == 2
    server = echo_server()
    result, report = bench("ws://127.0.0.1:%d/not-a-route" % server.port, "--connections", "2")
    assert result.returncode == 1 and report["handshakeStatuses"] == {"404": 2}
    other = certificates("other", "DNS:elsewhere.test")
    tls = echo_server("--tls-cert", str(other / "server.pem"), "--tls-key", str(other / "server.key"))
    result, report = bench("wss://localhost:%d/ws" % tls.port, "--connections", "2", "--ca-file", str(other / "ca.pem"))
    assert result.returncode == 1 and report["errors"]["tls-host-mismatch"] == 2
    result, report = bench("ws://127.0.0.1:%d/" % python_peer("close4000"), "--connections", "2")
    assert result.returncode == 1
    assert report["errors"]["closed-by-peer"] == 2 and report["peerCloseCodes"] == {"4000": 2}
    # A listener that never answers the upgrade (the kernel completes the TCP
    # handshake from its backlog; nothing reads the request).
    import socket
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        result, report = bench("ws://127.0.0.1:%d/" % silent.getsockname()[1], "--connections", "2",
                               "--handshake-timeout", "0.5")
    assert result.returncode == 1 and report["errors"]["timeout"] == 2, report["errors"]
    print(result.stdout)


def test_threads_merge_exactly_and_the_series_goes_to_csv(echo_server, tmp_path):
    server = echo_server("--loops", "2")
    csv = tmp_path / "series.csv"
    result, report = bench(server.url, "--connections", "8", "--in-flight", "4", "--threads", "2",
                           "--csv", str(csv), "--server-pid", str(server.proc.pid))
    ok(result, report)
    assert report["threads"] == 2 and report["connected"] == 8
    # The merged histogram's percentiles are ordered and the series adds up.
    l = report["latencyMicroseconds"]
    assert 0 < l["p50"] <= l["p99"] <= l["p99.99"] <= l["max"]
    assert len(report["series"]) >= 1 and all(s["open"] == 8 for s in report["series"])
    rows = csv.read_text().splitlines()
    assert rows[0] == "second,phase,open,messages,p99_us,errors"
    assert len(rows) == len(report["series"]) + 1
    assert sum(int(r.split(",")[3]) for r in rows[1:]) == sum(s["messages"] for s in report["series"])


def test_the_html_report_shows_its_plots_in_chromium(echo_server, tmp_path):
    server = echo_server()
    folder = tmp_path / "report"
    result, _ = bench(server.url, "--connections", "4", "--in-flight", "2", "--duration", "2", "--report", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    page = (folder / "index.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "<script" not in page
    browser = headless_chromium(900, 1600)
    try:
        browser.get("file://%s" % (folder / "index.html"))
        for chart in ("rate", "p99", "open", "distribution"):
            points = browser.execute_script(
                "return document.querySelector('#%s polyline').getAttribute('points').trim().split(' ').length" % chart)
            box = browser.execute_script("return document.querySelector('#%s').getBoundingClientRect().height" % chart)
            assert points >= 2 and box > 100, (chart, points, box)
        rows = browser.execute_script("return document.querySelectorAll('#percentiles tr').length")
        assert rows >= 10
        shot = tmp_path / "report.png"
        browser.save_screenshot(str(shot))
        reports = os.path.join(os.path.dirname(__file__), "..", "..", "reports")
        os.makedirs(reports, exist_ok=True)
        browser.save_screenshot(os.path.join(reports, "ws-bench-report.png"))
    finally:
        browser.quit()
    # The screenshot is not blank: many distinct colours (plots, text).
    from PIL import Image
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50


def test_compare_names_each_statistic(echo_server, tmp_path):
    server = echo_server()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path, extra in ((a, []), (b, ["--rate", "500"])):
        subprocess.run([WS_BENCH, "--url", server.url, "--connections", "2", "--duration", "1", "--warmup", "0.2",
                        "--quiet", "--json", str(path), *extra], check=True, capture_output=True, timeout=60)
    out = subprocess.run([WS_BENCH, "compare", str(a), str(b)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "latency µs, 99th percentile" in out.stdout and "messages per second, mean" in out.stdout
    rate_line = next(line for line in out.stdout.splitlines() if line.startswith("messages per second"))
    # B sent at 500 per second, far under A's closed loop.
    assert float(rate_line.split("B÷A")[1].split()[0]) < 0.5


@pytest.fixture
def stalling_echo(python_server):
    def start(period_ms, stall_ms):
        return python_server("stalling_echo.py", period_ms, stall_ms)
    return start


def test_open_loop_latency_shows_a_stall_as_wrk2_would(stalling_echo):
    """The server blocks 100 ms of every second. A message meant to leave
    during a stall waits for its end, so a tenth of the messages wait
    uniformly 0-100 ms: p95 = 50 ms, p99 = 90 ms, max = 100 ms (plus the
    loopback's base latency). Latency counted from the intended send time
    must show that (within 10%); counted from when a message actually left,
    as a closed loop does, the stall hides."""
    port = stalling_echo(1000, 100)
    url = "ws://127.0.0.1:%d/" % port
    result, report = bench(url, "--connections", "10", "--rate", "1000", "--duration", "6", "--warmup", "1")
    ok(result, report)
    l = report["latencyMicroseconds"]
    base = l["p50"]
    print("open loop:", l)
    p95 = dict((p, v) for p, v in report["latencyPercentilesMicroseconds"])[95]
    assert 0.9 * 50_000 <= p95 <= 1.1 * 50_000 + base, p95
    assert 0.9 * 90_000 <= l["p99"] <= 1.1 * 90_000 + base, l
    assert 0.9 * 100_000 <= l["max"] <= 1.1 * 100_000 + base, l
    # The same stall in a closed loop: the load stops while the server does,
    # so the stall hides from latency.
    result, closed = bench(url, "--connections", "10", "--in-flight", "1", "--duration", "6", "--warmup", "1")
    ok(result, closed)
    print("closed loop:", closed["latencyMicroseconds"])
    assert closed["latencyMicroseconds"]["p99"] < l["p99"] / 2
    # It shows as a dip in throughput instead: with 500 ms stalled of every
    # 2 s, the seconds that hold a stall carry far fewer messages.
    dipping = stalling_echo(2000, 500)
    result, closed = bench("ws://127.0.0.1:%d/" % dipping, "--connections", "10", "--in-flight", "1", "--duration", "6",
                           "--warmup", "1")
    ok(result, closed)
    per_second = [s["messages"] for s in closed["series"] if s["phase"] == "measure"]
    print("closed loop, per second:", per_second)
    assert min(per_second) < 0.8 * max(per_second), per_second


def test_ctrl_c_prints_the_report_so_far(echo_server, tmp_path):
    import signal
    import time
    server = echo_server()
    out = tmp_path / "run.json"
    proc = subprocess.Popen([WS_BENCH, "--url", server.url, "--connections", "4", "--threads", "2", "--duration", "60",
                             "--warmup", "0.5", "--json", str(out), "--quiet"], stdout=subprocess.PIPE, text=True)
    time.sleep(2.5)
    started = time.time()
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=20)
    assert time.time() - started < 10
    assert proc.returncode == 0, stdout
    assert "interrupted (Ctrl-C): the run so far" in stdout
    report = json.loads(out.read_text())
    assert report["interrupted"] and report["messages"] > 100 and 1 < report["seconds"] < 10


def test_connect_scenario_counts_handshakes_against_two_servers(echo_server, python_peer):
    for url in (echo_server().url, "ws://127.0.0.1:%d/" % python_peer("echo")):
        result, report = bench(url, "--scenario", "connect", "--connections", "4", "--threads", "2")
        assert result.returncode == 0, result.stdout + result.stderr
        assert report["scenario"] == "connect" and report["messages"] > 50 and report["failed"] == 0
        l = report["latencyMicroseconds"]
        assert 0 < l["p50"] <= l["p99"] <= l["max"]


def test_request_scenario_sends_the_template_and_times_each_reply(echo_server, python_peer, tmp_path):
    result, report = bench("ws://127.0.0.1:%d/" % python_peer("echo"), "--scenario", "request", "--template",
                           '{"op":"get","id":{{counter}}}', "--connections", "2", "--in-flight", "2")
    ok(result, report)
    payload = tmp_path / "request.json"
    payload.write_text('{"op":"put","id":{{counter}},"body":"' + "x" * 500 + '"}')
    result, report = bench(echo_server().url, "--scenario", "request", "--payload-file", str(payload),
                           "--connections", "2", "--rate", "400")
    ok(result, report)
    assert 300 <= report["messagesPerSecond"] <= 500
    # A request scenario needs a payload.
    bad = subprocess.run([WS_BENCH, "--url", "ws://127.0.0.1:1/", "--scenario", "request"], capture_output=True, text=True)
    assert bad.returncode == 64 and "--template or --payload-file" in bad.stderr


def test_pubsub_counts_every_delivery_and_its_latency(python_peer, certificates):
    chat = subprocess.Popen([os.environ.get("CHAT_SERVER", os.path.join(os.path.dirname(WS_BENCH), "..", "..", "..",
                                                                          ".build", "release", "chat-server")),
                             "--host", "127.0.0.1", "--port", str(free_port()), "--loops", "2", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = chat.stdout.readline()
        assert "listening on" in line, line
        chat_url = line.split()[-1].replace("http://", "ws://") + "/ws?room=bench&name=load"
        python_url = "ws://127.0.0.1:%d/" % python_peer("broadcast")
        folder = certificates()
        python_wss = "wss://localhost:%d/" % python_peer("broadcast", folder / "server.pem", folder / "server.key")
        # The chat sample (rooms on topics, join notices ignored) on 2 loops,
        # and a Python websockets broadcast server this project did not
        # write, over ws:// and over wss:// (verified against the test's CA).
        for url, connections, rate, extra in ((chat_url, "40", "2000", []), (python_url, "10", "200", []),
                                              (python_wss, "10", "200", ["--ca-file", str(folder / "ca.pem")])):
            result, report = bench(url, "--scenario", "pubsub", "--connections", connections, "--publishers", "2",
                                   "--rate", rate, "--duration", "2", "--threads", "2", *extra)
            assert result.returncode == 0, result.stdout + result.stderr
            p = report["pubsub"]
            assert p["subscribers"] == int(connections) and p["published"] > 100
            # Every connection got every message: nothing lost once drained.
            assert p["lost"] == 0 and p["deliveries"] == p["expected"], p
            l = report["latencyMicroseconds"]
            assert 0 < l["p50"] <= l["p99"] <= l["max"] < 1_000_000
    finally:
        chat.terminate()
        chat.wait(timeout=10)


def staged(url, *args):
    """Runs ws-bench with a plan of its own (no --duration or --warmup)."""
    return bench(url, *args, timing=())


def test_stages_step_the_connections_and_the_rate(echo_server, tmp_path):
    """A step test: 20, 60, then 10 connections at 2,000, 6,000 and 1,000
    messages a second, each step reached at 500 connections a second. Every
    stage gets its rate, the series shows its connections, and the 50 the
    last stage no longer wants close with 1000 (the server counts them)."""
    from test_metrics import value, wait_for
    server = echo_server("--metrics")
    result, report = staged(server.url, "--stage", "2s:20conn:2000rps", "--stage", "2s:60conn:6000rps",
                            "--stage", "2s:10conn:1000rps", "--connect-rate", "500", "--report", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(count == 0 for count in report["errors"].values()) and report["mismatches"] == 0
    stages = report["stages"]
    print(stages)
    assert [s["connections"] for s in stages] == [20, 60, 10]
    for s in stages:
        assert abs(s["messagesPerSecond"] - s["rate"]) <= 0.1 * s["rate"], s
        assert s["errors"] == 0 and 0 < s["latencyMicroseconds"]["p50"] <= s["latencyMicroseconds"]["p99"]
    # Each stage's last second has its count open (reached in well under a second).
    last = {}
    for sample in report["series"]:
        last[sample["phase"]] = sample["open"]
    assert last == {"stage 1": 20, "stage 2": 60, "stage 3": 10}, report["series"]
    page = (tmp_path / "index.html").read_text()
    assert page.count("<tr><td>") - page.count("<tr><td>stage</td>") >= 3 + 14 and 'id="stages"' in page
    samples = wait_for(server.port, lambda s: (value(s, "websocket_closes_total", code="1000") or 0) >= 50)
    assert value(samples, "websocket_closes_total", code="1000") >= 50


def test_an_even_ramp_over_two_threads_and_a_connect_rate(echo_server):
    """Without --connect-rate a stage moves its count evenly (a ramp up, a
    hold, a ramp down), on two threads, closed loop. Without stages,
    --connect-rate opens the connections at that pace before the load."""
    server = echo_server("--loops", "2")
    result, report = staged(server.url, "--stage", "2s:40conn", "--stage", "1s:40conn", "--stage", "2s:0conn",
                            "--threads", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    opened = [s["open"] for s in report["series"]]
    print(opened, report["stages"])
    # Up by about 20 a second, then 40 held, then down by about 20 a second.
    assert 12 <= opened[0] <= 28 and 32 <= opened[1] <= 40 and opened[2] == 40
    assert 12 <= opened[3] <= 28 and opened[4] <= 8, opened
    assert all(s["messages"] > 100 for s in report["stages"]) and report["failed"] == 0
    result, report = bench(server.url, "--connections", "100", "--connect-rate", "50", "--threads", "2")
    ok(result, report)
    first = report["series"][0]
    assert first["phase"] == "connect" and 35 <= first["open"] <= 65, report["series"]
    # A plan that does not hold together is a usage error (64), not a run.
    for bad in (["--stage", "1s:10:100", "--stage", "1s:10"], ["--stage", "1x:10"],
                ["--stage", "1s:10", "--duration", "3"], ["--stage", "1s:11", "--threads", "2"]):
        out = subprocess.run([WS_BENCH, "--url", server.url, *bad], capture_output=True, text=True, timeout=30)
        assert out.returncode == 64 and "--stage" in out.stderr, (bad, out.stderr)
