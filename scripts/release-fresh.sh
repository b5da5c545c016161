#!/usr/bin/env bash
# Release builds use -cross-module-optimization, and SwiftPM's incremental
# build does not track what one module inlined from another: after a change to
# a struct's layout or a protocol's requirements, a dependent module can keep
# the old layout and the binary crashes (seen here: a handler's witness table
# one slot short). So when our sources changed since the last release build,
# this drops the release objects of this package's own modules (not those of
# its dependencies, which do not change), and they are compiled anew.
# Usage: release-fresh.sh BUILD_DIR SOURCES_DIR...  (from the package root)
set -euo pipefail
build=${1:?usage: release-fresh.sh BUILD_DIR SOURCES...}
shift
release="$build/$(uname -m)-unknown-linux-gnu/release"
stamp="$release/.sources.sha1"
sum=$(find "$@" -type f \( -name '*.swift' -o -name '*.h' -o -name '*.modulemap' -o -name 'Package.swift' \) -print0 \
      | sort -z | xargs -0 sha1sum | sha1sum | cut -d' ' -f1)
# A first build has nothing stale: record what it builds from, so that the
# next one (make run after make test) is not taken for a changed tree.
if [ ! -d "$release" ]; then
    mkdir -p "$release"
    echo "$sum" > "$stamp"
    exit 0
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    for dir in "$PWD"/Sources/*/ "$(dirname "$0")/../Sources"/*/; do
        name=$(basename "$dir" | tr '-' '_')
        rm -rf "$release/$name.build" "$release/Modules/$name".swift* "$release/$name.swiftmodule"
    done
    # The cached build plan names files in the folders just removed (each
    # module's output file map): without it, SwiftPM plans the build again.
    rm -f "$build/release.yaml"
    echo "$sum" > "$stamp"
fi
