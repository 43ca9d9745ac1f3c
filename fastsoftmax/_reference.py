"""Plain-NumPy versions of every public function: the tests' oracle.

They compute in `dtype` (float64 by default; np.longdouble for checking
float64 results) with the textbook formula, no tricks beyond the max shift and
log1p, and they follow the special-value rules of the README:
a NaN or +inf in a slice, or a slice of all -inf, makes softmax/log_softmax
NaN; logsumexp is NaN with a NaN, else +inf with a +inf, else -inf if all -inf.
"""
import numpy as np

__all__ = ["softmax", "log_softmax", "logsumexp"]


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple):
        return tuple(a % ndim for a in axis)
    return (axis % ndim,)


def _parts(x, axis, dtype):
    """(x, m, rest, count): max per slice, sum of exp(x - m) over x != m, count of x == m."""
    x = np.asarray(x, dtype=dtype)
    if x.ndim == 0:
        x = x.reshape(1)
    axes = _axes(axis, x.ndim)
    with np.errstate(all="ignore"):
        if x.size == 0:
            m = np.full([1 if d in axes else s for d, s in enumerate(x.shape)], -np.inf, dtype=dtype)
        else:
            m = np.max(x, axis=axes, keepdims=True)  # NaN if the slice has a NaN
        eq = x == m
        e = np.where(eq, 0, np.exp(x - m))
        rest = np.sum(e, axis=axes, keepdims=True)
        count = np.sum(eq, axis=axes, keepdims=True).astype(dtype)
    return x, m, rest, count, axes


def softmax(x, axis=-1, dtype=np.float64):
    x, m, rest, count, _ = _parts(x, axis, dtype)
    with np.errstate(all="ignore"):
        y = np.exp(x - m) / (rest + count)
        y = np.where(np.isposinf(m), np.nan, y)
    return y


def log_softmax(x, axis=-1, dtype=np.float64):
    x, m, rest, count, _ = _parts(x, axis, dtype)
    with np.errstate(all="ignore"):
        y = (x - m) - np.log1p(rest + (count - 1))
        y = np.where(np.isposinf(m), np.nan, y)
    return y


def logsumexp(x, axis=-1, keepdims=False, dtype=np.float64):
    x, m, rest, count, axes = _parts(x, axis, dtype)
    with np.errstate(all="ignore"):
        has_nan = np.any(np.isnan(x), axis=axes, keepdims=True)
        r = np.where(np.isinf(m), m, m + np.log1p(rest + (count - 1)))
        r = np.where(has_nan, np.nan, r)
    return r if keepdims else np.squeeze(r, axis=axes)
