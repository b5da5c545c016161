#!/usr/bin/env bash
# Checks that dependencies run one way (docs/architecture.md): the protocol
# core and the libuv wrapper know nothing of each other or of Foundation, the
# server does not reach past UVKit into libuv, and the sample app uses the
# server's API alone.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
forbid() {  # forbid DIR MODULE...
    local dir=$1; shift
    for module in "$@"; do
        if grep -rnE "^\s*(@_exported\s+)?import\s+([a-z]+\s+)?$module(\s|$|\.)" "$dir" --include='*.swift'; then
            echo "layering: $dir must not import $module"
            fail=1
        fi
    done
}
forbid Sources/WebSocketCore Foundation CLibUV UVKit WebSocketRuntime WebSocketServer WebSocketClient WebSocketCompression CZlib CLibSSL TLSKit
forbid Sources/WebSocketCompression Foundation CLibUV UVKit WebSocketRuntime WebSocketServer WebSocketClient CLibCrypto CMasking
forbid Sources/UVKit Foundation WebSocketCore WebSocketRuntime WebSocketServer WebSocketClient CLibCrypto WebSocketCompression CZlib CMasking CLibSSL TLSKit
forbid Sources/TLSKit Foundation CLibUV UVKit WebSocketCore WebSocketRuntime WebSocketServer WebSocketClient WebSocketCompression CZlib CMasking
forbid Sources/WebSocketRuntime Foundation CLibCrypto CZlib WebSocketServer WebSocketClient CMasking
# libuv directly only where the one object per socket holds its uv_tcp_t and
# takes its callbacks (Socket/); the rest of the runtime goes through UVKit.
forbid Sources/WebSocketRuntime/Loop CLibUV
forbid Sources/WebSocketRuntime/Connection CLibUV
for file in Sources/WebSocketRuntime/*.swift; do forbid "$file" CLibUV; done
forbid Sources/WebSocketServer Foundation CLibUV CLibCrypto CZlib WebSocketClient CMasking CLibSSL
forbid Sources/WebSocketClient Foundation CLibUV CLibCrypto CZlib WebSocketServer CMasking CLibSSL
forbid Sources/WebSocketAsync Foundation CLibUV CLibCrypto CZlib WebSocketServer CMasking CLibSSL TLSKit WebSocketCompression CHiredis WebSocketBackplane
forbid Sources/WebSocketBackplane Foundation CLibUV CLibCrypto CZlib WebSocketClient CMasking CLibSSL TLSKit WebSocketCompression
forbid Sources/chat-server CLibUV UVKit WebSocketCore WebSocketRuntime CLibCrypto CZlib WebSocketCompression WebSocketClient CMasking CLibSSL TLSKit CHiredis
forbid Sources/echo-server CLibUV UVKit WebSocketCore WebSocketRuntime CLibCrypto CZlib WebSocketCompression WebSocketClient CMasking CLibSSL TLSKit CHiredis WebSocketBackplane
forbid Sources/autobahn-client CLibUV UVKit WebSocketCore WebSocketRuntime CLibCrypto CZlib WebSocketCompression WebSocketServer CMasking CLibSSL TLSKit
# Only the state machine answers pings and closes: no other source builds a
# pong or a close frame from a received event.
if grep -rnE "case \.ping\(|case \.close\(let" Sources --include='*.swift' | grep -v "Sources/WebSocketCore/"; then
    echo "layering: pings and closes are the state machine's (WebSocketCore) alone"
    fail=1
fi
if [ $fail -ne 0 ]; then exit 1; fi
echo "layering: 12 modules checked, dependencies run one way"
