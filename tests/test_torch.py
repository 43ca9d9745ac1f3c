"""fastsoftmax.torch against torch.nn.functional.

Forward and backward over shapes, dims, dtypes and layouts (contiguous,
transposed, sliced, expanded) against a float64 reference with the contract's
ULP bounds and against PyTorch's own; gradcheck and gradgradcheck; the dim=None
rule and its warning; custom ops (opcheck) and torch.compile(fullgraph=True);
TorchScript and jit.trace; patched(); the fallbacks to PyTorch (their results
and errors are PyTorch's own); torch staying optional.

CI sets FASTSOFTMAX_REQUIRE_TORCH=1: there a missing torch fails the run
instead of skipping these tests.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

if os.environ.get("FASTSOFTMAX_REQUIRE_TORCH") == "1":
    import torch
else:
    torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import fastsoftmax  # noqa: E402
import fastsoftmax.torch as fst  # noqa: E402
from _helpers import check, same_bits  # noqa: E402
from test_backward import check as check_backward  # noqa: E402

OPS = {"softmax": (fst.softmax, F.softmax), "log_softmax": (fst.log_softmax, F.log_softmax)}
DTYPES = [torch.float32, torch.float64]


def layout(t, kind):
    """A tensor equal to t with the given memory layout (same shape)."""
    if kind == "contiguous":
        return t.contiguous()
    if kind == "transposed":  # the last two dims swapped in memory
        return t.transpose(-1, -2).contiguous().transpose(-1, -2) if t.dim() >= 2 else t
    if kind == "sliced":  # every other element of a twice-as-long last dim
        big = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype) if t.dim() else t
        if t.dim():
            big[..., ::2] = t
            return big[..., ::2]
        return t
    if kind == "permuted":  # memory order reversed
        order = tuple(reversed(range(t.dim())))
        return t.permute(order).contiguous().permute(order)
    raise ValueError(kind)


SHAPES_DIMS = [((), 0), ((7,), 0), ((1,), -1), ((4, 32), -1), ((4, 32), 0), ((33, 5), 1), ((3, 5, 17), 1),
               ((3, 5, 17), -1), ((3, 5, 17), 0), ((2, 3, 4, 9), 2), ((2, 70000), 1), ((0, 5), 1), ((5, 0), 1)]


def _values(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 4).to(dtype)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["contiguous", "transposed", "sliced", "permuted"])
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS)
def test_forward_matches_reference_and_torch(name, dtype, kind, shape, dim):
    ours, theirs = OPS[name]
    x = layout(_values(shape, dtype, len(shape) * 31 + dim), kind)
    y = ours(x, dim)
    ref = theirs(x, dim)
    assert type(y) is torch.Tensor and y.dtype == ref.dtype and y.shape == ref.shape
    # PyTorch's own output layout (strides of dims of length 1 carry no meaning)
    assert y.is_contiguous()
    if y.numel():
        assert all(a == b for a, b, n in zip(y.stride(), ref.stride(), y.shape) if n > 1)
    check(name, y.numpy(), x.numpy(), dim)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(y, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", OPS)
def test_expanded_and_offset_inputs(name):
    ours, theirs = OPS[name]
    base = _values((1, 40), torch.float32, 1)
    for x in (base.expand(6, 40), base[:, 3:37], _values((5, 6, 7), torch.float64, 2)[1:4, ::2, 1:]):
        for dim in range(-x.dim(), x.dim()):
            torch.testing.assert_close(ours(x, dim), theirs(x, dim), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", OPS)
def test_special_values_as_torch(name):
    ours, theirs = OPS[name]
    inf, nan = float("inf"), float("nan")
    x = torch.tensor([[0.0, -inf, 1.0], [nan, 0.0, 1.0], [inf, 0.0, 1.0], [-inf, -inf, -inf], [3e38, -3e38, 0.0]])
    torch.testing.assert_close(ours(x, 1), theirs(x, 1), equal_nan=True)


@pytest.mark.parametrize("name", OPS)
def test_dtype_argument_casts_first(name):
    ours, theirs = OPS[name]
    x32 = _values((4, 9), torch.float32, 3)
    for x, dt in ((x32, torch.float64), (x32.double(), torch.float32), (x32.half(), torch.float32),
                  (torch.arange(12).reshape(3, 4), torch.float64), (x32, torch.float32)):
        y, ref = ours(x, 1, dtype=dt), theirs(x, 1, dtype=dt)
        assert y.dtype == ref.dtype == dt
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)


def test_results_identical_at_1_and_2_threads():
    x = _values((64, 3000), torch.float32, 4)
    with fastsoftmax.num_threads(1):
        a = fst.softmax(x, 1).numpy().copy(), fst.log_softmax(x.t(), 1).numpy().copy()
    with fastsoftmax.num_threads(2):
        b = fst.softmax(x, 1).numpy(), fst.log_softmax(x.t(), 1).numpy()
    assert same_bits(a[0], b[0]) and same_bits(a[1], b[1])


# ---- backward ----------------------------------------------------------------

@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["contiguous", "transposed", "sliced"])
@pytest.mark.parametrize("shape,dim", [((7,), 0), ((4, 32), -1), ((4, 32), 0), ((3, 5, 17), 1), ((2, 9000), 1)])
def test_backward_matches_reference_and_torch(name, dtype, kind, shape, dim):
    ours, theirs = OPS[name]
    x0 = layout(_values(shape, dtype, 5), kind)
    g = layout(_values(shape, dtype, 6), kind)
    x1 = x0.clone().requires_grad_()
    x2 = x0.clone().requires_grad_()
    y = ours(x1, dim)
    y.backward(g)
    theirs(x2, dim).backward(g)
    check_backward(name + "_backward", x1.grad.numpy(), y.detach().numpy(), g.numpy(), dim)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(x1.grad, x2.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", OPS)
def test_backward_with_expanded_grad(name):
    # y.sum().backward() hands backward a stride-0 gradient
    ours, theirs = OPS[name]
    x1 = _values((6, 50), torch.float64, 7).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    (ours(x1, 1) * 3).sum().backward()
    (theirs(x2, 1) * 3).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape,dim,kind", [((5,), 0, "contiguous"), ((3, 6), 1, "contiguous"),
                                            ((3, 6), 0, "transposed"), ((2, 3, 4), 1, "permuted"),
                                            ((2, 3, 8), -1, "sliced"), ((), 0, "contiguous")])
def test_gradcheck_and_gradgradcheck(name, shape, dim, kind):
    ours, _ = OPS[name]
    x = layout(_values(shape, torch.float64, 8), kind).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: ours(a, dim), (x,))
    assert torch.autograd.gradgradcheck(lambda a: ours(a, dim), (x,))


def test_only_the_output_is_saved():
    x = _values((3, 8), torch.float64, 9).requires_grad_()
    y = fst.softmax(x, 1)
    saved = y.grad_fn.saved_tensors
    assert len(saved) == 1 and saved[0].data_ptr() == y.data_ptr()
    y.mul_(2)  # modifying the saved output in place must be caught, as PyTorch does
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_no_grad_and_inference_mode_take_the_fast_path():
    x = _values((3, 8), torch.float32, 10).requires_grad_()
    with torch.no_grad():
        assert fst.softmax(x, 1).grad_fn is None
    with torch.inference_mode():
        y = fst.log_softmax(_values((3, 8), torch.float32, 10), 1)
        assert y.is_inference()
    assert fst.softmax(x, 1).grad_fn is not None


# ---- dim=None, modules, errors ---------------------------------------------------

@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_legacy_dim_rule_and_warning(name, ndim):
    ours, theirs = OPS[name]
    x = _values((3,) * ndim, torch.float32, 11)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        y = ours(x)
        ref = theirs(x)
    assert len(got) == 2
    assert str(got[0].message) == str(got[1].message)
    assert got[0].category is got[1].category
    assert got[0].filename == got[1].filename == __file__  # points at the caller, as PyTorch's does
    torch.testing.assert_close(y, ref)


@pytest.mark.parametrize("cls,theirs", [(fst.Softmax, torch.nn.Softmax), (fst.LogSoftmax, torch.nn.LogSoftmax)])
def test_modules(cls, theirs):
    x = _values((2, 3, 4), torch.float32, 12)
    for dim in (0, 1, -1):
        m = cls(dim)
        assert isinstance(m, theirs) and repr(m) == repr(theirs(dim)).replace(theirs.__name__, cls.__name__)
        torch.testing.assert_close(m(x), theirs(dim)(x))
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        torch.testing.assert_close(cls()(x), theirs()(x))
    assert len(got) == 2 and got[0].filename == got[1].filename
    m = cls(1)
    m2 = cls()
    m2.load_state_dict(m.state_dict())


def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the point is to compare any error
        return type(e), str(e)
    return None


@pytest.mark.parametrize("name", OPS)
def test_errors_are_torchs(name):
    ours, theirs = OPS[name]
    x = _values((3, 4), torch.float32, 13)
    cases = [lambda f: f(x, 2), lambda f: f(x, -3), lambda f: f(x, 1.0), lambda f: f(x, True),
             lambda f: f(torch.arange(4), 0), lambda f: f(x, 0, dtype=torch.long),
             lambda f: f([1.0, 2.0], 0), lambda f: f(_values((), torch.float32, 1), 1)]
    for case in cases:
        expected = _error(lambda: case(theirs))
        assert expected is not None
        assert _error(lambda: case(ours)) == expected


@pytest.mark.parametrize("name", OPS)
def test_fallbacks_give_torchs_results(name):
    ours, theirs = OPS[name]
    x = _values((5, 7), torch.float32, 14)
    meta = torch.empty(5, 7, device="meta")
    assert ours(meta, 1).device.type == "meta"
    # torch.func transforms and vmap see PyTorch's own op
    torch.testing.assert_close(torch.vmap(lambda a: ours(a, 0))(x), torch.vmap(lambda a: theirs(a, 0))(x))
    gx = torch.func.grad(lambda a: ours(a, 0)[1])(x[0])
    torch.testing.assert_close(gx, torch.func.grad(lambda a: theirs(a, 0)[1])(x[0]))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype,bits", [(torch.float16, 10), (torch.bfloat16, 7)])
@pytest.mark.parametrize("kind", ["contiguous", "transposed"])
def test_half_precision_runs_on_the_kernels(name, dtype, bits, kind, kernel_calls):
    """float16 / bfloat16 are computed in float32 and rounded once: within 1 ULP
    of the exact result (PyTorch's own float16 log_softmax is off by far more)."""
    ours, theirs = OPS[name]
    x = layout(_values((6, 300), torch.float32, 26).to(dtype), kind)
    y = ours(x, 1)
    assert len(kernel_calls) == 1 and y.dtype == dtype and y.is_contiguous()
    exact = theirs(x.double(), 1)
    ulp = torch.exp2(torch.floor(torch.log2(exact.abs().clamp_min(1e-30))) - bits)
    ulp = ulp.clamp_min(torch.finfo(dtype).smallest_normal * 2.0 ** -bits)  # subnormal results
    assert bool(((y.double() - exact).abs() <= ulp).all())
    # gradients: in float32, rounded once
    xg = x.clone().requires_grad_()
    g = _values((6, 300), torch.float32, 27).to(dtype)
    ours(xg, 1).backward(g)
    x64 = x.double().requires_grad_()
    theirs(x64, 1).backward(g.double())
    torch.testing.assert_close(xg.grad.double(), x64.grad, rtol=2.0 ** (2 - bits), atol=2.0 ** (2 - bits))


def test_subclass_goes_through_torch_function():
    calls = []

    class Logged(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            calls.append(func)
            return super().__torch_function__(func, types, args, kwargs or {})

    x = _values((3, 4), torch.float32, 15).as_subclass(Logged)
    y = fst.softmax(x, 1)
    assert calls and isinstance(y, Logged)


# ---- torch.library, torch.compile, TorchScript --------------------------------------

@pytest.mark.parametrize("opname", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((3, 5), 1), ((4, 3, 6), 0), ((7,), -1)])
def test_opcheck(opname, shape, dim):
    fwd = getattr(torch.ops.fastsoftmax, opname).default
    bwd = getattr(torch.ops.fastsoftmax, opname + "_backward").default
    x = _values(shape, torch.float64, 16).requires_grad_()
    torch.library.opcheck(fwd, (x, dim))
    y = fwd(x.detach(), dim)
    torch.library.opcheck(bwd, (y, _values(shape, torch.float64, 17).requires_grad_(), dim))


class _Attention(torch.nn.Module):
    """Attention written by hand: the kind of model the bridge is for."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.heads = heads
        self.softmax = fst.Softmax(dim=-1)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = self.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5)
        return fst.log_softmax((a @ v).transpose(1, 2).reshape(b, t, d), dim=-1)


def test_torch_compile_fullgraph_uses_the_custom_ops():
    torch.manual_seed(0)
    model = _Attention()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(str(gm.graph))
        return gm.forward

    compiled = torch.compile(model, backend=backend, fullgraph=True)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(compiled(x), model(x))
    assert any("fastsoftmax.softmax" in g for g in graphs) and any("fastsoftmax.log_softmax" in g for g in graphs)
    # and the default inductor backend, forward and backward
    compiled = torch.compile(model, fullgraph=True)
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    compiled(xa).sum().backward()
    model(xb).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_and_tracing_use_torchs_op():
    torch.manual_seed(0)
    model = _Attention()
    x = torch.randn(2, 5, 16)
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), model(x))
    traced = torch.jit.trace(model, x)
    graph = str(traced.inlined_graph)
    assert "aten::softmax" in graph and "aten::log_softmax" in graph
    torch.testing.assert_close(traced(x), model(x))


# ---- patched() -------------------------------------------------------------------------

ENTRY_POINTS = {
    "torch.softmax": lambda x: torch.softmax(x, 1),
    "torch.softmax(dtype)": lambda x: torch.softmax(x, 1, dtype=torch.float64),
    "F.softmax": lambda x: F.softmax(x, dim=1),
    "Tensor.softmax": lambda x: x.softmax(1),
    "Tensor.softmax(dim=)": lambda x: x.softmax(dim=1),
    "torch.log_softmax": lambda x: torch.log_softmax(x, 1),
    "F.log_softmax": lambda x: F.log_softmax(x, 1),
    "Tensor.log_softmax": lambda x: x.log_softmax(1),
    "nn.Softmax": lambda x: torch.nn.Softmax(1)(x),
    "nn.LogSoftmax": lambda x: torch.nn.LogSoftmax(dim=1)(x),
}


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls that reach fastsoftmax's kernels."""
    calls, depth = [], [0]
    for name in ("_fast", "_run"):
        real = getattr(fst, name)

        def spy(*args, _real=real):
            depth[0] += 1  # _fast may reach _run through autograd: count the outer call only
            try:
                y = _real(*args)
            finally:
                depth[0] -= 1
            if y is not None and depth[0] == 0:
                calls.append(1)
            return y

        monkeypatch.setattr(fst, name, spy)
    return calls


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_patched_routes_every_entry_point(entry, kernel_calls):
    x = _values((4, 9), torch.float32, 18)
    expected = ENTRY_POINTS[entry](x)
    assert not kernel_calls
    with fst.patched():
        y = ENTRY_POINTS[entry](x)
    assert len(kernel_calls) == 1
    torch.testing.assert_close(y, expected)
    ENTRY_POINTS[entry](x)
    assert len(kernel_calls) == 1  # restored


def _originals():
    return (torch.softmax, F.softmax, torch.Tensor.softmax, torch.log_softmax, F.log_softmax,
            torch.Tensor.log_softmax)


def test_patched_restores_after_exception_and_nests():
    before = _originals()
    own = {k: set(vars(o)) for k, o in (("torch", torch), ("F", F), ("Tensor", torch.Tensor))}
    with pytest.raises(KeyError):
        with fst.patched():
            assert _originals() != before
            raise KeyError("boom")
    assert _originals() == before
    with fst.patched():
        inside = _originals()
        with fst.patched():
            pass
        assert _originals() == inside
    assert _originals() == before
    assert own == {k: set(vars(o)) for k, o in (("torch", torch), ("F", F), ("Tensor", torch.Tensor))}


def test_patched_as_decorator_and_with_a_model(kernel_calls):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Softmax(dim=-1))
    x = torch.randn(3, 8)
    expected = model(x)

    @fst.patched()
    def run():
        return model(x)

    torch.testing.assert_close(run(), expected)
    assert len(kernel_calls) == 1
    assert F.softmax is _originals()[1]


def test_patched_keeps_torchs_errors_and_other_forms():
    x = _values((3, 4), torch.float32, 19)
    cases = [lambda: torch.softmax(x), lambda: x.softmax(), lambda: torch.softmax(x, None),
             lambda: x.softmax(5), lambda: torch.softmax(x, dim=1, dtype=torch.long),
             lambda: torch.softmax(x, 0, torch.float64), lambda: torch.softmax(input=x, dim=1)]
    expected = [_error(c) or c() for c in cases]
    with fst.patched():
        got = [_error(c) or c() for c in cases]
    for e, g in zip(expected, got):
        if isinstance(e, torch.Tensor):
            torch.testing.assert_close(g, e)
        else:
            assert g == e


# ---- torch stays optional ---------------------------------------------------------------

def test_import_fastsoftmax_does_not_import_torch():
    code = "import sys, fastsoftmax, numpy as np; fastsoftmax.softmax(np.ones(3)); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_without_torch_says_how_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import fastsoftmax.torch\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install fastsoftmax[torch]" in out.stdout


# ---- properties ------------------------------------------------------------------------

try:
    from hypothesis import given, strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    given = None

if given is not None:
    @st.composite
    def strided_tensors(draw):
        """A float32/float64 tensor of 0-4 dims (lengths 0-9) viewed with random
        steps, a random permutation and sometimes an expanded dim, plus a dim."""
        nd = draw(st.integers(0, 4))
        shape = draw(st.lists(st.integers(0, 9), min_size=nd, max_size=nd))
        steps = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
        dtype = draw(st.sampled_from(DTYPES))
        seed = draw(st.integers(0, 2**31 - 1))
        big = _values([s * k for s, k in zip(shape, steps)], dtype, seed)
        special = draw(st.sampled_from([None, float("nan"), float("inf"), float("-inf"), 3e38]))
        if special is not None and big.numel():
            big.view(-1)[draw(st.integers(0, big.numel() - 1))] = special
        x = big[tuple(slice(None, None, k) for k in steps)] if nd else big
        if nd:
            x = x.permute(draw(st.permutations(range(nd))))
            if draw(st.booleans()):
                d = draw(st.integers(0, nd - 1))
                x = x.narrow(d, 0, min(1, x.shape[d])).expand(*[s if i != d else 3 * min(1, s)
                                                                 for i, s in enumerate(x.shape)])
        dim = draw(st.integers(-max(nd, 1), max(nd, 1) - 1))
        return x, dim

    @given(strided_tensors(), st.sampled_from(list(OPS)))
    def test_any_strides_match_torch(xd, name):
        x, dim = xd
        ours, theirs = OPS[name]
        y, ref = ours(x, dim), theirs(x, dim)
        assert y.shape == ref.shape and y.dtype == ref.dtype and y.is_contiguous()
        tol = 1e-5 if x.dtype == torch.float32 else 1e-12
        torch.testing.assert_close(y, ref, rtol=tol, atol=tol, equal_nan=True)


# ---- hardening: threads and leaks -------------------------------------------------------

def test_many_python_threads_bit_identical():
    import threading
    x = _values((300, 200), torch.float32, 20)  # 60,000 elements: OpenMP inside each call
    xs = _values((4, 33), torch.float64, 21)
    g = _values((300, 200), torch.float32, 22)
    with fastsoftmax.num_threads(1):
        serial = [fst.softmax(x, 0), fst.log_softmax(xs, 1)]
        xg = x.clone().requires_grad_()
        fst.softmax(xg, 1).backward(g)
        serial.append(xg.grad)
    errors, done = [], []

    def worker(tid):
        try:
            for i in range(1000):
                k = (i + tid) % 3
                if k == 0:
                    r = fst.softmax(x, 0)
                elif k == 1:
                    r = fst.log_softmax(xs, 1)
                else:
                    xg = x.clone().requires_grad_()
                    fst.softmax(xg, 1).backward(g)
                    r = xg.grad
                if not torch.equal(r, serial[k]):
                    errors.append((tid, i, k))
                    return
            done.append(tid)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((tid, repr(e)))

    ths = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in ths), "deadlock?"
    assert not errors and sorted(done) == list(range(8)), errors[:5]


def test_no_leaks_rss_flat_and_refcounts_unchanged():
    import gc
    from test_hardening import rss_bytes

    x = _values((4, 33), torch.float32, 23)
    xt = _values((33, 4), torch.float64, 24).t()
    g = _values((4, 33), torch.float32, 25)

    def rounds(n):
        for i in range(n):
            fst.softmax(x, 1)
            fst.log_softmax(xt, 0)
            fst.softmax(x, 1, dtype=torch.float64)
            xg = x.detach().requires_grad_()
            fst.log_softmax(xg, 1).backward(g)
            if i % 8 == 0:
                for bad in (lambda: fst.softmax(x, 5), lambda: fst.softmax(torch.arange(3), 0)):
                    try:
                        bad()
                    except (IndexError, RuntimeError, NotImplementedError):
                        pass
                    else:
                        raise AssertionError("expected an error")

    rounds(2000)
    gc.collect()
    rx, rxt, rg = sys.getrefcount(x), sys.getrefcount(xt), sys.getrefcount(g)
    before = rss_bytes()
    rounds(20000)
    gc.collect()
    growth = rss_bytes() - before
    assert (sys.getrefcount(x), sys.getrefcount(xt), sys.getrefcount(g)) == (rx, rxt, rg)
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.2f} MiB over 20,000 rounds"
