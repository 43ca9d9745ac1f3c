"""fastsoftmax.torch: PyTorch's softmax and log_softmax on fastsoftmax's kernels.

    import fastsoftmax.torch as fst
    y = fst.softmax(x, dim=-1)        # torch.nn.functional.softmax's signature and results
    head = fst.LogSoftmax(dim=-1)     # an nn.LogSoftmax
    with fst.patched():               # torch.softmax, F.softmax, Tensor.softmax and the
        model(x)                      # log_softmax twins run here inside

Which calls run on the kernels: plain CPU float32/float64 tensors in the strided
layout (any strides; `dtype=` float32/float64 casts first, as PyTorch does), an
int `dim` in range, and no TorchScript, jit tracing, torch-function or dispatch
mode, or functorch transform active. Everything else goes to PyTorch's own
function, so results and errors there are PyTorch's own.

Paths of a call the kernels take (the output is a fresh contiguous tensor, as
PyTorch gives; the input is read where it lies):
  eager, no gradient needed  -> the kernel directly (the fast path)
  eager, gradient needed     -> _Softmax, an autograd.Function: backward on the
                                 backward kernels, double backward in torch ops
  torch.compile              -> the custom ops torch.ops.fastsoftmax.*, with fake
                                 kernels and registered autograd: no graph break

Threads: the kernels use fastsoftmax's thread count (fastsoftmax.set_num_threads,
FASTSOFTMAX_NUM_THREADS, else OMP_NUM_THREADS), not torch.get_num_threads().
"""
try:
    import torch
except ImportError as exc:  # torch is an optional extra
    raise ImportError("fastsoftmax.torch needs PyTorch, which is not installed: "
                      "pip install fastsoftmax[torch]") from exc

import contextlib
import functools
import warnings
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from . import _config, _core

__all__ = ["softmax", "log_softmax", "Softmax", "LogSoftmax", "patched"]

_SOFTMAX, _LOG_SOFTMAX = _core.SOFTMAX, _core.LOG_SOFTMAX
_NAMES = {_SOFTMAX: "softmax", _LOG_SOFTMAX: "log_softmax"}
_KERNEL_DTYPES = frozenset((torch.float32, torch.float64))  # forward and backward kernels
_HALF_DTYPES = frozenset((torch.float16, torch.bfloat16))     # forward kernels (computed in float32)
_TENSOR_TYPES = frozenset((Tensor, torch.nn.Parameter))
_STRIDED = torch.strided
_C = torch._C
_is_compiling = torch.compiler.is_compiling
_empty_like = torch.empty_like
_fast = _core.torch_forward  # the common call (no cast) in one step
_CONTIGUOUS = torch.contiguous_format

# PyTorch's own functions, taken at import: the fallbacks call them, patched() restores them.
_TORCH_FNS = {  # op -> (torch.x, F.x, Tensor.x)
    _SOFTMAX: (torch.softmax, F.softmax, Tensor.softmax),
    _LOG_SOFTMAX: (torch.log_softmax, F.log_softmax, Tensor.log_softmax),
}


# ---------------------------------------------------------------- the kernels

# The checks that decide whether the kernels may take a tensor run in Cython
# (_core.torch_kernel_tensor), and so does the whole common call
# (_core.torch_forward): a (4, 32) call must cost about what torch's own does.
def _bind():
    _core.torch_bind(
        tensor_types=_TENSOR_TYPES, f32=torch.float32, f64=torch.float64, f16=torch.float16,
        bf16=torch.bfloat16, strided=_STRIDED,
        checks=(_C._get_tracing_state,               # torch.jit.trace must record a torch op
                _C._is_torch_function_mode_enabled,  # modes and transforms must see the call
                _C._len_torch_dispatch_stack,
                _C._are_functorch_transforms_active),
        grad_enabled=torch.is_grad_enabled, empty_like=_empty_like, with_grad=_Softmax.apply)


_kernel_tensor = _core.torch_kernel_tensor  # float32 / float64: forward and backward kernels


def _forward_tensor(x):
    """float16 / bfloat16 too: the forward kernels compute them in float32."""
    return _core.torch_kernel_tensor(x, True)


def _run(op, x, dim):
    """softmax / log_softmax of x on the kernels, into a fresh contiguous tensor
    (PyTorch's output layout)."""
    if x.is_contiguous() or x.stride(dim) == 1:  # the row plan reads x where it lies
        y = _empty_like(x) if x.is_contiguous() else _empty_like(x, memory_format=_CONTIGUOUS)
        _core.run_tensor(op, x, y, dim, _config._num_threads)
        return y
    # x strided along dim (a transposed or permuted tensor): writing a contiguous
    # y from it would gather slice by slice, across cache lines. Computing in x's
    # own layout (the column plan) and copying is several times faster.
    y = _empty_like(x)
    _core.run_tensor(op, x, y, dim, _config._num_threads)
    if y.is_contiguous():
        return y
    out = _empty_like(x, memory_format=_CONTIGUOUS)
    _core.advise_huge(out.data_ptr(), out.numel() * out.element_size())
    return out.copy_(y)


def _run_backward(op, y, g, dim):
    if g.dim() and g.stride(dim) > 1:  # a strided gradient: one transposing copy beats a gather per slice
        g = g.contiguous()
    dx = _empty_like(y) if y.is_contiguous() else _empty_like(y, memory_format=_CONTIGUOUS)
    _core.run_backward_tensor(op, y, g, dx, dim, _config._num_threads)
    return dx


def _backward_in_torch(op, y, g, dim):
    """The gradient in torch ops: differentiable, any tensor (the backward
    kernel's fallback, and what double backward differentiates)."""
    if op == _SOFTMAX:
        return y * (g - (g * y).sum(dim, keepdim=True))
    return g - y.exp() * g.sum(dim, keepdim=True)


def _backward(op, y, g, dim):
    if y.dtype in _HALF_DTYPES and g.dtype == y.dtype:  # no half backward kernel: float32, rounded once
        return _backward(op, y.float(), g.float(), dim).to(y.dtype)
    if _kernel_tensor(y) and _kernel_tensor(g) and g.dtype == y.dtype:
        return _run_backward(op, y, g, dim)
    return _backward_in_torch(op, y, g, dim)


class _Softmax(torch.autograd.Function):
    """softmax / log_softmax of x over dim (op picks), with a kernel backward."""

    @staticmethod
    def forward(ctx, x, dim, op):
        y = _run(op, x, dim)
        ctx.save_for_backward(y)  # only the output: both gradients need y alone
        ctx.dim, ctx.op = dim, op
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        if y.dtype in _HALF_DTYPES:  # no half backward kernel: in float32, rounded once
            fn = _backward_in_torch if torch.is_grad_enabled() else _backward
            return fn(ctx.op, y.float(), grad.float(), ctx.dim).to(y.dtype), None, None
        if not (_kernel_tensor(grad) and grad.dtype == y.dtype):
            return _backward_in_torch(ctx.op, y, grad, ctx.dim), None, None
        if torch.is_grad_enabled():  # create_graph=True: the gradient must be differentiable
            return _SoftmaxBackward.apply(y, grad, ctx.dim, ctx.op), None, None
        return _run_backward(ctx.op, y, grad, ctx.dim), None, None


class _SoftmaxBackward(torch.autograd.Function):
    """The gradient dx(y, g) on the backward kernel; its own gradient (for
    gradgradcheck and higher orders) in torch ops."""

    @staticmethod
    def forward(ctx, y, g, dim, op):
        ctx.save_for_backward(y, g)
        ctx.dim, ctx.op = dim, op
        return _run_backward(op, y, g, dim)

    @staticmethod
    def backward(ctx, u):
        y, g = ctx.saved_tensors
        return (*_double_backward(ctx.op, y, g, u, ctx.dim), None, None)


def _double_backward(op, y, g, u, dim):
    """Gradients of dx(y, g) with respect to y and g, given u = dL/d(dx)."""
    if op == _SOFTMAX:  # dx = y * (g - sum(g y))
        uy = (u * y).sum(dim, keepdim=True)
        grad_y = u * (g - (g * y).sum(dim, keepdim=True)) - g * uy
        grad_g = y * (u - uy)
    else:  # dx = g - exp(y) sum(g)
        p = y.exp()
        grad_y = -u * p * g.sum(dim, keepdim=True)
        grad_g = u - (u * p).sum(dim, keepdim=True)
    return grad_y, grad_g


_bind()


# ------------------------------------------------- torch.compile: custom ops

def _define_ops(op):
    """torch.ops.fastsoftmax.<name> and <name>_backward, for torch.compile. Called
    eagerly (outside compile) they run the same kernels, or PyTorch's own
    function for what the kernels do not take."""
    name = _NAMES[op]
    torch_fn = _TORCH_FNS[op][0]

    @torch.library.custom_op(f"fastsoftmax::{name}", mutates_args=())
    def forward_op(x: Tensor, dim: int) -> Tensor:
        if _forward_tensor(x):
            return _run(op, x, dim)
        return torch_fn(x, dim)

    @torch.library.custom_op(f"fastsoftmax::{name}_backward", mutates_args=())
    def backward_op(y: Tensor, grad: Tensor, dim: int) -> Tensor:
        return _backward(op, y, grad, dim).contiguous()

    @forward_op.register_fake
    def _(x, dim):
        return torch.empty_like(x, memory_format=_CONTIGUOUS)

    @backward_op.register_fake
    def _(y, grad, dim):
        return torch.empty_like(y, memory_format=_CONTIGUOUS)

    def setup_forward(ctx, inputs, output):
        ctx.save_for_backward(output)
        ctx.dim = inputs[1]

    def forward_grad(ctx, grad):
        (y,) = ctx.saved_tensors
        return backward_op(y, grad, ctx.dim), None

    def setup_backward(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])
        ctx.dim = inputs[2]

    def backward_grad(ctx, u):
        y, g = ctx.saved_tensors
        return (*_double_backward(op, y, g, u, ctx.dim), None)

    forward_op.register_autograd(forward_grad, setup_context=setup_forward)
    backward_op.register_autograd(backward_grad, setup_context=setup_backward)
    return forward_op


_OPS = {op: _define_ops(op) for op in (_SOFTMAX, _LOG_SOFTMAX)}


# ------------------------------------------------------------ the dispatcher

def _forward(op, input, dim, dtype):
    """The result on fastsoftmax's kernels, or None when PyTorch's own function
    must take the call (it then also raises PyTorch's errors)."""
    if type(dim) is not int:
        return None
    if _is_compiling():  # traced by dynamo: the custom op, so the graph does not break
        if not (isinstance(input, Tensor) and input.device.type == "cpu" and input.layout is _STRIDED):
            return None
        x = input if dtype is None else input.to(dtype)
        if x.dtype not in _KERNEL_DTYPES and x.dtype not in _HALF_DTYPES:
            return None
        return _OPS[op](x, dim)
    if dtype is None:
        if not _forward_tensor(input):
            return None
        x = input
    else:
        if (dtype not in _KERNEL_DTYPES or type(input) not in _TENSOR_TYPES or not input.is_cpu
                or input.layout is not _STRIDED or input.is_complex()):
            return None
        x = input.to(dtype)  # PyTorch casts first too; autograd flows through the cast
        if not _kernel_tensor(x):
            return None
    nd = x.dim() or 1
    if dim < -nd or dim >= nd:
        return None  # PyTorch raises its IndexError
    if x.requires_grad and torch.is_grad_enabled():
        return _Softmax.apply(x, dim, op)
    return _run(op, x, dim)


def _legacy_dim(name: str, ndim: int, stacklevel: int) -> int:
    # PyTorch's rule and warning for dim=None (torch.nn.functional._get_softmax_dim)
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                  "Change the call to include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim == 0 or ndim == 1 or ndim == 3 else 1


@torch.jit.unused
def _softmax_eager(op: int, input: Tensor, dim: Optional[int], stacklevel: int, dtype: Optional[torch.dtype]) -> Tensor:
    if dim is None and type(input) in _TENSOR_TYPES:
        dim = _legacy_dim(_NAMES[op], input.dim(), stacklevel + 1)
    y = _forward(op, input, dim, dtype)
    if y is None:  # PyTorch's own function, warning (one frame further up) and errors included
        return _TORCH_FNS[op][1](input, dim, _stacklevel=stacklevel + 2, dtype=dtype)
    return y


def softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
            dtype: Optional[torch.dtype] = None) -> Tensor:
    """torch.nn.functional.softmax on fastsoftmax's kernels: same signature,
    results (within fastsoftmax's accuracy bound), errors and dim=None rule."""
    if torch.jit.is_scripting():  # TorchScript compiles this branch only: PyTorch's own op
        if dim is None:
            dim = _legacy_dim("softmax", input.dim(), _stacklevel)
        return input.softmax(dim) if dtype is None else input.softmax(dim, dtype=dtype)
    if dtype is None and not _is_compiling():  # the common call: kernel (and autograd) from Cython
        y = _fast(_SOFTMAX, input, dim, _config._num_threads)
        if y is not None:
            return y
    return _softmax_eager(_SOFTMAX, input, dim, _stacklevel, dtype)


def log_softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3,
                dtype: Optional[torch.dtype] = None) -> Tensor:
    """torch.nn.functional.log_softmax on fastsoftmax's kernels (see softmax)."""
    if torch.jit.is_scripting():
        if dim is None:
            dim = _legacy_dim("log_softmax", input.dim(), _stacklevel)
        return input.log_softmax(dim) if dtype is None else input.log_softmax(dim, dtype=dtype)
    if dtype is None and not _is_compiling():
        y = _fast(_LOG_SOFTMAX, input, dim, _config._num_threads)
        if y is not None:
            return y
    return _softmax_eager(_LOG_SOFTMAX, input, dim, _stacklevel, dtype)


class Softmax(torch.nn.Softmax):
    """torch.nn.Softmax on fastsoftmax's kernels (an nn.Softmax: isinstance,
    state dicts and repr as PyTorch's)."""

    def forward(self, input: Tensor) -> Tensor:
        return softmax(input, self.dim, _stacklevel=5)


class LogSoftmax(torch.nn.LogSoftmax):
    """torch.nn.LogSoftmax on fastsoftmax's kernels."""

    def forward(self, input: Tensor) -> Tensor:
        return log_softmax(input, self.dim, _stacklevel=5)


# ------------------------------------------------------------------ patched()

_NO_ARG = object()


def _wrap_dim_first(op, original):
    """torch.softmax(input, dim, dtype=None) and Tensor.softmax(self, dim, dtype=None)
    on the kernels; every other form of call goes to `original` unchanged."""

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        dim = dtype = _NO_ARG
        n = len(args)
        if 2 <= n <= 3 and (not kwargs or (n == 2 and kwargs.keys() == {"dtype"})):
            dim = args[1]
            dtype = args[2] if n == 3 else kwargs.get("dtype")
        elif n == 1 and kwargs and kwargs.keys() <= {"dim", "dtype"} and "dim" in kwargs:
            dim, dtype = kwargs["dim"], kwargs.get("dtype")
        if dim is not _NO_ARG and dim is not None:
            y = _forward(op, args[0], dim, dtype)
            if y is not None:
                return y
        return original(*args, **kwargs)

    return wrapper


def _replacements():
    out = []
    for op, (torch_fn, f_fn, method) in _TORCH_FNS.items():
        out.append((torch, torch_fn.__name__, _wrap_dim_first(op, torch_fn)))
        out.append((F, f_fn.__name__, softmax if op == _SOFTMAX else log_softmax))
        out.append((Tensor, method.__name__, _wrap_dim_first(op, method)))
    return out


_REPLACEMENTS = _replacements()


@contextlib.contextmanager
def patched():
    """Inside this context (or a function decorated with @patched()),
    torch.softmax, torch.nn.functional.softmax, Tensor.softmax, torch.log_softmax,
    torch.nn.functional.log_softmax and Tensor.log_softmax run on fastsoftmax;
    nn.Softmax / nn.LogSoftmax modules follow, as they call F.softmax. What was
    there before is put back on exit, also after an exception; nesting works.
    The patch is process-wide (other threads see it while it is active)."""
    # what each owner itself holds (Tensor.softmax is inherited from TensorBase:
    # nothing to put back but a deletion)
    saved = [(owner, name, vars(owner).get(name, _NO_ARG)) for owner, name, _ in _REPLACEMENTS]
    try:
        for owner, name, fn in _REPLACEMENTS:
            setattr(owner, name, fn)
        yield
    finally:
        for owner, name, fn in reversed(saved):
            if fn is _NO_ARG:
                delattr(owner, name)
            else:
                setattr(owner, name, fn)
