"""Length sweeps: every vector tail, tile tail and block boundary on every tier.

* Row plan: slice lengths 1 ... 4 * 16 + 3 (four AVX-512 float32 vectors plus
  a tail, so every tail of every tier's vector width and of the short-row
  kernel is hit), as many short rows and as one row; strided rows (gather).
* Column plan: axis=0 of (n, k) for k = 1 ... 70 (vector tails across the
  columns), k around the column tile width; tall columns that take the
  two-sweep column path, n around its 128-row blocks, narrow tiles and tiles
  of whole rows (their own loop); at 1 and 2 threads (2 threads cut narrower
  tiles when there are few).
* Long rows crossing the two-sweep threshold (src/driver.cpp LONG_BYTES, as
  _core.LONG_SLICE_BYTES: 1 MiB, float32 rows > 262144), contiguous and
  strided (gathered blocks), one and several rows.
* float32 row sums within 1e-6 of 1 for rows up to 256k elements.

FASTSOFTMAX_LONG_TESTS=1 adds an exhaustive sweep (minutes, not for CI).
"""
import os

import numpy as np
import pytest

from fastsoftmax import _core
from _helpers import OPS, call, check, random_values, same_bits

MAX_ROW = 4 * 16 + 3
LONG = {np.float32: _core.LONG_SLICE_BYTES // 4, np.float64: _core.LONG_SLICE_BYTES // 8}  # longest slice that is still "short"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_row_lengths(isa, op, dtype, rng):
    for n in range(1, MAX_ROW + 1):
        for kind in ("normal", "ties"):
            x = random_values(rng, (3, n), dtype, kind)
            check(op, call(op, x), x)                      # several rows
            check(op, call(op, x[1]), x[1])                # a single row
            xs = random_values(rng, (3, 2 * n), dtype, kind)[:, ::2]
            check(op, call(op, xs), xs)                    # strided rows: gather
            xr = x[:, ::-1]
            check(op, call(op, xr), xr)                    # reversed rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_row_lengths_into_strided_out(isa, op, dtype, rng):
    """Rows read contiguously but written with a stride (out= a stepped view)."""
    for n in range(1, MAX_ROW + 1):
        x = random_values(rng, (3, n), dtype)
        if op == "logsumexp":
            out = np.full((3, 3), np.nan, dtype)[:, 1]
        else:
            out = np.full((3, 2 * n), np.nan, dtype)[:, ::2]
        call(op, x, out=out)
        check(op, out, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_column_widths(isa, op, dtype, rng):
    """axis=0 of (n, k): SIMD across the k columns, every width 1 ... 70."""
    for k in range(1, 71):
        for n in (1, 2, 5, 33):
            x = random_values(rng, (n, k), dtype, "normal" if k % 2 else "ties")
            check(op, call(op, x, 0), x, 0)


COL_SHORT_BYTES = 256 * 1024  # src/driver.cpp: a short column tile's bytes
COL_BLOCK_ROWS = 128  # src/driver.cpp: rows per block of a tall column tile


def column_tile(n, dtype):
    """Columns per tile, as src/driver.cpp cuts them (at one thread): a short
    column tile (n * 64 * itemsize <= COL_SHORT_BYTES) fills COL_SHORT_BYTES
    in whole cache lines, a tall one is 16 KiB wide. Only used to aim at tile
    tails."""
    isz = np.dtype(dtype).itemsize
    widest = 16 * 1024 // isz
    if n * 64 * isz > COL_SHORT_BYTES:
        return widest
    return min(widest, COL_SHORT_BYTES // (n * isz) // (64 // isz) * (64 // isz))


def tall_rows(dtype):
    """The fewest rows that take the two-sweep (tall) column path."""
    return COL_SHORT_BYTES // (64 * np.dtype(dtype).itemsize) + 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_column_tiles(isa, op, dtype, rng, threads):
    """Widths around the column tile, short tiles of a few rows up to the
    tallest; at 1 and 2 threads (with few tiles, 2 threads cut narrower ones)."""
    for n in (15, 16, 17, 33, 1000, tall_rows(dtype) - 1):  # the last: the tallest short tile
        t = column_tile(n, dtype)
        for k in (t - 1, t + 1, 2 * t + 7):
            x = random_values(rng, (n, k), dtype)
            check(op, threads(lambda: call(op, x, 0)), x, 0)
    x = random_values(rng, (1000, 300), dtype)
    xf = np.asfortranarray(x.T)   # axis=-1 of a Fortran array is the column plan too
    check(op, threads(lambda: call(op, xf, -1)), xf, -1)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_tall_column_tiles(isa, op, dtype, rng, threads):
    """Columns too tall for an in-cache tile take the blocked two-sweep column path."""
    tall = tall_rows(dtype)
    for n, k in ((tall - 1, 5), (tall, 5), (tall + 17, 3), (tall + 17, 100)):
        for kind in ("normal", "ties"):
            x = random_values(rng, (n, k), dtype, kind)
            check(op, threads(lambda: call(op, x, 0)), x, 0)
    # the max of a column in a late row block, after a run of smaller values
    x = np.full((tall + 5, 40), -5.0, dtype)
    x[-1, ::2] = 3.0
    x[tall // 2, 1::2] = 2.0
    check(op, threads(lambda: call(op, x, 0)), x, 0)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_tall_column_blocks(isa, op, dtype, rng, threads):
    """Tall tiles around their row blocks, in whole vectors (src/kernels.hpp
    col_sum_rows: their own loop, four rows a step) or not: tiles of whole
    rows of 8 KiB or more, tiles narrower than their rows (two tiles of a
    row of 16 KiB and a line; at 2 threads every tile), and a vector tail."""
    b = COL_BLOCK_ROWS
    isz = np.dtype(dtype).itemsize
    tall = tall_rows(dtype)
    k_row = 8192 // isz  # the narrowest whole-row tile
    first = -(-tall // b) * b  # the first multiple of the block at or above tall
    for n in (first - 1, first, first + 1, first + b + 2, first + 3):
        for k in (7, k_row, k_row + 16 // isz):
            kind = ("normal", "ties")[(n + k) % 2]
            x = random_values(rng, (n, k), dtype, kind)
            check(op, threads(lambda: call(op, x, 0)), x, 0)
    x = random_values(rng, (first + 3, (16384 + 64) // isz), dtype)
    check(op, threads(lambda: call(op, x, 0)), x, 0)
    # whole rows: a column's max in the last block, one in a middle block,
    # a column of -inf and one with a NaN (the exp test's slow branch)
    n = first + b + 2
    x = random_values(rng, (n, k_row), dtype)
    x[-1, 0::3] = 40.0
    x[n // 2, 1::3] = 30.0
    x[:, 5] = -np.inf
    x[n - 7, 9] = np.nan
    x[3, 11] = np.inf
    check(op, threads(lambda: call(op, x, 0)), x, 0)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_long_rows(isa, op, dtype, rng, threads):
    """Rows just below and above the two-sweep threshold, one and several of them."""
    long = LONG[dtype]
    for n in (long, long + 1, long + 4096 + 3):
        x = random_values(rng, (3, n), dtype)
        check(op, call(op, x), x)
        check(op, call(op, x[0]), x[0])
    # several long rows, with the max in a late block of the row
    x = random_values(rng, (5, 2 * long + 5), dtype, "ties")
    x[:, -3] = 10
    check(op, call(op, x), x)
    # block maxes whose difference from the row's max rounds in float64 (its
    # error goes into the blocks' scaling): the max alone in the last block,
    # or the sum dominated by blocks just below it
    x = np.full((4, long + 1), 0.1, dtype)
    x[0, -1] = 600.3
    x[1] = 1.2345678901
    x[1, -1] = 45.3
    x[2, :-1] = 600.2
    x[2, -1] = 600.3
    x[3] = -0.3
    x[3, 0] = 300.7
    check(op, threads(lambda: call(op, x)), x)
    check(op, threads(lambda: call(op, x[0])), x[0])  # one row: split across threads


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_long_strided_rows(isa, op, dtype, rng):
    """Long rows without unit stride: blocks are gathered, and scattered into out."""
    n = LONG[dtype] + 1001
    x = random_values(rng, (2, 2 * n), dtype)[:, ::2]
    check(op, call(op, x), x)
    xr = random_values(rng, n, dtype)[::-1]
    check(op, call(op, xr), xr)
    xc = random_values(rng, (n, 2), dtype)  # axis 0 with a stride of 2 and no unit-stride column used
    check(op, call(op, xc[:, ::2], 0), xc[:, ::2], 0)
    if op != "logsumexp":
        out = np.full((2, 3 * n), np.nan, dtype)[:, ::3]
        call(op, x, out=out)
        check(op, out, x)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_long_rows_contiguous_and_strided_agree(isa, op, dtype, threads, rng):
    """Whole blocks of contiguous long rows take the pipelined first sweep
    (kernels.hpp block_stats), strided ones are gathered a block at a time:
    the same blocks, so the same bits, at 1 and 2 threads (two rows on two
    threads split each row's blocks between them)."""
    n = LONG[dtype] + 3 * 4096 + 77  # past a whole block of either dtype, and a partial one
    # "rounded": x - max rounds the same way for every x (x in [1, 1.25] on a grid
    # a quarter of x - 64's ulp off), so the sum log_softmax and logsumexp use
    # (each term's rounding put back) differs from softmax's plain one in the
    # max element; the first block's terms (the max's own) dominate that sum
    step = 2.0 ** (-18 if dtype == np.float32 else -47)
    for kind in ("normal", "ties", "wide", "rounded"):
        if kind == "rounded":
            x = (1 + rng.integers(0, 2 ** 16, (2, n)) * step + step / 4).astype(dtype)
            x[:, 2048:] -= 16
        else:
            x = random_values(rng, (2, n), dtype, kind)
        x[0, -5] = 64  # the max in the partial last block
        x[1, 2] = 64   # and in the first
        wide = np.full((2, 2 * n), np.nan, dtype)
        wide[:, ::2] = x
        strided = wide[:, ::2]
        got = threads(lambda: call(op, x))
        assert same_bits(got, threads(lambda: call(op, strided))), kind
        check(op, got, x)


@pytest.mark.parametrize("n", list(range(1, 68)) + [1000, 4097, 65537, 262144, 262145 + 77])
def test_float32_row_sums(isa, n, rng):
    """softmax rows of float32 sum to 1 within 1e-6 (summed in float64)."""
    for kind in ("normal", "ties", "wide"):
        x = random_values(rng, (2, n), np.float32, kind)
        y = call("softmax", x)
        s = y.astype(np.float64).sum(axis=-1)
        assert np.all(np.abs(s - 1) <= 1e-6), (kind, s)
    # columns too: axis=0
    x = random_values(rng, (n, 3), np.float32)
    s = call("softmax", x, 0).astype(np.float64).sum(axis=0)
    assert np.all(np.abs(s - 1) <= 1e-6), s


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FASTSOFTMAX_LONG_TESTS"), reason="set FASTSOFTMAX_LONG_TESTS=1")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exhaustive_lengths(isa, dtype, rng):
    """Every row length up to 1100 and every (n, k) column shape up to (70, 80), all ops."""
    for op in OPS:
        for n in range(1, 1101):
            x = random_values(rng, (2, n), dtype, "normal" if n % 3 else "ties")
            check(op, call(op, x), x)
        for n in range(1, 71):
            for k in range(1, 81):
                x = random_values(rng, (n, k), dtype)
                check(op, call(op, x, 0), x, 0)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_huge_outputs(isa, op, dtype, rng, threads):
    """Outputs of 32 MiB and more (written with non-temporal stores in
    src/driver.cpp): odd row lengths, so rows start at every alignment, an out=
    shifted by a few elements, the column plan, and long rows. Rows and columns
    are independent, so a sample of them is checked against the oracle; the
    whole result is compared at 1 and 2 threads."""
    isz = np.dtype(dtype).itemsize
    rows = (34 * 2**20) // (4001 * isz)
    long = LONG[dtype] + 1
    cases = [
        (random_values(rng, (rows, 4001), dtype), -1),
        (random_values(rng, (4001, rows), dtype), 0),
        (random_values(rng, ((34 * 2**20) // (long * isz), long), dtype), -1),
    ]
    for x, axis in cases:
        y = threads(lambda: call(op, x, axis))
        buf = np.full(x.size + 7, np.nan, dtype)
        out = buf[3:3 + x.size].reshape(x.shape)   # starts 3 elements past an allocation
        assert call(op, x, axis, out=out) is out
        assert np.isnan(buf[:3]).all() and np.isnan(buf[3 + x.size:]).all()  # nothing written outside
        n_other = x.shape[0] if axis == -1 else x.shape[1]
        sample = sorted({0, 1, 2, n_other // 2, n_other - 2, n_other - 1})
        for result in (y, out):
            if axis == -1:
                check(op, result[sample], x[sample], -1)
            else:
                check(op, result[:, sample], x[:, sample], 0)
        assert not np.isnan(out).any() and not np.isnan(y).any()  # every element written
