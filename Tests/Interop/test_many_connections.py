"""15,000 WebSocket connections held open by ws-bench in a process of its own,
spread over 127.0.0.1-4: all stay open and answer the server's pings, and the
server's RSS per idle connection is printed and checked: under 1,000 B (the
one-loop server measured 953 B before the runtime split and 935 B after it; a
change that grows a connection's objects past their malloc size classes shows
here)."""
import json
import os
import subprocess
import tempfile

WS_BENCH = os.environ.get("WS_BENCH", os.path.join(os.path.dirname(__file__), "..", "..", "Benchmarks", ".build", "release", "ws-bench"))


def test_fifteen_thousand_idle_connections(echo_server):
    server = echo_server("--keep-alive-interval", "1", "--handshake-timeout", "30")
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    result = subprocess.run(
        [WS_BENCH, "--url", "ws://127.0.0.1:%d/ws" % server.port, "--idle", "--connections", "15000",
         "--source-addresses", "4", "--duration", "3", "--server-pid", str(server.proc.pid),
         "--expect-pings", "--json", out, "--quiet"],
        capture_output=True, text=True, timeout=180)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out) as f:
        report = json.load(f)
    os.unlink(out)
    assert report["connected"] == 15000
    assert report["failed"] == 0
    assert report["minPingsAnswered"] >= 1
    per_connection = report["idleBytesPerConnection"]
    print("server RSS per idle connection: %d B" % per_connection)
    assert per_connection < 1000
