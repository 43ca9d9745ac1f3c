"""pytest-benchmark suite for fastsoftmax: `pytest benchmarks/ --benchmark-only`.

Thread count: `--threads N` or the environment variable FASTSOFTMAX_BENCH_THREADS
(default 1). It applies to fastsoftmax (set_num_threads), PyTorch
(torch.set_num_threads) and onnxruntime (intra_op_num_threads); JAX cannot be
set per call, so, as in `python -m fastsoftmax bench`, this process's CPU
affinity is cut to N CPUs (when fewer than available) and for N == 1 XLA is run
single-threaded through XLA_FLAGS, before JAX is imported. Run one thread count
per pytest invocation.

The cases, the implementations and the error measure are those of
`fastsoftmax._bench`, so this suite and the command always measure the same things.
"""
import os

import pytest

from fastsoftmax import _bench


def pytest_addoption(parser):
    parser.addoption("--threads", type=int, default=None,
                     help="threads for fastsoftmax, torch, onnxruntime and jax "
                          "(default: $FASTSOFTMAX_BENCH_THREADS or 1)")


def _threads(config):
    t = config.getoption("--threads")
    if t is None:
        t = int(os.environ.get("FASTSOFTMAX_BENCH_THREADS", "1"))
    if t < 1:
        raise pytest.UsageError(f"--threads must be >= 1, got {t}")
    return t


def pytest_configure(config):
    t = _threads(config)
    config._fastsoftmax_cpus = _bench.limit_process_threads(t)  # before anything imports jax
    import fastsoftmax
    fastsoftmax.set_num_threads(t)


def pytest_report_header(config):
    import fastsoftmax
    v = _bench.versions()
    peers = ", ".join(f"{k} {v[k]}" for k in ("numpy", "scipy", "torch", "onnxruntime", "jax") if k in v)
    return [f"fastsoftmax {v.get('fastsoftmax', '?')}: threads={_threads(config)} "
            f"(CPUs {','.join(map(str, config._fastsoftmax_cpus))}), SIMD tier {fastsoftmax.isa()}, "
            f"CPU {_bench.cpu_name()}",
            f"peers: {peers}"]


def pytest_benchmark_update_machine_info(config, machine_info):
    import fastsoftmax
    machine_info["fastsoftmax"] = {"threads": _threads(config), "cpus": config._fastsoftmax_cpus,
                                   "isa": fastsoftmax.isa(), "cpu": _bench.cpu_name(),
                                   "versions": _bench.versions()}


@pytest.fixture(scope="session")
def threads(request):
    return _threads(request.config)


@pytest.fixture(scope="session")
def impl_status():
    """{implementation: None if it can run here, else why not}."""
    return _bench.available_impls()
