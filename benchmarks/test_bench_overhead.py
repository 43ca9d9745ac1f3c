"""Per-call cost of tiny calls: the public API, the compiled entry point it ends
in (`_core.run`), np.copyto and torch.softmax on the same (n,) float32 array.
The difference between `softmax(x, out=o)` and `_core.run` is the Python-side
overhead of one call."""
import functools

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _core

CALLS = ["softmax(x)", "softmax(x, out=o)", "_core.run", "np.copyto", "torch.softmax"]


@pytest.mark.parametrize("n", [1, 8, 1000])
@pytest.mark.parametrize("name", CALLS)
def test_overhead(benchmark, name, n):
    benchmark.group = f"overhead: float32 ({n},)"
    x = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    o = np.empty_like(x)
    if name == "softmax(x)":
        call = functools.partial(fs.softmax, x)
    elif name == "softmax(x, out=o)":
        call = functools.partial(fs.softmax, x, out=o)
    elif name == "_core.run":
        call = functools.partial(_core.run, _core.SOFTMAX, x, o, 0, 1)
    elif name == "np.copyto":
        call = functools.partial(np.copyto, o, x)
    else:
        torch = pytest.importorskip("torch")
        call = functools.partial(torch.softmax, torch.from_numpy(x), -1)
    call()
    benchmark(call)
