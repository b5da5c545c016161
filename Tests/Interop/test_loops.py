"""echo-server on several loops, measured from outside: SIGTERM with 2 loops
and 2,000 connections, and the echo of every loop to Python websockets."""
import asyncio
import re
import resource
import signal

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def opens_per_loop(output):
    counts = {}
    for line in output.splitlines():
        if line.rstrip().endswith("WebSocket open"):
            loop = re.search(r"\bloop=(\d+)", line).group(1)
            counts[loop] = counts.get(loop, 0) + 1
    return counts


def test_sigterm_with_2_loops_and_2000_connections_closes_all_with_1001_and_exits_0(echo_server):
    raise_fd_limit(4096)
    server = echo_server("--loops", "2", "--drain-timeout", "10", "--log-level", "debug")
    count = 2000

    async def go():
        clients = []
        for _ in range(count):
            clients.append(await connect(server.url, ping_interval=None, open_timeout=30))
        for i, ws in enumerate(clients):
            await ws.send("m%d" % i)
        for i, ws in enumerate(clients):
            assert await ws.recv() == "m%d" % i
        server.proc.send_signal(signal.SIGTERM)

        async def closed_with(ws):
            try:
                await asyncio.wait_for(ws.recv(), 20)
            except ConnectionClosed as closed:
                return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else None
            return "no close"

        return await asyncio.gather(*(closed_with(ws) for ws in clients))

    codes = asyncio.run(go())
    assert codes == [(1001, "server shutting down")] * count
    assert server.proc.wait(timeout=20) == 0
    output = server.output()
    # Both loops held connections, and each reported its own closes.
    per_loop = opens_per_loop(output)
    assert set(per_loop) == {"0", "1"} and sum(per_loop.values()) == count, per_loop
    stopped = re.findall(r"closes=1001×(\d+) loop=(\d)", output)
    assert sorted(loop for _, loop in stopped) == ["0", "1"], output[-2000:]
    assert sum(int(n) for n, _ in stopped) == count


def test_round_robin_loops_echo_for_python_websockets(echo_server):
    server = echo_server("--loops", "3", "--accept", "round-robin", "--log-level", "debug")

    async def go():
        clients = [await connect(server.url, ping_interval=None) for _ in range(9)]
        for i, ws in enumerate(clients):
            await ws.send(bytes([i]) * 70000)
            assert await ws.recv() == bytes([i]) * 70000
        for ws in clients:
            await ws.close()

    asyncio.run(go())
    assert opens_per_loop(server.output()) == {"0": 3, "1": 3, "2": 3}


def test_bad_loops_option_is_a_usage_error(echo_server):
    import os
    import subprocess
    result = subprocess.run([os.environ["ECHO_SERVER"], "--loops", "0"], capture_output=True, text=True)
    assert result.returncode == 64
    assert "--loops must be" in result.stderr
