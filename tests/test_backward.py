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
