#!/usr/bin/env bash
# Bounded libFuzzer runs: the frame and request-head parsers, then
# permessage-deflate (the inflate path and the extension header parser).
# Usage: run.sh [SECONDS]   (each, default 60; a run is killed 60 s past that)
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
# The core's C part (unmasking), built with the same sanitizers.
clang -O2 -fsanitize=fuzzer-no-link,address -I "$top/Sources/CShims/CMasking/include" \
    -c "$top/Sources/CShims/CMasking/masking.c" -o "$out/masking.o"
masking=(-I "$top/Sources/CShims/CMasking/include" "$out/masking.o")
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzParsers \
    -I "$top/Sources/CShims/CLibCrypto" -Xcc -fmodule-map-file="$top/Sources/CShims/CLibCrypto/module.modulemap" "${masking[@]}" \
    "$top"/Sources/WebSocketCore/*.swift "$here/FuzzParsers.swift" -lcrypto -o "$out/fuzz-parsers"
timeout -s KILL $((seconds + 60)) "$out/fuzz-parsers" -max_total_time="$seconds" -max_len=4096 \
    -artifact_prefix="$out/" "$out/corpus"

# Seeds: RFC 7692's "Hello" (selector 0: one fragment), the same in two
# fragments read 1 byte at a time, and a header with a fallback list.
mkdir -p "$out/corpus-deflate"
printf '\x00\xf2\x48\xcd\xc9\xc9\x07\x00' > "$out/corpus-deflate/seed-hello"
printf '\x02\xf2\x48\xcd\xc9\xc9\x07\x00' > "$out/corpus-deflate/seed-fragments"
printf '\x01permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate' > "$out/corpus-deflate/seed-header"
# One module with the core, so the compression sources lose their import of it.
mkdir -p "$out/deflate-src"
for f in "$top"/Sources/WebSocketCompression/*.swift; do
    sed '/^import WebSocketCore$/d' "$f" > "$out/deflate-src/$(basename "$f")"
done
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzDeflate \
    -I "$top/Sources/CShims/CLibCrypto" -Xcc -fmodule-map-file="$top/Sources/CShims/CLibCrypto/module.modulemap" \
    -I "$top/Sources/CShims/CZlib" -Xcc -fmodule-map-file="$top/Sources/CShims/CZlib/module.modulemap" "${masking[@]}" \
    "$top"/Sources/WebSocketCore/*.swift "$out"/deflate-src/*.swift "$here/FuzzDeflate.swift" \
    -lcrypto -lz -o "$out/fuzz-deflate"
timeout -s KILL $((seconds + 60)) "$out/fuzz-deflate" -max_total_time="$seconds" -max_len=8192 \
    -artifact_prefix="$out/deflate-" "$out/corpus-deflate"
