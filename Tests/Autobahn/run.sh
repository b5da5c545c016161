#!/usr/bin/env bash
# Runs Autobahn|Testsuite's fuzzing client against echo-server on loopback and
# fails unless every case passes (see summarize.py for what passing means).
# Usage: run.sh PATH_TO_ECHO_SERVER [summarize.py options]
# AUTOBAHN_SERVER_ARGS: extra echo-server flags; AUTOBAHN_CASES: the case list
# (JSON, default sections 1-10); AUTOBAHN_OUT: the report folder's name;
# AUTOBAHN_TLS=1: over wss://, with a certificate made for this run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
server=${1:?usage: run.sh ECHO_SERVER [--write-doc]}
shift
out="$top/reports/${AUTOBAHN_OUT:-autobahn}"
rm -rf "$out"
mkdir -p "$out"

# A free port from the kernel.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
scheme=ws
tls_args=()
if [ -n "${AUTOBAHN_TLS:-}" ]; then
    bash "$top/scripts/make-tls-cert.sh" "$out/tls" > /dev/null
    scheme=wss
    tls_args=(--tls-cert "$out/tls/server.pem" --tls-key "$out/tls/server.key")
fi
# AUTOBAHN_SERVER_ARGS: extra echo-server flags (word-split on purpose).
"$server" --host 127.0.0.1 --port "$port" "${tls_args[@]}" ${AUTOBAHN_SERVER_ARGS:-} > "$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    grep -q "listening on" "$out/server.log" && break
    sleep 0.1
done
grep -q "listening on" "$out/server.log" || { echo "echo-server did not start"; cat "$out/server.log"; exit 1; }

cases=${AUTOBAHN_CASES:-'["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]'}
sed -e "s|@SCHEME@|$scheme|" -e "s|@PORT@|$port|" -e "s|@OUTDIR@|$out|" -e "s|@CASES@|$cases|" "$here/fuzzingclient.json" > "$out/spec.json"
(cd "$out" && timeout -s KILL 2400 "$top/.venv-ab/bin/wstest" -m fuzzingclient -s "$out/spec.json" > "$out/wstest.log" 2>&1) || {
    echo "wstest failed"; tail -20 "$out/wstest.log"; exit 1; }

# The server must still be alive after the whole suite, and stop cleanly.
kill -0 $pid || { echo "echo-server died during the suite"; cat "$out/server.log"; exit 1; }
kill -TERM $pid
wait $pid || { echo "echo-server exited with $? after SIGTERM"; exit 1; }
trap - EXIT

python3 "$here/summarize.py" "$out/index.json" "$@"
