#!/usr/bin/env bash
# A bounded libFuzzer run over the frame and request-head parsers.
# Usage: run.sh [SECONDS]   (default 60; the process is killed 60 s past that)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
seconds=${1:-60}
out="$top/.build-fuzz"
mkdir -p "$out/corpus"
# Seeds: a masked text frame, a fragmented message with a ping, a close, a request.
printf '\x00\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58' > "$out/corpus/seed-text"
printf '\x04\x01\x83\x00\x00\x00\x00abc\x89\x80\x00\x00\x00\x00\x80\x82\x00\x00\x00\x00de' > "$out/corpus/seed-fragments"
printf '\x00\x88\x82\x00\x00\x00\x00\x03\xe8' > "$out/corpus/seed-close"
printf '\x01GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' > "$out/corpus/seed-head"

inc=$(pkg-config --cflags-only-I libcrypto | sed 's/-I//g')
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzParsers \
    -I "$top/Sources/CLibCrypto" -Xcc -fmodule-map-file="$top/Sources/CLibCrypto/module.modulemap" \
    "$top"/Sources/WebSocketCore/*.swift "$here/FuzzParsers.swift" -lcrypto -o "$out/fuzz-parsers"
timeout -s KILL $((seconds + 60)) "$out/fuzz-parsers" -max_total_time="$seconds" -max_len=4096 \
    -artifact_prefix="$out/" "$out/corpus"
