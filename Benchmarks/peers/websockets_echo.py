"""Python `websockets` echo peer for the benchmark, on uvloop.
Usage: python websockets_echo.py PORT [--compression]
(--compression: permessage-deflate with websockets' defaults)"""
import asyncio
import signal
import sys

import uvloop
from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(port, compression):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(echo, "127.0.0.1", port, max_size=16 * 2**20, compression="deflate" if compression else None,
                     ping_interval=None):
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await stop


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9005, "--compression" in sys.argv))
