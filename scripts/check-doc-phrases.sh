#!/usr/bin/env bash
# The docs describe what is; git keeps the history. Fails, naming the lines,
# when README.md or docs/ narrate it ("first version", "before that",
# "became", "earlier the same day") or cite targets that no page defines
# ("the issue", "the target"). Run by Tests/Interop/test_docs.py.
set -uo pipefail
cd "$(dirname "$0")/.."
pattern='first version|before that|became|earlier the same day|the issue|the target|two guesses|aimed for'
if grep -rniE --include='*.md' "$pattern" README.md docs/; then
    echo "check-doc-phrases: history or undefined targets in the lines above" >&2
    exit 1
fi
echo "check-doc-phrases: none found"
