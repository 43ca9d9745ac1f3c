"""Fixtures shared by the suite.

* ``isa``: parametrized over every SIMD tier this CPU supports
  (``fastsoftmax._core.supported_tiers()``); switches the kernel table for the
  test and restores the tier that was in use afterwards.
* ``threads``: a helper ``threads(fn)`` that calls ``fn()`` at 1 and at 2
  threads, asserts the two results are bit-identical and returns the result.
* ``rng``: a seeded NumPy generator, different per test but reproducible.
* Hypothesis profiles: ``ci`` (the default: 300 examples, no deadline),
  ``long`` (2000 examples) and ``fuzz`` (FASTSOFTMAX_FUZZ_EXAMPLES per test,
  default 12,500: with the 10 property tests, 125,000 cases; run it with
  tools/fuzz_long.sh, which counts the cases); pick one with
  HYPOTHESIS_PROFILE=long (or fuzz).

Long runs beyond the default suite are behind FASTSOFTMAX_LONG_TESTS=1.

FASTSOFTMAX_TEST_SHARD=k/N runs shard k (0 <= k < N) of the collected tests,
each test in exactly one shard by a hash of its id: N processes side by side
(tools/sanitize.sh's SANITIZE_SHARDS) run the whole suite once between them.
"""
import os
import sys
import zlib

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # for `import _helpers`

import fastsoftmax  # noqa: E402
from fastsoftmax import _core  # noqa: E402

from _helpers import at_1_and_2_threads  # noqa: E402

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci", max_examples=300, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile(
        "long", max_examples=2000, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile(
        "fuzz", max_examples=int(os.environ.get("FASTSOFTMAX_FUZZ_EXAMPLES", "12500")), deadline=None,
        print_blob=True, suppress_health_check=list(HealthCheck))
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass

TIERS = _core.supported_tiers()


@pytest.fixture(params=TIERS)
def isa(request):
    """Run the test once per supported SIMD tier; yields the tier name."""
    old = _core.get_tier()
    _core.set_tier(request.param)
    assert fastsoftmax.isa() == request.param
    try:
        yield request.param
    finally:
        _core.set_tier(old)


@pytest.fixture
def threads():
    """threads(fn): fn() at 1 and 2 threads, bit-identical, returns the result."""
    return at_1_and_2_threads


@pytest.fixture
def rng(request):
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(autouse=True)
def _restore_global_state():
    """No test may leak a thread count or tier into the next one."""
    n, t = fastsoftmax.get_num_threads(), _core.get_tier()
    yield
    assert fastsoftmax.get_num_threads() == n, "a test changed the thread count"
    assert _core.get_tier() == t, "a test changed the SIMD tier"


def _shard():
    value = os.environ.get("FASTSOFTMAX_TEST_SHARD", "").strip()
    if not value:
        return None
    try:
        k, n = (int(v) for v in value.split("/"))
    except ValueError:
        k = n = -1
    if not 0 <= k < n:
        raise pytest.UsageError(f"FASTSOFTMAX_TEST_SHARD={value!r}: give k/N with 0 <= k < N")
    return k, n


def pytest_collection_modifyitems(config, items):
    shard = _shard()
    if shard is None:
        return
    k, n = shard
    ours = [zlib.crc32(it.nodeid.encode()) % n == k for it in items]
    config.hook.pytest_deselected(items=[it for it, o in zip(items, ours) if not o])
    items[:] = [it for it, o in zip(items, ours) if o]
