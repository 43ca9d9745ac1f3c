"""where= masks: softmax, log_softmax and logsumexp with a boolean mask.

The rules (README, "where="): a mask broadcastable to x; elements where it is
False take no part in the max or the sum, and give exactly 0 (softmax) or
-inf (log_softmax), also in out=; a slice with nothing taking part gives all
0 / all -inf / -inf (logsumexp), never NaN; a NaN or inf under the mask does
not touch its slice; the elements that take part follow the usual special
value rules. The mask is applied inside the kernels, on every tier and plan.

The oracle (_helpers.check_masked): the masked elements are set to -inf
(they then add exp(-inf) = 0 to the sum and never win the max), _reference
computes that in the wide dtype, and the results at masked elements and fully
masked slices are then set to 0 / -inf. Unmasked elements must be within the
usual ULP bounds of _helpers.py (measured with the masked x, so |x - max| is
against the masked max); masked ones must be exactly 0 / -inf.
"""

import math

import numpy as np
import pytest

import fastsoftmax
from _helpers import OPS, call, check_masked, make_layout, norm_axes, random_values, same_bits
from fastsoftmax import _core

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    HAVE_JAX = True
except Exception:  # pragma: no cover - jax is optional
    HAVE_JAX = False

LONG = _core.LONG_SLICE_BYTES


def poison_masked(x, mask, rng):
    """Put NaN, +inf and -inf at some masked positions (they must not matter)."""
    x = x.copy()
    where = np.argwhere(~np.broadcast_to(mask, x.shape))
    if len(where):
        pick = where[rng.choice(len(where), size=min(len(where), 7), replace=False)]
        for i, ix in enumerate(pick):
            x[tuple(ix)] = (np.nan, np.inf, -np.inf, 3e38 if x.dtype == np.float32 else 1e308)[i % 4]
    return x


def mask_for(kind, shape, axes, rng):
    """Masks of every broadcast kind, for an array of `shape` reduced over `axes`."""
    if kind == "full":  # random, with a fully masked slice where there is room
        m = rng.random(shape) < 0.7
        if len(shape) >= 1 and len(axes) and m.size:
            first = tuple(slice(None) if d in axes else 0 for d in range(len(shape)))
            m[first] = False
        return m
    if kind == "sparse":
        return rng.random(shape) < 0.1
    if kind == "per_slice":  # constant along the reduced axes: stride 0 there
        s = [1 if d in axes else n for d, n in enumerate(shape)]
        return rng.random(s) < 0.6
    if kind == "per_position":  # the same mask for every slice: stride 0 across them
        s = [n if d in axes else 1 for d, n in enumerate(shape)]
        m = rng.random(s) < 0.6
        if m.size:
            m.flat[0] = True
        return m
    if kind == "transposed":  # a full mask laid out the other way round: strided along the axis
        m = rng.random(shape) < 0.6
        return np.asfortranarray(m) if len(shape) > 1 else m[::-1].copy()[::-1]
    if kind == "true":
        return np.True_
    if kind == "false":
        return np.False_
    raise ValueError(kind)


MASK_KINDS = ["full", "sparse", "per_slice", "per_position", "transposed", "true", "false"]

#: plan name -> (shape function of (dtype, itemsize-aware), layout, axis)
def plan_case(plan, dtype, rng):
    item = np.dtype(dtype).itemsize
    if plan == "rows":  # contiguous rows, vector tails
        return random_values(rng, (9, 37), dtype), -1
    if plan == "small":  # rows of <= 8 vectors on every tier (small_rows), many of them
        return random_values(rng, (40, 23), dtype), -1
    if plan == "small_3d":  # short rows that are not evenly spaced (a middle step)
        return make_layout(random_values(rng, (3, 5, 11), dtype), "middle"), -1
    if plan == "long":  # above LONG_SLICE_BYTES: the two-sweep blocked path, split across threads
        return random_values(rng, (2, LONG // item + 77), dtype), -1
    if plan == "long_many":  # several long slices, one thread each
        return random_values(rng, (5, LONG // item + 9), dtype), -1
    if plan == "long_strided":  # long slices that are not contiguous: gathered blocks
        return random_values(rng, (LONG // item + 5, 2), dtype), 0
    if plan == "long_gather":  # long slices with no unit stride anywhere: blocks gathered, split across threads
        return make_layout(random_values(rng, (2, LONG // item + 21), dtype), "stepped"), -1
    if plan == "columns":  # axis 0, short columns (three sweeps in cache)
        return random_values(rng, (37, 45), dtype), 0
    if plan == "tall":  # axis 0, tall columns (streaming blocks of rows)
        return random_values(rng, (2 * 512 * 1024 // 64 // item + 13, 21), dtype), 0
    if plan == "middle_axis":  # a middle axis: columns of a 3-D array
        return random_values(rng, (3, 17, 10), dtype), 1
    if plan == "gather":  # no unit stride anywhere: slices gathered into a buffer
        return make_layout(random_values(rng, (6, 29), dtype), "stepped"), -1
    if plan == "gather_transposed":
        return make_layout(random_values(rng, (3, 4, 19), dtype), "stepped").transpose(2, 0, 1), 0
    if plan == "tuple":
        return random_values(rng, (4, 6, 7), dtype), (0, 2)
    if plan == "tuple_transposed":
        return make_layout(random_values(rng, (4, 6, 7), dtype), "transposed"), (2, 1)
    if plan == "none":
        return random_values(rng, (5, 13), dtype), None
    if plan == "empty_tuple":
        return random_values(rng, (5, 13), dtype), ()
    if plan == "big_rows":  # enough elements for two threads
        return random_values(rng, (300, 131), dtype), -1
    if plan == "big_columns":
        return random_values(rng, (131, 300), dtype), 0
    raise ValueError(plan)


PLANS = ["rows", "small", "small_3d", "long", "long_many", "long_strided", "long_gather", "columns", "tall", "middle_axis",
         "gather", "gather_transposed", "tuple", "tuple_transposed", "none", "empty_tuple", "big_rows",
         "big_columns"]
SLOW_PLANS = {"long", "long_many", "long_strided", "long_gather", "tall"}


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_where_every_plan(isa, op, dtype, plan, threads, rng):
    x, axis = plan_case(plan, dtype, rng)
    axes = norm_axes(axis, x.ndim)
    kinds = MASK_KINDS if plan not in SLOW_PLANS else ["full", "per_slice", "transposed", "false"]
    for kind in kinds:
        mask = mask_for(kind, x.shape, axes, rng)
        xp = poison_masked(x, mask, rng)
        if plan in ("gather", "gather_transposed", "small_3d", "tuple_transposed", "long_gather"):
            xp = make_layout(xp, "stepped")  # keep the input strided after poisoning
        got = threads(lambda: call(op, xp, axis, where=mask))
        check_masked(op, got, xp, mask, axis)
        if op == "logsumexp":
            gk = call(op, xp, axis, where=mask, keepdims=True)
            check_masked(op, gk, xp, mask, axis, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_all_true_mask_is_bitwise_the_unmasked_result(isa, op, dtype, rng):
    """A mask that lets everything through changes nothing, to the bit, on every plan."""
    for plan in ["rows", "small", "columns", "tall", "gather", "tuple", "long"]:
        x, axis = plan_case(plan, dtype, rng)
        for mask in (np.ones(x.shape, bool), np.ones(x.shape, bool).T.copy().T, True):
            assert same_bits(call(op, x, axis, where=mask), call(op, x, axis)), (plan, mask.__class__)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_fully_masked_slices(isa, op, dtype, rng):
    """Nothing taking part: all 0 / all -inf / -inf, never NaN, even over NaN and inf."""
    for plan in ["rows", "small", "columns", "tall", "gather", "middle_axis", "long", "tuple", "none"]:
        x, axis = plan_case(plan, dtype, rng)
        x = x.copy()
        x.flat[:: 7] = np.nan
        x.flat[3:: 11] = np.inf
        for mask in (np.zeros(x.shape, bool), False, np.zeros(x.shape, bool).T.copy().T):
            got = np.asarray(call(op, x, axis, where=mask))
            expect = {"softmax": 0.0, "log_softmax": -np.inf, "logsumexp": -np.inf}[op]
            assert np.all(got == expect), (plan, got[got != expect][:4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_specials_under_the_mask_do_not_poison(isa, op, dtype):
    x = np.array([[1.0, np.nan, 2.0, np.inf, -np.inf, 0.5],
                  [np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
                  [-np.inf, 1.0, np.inf, 1.0, -np.inf, 3.0]], dtype=dtype)
    mask = np.array([[True, False, True, False, True, True],
                     [False] * 6,
                     [True, False, False, True, False, False]])
    got = call(op, x, where=mask)
    check_masked(op, got, x, mask)
    assert not np.isnan(got).any()
    for axis in (0, None, (0, 1)):
        check_masked(op, call(op, x, axis, where=mask), x, mask, axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_specials_that_take_part_follow_the_usual_rules(isa, op, dtype):
    """NaN or +inf taking part: the slice is NaN (masked elements still 0 / -inf);
    only -inf taking part: NaN (softmax, log_softmax) or -inf (logsumexp)."""
    x = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0], [-np.inf, -np.inf, 2.0], [-np.inf, 5.0, 2.0]], dtype)
    mask = np.array([[True, True, False], [True, True, False], [True, True, False], [True, True, False]])
    got = call(op, x, where=mask)
    check_masked(op, got, x, mask)
    if op == "softmax":
        assert np.isnan(got[:3, :2]).all() and (got[:, 2] == 0).all()
        assert got[3, 0] == 0 and got[3, 1] == 1
    elif op == "log_softmax":
        assert np.isnan(got[:3, :2]).all() and (got[:, 2] == -np.inf).all()
    else:
        assert np.isnan(got[0]) and got[1] == np.inf and got[2] == -np.inf and got[3] == 5.0


@pytest.mark.parametrize("op", OPS)
def test_where_with_integer_input_and_dtype(op, rng):
    x = rng.integers(-5, 5, size=(4, 9))
    mask = rng.random((4, 9)) < 0.5
    got = call(op, x, where=mask)
    assert np.asarray(got).dtype == np.float64
    check_masked(op, got, x.astype(np.float64), mask)
    got32 = call(op, x, where=mask, dtype=np.float32)
    check_masked(op, got32, x.astype(np.float32), mask)


@pytest.mark.parametrize("op", OPS)
def test_where_0d_input(op):
    for m, expect in ((True, {"softmax": 1.0, "log_softmax": 0.0, "logsumexp": 3.0}),
                      (False, {"softmax": 0.0, "log_softmax": -np.inf, "logsumexp": -np.inf})):
        r = call(op, 3.0, where=m)
        assert type(r) is np.float64 and r == expect[op]
        r = call(op, np.float32(3.0), where=np.array(m))
        assert r.dtype == np.float32 and r == expect[op]


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_where_out_any_layout(isa, op, rng):
    for layout in ("C", "F", "stepped", "negative"):
        for dtype in (np.float32, np.float64):
            x = random_values(rng, (11, 20), dtype)
            mask = rng.random((11, 1)) < 0.5
            mask2 = rng.random((11, 20)) < 0.5
            for axis, m in ((-1, mask2), (0, mask2), (-1, mask), ((0, 1), mask2)):
                out = make_layout(np.full(x.shape, np.nan, dtype), layout)
                r = call(op, x, axis, where=m, out=out)
                assert r is out
                check_masked(op, out, x, m, axis)


def test_where_logsumexp_out(isa, rng):
    x = random_values(rng, (7, 30), np.float64)
    mask = rng.random((7, 30)) < 0.5
    mask[2] = False
    out = np.full(7, np.nan)
    assert fastsoftmax.logsumexp(x, where=mask, out=out) is out
    check_masked("logsumexp", out, x, mask)
    outk = np.full((7, 1), np.nan)
    fastsoftmax.logsumexp(x, where=mask, out=outk, keepdims=True)
    check_masked("logsumexp", outk, x, mask, keepdims=True)
    out0 = np.full(30, np.nan)
    fastsoftmax.logsumexp(x, axis=0, where=mask, out=out0[::-1])
    check_masked("logsumexp", out0[::-1], x, mask, axis=0)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_where_in_place(isa, op, rng):
    for axis in (-1, 0):
        x = random_values(rng, (9, 33), np.float32)
        mask = rng.random(x.shape) < 0.5
        expect = call(op, x, axis, where=mask)
        y = x.copy()
        assert call(op, y, axis, where=mask, out=y) is y
        assert same_bits(y, expect)


def test_mask_sharing_memory_with_out(rng):
    """A mask that is a view of out's own bytes is read before out is written."""
    buf = np.zeros((4, 8), np.float64)
    mask = buf.view(np.uint8)[:, ::8][:, :8].view(bool)  # one byte of each float64
    mask[...] = np.array([[1, 0, 1, 0, 1, 1, 0, 1]] * 4, bool)
    expect_mask = mask.copy()
    x = random_values(rng, (4, 8), np.float64)
    fastsoftmax.softmax(x, where=mask, out=buf)
    check_masked("softmax", buf, x, expect_mask)


@pytest.mark.parametrize("op", OPS)
def test_mask_errors_leave_out_untouched(op, rng):
    x = np.arange(12.0).reshape(3, 4)
    shape = (3,) if op == "logsumexp" else (3, 4)
    cases = [
        (np.ones((3, 4), np.int64), TypeError, "where= must be a boolean array, got dtype int64"),
        (np.ones((3, 4)), TypeError, "where= must be a boolean array, got dtype float64"),
        (1, TypeError, "where= must be a boolean array"),
        ([[1, 0, 1, 0]], TypeError, "where= must be a boolean array"),
        (np.ones((2, 4), bool), ValueError, "could not be broadcast"),
        (np.ones((3, 4, 1), bool), ValueError, "where= of shape (3, 4, 1) cannot be broadcast"),
        (np.ones(3, bool), ValueError, "cannot be broadcast to the input's shape (3, 4)"),
    ]
    for mask, exc, phrase in cases:
        out = rng.standard_normal(shape)
        before = out.copy()
        with pytest.raises(exc) as info:
            call(op, x, out=out, where=mask)
        assert phrase in str(info.value), str(info.value)
        assert np.array_equal(out, before)


def test_list_and_bool_masks_are_accepted():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(fastsoftmax.softmax(x, where=[True, False, True]),
                                  fastsoftmax.softmax(x, where=np.array([True, False, True])))
    assert fastsoftmax.logsumexp(x[None], where=[True, False, True]).shape == (1,)
    with pytest.raises(ValueError, match="cannot be broadcast"):  # more dimensions than x: not to x's shape
        fastsoftmax.logsumexp(x, where=[[True, False, False]])


def test_input_and_mask_are_not_modified(rng):
    x = random_values(rng, (6, 10), np.float32)
    mask = np.asfortranarray(rng.random((6, 10)) < 0.5)
    xb, mb = x.copy(), mask.copy()
    for op in OPS:
        for axis in (0, 1, None):
            call(op, x, axis, where=mask)
    assert np.array_equal(x, xb) and np.array_equal(mask, mb)


def test_causal_attention_mask(rng):
    """The README example: a causal mask on (batch, heads, query, key) scores."""
    scores = random_values(rng, (1, 3, 64, 64), np.float32)
    causal = np.tril(np.ones((64, 64), bool))
    p = fastsoftmax.softmax(scores, axis=-1, where=causal)
    check_masked("softmax", p, scores, causal)
    assert np.all(p[..., np.triu_indices(64, 1)[0], np.triu_indices(64, 1)[1]] == 0)
    np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-6)
    assert p[0, 0, 0, 0] == 1.0


# ---- against jax.nn ---------------------------------------------------------------

@pytest.mark.skipif(not HAVE_JAX, reason="jax is not installed")
@pytest.mark.parametrize("op", OPS)
def test_matches_jax(op, rng):
    """jax.nn.softmax / log_softmax / logsumexp with where=, float64, compared everywhere.

    Checked with jax 0.10.2: it gives the same values at masked positions
    (softmax 0, log_softmax -inf: it applies jnp.where(where, result, fill)
    last), the same for fully masked slices (0 / -inf / -inf) and the same NaN
    for a NaN that takes part, so the whole arrays are compared (NaN == NaN).
    Older jax releases differed at masked positions of softmax (the brief's
    warning); if a future one does again, this test says where."""
    x = random_values(rng, (6, 17), np.float64)
    mask = rng.random(x.shape) < 0.6
    mask[1] = False
    mask[2] = True
    x[3, 0], x[4, 1] = np.nan, np.inf
    mask[3, 0] = False  # a NaN under the mask
    mask[4, 1] = True  # +inf taking part: that row (softmax, log_softmax) and column are NaN
    for axis in (-1, 0):
        ours = np.asarray(call(op, x, axis, where=mask))
        if op == "logsumexp":
            theirs = np.asarray(jax.nn.logsumexp(jnp.asarray(x), axis=axis, where=jnp.asarray(mask)))
        else:
            theirs = np.asarray(getattr(jax.nn, op)(jnp.asarray(x), axis=axis, where=jnp.asarray(mask)))
        # jax's log_softmax takes log(sum) where ours takes log1p(sum - 1): near 0 its
        # results carry an absolute error of a few eps (ours keep their relative accuracy)
        atol = 1e-14 if op == "log_softmax" else 1e-300
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=atol)


# ---- backward: softmax_backward / log_softmax_backward with the forward's mask ----------

BACKWARD = ["softmax_backward", "log_softmax_backward"]


def backward_reference(op, y, g, mask, axis):
    """dx in long double: the sums over the elements that take part, 0 elsewhere."""
    axes = norm_axes(axis, y.ndim)
    mask = np.broadcast_to(mask, y.shape)
    yl = np.where(mask, np.asarray(y, np.longdouble), 0)
    gl = np.where(mask, np.asarray(g, np.longdouble), 0)
    with np.errstate(all="ignore"):
        if op == "softmax_backward":
            dx = yl * (gl - np.sum(gl * yl, axis=axes, keepdims=True))
            scale = (np.abs(gl) + np.max(np.abs(gl), axis=axes, keepdims=True)) * np.abs(yl)
        else:
            yl = np.where(mask, np.asarray(y, np.longdouble), -np.inf)
            dx = gl - np.exp(yl) * np.sum(gl, axis=axes, keepdims=True)
            scale = np.abs(gl) + np.max(np.abs(gl), axis=axes, keepdims=True)
    return np.where(mask, dx, 0), scale + np.abs(dx)


def check_backward(op, dx, y, g, mask, axis):
    mask = np.broadcast_to(mask, y.shape)
    assert np.all(dx[~mask] == 0), "masked gradients must be exactly 0"
    ref, scale = backward_reference(op, y, g, mask, axis)
    n = math.prod(y.shape[a] for a in norm_axes(axis, y.ndim)) if y.ndim else 1
    eps = np.finfo(dx.dtype).eps
    err = np.abs(dx.astype(np.longdouble) - ref) / np.where(scale > 0, scale, 1)
    assert float(np.max(err, initial=0)) <= (4 + np.log2(max(n, 1))) * eps, float(np.max(err) / eps)


def backward_inputs(op, shape, axis, mask, dtype, rng):
    x = random_values(rng, shape, dtype)
    fwd = "softmax" if op == "softmax_backward" else "log_softmax"
    y = call(fwd, x, axis, where=mask)
    g = random_values(rng, shape, dtype)
    m = np.broadcast_to(mask, shape)
    g = np.where(m, g, np.array(np.nan, dtype))  # gradients under the mask must not matter
    return y, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", BACKWARD)
def test_backward_where(isa, op, dtype, threads, rng):
    cases = [((9, 37), -1, "C"), ((37, 9), 0, "C"), ((3, 5, 11), 1, "F"), ((6, 29), -1, "stepped"),
             ((4, 6, 7), (0, 2), "C"), ((5, 13), None, "negative"), ((300, 131), -1, "C"), ((5, 4), (), "C")]
    for shape, axis, layout in cases:
        axes = norm_axes(axis, len(shape))
        for kind in ("full", "sparse", "per_slice", "per_position", "transposed", "false"):
            mask = mask_for(kind, shape, axes, rng)
            y, g = backward_inputs(op, shape, axis, mask, dtype, rng)
            y, g = make_layout(y, layout), make_layout(g, layout)
            fn = getattr(fastsoftmax, op)
            dx = threads(lambda: fn(y, g, axis, where=mask))
            assert dx.dtype == dtype and dx.shape == shape
            check_backward(op, dx, y, g, mask, axis)


@pytest.mark.parametrize("op", BACKWARD)
def test_backward_where_true_is_unmasked(op, rng):
    y, g = backward_inputs(op, (7, 40), -1, True, np.float64, rng)
    fn = getattr(fastsoftmax, op)
    for mask in (True, np.ones((7, 40), bool), np.ones((7, 40), bool).T.copy().T):
        assert same_bits(fn(y, g, where=mask), fn(y, g))


def test_log_softmax_backward_checks_only_unmasked_y(rng):
    y = fastsoftmax.log_softmax(random_values(rng, (4, 10), np.float64))
    g = random_values(rng, (4, 10), np.float64)
    mask = np.ones((4, 10), bool)
    mask[1, 3] = False
    y[1, 3] = 5.0  # above 0 but masked: fine
    dx = fastsoftmax.log_softmax_backward(y, g, where=mask)
    check_backward("log_softmax_backward", dx, y, g, mask, -1)
    y[2, 2] = 0.5  # above 0 and taking part: not a log_softmax output
    out = np.full((4, 10), 7.0)
    with pytest.raises(ValueError, match="where the mask is True"):
        fastsoftmax.log_softmax_backward(y, g, where=mask, out=out)
    assert np.all(out == 7.0)


@pytest.mark.parametrize("op", BACKWARD)
def test_backward_where_errors_and_out(op, rng):
    y, g = backward_inputs(op, (3, 4), -1, True, np.float64, rng)
    fn = getattr(fastsoftmax, op)
    for mask, exc in ((np.ones((3, 4), int), TypeError), (np.ones((4, 3), bool), ValueError)):
        out = np.full((3, 4), 7.0)
        with pytest.raises(exc, match="where="):
            fn(y, g, where=mask, out=out)
        assert np.all(out == 7.0)
    mask = np.array([True, False, True, True])
    out = np.full((3, 4), 7.0)
    assert fn(y, g, where=mask, out=out) is out
    check_backward(op, out, y, g, mask, -1)
    assert fn(y, g, where=mask, out=g) is g  # in place over grad


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_backward_where_matches_finite_differences(op, rng):
    """The masked gradient is the gradient of the masked forward (float64)."""
    x = random_values(rng, (3, 8), np.float64)
    mask = rng.random((3, 8)) < 0.6
    mask[0] = False
    mask[1, 0] = True
    g = random_values(rng, (3, 8), np.float64)
    y = call(op, x, where=mask)
    dx = getattr(fastsoftmax, op + "_backward")(y, g, where=mask)

    def loss(xx):
        yy = call(op, xx, where=mask)
        return float(np.sum(np.where(mask, g * yy, 0)))
    h = 1e-6
    for i in range(3):
        for j in range(8):
            e = np.zeros_like(x)
            e[i, j] = h
            fd = (loss(x + e) - loss(x - e)) / (2 * h)
            assert abs(fd - dx[i, j]) <= 1e-6 * (1 + abs(fd)), (i, j, fd, dx[i, j])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_special_slices_beyond_small_rows(isa, op, dtype, rng):
    """Slices longer than small_rows on every tier (and as short columns), where
    one takes part with a NaN, one with +inf, one has nothing taking part, one
    only -inf: the scaling pass then meets a NaN or inf 1/sum and must still
    write exactly 0 / -inf where the mask is."""
    for n in (200, 1001):
        x = random_values(rng, (6, n), dtype)
        mask = rng.random((6, n)) < 0.5
        x[0, 3], mask[0, 3] = np.nan, True
        x[1, 5], mask[1, 5] = np.inf, True
        mask[2] = False
        x[3] = -np.inf
        x[4, ~mask[4]] = np.nan  # NaN only under the mask
        for axis, xx, mm in ((-1, x, mask), (0, np.ascontiguousarray(x.T), np.ascontiguousarray(mask.T))):
            got = call(op, xx, axis, where=mm)
            check_masked(op, got, xx, mm, axis)
            out = np.full(xx.shape if op != "logsumexp" else np.shape(got), 5.0, dtype)
            call(op, xx, axis, where=mm, out=out)
            assert same_bits(out, got)


@pytest.mark.parametrize("op", BACKWARD)
def test_backward_where_property(op):
    """Random shapes, strides, axes and masks (the strategies of test_properties.py)."""
    from hypothesis import given, note
    from hypothesis import strategies as st
    from test_properties import axes as axes_st
    from test_properties import masks as masks_st

    @given(data=st.data())
    def prop(data):
        dtype = data.draw(st.sampled_from([np.float32, np.float64]))
        ndim = data.draw(st.integers(0, 3))
        shape = tuple(data.draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
        axis = data.draw(axes_st(ndim))
        mask = data.draw(masks_st(shape))
        layout = data.draw(st.sampled_from(["C", "F", "stepped", "negative"]))
        isa = data.draw(st.sampled_from(_core.supported_tiers()))
        seed = data.draw(st.integers(0, 2**32 - 1))
        note(f"shape={shape} axis={axis} mask={mask!r} layout={layout} isa={isa}")
        rng = np.random.default_rng(seed)
        y, g = backward_inputs(op, shape, axis, mask, dtype, rng)
        y, g = make_layout(y, layout), make_layout(g, layout)
        old = _core.get_tier()
        _core.set_tier(isa)
        try:
            dx = getattr(fastsoftmax, op)(y, g, axis, where=mask)
        finally:
            _core.set_tier(old)
        assert np.shape(dx) == shape and np.asarray(dx).dtype == dtype
        if np.size(dx) == 0:
            return
        if np.ndim(dx):
            check_backward(op, dx, y, g, mask, axis)
        else:
            check_backward(op, np.asarray(dx).reshape(1), y.reshape(1), g.reshape(1), np.reshape(mask, 1), -1)

    prop()


def test_merged_axes_mask_is_not_copied_beyond_its_extent(monkeypatch, rng):
    """Tuple axes: a mask broadcast over the kept dimensions reaches the kernel
    as a view of the caller's mask (or a copy of its own extent only)."""
    seen = []
    real = _core.run

    def spy(op, x, y, axis, nthreads, mask=None):
        seen.append(mask)
        return real(op, x, y, axis, nthreads, mask)
    monkeypatch.setattr(_core, "run", spy)
    x = random_values(rng, (5, 6, 7), np.float32)
    per_position = rng.random((6, 7)) < 0.5          # the same for every x[i]
    per_slice = rng.random((5, 1, 1)) < 0.5           # constant within each slice
    mixed = rng.random((1, 6, 1)) < 0.5               # broadcast inside the merged axes too
    # "view": the kernel reads the caller's mask; "small": a copy of the mask's own
    # extent, broadcast over the kept dimension; "copy": all axes are merged and the
    # mask repeats inside them (one stride cannot say that), so it is copied
    cases = ((per_position, (1, 2), "view"), (per_slice, (1, 2), "view"), (mixed, (1, 2), "small"),
             (mixed, (0, 2), "view"), (per_position, None, "copy"), (per_slice, (0, 1, 2), "copy"))
    for mask, axes, expect in cases:
        for op in OPS:
            seen.clear()
            got = call(op, x, axes, where=mask)
            check_masked(op, got, x, mask, axes)
            m = seen[-1]
            assert m.size == x.size
            if expect == "view":
                assert np.shares_memory(m, mask), (mask.shape, axes)
            elif expect == "small":
                assert m.strides[0] == 0, (mask.shape, axes, m.strides)
