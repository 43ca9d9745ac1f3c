"""Thread count and SIMD tier: read once from the environment at import.

FASTSOFTMAX_NUM_THREADS sets the default thread count (OMP_NUM_THREADS is
honoured when it is unset); FASTSOFTMAX_ISA forces a lower SIMD tier.
Bad values raise ValueError at import, naming the variable and what is valid.
"""
import contextlib
import os
import platform
import threading

from . import _core

_lock = threading.Lock()
MAX_THREADS = 4096  # beyond any machine today; larger counts only cost thread start-up


def _cpu_count():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_name():
    """The CPU's model name (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _default_threads():
    raw = os.environ.get("FASTSOFTMAX_NUM_THREADS")
    if raw is not None and raw.strip():
        try:
            n = int(raw.strip())
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_THREADS:
            raise ValueError(f"FASTSOFTMAX_NUM_THREADS must be a positive integer (at most {MAX_THREADS}), "
                             f"got {raw!r}")
        return n
    raw = os.environ.get("OMP_NUM_THREADS", "")
    first = raw.split(",")[0].strip()
    if first.isdigit() and 1 <= int(first) <= MAX_THREADS:  # OpenMP ignores malformed values too
        return int(first)
    return _cpu_count()


_num_threads = _default_threads()


def get_num_threads():
    """The number of threads the kernels use for large enough inputs."""
    return _num_threads


def set_num_threads(n):
    """Use `n` threads (n >= 1) for large enough inputs; small ones always run on one."""
    global _num_threads
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads() takes an integer, got {type(n).__name__}")
    n = int(n.__index__())
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"set_num_threads() needs n >= 1 (and at most {MAX_THREADS}), got {n}")
    with _lock:
        _num_threads = n


@contextlib.contextmanager
def num_threads(n):
    """Context manager: use `n` threads inside the block, restore the old count after (also on error)."""
    old = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(old)


def isa():
    """The SIMD tier in use: 'avx512f', 'avx2' or 'generic'."""
    return _core.get_tier()


def _select_tier():
    raw = os.environ.get("FASTSOFTMAX_ISA")
    if raw is None or not raw.strip():
        _core.set_tier(_core.best_tier())
        return
    name = raw.strip().lower()
    names = _core.tier_names()
    if name not in names:
        raise ValueError(f"FASTSOFTMAX_ISA={raw!r} is not a SIMD tier; valid values: {', '.join(names)}")
    if name not in _core.supported_tiers():
        raise ValueError(f"FASTSOFTMAX_ISA={raw!r}: this CPU cannot run that tier; "
                         f"valid values here: {', '.join(_core.supported_tiers())}")
    _core.set_tier(name)


_select_tier()
