"""Starts echo-server processes on loopback for the external-peer tests."""
import os
import signal
import socket
import subprocess
import time

import pytest

ECHO_SERVER = os.environ.get("ECHO_SERVER", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "release", "echo-server"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EchoServer:
    def __init__(self, *args):
        self.port = free_port()
        self.args = args
        self.log_path = "/tmp/echo-server-%d.log" % self.port
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [ECHO_SERVER, "--host", "127.0.0.1", "--port", str(self.port), *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(self.log_path) as f:
                if "listening on" in f.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("echo-server did not start: " + open(self.log_path).read())

    @property
    def url(self):
        return "%s://127.0.0.1:%d/ws" % ("wss" if self.tls else "ws", self.port)

    @property
    def tls(self):
        return "--tls-cert" in self.args

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=15):
        """SIGTERM, then the exit status (a graceful shutdown exits 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


@pytest.fixture
def echo_server():
    servers = []

    def start(*args):
        server = EchoServer(*args)
        servers.append(server)
        return server

    yield start
    for s in servers:
        code = s.stop()
        assert code == 0, "echo-server exit status %r\n%s" % (code, s.output())


@pytest.fixture
def certificates(tmp_path):
    """A CA and a certificate it signed for localhost and 127.0.0.1, made
    for this test with the openssl CLI (scripts/make-tls-cert.sh)."""
    def make(name="tls", names=None):
        folder = tmp_path / name
        args = ["bash", os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "make-tls-cert.sh"), str(folder)]
        if names:
            args.append(names)
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        return folder
    return make


def headless_chromium(width=1000, height=760):
    """Debian's Chromium, headless as root needs it, driven by its chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=%d,%d" % (width, height)):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
