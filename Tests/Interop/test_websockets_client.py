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


def test_compression_with_websockets_own_permessage_deflate(echo_server):
    # websockets offers permessage-deflate by default (client_max_window_bits,
    # contexts kept); echo-server --compression accepts and answers compressed.
    server = echo_server("--compression")

    async def go():
        async with connect(server.url, max_size=None) as ws:
            agreed = ws.response.headers["Sec-WebSocket-Extensions"]
            assert agreed == "permessage-deflate; server_no_context_takeover; client_max_window_bits=12"
            json_text = "".join('{"id":%d,"name":"item %d"},' % (i, i) for i in range(20000))
            for message in ["héllo €𐍈", json_text, b"\x00" * 3_000_000, bytes(range(256)) * 300, b"", ""]:
                await ws.send(message)
                assert await ws.recv() == message
            # A compressed message in fragments comes back whole.
            await ws.send(["frag" * 1000, "ment" * 1000, "ed"])
            assert "".join([f async for f in ws.recv_streaming()]) == "frag" * 1000 + "ment" * 1000 + "ed"
    run(go())


def test_compression_declined_without_the_flag(echo_server):
    server = echo_server()

    async def go():
        async with connect(server.url) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.send("plain")
            assert await ws.recv() == "plain"
    run(go())


def test_compressed_bomb_gets_1009_and_the_server_serves_on(echo_server):
    # 64 MiB of zeros compress to about 64 KiB; the limit is 1 MiB.
    server = echo_server("--compression", "--max-message-size", "1048576")

    async def go():
        async with connect(server.url, max_size=None) as ws:
            await ws.send(b"\x00" * (64 << 20))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1009
        async with connect(server.url) as ws:
            await ws.send("still serving")
            assert await ws.recv() == "still serving"
    run(go())
