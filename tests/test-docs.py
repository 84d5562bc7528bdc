#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""docs/cli.md is what the programs' --help says today."""
import importlib.util
import os
import unittest

from harness import SRC, BUILD

spec = importlib.util.spec_from_file_location("gen", os.path.join(SRC, "scripts", "gen-cli-doc.py"))


class Docs(unittest.TestCase):
    def test_cli_reference_is_current(self):
        gen = importlib.util.module_from_spec(spec)
        import sys
        sys.argv = ["gen", BUILD]
        spec.loader.exec_module(gen)
        gen.CLI = os.environ.get("BANKR_LLM", gen.CLI)
        gen.DAEMON = os.environ.get("BANKR_LLMD", gen.DAEMON)
        gen.NOTIFY = os.environ.get("BANKR_LLM_NOTIFY", gen.NOTIFY)
        for i, (title, argv) in enumerate(gen.SECTIONS):
            prog = {"bankr-llm": gen.CLI, "bankr-llmd": gen.DAEMON, "bankr-llm-notify": gen.NOTIFY}
            gen.SECTIONS[i] = (title, [prog[os.path.basename(argv[0])]] + argv[1:])
        with open(os.path.join(SRC, "docs", "cli.md")) as f:
            have = f.read()
        self.assertEqual(have, gen.render(),
                         "docs/cli.md is out of date: run scripts/gen-cli-doc.py > docs/cli.md")


if __name__ == "__main__":
    unittest.main(verbosity=2)
