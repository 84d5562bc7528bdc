#!/bin/sh
# The whole test suite, as CI runs it:
#   1. a normal build (-Werror) and its tests,
#   2. that build installed into a booted Debian 13 container and checked
#      under a real systemd user manager (tests/container/run.sh),
#   3. a build with AddressSanitizer + UBSan (any report fails) and its tests,
#   4. the libFuzzer targets for a bounded time (FUZZ_SECONDS, default 20 each),
#   5. the Debian package: built and checked with lintian.
# Installs what it needs first. Ends with "N passed, N failed".
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh scripts/deps.sh test || { echo "Failed to install the build and test dependencies."; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
skipped=0
log=$(mktemp)

count() { # $1: build dir — adds up meson's per-test results
        j="$1/meson-logs/testlog.json"
        [ -f "$j" ] || { failed=$((failed + 1)); return; }
        set -- $(/usr/bin/python3 - "$j" <<'PY' || echo "0 1 0"
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    try:
        r = json.loads(line)["result"]
    except (ValueError, KeyError):
        continue
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
PY
)
        passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3))
}

run_suite() { # $1: build dir, $2: label, rest: meson setup options
        dir=$1; label=$2; shift 2
        echo "== $label: configure and build"
        if ! { [ -d "$dir" ] || meson setup "$dir" "$@" >"$log" 2>&1; } || ! ninja -C "$dir" >"$log" 2>&1; then
                cat "$log"
                echo "== $label: BUILD FAILED"
                failed=$((failed + 1))
                return
        fi
        echo "== $label: tests"
        rm -f "$dir/meson-logs/testlog.json"
        meson test -C "$dir" --print-errorlogs --num-processes 2 --no-rebuild ${MESON_TEST_ARGS:-} 2>&1 | \
                grep -v -E '^(ninja: |Full log written)' | tail -n 400
        count "$dir"
}

werror=""
[ -n "${CI:-}" ] && werror="-Dwerror=true"

run_suite build "normal build" $werror

# The installed units under a real systemd user manager, one result per check.
# It skips (exit 77) only outside CI, when no container can be booted here.
container_suite() { # $1: label, rest: arguments of tests/container/run.sh
        label=$1; shift
        echo "== container test: $label (installed units, systemd user manager)"
        sh tests/container/run.sh "$@" >"$log" 2>&1
        rc=$?
        cat "$log"
        set -- $(grep -c '^PASS: ' "$log") $(grep -c '^FAIL: ' "$log") $(grep -c '^SKIP: ' "$log")
        passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3))
        if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ "$2" -eq 0 ]; then
                echo "== container test ($label) FAILED (exit $rc)"
                failed=$((failed + 1))
        fi
}

[ -f build/build.ninja ] && container_suite "meson install" meson build

# Sanitizers: reports from the C tests fail them directly; the daemon (bus
# activated) writes its reports to files that tests/harness.py turns into
# failures.
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0" \
BANKR_TEST_SLOW=3 \
        run_suite build-asan "sanitizer build (ASan + UBSan)" $werror -Db_sanitize=address,undefined -Db_lundef=false \
                -Dbuildtype=debug -Dtest-timeout-multiplier=3

if [ -f fuzz/run.sh ] && command -v clang >/dev/null; then
        echo "== fuzzing (${FUZZ_SECONDS:-20} s per target)"
        if sh fuzz/run.sh "${FUZZ_SECONDS:-20}" >"$log" 2>&1; then
                tail -n 20 "$log"
                passed=$((passed + 1))
        else
                cat "$log"
                echo "== fuzzing FAILED"
                failed=$((failed + 1))
        fi
fi

# The Debian package: dpkg-buildpackage from a clean copy, then lintian (no
# errors, no unexplained warnings); its unit tests already ran above. Then
# the same container checks with the package installed by apt-get.
echo "== Debian package (dpkg-buildpackage, lintian)"
if DEB_BUILD_OPTIONS=nocheck sh scripts/build-deb.sh build-deb >"$log" 2>&1; then
        tail -n 1 "$log"
        passed=$((passed + 1))
        container_suite "Debian package" deb build-deb/bankr-llmd_*.deb
else
        cat "$log"
        echo "== Debian package FAILED"
        failed=$((failed + 1))
fi

rm -f "$log"
echo
if [ "$skipped" -gt 0 ]; then
        echo "$passed passed, $failed failed, $skipped skipped"
else
        echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
