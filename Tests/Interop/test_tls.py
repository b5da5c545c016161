"""wss:// and https:// against real peers: Python websockets with the test
CA, headless Chromium, openssl s_client, and garbage on the TLS port."""
import asyncio
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time

import websockets

from test_page_chromium import log_rows, state
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def tls_args(folder):
    return ["--tls-cert", str(folder / "server.pem"), "--tls-key", str(folder / "server.key")]


def trusting(folder):
    return ssl.create_default_context(cafile=str(folder / "ca.pem"))


async def echo(url, context, messages):
    async with websockets.connect(url, ssl=context, max_size=None) as ws:
        back = []
        for message in messages:
            await ws.send(message)
            back.append(await ws.recv())
        return back


def test_python_websockets_over_wss(echo_server, certificates):
    folder = certificates()
    messages = ["", "hello", "é" * 5000, bytes(range(256)) * 300, os.urandom(1 << 20)]
    for extra in ([], ["--compression"]):
        server = echo_server(*tls_args(folder), *extra)
        assert "listening on https://127.0.0.1:%d" % server.port in server.output()
        for host in ("127.0.0.1", "localhost"):
            url = "wss://%s:%d/ws" % (host, server.port)
            assert asyncio.run(echo(url, trusting(folder), messages)) == messages


def test_python_refuses_a_server_it_does_not_trust(echo_server, certificates):
    served, other = certificates("served"), certificates("other")
    server = echo_server(*tls_args(served))
    try:
        asyncio.run(echo(server.url, trusting(other), ["x"]))
        raise AssertionError("an untrusted certificate was accepted")
    except ssl.SSLCertVerificationError:
        pass
    # The server is unharmed.
    assert asyncio.run(echo(server.url, trusting(served), ["still"])) == ["still"]


def test_chromium_loads_the_page_over_https_and_echoes_over_wss(echo_server, certificates):
    folder = certificates()
    server = echo_server(*tls_args(folder))
    options_browser = chromium_ignoring_certificates()
    try:
        wait = WebDriverWait(options_browser, 15)
        options_browser.get("https://127.0.0.1:%d/" % server.port)
        url = options_browser.find_element(By.ID, "connectionUrl").get_attribute("value")
        assert url == "wss://127.0.0.1:%d/ws" % server.port
        options_browser.find_element(By.ID, "connectButton").click()
        wait.until(lambda d: state(d) == "Open")
        options_browser.find_element(By.ID, "sendMessage").send_keys("over TLS")
        options_browser.find_element(By.ID, "sendButton").click()
        wait.until(lambda d: ["Server", "Client", "over TLS"] in log_rows(d))
        options_browser.find_element(By.ID, "closeButton").click()
        wait.until(lambda d: state(d) == "Closed")
        assert log_rows(options_browser)[-1][2] == "Closed by the client. Code: 1000. Reason: Closing from client"
        protocol = options_browser.execute_script("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
        assert protocol == "http/1.1"  # ALPN: the server chose HTTP/1.1 over h2
    finally:
        options_browser.quit()


def chromium_ignoring_certificates():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def test_renegotiation_is_refused_and_others_go_on(echo_server, certificates):
    folder = certificates()
    server = echo_server(*tls_args(folder), "--log-level", "debug")
    # s_client renegotiates when a line is "R" (TLS 1.2 only; 1.3 has none).
    client = subprocess.Popen(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.port, "-tls1_2", "-CAfile", str(folder / "ca.pem")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1)
    client.stdin.write(b"R\n")
    client.stdin.flush()
    output, _ = client.communicate(timeout=10)
    assert b"RENEGOTIATING" in output
    deadline = time.time() + 5
    while "TLS renegotiation refused" not in server.output() and time.time() < deadline:
        time.sleep(0.05)
    assert "TLS renegotiation refused" in server.output()
    assert asyncio.run(echo(server.url, trusting(folder), ["after"])) == ["after"]


def test_sighup_reloads_the_certificate(echo_server, certificates):
    first, second = certificates("first"), certificates("second")
    live = first.parent / "live"
    live.mkdir()
    for name in ("server.pem", "server.key"):
        shutil.copy(first / name, live / name)
    server = echo_server(*tls_args(live))
    assert asyncio.run(echo(server.url, trusting(first), ["one"])) == ["one"]
    for name in ("server.pem", "server.key"):
        shutil.copy(second / name, live / name)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while "TLS certificates reloaded" not in server.output() and time.time() < deadline:
        time.sleep(0.05)
    assert "TLS certificates reloaded" in server.output()
    assert asyncio.run(echo(server.url, trusting(second), ["two"])) == ["two"]


def client_hello():
    """A real ClientHello, from Python's ssl over memory BIOs."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def test_garbage_on_the_tls_port_loses_nothing_else(echo_server, certificates):
    """A bounded random test: 300 connections of garbage, truncated and
    mutated ClientHellos and plain HTTP, while one wss client keeps echoing."""
    folder = certificates()
    server = echo_server(*tls_args(folder), "--handshake-timeout", "1", "--log-level", "debug")
    hello = client_hello()
    rng = random.Random(6455)

    def garbage():
        kind = rng.randrange(5)
        if kind == 0:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8192)))
        if kind == 1:
            return hello[:rng.randrange(1, len(hello))]
        if kind == 2:
            mutated = bytearray(hello)
            for _ in range(rng.randrange(1, 20)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            return bytes(mutated)
        if kind == 3:
            return b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        return bytes([0x16, 0x03, 0x03]) + rng.randrange(65536).to_bytes(2, "big") + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 512)))

    async def run():
        async with websockets.connect(server.url, ssl=trusting(folder)) as ws:
            deadline = time.time() + 60
            for round_number in range(30):
                assert time.time() < deadline
                sockets = []
                for _ in range(10):
                    s = socket.create_connection(("127.0.0.1", server.port))
                    s.sendall(garbage())
                    sockets.append(s)
                await ws.send("round %d" % round_number)
                assert await asyncio.wait_for(ws.recv(), 10) == "round %d" % round_number
                for s in sockets:
                    s.close()

    asyncio.run(run())
    assert server.proc.poll() is None
    # Each refused handshake is one debug line; none took the server down.
    assert server.output().count("TLS handshake failed") >= 100
    assert asyncio.run(echo(server.url, trusting(folder), ["survived"])) == ["survived"]


def test_every_loop_of_a_group_speaks_tls(echo_server, certificates):
    """Each loop loads its own context from the same files (OpenSSL 3
    contends on a shared one); 40 clients land on both loops."""
    folder = certificates()
    server = echo_server(*tls_args(folder), "--loops", "2", "--accept", "round-robin")

    async def many():
        return await asyncio.gather(*[echo(server.url, trusting(folder), ["loop %d" % i]) for i in range(40)])

    assert asyncio.run(many()) == [["loop %d" % i] for i in range(40)]
