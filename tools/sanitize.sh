#!/usr/bin/env bash
# Build fastsoftmax with AddressSanitizer + UndefinedBehaviorSanitizer and run
# the test suite under them (docs/hardening.md).
#
#   tools/sanitize.sh                   # the whole suite
#   tools/sanitize.sh tests/test_cross.py -k avx2   # any pytest arguments
#
# The checkout's files (tracked and untracked, not ignored) are copied to a
# throwaway directory and built there in a throwaway venv, so the checkout's
# own build is untouched. Environment:
#   FASTSOFTMAX_SANITIZE   sanitizers to build with (default address,undefined)
#   SANITIZE_WORKDIR       where to build (default: a new temporary directory,
#                          removed at the end unless SANITIZE_KEEP=1)
#   SANITIZE_PYTHON        the interpreter for the venv (default python3)
# The venv takes numpy, scipy, pytest and hypothesis from the package index
# that pip is configured with.
#
# Exit status: non-zero on any sanitizer report (ASan halts the process at
# the first one, UBSan is built with -fno-sanitize-recover=all) or any failing
# test. LeakSanitizer is off (detect_leaks=0): CPython itself leaks at exit by
# design; leaks are covered by tests/test_hardening.py (RSS and refcounts) and
# by tools/valgrind.sh.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
export FASTSOFTMAX_SANITIZE="${FASTSOFTMAX_SANITIZE:-address,undefined}"
python="${SANITIZE_PYTHON:-python3}"

if [[ -n "${SANITIZE_WORKDIR:-}" ]]; then
    work="$SANITIZE_WORKDIR"
    mkdir -p "$work"
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/fastsoftmax-sanitize.XXXXXX")"
    if [[ "${SANITIZE_KEEP:-0}" != 1 ]]; then
        trap 'rm -rf "$work"' EXIT
    fi
fi
echo "sanitize: $FASTSOFTMAX_SANITIZE build in $work"

# 1. a copy of the sources (what git would commit, plus untracked files)
rm -rf "$work/src-tree"
mkdir -p "$work/src-tree"
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -xf - -C "$work/src-tree"

# 2. a throwaway venv with the build and test dependencies
if [[ ! -x "$work/venv/bin/python" ]]; then
    "$python" -m venv "$work/venv"
    "$work/venv/bin/python" -m pip install --quiet numpy scipy pytest hypothesis \
        setuptools wheel 'Cython>=3.0'
fi
py="$work/venv/bin/python"

# 3. build in place (the .so lands in src-tree/fastsoftmax, next to the sources)
cd "$work/src-tree"
start=$(date +%s)
if ! "$py" setup.py build_ext --inplace > "$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    echo "sanitize: build failed (log: $work/build.log)" >&2
    exit 2
fi
symbols=$(nm -D fastsoftmax/_core*.so)
if [[ "$FASTSOFTMAX_SANITIZE" == *address* && "$symbols" != *__asan_* ]] ||
   [[ "$FASTSOFTMAX_SANITIZE" == *undefined* && "$symbols" != *__ubsan_handle_* ]]; then
    echo "sanitize: the extension is not instrumented for $FASTSOFTMAX_SANITIZE" >&2
    exit 2
fi
echo "sanitize: built in $(( $(date +%s) - start )) s"

# 4. run the tests with the runtimes preloaded (the ASan runtime must be the
#    first library loaded; python3 itself is not instrumented)
preload=""
case "$FASTSOFTMAX_SANITIZE" in *address*) preload="$(gcc -print-file-name=libasan.so)" ;; esac
case "$FASTSOFTMAX_SANITIZE" in *undefined*) preload="${preload:+$preload:}$(gcc -print-file-name=libubsan.so)" ;; esac
for lib in ${preload//:/ }; do
    test -e "$lib" || { echo "sanitize: runtime $lib not found" >&2; exit 2; }
done

# halt_on_error: stop at the first report, exiting with status 86 (ASan) or
# 87 (UBSan), so a test that runs a subprocess sees a failing child;
# detect_leaks=0: see above. PYTHONMALLOC=malloc sends Python's own small
# objects through ASan's allocator too (use-after-free of an object the Cython
# module released early would be caught); SANITIZE_PYMALLOC=1 keeps pymalloc.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:exitcode=86:abort_on_error=0:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87:report_error_type=1"
if [[ "${SANITIZE_PYMALLOC:-0}" != 1 ]]; then
    export PYTHONMALLOC=malloc
fi
# 5. the canary: a view one element past its buffer must be reported on every
#    tier (proves the instrumentation, masked tails included, is live)
if [[ "$FASTSOFTMAX_SANITIZE" == *address* ]]; then
    tiers=$(LD_PRELOAD="$preload" "$py" -c 'from fastsoftmax import _core; print(*_core.supported_tiers())')
    for isa in $tiers; do
        set +e
        out=$(FASTSOFTMAX_ISA=$isa LD_PRELOAD="$preload" "$py" -c '
import numpy as np, fastsoftmax as fs
from numpy.lib.stride_tricks import as_strided
a = np.ones(1001, np.float32)[:1000].copy()      # a 4000-byte buffer of its own
fs.softmax(as_strided(a, shape=(1001,), strides=(4,)))  # reads one float past it
print("not caught")' 2>&1)
        rc=$?
        set -e
        # (a range check of a masked tail is reported as "unknown-crash", READ of size 4 * lanes)
        if [[ $rc -ne 86 || "$out" != *"ERROR: AddressSanitizer"* || "$out" != *src/kernels.hpp* ]]; then
            echo "$out" | tail -n 20 >&2
            echo "sanitize: canary on $isa was not caught (exit $rc): instrumentation broken" >&2
            exit 2
        fi
        echo "sanitize: canary caught on $isa"
    done
fi

# SANITIZE_SHARDS=N: N pytest processes side by side, each a share of the
# tests (tests/conftest.py, FASTSOFTMAX_TEST_SHARD): pytest runs on one core,
# and instrumented code is slow, so on an idle machine this is N times faster.
log="$work/sanitize-pytest.log"
shards="${SANITIZE_SHARDS:-1}"
if ! [[ "$shards" =~ ^[1-9][0-9]*$ ]]; then
    echo "sanitize: SANITIZE_SHARDS=$shards: give a positive integer" >&2
    exit 2
fi
start=$(date +%s)
set +e
if [[ "$shards" == 1 ]]; then
    LD_PRELOAD="$preload" "$py" -m pytest -q -p no:cacheprovider -p no:randomly "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
else
    pids=()
    for ((k = 0; k < shards; k++)); do
        FASTSOFTMAX_TEST_SHARD="$k/$shards" LD_PRELOAD="$preload" \
            "$py" -m pytest -q -p no:cacheprovider -p no:randomly "$@" > "$log.$k" 2>&1 &
        pids+=($!)
    done
    status=0
    : > "$log"
    for ((k = 0; k < shards; k++)); do
        wait "${pids[$k]}"
        rc=$?
        if [[ $rc -ne 0 && $status -eq 0 ]]; then status=$rc; fi
        { echo "sanitize: shard $k/$shards, pytest exit $rc:"; cat "$log.$k"; } >> "$log"
    done
    cat "$log"
fi
set -e
secs=$(( $(date +%s) - start ))
if grep -q -E 'ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer' "$log"; then
    echo "sanitize: sanitizer report(s) above (log: $log)" >&2
    [[ $status -eq 0 ]] && status=1
fi
echo "sanitize: pytest exit $status after ${secs} s ($FASTSOFTMAX_SANITIZE)"
exit "$status"
