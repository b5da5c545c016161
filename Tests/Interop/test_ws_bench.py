"""ws-bench, the load generator, against real servers on 127.0.0.1: it checks
every echoed byte (and fails when an echo is wrong), and reports its own CPU
time split into user and kernel time."""
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import free_port

WS_BENCH = os.environ.get("WS_BENCH", os.path.join(os.path.dirname(__file__), "..", "..", "Benchmarks", ".build", "release", "ws-bench"))


def run_bench(url, *args, server_pid=None):
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    cmd = [WS_BENCH, "--url", url, "--duration", "1", "--warmup", "0.2", "--json", out, "--quiet", *args]
    if server_pid:
        cmd += ["--server-pid", str(server_pid)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    with open(out) as f:
        text = f.read()
    os.unlink(out)
    return result, (json.loads(text) if text else None)


@pytest.mark.parametrize("args", [
    ["--connections", "8", "--size", "16", "--in-flight", "16"],
    ["--connections", "4", "--size", "1000", "--in-flight", "4", "--text"],
    # Over 65,535 bytes: the 8-byte length form out, and the echo comes back
    # in fragments (one per 4 KiB ring read), which must join to the same bytes.
    ["--connections", "2", "--size", "70000", "--in-flight", "2"],
])
def test_load_mode_verifies_every_echo(echo_server, args):
    server = echo_server()
    result, report = run_bench(server.url, *args, server_pid=server.proc.pid)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["mismatches"] == 0 and report["failed"] == 0
    assert report["connected"] == report["connections"]
    assert report["messages"] > 20
    assert 0 < report["clientKernelCPUSeconds"] <= report["clientCPUSeconds"]
    assert report["serverCPUSeconds"] > 0
    assert report["serverKernelCPUSeconds"] <= report["serverCPUSeconds"]
    assert report["latencyMicroseconds"]["p50"] <= report["latencyMicroseconds"]["p99"]


def test_a_wrong_echo_fails_the_run():
    port = free_port()
    python = os.environ.get("PYTHON", sys.executable)
    proc = subprocess.Popen([python, os.path.join(os.path.dirname(__file__), "corrupting_echo.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening" in proc.stdout.readline()
        result, report = run_bench("ws://127.0.0.1:%d/ws" % port, "--connections", "2", "--size", "64", "--in-flight", "2")
        print(result.stdout)
        assert result.returncode == 1
        assert report["mismatches"] >= 1
        assert "MISMATCH" in (report.get("firstError") or "")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
