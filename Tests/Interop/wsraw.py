"""A minimal blocking WebSocket client on raw sockets, for tests that need to
control exactly what is sent and when (never reading, counting bytes)."""
import base64
import os
import socket
import struct


def connect(port, path="/ws", timeout=10):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        head += chunk
    status = head.split(b" ", 2)[1]
    if status != b"101":
        raise ConnectionError("handshake refused: %r" % head[:100])
    return sock, head.split(b"\r\n\r\n", 1)[1]


def masked_frame(opcode, payload, fin=True):
    """A client frame (RFC 6455 §5.2), masked with a fixed key: the tests need
    no secrecy, only a valid frame."""
    key = b"\x12\x34\x56\x78"
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    body = (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big") if n else b""
    return head + key + body


class FrameReader:
    """Counts the payload bytes of unmasked server frames as they stream in."""

    def __init__(self, initial=b""):
        self.buffer = bytearray(initial)
        self.payload_bytes = 0
        self.remaining = 0
        self.opcodes = []

    def feed(self, data):
        self.buffer += data
        while True:
            if self.remaining:
                n = min(self.remaining, len(self.buffer))
                self.payload_bytes += n
                self.remaining -= n
                del self.buffer[:n]
                if self.remaining:
                    return
            if len(self.buffer) < 2:
                return
            b0, b1 = self.buffer[0], self.buffer[1]
            n = b1 & 0x7F
            offset = 2
            if n == 126:
                if len(self.buffer) < 4:
                    return
                n = struct.unpack("!H", self.buffer[2:4])[0]
                offset = 4
            elif n == 127:
                if len(self.buffer) < 10:
                    return
                n = struct.unpack("!Q", self.buffer[2:10])[0]
                offset = 10
            self.opcodes.append(b0 & 0x0F)
            del self.buffer[:offset]
            self.remaining = n
