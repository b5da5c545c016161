#!/usr/bin/env bash
# Installs the Debian packages a target needs, only those missing, so a warm
# machine pays nothing. Usage: install-deps.sh run|chat|test|bench
set -euo pipefail
what=${1:-run}

packages=(libuv1-dev libssl-dev zlib1g-dev libhiredis-dev pkg-config)
case "$what" in
    run) packages+=(openssl) ;;  # make tls-cert
    chat) packages+=(redis-server) ;;  # make chat REDIS=1
    # openssl: the CLI that makes the TLS tests' certificates.
    # redis-server: the chat sample's backplane tests start their own.
    # node-ws: node `ws`, one of the servers ws-bench is tested against.
    test) packages+=(chromium chromium-driver nginx-light python3-venv openssl redis-server node-ws) ;;
    # node-redis, redis-server: the fan-out benchmark's servers through Redis.
    # nginx-light, wrk: the static-file benchmark against nginx.
    bench) packages+=(node-ws node-redis redis-server python3-venv valgrind nginx-light wrk) ;;
    *) echo "usage: $0 run|chat|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# python3-venv is Debian's; a pyenv python3 brings venv itself.
if [[ " ${missing[*]-} " == *" python3-venv "* ]] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing=("${missing[@]/python3-venv}")
fi
missing=($(printf '%s\n' "${missing[@]-}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
