#!/usr/bin/env python3
"""Writes docs/flags.md from the executables' own `--help`, so the flags in
docs/ are the flags the binaries take (Tests/Interop/test_docs.py checks it).

Usage: flags_doc.py [--check] ECHO_SERVER CHAT_SERVER AUTOBAHN_CLIENT WS_BENCH
With --check, exits 1 and prints the difference when docs/flags.md is stale.
"""
import difflib
import os
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(TOP, "docs", "flags.md")

INTRO = {
    "echo-server": "The echo sample (`make run`): the page at `/`, the echo at `/ws`. Every "
                   "option's meaning, default and library name is in [options.md](options.md); "
                   "a bad value exits with status 64 and one line naming the flag.",
    "chat-server": "The chat sample (`make chat`): rooms at `/ws?room=NAME&name=NAME`, shared "
                   "with other servers through `--redis` ([topics.md](topics.md)).",
    "autobahn-client": "Drives Autobahn|Testsuite's fuzzing server with the library's client "
                       "(`make autobahn`; [conformance.md](conformance.md)).",
    "ws-bench": "The load generator the benchmarks and the 15,000-connection test use "
                "([benchmarks.md](benchmarks.md)), for any `ws://` or `wss://` server: "
                "`ws-bench run` (the default; `ws-bench --url ...` is the same) and "
                "`ws-bench compare A.json B.json`. This project's tests and docs point it at "
                "127.0.0.1 only; aim it only at servers you may load.",
}


def help_text(binary):
    env = dict(os.environ, COLUMNS="100")
    # ws-bench has subcommands: the help of each, one after the other.
    commands = [["run", "--help"], ["compare", "--help"]] if os.path.basename(binary) == "ws-bench" else [["--help"]]
    texts = [subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=60).stdout.rstrip()
             for args in commands]
    return "\n\n".join(texts) + "\n"


def page(binaries):
    lines = ["# Command-line flags", "",
             "Generated from each executable's `--help` by `scripts/flags_doc.py`; a test fails when",
             "this page and the binaries disagree.", ""]
    for binary in binaries:
        name = os.path.basename(binary)
        lines += ["## %s" % name, "", INTRO[name], "", "```text", help_text(binary).rstrip(), "```", ""]
    return "\n".join(lines)


def main(argv):
    check = argv[:1] == ["--check"]
    binaries = argv[1:] if check else argv
    if len(binaries) != 4:
        sys.exit(__doc__)
    text = page(binaries)
    if check:
        old = open(PAGE).read() if os.path.exists(PAGE) else ""
        if old != text:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), "docs/flags.md", "generated"))
            return 1
        return 0
    with open(PAGE, "w") as f:
        f.write(text)
    print("wrote", PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
