#!/usr/bin/env bash
# Every Autobahn|Testsuite case (517, sections 12 and 13 included) with
# permessage-deflate, in both roles at once: the fuzzing client against
# `echo-server --compression` and the fuzzing server against
# `autobahn-client --compression`. Fails unless both pass.
# Usage: run-compression.sh ECHO_SERVER AUTOBAHN_CLIENT
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
server=${1:?usage: run-compression.sh ECHO_SERVER AUTOBAHN_CLIENT}
client=${2:?usage: run-compression.sh ECHO_SERVER AUTOBAHN_CLIENT}
mkdir -p "$top/reports"

# Level 1 on both sides: the suite checks what comes back, not how small it
# was, and the faster level keeps our side of each exchange short (at level 6
# the client spent 160 CPU seconds in zlib on section 12.2 alone).
AUTOBAHN_OUT=autobahn-compression AUTOBAHN_SERVER_ARGS="--compression --compression-level 1" \
    AUTOBAHN_CASES='["*"]' bash "$here/run.sh" "$server" --expect 517 > "$top/reports/autobahn-compression.txt" 2>&1 &
server_run=$!
bash "$here/run-client.sh" "$client" --compression --compression-level 1 > "$top/reports/autobahn-client-compression.txt" 2>&1 &
client_run=$!
wait $server_run; server_status=$?
wait $client_run; client_status=$?
echo "== server (echo-server --compression)"; cat "$top/reports/autobahn-compression.txt"
echo "== client (autobahn-client --compression)"; cat "$top/reports/autobahn-client-compression.txt"
[ $server_status -eq 0 ] && [ $client_status -eq 0 ]
