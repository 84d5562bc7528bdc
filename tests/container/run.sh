#!/bin/sh
# The installed units under a real systemd user manager: a Debian root
# (tests/container/root.sh, cached) booted with systemd-nspawn, a user with
# lingering and a fresh home, the build installed into it, and every check
# run as that user in her session (her systemd --user, her dbus-user-session
# bus, gnome-keyring unlocked as PAM leaves it, a fake gateway on the
# container's own loopback).
#
#   tests/container/run.sh [meson [BUILDDIR]]   install BUILDDIR (default build) with DESTDIR
#   tests/container/run.sh deb FILE...          install these .deb files with apt-get instead
#
# Prints "PASS: name" / "FAIL: name" per check and "SKIP: why" when the
# machine cannot boot a container (then exit 77; in CI, CI=true, that is a
# failure, exit 1). Needs root. Environment: BANKR_CT_SUITE (trixie),
# BANKR_CT_CACHE (/var/cache/bankr-llmd-test), BANKR_CT_KEEP=1 keeps the
# container's directory (console log, journal) for a look afterwards.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mode=${1:-meson}
[ $# -gt 0 ] && shift

skip() {
        if [ "${CI:-}" = true ]; then
                echo "FAIL: container test could not run (and CI=true): $*"
                exit 1
        fi
        echo "SKIP: container test: $*"
        exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, mount, systemd-nspawn)"
for t in debootstrap systemd-nspawn nsenter flock; do
        command -v $t >/dev/null || skip "$t is not installed (scripts/deps.sh test installs it)"
done

case $mode in
meson)
        build=${1:-$top/build}
        [ -f "$build/build.ninja" ] || { echo "FAIL: no build in $build"; exit 1; }
        ;;
deb)
        [ $# -gt 0 ] || { echo "usage: $0 deb FILE.deb..." >&2; exit 2; }
        for f in "$@"; do [ -f "$f" ] || { echo "FAIL: no such file: $f"; exit 1; }; done
        ;;
*)
        echo "usage: $0 [meson [BUILDDIR] | deb FILE.deb...]" >&2
        exit 2
        ;;
esac

start=$(date +%s)
root=$(sh "$here/root.sh") || skip "could not build the Debian root (is the mirror reachable? see ${BANKR_CT_CACHE:-/var/cache/bankr-llmd-test}/debootstrap.log)"
echo "container root: $root ($(( $(date +%s) - start )) s)"

work=$(mktemp -d /var/tmp/bankr-ct.XXXXXX)
merged=$work/root
mkdir -p "$work/upper" "$work/work" "$merged"
nspawn_pid=""
cleanup() {
        if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
                # Nothing in it is worth a clean shutdown (the overlay goes
                # away): SIGKILL to its PID 1 ends the whole PID namespace.
                p=$(pgrep -P "$nspawn_pid" | head -n 1)
                [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
                i=0
                while kill -0 "$nspawn_pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
                kill -KILL "$nspawn_pid" 2>/dev/null
                wait "$nspawn_pid" 2>/dev/null
        fi
        umount "$merged" 2>/dev/null
        if [ "${BANKR_CT_KEEP:-}" = 1 ]; then
                echo "kept: $work"
        else
                rm -rf "$work"
        fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

# A writable layer over the cached root: the cache stays untouched.
mount -t overlay overlay -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/work" "$merged" ||
        skip "cannot mount overlayfs on $work"

# Install what is tested.
case $mode in
meson)
        if ! DESTDIR=$merged meson install -C "$build" --no-rebuild --quiet >"$work/install.log" 2>&1; then
                cat "$work/install.log"
                echo "FAIL: meson install into the container"
                exit 1
        fi
        ;;
deb)
        mkdir -p "$merged/var/tmp/debs"
        for f in "$@"; do cp "$f" "$merged/var/tmp/debs/"; done
        # Before boot, with the host's network (for missing dependencies only).
        if ! systemd-nspawn -q -D "$merged" --register=no --keep-unit sh -c \
                'export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q ./var/tmp/debs/*.deb || { apt-get update -q && apt-get install -y -q /var/tmp/debs/*.deb; }' \
                >"$work/install.log" 2>&1; then
                cat "$work/install.log"
                echo "FAIL: apt-get install of the .deb files in the container"
                exit 1
        fi
        ;;
esac
mkdir -p "$merged/opt/bankr-test"
cp "$top/tests/fakegw.py" "$top/tests/impostor.py" "$here/in-container.sh" "$merged/opt/bankr-test/"

# Boot. --private-network: the container has only its own loopback, so the
# service can reach nothing but the fake gateway. No systemd on the host:
# --register=no --keep-unit.
cd /
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=${SYSTEMD_NSPAWN_UNIFIED_HIERARCHY:-1} \
        systemd-nspawn -q -b -D "$merged" --machine="bankr-ct-$$" --register=no --keep-unit \
        --private-network >"$work/console.log" 2>&1 </dev/null &
nspawn_pid=$!

pid1=""
i=0
while [ $i -lt 600 ]; do
        pid1=$(pgrep -P "$nspawn_pid" | head -n 1)
        if [ -n "$pid1" ] && nsenter -t "$pid1" -a systemctl is-active -q user@1000.service 2>/dev/null; then
                break
        fi
        kill -0 "$nspawn_pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
done
if [ -z "$pid1" ] || ! nsenter -t "$pid1" -a systemctl is-active -q user@1000.service 2>/dev/null; then
        tail -n 40 "$work/console.log"
        echo "FAIL: container boot (user@1000.service never became active)"
        exit 1
fi
echo "container booted ($(( $(date +%s) - start )) s)"

nsenter -t "$pid1" -a /bin/sh /opt/bankr-test/in-container.sh
rc=$?
if [ $rc -ne 0 ] && [ "${BANKR_CT_KEEP:-}" = 1 ]; then
        nsenter -t "$pid1" -a journalctl --no-pager -b >"$work/journal.txt" 2>&1
fi
echo "container test: $(( $(date +%s) - start )) s"
exit $rc
