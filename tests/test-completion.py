#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The bash completion (completions/bankr-llm.bash), driven through its
function with COMP_WORDS/COMP_CWORD as bash does on TAB: verbs, options,
--json=FORMAT, the four setup tools, and model ids read from the private
bus in one property read, without starting the service and without a
gateway request. zsh (through a pseudo-terminal) and fish complete too."""
import os
import shutil
import subprocess
import unittest

from harness import Env, SRC, SLOW, wait_until
from fakegw import FakeGateway

SCRIPT = os.path.join(SRC, "completions", "bankr-llm.bash")


class BashCompletion(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env(keyring=False, service_env={"BANKR_LLM_KEY": FakeGateway.DEFAULT_KEY})
        cls.env.start()

    @classmethod
    def tearDownClass(cls):
        cls.env.stop()

    def complete(self, line):
        """COMPREPLY for the command line `line` (the cursor at its end)."""
        words = line.split(" ")
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                  'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; '
                  '_bankr_llm bankr-llm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; '
                  'printf "%s\\n" "${COMPREPLY[@]}"')
        # bash splits "--json=sh" at "=" (COMP_WORDBREAKS) as "--json" "=" "sh".
        split = []
        for w in words:
            if w.startswith("--json="):
                split += ["--json", "=", w[len("--json="):]] if w != "--json=" else ["--json", "="]
            else:
                split.append(w)
        r = self.env.run(["bash", "--norc", "--noprofile", "-c", script, "bash", SCRIPT] + split, check=True)
        return sorted(l for l in r.stdout.split("\n") if l)

    def test_verbs_and_options(self):
        self.assertEqual(self.complete("bankr-llm se"), ["setup"])
        self.assertEqual(self.complete("bankr-llm c"), ["chat", "claude", "config", "credits"])
        self.assertIn("--no-ask-password", self.complete("bankr-llm --"))
        self.assertEqual(self.complete("bankr-llm models --re"), ["--refresh"])
        self.assertEqual(self.complete("bankr-llm key "), sorted("set clear import status validate reveal".split()))
        self.assertEqual(self.complete("bankr-llm key import --"), ["--help", "--remove-plaintext"])
        self.assertEqual(self.complete("bankr-llm credits "), ["add", "auto"])
        self.assertIn("--enable", self.complete("bankr-llm credits auto --"))
        self.assertEqual(self.complete("bankr-llm config get "), sorted("llmKey apiKey llmUrl apiUrl".split()))
        self.assertEqual(self.complete("bankr-llm chat --api "), ["anthropic", "auto", "openai"])
        self.assertEqual(self.complete("bankr-llm claude --"), [])

    def test_json_formats(self):
        self.assertEqual(self.complete("bankr-llm status --json="), ["off", "pretty", "short"])
        self.assertEqual(self.complete("bankr-llm models --json=sh"), ["short"])
        self.assertEqual(self.complete("bankr-llm credits auto --json=p"), ["pretty"])

    def test_setup_tools(self):
        self.assertEqual(self.complete("bankr-llm setup "), ["claude", "cursor", "openclaw", "opencode"])
        self.assertEqual(self.complete("bankr-llm setup open"), ["openclaw", "opencode"])
        self.assertIn("--install", self.complete("bankr-llm setup opencode --"))

    def test_model_ids_from_the_service(self):
        # Not running: nothing, and the completion does not start it.
        self.env.stop_service()
        self.assertEqual(self.complete("bankr-llm chat -m "), [])
        self.assertIsNone(self.env.service_pid())
        self.env.start_service()
        ids = sorted(m["id"] for m in self.env.gateway.models)
        wait_until(lambda: self.complete("bankr-llm chat -m ") == ids, what="the live model list")
        requests = len(self.env.gateway.requests)
        self.assertEqual(self.complete("bankr-llm chat --model claude"),
                         [i for i in ids if i.startswith("claude")])
        self.assertEqual(self.complete("bankr-llm chat -m gpt-5-mini --fallback "), ids)
        if shutil.which("fish"):
            path = os.path.join(SRC, "completions", "bankr-llm.fish")
            r = self.env.run(["fish", "--no-config", "-c", "source %s; complete -C 'bankr-llm chat -m '" % path],
                             check=True)
            self.assertEqual(sorted(l.split("\t")[0] for l in r.stdout.splitlines()), ids)
        self.assertEqual(len(self.env.gateway.requests), requests, "a completion reached the gateway")


ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "PS1='PROMPT> '; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
# Every match the completion adds is printed as one "HITS:" line.
zpty -w z "compadd() { local -a __h; builtin compadd -O __h \"\$@\"; (( \$#__h )) && print -r -- \"HITS: \${(j: :)__h}\"; builtin compadd \"\$@\"; }"
shift
for line in "$@"; do
    zpty -w -n z "$line"$'\t'
    sleep $ZSH_PAUSE
    zpty -w z $'\C-u'
    sleep 0.3
done
out=
while zpty -r -t z chunk; do out+=$chunk; done
print -r -- "$out" | tr -d '\r' | grep -ao 'HITS: .*'
zpty -d z
"""


class ZshCompletion(BashCompletion):
    """The zsh function, driven through a pseudo-terminal (zsh/zpty) with TAB."""

    def setUp(self):
        if not shutil.which("zsh"):
            self.skipTest("zsh is not installed")

    def zsh(self, *lines):
        r = self.env.run(["zsh", "-f", "-c", ZSH_DRIVER, "zsh", os.path.join(SRC, "completions")] + list(lines),
                         env={"ZSH_PAUSE": str(1.0 * SLOW)}, timeout=60, check=True)
        return {tuple(sorted(l[len("HITS: "):].split())) for l in r.stdout.splitlines()}

    def test_zsh(self):
        self.env.start_service()
        ids = tuple(sorted(m["id"] for m in self.env.gateway.models))
        wait_until(lambda: self.complete("bankr-llm chat -m ") == list(ids), what="the live model list")
        hits = self.zsh("bankr-llm se", "bankr-llm setup ", "bankr-llm key ", "bankr-llm chat -m ")
        self.assertIn(("setup",), hits)
        self.assertIn(("claude", "cursor", "openclaw", "opencode"), hits)
        self.assertIn(tuple(sorted("set clear import status validate reveal".split())), hits)
        self.assertIn(ids, hits)

    # The bash cases are not repeated here.
    test_verbs_and_options = test_json_formats = test_setup_tools = test_model_ids_from_the_service = None


class OtherShells(unittest.TestCase):
    @unittest.skipUnless(shutil.which("zsh"), "zsh is not installed")
    def test_zsh_parses(self):
        subprocess.run(["zsh", "-n", os.path.join(SRC, "completions", "_bankr-llm")], check=True)

    @unittest.skipUnless(shutil.which("fish"), "fish is not installed")
    def test_fish_completes(self):
        path = os.path.join(SRC, "completions", "bankr-llm.fish")
        r = subprocess.run(["fish", "--no-config", "-c", "source %s; complete -C 'bankr-llm setup '" % path],
                           capture_output=True, text=True, check=True,
                           env=dict(os.environ, HOME=os.environ.get("TMPDIR", "/tmp")))
        self.assertEqual(sorted(l.split("\t")[0] for l in r.stdout.splitlines()),
                         ["claude", "cursor", "openclaw", "opencode"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
