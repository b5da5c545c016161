"""Interop with Python's `websockets` client, a peer we did not write."""
import asyncio
import urllib.error
import urllib.request

import pytest
import websockets
from websockets.asyncio.client import connect


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_text_and_binary_round_trip(echo_server):
    server = echo_server()

    async def go():
        async with connect(server.url, max_size=None) as ws:
            await ws.send("héllo wörld €𐍈")
            assert await ws.recv() == "héllo wörld €𐍈"
            payload = bytes(range(256)) * 4096  # 1 MiB
            await ws.send(payload)
            assert await ws.recv() == payload
            await ws.send(b"")
            assert await ws.recv() == b""
    run(go())


def test_fragmented_message_comes_back_fragment_by_fragment(echo_server):
    server = echo_server()

    async def go():
        async with connect(server.url) as ws:
            await ws.send(["frag", "ment", "ed"])
            fragments = [f async for f in ws.recv_streaming()]
            assert "".join(fragments) == "fragmented"
            # The echo keeps the client's fragment boundaries, down to the
            # empty final frame websockets sends after an iterable.
            assert fragments == ["frag", "ment", "ed", ""]
            await ws.send([b"\x00\x01", b"\x02"])
            assert await ws.recv() == b"\x00\x01\x02"
    run(go())


def test_ping_and_close_code(echo_server):
    server = echo_server()

    async def go():
        ws = await connect(server.url)
        pong = await ws.ping(b"abc")
        latency = await pong
        assert latency >= 0
        await ws.close(code=4321, reason="see you")
        # The server answers the close with the same status and description.
        assert ws.protocol.close_rcvd.code == 4321
        assert ws.protocol.close_rcvd.reason == "see you"
    run(go())


def test_many_messages_in_flight(echo_server):
    server = echo_server()

    async def go():
        async with connect(server.url) as ws:
            messages = ["m%d" % i for i in range(2000)]
            for m in messages:
                await ws.send(m)
            received = [await ws.recv() for _ in messages]
            assert received == messages
    run(go())


def test_plain_http_to_ws_path_gets_400_and_page_is_served(echo_server):
    server = echo_server()
    base = "http://127.0.0.1:%d" % server.port
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(base + "/ws", timeout=10)
    assert info.value.code == 400
    with urllib.request.urlopen(base + "/", timeout=10) as page:
        assert page.status == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"Communication log" in page.read()


def test_upgrade_on_unknown_path_gets_404(echo_server):
    server = echo_server()

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            async with connect(server.url.replace("/ws", "/not-ws")):
                pass
        assert info.value.response.status_code == 404
    run(go())
