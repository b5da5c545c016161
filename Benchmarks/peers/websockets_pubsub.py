"""Python `websockets` fan-out peer for the publish benchmark, on uvloop:
every message any connection sends goes to every open connection (the
sender included) with `websockets.broadcast`, the library's own fan-out.
Usage: python websockets_pubsub.py PORT"""
import asyncio
import signal
import sys

import uvloop
from websockets.asyncio.server import broadcast, serve

CONNECTIONS = set()


async def member(ws):
    CONNECTIONS.add(ws)
    try:
        async for message in ws:
            broadcast(CONNECTIONS, message)
    finally:
        CONNECTIONS.discard(ws)


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(member, "127.0.0.1", port, max_size=16 * 2**20, compression=None, ping_interval=None):
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await stop


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9007))
