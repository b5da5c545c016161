#!/bin/bash
# Builds the DocC archive of every library module with swift-docc-plugin and
# fails on any warning DocC gives (a broken symbol link, an undocumented
# parameter). SwiftPM's own note about libuv's pkg-config flags
# ("prohibited flag(s)") is a build message, not DocC's, and is let through.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
TARGETS="WebSocketServer WebSocketAsync WebSocketRuntime WebSocketClient WebSocketBackplane WebSocketCore WebSocketCompression UVKit TLSKit"
args=()
for target in $TARGETS; do args+=(--target "$target"); done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! $SWIFT package --disable-sandbox generate-documentation "${args[@]}" >"$log" 2>&1; then
    cat "$log"
    echo "build-docs: generate-documentation failed" >&2
    exit 1
fi
warnings=$(grep -E "^(warning|error):" "$log" | grep -v "prohibited flag" || true)
if [ -n "$warnings" ]; then
    grep -v "prohibited flag" "$log" | grep -E -A6 "^(warning|error):" || true
    echo "build-docs: DocC warnings above" >&2
    exit 1
fi
echo "DocC archives, one per module (open with: docc preview ARCHIVE, or serve the folder):"
ls -d .build/plugins/Swift-DocC/outputs/*.doccarchive
