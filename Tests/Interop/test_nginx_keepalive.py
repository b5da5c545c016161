"""The reason the article gives for KeepAliveInterval, shown with a real proxy:
nginx closes an upgraded connection whose upstream is quiet for
proxy_read_timeout (2 s here); pings every 0.5 s keep an idle client connected."""
import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = os.path.join(os.path.dirname(__file__), "nginx.conf.template")


@pytest.fixture
def nginx_in_front():
    procs = []

    def start(upstream_port, tls=None):
        """nginx on a free port proxying /ws to upstream_port; with tls (a
        certificate and key file) it terminates TLS: a wss:// URL."""
        prefix = tempfile.mkdtemp(prefix="uvws-nginx-")
        port = free_port()
        with open(TEMPLATE) as f:
            conf = f.read().replace("@PREFIX@", prefix).replace("@PORT@", str(port)).replace("@UPSTREAM_PORT@", str(upstream_port))
        if tls:
            conf = conf.replace("listen 127.0.0.1:%d;" % port, "listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s;"
                                % (port, tls[0], tls[1]))
        path = os.path.join(prefix, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        proc = subprocess.Popen([NGINX, "-c", path, "-p", prefix], stderr=subprocess.STDOUT, stdout=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return "%s://127.0.0.1:%d/ws" % ("wss" if tls else "ws", port)
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start: " + open(os.path.join(prefix, "error.log")).read())

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


async def idle_then_echo(url, idle_seconds):
    """Connects through the proxy, idles (answering pings, sending none of its
    own), then tries an echo. Returns the echo, or the close that came first."""
    async with connect(url, ping_interval=None) as ws:
        await ws.send("before")
        assert await ws.recv() == "before"
        try:
            await asyncio.sleep(idle_seconds)
            await ws.send("after %ss idle" % idle_seconds)
            return await asyncio.wait_for(ws.recv(), 5)
        except (ConnectionClosed, asyncio.TimeoutError) as e:
            return "closed: %r" % e


def test_pings_keep_an_idle_client_connected_through_nginx(echo_server, nginx_in_front):
    server = echo_server("--keep-alive-interval", "0.5")
    url = nginx_in_front(server.port)
    assert asyncio.run(idle_then_echo(url, 6)) == "after 6s idle"


def test_without_pings_nginx_drops_the_idle_client(echo_server, nginx_in_front):
    server = echo_server("--keep-alive-interval", "0")
    url = nginx_in_front(server.port)
    result = asyncio.run(idle_then_echo(url, 6))
    assert result.startswith("closed"), result
