"""The NumPy API rules of API.md, other than accuracy.

Return types (0-d input gives a NumPy scalar; a 0-d out= is filled and
returned), what x may be (lists, scalars, bool/int, unaligned, byte-swapped,
read-only), empty arrays, keepdims, out= (layouts, in place, overlap, errors
that leave out byte-identical), axis errors like NumPy's, unsupported dtypes,
where= masks (their forms and errors; the values are tests/test_where.py),
float16 result dtypes (the rest of float16: test_half.py), and the thread count API.
"""
import numpy as np
import pytest

import fastsoftmax
from _helpers import OPS, call, check, make_layout, random_values

AxisError = np.exceptions.AxisError
FLOATS = [np.float32, np.float64]


# ---- 0-d input and scalars --------------------------------------------------

@pytest.mark.parametrize("op, expected", [("softmax", 1.0), ("log_softmax", 0.0), ("logsumexp", 3.0)])
def test_zero_d_input_returns_numpy_scalar(op, expected):
    for x, dt in ((3.0, np.float64), (np.float32(3.0), np.float32), (np.array(3.0), np.float64),
                  (3, np.float64), (np.int8(3), np.float64), (np.array(3.0, np.float32), np.float32)):
        for axis in (-1, 0, None, ()):
            y = call(op, x, axis)
            assert type(y) is dt, (x, axis, type(y))
            assert not isinstance(y, np.ndarray)
            assert y == expected
    y = call(op, True)  # bool computes in float64: like 1.0
    assert type(y) is np.float64 and y == {"softmax": 1.0, "log_softmax": 0.0, "logsumexp": 1.0}[op]


@pytest.mark.parametrize("op", OPS)
def test_zero_d_special_values(op):
    with np.errstate(all="raise"):
        assert np.isnan(call(op, np.nan))
        if op == "logsumexp":
            assert call(op, np.inf) == np.inf and call(op, -np.inf) == -np.inf
        else:
            assert np.isnan(call(op, np.inf)) and np.isnan(call(op, -np.inf))


@pytest.mark.parametrize("op", OPS)
def test_zero_d_axis_out_of_range(op):
    with pytest.raises(AxisError):
        call(op, 3.0, 1)
    with pytest.raises(AxisError):
        call(op, 3.0, -2)


@pytest.mark.parametrize("op, expected", [("softmax", 1.0), ("log_softmax", 0.0), ("logsumexp", 2.5)])
def test_zero_d_out_is_filled_and_returned(op, expected):
    for dt in FLOATS:
        out = np.full((), np.nan, dt)
        r = call(op, dt(2.5), out=out)
        assert r is out and out[()] == expected
    # logsumexp of a vector (or of everything) into a 0-d out
    x = np.array([1.0, 2.0, 3.0])
    out = np.full((), np.nan)
    assert fastsoftmax.logsumexp(x, out=out) is out
    check("logsumexp", out, x)
    out = np.full((), np.nan)
    assert fastsoftmax.logsumexp(np.ones((3, 4)), axis=None, out=out) is out
    np.testing.assert_allclose(out, np.log(12) + 1, rtol=1e-15)


@pytest.mark.parametrize("op", OPS)
def test_lists_tuples_and_scalars(op):
    lst = [[1, 2, 3], [4, 5, 7]]
    ref = call(op, np.array(lst, dtype=np.float64))
    y = call(op, lst)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(call(op, ((1.0, 2.0, 3.0), (4.0, 5.0, 7.0))), ref)
    np.testing.assert_array_equal(call(op, [[1.0, 2, 3], [4, 5, 7]]), ref)
    check(op, call(op, [True, False, True]), np.array([1.0, 0.0, 1.0]))


@pytest.mark.parametrize("op", OPS)
def test_high_rank_arrays(op, rng):
    """Up to NumPy's 64 dimensions (mostly of length 1, which the plans drop)."""
    for ndim in (10, 32, 64):
        shape = [1] * ndim
        shape[1], shape[ndim // 2], shape[-1] = 3, 2, 5
        x = random_values(rng, tuple(shape), np.float64)
        for axis in (0, 1, ndim // 2, -1, None, (1, -1), ()):
            check(op, call(op, x, axis), x, axis)
        xt = x.transpose(list(range(ndim))[::-1])  # reversed: the unit stride is first
        for axis in (-2, 0, None):
            check(op, call(op, xt, axis), xt, axis)


def test_returns_plain_ndarray_of_input_shape():
    x = np.arange(24.0).reshape(2, 3, 4)
    for op in ("softmax", "log_softmax"):
        for axis in (0, 1, 2, None, (0, 2), ()):
            y = call(op, x, axis)
            assert type(y) is np.ndarray and y.shape == x.shape
    for axis, shape in ((0, (3, 4)), (1, (2, 4)), (-1, (2, 3)), ((0, 2), (3,)), ((), (2, 3, 4))):
        assert fastsoftmax.logsumexp(x, axis).shape == shape
    assert type(fastsoftmax.logsumexp(x, axis=None)) is np.float64


# ---- empty arrays, keepdims ---------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0), (2, 0, 3), (0, 0)])
def test_empty_arrays(shape, dtype):
    x = np.empty(shape, dtype)
    for axis in list(range(-len(shape), len(shape))) + [None, ()]:
        for op in ("softmax", "log_softmax"):
            y = call(op, x, axis)
            assert y.shape == shape and y.dtype == dtype
        r = np.asarray(fastsoftmax.logsumexp(x, axis))
        expected_shape = np.sum(x, axis=axis).shape
        assert r.shape == expected_shape and r.dtype == dtype
        n = 0 if axis is None else (1 if axis == () else shape[axis])
        if n == 0:  # a reduction over a zero-length axis: -inf
            assert np.all(r == -np.inf)
        rk = fastsoftmax.logsumexp(x, axis, keepdims=True)
        assert rk.shape == np.sum(x, axis=axis, keepdims=True).shape
        if n == 0:
            assert np.all(rk == -np.inf)


def test_logsumexp_of_zero_length_axis_is_minus_inf():
    assert fastsoftmax.logsumexp(np.empty(0)) == -np.inf
    assert type(fastsoftmax.logsumexp(np.empty(0))) is np.float64
    assert fastsoftmax.logsumexp([]) == -np.inf
    np.testing.assert_array_equal(fastsoftmax.logsumexp(np.empty((3, 0), np.float32)), [-np.inf] * 3)
    np.testing.assert_array_equal(fastsoftmax.logsumexp(np.empty((0, 3)), axis=0), [-np.inf] * 3)
    np.testing.assert_array_equal(fastsoftmax.logsumexp(np.empty((2, 0, 3)), axis=(0, 1)), [-np.inf] * 3)
    out = np.zeros(4)
    assert fastsoftmax.logsumexp(np.empty((4, 0)), out=out) is out
    np.testing.assert_array_equal(out, [-np.inf] * 4)
    np.testing.assert_array_equal(fastsoftmax.logsumexp(np.empty((4, 0)), keepdims=True), [[-np.inf]] * 4)


def test_keepdims(rng):
    x = random_values(rng, (3, 4, 5), np.float64)
    for axis in (0, 1, 2, -1, (0, 2), (2, 0), None, ()):
        k = fastsoftmax.logsumexp(x, axis, keepdims=True)
        assert k.shape == np.sum(x, axis=axis, keepdims=True).shape
        check("logsumexp", k, x, axis, keepdims=True)
        plain = np.asarray(fastsoftmax.logsumexp(x, axis))
        np.testing.assert_array_equal(k.reshape(plain.shape), plain)
    k0 = fastsoftmax.logsumexp(2.0, keepdims=True)
    assert np.ndim(k0) == 0 and k0 == 2.0


# ---- out= -----------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_out_returned_and_correct(op, rng):
    for dt in FLOATS:
        x = random_values(rng, (6, 11), dt)
        for axis in (0, 1, None, (0, 1), ()):
            y = call(op, x, axis)
            out = np.full(np.shape(y), np.nan, dt)
            assert call(op, x, axis, out=out) is out
            check(op, out, x, axis)
        if op == "logsumexp":
            out = np.full((6, 1), np.nan, dt)
            assert fastsoftmax.logsumexp(x, 1, keepdims=True, out=out) is out
            check(op, out, x, 1, keepdims=True)


@pytest.mark.parametrize("layout", ["C", "F", "transposed", "stepped", "negative", "middle"])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_in_place(op, layout, rng):
    """out=x: the result overwrites the input, in any layout."""
    for dt in FLOATS:
        for axis in (0, -1, None, (0, 1)):
            x = make_layout(random_values(rng, (9, 13, 3), dt), layout)
            orig = x.copy()
            r = call(op, x, axis, out=x)
            assert r is x
            check(op, x, orig, axis)


@pytest.mark.parametrize("op", OPS)
def test_partial_overlap(op, rng):
    """out overlapping x without being x: the result is still op(original x)."""
    for dt in FLOATS:
        buf = random_values(rng, 40, dt)
        orig = buf.copy()
        if op == "logsumexp":
            x = buf[:36].reshape(6, 6)
            out = buf[3:9]                        # overlaps the first row
            expected_x = orig[:36].reshape(6, 6)
            call(op, x, 1, out=out)
            check(op, out, expected_x, 1)
            buf[:] = orig
            x = buf.reshape(5, 8)
            call(op, x, 0, out=x[2])              # a row of x itself, axis 0
            check(op, buf.reshape(5, 8)[2], orig.reshape(5, 8), 0)
            continue
        x, out = buf[:30], buf[5:35]              # shifted by 5
        call(op, x, out=out)
        check(op, out, orig[:30])
        buf[:] = orig
        x = buf[:30]
        call(op, x, out=x[::-1])                  # the same memory, reversed
        check(op, x[::-1], orig[:30])
        buf[:] = orig
        sq = buf[:36].reshape(6, 6)
        call(op, sq, 1, out=sq.T)                 # the same memory, transposed
        check(op, sq.T, orig[:36].reshape(6, 6), 1)
        buf[:] = orig
        x3 = buf[:36].reshape(6, 6)
        call(op, x3[::2], 1, out=x3[1::2])        # interleaved rows, no element shared
        check(op, x3[1::2], orig[:36].reshape(6, 6)[::2], 1)


def _poisoned(shape, dtype, rng):
    a = np.empty(shape, dtype)
    a.view(np.uint8)[...] = rng.integers(0, 256, a.nbytes, dtype=np.uint8).reshape(a.view(np.uint8).shape)
    return a


@pytest.mark.parametrize("op", OPS)
def test_out_errors_leave_out_untouched(op, rng):
    x = np.arange(12.0).reshape(3, 4)
    good_shape = (3, 4) if op != "logsumexp" else (3,)
    cases = [  # (out, kwargs, exception, words the message must contain)
        (_poisoned((4, 3), np.float64, rng), {}, ValueError, ["shape"]),
        (_poisoned((12,), np.float64, rng), {}, ValueError, ["shape"]),
        (_poisoned(good_shape, np.float32, rng), {}, TypeError, ["dtype"]),
        (_poisoned(good_shape, np.int64, rng), {}, TypeError, ["dtype"]),
        (_poisoned(good_shape, np.float64, rng), {"axis": 2}, AxisError, []),
        (_poisoned(good_shape, np.float64, rng), {"axis": (1, 1)}, ValueError, []),
        (_poisoned(good_shape, np.float64, rng), {"axis": 1.0}, TypeError, []),
        (_poisoned(good_shape, np.float64, rng), {"where": np.ones((3, 4), int)}, TypeError, ["where="]),
        (_poisoned(good_shape, np.float64, rng), {"where": np.ones((4, 3), bool)}, ValueError, ["where="]),
        (_poisoned(good_shape, np.float32, rng), {"dtype": np.float16}, TypeError, ["dtype", "float16"]),
        (_poisoned(good_shape, np.float16, rng), {}, TypeError, ["dtype", "float16"]),
        (_poisoned(good_shape, np.float64, rng), {"dtype": np.complex128}, TypeError, []),
    ]
    for out, kw, exc, words in cases:
        before = out.tobytes()
        with pytest.raises(exc) as info:
            call(op, x, out=out, **kw)
        assert out.tobytes() == before, (kw, exc)
        for w in words:
            assert w in str(info.value), str(info.value)
    # wrong dtype with a right-shaped out for the input's own dtype
    out = _poisoned(good_shape, np.float64, rng)
    before = out.tobytes()
    with pytest.raises(TypeError, match="dtype"):
        call(op, x.astype(np.float32), out=out)
    assert out.tobytes() == before
    # read-only out
    ro = _poisoned(good_shape, np.float64, rng)
    ro.flags.writeable = False
    before = ro.tobytes()
    with pytest.raises(ValueError):
        call(op, x, out=ro)
    assert ro.tobytes() == before
    # not an ndarray
    for bad in ([0.0] * 12, np.zeros(good_shape).tolist(), 3.0):
        with pytest.raises(TypeError):
            call(op, x, out=bad)


def test_out_with_dtype_argument(rng):
    """With dtype=, out must have that dtype (the result dtype), not the input's."""
    x = random_values(rng, (4, 6), np.float64)
    out = np.zeros((4, 6), np.float32)
    assert fastsoftmax.softmax(x, dtype=np.float32, out=out) is out
    check("softmax", out, x.astype(np.float32))
    bad = np.zeros((4, 6), np.float64)
    with pytest.raises(TypeError, match="dtype"):
        fastsoftmax.softmax(x, dtype=np.float32, out=bad)
    assert not bad.any()
    out = np.zeros(4, np.float64)
    assert fastsoftmax.logsumexp(x.astype(np.float32), dtype=np.float64, out=out) is out
    check("logsumexp", out, x.astype(np.float32).astype(np.float64))


def test_out_subclass_is_accepted():
    class Sub(np.ndarray):
        pass
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    out = np.zeros((2, 2)).view(Sub)
    assert fastsoftmax.softmax(x, out=out) is out
    check("softmax", np.asarray(out), x)


def test_out_keepdims_shape_rules():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="shape"):
        fastsoftmax.logsumexp(x, axis=1, keepdims=True, out=np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        fastsoftmax.logsumexp(x, axis=1, keepdims=False, out=np.zeros((3, 1)))


# ---- axis and dtype errors -----------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_axis_errors_like_numpy(op):
    x = np.ones((2, 3))
    for axis in (2, -3, (0, 2), (5,)):
        with pytest.raises(AxisError):
            call(op, x, axis)
    for axis in ((0, 0), (1, -1), (0, 1, 0)):
        with pytest.raises(ValueError, match="repeated"):
            call(op, x, axis)
    for axis in (1.0, "0", [0.5]):
        with pytest.raises(TypeError):
            call(op, x, axis)
    # NumPy integers are axes too
    check(op, call(op, x, np.int64(0)), x, 0)
    check(op, call(op, x, (np.intp(1), np.int8(0))), x, (0, 1))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("bad", [
    np.array([1 + 2j, 3j]), np.array([1, 2], np.complex64), np.array([1.0, 2.0], dtype=object),
    np.array(["a", "b"]), np.array([b"a", b"b"]), np.array(["2020-01-01"], dtype="datetime64[D]"),
    np.array([1, 2], dtype="timedelta64[s]"),
], ids=["complex128", "complex64", "object", "str", "bytes", "datetime64", "timedelta64"])
def test_unsupported_dtypes_raise_type_error_naming_it(op, bad):
    with pytest.raises(TypeError) as info:
        call(op, bad)
    msg = str(info.value)
    assert str(bad.dtype) in msg or bad.dtype.name in msg, msg
    with pytest.raises(TypeError):
        call(op, bad, dtype=np.float64)  # dtype= does not make them acceptable


@pytest.mark.parametrize("op", OPS)
def test_bad_dtype_argument(op):
    for dt in (np.int32, np.complex128, object, "U3", np.bool_):
        with pytest.raises(TypeError):
            call(op, [1.0, 2.0], dtype=dt)


# ---- float16 (details in test_half.py) -------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_float16_result_dtypes(op):
    """float16 in -> float16 out; dtype= float16 from wider input, and float32 /
    float64 from float16 input (API.md dtype rules)."""
    for kw, x, dt in (({}, np.ones(3, np.float16), np.float16), ({"dtype": np.float16}, np.ones(3), np.float16),
                      ({"dtype": "float16"}, np.ones(3, np.float32), np.float16),
                      ({"dtype": np.float32}, np.ones(3, np.float16), np.float32),
                      ({"dtype": np.float64}, np.ones(3, np.float16), np.float64)):
        y = np.asarray(call(op, x, **kw))
        assert y.dtype == dt, (kw, x.dtype, y.dtype)
        want = {"softmax": 1 / 3, "log_softmax": -np.log(3), "logsumexp": 1 + np.log(3)}[op]
        assert np.allclose(y.astype(np.float64), want, rtol=1e-3)


@pytest.mark.parametrize("op", OPS)
def test_where_mask_forms(op):
    """where= takes a bool array of x's shape, one that broadcasts to it, a list or
    a Python bool; True everywhere is the unmasked result."""
    x = np.arange(6.0).reshape(2, 3)
    plain = call(op, x)
    for mask in (np.ones((2, 3), bool), np.array([True, True, True]), [[True], [True]], True, np.True_):
        np.testing.assert_array_equal(call(op, x, where=mask), plain)
    masked = call(op, x, where=[True, False, True])
    if op == "logsumexp":
        np.testing.assert_allclose(masked, call(op, x[:, [0, 2]]), rtol=1e-15)
    else:
        np.testing.assert_allclose(masked[:, [0, 2]], call(op, x[:, [0, 2]]), rtol=1e-15)
        assert np.all(masked[:, 1] == (0.0 if op == "softmax" else -np.inf))



# ---- input memory: unaligned, byte-swapped, read-only -------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", OPS)
def test_unaligned_input_and_out(op, dtype, rng):
    vals = random_values(rng, 60, dtype)
    x = np.frombuffer(b"\0" + vals.tobytes(), dtype=dtype, offset=1)
    assert not x.flags.aligned and np.array_equal(x, vals)
    check(op, call(op, x), vals)
    x2 = x.reshape(6, 10)
    for axis in (0, 1, None):
        check(op, call(op, x2, axis), vals.reshape(6, 10), axis)
    shape = (6, 10) if op != "logsumexp" else (6,)
    raw = bytearray(1 + np.prod(shape) * np.dtype(dtype).itemsize)
    out = np.frombuffer(raw, dtype=dtype, offset=1).reshape(shape)
    assert not out.flags.aligned and out.flags.writeable
    assert call(op, x2, out=out) is out
    check(op, out, vals.reshape(6, 10))


@pytest.mark.parametrize("op", OPS)
def test_byte_swapped_input(op, rng):
    for dt in ("f4", "f8"):
        vals = random_values(rng, (7, 9), np.dtype(dt))
        swapped = vals.astype(">" + dt if np.little_endian else "<" + dt)
        assert not swapped.dtype.isnative
        for axis in (0, 1, None):
            y = call(op, swapped, axis)
            assert np.asarray(y).dtype == np.dtype(dt)  # native result of the same kind
            check(op, y, vals, axis)
        check(op, call(op, swapped[:, ::-2], 1), vals[:, ::-2], 1)


@pytest.mark.parametrize("op", OPS)
def test_read_only_input(op, rng):
    x = random_values(rng, (4, 5), np.float64)
    x.flags.writeable = False
    check(op, call(op, x), x)
    check(op, call(op, x, 0), x, 0)


# ---- threads API -------------------------------------------------------------------

def test_set_num_threads_rejects_less_than_one():
    old = fastsoftmax.get_num_threads()
    for n in (0, -1, -100):
        with pytest.raises(ValueError):
            fastsoftmax.set_num_threads(n)
        assert fastsoftmax.get_num_threads() == old
    with pytest.raises(ValueError):
        with fastsoftmax.num_threads(0):
            pass
    assert fastsoftmax.get_num_threads() == old


def test_set_and_get_num_threads():
    old = fastsoftmax.get_num_threads()
    try:
        fastsoftmax.set_num_threads(3)
        assert fastsoftmax.get_num_threads() == 3
        fastsoftmax.set_num_threads(np.int64(1))
        assert fastsoftmax.get_num_threads() == 1
    finally:
        fastsoftmax.set_num_threads(old)


def test_num_threads_context_restores_also_on_error():
    old = fastsoftmax.get_num_threads()
    with fastsoftmax.num_threads(1):
        assert fastsoftmax.get_num_threads() == 1
        with fastsoftmax.num_threads(5):
            assert fastsoftmax.get_num_threads() == 5
        assert fastsoftmax.get_num_threads() == 1
    assert fastsoftmax.get_num_threads() == old
    with pytest.raises(KeyError):
        with fastsoftmax.num_threads(7):
            assert fastsoftmax.get_num_threads() == 7
            raise KeyError("boom")
    assert fastsoftmax.get_num_threads() == old


def test_isa_reports_a_supported_tier():
    from fastsoftmax import _core
    assert fastsoftmax.isa() in _core.supported_tiers()
    assert set(_core.supported_tiers()) <= {"generic", "avx2", "avx512f"}
    assert "generic" in _core.supported_tiers()
    with pytest.raises(ValueError):
        _core.set_tier("sse9")
