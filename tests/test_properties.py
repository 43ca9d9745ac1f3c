"""Property tests (hypothesis): any shape, axis, strides, values and tier.

Arrays of 0-4 dimensions (zero-length dimensions included) are drawn as views
of a larger buffer with random steps (negative too) and a random transpose;
values are finite numbers of any magnitude (subnormals, +-3e38), ties with the
max, and a few NaN / +inf / -inf put anywhere, or whole regions of -inf. The
axis is an int (either sign), a tuple in any order, None or (). The result must
equal the oracle within the bounds of _helpers.py with the same NaN / inf
pattern and exact zeros, also when written into an out= view; logsumexp is
checked with and without keepdims. where= masks are drawn the same way (the
full shape, a broadcast shape or a bool, in any layout) and checked against
the masked oracle. The profile (conftest.py) runs 300 examples per test in
CI, with no deadline.
"""
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastsoftmax
from _helpers import LAYOUTS, OPS, call, check, check_masked, make_layout, tier
from fastsoftmax import _core

SPECIALS = [np.nan, np.inf, -np.inf]


def value_strategy(dtype, mode):
    w = 32 if dtype == np.float32 else 64
    if mode == "moderate":
        return st.floats(-60, 60, width=w)
    if mode == "any":  # every finite float: huge, tiny, subnormal
        return st.floats(allow_nan=False, allow_infinity=False, width=w)
    # "ties": few distinct values, -inf among them
    return st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 2.0, -30.0])


@st.composite
def arrays(draw, max_side=6, max_dims=4):
    """(x, dtype): a strided view with drawn values."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    ndim = draw(st.integers(0, max_dims))
    shape = draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim))
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3, -1, -2]), min_size=ndim, max_size=ndim))
    mode = draw(st.sampled_from(["moderate", "moderate", "any", "ties"]))
    base_shape = [s * abs(k) for s, k in zip(shape, steps)]
    base = draw(hnp.arrays(dtype, base_shape, elements=value_strategy(dtype, mode)))
    x = base[tuple(slice(None, None, k) for k in steps) + (Ellipsis,)]  # 0-d stays an array
    if ndim > 1 and draw(st.booleans()):
        x = x.transpose(draw(st.permutations(range(ndim))))
    if x.size:
        for _ in range(draw(st.integers(0, 3))):  # a few special values anywhere
            i = draw(st.integers(0, x.size - 1))
            x[np.unravel_index(i, x.shape)] = draw(st.sampled_from(SPECIALS))
    return x, dtype


@st.composite
def axes(draw, ndim):
    if ndim == 0:
        return draw(st.sampled_from([None, (), 0, -1]))
    kind = draw(st.sampled_from(["int", "int", "tuple", "none", "empty"]))
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    if kind == "none":
        return None
    if kind == "empty":
        return ()
    perm = draw(st.permutations(range(ndim)))
    k = draw(st.integers(1, ndim))
    signs = draw(st.lists(st.booleans(), min_size=k, max_size=k))
    return tuple(a - ndim if neg else a for a, neg in zip(perm[:k], signs))


@given(data=st.data())
def test_matches_reference(data):
    x, dtype = data.draw(arrays())
    axis = data.draw(axes(x.ndim))
    op = data.draw(st.sampled_from(OPS))
    isa = data.draw(st.sampled_from(_core.supported_tiers()))
    keepdims = op == "logsumexp" and data.draw(st.booleans())
    note(f"x={x!r} strides={x.strides} axis={axis} op={op} isa={isa} keepdims={keepdims}")
    before = x.copy()
    with tier(isa), np.errstate(all="raise"):
        y = call(op, x, axis, **({"keepdims": True} if keepdims else {}))
    assert np.asarray(y).dtype == dtype
    check(op, y, x, axis, keepdims=keepdims)
    assert np.array_equal(x, before, equal_nan=True)


@given(data=st.data())
def test_out_matches_reference(data):
    x, dtype = data.draw(arrays(max_dims=3))
    axis = data.draw(axes(x.ndim))
    op = data.draw(st.sampled_from(OPS))
    with np.errstate(all="ignore"):
        shape = np.shape(call(op, x, axis))
    layout = data.draw(st.sampled_from(["C", "F", "transposed", "stepped", "negative", "middle"]))
    out = make_layout(np.full(shape, 12345.0, dtype), layout)
    note(f"x={x!r} axis={axis} op={op} out strides={out.strides}")
    with np.errstate(all="raise"):
        r = call(op, x, axis, out=out)
    assert r is out
    check(op, out, x, axis)


@given(data=st.data())
def test_in_place_matches_reference(data):
    x, dtype = data.draw(arrays(max_dims=3))
    axis = data.draw(axes(x.ndim))
    op = data.draw(st.sampled_from(["softmax", "log_softmax"]))
    orig = x.copy()
    with np.errstate(all="raise"):
        r = call(op, x, axis, out=x)
    assert r is x
    check(op, x, orig, axis)


@given(x=hnp.arrays(st.sampled_from([np.bool_, np.int8, np.uint16, np.int32, np.int64]),
                    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)),
       op=st.sampled_from(OPS), data=st.data())
def test_integer_input(x, op, data):
    axis = data.draw(axes(x.ndim))
    y = call(op, x, axis)
    assert np.asarray(y).dtype == np.float64
    check(op, y, x.astype(np.float64), axis)


@given(data=st.data())
def test_float32_softmax_sums_to_one(data):
    """Finite float32 slices of softmax sum to 1 within 1e-6 (summed in float64)."""
    n = data.draw(st.integers(1, 3000))
    rows = data.draw(st.integers(1, 3))
    vals = data.draw(hnp.arrays(np.float32, (rows, n), elements=st.floats(-80, 80, width=32)))
    axis = data.draw(st.sampled_from([0, 1]))
    x = vals if axis == 1 else np.ascontiguousarray(vals.T)
    y = fastsoftmax.softmax(x, axis=axis)
    s = y.astype(np.float64).sum(axis=axis)
    assert np.all(np.abs(s - 1) <= 1e-6), s


@pytest.mark.parametrize("op", OPS)
@given(data=st.data())
def test_longer_slices(op, data):
    """Slices up to a few hundred long (every tail, several column tiles)."""
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    n = data.draw(st.integers(1, 300))
    k = data.draw(st.integers(1, 40))
    vals = data.draw(hnp.arrays(dtype, (k, n), elements=value_strategy(dtype, data.draw(
        st.sampled_from(["moderate", "ties"])))))
    layout = data.draw(st.sampled_from(["C", "F", "stepped", "negative"]))
    x = make_layout(vals, layout)
    axis = data.draw(st.sampled_from([-1, 0]))
    isa = data.draw(st.sampled_from(_core.supported_tiers()))
    with tier(isa):
        y = call(op, x, axis)
    check(op, y, x, axis)


@st.composite
def masks(draw, shape):
    """A where= mask for an array of `shape`: the full shape, a broadcast shape
    (some dimensions 1, some leading ones dropped) or a bool; all True, all
    False or drawn; in any memory layout."""
    kind = draw(st.sampled_from(["full", "full", "broadcast", "scalar"]))
    if kind == "scalar":
        return np.bool_(draw(st.booleans()))
    mshape = list(shape)
    if kind == "broadcast":
        mshape = [1 if draw(st.booleans()) else s for s in mshape]
        mshape = mshape[draw(st.integers(0, len(mshape))):]
    fill = draw(st.sampled_from(["drawn", "drawn", "drawn", "none", "all"]))
    if fill == "drawn":
        m = draw(hnp.arrays(np.bool_, mshape))
    else:
        m = np.full(mshape, fill == "all")
    return make_layout(m, draw(st.sampled_from(LAYOUTS))) if m.ndim else m


@given(data=st.data())
def test_where_matches_masked_reference(data):
    x, dtype = data.draw(arrays())
    axis = data.draw(axes(x.ndim))
    op = data.draw(st.sampled_from(OPS))
    isa = data.draw(st.sampled_from(_core.supported_tiers()))
    mask = data.draw(masks(x.shape))
    keepdims = op == "logsumexp" and data.draw(st.booleans())
    use_out = data.draw(st.booleans())
    note(f"x={x!r} strides={x.strides} axis={axis} op={op} isa={isa} keepdims={keepdims} "
         f"mask={mask!r} strides={getattr(mask, 'strides', None)} out={use_out}")
    before, mbefore = x.copy(), np.copy(mask)
    kw = {"keepdims": True} if keepdims else {}
    with tier(isa), np.errstate(all="raise"):
        y = call(op, x, axis, where=mask, **kw)
        if use_out:
            out = np.full(np.shape(y), 12345.0, dtype)
            assert call(op, x, axis, where=mask, out=out, **kw) is out
            check_masked(op, out, x, mask, axis, keepdims=keepdims)
    assert np.asarray(y).dtype == dtype
    check_masked(op, y, x, mask, axis, keepdims=keepdims)
    assert np.array_equal(x, before, equal_nan=True) and np.array_equal(mask, mbefore)
