"""Property tests (hypothesis): any shape, axis, strides, dtype, values and tier.

Arrays of 0-5 dimensions (zero-length dimensions included) are drawn as views
of a larger buffer with random steps (negative too) and a random transpose,
and then, one time in three, made exotic: a zero-stride broadcast dimension,
an unaligned buffer or byte-swapped data. dtypes: float32 and float64, bool
and every integer size (computed in float64), and dtype= casts. Values are
finite numbers of any magnitude (subnormals, +-3e38, the largest double), ties
with the max, and a few NaN / +inf / -inf put anywhere, or whole regions of
-inf. The axis is an int (either sign), a tuple in any order, None or ().
The result must equal the oracle within the bounds of _helpers.py with the
same NaN / inf pattern and exact zeros, also when written into an out= view
(every layout, unaligned, in place, partly overlapping the input); logsumexp
is checked with and without keepdims. A call that raises (bad axis, out= of
the wrong shape / dtype / writeability, a bad where=) leaves out= and the
input bit-for-bit untouched. where= masks are drawn the same way (the full
shape, a broadcast shape or a bool, in any layout) and checked against the
masked oracle.

Profiles (conftest.py): 'ci' runs 300 examples per test (the default run),
'long' 2,000, 'fuzz' FASTSOFTMAX_FUZZ_EXAMPLES (default 12,500: 125,000 cases
over the 10 tests; tools/fuzz_long.sh runs it and counts the cases).
"""
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastsoftmax
from _helpers import LAYOUTS, OPS, call, check, check_masked, make_layout, same_bits, tier
from fastsoftmax import _core

SPECIALS = [np.nan, np.inf, -np.inf]
FLOATS = (np.float32, np.float64)
INTEGERS = (np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64)
AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError


def extremes(dtype):
    """The edges of the dtype: its largest values, the subnormals, signed zeros,
    and the points where exp(x - max) leaves the normal range."""
    fi = np.finfo(dtype)
    vals = [fi.max, -fi.max, fi.max / 2, fi.tiny, -fi.tiny, fi.smallest_subnormal, -fi.smallest_subnormal,
            0.0, -0.0, 1.0, -87.5, -103.9, -745.0, 88.7, 709.7]
    return [float(np.asarray(v, dtype)) for v in vals]


def value_strategy(dtype, mode):
    w = 32 if dtype == np.float32 else 64
    if mode == "moderate":
        return st.floats(-60, 60, width=w)
    if mode == "any":  # every finite float: huge, tiny, subnormal
        return st.floats(allow_nan=False, allow_infinity=False, width=w)
    if mode == "extremes":  # +-3e38 (or +-1.8e308), subnormals, zeros, with some ordinary values
        return st.one_of(st.sampled_from(extremes(dtype)), st.floats(-60, 60, width=w))
    # "ties": few distinct values, -inf among them
    return st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 2.0, -30.0])


def elements(dtype, mode):
    if np.dtype(dtype).kind == "f":
        return value_strategy(dtype, mode)
    return hnp.from_dtype(np.dtype(dtype))  # bool and integers: every value


def unaligned_copy(x):
    """A C-ordered copy of x at an odd byte address (not aligned for its dtype)."""
    buf = np.empty(x.nbytes + 1, np.uint8)
    u = buf[1:].view(x.dtype).reshape(x.shape)
    u[...] = x
    assert not u.flags.aligned or x.size == 0 or x.dtype.itemsize == 1
    return u


def exotic(draw, x):
    """x as a zero-stride broadcast view, an unaligned copy or a byte-swapped
    copy (same values), or x itself; the input paths that copy or read in place."""
    kind = draw(st.sampled_from(["plain", "plain", "plain", "plain", "broadcast", "unaligned", "byteswapped"]))
    if kind == "broadcast" and x.ndim:
        d = draw(st.integers(0, x.ndim - 1))
        if x.shape[d] > 0:  # repeat index 0 along d with stride 0, any length
            one = x[(slice(None),) * d + (slice(0, 1),)]
            shape = list(x.shape)
            shape[d] = draw(st.integers(1, 6))
            return np.broadcast_to(one, shape)
        return np.broadcast_to(x[np.newaxis], (draw(st.integers(1, 3)),) + x.shape)  # a new leading axis
    if kind == "unaligned" and x.dtype.itemsize > 1:
        u = unaligned_copy(x)
        return u[(slice(None, None, -1),) * u.ndim] if draw(st.booleans()) else u
    if kind == "byteswapped" and x.dtype.itemsize > 1:
        return x.astype(x.dtype.newbyteorder(), order="K")
    return x


@st.composite
def arrays(draw, max_side=6, max_dims=5, dtypes=FLOATS, allow_exotic=True):
    """(x, dtype): a strided view with drawn values (dtype: x's dtype, native order)."""
    dtype = draw(st.sampled_from(dtypes))
    ndim = draw(st.integers(0, max_dims))
    side = max_side if ndim <= 4 else min(max_side, 3)  # 5-d: at most 3**5 elements
    shape = draw(st.lists(st.integers(0, side), min_size=ndim, max_size=ndim))
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3, -1, -2]), min_size=ndim, max_size=ndim))
    mode = draw(st.sampled_from(["moderate", "moderate", "any", "ties", "extremes"]))
    base_shape = [s * abs(k) for s, k in zip(shape, steps)]
    base = draw(hnp.arrays(dtype, base_shape, elements=elements(dtype, mode)))
    x = base[tuple(slice(None, None, k) for k in steps) + (Ellipsis,)]  # 0-d stays an array
    if ndim > 1 and draw(st.booleans()):
        x = x.transpose(draw(st.permutations(range(ndim))))
    if x.size and np.dtype(dtype).kind == "f":
        for _ in range(draw(st.integers(0, 3))):  # a few special values anywhere
            i = draw(st.integers(0, x.size - 1))
            x[np.unravel_index(i, x.shape)] = draw(st.sampled_from(SPECIALS))
    if allow_exotic:
        x = exotic(draw, x)
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
    cast = data.draw(st.sampled_from([None, None, None, np.float32, np.float64]))
    kw = dict(keepdims=True) if keepdims else {}
    if cast is not None:
        kw["dtype"] = cast
    note(f"x={x!r} dtype={x.dtype} strides={x.strides} aligned={x.flags.aligned} axis={axis} op={op} "
         f"isa={isa} {kw}")
    before = x.copy()
    with tier(isa), np.errstate(all="raise"):
        y = call(op, x, axis, **kw)
    assert np.asarray(y).dtype == (dtype if cast is None else cast)
    check(op, y, x, axis, keepdims=keepdims)
    assert same_bits(x, before)


@given(data=st.data())
def test_out_matches_reference(data):
    x, dtype = data.draw(arrays(max_dims=3))
    axis = data.draw(axes(x.ndim))
    op = data.draw(st.sampled_from(OPS))
    with np.errstate(all="ignore"):
        shape = np.shape(call(op, x, axis))
    layout = data.draw(st.sampled_from(["C", "F", "transposed", "stepped", "negative", "middle", "unaligned"]))
    out = out_array(shape, dtype, layout)
    note(f"x={x!r} axis={axis} op={op} out strides={out.strides} aligned={out.flags.aligned}")
    with np.errstate(all="raise"):
        r = call(op, x, axis, out=out)
    assert r is out
    check(op, out, x, axis)


def out_array(shape, dtype, layout):
    """An out= array of shape and dtype, filled with 12345, in the given layout
    (make_layout's, or 'unaligned': C order at an odd byte address)."""
    if layout == "unaligned":
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        out = np.empty(n + 1, np.uint8)[1:].view(dtype).reshape(shape)
        out[...] = 12345.0
        return out
    return make_layout(np.full(shape, 12345.0, dtype), layout)


@given(data=st.data())
def test_in_place_matches_reference(data):
    x, dtype = data.draw(arrays(max_dims=3, allow_exotic=False))
    if data.draw(st.integers(0, 3)) == 0:  # in place on an unaligned buffer too
        x = unaligned_copy(x)

    axis = data.draw(axes(x.ndim))
    op = data.draw(st.sampled_from(["softmax", "log_softmax"]))
    orig = x.copy()
    with np.errstate(all="raise"):
        r = call(op, x, axis, out=x)
    assert r is x
    check(op, x, orig, axis)


@given(data=st.data())
def test_integer_input(data):
    """bool and integer inputs of every size, any layout (byte-swapped, unaligned,
    broadcast too), are computed in float64."""
    x, _ = data.draw(arrays(max_dims=4, dtypes=INTEGERS))
    axis = data.draw(axes(x.ndim))
    op = data.draw(st.sampled_from(OPS))
    note(f"x={x!r} dtype={x.dtype} strides={x.strides} axis={axis} op={op}")
    y = call(op, x, axis)
    assert np.asarray(y).dtype == np.float64
    check(op, y, x.astype(np.float64), axis)


@given(data=st.data())
def test_partially_overlapping_out(data):
    """out= a view that shares memory with x in any way (shifted, reversed,
    transposed, the same memory in another shape): the result is op(x) as x was
    before the call."""
    dtype = data.draw(st.sampled_from(FLOATS))
    op = data.draw(st.sampled_from(OPS))
    ndim = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    axis = data.draw(axes(ndim))
    size = int(np.prod(shape))
    rshape = np.sum(np.zeros(shape), axis=axis).shape if op == "logsumexp" else shape
    rsize = int(np.prod(rshape))
    total = max(size, rsize) * 2 + 1
    base = data.draw(hnp.arrays(dtype, total, elements=value_strategy(dtype, data.draw(
        st.sampled_from(["moderate", "ties", "extremes"])))))

    def view(n, shp):
        off = data.draw(st.integers(0, total - n))
        v = base[off:off + n].reshape(shp)
        if v.ndim and data.draw(st.booleans()):
            v = v[(slice(None, None, -1),) * v.ndim]
        if v.ndim > 1 and data.draw(st.booleans()):
            v = v.T if v.shape == v.T.shape else v
        return v

    x = view(size, shape)
    out = view(rsize, rshape)
    orig = x.copy()
    note(f"x={orig!r} at {x.ctypes.data - base.ctypes.data} strides={x.strides}; out at "
         f"{out.ctypes.data - base.ctypes.data} strides={out.strides}; axis={axis} op={op}; "
         f"overlap={np.shares_memory(x, out)}")
    with np.errstate(all="raise"):
        r = call(op, x, axis, out=out)
    assert r is out
    check(op, out, orig, axis)


BAD_CALLS = ["axis out of range", "axis out of range in a tuple", "repeated axis", "out wrong shape",
             "out wrong dtype", "out byte-swapped", "out read-only", "out broadcast", "out not an array",
             "where= not bool", "where= not broadcastable", "dtype=float16 beside a wider out",
             "dtype=int32", "float16 input beside a wider out", "complex input"]


@given(data=st.data())
def test_errors_leave_out_and_input_untouched(data):
    """Every rejected call raises its documented exception (docs/errors.md) and
    writes nothing: out= and the input keep every bit."""
    x, dtype = data.draw(arrays(max_dims=3))
    op = data.draw(st.sampled_from(OPS))
    axis = data.draw(axes(x.ndim))
    with np.errstate(all="ignore"):
        shape = np.shape(call(op, x, axis))
    out = out_array(shape, dtype, data.draw(st.sampled_from(["C", "F", "negative", "unaligned"])))
    bad = data.draw(st.sampled_from(BAD_CALLS))
    nd = max(x.ndim, 1)  # a 0-d input counts as one axis
    kw = dict(axis=axis, out=out)
    if bad == "axis out of range":
        kw["axis"], exc = data.draw(st.sampled_from([nd, nd + 3, -nd - 1])), AxisError
    elif bad == "axis out of range in a tuple":
        kw["axis"], exc = (0, nd), AxisError
    elif bad == "repeated axis":
        kw["axis"], exc = data.draw(st.sampled_from([(0, 0), (0, -nd), (nd - 1, -1)])), ValueError
    elif bad == "out wrong shape":
        kw["out"], exc = out_array(shape + (2,), dtype, "C"), ValueError
    elif bad == "out wrong dtype":
        kw["out"], exc = out_array(shape, np.float64 if dtype == np.float32 else np.float32, "C"), TypeError
    elif bad == "out byte-swapped":
        kw["out"], exc = np.full(shape, 12345.0, np.dtype(dtype).newbyteorder()), TypeError
    elif bad == "out read-only":
        out.flags.writeable = False
        exc = ValueError
    elif bad == "out broadcast":
        kw["out"], exc = np.broadcast_to(np.asarray(12345.0, dtype), shape), ValueError
    elif bad == "out not an array":
        kw["out"], exc = np.full(shape, 12345.0, dtype).tolist(), TypeError
    elif bad == "where= not bool":
        kw["where"], exc = 1, TypeError
    elif bad == "where= not broadcastable":
        kw["where"], exc = np.ones((3, 5, 7, 11, 13, 2), bool), ValueError
    elif bad == "dtype=float16 beside a wider out":  # out= must have the result's dtype exactly
        kw["dtype"], exc = np.float16, TypeError
    elif bad == "dtype=int32":
        kw["dtype"], exc = np.int32, TypeError
    elif bad == "float16 input beside a wider out":
        with np.errstate(over="ignore"):  # 3e38 -> inf in the cast itself
            x, exc = np.asarray(x, np.float16), TypeError
    else:
        x, exc = np.asarray(x, np.complex128), TypeError
    target = kw["out"]
    before_out = np.array(target, copy=True) if isinstance(target, np.ndarray) else None
    before_x = x.copy()
    note(f"{bad}: x={x!r} op={op} {kw['axis']=}")
    with pytest.raises(exc):
        call(op, x, **kw)
    if before_out is not None:
        assert same_bits(target, before_out), "out was written although an error was raised"
    assert x.tobytes() == before_x.tobytes(), "the input was written"


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
