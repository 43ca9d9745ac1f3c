"""softmax_backward and log_softmax_backward against a long-double reference.

dx = y * (g - sum(g * y)) for softmax, dx = g - exp(y) * sum(g) for
log_softmax, over any axis and layout, every tier, bit-identical at 1 and 2
threads; argument rules as the forward functions; a y above 0 is not a
log_softmax output (ValueError, out untouched); results match PyTorch's
autograd when torch is installed.
"""
import numpy as np
import pytest

import fastsoftmax
from _helpers import make_layout, same_bits

LAYOUTS = ["C", "F", "transposed", "stepped", "negative", "middle"]


def reference(op, y, g, axis):
    y = np.asarray(y, np.longdouble)
    g = np.asarray(g, np.longdouble)
    if op == "softmax_backward":
        return y * (g - np.sum(g * y, axis=axis, keepdims=True))
    return g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)


def inputs(op, shape, axis, dtype, rng):
    x = rng.standard_normal(shape) * 3
    fwd = fastsoftmax.softmax if op == "softmax_backward" else fastsoftmax.log_softmax
    y = fwd(x.astype(dtype), axis=axis)
    g = rng.standard_normal(shape).astype(dtype)
    return y, g


def check(op, dx, y, g, axis):
    """Within a few eps of the largest term of the slice (the sum cancels: a
    relative bound per element is not meaningful for a difference)."""
    ref = reference(op, y, g, axis)
    eps = np.finfo(dx.dtype).eps
    yl, gl = np.asarray(y, np.longdouble), np.asarray(g, np.longdouble)
    scale = np.abs(gl) + np.max(np.abs(gl), axis=axis, keepdims=True)
    scale = scale * (np.abs(yl) if op == "softmax_backward" else 1) + np.abs(ref)
    axes = range(y.ndim) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    n = int(np.prod([y.shape[a] for a in axes])) if y.ndim else 1
    err = np.abs(dx.astype(np.longdouble) - ref) / np.where(scale > 0, scale, 1)
    assert float(np.max(err)) <= (4 + np.log2(max(n, 1))) * eps, float(np.max(err) / eps)


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((5, 33), -1), ((33, 5), 0), ((4, 6, 5), 1), ((3, 70000), -1)])
def test_against_reference(isa, op, dtype, shape, axis, rng):
    y, g = inputs(op, shape, axis, dtype, rng)
    dx = getattr(fastsoftmax, op)(y, g, axis)
    assert dx.dtype == dtype and dx.shape == shape
    check(op, dx, y, g, axis)


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_layouts(isa, op, layout, axis, rng):
    y, g = inputs(op, (9, 13), axis, np.float32, rng)
    yl, gl = make_layout(y, layout), make_layout(g, layout)
    dx = getattr(fastsoftmax, op)(yl, gl, axis)
    check(op, dx, yl, gl, axis)


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("n", list(range(1, 70)))
def test_every_tail(isa, op, n, rng):
    y, g = inputs(op, (3, n), -1, np.float32, rng)
    check(op, getattr(fastsoftmax, op)(y, g), y, g, -1)


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("shape,axis", [((64, 3000), -1), ((3000, 64), 0), ((2, 300000), -1)])
def test_threads_bit_identical(isa, op, shape, axis, rng):
    y, g = inputs(op, shape, axis, np.float64, rng)
    with fastsoftmax.num_threads(1):
        a = getattr(fastsoftmax, op)(y, g, axis)
    with fastsoftmax.num_threads(2):
        b = getattr(fastsoftmax, op)(y, g, axis)
    assert same_bits(a, b)


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
def test_axis_tuple_none_and_empty(op, rng):
    y, g = inputs(op, (3, 4, 5), (1, 2), np.float64, rng)
    check(op, getattr(fastsoftmax, op)(y, g, (1, 2)), y, g, (1, 2))
    y, g = inputs(op, (3, 4), None, np.float64, rng)
    check(op, getattr(fastsoftmax, op)(y, g, None), y, g, None)
    dx = getattr(fastsoftmax, op)(y, g, ())
    expected = y * (g - g * y) if op == "softmax_backward" else g - np.exp(y) * g  # one-element slices
    np.testing.assert_allclose(dx, expected, atol=1e-15)
    assert getattr(fastsoftmax, op)(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
def test_out_in_place_and_errors(op, rng):
    y, g = inputs(op, (6, 10), -1, np.float64, rng)
    expected = getattr(fastsoftmax, op)(y, g)
    out = np.empty_like(y)
    assert getattr(fastsoftmax, op)(y, g, out=out) is out
    np.testing.assert_array_equal(out, expected)
    g2 = g.copy()
    getattr(fastsoftmax, op)(y, g2, out=g2)  # into grad itself
    np.testing.assert_array_equal(g2, expected)
    sentinel = np.full((6, 10), 7.0)
    for bad, exc in [(dict(out=np.empty((6, 9))), ValueError), (dict(out=np.empty((6, 10), np.float32)), TypeError)]:
        with pytest.raises(exc):
            getattr(fastsoftmax, op)(y, g, **bad)
    with pytest.raises(ValueError, match="shape"):
        getattr(fastsoftmax, op)(y, g[:, :9])
    ro = sentinel.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        getattr(fastsoftmax, op)(y, g, out=ro)
    with pytest.raises(TypeError):
        getattr(fastsoftmax, op)(y.astype(complex), g)
    with pytest.raises(np.exceptions.AxisError):
        getattr(fastsoftmax, op)(y, g, axis=2)


def test_log_softmax_backward_rejects_positive_y():
    out = np.full(3, 5.0)
    with pytest.raises(ValueError, match="log_softmax"):
        fastsoftmax.log_softmax_backward(np.array([0.5, -1.0, -2.0]), np.ones(3), out=out)
    np.testing.assert_array_equal(out, 5.0)  # nothing written
    # -inf (a zero probability) and 0 are fine
    dx = fastsoftmax.log_softmax_backward(np.array([0.0, -np.inf]), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(dx, [1.0 - 3.0, 2.0])


def test_dtype_rules(rng):
    y, g = inputs("softmax_backward", (4, 5), -1, np.float32, rng)
    assert fastsoftmax.softmax_backward(y, g).dtype == np.float32
    assert fastsoftmax.softmax_backward(y, g.astype(np.float64)).dtype == np.float64
    assert fastsoftmax.softmax_backward(y, np.ones((4, 5), int)).dtype == np.float64
    assert isinstance(fastsoftmax.softmax_backward(np.float64(1.0), 2.0), np.float64)


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_matches_torch_autograd(dim, rng):
    torch = pytest.importorskip("torch")
    x = torch.tensor(rng.standard_normal((4, 5, 6)), requires_grad=True)
    g = torch.tensor(rng.standard_normal((4, 5, 6)))
    for fwd, bwd in ((torch.softmax, fastsoftmax.softmax_backward), (torch.log_softmax, fastsoftmax.log_softmax_backward)):
        x.grad = None
        y = fwd(x, dim)
        y.backward(g)
        np.testing.assert_allclose(bwd(y.detach().numpy(), g.numpy(), dim), x.grad.numpy(), rtol=1e-12, atol=1e-14)


# ---- column plan: the axis is strided, another axis has unit stride in y, g and dx ----

# (shape, axis): narrow tiles (fewer columns than one vector), tails of rows (n % 4)
# and of columns, one row, tall columns (tiles read twice), wide ones (several
# tiles of 16 KiB per row and a tail tile; (600, 4100): tall ones too), middle
# axes with outer dims.
COLUMN_CASES = [
    ((50, 3), 0), ((33, 5), 0), ((1, 40), 0), ((7, 37), 0), ((300, 37), 0),
    ((6000, 20), 0), ((2050, 70), 0), ((20, 3000), 0), ((5, 4099), 0), ((600, 4100), 0),
    ((64, 100, 64), 1), ((3, 2000, 7), 1), ((4, 5, 6, 17), 1), ((9, 3, 40), 0),
]


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", COLUMN_CASES)
def test_columns_against_reference(isa, threads, op, dtype, shape, axis, rng):
    y, g = inputs(op, shape, axis, dtype, rng)
    dx = threads(lambda: getattr(fastsoftmax, op)(y, g, axis))
    assert dx.dtype == dtype and dx.shape == shape
    check(op, dx, y, g, axis)


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((300, 37), -1), ((3000, 70), -1), ((9, 40, 5), 0), ((64, 30, 20), 1)])
def test_columns_transposed_views(isa, threads, op, dtype, shape, axis, rng):
    """.T views (and Fortran order): the reversed axes are the contiguous ones,
    so the last axis of the view is strided and the first has unit stride."""
    y, g = inputs(op, shape, axis, dtype, rng)
    yt, gt = np.ascontiguousarray(y.T).T, np.ascontiguousarray(g.T).T
    dx = threads(lambda: getattr(fastsoftmax, op)(yt, gt, axis))
    check(op, dx, y, g, axis)
    out = np.asfortranarray(np.full(shape, 7.0, dtype))
    assert getattr(fastsoftmax, op)(yt, gt, axis, out=out) is out
    assert same_bits(out, dx)
    yf, gf = np.asfortranarray(y), np.asfortranarray(g)
    assert same_bits(getattr(fastsoftmax, op)(yf, gf, axis), dx)


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
def test_columns_strided_pitches_and_negative(isa, threads, op, rng):
    """Column tiles with row pitches that differ between y, g and dx (slices of
    wider buffers), and with every stride negative."""
    y, g = inputs(op, (257, 90), 0, np.float32, rng)
    Y, G, D = (np.zeros((257, w), np.float32) for w in (100, 128, 93))
    Y[:, 3:93], G[:, 10:100] = y, g
    yv, gv, dv = Y[:, 3:93], G[:, 10:100], D[:, 1:91]
    threads(lambda: getattr(fastsoftmax, op)(yv, gv, 0, out=dv))
    check(op, dv, y, g, 0)
    assert not D[:, :1].any() and not D[:, 91:].any()  # nothing outside out
    yn, gn = np.ascontiguousarray(y[::-1, ::-1])[::-1, ::-1], np.ascontiguousarray(g[::-1, ::-1])[::-1, ::-1]
    dn = np.zeros((257, 90), np.float32)[::-1, ::-1]  # all three negative: flipped into the column plan
    threads(lambda: getattr(fastsoftmax, op)(yn, gn, 0, out=dn))
    check(op, dn, y, g, 0)
    check(op, threads(lambda: getattr(fastsoftmax, op)(yn, gn, 0)), y, g, 0)  # dx positive: gather


@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("axis", [0, -1])
def test_mixed_layouts_gather(isa, threads, op, axis, rng):
    """Unit-stride axes that differ between y, g and dx take the gather plan."""
    y, g = inputs(op, (70, 45), axis, np.float64, rng)
    gt = np.ascontiguousarray(g.T).T
    check(op, threads(lambda: getattr(fastsoftmax, op)(y, gt, axis)), y, g, axis)
    out = np.asfortranarray(np.zeros_like(y))
    threads(lambda: getattr(fastsoftmax, op)(y, g, axis, out=out))
    check(op, out, y, g, axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
def test_mixed_layouts_in_runs_of_rows(isa, threads, op, dtype, rng):
    """y, g or dx contiguous across the slices and strided along the axis
    (a transposed g, an F-ordered out= beside C-ordered y and g, and the
    reverse): runs of rows are copied through buffers (backward.cpp,
    run_rows), with the bits of the same rows laid out along the axis."""
    def along_axis(a, axis):  # the same values, contiguous along axis
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, axis, -1)), -1, axis)

    def other(a):  # the same values, the other order
        return np.asfortranarray(a) if a.flags.c_contiguous else np.ascontiguousarray(a)
    for shape, axis in [((300, 77), -1), ((300, 77), 0), ((1000, 9), -1), ((5, 260, 33), -1), ((40, 4099), -1)]:
        y, g = inputs(op, shape, axis, dtype, rng)
        fn = getattr(fastsoftmax, op)
        yr, gr = along_axis(y, axis), along_axis(g, axis)
        expected = fn(yr, gr, axis)
        for yy, gg, out_order in [(yr, other(gr), None), (other(yr), gr, None), (yr, gr, "other")]:
            def call():
                if out_order is None:
                    return fn(yy, gg, axis)
                out = other(np.zeros_like(expected))
                assert fn(yy, gg, axis, out=out) is out
                return out
            got = threads(call)
            assert same_bits(got, expected), (shape, axis, out_order)
        check(op, expected, y, g, axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((3000, 64), 0), ((500, 2500), 0), ((4100, 20), 0), ((7, 300, 33), 1),
                                        ((2, 9000, 24), 1), ((9000, 16), 0), ((13000, 5), 0), ((8193, 40), 0)])
def test_columns_threads_bit_identical(isa, dtype, shape, axis, rng):
    """Tiles are narrowed to give every thread work, and tall columns in fewer
    tiles than threads are split by row blocks: a column's result must not
    depend on the tile cut nor on who sums which block."""
    for op in ("softmax_backward", "log_softmax_backward"):
        y, g = inputs(op, shape, axis, dtype, rng)
        with fastsoftmax.num_threads(1):
            a = getattr(fastsoftmax, op)(y, g, axis)
        with fastsoftmax.num_threads(2):
            b = getattr(fastsoftmax, op)(y, g, axis)
        assert same_bits(a, b)
        check(op, b, y, g, axis)


@pytest.mark.parametrize("layout", ["C", "transposed"])
@pytest.mark.parametrize("shape,axis,at", [((40, 30), 0, (39, 29)), ((2000, 50), 0, (0, 49)),
                                           ((5, 300, 70), 1, (4, 150, 3)), ((9000, 16), 0, (8999, 15)),
                                           ((9000, 16), 0, (0, 0))])
def test_columns_reject_positive_y_nothing_written(isa, layout, shape, axis, at, rng):
    y, g = inputs("log_softmax_backward", shape, axis, np.float64, rng)
    y[at] = 1e-300
    yl, gl = make_layout(y, layout), make_layout(g, layout)
    for nt in (1, 2):
        out = make_layout(np.full(shape, 5.0), layout)
        with fastsoftmax.num_threads(nt), pytest.raises(ValueError, match="log_softmax"):
            fastsoftmax.log_softmax_backward(yl, gl, axis, out=out)
        np.testing.assert_array_equal(out, 5.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("plan", ["row", "column", "gather"])
def test_positive_y_not_hidden_by_nan(isa, dtype, plan):
    """A NaN after a positive y in the same SIMD lane once hid it (a running
    max(acc, y) keeps the NaN); every lane width, every plan."""
    for w in (4, 8, 16):
        y = np.full((3, 2 * w), -1.0, dtype)
        y[1, 0], y[1, w] = 0.5, np.nan
        if plan == "column":
            y = np.ascontiguousarray(y.T).T  # axis=-1 strided, axis 0 unit
        elif plan == "gather":
            y = make_layout(y, "stepped")
        out = np.full(y.shape, 5.0, dtype)
        with pytest.raises(ValueError, match="log_softmax"):
            fastsoftmax.log_softmax_backward(y, np.ones_like(y), -1, out=out)
        np.testing.assert_array_equal(out, 5.0)
    # NaN alone is allowed (dx is NaN where y is)
    dx = fastsoftmax.log_softmax_backward(np.array([[np.nan, -1.0]] * 3, dtype).T, np.ones((2, 3), dtype), 0)
    assert np.isnan(dx[0]).all() and np.isfinite(dx[1]).all()
