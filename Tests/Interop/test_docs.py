"""The docs against what the binaries and the tree really are: every flag of
every executable is in docs/flags.md (generated from `--help`), and no page
narrates history or cites a target it does not define."""
import os
import re
import subprocess
import sys

from conftest import ECHO_SERVER

TOP = os.path.join(os.path.dirname(__file__), "..", "..")
RELEASE = os.path.dirname(os.path.abspath(ECHO_SERVER))
BINARIES = [
    ECHO_SERVER,
    os.environ.get("CHAT_SERVER", os.path.join(RELEASE, "chat-server")),
    os.path.join(RELEASE, "autobahn-client"),
    os.environ.get("WS_BENCH", os.path.join(TOP, "Benchmarks", ".build", "release", "ws-bench")),
]


def test_every_flag_of_every_executable_is_in_the_docs():
    page = open(os.path.join(TOP, "docs", "flags.md")).read()
    for binary in BINARIES:
        # ws-bench's flags are its `run` subcommand's (the default one).
        args = ["run", "--help"] if os.path.basename(binary) == "ws-bench" else ["--help"]
        text = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, COLUMNS="100")).stdout
        flags = set(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", text, re.M))
        assert len(flags) >= 3, (binary, text)
        missing = sorted(f for f in flags if f not in page)
        assert not missing, (os.path.basename(binary), missing)


def test_flags_page_is_generated_from_the_current_binaries():
    result = subprocess.run([sys.executable, os.path.join(TOP, "scripts", "flags_doc.py"), "--check", *BINARIES],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "docs/flags.md is stale; run scripts/flags_doc.py:\n" + result.stdout[-3000:]


def test_no_history_or_undefined_targets_in_the_docs():
    result = subprocess.run(["bash", os.path.join(TOP, "scripts", "check-doc-phrases.sh")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_public_declaration_has_a_doc_comment():
    result = subprocess.run([sys.executable, os.path.join(TOP, "scripts", "check-doc-comments.py")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_figures_are_the_benchmark_json_s():
    result = subprocess.run([sys.executable, os.path.join(TOP, "scripts", "readme_figures.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
