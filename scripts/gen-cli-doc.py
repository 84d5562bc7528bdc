#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes docs/cli.md from the programs' own --help, so the reference cannot
drift from the behaviour (tests/test-docs.py checks it is current).

    scripts/gen-cli-doc.py [BUILD_DIR] > docs/cli.md
"""
import os
import subprocess
import sys

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, "build")
CLI = os.path.join(build, "clients", "bankr-llm")
DAEMON = os.path.join(build, "service", "bankr-llmd")
NOTIFY = os.path.join(build, "clients", "bankr-llm-notify")

SECTIONS = [
    ("bankr-llm", [CLI, "--help"]),
    ("bankr-llm status", [CLI, "status", "--help"]),
    ("bankr-llm key", [CLI, "key", "--help"]),
    ("bankr-llm key set", [CLI, "key", "set", "--help"]),
    ("bankr-llm key clear", [CLI, "key", "clear", "--help"]),
    ("bankr-llm key import", [CLI, "key", "import", "--help"]),
    ("bankr-llm key status", [CLI, "key", "status", "--help"]),
    ("bankr-llm key validate", [CLI, "key", "validate", "--help"]),
    ("bankr-llm key reveal", [CLI, "key", "reveal", "--help"]),
    ("bankr-llm config", [CLI, "config", "--help"]),
    ("bankr-llm login", [CLI, "login", "--help"]),
    ("bankr-llm models", [CLI, "models", "--help"]),
    ("bankr-llm credits", [CLI, "credits", "--help"]),
    ("bankr-llm credits add", [CLI, "credits", "add", "--help"]),
    ("bankr-llm credits auto", [CLI, "credits", "auto", "--help"]),
    ("bankr-llm chat", [CLI, "chat", "--help"]),
    ("bankr-llm image", [CLI, "image", "--help"]),
    ("bankr-llm setup", [CLI, "setup", "--help"]),
    ("bankr-llm token", [CLI, "token", "--help"]),
    ("bankr-llm endpoint", [CLI, "endpoint", "--help"]),
    ("bankr-llm usage", [CLI, "usage", "--help"]),
    ("bankr-llm usage recent", [CLI, "usage", "recent", "--help"]),
    ("bankr-llm budget", [CLI, "budget", "--help"]),
    ("bankr-llmd", [DAEMON, "--help"]),
    ("bankr-llm-notify", [NOTIFY, "--help"]),
]


def render():
    out = ["# Command-line reference", "",
           "Generated from the programs' own `--help` by `scripts/gen-cli-doc.py`;",
           "`tests/test-docs.py` fails when it is out of date.", "",
           "`bankr-llm claude [ARGS...]` and `bankr-llm opencode [ARGS...]` take no",
           "options of their own: every argument, `--help` included, goes to the tool.",
           "They run the tool as their child with the local endpoint's URL and a",
           "connection token (no key, no polkit prompt), and pass signals on; one that",
           "was ignored when they started (as under `nohup`) stays ignored, by them and",
           "by the tool. They exit 127 (with the npm install hint) when the tool is",
           "missing, 126 when it cannot be executed, 128+N when signal N ended it, and",
           "otherwise with the tool's own exit code. See [setup.md](setup.md).", ""]
    for title, argv in SECTIONS:
        env = dict(os.environ, LANG="C.UTF-8", COLUMNS="80")
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=10)
        if r.returncode != 0:
            raise SystemExit("%s exited %d" % (" ".join(argv), r.returncode))
        out += ["## %s" % title, "", "```", r.stdout.rstrip("\n"), "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
