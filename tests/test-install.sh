#!/bin/sh
# meson install puts everything where a desktop expects it (into a DESTDIR),
# and the installed activation file and units point at the installed daemon.
set -eu
build=$1
src=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
libexecdir=$(meson introspect "$build" --buildoptions | /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="libexecdir"][0])')
case $libexecdir in /*) ;; *) libexecdir=$prefix/$libexecdir ;; esac

services=$(pkg-config --define-variable=datadir="$prefix/share" --variable=session_bus_services_dir dbus-1 2>/dev/null || echo "$prefix/share/dbus-1/services")
units=$(pkg-config --define-variable=prefix="$prefix" --variable=systemduserunitdir systemd 2>/dev/null || echo "$prefix/lib/systemd/user")

fail=0
want() {
        if [ -e "$dest$1" ]; then echo "ok: $1"; else echo "MISSING: $1"; fail=1; fi
}
want "$libexecdir/bankr-llmd"
want "$prefix/bin/bankr-llm"
want "$prefix/bin/bankr-llm-notify"
want "$services/bot.bankr.LLM1.service"
want "$units/bankr-llmd.service"
want "$units/bankr-llm-notify.service"
want "$units/bankr-llmd.socket"
want "$prefix/share/dbus-1/interfaces/bot.bankr.LLM1.xml"
want "$prefix/share/polkit-1/actions/bot.bankr.LLM1.policy"
want "$prefix/share/bankr-llmd/models.json"

grep -qx "Exec=$libexecdir/bankr-llmd" "$dest$services/bot.bankr.LLM1.service" || { echo "activation file: wrong Exec="; fail=1; }
grep -qx "SystemdService=bankr-llmd.service" "$dest$services/bot.bankr.LLM1.service" || { echo "activation file: no SystemdService="; fail=1; }
grep -qx "Type=dbus" "$dest$units/bankr-llmd.service" || { echo "unit: not Type=dbus"; fail=1; }
grep -qx "BusName=bot.bankr.LLM1" "$dest$units/bankr-llmd.service" || { echo "unit: no BusName="; fail=1; }
grep -qx "ExecStart=$libexecdir/bankr-llmd" "$dest$units/bankr-llmd.service" || { echo "unit: wrong ExecStart="; fail=1; }
# The socket unit's port is the daemon's default (service/endpoint.h).
port=$(sed -n 's/^#define ENDPOINT_PORT_DEFAULT \([0-9]*\)U$/\1/p' "$src/service/endpoint.h")
grep -qx "ListenStream=127.0.0.1:$port" "$dest$units/bankr-llmd.socket" || { echo "socket unit: not on 127.0.0.1:$port"; fail=1; }
grep -qx "ListenStream=%t/bankr-llm/endpoint.sock" "$dest$units/bankr-llmd.socket" || { echo "socket unit: not on the runtime dir's socket"; fail=1; }
grep -qx "Service=bankr-llmd.service" "$dest$units/bankr-llmd.socket" || { echo "socket unit: no Service="; fail=1; }
want "$prefix/share/doc/bankr-llmd/install.md"
doc=$(sed -n 's|^Documentation=file://||p' "$dest$units/bankr-llmd.service")
[ -n "$doc" ] && [ -e "$dest$doc" ] || { echo "unit: Documentation= names no installed file ($doc)"; fail=1; }
# A path in the home that does not exist yet must not fail the start
# (226/NAMESPACE on a fresh home): every path list entry is "-"-prefixed.
for k in ReadWritePaths ReadOnlyPaths InaccessiblePaths; do
        for p in $(sed -n "s/^$k=//p" "$dest$units/bankr-llmd.service"); do
                case $p in -*) ;; *) echo "unit: $k=$p fails the start when it is missing (prefix it with -)"; fail=1 ;; esac
        done
done
exit $fail
