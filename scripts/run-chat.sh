#!/usr/bin/env bash
# Runs the chat sample (make chat). With REDIS=1, first starts a redis-server
# of its own on a free loopback port (no data kept) and stops it afterwards;
# with REDIS_URL, shares rooms through that Redis. Usage:
#   run-chat.sh CHAT_SERVER PORT REDIS REDIS_URL [chat-server flags...]
set -euo pipefail
server=$1 port=$2 local_redis=$3 url=$4
shift 4
redis_pid=""
cleanup() { if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait 2>/dev/null || true; fi; }
trap cleanup EXIT
if [ -n "$local_redis" ] && [ "$local_redis" != 0 ]; then
    redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
    redis_pid=$!
    for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    url="redis://127.0.0.1:$redis_port"
    echo "redis-server on $url; a second chat server joins the same rooms with:"
    echo "  $server --port $((port + 1)) --redis $url"
fi
args=(--host localhost --port "$port")
[ -n "$url" ] && args+=(--redis "$url")
"$server" "${args[@]}" "$@"
