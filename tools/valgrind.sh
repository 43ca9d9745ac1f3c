#!/usr/bin/env bash
# Run a representative subset of the tests under valgrind memcheck and fail on
# any memory error in fastsoftmax's own code (docs/hardening.md).
#
#   tools/valgrind.sh                        # the default subset (below)
#   tools/valgrind.sh tests/test_api.py      # any pytest arguments instead
#
# Uses the fastsoftmax that `python` imports from this checkout (build it
# first: pip install -e .); PYTHON=... picks the interpreter.
#
# * PYTHONMALLOC=malloc: every Python object goes through valgrind's malloc.
# * --trace-children=yes: the guard-page tests run each tier in a subprocess.
# * valgrind's exit status is not used: CPython and the loader report errors of
#   their own (uninitialised values in CPython's interpreter, ld.so's strncmp)
#   on any program. memcheck writes XML (--xml-file, one per process) and
#   tools/valgrind_filter.py fails on every error whose stack (or, for a leak,
#   allocation stack) has a frame in _core*.so or a file of src/ or the
#   Cython module; the rest is summarised. Leaks: definitely lost blocks only.
# * Tiers: valgrind 3.19 does not emulate AVX-512 (its CPUID hides it), so
#   under valgrind the suite's `isa` fixture covers generic and avx2 only.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-python}"
out="${VALGRIND_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/fastsoftmax-valgrind.XXXXXX")}"
mkdir -p "$out"
rm -f "$out"/vg.*.xml

if [[ $# -eq 0 ]]; then
    # The default subset, on each tier valgrind runs (generic, avx2): the
    # op x dtype x layout x axis cross for 2-d and 3-d arrays (rows, columns,
    # middle axes, tuples, None, () in six layouts), out= in every layout, the
    # length sweeps (rows 1..67 and strided out=, column widths, tall column
    # tiles at 1 and 2 threads) and the guard-page tests (2,200+ calls per tier
    # and dtype: every length 1..70, rows and columns, forwards and backwards,
    # one slice on the blocked long path).
    tiers=$("$python" -c 'from fastsoftmax import _core; print(*(t for t in _core.supported_tiers() if t != "avx512f"))')
    cross=()
    for isa in $tiers; do
        for op in softmax log_softmax logsumexp; do
            for dt in float32 float64; do
                for layout in C F transposed stepped negative middle; do
                    cross+=("tests/test_cross.py::test_cross[$isa-$op-$dt-$layout-2]"
                            "tests/test_cross.py::test_cross[$isa-$op-$dt-$layout-3]")
                done
            done
        done
    done
    set -- "${cross[@]}" tests/test_cross.py::test_out_any_layout \
        tests/test_lengths.py::test_row_lengths tests/test_lengths.py::test_row_lengths_into_strided_out \
        tests/test_lengths.py::test_column_widths tests/test_lengths.py::test_tall_column_tiles \
        tests/test_hardening.py::test_guard_pages_no_read_or_write_outside_the_array
fi

echo "valgrind: $(valgrind --version); tiers natively: $("$python" -c \
    'import fastsoftmax; print(*fastsoftmax._core.supported_tiers())'); logs in $out"
start=$(date +%s)
set +e
PYTHONMALLOC=malloc valgrind --tool=memcheck --trace-children=yes \
    --xml=yes --xml-file="$out/vg.%p.xml" \
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --num-callers=30 --error-limit=no \
    "$python" -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
secs=$(( $(date +%s) - start ))
echo "valgrind: pytest exit $status after $secs s"
"$python" tools/valgrind_filter.py "$out" || status=1
exit $status
