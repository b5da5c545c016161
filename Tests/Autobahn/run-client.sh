#!/usr/bin/env bash
# Runs Autobahn|Testsuite's fuzzing server on loopback and drives it with
# autobahn-client (WebSocketClient), then fails unless every case passes
# (summarize.py). Usage: run-client.sh PATH_TO_AUTOBAHN_CLIENT [client flags]
# (with --compression every case runs, sections 12 and 13 included).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
client=${1:?usage: run-client.sh AUTOBAHN_CLIENT [--compression]}
shift
flags=("$@")
excluded='["12.*", "13.*"]'
expect=301
if [[ " ${flags[*]-} " == *" --compression "* ]]; then excluded='[]'; expect=517; fi
out="$top/reports/autobahn-client${flags[*]:+-compression}"
rm -rf "$out"
mkdir -p "$out"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
webport=$(free_port)
sed -e "s|@PORT@|$port|" -e "s|@OUTDIR@|$out|" -e "s|@EXCLUDED@|$excluded|" "$here/fuzzingserver.json" > "$out/spec.json"
(cd "$out" && exec "$top/.venv-ab/bin/python" "$here/wstest_loopback.py" -m fuzzingserver -s "$out/spec.json" -u "$webport" \
    > "$out/wstest.log" 2>&1) &
pid=$!
# The server never exits by itself: stop it by its PID, whatever happens.
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
    sleep 0.2
done

timeout -s KILL 2400 "$client" --url "ws://127.0.0.1:$port" --agent uvwebsocket-client ${flags[@]+"${flags[@]}"} > "$out/client.log" 2>&1 || {
    echo "autobahn-client failed"; tail -20 "$out/client.log"; exit 1; }
kill $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
trap - EXIT

python3 "$here/summarize.py" "$out/index.json" --expect $expect
