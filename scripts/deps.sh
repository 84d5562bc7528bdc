#!/bin/sh
# Installs the Debian packages bankr-llmd needs, only those that are missing.
#   scripts/deps.sh build   — to build and run
#   scripts/deps.sh test    — to build and run the test suite (adds the real
#                             components the tests use, clang for fuzzing, and
#                             debootstrap + systemd-nspawn for tests/container)
#   scripts/deps.sh deb     — to build the Debian package (scripts/build-deb.sh)
set -eu

BUILD="meson ninja-build gcc pkg-config libsystemd-dev libcurl4-openssl-dev libjson-c-dev libsecret-1-dev libsqlite3-dev libdbus-1-dev libmicrohttpd-dev libssl-dev systemd dbus dbus-bin"
RUN="libglib2.0-bin gnome-keyring libsecret-tools"
TEST="bubblewrap python3 python3-dbus python3-gi python3-dbusmock polkitd pkexec strace clang libclang-rt-14-dev curl procps util-linux debootstrap systemd-container openssl nghttp2-proxy"
# Man pages, completions, the examples and the Debian package (scripts/build-deb.sh).
TEST="$TEST groff-base man-db bash-completion zsh fish gjs gir1.2-glib-2.0 debhelper dpkg-dev lintian"

DEB="debhelper dpkg-dev lintian python3 groff-base man-db bash-completion libglib2.0-dev git"

want="$BUILD $RUN"
case ${1:-build} in
build) ;;
test) want="$want $TEST" ;;
deb) want="$want $DEB" ;;
*) echo "Usage: $0 [build|test|deb]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
        esac
done

[ -z "$missing" ] && exit 0

echo "Installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
