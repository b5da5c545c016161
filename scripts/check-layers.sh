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
forbid Sources/WebSocketCore Foundation CLibUV UVKit WebSocketServer
forbid Sources/UVKit Foundation WebSocketCore WebSocketServer CLibCrypto
forbid Sources/WebSocketServer Foundation CLibUV CLibCrypto
forbid Sources/echo-server CLibUV UVKit WebSocketCore CLibCrypto
if [ $fail -ne 0 ]; then exit 1; fi
echo "layering: 4 modules checked, dependencies run one way"
