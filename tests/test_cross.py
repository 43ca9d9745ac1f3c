"""The cross that matters: op x dtype x axis x layout x SIMD tier, against the oracle.

Every op (softmax, log_softmax, logsumexp with and without keepdims), float32
and float64, every axis of 1-D to 4-D arrays (positive, negative, tuples in
any order, None and ()), six memory layouts (C, Fortran, transposed, stepped
slices, negative strides, a non-contiguous middle dimension), each SIMD tier
this CPU has. Shapes are small but chosen so that slice lengths hit vector
tails and size-1 dimensions get coalesced. Then the same for out= in every
layout, integer/bool inputs (computed in float64) and dtype= casting.
Accuracy is checked with the ULP bounds described in _helpers.py.
"""
import numpy as np
import pytest

import fastsoftmax
from _helpers import LAYOUTS, OPS, call, check, make_layout, random_values

SHAPES = {
    1: [(37,), (1,)],
    2: [(5, 19), (1, 9), (18, 1)],
    3: [(3, 4, 21), (2, 1, 5)],
    4: [(2, 3, 5, 9), (3, 1, 4, 2)],
}


def axes_for(ndim):
    """Every single axis (both signs), None, (), and tuples (some out of order)."""
    axes = list(range(ndim)) + list(range(-ndim, 0)) + [None, ()]
    if ndim >= 2:
        axes += [(0, ndim - 1), (-1, 0), tuple(range(ndim))]
    if ndim >= 3:
        axes += [(0, 1), (1, 2), (2, 0), (-2, -1)]
    if ndim == 4:
        axes += [(1, 3), (0, 2, 3), (3, 1, 0)]
    return axes


@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_cross(isa, op, dtype, layout, ndim, rng):
    for shape in SHAPES[ndim]:
        for kind in ("normal", "ties", "wide"):
            x = make_layout(random_values(rng, shape, dtype, kind), layout)
            before = x.copy()
            for axis in axes_for(ndim):
                y = call(op, x, axis)
                rshape = x.shape if op != "logsumexp" else np.sum(x, axis=axis).shape
                assert np.shape(y) == rshape and np.asarray(y).dtype == dtype
                # an array, or a NumPy scalar where a reduction leaves no dimension (like np.sum)
                assert type(y) is (np.ndarray if rshape else np.dtype(dtype).type)
                check(op, y, x, axis)
                if op == "logsumexp":
                    yk = fastsoftmax.logsumexp(x, axis=axis, keepdims=True)
                    assert yk.shape == np.sum(x, axis=axis, keepdims=True).shape
                    check(op, yk, x, axis, keepdims=True)
            assert np.array_equal(x, before), "the input was modified"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_out_any_layout(isa, op, dtype, layout, rng):
    """out= in every layout is filled with the right values and returned."""
    for shape in [(6, 21), (4, 3, 10), (33,)]:
        x = random_values(rng, shape, dtype)
        for axis in list(range(-len(shape), len(shape))) + [None] + ([(0, -1)] if len(shape) > 1 else []):
            template = np.zeros(np.shape(call(op, x, axis)), dtype)
            out = make_layout(template, layout)
            out[...] = np.nan
            r = call(op, x, axis, out=out)
            assert r is out
            check(op, out, x, axis)


@pytest.mark.parametrize("in_dtype", [np.bool_, np.int8, np.uint8, np.int16, np.uint16,
                                      np.int32, np.uint32, np.int64, np.uint64])
@pytest.mark.parametrize("op", OPS)
def test_integer_and_bool_input_compute_in_float64(isa, op, in_dtype, rng):
    info = np.iinfo(in_dtype) if in_dtype is not np.bool_ else None
    if info is None:
        x = rng.integers(0, 2, size=(7, 13)).astype(np.bool_)
    else:
        lo, hi = max(info.min, -50), min(info.max, 50)
        x = rng.integers(lo, hi, size=(7, 13), endpoint=True).astype(in_dtype)
    for axis in (-1, 0, None, (0, 1), ()):
        y = call(op, x, axis)
        assert np.asarray(y).dtype == np.float64
        check(op, y, x.astype(np.float64), axis)
    for layout in ("F", "negative", "stepped"):
        xl = make_layout(x, layout)
        for axis in (0, 1):
            check(op, call(op, xl, axis), x.astype(np.float64), axis)


@pytest.mark.parametrize("op", OPS)
def test_extreme_integers(op):
    """int64/uint64 extremes are converted to float64 like np.asarray(x, float64) does."""
    x = np.array([np.iinfo(np.int64).min, 0, np.iinfo(np.int64).max], dtype=np.int64)
    check(op, call(op, x), x.astype(np.float64))
    u = np.array([0, 2**63, 2**64 - 1], dtype=np.uint64)
    check(op, call(op, u), u.astype(np.float64))


@pytest.mark.parametrize("target", [np.float32, np.float64, "float32", "f8", np.dtype("float32")])
@pytest.mark.parametrize("source", [np.float32, np.float64, np.int32, np.bool_])
@pytest.mark.parametrize("op", OPS)
def test_dtype_argument_casts_first(isa, op, source, target, rng):
    """dtype= picks the computation and result dtype: the input is cast to it first."""
    target_dt = np.dtype(target)
    x = (random_values(rng, (5, 40), np.float64) * 3).astype(source)
    for axis in (-1, 0, None):
        y = call(op, x, axis, dtype=target)
        assert np.asarray(y).dtype == target_dt
        check(op, y, x.astype(target_dt), axis)


def test_dtype_argument_rounds_input_before_computing():
    """float64 values that differ below float32 precision: dtype=float32 sees them equal."""
    x = np.array([1.0, 1.0 + 2.0**-30])
    y = fastsoftmax.softmax(x, dtype=np.float32)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.float32([0.5, 0.5]))
    # and the overflow of the cast itself follows the special-value rules (the
    # warning that cast emits: test_regressions.py::test_dtype_cast_overflow_emits_no_warning)
    big = np.array([1e300, 0.0])
    with np.errstate(over="ignore"):
        assert np.isnan(fastsoftmax.softmax(big, dtype=np.float32)).all()  # +inf in the slice
        assert fastsoftmax.logsumexp(big, dtype=np.float32) == np.inf


@pytest.mark.parametrize("op", OPS)
def test_dtype_argument_upcast_is_accurate(op, rng):
    """dtype=float64 on float32 input computes in float64 (float64 accuracy)."""
    x = random_values(rng, (4, 50), np.float32)
    y = call(op, x, dtype=np.float64)
    assert y.dtype == np.float64
    check(op, y, x.astype(np.float64))
