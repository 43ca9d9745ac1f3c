"""One slice, the same bits on every path that computes it.

Contiguous rows longer than small_rows takes go to the pipelined kernel
(kernels.hpp rows(): the max of row k, the exp sweep of row k - 1 and the
writing sweep of row k - 2 in one loop). It shares its sweeps with the
single-row kernels, which other paths still run: a where= mask that is True
and constant along the axis (settled per slice, then the unmasked single-row
kernels), rows cut into short runs by an outer layout that does not merge, one
row on its own. These tests
hold the paths to the same bits on every tier, at 1 and 2 threads, across the
pipeline's ramp (1 to 5 rows) and lengths around its 8-vector step.
"""
import numpy as np
import pytest

import fastsoftmax

from _helpers import OPS, call, check, same_bits, same_but_nan_payloads

def single_row_kernels(op, x, **kw):
    """op on x through the single-row kernels: a mask that is True and constant
    along the axis is settled per slice, then the unmasked kernels run on it
    (a 0-d where=True is dropped instead, so it would take the pipeline)."""
    return call(op, x, where=np.ones(x.shape[:-1] + (1,), bool), **kw)


# around the pipelined step (8 vectors: 128 float32 / 64 float64 on AVX-512,
# 64 / 32 on AVX2, 32 / 16 generic) and its tails
LENGTHS = [16, 31, 32, 33, 64, 65, 100, 127, 128, 129, 255, 256, 257, 1000, 4099]


def rows(rng, count, n, dtype, special):
    x = (rng.standard_normal((count, n)) * 4).astype(dtype)
    if special and count >= 4:
        x[0, n // 2] = np.inf
        x[1, n // 3] = np.nan
        x[2, :] = -np.inf
        x[3, : min(5, n)] = x[3].max() + 1  # ties at the max
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_pipelined_rows_match_single_row_kernels(isa, op, dtype, rng, threads):
    for n in LENGTHS:
        for count in (1, 2, 3, 5):
            for special in (False, True):
                x = rows(rng, count, n, dtype, special)
                got = threads(lambda: call(op, x))
                single = single_row_kernels(op, x)
                assert same_bits(got, single), (n, count, special)
                one_by_one = np.stack([call(op, x[i : i + 1])[0] for i in range(count)])
                assert same_bits(got, one_by_one), (n, count, special)
                if not special:
                    check(op, got, x)


@pytest.mark.parametrize("op", OPS)
def test_rows_in_runs_of_an_outer_layout(isa, op, rng, threads):
    """Outer dims that do not merge: the pipeline runs along the last one, in runs of 3 rows."""
    base = (rng.standard_normal((4, 5, 300)) * 3).astype(np.float32)
    x = base[:, :3, :]
    got = threads(lambda: call(op, x))
    assert same_bits(got, call(op, np.ascontiguousarray(x)))
    check(op, got, x)


# short rows (small_rows: up to 8 vectors) around every tier's vector width
SHORT = [1, 2, 3, 4, 5, 7, 8, 9, 10, 13, 16, 17, 24, 31, 32, 33, 40, 47, 48, 63, 64, 100, 127]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_short_rows_alone_and_batched(isa, op, dtype, rng):
    """Short rows go to small_rows many at a time, in blocks of one vector's
    width of rows, transposed (kernels.hpp small_block), and the rows left
    over one by one. A row gets the same bits alone or among others, wherever
    the call starts, NaN payloads included where a row has one NaN source. A
    row mixing a NaN with the NaN of inf - inf (rows 9 and 10) is NaN either
    way, but which NaN an addition passes on depends on the compiled operand
    order (README, Accuracy): there only the sign and payload may differ."""
    for n in SHORT:
        x = (rng.standard_normal((37, n)) * 4).astype(dtype)
        x[3, 0] = np.nan
        x[5, n // 2] = np.inf
        x[7, :] = -np.inf
        x[9, 0] = np.inf
        x[9, -1] = np.nan  # and inf - inf (n > 1), a NaN of the other sign: two payloads
        x[10, 0] = -np.nan
        x[10, -1] = np.nan
        x[11, :] = x[11].max()  # ties
        mixed = [9, 10] if n > 1 else []

        def same(a, b):
            keep = np.setdiff1d(np.arange(len(a)), mixed)
            return same_bits(a[keep], b[keep]) and same_but_nan_payloads(a[mixed], b[mixed])

        with fastsoftmax.num_threads(1):
            got = call(op, x)
        with fastsoftmax.num_threads(2):
            assert same(call(op, x), got), n
        one_by_one = np.stack([call(op, x[i : i + 1])[0] for i in range(len(x))])
        assert same(got, one_by_one), n
        for cut in (16, 17, 31):  # the batches start elsewhere
            assert same_bits(got[cut:], call(op, x[cut:])), (n, cut)
        check(op, got[12:], x[12:])
        wide = np.full((37, n + 3), np.nan, dtype)  # rows at another pitch
        wide[:, :n] = x
        assert same(call(op, wide[:, :n]), got), n
        if op != "logsumexp":  # in place: a block reads all its rows before writing
            y = x.copy()
            call(op, y, out=y)
            assert same(y, got), n
        wide_scale = (rng.standard_normal((37, n)) * 40).astype(dtype)  # the slow exp's lanes
        assert same_bits(call(op, wide_scale), np.stack([call(op, r[None])[0] for r in wide_scale])), n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_short_rows_in_runs_of_an_outer_layout(isa, op, dtype, rng, threads):
    """Outer dims that do not merge: short rows go to small_rows a run (of 37)
    at a time, in transposed blocks and one by one; the bits of contiguous rows."""
    for n in (1, 3, 8, 10, 13, 17, 40):
        base = (rng.standard_normal((3, 45, n)) * 4).astype(dtype)
        base[1, 9, n // 2] = np.inf
        base[2, 20, :] = -np.inf
        x = base[:, :37, :]
        got = threads(lambda: call(op, x))
        assert same_bits(got, call(op, np.ascontiguousarray(x))), n
        check(op, got[1, 10:], x[1, 10:])


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_pipelined_rows_in_place(isa, op, rng):
    """out=x: row k - 2 is written while rows k - 1 and k are read, each from its
    own row; with 2 or 3 rows the first and last rows' steps are joint too."""
    for count in (2, 3, 7):
        x = (rng.standard_normal((count, 1000)) * 4).astype(np.float32)
        expected = single_row_kernels(op, x)
        call(op, x, out=x)
        assert same_bits(x, expected), count


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_pipelined_rows_into_any_alignment(isa, op, rng):
    """The writing sweep starts at each row's first whole cache line of y: any offset of out."""
    x = (rng.standard_normal((6, 515)) * 4).astype(np.float32)
    expected = single_row_kernels(op, x)
    for offset in range(17):
        buf = np.zeros(x.size + 64, np.float32)
        out = buf[offset : offset + x.size].reshape(x.shape)
        call(op, x, out=out)
        assert same_bits(out, expected), offset
        assert not buf[:offset].any() and not buf[offset + x.size :].any(), offset  # nothing outside out


@pytest.mark.slow
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_pipelined_rows_with_streaming_stores(isa, op, rng, threads):
    """Outputs of 32 MiB and more: non-temporal stores (softmax through two staged rows)."""
    x = (rng.standard_normal((1031, 8200)) * 4).astype(np.float32)  # 33.8 MB, rows not whole lines
    got = threads(lambda: call(op, x))
    assert same_bits(got, single_row_kernels(op, x))
    assert same_bits(got[:5], call(op, x[:5]))  # short: plain stores
    check(op, got[:50], x[:50])



def out_along_axis(shape, axis, dtype):
    """An out= of `shape` whose unit stride runs along `axis` (x.T into a C-ordered array, say)."""
    order = [d for d in range(len(shape)) if d != axis] + [axis]
    return np.empty([shape[d] for d in order], dtype).transpose(np.argsort(order))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_columns_into_an_out_contiguous_along_the_axis(isa, op, dtype, rng, threads):
    """x read in columns, y written along the axis: the tiles are computed into a
    buffer and written out slice by slice (driver.cpp, ColumnTile ytrans), with
    the bits of the same columns written straight into a like-ordered out: short
    and tall columns, a middle axis, a mask along the axis, ragged tiles."""
    tall = 512 * 1024 // 64 // max(np.dtype(dtype).itemsize, 4) + 3  # past COL_SHORT_BYTES (256 KiB): blocked sweeps
    for shape, axis in [((300, 77), 0), ((tall, 45), 0), ((5, 301, 33), 1), ((tall, 3, 17), 0)]:
        x = (rng.standard_normal(shape) * 4).astype(dtype)
        x.reshape(-1)[::97] = -np.inf
        for where in (None, rng.random(shape) < 0.9):
            kw = {} if where is None else {"where": where}
            like_x = np.empty_like(x)
            call(op, x, axis, out=like_x, **kw)

            def into():
                out = out_along_axis(shape, axis, dtype)
                assert out.strides[axis] == out.itemsize
                r = call(op, x, axis, out=out, **kw)
                assert r is out
                return out
            got = threads(into)
            assert same_bits(got, like_x), (shape, axis, where is None)
            if where is None and dtype != np.float16:
                check(op, got, x, axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_columns_into_an_out_contiguous_nowhere(isa, op, dtype, rng, threads):
    """x read in columns, y with unit stride in neither direction (a strided
    view, or F-ordered for a middle axis of a C-ordered x): the tiles go through
    a buffer (driver.cpp, ColumnTile ybuf) with the bits of the same columns
    written straight into a like-ordered out. Such an out= once sent x to the
    row plan, which adds in another order: out='s layout changed the bits.
    Nothing outside the view is written."""
    tall = 512 * 1024 // 64 // max(np.dtype(dtype).itemsize, 4) + 3  # past COL_SHORT_BYTES: blocked sweeps
    for shape, axis, kind in [((300, 77), 0, "step"), ((tall, 45), 0, "step"), ((1030, 37), 0, "step"),
                              ((5, 301, 33), 1, "F"), ((2, tall, 33), 1, "F"), ((tall, 3, 17), 0, "step")]:
        x = (rng.standard_normal(shape) * 4).astype(dtype)
        x.reshape(-1)[::97] = -np.inf
        for where in (None, rng.random(shape) < 0.9):
            kw = {} if where is None else {"where": where}
            like_x = call(op, x, axis, **kw)

            def into():
                if kind == "F":
                    base = np.full(shape, np.nan, dtype, order="F")
                    out = base
                else:
                    base = np.full(tuple(2 * s for s in shape), np.nan, dtype)
                    out = base[tuple(slice(None, None, 2) for _ in shape)]
                # unit stride neither where x has it (the last dim) nor along the axis
                assert out.strides[-1] != out.itemsize and out.strides[axis] != out.itemsize
                r = call(op, x, axis, out=out, **kw)
                assert r is out
                if kind == "step":
                    outside = np.ones(base.shape, bool)
                    outside[tuple(slice(None, None, 2) for _ in shape)] = False
                    assert np.isnan(base[outside]).all()
                return out.copy()
            got = threads(into)
            assert same_bits(got, like_x), (shape, axis, where is None)
            if where is None and dtype != np.float16:
                check(op, got, x, axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_reversed_arrays(isa, op, dtype, rng, threads):
    """x with negative strides in every dim, into out=None, a reversed out and
    an F-ordered one: the bits of x's C-ordered copy. A reversed slice is read
    in its own order (reading it in memory order, as once done where out ran
    backwards too, summed it the other way round), and an outer dim that runs
    backwards in x is flipped for the column plan (no slice's order changes)."""
    for shape in [(1030, 37), (37, 1030), (2, 1100, 33), (3, 5000)]:
        v = (rng.standard_normal(shape) * 4).astype(dtype)
        x = v[tuple(slice(None, None, -1) for _ in shape)]
        for axis in range(len(shape)):
            expected = call(op, np.ascontiguousarray(x), axis)
            assert same_bits(threads(lambda: call(op, x, axis)), expected), (shape, axis)
            if op == "logsumexp":
                continue
            for out in (np.empty(shape, dtype)[tuple(slice(None, None, -1) for _ in shape)], np.empty(shape, dtype, order="F")):
                assert same_bits(threads(lambda: call(op, x, axis, out=out).copy()), expected), (shape, axis, out.strides)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_rows_into_an_out_contiguous_across_them(isa, op, dtype, rng, threads):
    """x in rows, y contiguous across the rows (a C-ordered x into an F-ordered
    out=): runs of rows are computed into a buffer and written out one position
    of the axis at a time (driver.cpp, run_rows ytrans), with the bits of the
    same rows written into a C-ordered out: short rows, rows of exactly 8
    vectors, long ones, runs cut by the batch and by an outer dimension;
    float16 read into float32 and converted on the way out. Rows that go
    slice by slice (another strided out, a strided x) get those bits too:
    short ones take the small-row kernel there as well."""
    for shape in [(37, 10), (300, 128), (300, 129), (513, 64), (3, 1000), (1, 4099), (2, 300, 33)]:
        x = (rng.standard_normal(shape) * 4).astype(dtype)
        x.reshape(-1)[::89] = -np.inf
        expected = call(op, x)

        def into():
            out = np.empty(shape[::-1], dtype).T  # unit stride across the rows
            assert call(op, x, out=out) is out
            return out
        got = threads(into)
        assert same_bits(got, expected), shape
        if dtype != np.float16:  # (computed in float32: tests/test_half.py)
            check(op, got, x)
        strided = np.repeat(x, 2, axis=-1)[..., ::2]  # the same rows gathered: the same bits too
        assert same_bits(call(op, strided), expected), shape
    for n in (70, 128, 300):  # with masks: row by row into the buffer
        x = (rng.standard_normal((300, n)) * 4).astype(dtype)
        per_slice = (np.arange(300) % 3 > 0)[:, None]  # some rows masked out whole
        full = rng.random(x.shape) < 0.8
        for mask in (full, np.asfortranarray(full), per_slice):
            out = np.empty(x.shape[::-1], dtype).T
            threads(lambda: call(op, x, out=out, where=mask))
            assert same_bits(out, call(op, x, where=mask)), (n, mask.shape)
