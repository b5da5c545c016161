"""Python `websockets` fan-out peer for the publish benchmark, on uvloop:
every message any connection sends goes to every open connection (the
sender included) with `websockets.broadcast`, the library's own fan-out.
With a Redis URL, the way servers share clients through Redis (redis-py's
asyncio client): each message is published to Redis, and each server
broadcasts what its subscription receives, its own messages included.
Usage: python websockets_pubsub.py PORT [redis://HOST:PORT]"""
import asyncio
import signal
import sys

import uvloop
from websockets.asyncio.server import broadcast, serve

CONNECTIONS = set()


def local(message):
    broadcast(CONNECTIONS, message)


async def main(port, redis_url):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    publish = local
    if redis_url:
        import redis.asyncio as redis
        client = redis.from_url(redis_url)
        subscription = client.pubsub()
        await subscription.subscribe("bench")

        async def relay():
            # The first byte says binary (1) or text (0): Redis carries bytes only.
            async for item in subscription.listen():
                if item["type"] == "message":
                    data = item["data"]
                    local(data[1:] if data[0] == 1 else data[1:].decode())

        outgoing = asyncio.Queue()

        async def send():
            # One writer, so publications reach Redis in the order they came
            # (tasks of their own would take several pooled connections);
            # what queued meanwhile goes in one pipeline.
            while True:
                batch = [await outgoing.get()]
                while not outgoing.empty():
                    batch.append(outgoing.get_nowait())
                async with client.pipeline(transaction=False) as pipe:
                    for framed in batch:
                        pipe.publish("bench", framed)
                    await pipe.execute()

        relay_task = loop.create_task(relay())
        send_task = loop.create_task(send())

        def through_redis(message):
            outgoing.put_nowait((b"\x01" + message) if isinstance(message, bytes) else (b"\x00" + message.encode()))

        publish = through_redis

    async def member(ws):
        CONNECTIONS.add(ws)
        try:
            async for message in ws:
                publish(message)
        finally:
            CONNECTIONS.discard(ws)

    async with serve(member, "127.0.0.1", port, max_size=16 * 2**20, compression=None, ping_interval=None):
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await stop
    if redis_url:
        relay_task.cancel()
        send_task.cancel()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9007, sys.argv[2] if len(sys.argv) > 2 else None))
