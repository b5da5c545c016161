"""A WebSocket echo (Python websockets) that flips one bit in every fifth
message: ws-bench must notice. Usage: corrupting_echo.py PORT"""
import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    n = 0
    async for message in ws:
        n += 1
        if n % 5 == 0:
            data = bytearray(message if isinstance(message, bytes) else message.encode())
            data[len(data) // 2] ^= 0x01
            message = bytes(data)
        await ws.send(message)


async def main(port):
    async with serve(echo, "127.0.0.1", port, max_size=None, compression=None):
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
