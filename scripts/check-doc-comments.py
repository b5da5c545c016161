#!/usr/bin/env python3
"""Lists every public or open declaration in the library's modules that has
no doc comment (`///`) above it; exits 1 if there is one. The executables'
sources are left out: they have no public API."""
import os
import re
import sys

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DECLARATION = re.compile(
    r"^\s*(@\w+(\([^)]*\))?\s+)*(public|open)\s+(?!import)"
    r"((static|final|override|convenience|mutating|nonisolated|indirect)\s+|\w+\(set\)\s+)*"
    r"(func|var|let|init|struct|class|enum|case|typealias|protocol|subscript|actor)\b")
EXECUTABLES = ("echo-server", "chat-server", "autobahn-client")


def is_attribute(line):
    s = line.strip()
    return s.startswith("@") and not re.search(r"\b(public|open|func|var|let|init|case)\b", s)


def undocumented():
    found = []
    for root, _, files in os.walk(os.path.join(TOP, "Sources")):
        if any(name in root for name in EXECUTABLES):
            continue
        for name in sorted(files):
            if not name.endswith(".swift"):
                continue
            path = os.path.join(root, name)
            lines = open(path).read().split("\n")
            for i, line in enumerate(lines):
                if not DECLARATION.match(line):
                    continue
                j = i - 1
                while j >= 0 and is_attribute(lines[j]):
                    j -= 1
                above = lines[j].strip() if j >= 0 else ""
                if not above.startswith("///") and not above.endswith("*/"):
                    found.append("%s:%d: %s" % (os.path.relpath(path, TOP), i + 1, line.strip()))
    return found


if __name__ == "__main__":
    missing = undocumented()
    for item in missing:
        print(item)
    if missing:
        print("%d public declarations have no doc comment" % len(missing), file=sys.stderr)
        sys.exit(1)
