#!/bin/sh
# Builds bankr-llmd and bankr-llm, makes sure the service is on the session
# bus, and runs a bankr-llm command (default: status).
#
#   scripts/run.sh                 # build, start, "bankr-llm status", then a shell
#   scripts/run.sh models --json   # build, start, run that command
#
# Without a desktop session (no DBUS_SESSION_BUS_ADDRESS) it starts a private
# session bus and keyring for the duration of the command or the shell.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh scripts/deps.sh build
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

daemon="$top/build/service/bankr-llmd"
cli="$top/build/clients/bankr-llm"

if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ] && [ -z "${BANKR_RUN_PRIVATE:-}" ]; then
        echo "No session bus here: starting a private one (and a keyring) for this run." >&2
        export BANKR_RUN_PRIVATE=1
        exec dbus-run-session -- sh "$0" "$@"
fi

if [ -n "${BANKR_RUN_PRIVATE:-}" ] && command -v gnome-keyring-daemon >/dev/null; then
        # A throwaway keyring with an empty password, in a throwaway data dir.
        export XDG_DATA_HOME="${XDG_DATA_HOME:-$(mktemp -d)}"
        printf '' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 || true
fi

if ! busctl --user status bot.bankr.LLM1 >/dev/null 2>&1; then
        # Not installed (no activation file) or not running: start the built
        # one, with the catalog from the source tree; its log goes to a file.
        log="${TMPDIR:-/tmp}/bankr-llmd.$$.log"
        echo "Starting the built bankr-llmd (log: $log)." >&2
        BANKR_LLMD_CATALOG="$top/data/models.json" "$daemon" 2>>"$log" &
        daemon_pid=$!
        trap 'kill $daemon_pid 2>/dev/null || true' EXIT INT TERM
        i=0
        until busctl --user status bot.bankr.LLM1 >/dev/null 2>&1; do
                i=$((i + 1))
                [ $i -gt 100 ] && { echo "bankr-llmd did not start." >&2; exit 1; }
                sleep 0.05
        done
fi

if [ $# -gt 0 ]; then
        "$cli" "$@"
        exit $?
fi

"$cli" status || true
if [ -t 0 ]; then
        echo
        echo "bankr-llm is in PATH for this shell; try: bankr-llm --help, bankr-llm models,"
        echo "busctl --user introspect bot.bankr.LLM1 /bot/bankr/LLM1. Exit the shell to stop."
        PATH="$top/build/clients:$PATH" "${SHELL:-/bin/sh}" || true
fi
