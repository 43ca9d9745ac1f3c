"""fastsoftmax: the fastest correct softmax, log_softmax and logsumexp on a CPU.

    >>> import numpy as np, fastsoftmax as fs
    >>> fs.softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])

Works over any axis of any NumPy array (any strides, no copy for one axis),
with SIMD kernels picked for this CPU at import and OpenMP threads.
`import fastsoftmax` imports NumPy only; the PyTorch bridge is fastsoftmax.torch.
"""
from ._config import get_num_threads, isa, num_threads, set_num_threads
from ._api import log_softmax, log_softmax_backward, logsumexp, softmax, softmax_backward

__version__ = "0.1.0"

__all__ = [
    "softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
    "get_num_threads", "set_num_threads", "num_threads", "isa", "show_config",
]


def show_config():
    """A dict describing this build: version, SIMD tiers, OpenMP and threads."""
    from . import _core
    return {
        "version": __version__,
        "isa": isa(),
        "isa_available": _core.supported_tiers(),
        "isa_compiled": _core.tier_names(),
        "openmp": _core.openmp_enabled(),
        "num_threads": get_num_threads(),
    }
