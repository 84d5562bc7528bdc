#!/bin/sh
# Builds the Debian package from a clean copy of the checkout (the files git
# knows, with their working-tree contents) and runs lintian on it.
#   scripts/build-deb.sh [OUTDIR]     (default: build-deb/)
# Leaves OUTDIR/bankr-llmd_VERSION_ARCH.deb; fails when the build fails or
# lintian reports an error or an unexplained warning (debian/README.source).
# The package's own unit tests run unless DEB_BUILD_OPTIONS has nocheck.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
sh "$top/scripts/deps.sh" deb
out=${1:-$top/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/bankr-llmd"
(cd "$top" && git ls-files --cached --others --exclude-standard | \
        while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done | \
        tar --verbatim-files-from -cf - -T -) | tar -xf - -C "$work/bankr-llmd"

cd "$work/bankr-llmd"
if ! dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1; then
        tail -n 60 "$work/build.log"
        echo "dpkg-buildpackage failed" >&2
        exit 1
fi
cd "$work"
rm -f "$out"/bankr-llmd*.deb
cp ./*.deb ./*.changes ./*.buildinfo "$out"/
changes=$(ls "$out"/*.changes)

# Errors and warnings fail; every tag we accept is overridden in
# debian/*lintian-overrides with the reason next to it.
rc=0
lintian --fail-on error,warning "$changes" >"$work/lintian.log" 2>&1 || rc=$?
grep -v '^running with root privileges' "$work/lintian.log" || true
[ "$rc" -eq 0 ] || { echo "lintian reported errors or warnings" >&2; exit 1; }
ls "$out"/bankr-llmd_*.deb
