"""An echo server that stalls: every PERIOD ms its whole event loop blocks for
STALL ms (as a garbage collector's pause would), for ws-bench's latency test.
Usage: stalling_echo.py PORT PERIOD_MS STALL_MS"""
import asyncio
import signal
import sys
import time

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def stall(period, pause):
    while True:
        await asyncio.sleep(period - pause)
        time.sleep(pause)  # blocks the loop: nothing is read or written meanwhile


async def main(port, period, pause):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(echo, "127.0.0.1", port, ping_interval=None):
        task = asyncio.create_task(stall(period, pause))
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await stop
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]) / 1000, int(sys.argv[3]) / 1000))
