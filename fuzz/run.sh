#!/bin/sh
# Builds the libFuzzer targets with clang and runs each one for a bounded
# time, failing on any crash, leak, timeout or broken invariant.
#
#   fuzz/run.sh [SECONDS] [BUILDDIR]     (defaults: 60, build-fuzz)
#
# New interesting inputs go to a scratch directory, not into the checked-in
# corpus; crash inputs are kept as BUILDDIR/fuzz/<target>-crash-*. To add
# one to the regression corpus: cp it to fuzz/corpus/<target>/.
set -eu

secs=${1:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-$src/build-fuzz}

case $secs in
        ''|*[!0-9]*) echo "Usage: $0 [SECONDS] [BUILDDIR]" >&2; exit 2 ;;
esac

if [ -d "$build" ]; then
        meson configure "$build" -Dfuzz=true >/dev/null
else
        CC=${CC:-clang} meson setup "$build" "$src" -Dfuzz=true
fi
targets="sse chat-wire json models term-sanitize flatpak-info safe-install app-id image-type endpoint-route"
ninja -C "$build" -j2 $(for t in $targets; do printf 'fuzz/fuzz-%s ' "$t"; done)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT INT TERM

status=0
for t in $targets; do
        dict=""
        [ -f "$src/fuzz/$t.dict" ] && dict="-dict=$src/fuzz/$t.dict"
        mkdir -p "$scratch/$t"
        echo "== fuzz-$t for ${secs}s"
        if ! "$build/fuzz/fuzz-$t" \
                -max_total_time="$secs" \
                -timeout=10 \
                -rss_limit_mb=2048 \
                -max_len=65536 \
                -print_final_stats=1 \
                $dict \
                -artifact_prefix="$build/fuzz/$t-" \
                "$scratch/$t" "$src/fuzz/corpus/$t"; then
                echo "fuzz-$t FAILED; the input is in $build/fuzz/$t-*" >&2
                status=1
        fi
done
exit $status
