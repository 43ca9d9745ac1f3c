"""Bit-identical results at any thread count, on every plan and SIMD tier.

The contract: "The result is bit-for-bit the same whatever the thread count."
Inputs are large enough to run in parallel (src/driver.cpp stays on one
thread below 32768 elements): many short rows, columns (short and tall
tiles), gathered strided rows, one 3M-element row split across threads by its
fixed blocks, a few long rows (split) and many long rows (one per thread).
Each is computed at 1 and 2 threads (the `threads` fixture), compared bit
for bit and checked against the oracle; a few also at 3 and 4 threads, and
concurrent calls from several Python threads.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core
from _helpers import OPS, call, check, same_bits, same_but_nan_payloads

BIG_ROW = 3_000_000


def plans(dtype, rng):
    """(name, x, axis) for every plan, each large enough to be split across threads."""
    long = _core.LONG_SLICE_BYTES // np.dtype(dtype).itemsize

    def r(*shape):
        return (rng.standard_normal(shape) * 4).astype(dtype)
    g = r(400, 600)
    return [
        ("many short rows", r(3000, 37), -1),
        ("rows", r(200, 1000), -1),
        ("columns", r(300, 700), 0),
        ("middle axis", r(40, 50, 30), 1),
        ("tall columns", r(20000, 5), 0),
        ("few column tiles", r(1000, 100), 0),   # 2 threads cut narrower tiles
        ("tall, few tiles", r(9000, 100), 0),
        ("tall, rows wider than a tile", r(1030, 4100), 0),  # 16 KiB tiles: 2 (float32) or 3 a row
        ("gather", g[::2, ::3], -1),
        ("gather columns", g[::2, ::3], 0),
        ("few long rows", r(3, long + 999), -1),
        ("many long rows", r(9, long + 7), -1),
        ("long strided rows", r(3, 2 * long + 10)[:, ::2], -1),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_plans_bit_identical_at_1_and_2_threads(isa, op, dtype, rng, threads):
    for name, x, axis in plans(dtype, rng):
        y = threads(lambda: call(op, x, axis))
        check(op, y, x, axis)  # and right, not just the same
        if op == "softmax":  # the same into a preallocated, strided out
            out_shape = (x.shape[0], 2 * x.shape[1]) if x.ndim == 2 else None
            if out_shape:
                def into_out():
                    out = np.zeros(out_shape, dtype)[:, ::2]
                    call(op, x, axis, out=out)
                    return out
                threads(into_out)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_single_huge_row_split_across_threads(isa, op, dtype, rng, threads):
    x = (rng.standard_normal(BIG_ROW) * 4).astype(dtype)
    x[BIG_ROW - 5] = 20  # the max in the last block
    y = threads(lambda: call(op, x))
    if op == "softmax" and dtype == np.float32:
        s = y.astype(np.float64).sum()
        assert abs(s - 1) <= 1e-6, s


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_huge_row_is_accurate(op, rng):
    """The split row against the oracle (float32, default tier, 2 threads)."""
    x = (rng.standard_normal(BIG_ROW) * 4).astype(np.float32)
    with fastsoftmax.num_threads(2):
        check(op, call(op, x), x)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_more_threads_than_cores(dtype, rng):
    """3 and 4 threads on 2 cores: still the same bits as 1 thread."""
    long = _core.LONG_SLICE_BYTES // np.dtype(dtype).itemsize
    inputs = [((rng.standard_normal((3, long + 99)) * 4).astype(dtype), -1),
              ((rng.standard_normal((500, 300)) * 4).astype(dtype), 0),
              ((rng.standard_normal(5 * long) * 4).astype(dtype), -1)]
    for x, axis in inputs:
        for op in OPS:
            with fastsoftmax.num_threads(1):
                ref = call(op, x, axis)
            for n in (3, 4):
                with fastsoftmax.num_threads(n):
                    assert same_bits(call(op, x, axis), ref), (op, n, x.shape, axis)


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_special_values_in_parallel(isa, op, rng, threads):
    """NaN / inf in a block handled by the second thread give the same bits."""
    for dtype in (np.float32, np.float64):
        n = (_core.LONG_SLICE_BYTES // np.dtype(dtype).itemsize) + 4099  # long rows
        x = (rng.standard_normal((4, n)) * 4).astype(dtype)
        x[0, n - 10] = np.nan
        x[1, n - 3] = np.inf
        x[2, : n // 2] = -np.inf
        x[3, :] = -np.inf
        y = threads(lambda: call(op, x))
        check(op, y, x)
        y1 = threads(lambda: call(op, x[1]))  # one row holding +inf: split across threads
        check(op, y1, x[1])


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_mixed_nan_sources_at_1_and_2_threads(isa, op, rng):
    """Slices holding an input NaN beside +inf (whose inf - inf is another NaN)
    or beside all -inf: NaN in the same places and every other value the same
    bits at 1 and 2 threads, on every plan; only the NaNs' sign and payload may
    differ (README, Accuracy)."""
    for dtype in (np.float32, np.float64):
        for name, x, axis in plans(dtype, rng):
            v = np.moveaxis(x, axis, -1)  # a view: x keeps its layout, so its plan
            n, outer = v.shape[-1], v.shape[:-1]
            first, mid, last = (np.unravel_index(i, outer) for i in (0, v[..., 0].size // 2, v[..., 0].size - 1))
            v[first + ([1, n // 2],)] = [np.nan, np.inf]
            v[last + ([0, n - 1],)] = [np.inf, -np.nan]
            v[mid] = -np.inf
            v[mid + (n // 3,)] = np.nan
            with fastsoftmax.num_threads(1):
                y1 = call(op, x, axis)
            with fastsoftmax.num_threads(2):
                y2 = call(op, x, axis)
            assert same_but_nan_payloads(y1, y2), name
            check(op, y2, x, axis)


@pytest.mark.slow
def test_concurrent_calls_from_python_threads(rng):
    """Calls from several Python threads at once (the GIL is released in the
    kernels) give the same bits as the same calls made one after another."""
    inputs = [((rng.standard_normal((64, 2000)) * 4).astype(dt), axis, op)
              for dt in (np.float32, np.float64) for axis in (0, 1) for op in OPS]
    inputs.append(((rng.standard_normal(400_000) * 4).astype(np.float32), -1, "softmax"))
    sequential = [call(op, x, axis) for x, axis, op in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            results = list(pool.map(lambda a: call(a[2], a[0], a[1]), inputs))
            for got, want in zip(results, sequential):
                assert same_bits(got, want)
