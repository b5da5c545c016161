"""What a user sees when the sample cannot start, and what its debug log says
of a refused handshake: real processes, real sockets on 127.0.0.1."""
import asyncio
import socket
import subprocess

import pytest
import websockets

from conftest import ECHO_SERVER


def run_echo_server(*args):
    return subprocess.run([ECHO_SERVER, *args], capture_output=True, text=True, timeout=30)


def assert_one_line_error(result, *words):
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    # One line naming the cause: no backtrace, no usage text.
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "listening on" not in result.stdout


def test_port_in_use_is_one_line_and_status_1():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_echo_server("--host", "127.0.0.1", "--port", str(port))
    assert_one_line_error(result, "cannot listen on 127.0.0.1:%d" % port, "address already in use", "EADDRINUSE")


def test_missing_static_root_is_one_line_and_status_1():
    result = run_echo_server("--host", "127.0.0.1", "--port", "0", "--static-root", "/nonexistent/uvws-root")
    assert_one_line_error(result, "/nonexistent/uvws-root")


def test_unresolvable_host_is_one_line_and_status_1():
    # .invalid never resolves (RFC 2606); the resolver answers without a network.
    result = run_echo_server("--host", "nosuchhost.invalid", "--port", "0")
    assert_one_line_error(result, "cannot resolve host nosuchhost.invalid")


def test_bad_flag_still_prints_usage():
    result = run_echo_server("--port", "70000")
    assert result.returncode == 64, result
    assert "Usage: echo-server" in result.stderr


@pytest.mark.parametrize("flags,named", [
    (("--compression-level", "12"), "--compression-level"),
    (("--max-connections=-1",), "--max-connections"),
    (("--loops", "0"), "--loops"),
    (("--receive-buffer-size", "100"), "--receive-buffer-size"),
])
def test_every_bad_value_is_status_64_naming_the_flag(flags, named):
    # Checked before anything starts, whether or not the option is in use.
    result = run_echo_server("--host", "127.0.0.1", "--port", "0", *flags)
    assert result.returncode == 64, result
    assert named in result.stderr, result.stderr


def test_debug_log_names_a_refused_origin(echo_server):
    server = echo_server("--log-level", "debug", "--allowed-origin", "http://allowed.example")

    async def attempt(origin):
        try:
            async with websockets.connect(server.url, origin=origin) as ws:
                await ws.send("hi")
                return await ws.recv()
        except websockets.exceptions.InvalidStatus as error:
            return error.response.status_code

    assert asyncio.run(attempt("http://evil.example")) == 403
    assert asyncio.run(attempt("http://allowed.example")) == "hi"
    log = server.output()
    refused = [line for line in log.splitlines() if "request refused" in line]
    assert len(refused) == 1, log
    assert "status=403" in refused[0] and "origin http://evil.example" in refused[0], refused[0]
    assert "origin not allowed" in refused[0]
    # The accepted one is logged as opened and then closed with its code.
    assert any("WebSocket open" in line for line in log.splitlines()), log
    assert any("WebSocket closed" in line and "code=1000" in line for line in log.splitlines()), log


def test_info_log_has_no_per_connection_lines(echo_server):
    server = echo_server()

    async def echo():
        async with websockets.connect(server.url) as ws:
            await ws.send("x")
            return await ws.recv()

    assert asyncio.run(echo()) == "x"
    assert server.stop() == 0
    log = server.output()
    assert "listening" in log and "stopped" in log, log
    assert "WebSocket open" not in log and "request refused" not in log, log
