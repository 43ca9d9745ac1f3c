"""Special values, extreme magnitudes and results near zero, on every plan and tier.

The contract: IEEE arithmetic of the textbook formula exp(x - max) / sum(...).
A NaN in a slice makes it NaN; a slice holding +inf is NaN; a slice of all
-inf is NaN; -inf next to finite values gives exactly 0 (softmax) / -inf
(log_softmax). logsumexp is NaN with a NaN, else +inf with a +inf, else -inf
if all are -inf. Huge finite inputs (+-3e38) never overflow where the true
result fits; subnormal results are kept (no flush to zero); results near 0
keep their relative accuracy (logsumexp([0, -40]) = 4.248e-18). No NumPy
warnings are emitted. NaN patterns match scipy.special where scipy agrees
with the contract (scipy's log_softmax is not NaN at a -inf next to a +inf).
"""
import math
import warnings

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core
from _helpers import OPS, WIDER, call, check, reference, ulp_errors

NAN, INF = np.nan, np.inf
LONG = {np.float32: _core.LONG_SLICE_BYTES // 4, np.float64: _core.LONG_SLICE_BYTES // 8}


# ---- the patterns: one per slice, on every plan ----------------------------

def pattern_slices(n, dtype, rng):
    """(k, n) slices, one pattern each: special values put at the first, the
    middle and the last position (the last is in a vector tail for most n)."""
    rows = []
    for p in sorted({0, n // 2, n - 1}):
        def put(*vals):
            r = rng.standard_normal(n) * 3
            for i, val in enumerate(vals):
                r[(p + i * (n // 3 + 1)) % n] = val
            return r
        rows += [
            put(),              # all finite
            put(NAN),           # a NaN
            put(INF),           # a +inf
            put(-INF),          # a -inf among finite values
            put(INF, -INF),     # +inf and -inf
            put(NAN, INF),      # NaN and +inf
            put(INF, INF),      # two +inf
            put(-INF, NAN),     # -inf and NaN
        ]
    rows.append(np.full(n, -INF))               # all -inf
    one = np.full(n, -INF)
    one[n - 1] = 2.5
    rows.append(one)                            # a single finite value among -inf
    one = np.full(n, -INF)
    one[0] = -1e30
    rows.append(one)
    rows.append(np.full(n, 7.0))                # all equal: every element ties with the max
    with np.errstate(over="ignore"):
        return np.array(rows, dtype=dtype)


def plan_views(dtype, rng, slices=pattern_slices):
    """(name, x, axis) covering every plan of src/driver.cpp: slices(n, dtype,
    rng) gives the (k, n) slices."""
    long = LONG[dtype] + 100
    out = []
    out.append(("short rows", slices(13, dtype, rng), -1))
    out.append(("rows", slices(300, dtype, rng), -1))
    out.append(("columns", np.ascontiguousarray(slices(70, dtype, rng).T), 0))
    cols = np.ascontiguousarray(slices(9000, dtype, rng).T)  # tall: two-sweep columns
    out.append(("tall columns", cols, 0))
    g = slices(41, dtype, rng)
    gb = np.zeros((g.shape[0] * 2, 82), dtype)
    gb[::2, ::2] = g
    out.append(("gather", gb[::2, ::2], -1))
    out.append(("long rows", slices(long, dtype, rng), -1))
    return out


def long_single_rows(dtype, rng):
    """Single long rows: split across threads by fixed blocks."""
    x = pattern_slices(LONG[dtype] + 77, dtype, rng)  # > LONG: blocks split across threads
    return [x[i] for i in range(x.shape[0])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_special_values_every_plan(isa, op, dtype, rng):
    """check() compares NaN / inf patterns and exact zeros exactly."""
    for name, x, axis in plan_views(dtype, rng):
        with np.errstate(all="raise"):
            y = call(op, x, axis)
        check(op, y, x, axis)


#: where the layers' fast exp ends (src/exp_constants.hpp fast_lowest): below
#: it 2^k no longer fits p's exponent field, and results go subnormal
FAST_LOWEST = {np.float32: -86.5, np.float64: -707.0}


def edge_slices(n, dtype, rng):
    """Slices whose x - max crosses the fast exp's bound, a few ULP either
    side and by steps down to subnormal results, and slices with one NaN of
    a payload the fast exp would carry into the exponent field if it let the
    NaN through (sign either way)."""
    lo = dtype(FAST_LOWEST[dtype])
    up, down = [lo], [lo]
    for _ in range(4):
        up.append(np.nextafter(up[-1], dtype(0)))
        down.append(np.nextafter(down[-1], dtype(-INF)))
    near = np.array(up + down[1:], dtype)  # the bound and 4 ULP either side
    ramps = [np.linspace(lo + 4, lo - 16, n).astype(dtype),  # across the bound into the subnormals
             np.linspace(lo, lo - 2, n).astype(dtype)]  # past it in small steps: 2^k below p's exponent
    rows = []
    for shift in (dtype(0), dtype(3.25)):
        r = np.resize(near, n) + shift
        r[n // 2] = shift  # the max
        rows.append(r)
        for ramp in ramps:
            r = ramp + shift
            r[0] = shift
            rows.append(r)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    one = bits(1)
    payloads = ([0x7FC00001, 0x7FC001FF, 0xFFC00123] if dtype == np.float32
                else [0x7FF8000000000001, 0x7FF80000000007FF, 0xFFF8000000000123])
    for pl in payloads:
        r = rng.standard_normal(n).astype(dtype) * 3
        r[n // 3] = np.array([pl], bits).view(dtype)[0]
        assert np.isnan(r[n // 3]) and bool(np.array([pl], bits)[0] & one)
        rows.append(r)
    return np.array(rows, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_fast_exp_edges_every_plan(isa, op, dtype, rng):
    """The exp sweeps test four vectors at once for the fast exp (AVX2 float32:
    m - x as unsigned bits): just past the bound, and NaN whatever its payload,
    must take the general exp."""
    for name, x, axis in plan_views(dtype, rng, edge_slices):
        with np.errstate(all="raise"):
            y = call(op, x, axis)
        check(op, y, x, axis)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_special_values_single_long_rows(isa, op, dtype, rng, threads):
    for x in long_single_rows(dtype, rng):
        y = threads(lambda: call(op, x))
        check(op, y, x, -1)


@pytest.mark.parametrize("op", OPS)
def test_special_rules_by_hand(isa, op):
    """The rules spelled out on tiny vectors (float64 and float32)."""
    for dt in (np.float32, np.float64):
        f = lambda v: call(op, np.array(v, dt))  # noqa: E731
        if op == "softmax":
            assert np.isnan(f([1, NAN, 2])).all()
            assert np.isnan(f([1, INF, 2])).all()
            assert np.isnan(f([-INF, -INF])).all()
            y = f([-INF, 0.0, 1.0])
            assert y[0] == 0 and not np.signbit(y[0])
            np.testing.assert_allclose(y[1:], [1 / (1 + math.e), math.e / (1 + math.e)], rtol=1e-6)
            np.testing.assert_array_equal(f([-INF, 5.0]), [0.0, 1.0])
        elif op == "log_softmax":
            assert np.isnan(f([1, NAN, 2])).all()
            assert np.isnan(f([1, INF, 2])).all()
            assert np.isnan(f([-INF, INF])).all()
            assert np.isnan(f([-INF, -INF])).all()
            np.testing.assert_array_equal(f([-INF, 5.0]), [-INF, 0.0])
        else:
            assert np.isnan(f([1, NAN, 2]))
            assert np.isnan(f([NAN, INF]))
            assert np.isnan(f([-INF, NAN]))
            assert f([1, INF, 2]) == INF
            assert f([-INF, INF]) == INF
            assert f([-INF, -INF]) == -INF
            assert f([-INF, 5.0]) == 5.0


def test_nan_and_inf_do_not_leak_into_other_slices(isa):
    x = np.zeros((4, 5))
    x[1, 2] = NAN
    x[2, 0] = INF
    for op in OPS:
        good = call(op, np.zeros(5))
        for y in (call(op, x),                                   # rows
                  call(op, np.asfortranarray(x)),                # columns plan
                  call(op, x[::-1, ::-1])[::-1]):                # reversed (rows flipped back)
            np.testing.assert_allclose(y[0], good, rtol=1e-15)
            np.testing.assert_allclose(y[3], good, rtol=1e-15)
            assert np.isnan(y[1]).all()
            assert y[2] == INF if op == "logsumexp" else np.isnan(y[2]).all()
        check(op, call(op, x.T, 0), x.T, 0)


# ---- huge and tiny magnitudes -----------------------------------------------

BIG = {np.float32: np.float32(3e38), np.float64: np.float64(1.7e308)}


@pytest.mark.parametrize("layout", ["row", "column"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_finite_inputs_do_not_overflow(isa, dtype, layout):
    b = BIG[dtype]
    top = np.finfo(dtype).max
    cases = [[b, b], [b, -b], [-b, -b], [top, top, top], [top, -top], [b, b / 2], [-b, 0]]

    def run(op, v):
        x = np.array(v, dtype)
        if layout == "column":
            xc = np.ascontiguousarray(np.stack([x, x], axis=1))
            y = call(op, xc, 0)
            return y[..., 0], x
        return call(op, x), x

    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        for v in cases:
            for op in OPS:
                y, x = run(op, v)
                check(op, y, x)
        np.testing.assert_array_equal(run("softmax", [b, b])[0], [0.5, 0.5])
        np.testing.assert_array_equal(run("softmax", [b, -b])[0], [1.0, 0.0])
        np.testing.assert_array_equal(run("softmax", [top, -top])[0], [1.0, 0.0])
        assert run("logsumexp", [top, top])[0] == top         # max + log 2 rounds to max
        assert run("logsumexp", [-b, -b])[0] == -b
        ls = run("log_softmax", [b, b])[0]
        np.testing.assert_allclose(ls, [-math.log(2)] * 2, rtol=1e-6)
        # the true -2b does not fit: IEEE rounding gives -inf, and the max stays exactly 0
        np.testing.assert_array_equal(run("log_softmax", [b, -b])[0], [0.0, -INF])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_results_are_kept(isa, dtype):
    """exp(x - max) in the subnormal range is not flushed to zero."""
    d = -100.0 if dtype == np.float32 else -740.0
    tiny = np.finfo(dtype).smallest_normal
    for x in (np.array([0.0, d], dtype), np.ascontiguousarray(np.array([[0.0] * 3, [d] * 3], dtype))):
        axis = -1 if x.ndim == 1 else 0
        y = call("softmax", x, axis)
        check("softmax", y, x, axis)
        small = y[1] if x.ndim == 1 else y[1, 0]
        exact = reference("softmax", x, axis, WIDER[np.dtype(dtype)])
        exact = exact[1] if x.ndim == 1 else exact[1, 0]
        assert exact > 0 and 0 < small < tiny  # kept, not flushed to zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_inputs_are_not_flushed(isa, dtype):
    s = np.finfo(dtype).smallest_subnormal
    for n in (1, 3, 20):
        x = np.full(n, -s, dtype)
        assert fastsoftmax.logsumexp(x[:1]) == -s          # one element: exactly x
        y = fastsoftmax.logsumexp(np.r_[x[:1], np.array([-INF] * (n - 1), dtype)])
        assert y == -s and y.dtype == dtype
        np.testing.assert_array_equal(fastsoftmax.log_softmax(x[:1]), [0.0])
    x = np.array([s, 0.0, -s], dtype)
    for op in OPS:
        check(op, call(op, x), x)


def test_results_underflowing_to_zero(isa):
    """exp(x - max) below every subnormal is exactly 0, never negative or NaN."""
    for dt, d in ((np.float32, -200.0), (np.float64, -1000.0)):
        y = fastsoftmax.softmax(np.array([0.0, d, 2 * d], dt))
        np.testing.assert_array_equal(y, np.array([1.0, 0.0, 0.0], dt))
        np.testing.assert_array_equal(fastsoftmax.log_softmax(np.array([0.0, d], dt)), np.array([0.0, d], dt))


# ---- results near zero ------------------------------------------------------

@pytest.mark.parametrize("layout", ["row", "column", "long row"])
def test_logsumexp_near_zero(isa, layout):
    """logsumexp([0, -40]) = log1p(exp(-40)) = 4.248354255291589e-18, not 0."""
    exact = 4.248354255291589e-18
    for dt in (np.float64, np.float32):
        x = np.array([0.0, -40.0], dt)
        if layout == "column":
            got = fastsoftmax.logsumexp(np.ascontiguousarray(np.stack([x] * 5, 1)), axis=0)[3]
        elif layout == "long row":
            xl = np.full(LONG[dt] + 5, -INF, dt)
            xl[:2] = x
            xl[-1] = -40.0
            got = fastsoftmax.logsumexp(xl)
            exact2 = float(reference("logsumexp", xl, -1, WIDER[np.dtype(dt)]))
            assert got.dtype == dt and abs(float(got) - exact2) <= 4 * np.spacing(dt(exact2))
            continue
        else:
            got = fastsoftmax.logsumexp(x)
        assert got.dtype == dt
        assert abs(float(got) - exact) <= 4 * float(np.spacing(dt(exact))), got


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_near_zero(isa, dtype):
    """The max element's log_softmax is -log1p(sum of the rest): relative accuracy near 0."""
    for d in (-20.0, -30.0, -40.0, -60.0):
        for n_rest in (1, 5, 40):
            x = np.r_[np.zeros(1), np.full(n_rest, d)].astype(dtype)
            for xx, axis in ((x, -1), (np.ascontiguousarray(np.stack([x, x], 1)), 0)):
                y = call("log_softmax", xx, axis)
                err = check("log_softmax", y, xx, axis)
                top = y[0] if xx.ndim == 1 else y[0, 0]
                assert top < 0  # -n_rest * exp(d) is far above the subnormals
                assert float(np.max(err)) <= 4 + math.log2(n_rest + 1) / 2


@pytest.mark.parametrize("n", [2, 5, 16, 33])
def test_short_rows_own_log1p(isa, n, rng):
    """Short rows take log1p(rest) from the kernels' own branch-free log1p
    (kernels.hpp log1p_rest; within 1.03 ULP of double). float64 rows
    [0, t, ..., t] (rest (n - 1) exp(t) from 2^-61 to 63, so the reduced
    argument covers [sqrt(2)/2, sqrt(2)) many times over), in a batch and one
    at a time: logsumexp within 3 ULP of the long double value (the exp of
    t and the log1p), log_softmax's max element too; rows of n zeros (rest
    n - 1, no exp in it) within 1.5."""
    ld = np.longdouble
    t = np.concatenate([rng.uniform(-42.0, 0.0, 3000), -np.log(np.arange(1, 200)) / 7])
    x = np.zeros((t.size, n))
    x[:, 1:] = t[:, None]
    rest = (n - 1) * np.exp(t.astype(ld))
    exact = np.log1p(rest)
    for op, pick, sign in (("logsumexp", lambda y: y, 1), ("log_softmax", lambda y: y[..., 0], -1)):
        batch = pick(call(op, x))
        one = np.array([pick(call(op, row)) for row in x[:400]])
        assert np.array_equal(batch[:400], one), op
        err = ulp_errors(sign * batch, exact, np.float64)
        worst = int(np.argmax(err))
        assert float(err[worst]) <= 3, (op, float(err[worst]), float(t[worst]))
    zeros = np.zeros((64, n))
    for op, pick in (("logsumexp", lambda y: y), ("log_softmax", lambda y: -y[..., 0])):
        err = ulp_errors(pick(call(op, zeros)), np.log(ld(n)) + np.zeros(64, ld), np.float64)
        assert float(np.max(err)) <= 1.5, op


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_relative_bound_without_cancellation(isa, dtype, rng):
    """Where max >= 0, m + log1p(s) does not cancel: the contract's relative bound holds."""
    for n in (1, 2, 7, 33, 300, 5000):
        x = rng.standard_normal((4, n)) * 5
        x -= x.max(axis=-1, keepdims=True)  # max exactly 0: the result is log(sum), maybe tiny
        x[:, 0] += rng.uniform(0, 1e-3, 4)   # a small positive max
        x = x.astype(dtype)
        check("logsumexp", call("logsumexp", x), x, lse_relative=True)
        check("logsumexp", call("logsumexp", x.T, 0), x.T, 0, lse_relative=True)


def test_logsumexp_cancellation_is_absolute(isa):
    """max < 0 and result ~ 0: logsumexp([-ln 2, -ln 2]) = ln 2 - fl(ln 2) = 2.3e-17
    exactly, but no float64 evaluation of m + log1p(1) can see that (the sum
    itself carries an error of ulp(ln 2)). We assert the absolute bound (ULP of
    log(sum exp(x - max))) and record the limitation; see the module docstring
    of _helpers.py and the report."""
    x = np.array([-math.log(2), -math.log(2)])
    y = fastsoftmax.logsumexp(x)
    assert abs(float(y) - 2.3201926491189795e-17) <= 4 * np.spacing(math.log(2))


# ---- no warnings, and agreement with scipy -----------------------------------

SPECIAL_INPUTS = [
    [NAN, 1.0], [INF, 1.0], [-INF, -INF], [-INF, 1.0], [INF, -INF], [INF, INF],
    [NAN, INF], [3e38, -3e38], [1e-45, 0.0], [0.0, -200.0], [0.0, -1000.0],
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_numpy_warnings(isa, dtype):
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        for v in SPECIAL_INPUTS:
            with np.errstate(all="ignore"):
                x = np.array(v, dtype)
            for op in OPS:
                call(op, x)
                call(op, np.stack([x] * 3), 0)
                call(op, x, dtype=np.float64)
            fastsoftmax.logsumexp(np.empty((3, 0), dtype))  # an empty slice: -inf, no warning
            fastsoftmax.softmax(np.empty((0, 3), dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_pattern_matches_scipy(isa, dtype, rng):
    sp = pytest.importorskip("scipy.special")
    x = pattern_slices(23, dtype, rng)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_sm = sp.softmax(x.astype(np.float64), axis=-1)
        ref_lse = sp.logsumexp(x.astype(np.float64), axis=-1)
        ref_ls = sp.log_softmax(x.astype(np.float64), axis=-1)
    y = fastsoftmax.softmax(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref_sm))
    np.testing.assert_array_equal(y == 0, ref_sm == 0)
    lse = fastsoftmax.logsumexp(x)
    np.testing.assert_array_equal(np.isnan(lse), np.isnan(ref_lse))
    np.testing.assert_array_equal(lse[np.isinf(lse)], ref_lse[np.isinf(lse)])
    np.testing.assert_array_equal(np.isinf(lse), np.isinf(ref_lse))
    # scipy's log_softmax differs from the contract in slices holding +inf
    # (it gives -inf at a -inf there); compare the other slices
    ls = fastsoftmax.log_softmax(x)
    plain = ~np.any(x == INF, axis=-1)
    np.testing.assert_array_equal(np.isnan(ls[plain]), np.isnan(ref_ls[plain]))
    np.testing.assert_array_equal(np.isneginf(ls[plain]), np.isneginf(ref_ls[plain]))
    assert np.isnan(ls[~plain]).all()


def test_ulp_helper_self_test():
    """The ULP helper itself, so a broken helper cannot hide library bugs."""
    f32 = np.float32
    sub = float(np.finfo(f32).smallest_subnormal)
    ref = np.array([1.0, NAN, INF, 0.0, sub, 0.5], np.float64)
    good = ref.astype(f32)
    assert np.all(ulp_errors(good, ref, f32) == 0)
    bads = [np.nextafter(f32(1), f32(2)), f32(0), -INF, f32(sub), f32(0), f32(0.5) * (1 + 2**-23)]
    for i, bad in enumerate(bads):
        g = good.copy()
        g[i] = bad
        assert ulp_errors(g, ref, f32)[i] >= 1, (i, bad)
    # the subnormal ulp is fixed: 3 subnormal steps are 2 ULP from 1 step
    assert ulp_errors(np.array([3 * sub], f32), np.array([sub]), f32)[0] == 2
    # one step above 1.0 is 1 ULP (of 1.0); one step below 1.0 is 1 ULP (of the result below 1)
    assert ulp_errors(np.array([1 + 2**-23], f32), np.array([1.0]), f32)[0] == 1
    assert ulp_errors(np.array([1 - 2**-24], f32), np.array([1.0 - 2**-23]), f32)[0] == 1
    # float64 against a long double reference
    assert ulp_errors(np.array([1.0 + 2**-52]), np.array([1.0], np.longdouble), np.float64)[0] == 1
    # the bound: softmax and log_softmax get |x - max| (value units) per element
    from _helpers import bound
    b = bound("softmax", np.array([0.0, -10.0]), -1, np.float64)
    np.testing.assert_allclose(b, [4.5, 14.5])
    b = bound("log_softmax", np.array([0.0, -10.0, -5.0]), -1, np.float64)
    np.testing.assert_allclose(b, 4 + np.log2(3) / 2 + np.array([0, 10, 5]))
