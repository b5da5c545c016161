"""echo-server --metrics: the counters scraped at /metrics in Prometheus' text
format after a known pattern of traffic, checked value by value."""
import asyncio
import re
import time
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def scrape(port):
    """Every sample of the page, by (name, frozenset of labels)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, "not a Prometheus sample line: %r" % line
        name, labels, value = match.groups()
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def value(samples, name, **labels):
    wanted = frozenset({("loop", "0"), *labels.items()})
    return samples.get((name, wanted))


def wait_for(port, check, timeout=5):
    """Scrapes until `check(samples)` holds (the loop hands its counters on
    every quarter second), and returns the samples."""
    deadline = time.time() + timeout
    while True:
        samples = scrape(port)
        if check(samples) or time.time() > deadline:
            return samples
        time.sleep(0.1)


def test_metrics_after_known_traffic(echo_server):
    server = echo_server("--metrics", "--allowed-origin", "http://good.example", "--keep-alive-interval", "0.2")
    connections, messages, payload = 3, 4, "hello"

    async def go():
        clients = [await connect(server.url, origin="http://good.example", ping_interval=None)
                   for _ in range(connections)]
        for ws in clients:
            for _ in range(messages):
                await ws.send(payload)
                assert await ws.recv() == payload
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url, origin="http://evil.example")
        assert refused.value.response.status_code == 403
        # Quiet past the keep-alive interval: the server pings, the client
        # answers, and each pong's round trip is a sample.
        await asyncio.sleep(0.7)
        open_now = wait_for(server.port, lambda s: value(s, "websocket_connections_open") == connections)
        assert value(open_now, "websocket_connections_open") == connections
        await clients[0].close(code=4001, reason="bye")
        for ws in clients[1:]:
            await ws.close()

    asyncio.run(go())
    total = connections * messages
    samples = wait_for(server.port, lambda s: value(s, "websocket_closes_total", code="1000") == connections - 1
                       and value(s, "websocket_connections_open") == 0)
    assert value(samples, "websocket_handshakes_accepted_total") == connections
    assert value(samples, "websocket_handshakes_refused_total", status="403") == 1
    assert value(samples, "websocket_messages_received_total") == total
    assert value(samples, "websocket_messages_sent_total") == total
    assert value(samples, "websocket_bytes_sent_total") == total * len(payload)
    assert value(samples, "websocket_closes_total", code="4001") == 1
    assert value(samples, "websocket_closes_total", code="1000") == connections - 1
    assert value(samples, "websocket_connections_open") == 0
    assert value(samples, "websocket_messages_dropped_total") == 0
    assert value(samples, "websocket_backpressure_pauses_total") == 0
    pings = value(samples, "websocket_keepalive_pings_total")
    round_trips = value(samples, "websocket_round_trip_seconds_count")
    assert pings >= connections, "each quiet connection was pinged"
    assert 1 <= round_trips <= pings
    # Loopback: every round trip well under the first bucket's 5 ms... or at
    # least under a second on a loaded machine.
    assert value(samples, "websocket_round_trip_seconds_bucket", le="1.0") == round_trips
    # The scrapes themselves are accepted connections, so at least the
    # WebSockets, the refused one and one scrape.
    assert value(samples, "websocket_connections_accepted_total") >= connections + 2


def test_metrics_route_answers_get_and_head_only(echo_server):
    server = echo_server("--metrics")
    request = urllib.request.Request("http://127.0.0.1:%d/metrics" % server.port, method="HEAD")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        assert response.read() == b""
        assert int(response.headers["Content-Length"]) > 0
    request = urllib.request.Request("http://127.0.0.1:%d/metrics" % server.port, method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 405
    assert refused.value.headers["Allow"] == "GET, HEAD"


def test_without_the_flag_metrics_is_a_file_path(echo_server):
    server = echo_server()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen("http://127.0.0.1:%d/metrics" % server.port, timeout=5)
    assert missing.value.code == 404
