#!/bin/sh
# Runs inside the booted container as root (tests/container/run.sh enters it
# with nsenter); every bankr-llm command runs as alice in her session.
# One line per check: "PASS: name" or "FAIL: name".
set -u

U=alice
UID_=1000
H=/home/$U
RT=/run/user/$UID_
PW=alice-login-password
KEY=bk_test_llm_0123456789 # tests/fakegw.py's FakeGateway.DEFAULT_KEY
GW=http://127.0.0.1:8931
export PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
passed=0
failed=0

as_user() {
        runuser -u $U -- env -i HOME=$H USER=$U LOGNAME=$U SHELL=/bin/bash PATH="$PATH" LANG=C.UTF-8 \
                XDG_RUNTIME_DIR=$RT DBUS_SESSION_BUS_ADDRESS=unix:path=$RT/bus "$@"
}
pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; shift; for l in "$@"; do printf '    %s\n' "$l"; done; failed=$((failed + 1)); }
check() { # name, command...: passes when the command succeeds; shows its output otherwise
        name=$1; shift
        if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
wait_for() { # tenths of a second, command...
        n=$1; shift
        while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
        "$@" >/dev/null 2>&1
}
main_pid() { as_user systemctl --user show -p MainPID --value bankr-llmd.service; }

sdver=$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
echo "systemd $sdver in the container, $(stat -fc %T /sys/fs/cgroup) at /sys/fs/cgroup"
skip() { echo "SKIP: $1"; skipped=$((skipped + 1)); }
skipped=0

# A fresh home: none of the folders the service may write exists yet, but
# secrets it must never see do.
there=""
for d in .bankr .cache .config .local .openclaw work; do
        [ ! -e "$H/$d" ] || there="$there ~/$d"
done
if [ -z "$there" ]; then pass "a fresh home"; else fail "a fresh home" "exists before the first start:$there"; fi
as_user sh -c 'mkdir -m 700 ~/.ssh && echo not-for-bankr > ~/.ssh/id_test'

# What pam_gnome_keyring does at a graphical login: unlock (or create) the
# login keyring with the login password.
check "login keyring unlocked as PAM leaves it" as_user sh -c \
        "printf %s '$PW' | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null &&
         timeout 10 gdbus wait --session --timeout 10 org.freedesktop.secrets &&
         echo probe | timeout 10 secret-tool store --label=probe bankr-test probe &&
         timeout 10 secret-tool clear bankr-test probe"

# The fake gateway, on the container's own loopback, as a user unit; the
# service finds it through the user manager's environment.
as_user systemd-run --user --quiet --unit=bankr-fakegw /usr/bin/python3 /opt/bankr-test/fakegw.py --port 8931
as_user systemctl --user set-environment BANKR_LLM_URL=$GW BANKR_API_URL=$GW
check "fake gateway listening" wait_for 100 python3 -c \
        'import socket; socket.create_connection(("127.0.0.1", 8931), 1).close()'

# 1. Activation: the bus hands the name to the systemd unit.
if out=$(as_user timeout 30 bankr-llm status 2>&1); then pass "bankr-llm status"; else fail "bankr-llm status" "$out"; fi
pid=$(main_pid)
bus_pid=$(as_user busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetConnectionUnixProcessID s bot.bankr.LLM1 2>&1 | sed -n 's/^u //p')
unit=$(as_user busctl --user status bot.bankr.LLM1 2>/dev/null | sed -n 's/^UserUnit=//p')
if [ "$(as_user systemctl --user is-active bankr-llmd.service)" = active ] && [ -n "$pid" ] && [ "$pid" != 0 ] &&
   [ "$pid" = "$bus_pid" ] && [ "$unit" = bankr-llmd.service ]; then
        pass "activation through SystemdService=bankr-llmd.service"
else
        fail "activation through SystemdService=bankr-llmd.service" "MainPID=$pid, name owner pid=$bus_pid, unit=$unit"
        # Nothing else can work: say why and stop here.
        as_user journalctl --user -u bankr-llmd.service --no-pager -n 20 2>&1 | sed 's/^/    /'
        echo "container checks: $passed passed, $failed failed (stopped: the service does not start)"
        exit 1
fi

# 2. The sandbox is in force in the service's mount namespace (systemd >= 254
# sets up the user namespace a user unit needs for it; older ones skip it).
if [ "$sdver" -lt 254 ]; then
        for c in "/ is read-only" "writing /usr fails" "the home is writable" "\$XDG_RUNTIME_DIR is writable" "~/.ssh is inaccessible" "~/.local/share/keyrings is inaccessible"; do
                skip "sandbox: $c (systemd $sdver sets up no mount namespace for user units)"
        done
else
mi=/proc/$pid/mountinfo
rootopts=$(awk '$5 == "/" { o = $6 } END { print o }' "$mi" 2>/dev/null)
case $rootopts in
ro,* | ro) pass "sandbox: / is read-only ($rootopts)" ;;
*) fail "sandbox: / is read-only" "options of / in $mi: '$rootopts'" ;;
esac
if out=$(nsenter -t "$pid" -m touch /usr/bankr-probe 2>&1); then
        fail "sandbox: writing /usr fails" "root wrote /usr/bankr-probe in the service's namespace"
        nsenter -t "$pid" -m rm -f /usr/bankr-probe
else
        case $out in *"Read-only file system"*) pass "sandbox: writing /usr fails (EROFS)" ;; *) fail "sandbox: writing /usr fails (EROFS)" "$out" ;; esac
fi
in_ns_as_user() { nsenter -t "$pid" -m setpriv --reuid=$UID_ --regid=$UID_ --clear-groups env HOME=$H "$@"; }
check "sandbox: the home is writable, also new folders" in_ns_as_user sh -c \
        'mkdir -p ~/.later/a && echo x > ~/.later/a/f && rm -r ~/.later'
check "sandbox: \$XDG_RUNTIME_DIR is writable" in_ns_as_user sh -c "echo x > $RT/bankr-probe && rm $RT/bankr-probe"
if in_ns_as_user cat $H/.ssh/id_test >/dev/null 2>&1; then
        fail "sandbox: ~/.ssh is inaccessible" "the service's namespace can read ~/.ssh/id_test"
else
        pass "sandbox: ~/.ssh is inaccessible"
fi
# gnome-keyring created its folder at the unlock above; the service reaches
# the keyring over D-Bus only (the key import below proves it).
if [ ! -d $H/.local/share/keyrings ]; then
        fail "sandbox: ~/.local/share/keyrings is inaccessible" "no ~/.local/share/keyrings after the unlock"
elif in_ns_as_user ls $H/.local/share/keyrings >/dev/null 2>&1; then
        fail "sandbox: ~/.local/share/keyrings is inaccessible" "the service's namespace can list it"
else
        pass "sandbox: ~/.local/share/keyrings is inaccessible"
fi
fi
st=$(grep -E '^(NoNewPrivs|Seccomp):' /proc/$pid/status | tr -s '\t\n' '  ')
case $st in *"NoNewPrivs: 1"*"Seccomp: 2"*) pass "sandbox: no_new_privs and a seccomp filter" ;; *) fail "sandbox: no_new_privs and a seccomp filter" "$st" ;; esac

# 3. A key from a config file created after the service started (~/.bankr
# did not exist when it started).
as_user sh -c "mkdir -m 700 ~/.bankr && printf '{\"llmKey\": \"$KEY\"}\n' > ~/.bankr/config.json"
# The service watches the file (inotify): give it a moment.
key_from_config() { as_user timeout 5 bankr-llm status 2>&1 | grep -q 'Key: .*from ~/.bankr/config.json'; }
if wait_for 30 key_from_config; then
        pass "key from ~/.bankr/config.json written after the start"
else
        fail "key from ~/.bankr/config.json written after the start" "$(as_user timeout 30 bankr-llm status 2>&1)"
fi
out=$(as_user timeout 30 bankr-llm chat -m gpt-5-mini "Say hi" 2>&1)
case $out in *"Hello, world!"*) pass "chat through the fake gateway" ;; *) fail "chat through the fake gateway" "$out" ;; esac

# 4. Setup.Install into folders that do not exist yet.
check "setup openclaw --install (no ~/.openclaw before)" as_user sh -c \
        'bankr-llm setup openclaw --install --key env && test -s ~/.openclaw/openclaw.json'
check "setup opencode --install (no ~/.config/opencode before)" as_user sh -c \
        'bankr-llm setup opencode --install --key env && test -s ~/.config/opencode/opencode.json'
if [ -n "$(find $H -xdev ! -user $U 2>/dev/null)" ]; then
        fail "everything in the home belongs to $U" "$(find $H -xdev ! -user $U)"
else
        pass "everything in the home belongs to $U"
fi

# 5. key import --remove-plaintext: into the login keyring, out of the file.
out=$(as_user timeout 30 bankr-llm key import --remove-plaintext 2>&1)
stored=$(as_user timeout 10 secret-tool lookup kind llm 2>/dev/null)
if [ "$stored" = "$KEY" ] && ! grep -q llmKey $H/.bankr/config.json; then
        pass "key import --remove-plaintext"
else
        fail "key import --remove-plaintext" "$out" "keyring: ${stored:+(a key of ${#stored} characters)}" "$(cat $H/.bankr/config.json)"
fi
out=$(as_user timeout 30 bankr-llm status 2>&1)
case $out in *"Key: "*"from the keyring"*) pass "status: key from the keyring" ;; *) fail "status: key from the keyring" "$out" ;; esac

# 5b. key set: the CLI sends a key only to the installed unit. Under the real
# user manager the owner check (clients/cli-peer.c) must pass for
# bankr-llmd.service and refuse a program that took the name while the
# service was stopped.
KEY2=bk_test_llm_second_key_0123
out=$(printf '%s\n' "$KEY2" | as_user timeout 30 bankr-llm key set 2>&1)
stored=$(as_user timeout 10 secret-tool lookup kind llm 2>/dev/null)
if [ "$stored" = "$KEY2" ]; then pass "key set reaches the installed unit (owner check passes)"
else fail "key set reaches the installed unit (owner check passes)" "$out"; fi
printf '%s\n' "$KEY" | as_user timeout 30 bankr-llm key set >/dev/null 2>&1
as_user systemctl --user stop bankr-llmd.service
rec=$(as_user mktemp)
as_user sh -c "python3 /opt/bankr-test/impostor.py $rec > $rec.out 2>&1 &"
if wait_for 100 grep -q ready "$rec.out"; then
        out=$(printf '%s\n' "$KEY2" | as_user timeout 30 bankr-llm key set 2>&1); rc=$?
        if [ $rc -ne 0 ] && [ ! -s "$rec" ] && printf '%s' "$out" | grep -q "not the installed bankr-llmd"; then
                pass "key set refuses a name owner that is not the unit (exit $rc)"
        else
                fail "key set refuses a name owner that is not the unit" "exit $rc: $out" "impostor got: $(wc -c < "$rec") bytes"
        fi
else
        fail "key set refuses a name owner that is not the unit" "the impostor did not start: $(cat "$rec.out")"
fi
pkill -u $U -f /opt/bankr-test/impostor.py
wait_for 50 sh -c "! pgrep -u $U -f /opt/bankr-test/impostor.py"
as_user systemctl --user start bankr-llmd.service

# 5c. A caller in a Flatpak app's scope (how flatpak run places the app and
# its D-Bus proxy) is refused the key calls: inside the unit's user namespace
# the service cannot look at the caller's root, so the scope must decide.
out=$(as_user systemd-run --user --quiet --scope --unit=app-flatpak-org.example.Curious-4242.scope \
        busctl --user call bot.bankr.LLM1 /bot/bankr/LLM1 bot.bankr.LLM1.Key Set ss bk_from_a_flatpak_app_000 llm 2>&1)
stored=$(as_user timeout 10 secret-tool lookup kind llm 2>/dev/null)
case $out in
*"sandboxed application (Flatpak app org.example.Curious)"*)
        if [ "$stored" = "$KEY" ]; then pass "a caller in a Flatpak scope is refused Key.Set"
        else fail "a caller in a Flatpak scope is refused Key.Set" "the keyring changed"; fi ;;
*) fail "a caller in a Flatpak scope is refused Key.Set" "$out" ;;
esac
check "a caller outside a sandbox may still Key.Set" as_user sh -c \
        "busctl --user call bot.bankr.LLM1 /bot/bankr/LLM1 bot.bankr.LLM1.Key Set ss '$KEY' llm"

# 5d. The local endpoint under the sandboxed unit: TCP on loopback and the
# unix socket in $XDG_RUNTIME_DIR, with a token minted over D-Bus.
url=$(as_user busctl --user get-property bot.bankr.LLM1 /bot/bankr/LLM1 bot.bankr.LLM1.Endpoint Url 2>&1 | sed -n 's/^s "\(.*\)"$/\1/p')
sock=$(as_user busctl --user get-property bot.bankr.LLM1 /bot/bankr/LLM1 bot.bankr.LLM1.Endpoint SocketPath 2>&1 | sed -n 's/^s "\(.*\)"$/\1/p')
tok=$(as_user busctl --user call bot.bankr.LLM1 /bot/bankr/LLM1 bot.bankr.LLM1.Endpoint CreateToken 'sa{sv}' \
        container-test 2 lifetime s expiring expires_s u 600 2>&1 | sed -n 's/^ss "\([^"]*\)" .*/\1/p')
if [ -n "$url" ] && [ -n "$tok" ] &&
   code=$(as_user curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$url/v1/models") &&
   [ "$code" = 200 ]; then
        pass "endpoint answers on $url with a token"
else
        fail "endpoint answers on loopback with a token" "url=$url token=${tok:+(set)} http=${code:-}"
fi
if [ -n "$sock" ] && [ -S "$sock" ] &&
   code=$(as_user curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" -H "Authorization: Bearer $tok" \
          "http://localhost/v1/models") && [ "$code" = 200 ]; then
        pass "endpoint answers on its unix socket"
else
        fail "endpoint answers on its unix socket" "socket=$sock http=${code:-}"
fi
code=$(as_user curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")
if [ "$code" = 401 ]; then pass "endpoint refuses a request without a token (401)"
else fail "endpoint refuses a request without a token" "http=$code"; fi

# 6. $OPENCLAW_CONFIG_PATH elsewhere in the home (set for the service).
as_user systemctl --user set-environment OPENCLAW_CONFIG_PATH=$H/work/agents/openclaw.json
as_user systemctl --user restart bankr-llmd.service
check "setup openclaw --install into \$OPENCLAW_CONFIG_PATH (new folders)" as_user sh -c \
        'bankr-llm setup openclaw --install --key env && test -s ~/work/agents/openclaw.json'
as_user systemctl --user unset-environment OPENCLAW_CONFIG_PATH

# 7. The notifier (Type=notify) starts.
if out=$(as_user timeout 30 systemctl --user start bankr-llm-notify.service 2>&1) &&
   [ "$(as_user systemctl --user is-active bankr-llm-notify.service)" = active ]; then
        pass "bankr-llm-notify.service (Type=notify) starts"
else
        fail "bankr-llm-notify.service (Type=notify) starts" "$out" "$(as_user journalctl --user -u bankr-llm-notify.service --no-pager -n 20 2>&1)"
fi

# 8. A crash is followed by a restart.
old=$(main_pid)
as_user kill -SEGV "$old"
restarted() {
        p=$(main_pid)
        [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$old" ] && [ "$(as_user systemctl --user is-active bankr-llmd.service)" = active ]
}
if wait_for 150 restarted && as_user timeout 30 bankr-llm status >/dev/null 2>&1; then
        pass "kill -SEGV: restarted (NRestarts=$(as_user systemctl --user show -p NRestarts --value bankr-llmd.service))"
else
        fail "kill -SEGV: restarted" "$(as_user systemctl --user status bankr-llmd.service --no-pager 2>&1 | head -n 20)"
fi

# 8b. Socket activation: bankr-llmd.socket (installed, not enabled) once
# enabled holds the endpoint's sockets; a connection to either starts the
# stopped service, which serves it on the same URL.
inactive() { [ "$(as_user systemctl --user is-active bankr-llmd.service)" != active ]; }
as_user systemctl --user stop bankr-llmd.service
wait_for 100 inactive
if out=$(as_user systemctl --user enable --now bankr-llmd.socket 2>&1) &&
   [ "$(as_user systemctl --user is-active bankr-llmd.socket)" = active ] && inactive; then
        code=$(as_user curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$url/v1/models")
        now=$(as_user busctl --user get-property bot.bankr.LLM1 /bot/bankr/LLM1 bot.bankr.LLM1.Endpoint Url 2>&1 | sed -n 's/^s "\(.*\)"$/\1/p')
        if [ "$code" = 401 ] && ! inactive && [ "$now" = "$url" ]; then
                pass "bankr-llmd.socket: a connection to $url starts the service"
        else
                fail "bankr-llmd.socket: a connection starts the service" "http=$code url=$now (was $url)" \
                        "$(as_user journalctl --user -u bankr-llmd.service --no-pager -n 10 2>&1)"
        fi
        as_user systemctl --user stop bankr-llmd.service 2>/dev/null # "its triggering units are still active"
        wait_for 100 inactive
        code=$(as_user curl -s -o /dev/null -w '%{http_code}' --max-time 30 --unix-socket "$RT/bankr-llm/endpoint.sock" \
               "http://localhost/v1/models")
        if [ "$code" = 401 ] && ! inactive; then pass "bankr-llmd.socket: so does one to the unix socket"
        else fail "bankr-llmd.socket: so does one to the unix socket" "http=$code"; fi
        as_user systemctl --user disable --now bankr-llmd.socket >/dev/null 2>&1
else
        fail "bankr-llmd.socket: enable --now" "$out"
fi

# 9. Nothing of ours failed, in the user manager or the system.
ours=$( { as_user systemctl --user --failed --plain --no-legend; systemctl --failed --plain --no-legend; } 2>&1 | grep -i bankr)
if [ -z "$ours" ]; then pass "no failed units of ours"; else fail "no failed units of ours" "$ours"; fi

# For the record (not a check): systemd's own exposure rating of the unit.
if command -v systemd-analyze >/dev/null; then
        as_user systemd-analyze --user security bankr-llmd.service --no-pager 2>&1 | tail -n 1 | sed 's/^/info: /'
fi

if [ $failed -gt 0 ]; then
        echo "--- bankr-llmd.service journal"
        as_user journalctl --user -u bankr-llmd.service --no-pager -n 40 2>&1 | sed 's/^/    /'
fi
echo "container checks: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
