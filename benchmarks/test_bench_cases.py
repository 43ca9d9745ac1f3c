"""The cases of issue 3, each timed for every implementation and the copy and stream floors.

One pytest-benchmark group per case, so the table lists the implementations of
a case side by side. Implementations missing here are skipped with the reason.
Each benchmark records its max abs error against the float64 (long double for
float64 input) reference in extra_info["max_error"] (see --benchmark-json).
"""
import functools

import pytest

from fastsoftmax import _bench

IMPLS = {impl.key: impl for impl in _bench.IMPLS}
PARAMS = [pytest.param(case, key, id=f"{case.id}-{key.replace(' out=', '_out').replace(' ', '_')}")
          for case in _bench.CASES for key in list(IMPLS) + list(_bench.FLOORS)]


@functools.lru_cache(maxsize=1)  # tests run case by case: keep one case's arrays at a time
def _case_data(case):
    x = case.make_input()
    return x, _bench.reference(case, x)


@pytest.mark.parametrize("case, key", PARAMS)
def test_case(benchmark, case, key, threads, impl_status):
    benchmark.group = f"{case.name} | threads={threads}"
    if key in IMPLS and impl_status.get(key) is not None:
        pytest.skip(impl_status[key])
    if key == _bench.COPY_T and threads == 1:
        pytest.skip("the multi-threaded copy floor runs only with --threads > 1")
    x, ref = _case_data(case)
    if key in ("copy", _bench.COPY_T):
        call, _ = _bench._copy_floor(case, x, threads if key == _bench.COPY_T else 1)
        benchmark.extra_info["bytes"] = case.bytes_moved
    elif key == _bench.STREAM:
        call = _bench._stream_floor(case, x, threads)
        benchmark.extra_info["bytes"] = case.bytes_moved
    else:
        try:
            call, to_numpy = IMPLS[key].prepare(case, x, threads)
            err = _bench.max_error(to_numpy(call()), ref)
        except _bench.Unsupported as e:
            pytest.skip(str(e))
        except Exception as e:  # a peer that rejects this dtype or layout
            pytest.skip(f"{key} cannot run {case.name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
        benchmark.extra_info.update(max_error=err, bytes=case.bytes_moved)
    call()  # warm-up: page faults of the output, JIT
    benchmark(call)
