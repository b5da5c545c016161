"""Backpressure and graceful shutdown, measured on a separate echo-server process."""
import asyncio
import signal
import threading
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import wsraw


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_client_that_never_reads_cannot_grow_server_memory(echo_server):
    server = echo_server("--max-backpressure", str(1024 * 1024))
    sock, leftover = wsraw.connect(server.port, timeout=30)
    frame = wsraw.masked_frame(0x2, bytes(range(256)) * 256)  # 64 KiB payload
    frames = 4096                                              # 256 MiB in all
    payload_total = frames * 64 * 1024
    baseline = rss_bytes(server.proc.pid)
    peak = [baseline]
    sent = [0]
    done = threading.Event()

    def sender():
        for _ in range(frames):
            sock.sendall(frame)
            sent[0] += 1
        done.set()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes(server.proc.pid))
            time.sleep(0.02)

    threading.Thread(target=sender, daemon=True).start()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # Do not read for 3 s: the server must stop reading from us, not buffer.
    time.sleep(3)
    stalled_at = sent[0]
    assert stalled_at < frames, "the server absorbed all 256 MiB without being read"
    # Now read: the echo must come back whole while the sender finishes.
    reader = wsraw.FrameReader(leftover)
    deadline = time.time() + 120
    while reader.payload_bytes < payload_total and time.time() < deadline:
        reader.feed(sock.recv(1 << 20))
    done.wait(10)
    watcher.join(2)
    sock.close()
    growth = peak[0] - baseline
    print("server RSS baseline %.1f MiB, peak growth %.2f MiB, stalled after %d MiB"
          % (baseline / 2**20, growth / 2**20, stalled_at * 64 // 1024))
    assert reader.payload_bytes == payload_total
    assert growth < 16 * 2**20, "server RSS grew %.1f MiB" % (growth / 2**20)


def test_sigterm_sends_1001_to_every_client_and_exits_0(echo_server):
    server = echo_server("--drain-timeout", "5")

    async def go():
        clients = [await connect(server.url, ping_interval=None) for _ in range(20)]
        for ws in clients:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        server.proc.send_signal(signal.SIGTERM)
        codes = []
        for ws in clients:
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed as closed:
                codes.append((closed.rcvd.code, closed.rcvd.reason))
        return codes

    codes = asyncio.run(go())
    assert codes == [(1001, "server shutting down")] * 20
    assert server.proc.wait(timeout=10) == 0


def test_sigterm_with_a_client_that_ignores_close_exits_after_drain_timeout(echo_server):
    server = echo_server("--drain-timeout", "1")
    sock, _ = wsraw.connect(server.port)
    start = time.time()
    server.proc.send_signal(signal.SIGTERM)
    # This client reads nothing and never answers the close.
    assert server.proc.wait(timeout=10) == 0
    assert time.time() - start < 4
    sock.close()
