"""A Python `websockets` server for ws-bench's tests, on 127.0.0.1.
Usage: py_peer.py PORT MODE [CERT KEY]
MODE: echo (every message back), broadcast (every message to every open
connection, the sender included: websockets.broadcast), or close4000 (close
every connection at once with 4000). With CERT and KEY it speaks wss://."""
import asyncio
import signal
import ssl
import sys

from websockets.asyncio.server import broadcast, serve

CONNECTIONS = set()


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def fan_out(ws):
    CONNECTIONS.add(ws)
    try:
        async for message in ws:
            broadcast(CONNECTIONS, message)
    finally:
        CONNECTIONS.discard(ws)


async def close4000(ws):
    await ws.close(4000, "go away")


async def main(port, mode, cert, key):
    context = None
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    handler = {"echo": echo, "broadcast": fan_out, "close4000": close4000}[mode]
    async with serve(handler, "127.0.0.1", port, ssl=context, max_size=2**24,
                     ping_interval=None):
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await stop


if __name__ == "__main__":
    args = sys.argv[1:] + [None, None]
    asyncio.run(main(int(args[0]), args[1], args[2], args[3]))
