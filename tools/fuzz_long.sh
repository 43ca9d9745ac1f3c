#!/usr/bin/env bash
# The long fuzz run: the hypothesis property tests (tests/test_properties.py)
# with the 'fuzz' profile, FASTSOFTMAX_FUZZ_EXAMPLES examples per test
# (default 12,500; 10 tests: 125,000 cases), and a count of the cases that were
# really generated and passed (hypothesis' statistics). docs/hardening.md.
#
#   tools/fuzz_long.sh                                # 125,000 cases
#   FASTSOFTMAX_FUZZ_EXAMPLES=50000 tools/fuzz_long.sh -k matches_reference
#
# Uses the fastsoftmax that `python` imports from this checkout (build it first);
# PYTHON=... picks the interpreter. Exit status: pytest's, or 1 if fewer cases
# ran than asked for (FUZZ_MIN_CASES, default 100,000 when no arguments given).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-python}"
export HYPOTHESIS_PROFILE=fuzz
export FASTSOFTMAX_FUZZ_EXAMPLES="${FASTSOFTMAX_FUZZ_EXAMPLES:-12500}"
min_cases="${FUZZ_MIN_CASES:-$([[ $# -eq 0 ]] && echo 100000 || echo 0)}"
log="${FUZZ_LOG:-$(mktemp "${TMPDIR:-/tmp}/fastsoftmax-fuzz.XXXXXX")}"
echo "fuzz: $FASTSOFTMAX_FUZZ_EXAMPLES examples per property test; log in $log"
start=$(date +%s)
set +e
"$python" -m pytest -q -p no:cacheprovider tests/test_properties.py --hypothesis-show-statistics "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
secs=$(( $(date +%s) - start ))
# hypothesis prints, per test and phase: "- N passing, M failing, and K invalid
# test cases"; only the generate phase counts (not examples replayed from its database)
read -r cases failing invalid < <(awk '/during / { gen = /during generate phase/ }
    gen && /passing, .* failing, and .* invalid/ {
    for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passing/) p += $i; if ($(i+1) ~ /^failing/) f += $i;
                                if ($(i+1) ~ /^invalid/) v += $i } } END { print p + 0, f + 0, v + 0 }' "$log")
echo "fuzz: $cases cases passed ($failing failing, $invalid rejected by the strategies) in ${secs} s"
if [[ $status -eq 0 && $cases -lt $min_cases ]]; then
    echo "fuzz: fewer than $min_cases cases ran" >&2
    status=1
fi
exit "$status"
