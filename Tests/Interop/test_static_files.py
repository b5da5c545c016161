"""The static files as clients this project did not write see them: curl
reusing one connection, a browser loading the page, a WebSocket upgrade on a
kept-alive connection, and a 50 MB file to slow readers while WebSocket
clients echo (the loop never waits for the disk)."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest
from conftest import free_port, headless_chromium
from test_ws_bench import WS_BENCH
from wsraw import masked_frame

REPORTS = os.path.join(os.path.dirname(__file__), "..", "..", "reports")


@pytest.fixture
def site(tmp_path):
    (tmp_path / "index.html").write_text("<h1>site</h1>")
    (tmp_path / "a.css").write_text("h1{}")
    (tmp_path / "b.js").write_text("let b")
    return tmp_path


def test_curl_reuses_one_connection(echo_server, site):
    server = echo_server("--static-root", str(site))
    base = "http://127.0.0.1:%d" % server.port
    result = subprocess.run(["curl", "-sv", "--http1.1", base + "/", base + "/a.css", base + "/b.js", base + "/missing"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "<h1>site</h1>h1{}let b404 Not Found: no such file\n"
    # One connect, then the same connection for the other three.
    assert result.stderr.count("Connected to 127.0.0.1") == 1, result.stderr
    assert result.stderr.count("Re-using existing connection") == 3, result.stderr


def read_response(sock, buffered=b""):
    """One response off a kept-alive socket: (status, head, body, rest)."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        assert chunk, "closed before a response"
        buffered += chunk
    head, rest = buffered.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ")[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed inside a body"
        rest += chunk
    return status, head, rest[:length], rest[length:]


def test_pipelined_then_upgraded_on_the_same_connection(echo_server, site):
    """Pipelined requests come back in order; then the same connection
    upgrades to a WebSocket and echoes (browsers reuse connections this way)."""
    server = echo_server("--static-root", str(site))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in (b"b.js", b"", b"a.css", b"nope", b"b.js")))
    rest = b""
    bodies = []
    for _ in range(5):
        status, _, body, rest = read_response(sock, rest)
        bodies.append((status, body))
    assert bodies == [(200, b"let b"), (200, b"<h1>site</h1>"), (200, b"h1{}"), (404, b"404 Not Found: no such file\n"),
                      (200, b"let b")]
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                 + masked_frame(1, b"after files"))
    status, head, _, rest = read_response(sock, rest)
    assert status == 101 and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    while len(rest) < 2 + len(b"after files"):
        rest += sock.recv(65536)
    assert rest[:2] == bytes([0x81, len(b"after files")]) and rest[2:13] == b"after files"
    sock.close()


class CountingProxy:
    """Forwards TCP connections to a port; counts how many were opened and
    how many of those carried a request (a browser also opens spare sockets
    it may never use)."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.accepted = 0
        self.used = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b, a is client), daemon=True).start()

    def pipe(self, a, b, from_client):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if from_client:
                    self.used.add(a.fileno())
                b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


def test_chromium_loads_the_page_and_its_script_over_one_connection(echo_server):
    """The sample page is index.html and page.js. Loaded twice (the second
    time revalidated with If-None-Match), its four requests travel over one
    connection. Chromium also opens a spare socket on navigation, unused
    here, which the proxy counts apart."""
    server = echo_server()
    proxy = CountingProxy(server.port)
    driver = headless_chromium()
    try:
        for _ in range(2):
            driver.get("http://127.0.0.1:%d/" % proxy.port)
            # page.js ran: it fills the URL field from the page's location.
            assert driver.execute_script("return document.getElementById('connectionUrl').value") == \
                "ws://127.0.0.1:%d/ws" % proxy.port
            resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
            assert any(r.endswith("/page.js") for r in resources), resources
        time.sleep(0.3)
        used, accepted = len(proxy.used), proxy.accepted
    finally:
        driver.quit()
        proxy.close()
    print("Chromium: 4 requests over %d connection(s) (%d opened)" % (used, accepted))
    assert used == 1, "Chromium sent its requests over %d connections" % used


def slow_reader(port, path, results, index, stop, restart_after=None):
    """GETs `path` with a small receive buffer and reads 16 KiB every 10 ms;
    with `restart_after`, starts the download again on a new connection
    after that many bytes (a player seeking, a download retried)."""
    first = True
    while not stop.is_set():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.connect(("127.0.0.1", port))
        sock.settimeout(10)
        sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        received = b""
        got = 0
        while not stop.is_set() and (restart_after is None or got < restart_after):
            chunk = sock.recv(16 * 1024)
            if not chunk:
                break
            if len(received) < 1 << 20:
                received += chunk
            got += len(chunk)
            results[index] = results.get(index, 0) + len(chunk)
            time.sleep(0.01)
        if first:
            results["head%d" % index] = received[:received.find(b"\r\n\r\n") + 4]
            results["start%d" % index] = received[received.find(b"\r\n\r\n") + 4:][:4096]
            first = False
        sock.close()
        if restart_after is None:
            break


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def echo_p99_during_slow_downloads(port, size_path, seconds=4, restart_after=None):
    """Runs 4 slow readers of the big file and, meanwhile, 100 WebSocket
    clients echoing at a fixed total rate (ws-bench's open loop, latency from
    each message's intended send time). Returns ws-bench's report and the
    bytes each reader got."""
    results, stop = {}, threading.Event()
    readers = [threading.Thread(target=slow_reader, args=(port, size_path, results, i, stop, restart_after))
               for i in range(4)]
    for r in readers:
        r.start()
    time.sleep(0.5)
    out = "/tmp/static-files-echo-%d.json" % port
    bench = subprocess.run([WS_BENCH, "--url", "ws://127.0.0.1:%d/ws" % port, "--connections", "100", "--rate", "2000",
                            "--duration", str(seconds), "--warmup", "0.5", "--json", out, "--quiet"],
                           capture_output=True, text=True, timeout=60)
    stop.set()
    for r in readers:
        r.join(15)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    with open(out) as f:
        return json.load(f), results


def test_large_file_to_slow_readers_does_not_stall_websockets(echo_server, tmp_path):
    """50 MB to 4 readers that take 1.6 MB/s each, beside 100 echoing
    WebSocket clients at 2,000 messages/s: the echo's p99 stays under 10 ms."""
    block = bytes(range(256)) * 4096
    with open(tmp_path / "big.bin", "wb") as f:
        for _ in range(50):
            f.write(block)
    server = echo_server("--static-root", str(tmp_path))
    report, results = echo_p99_during_slow_downloads(server.port, "/big.bin")
    latency = report["latencyMicroseconds"]
    # The file is streamed, not loaded: 4 readers cost pieces, not 4 x 50 MB.
    rss = peak_rss_kib(server.proc.pid)
    assert rss < 64 * 1024, "peak RSS %d KiB" % rss
    os.makedirs(REPORTS, exist_ok=True)
    with open(os.path.join(REPORTS, "static-files-slow-readers.json"), "w") as f:
        json.dump({"latencyMicroseconds": latency, "readerBytes": [results.get(i, 0) for i in range(4)],
                   "peakRSSKiB": rss}, f, indent=1)
    print("echo p99 %.0f µs, max %.0f µs; readers got %s bytes" % (latency["p99"], latency["max"],
                                                                [results.get(i, 0) for i in range(4)]))
    for i in range(4):
        assert b"200 OK" in results["head%d" % i] and b"Content-Length: 52428800" in results["head%d" % i]
        assert results["start%d" % i] == block[:4096]
        # Every reader was served while the echo ran (about 1.6 MB/s each).
        assert results[i] > 2_000_000
    assert report["connected"] == 100 and report["failed"] == 0 and report["mismatches"] == 0, report
    assert latency["p99"] < 10_000, latency
