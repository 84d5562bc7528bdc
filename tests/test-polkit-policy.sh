#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The shipped polkit policy, checked by the real thing: validates
# bot.bankr.LLM1.policy against polkit's DTD, then starts the real polkitd on
# a private system bus inside a private mount namespace whose
# /usr/share/polkit-1/actions holds only our policy (the real /usr and /etc
# are never touched), and checks
#   - pkaction shows exactly our five actions with the intended defaults;
#   - pkcheck for a process of "nobody" outside any session (so the
#     allow_any defaults apply) gives the intended answers;
#   - the rules.d example loads and tightens them as docs/polkit.md says.
#
# Usage: test-polkit-policy.sh POLICY [RULES-EXAMPLE]
# Exits 77 (skipped) only where polkitd cannot be started, saying why.

set -u

POLICY=${1:?usage: test-polkit-policy.sh POLICY [RULES-EXAMPLE]}
RULES=${2:-$(dirname "$0")/../polkit/50-bankr-llm.rules.example}
POLKITD=${POLKITD:-/usr/lib/polkit-1/polkitd}
DTD=/usr/share/polkit-1/policyconfig-1.dtd

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
skip() { echo "SKIP: $*" >&2; exit 77; }

# 1. The XML itself.
if command -v xmllint >/dev/null && [ -r "$DTD" ]; then
        if xmllint --noout --dtdvalid "$DTD" "$POLICY"; then
                ok "policy is valid against $DTD"
        else
                fail "policy does not validate against $DTD"
        fi
else
        echo "note: xmllint or $DTD missing; DTD check not run"
fi

# 2. Can the real polkitd run here?
[ -x "$POLKITD" ] || skip "$POLKITD is not installed (Debian: polkitd)"
for tool in pkaction pkcheck dbus-daemon unshare setpriv busctl; do
        command -v "$tool" >/dev/null || skip "$tool is not installed"
done
[ "$(id -u)" = 0 ] || skip "needs root: polkitd runs in a private mount namespace (unshare -m) and switches to the polkitd user"
unshare -m true 2>/dev/null || skip "cannot create a mount namespace here (unshare -m failed)"
id polkitd >/dev/null 2>&1 || skip "there is no polkitd user, which polkitd 122 switches to"
id nobody >/dev/null 2>&1 || skip "there is no user nobody to check for"

TMP=$(mktemp -d /tmp/test-polkit-policy.XXXXXX) || exit 1
# polkitd drops to its own user and must read everything below.
chmod 755 "$TMP"
BUS_PID=
POLKITD_PID=
SUBJECT_PID=
cleanup() {
        [ -n "$SUBJECT_PID" ] && kill "$SUBJECT_PID" 2>/dev/null
        [ -n "$POLKITD_PID" ] && kill "$POLKITD_PID" 2>/dev/null && wait "$POLKITD_PID" 2>/dev/null
        [ -n "$BUS_PID" ] && kill "$BUS_PID" 2>/dev/null
        rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -m 755 "$TMP/actions" "$TMP/no-rules" "$TMP/rules"
install -m 644 "$POLICY" "$TMP/actions/bot.bankr.LLM1.policy"
install -m 644 "$RULES" "$TMP/rules/50-bankr-llm.rules"
# A group for the example's reveal-key rule, seen only inside the namespace.
cp /etc/group "$TMP/group"
echo "bankr-no-reveal:x:64999:nobody" >>"$TMP/group"
chmod 644 "$TMP/group"

cat >"$TMP/system.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$TMP/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
EOF
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/system_bus_socket"
BUS_PID=$(dbus-daemon --config-file="$TMP/system.conf" --fork --nosyslog --print-pid=1 </dev/null) ||
        skip "cannot start a private system bus (dbus-daemon failed)"
chmod 666 "$TMP/system_bus_socket"

# polkitd in a mount namespace of its own, where our directories stand in
# for the system's. Waits until it owns its name on the bus.
start_polkitd() { # RULES-DIR
        unshare -m --propagation private sh -c '
                mount --bind "$1/actions" /usr/share/polkit-1/actions &&
                mount --bind "$2" /etc/polkit-1/rules.d &&
                mount --bind "$1/no-rules" /usr/share/polkit-1/rules.d &&
                mount --bind "$1/group" /etc/group &&
                exec "$3" --no-debug' sh "$TMP" "$1" "$POLKITD" >"$TMP/polkitd.log" 2>&1 &
        POLKITD_PID=$!
        i=0
        while ! busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                        NameHasOwner s org.freedesktop.PolicyKit1 2>/dev/null | grep -q true; do
                i=$((i + 1))
                if [ $i -gt 100 ] || ! kill -0 "$POLKITD_PID" 2>/dev/null; then
                        sed 's/^/  polkitd: /' "$TMP/polkitd.log" >&2
                        skip "the real polkitd did not start on the private system bus"
                fi
                sleep 0.1
        done
}

stop_polkitd() {
        kill "$POLKITD_PID" 2>/dev/null
        wait "$POLKITD_PID" 2>/dev/null
        POLKITD_PID=
}

# pkaction's "implicit" lines for one action, e.g. "no auth_self_keep auth_self_keep".
expect_defaults() { # ACTION ANY INACTIVE ACTIVE
        out=$(pkaction --action-id "$1" --verbose 2>&1)
        got=$(printf '%s\n' "$out" | sed -n 's/^ *implicit \(any\|inactive\|active\): *//p' | tr '\n' ' ')
        if [ "$got" = "$2 $3 $4 " ]; then
                ok "$1: any=$2 inactive=$3 active=$4"
        else
                fail "$1: expected any=$2 inactive=$3 active=$4, pkaction says:"
                printf '%s\n' "$out" | sed 's/^/    /' >&2
        fi
}

expect_text() { # ACTION FIELD TEXT
        got=$(pkaction --action-id "$1" --verbose | sed -n "s/^  $2: *//p")
        if [ "$got" = "$3" ]; then
                ok "$1: $2"
        else
                fail "$1: $2 is \"$got\", expected \"$3\""
        fi
}

# pkcheck's exit code for the nobody process: 0 yes, 1 no, 2 needs authentication.
expect_check() { # ACTION CODE WHY
        pkcheck --action-id "$1" --process "$SUBJECT_PID" >/dev/null 2>&1
        rc=$?
        if [ "$rc" = "$2" ]; then
                ok "pkcheck $1 → $rc ($3)"
        else
                fail "pkcheck $1 → $rc, expected $2 ($3)"
        fi
}

# 3. The defaults, as shipped.
start_polkitd "$TMP/no-rules"

actions=$(pkaction | sort | tr '\n' ' ')
if [ "$actions" = "bot.bankr.LLM1.configure-auto-top-up bot.bankr.LLM1.configure-budget bot.bankr.LLM1.create-token bot.bankr.LLM1.reveal-key bot.bankr.LLM1.top-up " ]; then
        ok "polkitd loaded the five actions"
else
        fail "polkitd lists: $actions"
        sed 's/^/  polkitd: /' "$TMP/polkitd.log" >&2
fi

expect_defaults bot.bankr.LLM1.top-up no auth_self_keep auth_self_keep
expect_defaults bot.bankr.LLM1.configure-auto-top-up no auth_self_keep auth_self_keep
expect_defaults bot.bankr.LLM1.reveal-key auth_self_keep auth_self_keep yes
expect_defaults bot.bankr.LLM1.create-token no auth_self_keep auth_self_keep
expect_defaults bot.bankr.LLM1.configure-budget no auth_self_keep auth_self_keep
expect_text bot.bankr.LLM1.top-up description "Add credits to your Bankr LLM balance from your wallet"
expect_text bot.bankr.LLM1.top-up message \
        "Authentication is required to add credits to your Bankr LLM balance; this spends funds from your wallet."
expect_text bot.bankr.LLM1.top-up vendor "Bankr"

# root is authorized for everything by polkitd itself: check for nobody,
# in no session at all, where allow_any applies.
setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 60 </dev/null >/dev/null 2>&1 &
SUBJECT_PID=$!
sleep 0.1
expect_check bot.bankr.LLM1.top-up 1 "no spending outside a session"
expect_check bot.bankr.LLM1.configure-auto-top-up 1 "no spending outside a session"
expect_check bot.bankr.LLM1.reveal-key 2 "the user's password outside a session"
expect_check bot.bankr.LLM1.configure-budget 1 "no budget changes outside a session"
stop_polkitd

# 4. The rules.d example, as docs/polkit.md describes it.
start_polkitd "$TMP/rules"
expect_check bot.bankr.LLM1.top-up 2 "example rule: an administrator's password"
expect_check bot.bankr.LLM1.configure-auto-top-up 2 "example rule: an administrator's password"
expect_check bot.bankr.LLM1.reveal-key 1 "example rule: group bankr-no-reveal may not"
stop_polkitd

if [ "$failures" -gt 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
fi
echo "all policy checks passed"
exit 0
