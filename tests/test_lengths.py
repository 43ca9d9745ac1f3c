"""Length sweeps: every vector tail, tile tail and block boundary on every tier.

* Row plan: slice lengths 1 ... 4 * 16 + 3 (four AVX-512 float32 vectors plus
  a tail, so every tail of every tier's vector width and of the short-row
  kernel is hit), as many short rows and as one row; strided rows (gather).
* Column plan: axis=0 of (n, k) for k = 1 ... 70 (vector tails across the
  columns) and k around the column tile (512 float32 / 256 float64 columns),
  n around the 32-row fold; tall tiles that take the two-sweep column path.
  (Column checks allow KNOWN_SUM_SLACK for a known summation bug; see _helpers.)
* Long rows crossing the two-sweep threshold (src/driver.cpp LONG_BYTES =
  256 KiB: float32 rows > 65536, float64 rows > 32768), contiguous and
  strided (gathered blocks), one and several rows.
* float32 row sums within 1e-6 of 1 for rows up to 256k elements.
"""
import numpy as np
import pytest

from _helpers import OPS, call, check, random_values, slack_bound

MAX_ROW = 4 * 16 + 3
LONG = {np.float32: 65536, np.float64: 32768}  # longest slice that is still "short"
TILE = {np.float32: 512, np.float64: 256}


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
            check(op, call(op, x, 0), x, 0, bound_fn=slack_bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_column_tiles(isa, op, dtype, rng):
    """Widths around the column tile and row counts around the 32-row fold."""
    t = TILE[dtype]
    for k in (t - 1, t, t + 1, 2 * t + 7):
        for n in (31, 32, 33, 65):
            x = random_values(rng, (n, k), dtype)
            check(op, call(op, x, 0), x, 0, bound_fn=slack_bound)
            xf = np.asfortranarray(x.T)   # the same as axis=-1 of a Fortran array
            check(op, call(op, xf, -1), xf, -1, bound_fn=slack_bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_tall_column_tiles(isa, op, dtype, rng):
    """Columns too tall for one in-cache tile take the blocked two-sweep column path."""
    t = TILE[dtype]
    isz = np.dtype(dtype).itemsize
    for n, k in ((200, t + 3), (2 * (256 * 1024) // (3 * isz), 3)):
        for kind in ("normal", "ties"):
            x = random_values(rng, (n, k), dtype, kind)
            check(op, call(op, x, 0), x, 0, bound_fn=slack_bound)
    # the max of a column in a late row block, after a run of smaller values
    x = np.full((3000, 40), -5.0, dtype)
    x[2999, ::2] = 3.0
    x[1500, 1::2] = 2.0
    check(op, call(op, x, 0), x, 0, bound_fn=slack_bound)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_long_rows(isa, op, dtype, rng):
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


@pytest.mark.parametrize("n", list(range(1, 68)) + [1000, 4097, 65537, 262144])
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
