"""A bounded soak of echo-server in three modes (TLS, permessage-deflate, two
loops) while faulty clients hit it with every kind of bad input.

Good clients (python websockets) echo random messages and verify each reply
byte for byte; faulty clients send garbage heads, slow heads, resets in the
middle of a frame, protocol errors, floods without reading, ping floods, bad
UTF-8 across fragments, half handshakes and half TLS handshakes. At the end
each server must still echo, its RSS growth must stay under a bound, and a
SIGTERM must stop it with status 0. Everything runs on 127.0.0.1 and stops
by itself: the duration (SOAK_SECONDS, default 600) bounds every loop.

Usage: soak.py ECHO_SERVER [--seconds N] [--json PATH]
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
RSS_GROWTH_LIMIT_KB = 96 * 1024
GOOD_CLIENTS_PER_SERVER = 8


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, binary, name, args, tls_context=None):
        self.name = name
        self.port = free_port()
        self.tls = tls_context
        self.log = tempfile.NamedTemporaryFile("w+", prefix="soak-%s-" % name, suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("%s did not start: %s" % (name, open(self.log.name).read()))

    @property
    def url(self):
        return "%s://127.0.0.1:%d/ws" % ("wss" if self.tls else "ws", self.port)


class Tally:
    def __init__(self):
        self.verified = 0
        self.bytes = 0
        self.mismatches = []
        self.good_failures = []
        self.faults = {}

    def fault(self, kind):
        self.faults[kind] = self.faults.get(kind, 0) + 1


def payload(rng):
    size = rng.choice([0, 1, 16, 125, 126, 1000, 4096, 65535, 65536, 200_000])
    if rng.random() < 0.5:
        return "".join(rng.choice("abcdeé€😀 ") for _ in range(min(size, 20_000)))
    return rng.randbytes(size)


async def good_client(server, tally, deadline, seed):
    rng = random.Random(seed)
    while time.time() < deadline:
        try:
            async with websockets.connect(server.url, ssl=server.tls, max_size=1 << 24,
                                          compression="deflate" if rng.random() < 0.7 else None,
                                          open_timeout=10, close_timeout=5) as ws:
                for _ in range(rng.randint(5, 50)):
                    if time.time() >= deadline:
                        break
                    message = payload(rng)
                    if rng.random() < 0.2 and len(message) > 2:
                        # Fragmented: the echo returns the fragments joined.
                        cut = len(message) // 2
                        await ws.send([message[:cut], message[cut:]])
                    else:
                        await ws.send(message)
                    reply = await asyncio.wait_for(ws.recv(), 20)
                    if reply != message:
                        tally.mismatches.append((server.name, len(message)))
                    else:
                        tally.verified += 1
                        tally.bytes += len(message)
        except Exception as error:  # a good client must never fail
            tally.good_failures.append("%s: %r" % (server.name, error))
            await asyncio.sleep(0.5)


def mask(data, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(opcode, data, fin=True, masked=True, rsv=0):
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(data)
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + data
    key = os.urandom(4)
    return head + key + mask(data, key)


UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


async def open_raw(server, upgrade=True):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", server.port, ssl=server.tls, server_hostname="localhost" if server.tls else None), 10)
    if upgrade:
        writer.write(UPGRADE)
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return reader, writer


def reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def drain_until_closed(reader, seconds):
    try:
        while await asyncio.wait_for(reader.read(65536), seconds):
            pass
    except (asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError):
        pass


async def garbage_head(server, rng):
    _, writer = await open_raw(server, upgrade=False)
    writer.write(rng.randbytes(rng.randint(1, 4000)) + b"\r\n\r\n")
    await writer.drain()
    reset(writer)


async def slow_head(server, rng):
    reader, writer = await open_raw(server, upgrade=False)
    for byte in UPGRADE[:rng.randint(10, 60)]:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.05)
    writer.close()


async def reset_mid_frame(server, rng):
    _, writer = await open_raw(server)
    whole = frame(0x2, rng.randbytes(rng.randint(200, 100_000)))
    writer.write(whole[:rng.randint(1, len(whole) - 1)])
    await writer.drain()
    reset(writer)


async def protocol_error(server, rng):
    reader, writer = await open_raw(server)
    bad = rng.choice([
        frame(0x1, b"unmasked", masked=False),
        frame(0x3, b"reserved opcode"),
        frame(0x9, b"x" * 126),                      # control frame too long
        frame(0x8, b"\x03\xe7"),                     # close code 999
        frame(0x1, b"x", rsv=0x10),                  # RSV2 without an extension
        frame(0x0, b"continuation first"),
        frame(0x9, b"p", fin=False),                 # fragmented control frame
    ])
    writer.write(bad)
    await writer.drain()
    await drain_until_closed(reader, 3)
    writer.close()


async def flood_without_reading(server, rng):
    _, writer = await open_raw(server)
    message = frame(0x2, rng.randbytes(65536))
    end = time.time() + 1.5
    try:
        while time.time() < end:
            writer.write(message)
            await asyncio.wait_for(writer.drain(), 0.5)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
    reset(writer)


async def ping_flood(server, rng):
    reader, writer = await open_raw(server)
    for _ in range(2000):
        writer.write(frame(0x9, rng.randbytes(rng.randint(0, 125))))
    await writer.drain()
    writer.write(frame(0x8, b"\x03\xe8"))
    await writer.drain()
    await drain_until_closed(reader, 5)
    writer.close()


async def bad_utf8_across_fragments(server, rng):
    reader, writer = await open_raw(server)
    # "é" split over two fragments is fine; a lone continuation byte is not.
    writer.write(frame(0x1, b"ok \xc3", fin=False) + frame(0x0, b"\xa9 then \x80\xff", fin=True))
    await writer.drain()
    await drain_until_closed(reader, 3)
    writer.close()


async def half_handshake(server, rng):
    _, writer = await open_raw(server, upgrade=False)
    writer.write(UPGRADE[:rng.randint(1, len(UPGRADE) - 5)])
    await writer.drain()
    reset(writer) if rng.random() < 0.5 else writer.close()


async def half_tls_handshake(server, rng):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    # The first bytes of a TLS ClientHello record, then nothing more.
    writer.write(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]) + rng.randbytes(20))
    await writer.drain()
    await asyncio.sleep(rng.random())
    reset(writer)


FAULTS = [garbage_head, slow_head, reset_mid_frame, protocol_error, flood_without_reading, ping_flood,
          bad_utf8_across_fragments, half_handshake]


async def faulty_client(server, tally, deadline, seed):
    rng = random.Random(seed)
    kinds = FAULTS + ([half_tls_handshake] if server.tls else [])
    while time.time() < deadline:
        kind = rng.choice(kinds)
        try:
            await asyncio.wait_for(kind(server, rng), 15)
        except (asyncio.TimeoutError, ConnectionError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the server is free to drop a faulty peer however it likes
        tally.fault("%s:%s" % (server.name, kind.__name__))
        await asyncio.sleep(rng.random() * 0.05)


async def still_echoes(server):
    async with websockets.connect(server.url, ssl=server.tls, open_timeout=10) as ws:
        await ws.send("still here")
        return await asyncio.wait_for(ws.recv(), 10) == "still here"


async def soak(binary, seconds):
    workdir = tempfile.mkdtemp(prefix="soak-tls-")
    subprocess.run(["bash", os.path.join(REPO, "scripts", "make-tls-cert.sh"), workdir], check=True,
                   stdout=subprocess.DEVNULL)
    client_tls = ssl.create_default_context(cafile=os.path.join(workdir, "ca.pem"))
    servers = [
        Server(binary, "tls", ["--tls-cert", os.path.join(workdir, "server.pem"),
                               "--tls-key", os.path.join(workdir, "server.key")], client_tls),
        Server(binary, "deflate", ["--compression"]),
        Server(binary, "loops2", ["--loops", "2"]),
    ]
    tally = Tally()
    try:
        # Warm-up: the first handshakes page in code and make the rings.
        for server in servers:
            await still_echoes(server)
        before = {s.name: rss_kb(s.proc.pid) for s in servers}
        started = time.time()
        deadline = started + seconds
        tasks = []
        for i, server in enumerate(servers):
            for j in range(GOOD_CLIENTS_PER_SERVER):
                tasks.append(good_client(server, tally, deadline, seed=1000 * i + j))
            for j in range(4):
                tasks.append(faulty_client(server, tally, deadline, seed=2000 * i + j))
        await asyncio.gather(*tasks)
        elapsed = time.time() - started
        await asyncio.sleep(2)  # let the dropped peers' close timeouts pass
        after = {s.name: rss_kb(s.proc.pid) for s in servers}
        alive = {s.name: await still_echoes(s) for s in servers}
    finally:
        statuses = {}
        for server in servers:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)
            try:
                statuses[server.name] = server.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                statuses[server.name] = None
    return {
        "seconds": round(elapsed, 1),
        "verified_echoes": tally.verified,
        "verified_bytes": tally.bytes,
        "mismatches": tally.mismatches,
        "good_client_failures": tally.good_failures[:20],
        "good_client_failure_count": len(tally.good_failures),
        "faults": dict(sorted(tally.faults.items())),
        "faults_total": sum(tally.faults.values()),
        "rss_kb_before": before,
        "rss_kb_after": after,
        "alive_after": alive,
        "exit_status": statuses,
        "server_logs": {s.name: s.log.name for s in servers},
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--json")
    args = parser.parse_args()
    result = asyncio.run(soak(args.binary, args.seconds))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            f.write(text + "\n")
    problems = []
    if result["verified_echoes"] == 0:
        problems.append("no echo verified")
    if result["mismatches"]:
        problems.append("%d echoes differed" % len(result["mismatches"]))
    if result["good_client_failure_count"]:
        problems.append("%d good-client failures" % result["good_client_failure_count"])
    for name, ok in result["alive_after"].items():
        if not ok:
            problems.append("%s stopped echoing" % name)
    for name, status in result["exit_status"].items():
        if status != 0:
            problems.append("%s exited with %r" % (name, status))
    for name in result["rss_kb_before"]:
        growth = result["rss_kb_after"][name] - result["rss_kb_before"][name]
        if growth > RSS_GROWTH_LIMIT_KB:
            problems.append("%s grew by %d KiB" % (name, growth))
    passed = 0 if problems else 1
    print("soak: %d passed, %d failed" % (passed, 1 - passed))
    for problem in problems:
        print("soak problem: " + problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
