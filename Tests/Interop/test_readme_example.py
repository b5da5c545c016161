"""The README's embedding example, built as its own package exactly as the
README shows it (every block marked `readme-example: PATH` is a whole file),
against this repository by path, then run and talked to with Python
websockets and with the example's own client."""
import asyncio
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import websockets

from conftest import free_port

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BLOCK = re.compile(r"<!-- (readme-example|readme-example-variant|readme-example-quick|readme-example-quick-async): (\S+) -->"
                   r"\n```swift\n(.*?)```", re.S)


def readme_files():
    with open(os.path.join(TOP, "README.md")) as f:
        text = f.read()
    files, variants = {}, {}
    for kind, path, body in BLOCK.findall(text):
        if kind == "readme-example-quick":
            path = "quick:" + path  # the first screen's example, in place of the App's main.swift
        if kind == "readme-example-quick-async":
            path = "quick-async:" + path  # the same, on the async face
        (files if kind == "readme-example" else variants)[path] = body
    return files, variants


def write(root, path, body):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(body)


def build(app):
    result = subprocess.run(["swift", "build", "--package-path", app], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def start_app(app, port):
    proc = subprocess.Popen([os.path.join(app, ".build", "debug", "App")], env=dict(os.environ, PORT=str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the README's server did not start: " + proc.stdout.read())


def stop_app(proc):
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    files, variants = readme_files()
    # The README's Package.swift finds this repository as ../UVWebSocket.
    assert {"Package.swift", "Sources/App/main.swift", "Sources/App/Chat.swift", "Sources/Client/main.swift"} <= set(files)
    assert '.package(path: "../UVWebSocket")' in files["Package.swift"]
    root = tmp_path_factory.mktemp("readme")
    os.symlink(TOP, root / "UVWebSocket")
    app = str(root / "App")
    for path, body in files.items():
        write(app, path, body)
    build(app)
    return app, variants


def test_the_readme_server_echoes_and_its_client_connects(example):
    app, _ = example
    port = free_port()
    proc = start_app(app, port)
    url = "ws://127.0.0.1:%d/ws" % port

    async def talk():
        async with websockets.connect(url) as ws:
            await ws.send("from python")
            text = await ws.recv()
            await ws.send(b"\x00\x01\x02")
            data = await ws.recv()
            return text, data

    try:
        assert asyncio.run(talk()) == ("from python", b"\x00\x01\x02")
        client = subprocess.run([os.path.join(app, ".build", "debug", "Client"), url],
                                capture_output=True, text=True, timeout=30)
        assert client.returncode == 0, client.stderr
        assert "received: hello" in client.stdout, client.stdout
        # Without serveFiles, other paths are 404 and /ws without an upgrade is 400.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400")
    finally:
        output = stop_app(proc)
    assert "open: /ws" in output and "closed: 1000" in output, output


@pytest.mark.parametrize("kind", ["quick", "quick-async"])
def test_the_first_screen_echo_examples_build_and_echo(example, kind):
    app, variants = example
    body = variants[kind + ":Sources/App/main.swift"]
    assert len(body.strip().splitlines()) <= 15, body
    port = free_port()
    # The example listens on 8080; the test gives it a free port instead.
    assert "port: 8080" in body
    write(app, "Sources/App/main.swift", body.replace("port: 8080", "port: %d" % port))
    try:
        build(app)
        proc = start_app(app, port)

        async def talk():
            async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
                await ws.send("quick")
                text = await ws.recv()
                await ws.send(b"\x00" * 70000)  # a message spanning reads
                return text, await ws.recv()

        try:
            assert asyncio.run(talk()) == ("quick", b"\x00" * 70000)
        finally:
            proc.kill()
            proc.wait()
    finally:
        files, _ = readme_files()
        write(app, "Sources/App/main.swift", files["Sources/App/main.swift"])


def test_the_readme_broadcast_variant_reaches_every_peer(example):
    app, variants = example
    assert "Sources/App/Chat.swift" in variants
    write(app, "Sources/App/Chat.swift", variants["Sources/App/Chat.swift"])
    build(app)
    port = free_port()
    proc = start_app(app, port)
    url = "ws://127.0.0.1:%d/ws" % port

    async def chat():
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            await asyncio.sleep(0.2)  # both open before the message goes out
            await a.send("to everyone")
            return await asyncio.wait_for(a.recv(), 10), await asyncio.wait_for(b.recv(), 10)

    try:
        assert asyncio.run(chat()) == ("to everyone", "to everyone")
    finally:
        stop_app(proc)


def test_the_readme_every_core_variant_runs_a_loop_per_core_and_ticks_from_another_thread(example):
    app, variants = example
    assert "Sources/App/main.swift" in variants
    write(app, "Sources/App/main.swift", variants["Sources/App/main.swift"])
    build(app)
    port = free_port()
    proc = start_app(app, port)
    url = "ws://127.0.0.1:%d/ws" % port

    async def talk():
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            # The timer thread's broadcast reaches both, on whichever loop each is.
            assert await asyncio.wait_for(a.recv(), 5) == "tick"
            assert await asyncio.wait_for(b.recv(), 5) == "tick"
            await a.send("hello")
            while (await asyncio.wait_for(a.recv(), 5)) != "hello":
                pass

    try:
        asyncio.run(talk())
    finally:
        output = stop_app(proc)
    assert "with %d loops" % os.cpu_count() in output


def test_the_readme_shows_what_make_help_prints():
    printed = subprocess.run(["make", "--no-print-directory", "-C", TOP, "help"], capture_output=True, text=True,
                             timeout=30).stdout
    assert printed.count("make ") >= 10
    with open(os.path.join(TOP, "README.md")) as f:
        assert "```text\n" + printed + "```" in f.read()
    # A bare `make` prints the same help and starts nothing.
    bare = subprocess.run(["make", "--no-print-directory", "-C", TOP], capture_output=True, text=True, timeout=30)
    assert bare.returncode == 0 and bare.stdout == printed
