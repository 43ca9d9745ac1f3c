"""float16 and bfloat16: computed in float32, results within 1 ULP (of the
half dtype) of the exactly rounded value, on every tier, plan and layout.

The reference is float64 NumPy (fastsoftmax._reference) on the half input,
rounded once to the half dtype. ULP: 2**(e - p + 1) of the exactly rounded
result (the smallest subnormal for subnormals and zero), p = 11 (float16) or 8
(bfloat16). Special values must match exactly (NaN pattern, infinities, exact
zeros). Every check runs at 1 and 2 threads (bit-identical).

Plans: contiguous rows short (small_rows batches and longer), long rows past
_core.LONG_SLICE_BYTES in float32-equivalent bytes (the computing type) and in
float16 bytes, a single long row split across threads, columns (axis=0: short
and tall), transposed and Fortran input, strided slices (gather), tuple axes.
"""
import math

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core, _reference

from _helpers import OPS, at_1_and_2_threads, call, check, make_layout, norm_axes, same_bits

try:
    import ml_dtypes

    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - optional extra
    ml_dtypes = None
    BF16 = None

F16 = np.dtype(np.float16)
needs_bf16 = pytest.mark.skipif(BF16 is None, reason="ml_dtypes is not installed")
HALVES = [F16] + ([BF16] if BF16 is not None else [])
#: the long-slice limit in elements: the kernels compute in float32
LONG_F32 = _core.LONG_SLICE_BYTES // 4
LONG_F16 = _core.LONG_SLICE_BYTES // 2

#: worst error seen per (dtype, op), in ULP: printed by test_zz_report (-s)
WORST = {}


def _precision(dt):
    """(p, the frexp exponent of the smallest normal) of a half dtype."""
    if dt == F16:
        return 11, -13
    return 8, -125  # bfloat16: float32's exponent range


def ulp_half(r, dt):
    p, emin = _precision(dt)
    a = np.abs(np.asarray(r, dtype=np.float64))
    with np.errstate(all="ignore"):
        _, e = np.frexp(a)
    e = np.where(a == 0, emin, np.maximum(e, emin))
    return np.ldexp(np.ones_like(a), e - p)


def half_errors(got, ref):
    """Error of got (a half dtype) against ref (float64), in ULP of the exactly
    rounded result; inf marks a special-value mismatch."""
    got = np.asarray(got)
    dt = got.dtype
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    with np.errstate(all="ignore"):
        rounded = ref.astype(dt).astype(np.float64)
        g = got.astype(np.float64)
        special = ~np.isfinite(rounded)
        err = np.abs(g - ref) / ulp_half(np.where(special, 0, rounded), dt)
        err = np.where(special | ~np.isfinite(g), np.inf, err)
        same = (np.isnan(rounded) & np.isnan(g)) | (np.isinf(rounded) & (g == rounded))
        err = np.where(special & same, 0, err)
        err = np.where((ref == 0) & (g != 0), np.inf, err)
    return err


def check_half(op, got, x, axis=-1, where=None, limit=1.0):
    """Assert op(x) (x a half array, or anything cast to got's dtype) is within
    `limit` ULP of the exactly rounded float64 result; record the worst."""
    got = np.asarray(got)
    dt = got.dtype
    x = np.asarray(x)
    xr = x.astype(dt) if x.dtype != dt else x  # dtype=: the input is cast first
    xw = xr.astype(np.float64)
    if where is not None:
        mask = np.broadcast_to(where, xw.shape)
        xw = np.where(mask, xw, -np.inf)
    ref = getattr(_reference, op)(xw, axis=norm_axes(axis, xw.ndim) if xw.ndim else -1)
    if where is not None:
        if op == "softmax":
            ref = np.where(mask, ref, 0.0)
        elif op == "log_softmax":
            ref = np.where(mask, ref, -np.inf)
        else:
            taking = np.any(mask, axis=norm_axes(axis, mask.ndim))
            ref = np.where(taking, ref, -np.inf)
    ref = np.asarray(ref).reshape(got.shape)
    err = half_errors(got, ref)
    key = (dt.name, op)
    finite = err[np.isfinite(err)]
    if finite.size:
        WORST[key] = max(WORST.get(key, 0.0), float(finite.max()))
    bad = ~(err <= limit)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise AssertionError(f"{op}(axis={axis!r}) {x.shape} {x.dtype} -> {dt}: {int(bad.sum())} element(s) "
                             f"beyond {limit} ULP; first at {i}: got {got[i]!r}, exact {ref[i]!r}, "
                             f"error {float(err[i]):.3g} ULP")
    return err


def values(rng, shape, dt, kind="normal"):
    if kind == "normal":
        v = rng.standard_normal(shape) * 4
    elif kind == "ties":
        v = rng.integers(-3, 3, size=shape).astype(np.float64)
    else:  # wide: results reach the half subnormals
        v = rng.uniform(-30, 5, size=shape)
    return np.asarray(v).astype(dt)


# ---- conversions (each tier's vector code and the portable tails) ----------------

def test_float16_conversions_exhaustive(isa):
    bits = np.arange(65536, dtype=np.uint16)
    h = bits.view(np.float16)
    f = np.empty(h.shape, np.float32)
    _core.convert(h, f)
    want = h.astype(np.float32)
    nan = np.isnan(want)
    assert np.array_equal(f[~nan].view(np.uint32), want[~nan].view(np.uint32))
    assert np.isnan(f[nan]).all()
    # float32 -> float16: every float16 value, the midpoints between neighbours
    # and one float32 ulp either side of them, subnormals, overflow, random bits
    fin = h[np.isfinite(h)].astype(np.float64)
    fin = np.unique(fin)
    mids = ((fin[1:] + fin[:-1]) / 2).astype(np.float32)
    cases = [fin.astype(np.float32), mids, np.nextafter(mids, np.float32(np.inf)),
             np.nextafter(mids, np.float32(-np.inf)),
             np.array([65504, 65519.99, 65520, 65536, 1e30, np.inf, -np.inf, 2.0 ** -25, 2.0 ** -24 * 1.5,
                       2.0 ** -26, 1e-45, -1e-45, 0.0, -0.0, 2.0 ** -14 * (1 - 2.0 ** -12)], np.float32),
             np.random.default_rng(5).integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)]
    x = np.concatenate(cases).astype(np.float32)
    for n in (x.size, 37, 5):  # whole vectors and tails
        xs = np.ascontiguousarray(x[:n])
        y = np.empty(n, np.float16)
        _core.convert(xs, y)
        with np.errstate(all="ignore"):
            want = xs.astype(np.float16)
        nan = np.isnan(want)
        assert np.array_equal(y[~nan].view(np.uint16), want[~nan].view(np.uint16))
        assert np.isnan(y[nan]).all()


@needs_bf16
def test_bfloat16_conversions(isa):
    bits = np.arange(65536, dtype=np.uint16)
    b = bits.view(BF16)
    f = np.empty(b.shape, np.float32)
    _core.convert(b, f)
    assert np.array_equal(f.view(np.uint32), bits.astype(np.uint32) << 16)
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.integers(0, 2 ** 32, 300_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
                        (bits.astype(np.uint32) << 16 | 0x8000).view(np.float32),  # exact midpoints
                        np.array([np.inf, -np.inf, 3.4e38, -0.0, 1e-45], np.float32)])
    for n in (x.size, 21):
        xs = np.ascontiguousarray(x[:n])
        y = np.empty(n, BF16)
        _core.convert(xs, y)
        with np.errstate(invalid="ignore"):
            want = xs.astype(BF16)
        nan = np.isnan(xs)
        assert np.array_equal(y[~nan].view(np.uint16), want[~nan].view(np.uint16))
        assert np.isnan(y[nan].astype(np.float32)).all()


# ---- exact cases --------------------------------------------------------------------

@pytest.mark.parametrize("n", [70_000, LONG_F32 + 3, LONG_F16 + 5])
def test_zeros_exact(isa, n):
    """A float16 row of n zeros: softmax is exactly the float16 nearest 1/n,
    log_softmax the nearest -log(n), logsumexp log(n): short and both long paths."""
    x = np.zeros(n, np.float16)
    s = at_1_and_2_threads(lambda: fastsoftmax.softmax(x))
    ls = at_1_and_2_threads(lambda: fastsoftmax.log_softmax(x))
    lse = at_1_and_2_threads(lambda: fastsoftmax.logsumexp(x))
    assert s.dtype == ls.dtype == lse.dtype == np.float16
    assert np.all(s == np.float16(1 / n)) and np.all(ls == np.float16(-math.log(n)))
    assert lse == np.float16(math.log(n))
    if n == 70_000:
        assert np.float16(1 / n) == np.float16(1.43e-5) and np.float16(-math.log(n)) == np.float16(-11.16)
        assert float(lse) == pytest.approx(11.16, abs=0.005)
    # as columns too, and the same through bfloat16
    xc = np.zeros((min(n, 70_000), 3), np.float16)
    sc = at_1_and_2_threads(lambda: fastsoftmax.softmax(xc, axis=0))
    assert np.all(sc == np.float16(1 / xc.shape[0]))


# ---- accuracy over plans and layouts -----------------------------------------------

ROW_SHAPES = [(50, 1), (40, 3), (33, 16), (20, 17), (12, 64), (9, 100), (7, 129), (5, 1000), (3, 4097)]


@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
@pytest.mark.parametrize("op", OPS)
def test_rows_and_layouts(isa, op, dt, rng):
    for shape in ROW_SHAPES:
        for kind in ("normal", "ties", "wide"):
            v = values(rng, shape, dt, kind)
            for layout in ("C", "F", "transposed", "stepped", "negative"):
                x = make_layout(v, layout)
                for axis in (-1, 0):
                    got = at_1_and_2_threads(lambda: call(op, x, axis=axis))
                    assert np.asarray(got).dtype == dt
                    check_half(op, got, x, axis)


@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
@pytest.mark.parametrize("op", OPS)
def test_columns_short_and_tall(isa, op, dt, rng):
    for shape in [(5, 70), (300, 33), (3000, 40), (2100, 5)]:  # tall: > 2048 rows in float32 tiles
        v = values(rng, shape, dt)
        for x in (v, make_layout(v, "stepped"), make_layout(v, "middle")):
            got = at_1_and_2_threads(lambda: call(op, x, axis=0))
            check_half(op, got, x, 0)
    v = values(rng, (4, 6, 50), dt, "wide")
    for axis in [(0, 2), (0, 1), None, (1,)]:
        got = at_1_and_2_threads(lambda: call(op, v, axis=axis))
        check_half(op, got, v, axis)


@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
@pytest.mark.parametrize("n", [LONG_F32 + 777, LONG_F16 + 33])
def test_long_rows(isa, dt, n, rng):
    """Past the long-slice limit in float32-equivalent bytes and in float16 bytes:
    several rows (one per thread), one row split across threads, strided."""
    v = values(rng, (2, n), dt)
    for op in OPS:
        got = at_1_and_2_threads(lambda: call(op, v))
        check_half(op, got, v)
        one = v[:1]
        got = at_1_and_2_threads(lambda: call(op, one))
        check_half(op, got, one)
    s = v[:, ::3]  # gathered blocks
    got = at_1_and_2_threads(lambda: fastsoftmax.softmax(s))
    check_half("softmax", got, s)


# ---- special values -----------------------------------------------------------------

@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
@pytest.mark.parametrize("op", OPS)
def test_special_values(isa, op, dt):
    big = float(np.finfo(np.float16).max) if dt == F16 else 3.3e38
    tiny = 2.0 ** -24 if dt == F16 else 2.0 ** -133  # smallest subnormal
    rows = [
        [0.0, 1.0, np.nan, 2.0], [np.inf, 0.0, 1.0, 2.0], [-np.inf, 0.0, 1.0, -np.inf], [-np.inf] * 4,
        [big, big, 0.0, -big], [big, -big, -big, -big], [-big, -big, -big, -big], [tiny, -tiny, 0.0, tiny * 3],
        [0.0, -10.0, -16.0, -17.0],  # softmax results down to the float16 subnormals
        [0.0, -20.0, -50.0, -100.0], [np.inf, np.inf, 0.0, 0.0], [np.nan, np.inf, -np.inf, 0.0],
    ]
    x = np.array(rows, np.float64).astype(dt)
    for layout in ("C", "transposed", "stepped"):
        xl = make_layout(x, layout)
        got = at_1_and_2_threads(lambda: call(op, xl))
        check_half(op, got, xl)
        got = at_1_and_2_threads(lambda: call(op, np.ascontiguousarray(xl.T), axis=0))
        check_half(op, got, xl.T, 0)
    long = np.zeros(LONG_F32 + 10, dt)
    long[7] = np.nan
    assert np.isnan(np.asarray(call(op, long), np.float32)).all()
    long[7] = big
    check_half(op, call(op, long), long)


def test_subnormal_outputs_float16():
    x = np.zeros(1000, np.float16)
    x[0] = 10  # the other 999: exp(-10) / (e^0 + ...) ~ 4.5e-5 / ... reach the subnormal range
    x[1:] = -7
    y = fastsoftmax.softmax(x)
    assert 0 < y[5] < np.finfo(np.float16).tiny
    check_half("softmax", y, x)


# ---- dtype= conversions, out=, where= --------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_dtype_conversions(isa, op, rng):
    v = rng.standard_normal((20, 300)) * 5
    v[0, :4] = [65519.9, 65520.0, 1e-9, -1e30]  # rounding at the edges of float16
    v[1, :3] = [1 + 2.0 ** -11, 1 + 2.0 ** -11 + 2.0 ** -40, 2.0 ** -25]  # ties and just past them
    for xin in (v, v.astype(np.float32)):
        for layout in ("C", "transposed"):
            x = make_layout(xin, layout)
            for axis in (-1, 0):
                got = at_1_and_2_threads(lambda: call(op, x, axis=axis, dtype=np.float16))
                with np.errstate(over="ignore"):  # the same layout: the same plan, the same sums
                    want = call(op, make_layout(xin.astype(np.float16), layout), axis=axis)
                assert same_bits(got, want), (xin.dtype, layout, axis)  # cast first, then computed
    h = (rng.standard_normal((20, 300)) * 5).astype(np.float16)
    for wide in (np.float32, np.float64):
        for layout in ("C", "stepped", "transposed"):
            x = make_layout(h, layout)
            for axis in (-1, 0):
                got = at_1_and_2_threads(lambda: call(op, x, axis=axis, dtype=wide))
                assert np.asarray(got).dtype == wide
                # float16 read exactly, computed in the wider dtype: its contract
                # (the plan may differ from the wide array's, e.g. short rows in registers)
                check(op, got, x.astype(wide), axis)
                if layout == "C":
                    assert same_bits(got, call(op, h.astype(wide), axis=axis))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_out_and_in_place(isa, op, rng):
    x = values(rng, (30, 200), F16)
    want = call(op, x)
    out = np.empty_like(x)
    assert call(op, x, out=out) is out and same_bits(out, want)
    outF = np.empty(x.shape, np.float16, order="F")
    call(op, x, out=outF)
    assert same_bits(outF, want)
    y = x.copy()
    call(op, y, out=y)  # in place
    assert same_bits(y, want)
    yc = x.copy()
    call(op, yc, axis=0, out=yc)
    assert same_bits(yc, call(op, x, axis=0))
    with pytest.raises(TypeError, match="dtype"):
        call(op, x, out=np.empty(x.shape, np.float32))
    out32 = np.empty(x.shape, np.float32)
    call(op, x, out=out32, dtype=np.float32)
    assert same_bits(out32, call(op, x.astype(np.float32)))
    out16 = np.empty(x.shape, np.float16)
    call(op, x.astype(np.float32), out=out16, dtype=np.float16)
    assert same_bits(out16, want)


def test_logsumexp_out_keepdims(rng):
    x = values(rng, (7, 50), F16)
    out = np.empty(7, np.float16)
    fastsoftmax.logsumexp(x, axis=1, out=out)
    check_half("logsumexp", out, x, 1)
    k = fastsoftmax.logsumexp(x, axis=0, keepdims=True)
    assert k.shape == (1, 50) and k.dtype == np.float16
    check_half("logsumexp", k.reshape(50), x, 0)
    assert np.asarray(fastsoftmax.logsumexp(np.float16(3))).dtype == np.float16


@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
@pytest.mark.parametrize("op", OPS)
def test_where(isa, op, dt, rng):
    for shape in [(16, 40), (9, 3000), (3000, 20)]:
        v = values(rng, shape, dt)
        mask = rng.random(shape) < 0.7
        mask[0] = False  # a fully masked row
        for axis in (-1, 0):
            for x, m in ((v, mask), (make_layout(v, "stepped"), make_layout(mask, "transposed")),
                         (v, mask[:1]), (v, mask[:, :1])):
                got = at_1_and_2_threads(lambda: call(op, x, axis=axis, where=m))
                check_half(op, got, x, axis, where=m)
    long = values(rng, (LONG_F32 + 100,), dt)
    m = rng.random(long.shape) < 0.5
    got = at_1_and_2_threads(lambda: call(op, long, where=m))
    check_half(op, got, long, where=m)


# ---- bfloat16 specifics ----------------------------------------------------------------

@needs_bf16
@pytest.mark.parametrize("op", OPS)
def test_bfloat16_dtypes(isa, op, rng):
    v = rng.standard_normal((10, 130)) * 3
    x32 = v.astype(np.float32)
    got = call(op, x32, dtype=BF16)
    assert np.asarray(got).dtype == BF16
    assert same_bits(got, call(op, x32.astype(BF16)))
    got = call(op, v, dtype=BF16)  # float64 -> bfloat16: cast first, as dtype= says
    assert same_bits(got, call(op, v.astype(BF16)))
    xb = x32.astype(BF16)
    for wide in (np.float32, np.float64):
        got = call(op, xb, axis=0, dtype=wide)
        check(op, got, xb.astype(wide), 0)
    with pytest.raises(TypeError):
        call(op, xb, out=np.empty(np.shape(call(op, xb)), np.float16))


def test_half_backward_via_float32(rng):
    x = values(rng, (6, 40), F16)
    y = fastsoftmax.softmax(x)
    g = values(rng, (6, 40), F16)
    dx = fastsoftmax.softmax_backward(y, g)
    assert dx.dtype == np.float16
    want = fastsoftmax.softmax_backward(y.astype(np.float32), g.astype(np.float32)).astype(np.float16)
    assert same_bits(dx, want)


def test_half_backward_mixed_dtypes(rng):
    """float16 y with a float32 grad promotes to float32 (the kernels need one dtype)."""
    y = fastsoftmax.softmax(values(rng, (4, 30), F16))
    g = rng.standard_normal((4, 30)).astype(np.float32)
    for fn in (fastsoftmax.softmax_backward, fastsoftmax.log_softmax_backward):
        yy = y if fn is fastsoftmax.softmax_backward else fastsoftmax.log_softmax(values(rng, (4, 30), F16))
        dx = fn(yy, g)
        assert dx.dtype == np.float32
        assert same_bits(dx, fn(yy.astype(np.float32), g))


# ---- property: any shape, axis, layout and float16 values ----------------------------

try:
    from hypothesis import given, strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    given = None

if given is not None:
    @given(data=st.data())
    def test_property_float16_within_1_ulp(data):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=40))
        x = data.draw(hnp.arrays(np.float16, shape, elements=st.floats(
            -60000, 60000, width=16, allow_nan=False, allow_infinity=False)))
        if data.draw(st.booleans()):  # specials too
            x = x.copy()
            x.flat[data.draw(st.integers(0, x.size - 1))] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        layout = data.draw(st.sampled_from(["C", "F", "transposed", "stepped", "negative"]))
        xl = make_layout(x, layout)
        axis = data.draw(st.sampled_from([-1, 0, None] + ([(0, 1)] if x.ndim >= 2 else [])))
        op = data.draw(st.sampled_from(OPS))
        got = at_1_and_2_threads(lambda: call(op, xl, axis=axis))
        check_half(op, got, xl, axis)


def test_zz_report():
    """The worst errors this run saw (shown with -s); the bound is 1 ULP."""
    for (dt, op), e in sorted(WORST.items()):
        print(f"max error {dt} {op}: {e:.5f} ULP")
    assert all(e <= 1.0 for e in WORST.values())
