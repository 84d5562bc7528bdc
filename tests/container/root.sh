#!/bin/sh
# Prints the path of a cached Debian root for the container test, building it
# first if needed (debootstrap). The cache lives outside the git clone, keyed
# by the suite, the mirror and the package list; a changed key builds a new
# root and removes the old ones.
#   tests/container/root.sh            -> /var/cache/bankr-llmd-test/root-<suite>-<key>
# Environment: BANKR_CT_CACHE (cache dir), BANKR_CT_SUITE (default trixie),
# BANKR_CT_MIRROR (default http://deb.debian.org/debian).
set -eu

cache=${BANKR_CT_CACHE:-/var/cache/bankr-llmd-test}
suite=${BANKR_CT_SUITE:-trixie}
mirror=${BANKR_CT_MIRROR:-http://deb.debian.org/debian}
# What a desktop user's system has: systemd as PID 1 and as user manager,
# the dbus-user-session bus, gnome-keyring with PAM, libsecret; plus the
# service's runtime libraries, python3 for the fake gateway and dbusmock's
# notification daemon, and sudo/util-linux for running things as the user.
packages="systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,libpam-gnome-keyring,gnome-keyring,libsecret-tools,libsecret-1-0,libjson-c5,libsqlite3-0,libglib2.0-bin,polkitd,procps,util-linux,python3,python3-dbusmock,ca-certificates,curl"
case $suite in
bookworm) packages="$packages,libcurl4,libmicrohttpd12" ;;
*) packages="$packages,libcurl4t64,libmicrohttpd12t64" ;;
esac
# Bump when the steps after debootstrap change.
recipe=1

key=$(printf '%s\n' "$suite" "$mirror" "$packages" "$recipe" | sha256sum | cut -c1-16)
root="$cache/root-$suite-$key"

if [ -f "$root/.bankr-llmd-test-ready" ]; then
        echo "$root"
        exit 0
fi

mkdir -p "$cache"
# Only one builder at a time.
exec 9>"$cache/.lock"
flock 9
if [ -f "$root/.bankr-llmd-test-ready" ]; then
        echo "$root"
        exit 0
fi

tmp="$cache/building-$suite-$key"
rm -rf "$tmp"
echo "container root: debootstrap $suite from $mirror (once; cached in $cache)" >&2
if ! nice -n 10 debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
        tail -n 20 "$cache/debootstrap.log" >&2
        rm -rf "$tmp"
        exit 1
fi

# The test user: a fresh home, lingering so that her user manager starts at
# boot, a password for the login keyring.
chroot "$tmp" useradd -m -s /bin/bash -u 1000 alice
mkdir -p "$tmp/var/lib/systemd/linger"
touch "$tmp/var/lib/systemd/linger/alice"
# No getty on the console, nothing to wait for at boot.
chroot "$tmp" systemctl mask console-getty.service getty@tty1.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
echo bankr-test > "$tmp/etc/hostname"
chroot "$tmp" apt-get clean
touch "$tmp/.bankr-llmd-test-ready"

# Older roots of this suite go, unless a running test still uses one.
for old in "$cache"/root-"$suite"-*; do
        [ "$old" = "$root" ] || [ ! -d "$old" ] || grep -q "lowerdir=$old[,: ]" /proc/mounts || rm -rf "$old"
done
mv "$tmp" "$root"
echo "$root"
