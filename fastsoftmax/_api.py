"""The NumPy API: every user-facing rule (dtypes, axes, out=, errors) lives here.

After the checks, each call is one `_core.run` on a view of the input: a single
axis is reduced where the data lies (any strides, no copy); several axes are
first merged into one (a copy only when they cannot be merged as a view).
A where= mask goes down with it as a bool view broadcast to the input's shape
(stride 0 in broadcast dimensions, never materialised); the kernels apply it.
"""
import math
import operator

import numpy as np

from . import _config, _core

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import normalize_axis_tuple as _normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple as _normalize_axis_tuple

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward"]

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
_COMPUTED = (_F32, _F64)


def _is_bf16(dt):
    """ml_dtypes' bfloat16, recognised without importing ml_dtypes (an optional extra)."""
    return (dt.kind == "V" and dt.itemsize == 2 and dt.name == "bfloat16"
            and getattr(dt.type, "__module__", "") == "ml_dtypes")


def _is_half(dt):
    return dt == _F16 or _is_bf16(dt)


#: (input dtype name, result dtype name) pairs the kernels convert themselves,
#: element by element through per-thread buffers; any other mismatch is cast first
_KERNEL_PAIRS = {("float32", "float16"), ("float64", "float16"), ("float32", "bfloat16"),
                 ("float16", "float32"), ("float16", "float64"), ("bfloat16", "float32"),
                 ("bfloat16", "float64")}


def _result_dtype(x, dtype, name):
    kind = x.dtype.kind
    if kind not in "biuf" and not _is_bf16(x.dtype):
        raise TypeError(f"{name}: unsupported input dtype {x.dtype} (kind {kind!r}); "
                        "expected a real floating point, integer or bool array")
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt not in (_F16, _F32, _F64) and not _is_bf16(dt):
            raise TypeError(f"{name}: dtype= must be float16, float32, float64 "
                            f"(or ml_dtypes.bfloat16), got {dt}")
    elif _is_bf16(x.dtype):
        dt = x.dtype
    elif kind == "f":
        dt = x.dtype.newbyteorder("=")
        if dt not in (_F16, _F32, _F64):
            raise TypeError(f"{name}: unsupported input dtype {x.dtype}; "
                            "use float16, float32 or float64 (cast with dtype=)")
    else:
        dt = _F64  # bool and integers compute in float64, like NumPy's own float functions
    return dt


def _prepare_input(x, dt, convert_in_kernel=True):
    """x as the kernels take it for result dtype dt: an aligned, native-order
    array of dt, or of a dtype the kernels convert from themselves (float16 /
    bfloat16 input with a float32/64 result, float32/64 input with a float16
    result: no copy); otherwise a copy cast to dt. convert_in_kernel=False
    (the gradients): always dt itself."""
    if x.flags.aligned and x.dtype.isnative and (
            x.dtype == dt or (convert_in_kernel and (x.dtype.name, dt.name) in _KERNEL_PAIRS)):
        return x
    with np.errstate(all="ignore"):  # 1e300 -> float32 is inf, as asked; no warning
        return x.astype(dt, order="K")


def _check_out(out, shape, dt, name):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name}: out has shape {out.shape}, but the result has shape {shape}")
    if out.dtype != dt:
        raise TypeError(f"{name}: out has dtype {out.dtype}, but the result has dtype {dt}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: output array is read-only")


def _writes_directly(out, x, same_shape):
    """Can the kernel write into out? It needs native, aligned memory that does
    not overlap x, or that is x itself (an elementwise in-place update)."""
    if not out.flags.aligned or not out.dtype.isnative:
        return False
    if not np.may_share_memory(out, x):
        return True
    return (same_shape and out.dtype == x.dtype and out.strides == x.strides
            and out.__array_interface__["data"][0] == x.__array_interface__["data"][0])


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, tuple):
        axis = operator.index(axis)  # TypeError "'float' object cannot be interpreted as an integer"
    return _normalize_axis_tuple(axis, ndim)  # AxisError / ValueError (repeated) like NumPy


def _merge_axes(x, axes):
    """A view (or a copy if it cannot be a view) of x with `axes` merged into one last axis.

    Returns (x2, kept_dims, permutation) where x2.shape == kept_shape + (prod,)."""
    kept = [d for d in range(x.ndim) if d not in axes]
    perm = kept + list(axes)
    xm = np.transpose(x, perm)
    kept_shape = tuple(x.shape[d] for d in kept)
    size = math.prod(x.shape[d] for d in axes)
    return xm.reshape(kept_shape + (size,)), kept_shape, perm


def _where_mask(where, shape, name):
    """where= as a bool array of `shape`: a broadcast view (stride 0 along the
    broadcast dimensions), or None when every element takes part."""
    if where is None:
        return None
    w = np.asarray(where)
    if w.dtype != np.bool_:
        raise TypeError(f"{name}: where= must be a boolean array, got dtype {w.dtype}")
    if w.ndim == 0 and w:
        return None  # where=True: the same as no mask
    try:
        return np.broadcast_to(w, shape)
    except ValueError as e:
        raise ValueError(f"{name}: where= of shape {w.shape} cannot be broadcast to the input's "
                         f"shape {tuple(shape)}: {e}") from None


def _normalise(x, axis, dtype, where, name):
    """(x as the kernels take it, result dtype, was-0-d, axes, mask or None)."""
    x = np.asarray(x)
    dt = _result_dtype(x, dtype, name)
    mask = None if where is None else _where_mask(where, x.shape, name)
    scalar = x.ndim == 0
    xin = x.reshape(1) if scalar else x
    if scalar and mask is not None:
        mask = mask.reshape(1)
    axes = _axes(axis, xin.ndim)
    return _prepare_input(xin, dt), dt, scalar, axes, mask


def _private_mask(mask, out):
    """The mask, copied if out shares its memory (writing out would change it)."""
    if mask is not None and np.may_share_memory(mask, out):
        return mask.copy()
    return mask


def _merged_mask(mask, axes, shape2):
    """The mask laid out like x once `axes` are merged (x2 of shape shape2).

    Only the mask's own extent is merged (its broadcast dimensions cut back to
    length 1 among the kept ones): a view when NumPy can make one, else a copy
    of that extent alone, which is then broadcast over the kept dimensions
    again. A per-position mask (broadcast over the kept dimensions) and a
    per-slice one (broadcast over the merged ones) are never copied."""
    if len(axes) == 0 or mask.size == 0:
        return mask.reshape(shape2)
    if all(mask.strides[a] == 0 or mask.shape[a] == 1 for a in axes):  # one value per slice
        per_slice = mask[tuple(0 if d in axes else slice(None) for d in range(mask.ndim))]
        return np.broadcast_to(per_slice[..., None], shape2)
    kept = [d for d in range(mask.ndim) if d not in axes]
    own = mask[tuple(slice(0, 1) if d in kept and mask.strides[d] == 0 else slice(None)
                     for d in range(mask.ndim))]
    m2, _, _ = _merge_axes(own, axes)
    return np.broadcast_to(m2, shape2)


def _softmax_like(op, x, axis, out, dtype, where, name):
    x, dt, scalar, axes, mask = _normalise(x, axis, dtype, where, name)
    shape = () if scalar else x.shape
    if out is not None:
        _check_out(out, shape, dt, name)
        mask = _private_mask(mask, out)
    nthreads = _config._num_threads
    if len(axes) == 1:
        if out is not None and _writes_directly(out, x, True):
            _core.run(op, x, out.reshape(x.shape) if scalar else out, axes[0], nthreads, mask)
            return out
        y = np.empty_like(x, dtype=dt)
        _core.run(op, x, y, axes[0], nthreads, mask)
    else:
        if len(axes) == 0:  # every element is its own slice of length 1
            x2 = x.reshape(x.size, 1)
        else:
            x2, _, perm = _merge_axes(x, axes)
        y2 = np.empty(x2.shape, dtype=dt)
        _core.run(op, x2, y2, x2.ndim - 1, nthreads, None if mask is None else _merged_mask(mask, axes, x2.shape))
        if len(axes) == 0:
            y = y2.reshape(x.shape)
        else:
            y = np.transpose(y2.reshape([x.shape[d] for d in perm]), np.argsort(perm))
    if out is not None:
        np.copyto(out, y.reshape(shape))
        return out
    return y[0] if scalar else y


def softmax(x, axis=-1, *, out=None, dtype=None, where=None):
    """exp(x - max) / sum(exp(x - max)) over `axis` (an int, a tuple of ints, or None for all).

    Like scipy.special.softmax, with NumPy's conventions for out= and dtype=;
    see the README for the dtype, special-value and accuracy rules."""
    if dtype is None and where is None:
        y = _core.fast(_core.SOFTMAX, x, axis, out, _config._num_threads)
        if y is not None:
            return y
    return _softmax_like(_core.SOFTMAX, x, axis, out, dtype, where, "softmax")


def log_softmax(x, axis=-1, *, out=None, dtype=None, where=None):
    """(x - max) - log(sum(exp(x - max))) over `axis`, accurate where the result is near 0."""
    if dtype is None and where is None:
        y = _core.fast(_core.LOG_SOFTMAX, x, axis, out, _config._num_threads)
        if y is not None:
            return y
    return _softmax_like(_core.LOG_SOFTMAX, x, axis, out, dtype, where, "log_softmax")


def logsumexp(x, axis=-1, *, keepdims=False, out=None, dtype=None, where=None):
    """log(sum(exp(x))) over `axis`, computed as max + log1p(sum of the rest) without overflow."""
    if dtype is None and where is None and not keepdims:
        y = _core.fast(_core.LOGSUMEXP, x, axis, out, _config._num_threads)
        if y is not None:
            return y
    name = "logsumexp"
    x, dt, scalar, axes, mask = _normalise(x, axis, dtype, where, name)
    if scalar:
        shape = ()
    elif keepdims:
        shape = tuple(1 if d in axes else s for d, s in enumerate(x.shape))
    else:
        shape = tuple(s for d, s in enumerate(x.shape) if d not in axes)
    if out is not None:
        _check_out(out, shape, dt, name)
        mask = _private_mask(mask, out)
    nthreads = _config._num_threads
    if len(axes) == 1 and out is not None and _writes_directly(out, x, False):
        target = out.reshape(()) if scalar else out
        if not keepdims or scalar:
            target = np.expand_dims(target, axes[0])
        _core.run(_core.LOGSUMEXP, x, target, axes[0], nthreads, mask)
        return out
    if len(axes) == 1:
        x2, axis2, m2 = x, axes[0], mask
    elif len(axes) == 0:  # every element is its own slice of length 1
        x2 = x.reshape(x.size, 1)
        axis2 = 1
        m2 = None if mask is None else _merged_mask(mask, axes, x2.shape)
    else:
        x2, _, _ = _merge_axes(x, axes)
        axis2 = x2.ndim - 1
        m2 = None if mask is None else _merged_mask(mask, axes, x2.shape)
    y2 = np.empty(x2.shape[:axis2] + (1,) + x2.shape[axis2 + 1:], dtype=dt)
    _core.run(_core.LOGSUMEXP, x2, y2, axis2, nthreads, m2)
    y = y2.reshape(shape)
    if out is not None:
        np.copyto(out, y)
        return out
    return y[()] if y.ndim == 0 else y


def _promote(a, b):
    if a == b:
        return a
    if _is_bf16(a) or _is_bf16(b):  # bfloat16 with anything else: float32 or wider
        return np.promote_types(_F32 if _is_bf16(a) else a, _F32 if _is_bf16(b) else b)
    return np.promote_types(a, b)


def _backward(op, y, grad, axis, out, where, name):
    """Shared rules of the two gradients: y and grad of one shape, dtypes as the
    forward functions (promoted together), any axes, out= as everywhere; where=
    the forward's mask (0 gradient where it is False)."""
    y = np.asarray(y)
    g = np.asarray(grad)
    if y.shape != g.shape:
        raise ValueError(f"{name}: y has shape {y.shape} but grad has shape {g.shape}")
    dt = _promote(_result_dtype(y, None, name), _result_dtype(g, None, name))
    if _is_half(dt):  # the gradient kernels are float32/float64: computed in float32, rounded once
        dx = _backward(op, y.astype(_F32), g.astype(_F32), axis, None, where, name)
        dx = np.asarray(dx).astype(dt)
        if out is not None:
            _check_out(out, dx.shape, dt, name)
            np.copyto(out, dx)
            return out
        return dx[()] if dx.ndim == 0 else dx
    mask = None if where is None else _where_mask(where, y.shape, name)
    scalar = y.ndim == 0
    if scalar:
        y, g = y.reshape(1), g.reshape(1)
        if mask is not None:
            mask = mask.reshape(1)
    axes = _axes(axis, y.ndim)
    y, g = _prepare_input(y, dt, False), _prepare_input(g, dt, False)
    shape = () if scalar else y.shape
    if out is not None:
        _check_out(out, shape, dt, name)
        mask = _private_mask(mask, out)
    nthreads = _config._num_threads
    if len(axes) == 1:
        if out is not None and _writes_directly(out, y, True) and _writes_directly(out, g, True):
            _core.run_backward(op, y, g, out.reshape(y.shape) if scalar else out, axes[0], nthreads, mask)
            return out
        dx = np.empty_like(y, dtype=dt)
        _core.run_backward(op, y, g, dx, axes[0], nthreads, mask)
    else:
        if len(axes) == 0:  # every element is its own slice of length 1
            y2, g2 = y.reshape(y.size, 1), g.reshape(g.size, 1)
        else:
            (y2, _, perm), (g2, _, _) = _merge_axes(y, axes), _merge_axes(g, axes)
        d2 = np.empty(y2.shape, dtype=dt)
        _core.run_backward(op, y2, g2, d2, y2.ndim - 1, nthreads,
                           None if mask is None else _merged_mask(mask, axes, y2.shape))
        if len(axes) == 0:
            dx = d2.reshape(y.shape)
        else:
            dx = np.transpose(d2.reshape([y.shape[d] for d in perm]), np.argsort(perm))
    if out is not None:
        np.copyto(out, dx.reshape(shape))
        return out
    return dx[0] if scalar else dx


def softmax_backward(y, grad, axis=-1, *, out=None, where=None):
    """Gradient of softmax: given y = softmax(x) and grad = dL/dy, returns
    dL/dx = y * (grad - sum(grad * y)) over `axis` (same axis rules as softmax).
    where=: the mask the forward call took; the sum runs over the elements
    where it is True, and dL/dx is 0 at the others."""
    return _backward(_core.SOFTMAX, y, grad, axis, out, where, "softmax_backward")


def log_softmax_backward(y, grad, axis=-1, *, out=None, where=None):
    """Gradient of log_softmax: given y = log_softmax(x) and grad = dL/dy, returns
    dL/dx = grad - exp(y) * sum(grad) over `axis`. y must be a log_softmax output
    (every value <= 0), else ValueError and nothing is written. where=: the
    forward's mask, as for softmax_backward (only those y are checked)."""
    return _backward(_core.LOG_SOFTMAX, y, grad, axis, out, where, "log_softmax_backward")
