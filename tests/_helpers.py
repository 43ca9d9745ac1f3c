"""Shared helpers for the test suite: the oracle, the ULP measure, layouts, threads.

The contract (API.md, "Accuracy"): every element of softmax is within

    4 + |x - max| + log2(n) / 2   ULP

of the exactly rounded result, n the slice length and |x - max| in value
units. ULP here is the unit in the last place of the *exactly rounded* result
in the result dtype (2**(e - p + 1) for a result in [2**e, 2**(e+1))), with
the fixed subnormal ulp (the smallest subnormal) for subnormals and zero.
The exact result comes from `fastsoftmax._reference` computed in a wider
dtype: float64 for float32 results, long double for float64 results.

Bounds asserted (measured maxima on random data, all tiers, noted):

* softmax:     4 + |x - max| + log2(n)/2 per element: the contract as written.
  Measured: error - |x - max| <= 2.4 ULP on the row plan (random data).
* log_softmax: 4 + |x - max| + log2(n)/2 per element: the contract as
  written. The max element's result, -log1p(sum of the others' terms), rests
  on the rounding of every other x - max; the kernels put that rounding
  error back into each term (a two-sum), so it meets the bound.
* logsumexp:   4 + log2(n)/2 per slice, in ULP of
  max(|result|, log(sum exp(x - max))). Where max >= 0 that is the ULP of
  the result (the contract's relative bound, asserted on its own in
  test_specials.py with lse_relative=True); where max < 0 and the result is
  near 0, m + log1p(s) cancels and no working-precision evaluation can be
  relatively accurate (float64 logsumexp([-ln 2, -ln 2]) = 2.3e-17 exactly,
  the library gives 0), so the bound is absolute there.

Special values are compared exactly: where the exactly rounded result is NaN
or +-inf the result must be the same, and where the exact result is exactly 0
(softmax of -inf next to finite values) the result must be exactly 0.
"""
import contextlib
import math

import numpy as np

import fastsoftmax
from fastsoftmax import _core, _reference

OPS = ("softmax", "log_softmax", "logsumexp")

#: the dtype the oracle computes in, for each result dtype
WIDER = {np.dtype(np.float32): np.dtype(np.float64), np.dtype(np.float64): np.dtype(np.longdouble)}

#: long double arithmetic really is wider than double. Not so under valgrind
#: (tools/valgrind.sh), which runs x87 arithmetic in double precision, where
#: expl and log1pl lose more. There check() measures float64 results against
#: the float64 oracle summed pairwise (reference_pairwise) and widens the bound
#: to 2 * bound + 4 + 2 w ULP (w: see _shift_terms), the oracle's error plus the
#: library's (still far below what a wrong read or write would give).
EXTENDED_LONG_DOUBLE = bool(np.longdouble(1) + np.longdouble(2.0) ** -60 != 1)


def norm_axes(axis, ndim):
    """axis (int, tuple, None) as a sorted tuple of non-negative ints, for an ndim-d array."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted(a % ndim for a in axis))
    return (axis % ndim,)


def slice_length(shape, axis):
    """n, the number of elements in one slice (1 for a 0-d input or axis=())."""
    if len(shape) == 0:
        return 1
    return math.prod(shape[a] for a in norm_axes(axis, len(shape)))


def call(op, x, axis=-1, **kw):
    return getattr(fastsoftmax, op)(x, axis=axis, **kw)


def reference(op, x, axis=-1, dtype=np.float64, keepdims=False):
    """The oracle in dtype `dtype` (the wide dtype), shaped like the library's result."""
    x = np.asarray(x)
    fn = getattr(_reference, op)
    if x.ndim == 0:
        r = fn(x.reshape(1), axis=-1, dtype=dtype)
        return r.reshape(())
    axes = norm_axes(axis, x.ndim)
    if op == "logsumexp":
        return fn(x, axis=axes, keepdims=keepdims, dtype=dtype)
    return fn(x, axis=axes, dtype=dtype)


def reference_pairwise(op, x, axis=-1, keepdims=False):
    """The float64 oracle with each slice made contiguous first, so that NumPy
    sums it pairwise (error ~log2(n) eps, not the n eps of adding rows one by
    one); for float64 results where long double is no wider (valgrind)."""
    x = np.asarray(x)
    if x.ndim == 0:
        return reference(op, x, axis, dtype=np.float64)
    axes = norm_axes(axis, x.ndim)
    k = len(axes)
    moved = np.moveaxis(x, axes, range(x.ndim - k, x.ndim))
    flat = np.ascontiguousarray(moved).reshape(moved.shape[:x.ndim - k] + (-1,))
    r = getattr(_reference, op)(flat, axis=-1, dtype=np.float64)
    if op != "logsumexp":
        return np.moveaxis(r.reshape(moved.shape), range(x.ndim - k, x.ndim), axes)
    return np.expand_dims(r, axes) if keepdims else r


def ulp_of(r, dtype):
    """ULP of the (finite) values r of dtype `dtype`, in the wide dtype.

    2**(e - p + 1) for |r| in [2**e, 2**(e+1)); the smallest subnormal for
    subnormals and zero (np.spacing would overflow at the dtype's max)."""
    dtype = np.dtype(dtype)
    wide = WIDER[dtype]
    fi = np.finfo(dtype)
    p = fi.nmant + 1
    emin = fi.minexp + 1  # frexp exponent of the smallest normal
    a = np.abs(np.asarray(r, dtype=wide))
    _, e = np.frexp(a)
    e = np.where(a == 0, emin, np.maximum(e, emin))
    return np.ldexp(np.ones_like(a), e - p)


def round_exact(ref, dtype):
    """The exactly rounded result: the wide reference rounded once to dtype."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.asarray(ref).astype(dtype)


def ulp_errors(got, ref, dtype, scale=None):
    """Error of got (dtype) against the wide reference ref, in ULP of the exactly
    rounded result (or of `scale`, a wide array of magnitudes, when given).

    Returns an array in the wide dtype; +inf marks a mismatch of special values
    (NaN pattern, infinities, a result that must be exactly 0)."""
    dtype = np.dtype(dtype)
    wide = WIDER[dtype]
    got = np.asarray(got)
    assert got.dtype == dtype, f"result dtype {got.dtype}, expected {dtype}"
    ref = np.asarray(ref, dtype=wide)
    assert got.shape == ref.shape, f"result shape {got.shape}, expected {ref.shape}"
    rounded = round_exact(ref, dtype)
    g = got.astype(wide)
    with np.errstate(all="ignore"):
        special = ~np.isfinite(rounded)
        finite_ok = np.isfinite(g)
        units = ulp_of(rounded if scale is None else round_exact(scale, dtype), dtype)
        err = np.abs(g - ref) / units
        err = np.where(special | ~finite_ok, np.inf, err)
        # special values: exactly the same (NaN matches NaN, inf its own sign)
        same_special = (np.isnan(rounded) & np.isnan(g)) | (np.isinf(rounded) & (g == rounded))
        err = np.where(special & same_special, 0, err)
        # an exact zero (exp of -inf, or far below the subnormals) stays exactly zero
        err = np.where((ref == 0) & (g != 0), np.inf, err)
    return err


def _shift_terms(x, axis, wide):
    """(|x - max| per element, w per slice with keepdims), in the wide dtype.

    w is the exp-weighted mean of |x - max| over the slice elements that are
    not the max: sum(|d| e^d) / sum(e^d), d = x - max. It is how much the
    rounding of the other elements' x - max moves log(sum(exp(x - max)))."""
    xw = np.asarray(x, dtype=wide)
    if xw.ndim == 0:
        xw = xw.reshape(1)
    axes = norm_axes(axis, xw.ndim)
    if xw.size == 0:
        shape = [1 if i in axes else s for i, s in enumerate(xw.shape)]
        return np.zeros(xw.shape, wide), np.zeros(shape, wide)
    with np.errstate(all="ignore"):
        m = np.max(xw, axis=axes, keepdims=True)
        d = np.abs(xw - m)
        e = np.where((xw == m) | ~np.isfinite(d), 0, np.exp(-d))  # -inf: weight 0
        d = np.where(np.isfinite(d), d, 0)
        s = np.sum(e, axis=axes, keepdims=True)
        w = np.sum(d * e, axis=axes, keepdims=True) / np.where(s > 0, s, 1)
        w = np.where(np.isfinite(w), w, 0)
    return d, w


def bound(op, x, axis, wide, keepdims=False):
    """The ULP bound asserted for every element (see the module docstring)."""
    n = slice_length(np.shape(x), axis)
    base = 4 + (math.log2(n) / 2 if n > 0 else 0)
    d, w = _shift_terms(x, axis, wide)
    if op == "softmax":
        b = (base + d).reshape(np.shape(x))
    elif op == "log_softmax":
        b = (base + d).reshape(np.shape(x))
    else:
        b = base + 0 * w
        if np.ndim(x) == 0:
            b = b.reshape(())
        elif not keepdims:
            b = np.squeeze(b, axis=norm_axes(axis, b.ndim))
    return np.asarray(b, dtype=wide)


def check(op, got, x, axis=-1, keepdims=False, dtype=None, lse_relative=False, bound_fn=None):
    """Assert got == op(x, axis) within the bound (see the module docstring).

    x is the input as passed; like the library, it is first cast to the result
    dtype. lse_relative: measure logsumexp in ULP of the result itself (the
    contract as written; only meaningful where max >= 0 or for float32).
    Returns the array of errors in ULP."""
    got_arr = np.asarray(got)
    rdt = got_arr.dtype if dtype is None else np.dtype(dtype)
    wide = WIDER[rdt]
    xin = np.asarray(x)
    if xin.dtype != rdt:
        with np.errstate(all="ignore"):
            xin = xin.astype(rdt)
    if EXTENDED_LONG_DOUBLE or rdt != np.float64:
        ref = reference(op, xin, axis, dtype=wide, keepdims=keepdims)
    else:
        ref = reference_pairwise(op, xin, axis, keepdims=keepdims)
    scale = None
    if op == "logsumexp" and not lse_relative and xin.size:
        xw = xin.astype(wide).reshape(xin.shape or (1,))
        with np.errstate(all="ignore"):
            m = np.max(xw, axis=norm_axes(axis, xw.ndim), keepdims=keepdims).reshape(ref.shape)
            scale = np.maximum(np.abs(ref), np.abs(ref - m))  # max(|result|, log(sum exp(x - max)))
            scale = np.where(np.isfinite(scale), scale, np.abs(ref))
    err = ulp_errors(got_arr, ref, rdt, scale=scale)
    b = np.broadcast_to((bound_fn or bound)(op, xin, axis, wide, keepdims=keepdims), err.shape)
    if rdt == np.float64 and not EXTENDED_LONG_DOUBLE:
        # the float64 oracle's own error: the library's bound, plus the rounding of
        # the other elements' x - max, which it cannot undo (the library can: a two-sum)
        _, w = _shift_terms(xin, axis, wide)
        if xin.ndim == 0:
            w = w.reshape(())
        elif op == "logsumexp" and not keepdims:
            w = np.squeeze(w, axis=norm_axes(axis, w.ndim))
        b = 2 * b + 4 + 2 * w
    bad = ~(err <= b)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.where(bad, err / b, -1)), err.shape))
        raise AssertionError(
            f"{op}(axis={axis!r}) of a {xin.shape} {xin.dtype} array: {int(bad.sum())} element(s) "
            f"out of bound; first at {first}: got {got_arr[first]!r}, exact {ref[first]!r}, "
            f"error {float(err[first]):.3g} ULP > bound {float(b[first]):.3g}; worst at {worst}: "
            f"got {got_arr[worst]!r}, exact {ref[worst]!r}, error {float(err[worst]):.3g} ULP")
    return err


# ---- where= masks -----------------------------------------------------------

#: the value a masked element gets
MASKED = {"softmax": 0.0, "log_softmax": -np.inf}


def masked_reference(op, x, mask, axis, wide, keepdims=False):
    """(reference in the wide dtype, the masked x) for op(x, where=mask)."""
    x = np.asarray(x)
    mask = np.broadcast_to(mask, x.shape)
    xm = np.where(mask, x, np.array(-np.inf, x.dtype))
    ref = reference(op, xm, axis, dtype=wide, keepdims=keepdims)
    if op in MASKED:
        ref = np.where(mask, ref, MASKED[op]).astype(wide)
    else:
        m1 = mask.reshape(1) if mask.ndim == 0 else mask
        taking = np.any(m1, axis=norm_axes(axis, m1.ndim), keepdims=keepdims)
        ref = np.where(taking.reshape(np.shape(ref)), ref, -np.inf).astype(wide)
    return ref, xm


def check_masked(op, got, x, mask, axis=-1, keepdims=False):
    """Assert got == op(x, axis, where=mask) (see the module docstring)."""
    got = np.asarray(got)
    dt = got.dtype
    wide = WIDER[dt]
    x = np.asarray(x)
    if x.dtype != dt:  # byte-swapped, integer or bool input: cast first, as the library does
        with np.errstate(all="ignore"):
            x = x.astype(dt)
    mask = np.broadcast_to(mask, x.shape)
    ref, xm = masked_reference(op, x, mask, axis, wide, keepdims)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if op in MASKED:  # masked elements: exactly 0 / -inf
        bad = mask.reshape(got.shape) == 0
        assert np.all(got[bad] == MASKED[op]), f"{op}: masked elements are {got[bad][got[bad] != MASKED[op]][:5]}"
    scale = None
    if op == "logsumexp" and x.size:
        xw = xm.astype(wide).reshape(xm.shape or (1,))
        with np.errstate(all="ignore"):
            m = np.max(xw, axis=norm_axes(axis, xw.ndim), keepdims=keepdims).reshape(ref.shape)
            scale = np.maximum(np.abs(ref), np.abs(ref - m))
            scale = np.where(np.isfinite(scale), scale, np.abs(ref))
    err = ulp_errors(got, ref, dt, scale=scale)
    b = np.broadcast_to(bound(op, xm, axis, wide, keepdims=keepdims), err.shape)
    if op in MASKED:  # masked elements are checked exactly above; their |x - max| is inf or NaN
        b = np.where(mask.reshape(err.shape), b, np.inf)
    else:  # fully masked slices (-inf, matched exactly by ulp_errors)
        b = np.where(np.isnan(b), np.inf, b)
    bad = ~(err <= b)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"{op}(axis={axis!r}, where=) of a {x.shape} {x.dtype} array: {int(bad.sum())} element(s) out of "
            f"bound; first at {first}: got {got[first]!r}, exact {ref[first]!r}, error {float(err[first]):.3g} "
            f"ULP > bound {float(b[first]):.3g}")


# ---- threads -------------------------------------------------------------

def same_bits(a, b):
    """Bit-identical arrays (NaN payloads included), same shape and dtype."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    u = np.dtype(f"u{a.dtype.itemsize}")
    return np.array_equal(np.ascontiguousarray(a).view(u), np.ascontiguousarray(b).view(u))


def same_but_nan_payloads(a, b):
    """Bit-identical but for the sign and payload of NaNs, which sit in the same
    places: what a slice mixing NaN sources keeps across thread counts (README,
    Accuracy)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    nan = np.isnan(a)
    return np.array_equal(nan, np.isnan(b)) and same_bits(np.where(nan, 0, a), np.where(nan, 0, b))


def at_1_and_2_threads(fn):
    """Run fn() at 1 and at 2 threads; assert the results are bit-identical; return it."""
    with fastsoftmax.num_threads(1):
        r1 = fn()
    with fastsoftmax.num_threads(2):
        r2 = fn()
    assert same_bits(r1, r2), "result differs between 1 and 2 threads"
    return r2


@contextlib.contextmanager
def tier(name):
    old = _core.get_tier()
    _core.set_tier(name)
    try:
        yield name
    finally:
        _core.set_tier(old)


# ---- layouts -------------------------------------------------------------

LAYOUTS = ("C", "F", "transposed", "stepped", "negative", "middle")


def make_layout(values, layout):
    """An array equal to `values` (same shape) with the given memory layout.

    C: contiguous.  F: Fortran order.  transposed: a .T view of a C array
    (the reversed axes are the contiguous ones).  stepped: every dimension
    sliced with a step of 2 or 3 out of a larger buffer.  negative: every
    dimension reversed (negative strides).  middle: a C buffer sliced with a
    step in one middle dimension only (non-contiguous in the middle,
    unit stride on the last axis)."""
    v = np.asarray(values)
    if v.ndim == 0:
        return v.copy()  # a 0-d array has one layout
    if layout == "C":
        out = np.ascontiguousarray(v)
    elif layout == "F":
        out = np.asfortranarray(v)
    elif layout == "transposed":
        out = np.ascontiguousarray(v.T).T
    elif layout == "stepped":
        steps = [2 + (d % 2) for d in range(v.ndim)]
        big = np.zeros([s * k for s, k in zip(v.shape, steps)], dtype=v.dtype)
        sl = tuple(slice(None, None, k) for k in steps)
        big[sl] = v
        out = big[sl]
    elif layout == "negative":
        rev = tuple(slice(None, None, -1) for _ in range(v.ndim))
        out = np.ascontiguousarray(v[rev])[rev]
    elif layout == "middle":
        if v.ndim < 2:
            big = np.zeros(v.shape[0] * 2, v.dtype)
            big[::2] = v
            return big[::2]
        d = v.ndim // 2 - (1 if v.ndim == 2 else 0)  # 2-D: axis 0; 3-D: 1; 4-D: 1
        shape = list(v.shape)
        shape[d] *= 2
        big = np.zeros(shape, v.dtype)
        sl = tuple(slice(None, None, 2) if i == d else slice(None) for i in range(v.ndim))
        big[sl] = v
        out = big[sl]
    else:
        raise ValueError(layout)
    assert out.shape == v.shape and np.array_equal(out, v, equal_nan=True)
    return out


def random_values(rng, shape, dtype, kind="normal"):
    """Test values: 'normal' (spread so exp covers many binades), 'ties'
    (small integers: the slice max repeats), or 'wide' (results down to the
    subnormal range)."""
    if kind == "normal":
        v = rng.standard_normal(shape) * 4
    elif kind == "ties":
        v = rng.integers(-3, 3, size=shape).astype(np.float64)
    elif kind == "wide":
        lim = 110.0 if np.dtype(dtype) == np.float32 else 760.0
        v = rng.uniform(-lim, 0, size=shape)
    else:
        raise ValueError(kind)
    return np.asarray(v, dtype=dtype)
