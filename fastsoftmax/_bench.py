"""`python -m fastsoftmax bench`: fastsoftmax against the peers installed here.

One table per thread count. Each row is a case (op, shape, dtype, axis, layout);
each column an implementation, with its median time per call and the largest
absolute error against a high-precision reference (float64 for float32/float16
input, long double for float64 input) printed next to it. The tail of the row
gives fastsoftmax's throughput (bytes read + bytes written per second), the
fastest peer, and fastsoftmax's time as a ratio to that peer and to the copy
floor.

Method
------
* Every thread count runs in its own worker process (``python -c``), so that
  libraries which fix their thread pools at start-up (JAX/XLA) get the right
  count: the worker's CPU affinity is cut to ``t`` CPUs when ``t`` is below the
  CPUs available, and for ``t == 1`` XLA is also told to run single-threaded
  (``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``).
  fastsoftmax (``set_num_threads``), PyTorch (``torch.set_num_threads``) and
  onnxruntime (``intra_op_num_threads``, ``inter_op_num_threads=1``) are set
  explicitly; NumPy and SciPy are single-threaded here.
* Per case: build the input once (seeded, standard normal times 4), call every
  implementation once or twice to warm up (JIT compilation, page faults of the
  output buffers) and measure its error from the first result; then time the
  best of three calls of each (one if it is slow) to choose how many calls make
  one sample (at least ``sample_s``), and how many rounds fit the time budget
  (between ``min_rounds`` and ``max_rounds``).
  A round times one sample of every implementation, interleaved in an order
  shuffled each round (so no implementation always follows the same one). Each
  sample is preceded by one untimed call, which wakes the library's worker
  threads and lets those the previous library left spinning (OpenMP,
  onnxruntime) wind down; the sample then times back-to-back calls. The figure
  reported is the median over rounds of (sample time / calls per sample). The
  garbage collector is off while timing.
* Each table states the CPU time other processes used while it ran (from
  /proc/stat): on a shared machine, a multi-threaded call stalls whenever one
  of its threads is not scheduled.
* The copy floor is ``np.copyto(dst, src)`` on preallocated contiguous arrays
  moving the same number of bytes as the op (for softmax: a copy of the input;
  for logsumexp, which reads n and writes n/rows, a copy of (n + n/rows)/2
  elements). np.copyto is single-threaded, so at ``t > 1`` threads a second
  floor, "copy mt", cuts the same copy into ``t`` page-aligned chunks copied by
  ``t`` threads at once (np.copyto releases the GIL); fastsoftmax's ratio to
  the copy floor uses the faster of the two.
* The stream floor ("stream") copies the same bytes in C (``_core.stream_copy``)
  on the table's thread count, reading each byte once and writing it once
  with non-temporal stores. np.copyto's plain stores read each line of the
  destination before writing it, so a softmax that streams its output can run
  below the copy floor; on arrays far larger than the caches nothing that
  reads x and writes y can run below the stream floor. In cache it is no
  floor (its stores go to memory).

Implementations (the column names)
----------------------------------
fs out=     fastsoftmax.<op>(x, axis, out=np.empty_like(x))   (a C array for logsumexp)
fs          fastsoftmax.<op>(x, axis)                      allocates its output
numpy out=  m = x.max(axis, keepdims); subtract/exp/sum/divide into a preallocated out
scipy       scipy.special.softmax / log_softmax / logsumexp  allocates
torch       torch.<op>(torch.from_numpy(x), dim)           allocates
torch out=  torch.<op>(..., out=torch.from_numpy(preallocated))
ort out=    onnxruntime InferenceSession of one Softmax / LogSoftmax / ReduceLogSumExp
            node (opset 18), run with IOBinding on the input memory and a
            preallocated output
jax         jax.jit(jax.nn.<op>)(device array).block_until_ready(); XLA allocates

A peer needing C-contiguous memory (onnxruntime, JAX) is given the memory of a
transposed view as it lies, with the axis mapped (``(4096, 4096).T`` axis=-1
becomes axis=0 of the contiguous base); nothing is copied.
"""
import functools
import gc
import importlib.metadata
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

# ----------------------------------------------------------------------------- cases

_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16}
_SHORT = {"float32": "", "float64": " f64", "float16": " f16"}


@dataclass(frozen=True)
class Case:
    """One benchmark case: op over `axis` of an array of `shape` and `dtype`.

    layout "C" is a C-contiguous array; "T" is the transposed view `base.T` of a
    C-contiguous `base` of the reversed shape (so the axis has a large stride)."""
    op: str
    shape: tuple
    dtype: str = "float32"
    axis: int = -1
    layout: str = "C"

    @property
    def name(self):
        shape = "(" + ", ".join(str(s) for s in self.shape) + ("," if len(self.shape) == 1 else "") + ")"
        s = f"{self.op} {shape}"
        if self.layout == "T":
            s += ".T"
        if self.axis != -1:
            s += f" axis={self.axis}"
        return s + _SHORT[self.dtype]

    @property
    def id(self):
        """The name as one word, for pytest ids and -k: softmax_4096x4096T_axis0_f64."""
        s = f"{self.op}_{'x'.join(str(v) for v in self.shape)}" + ("T" if self.layout == "T" else "")
        if self.axis != -1:
            s += f"_axis{self.axis}"
        return s + _SHORT[self.dtype].replace(" ", "_")

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def out_shape(self):
        if self.op == "logsumexp":
            ax = self.axis % len(self.shape)
            return tuple(s for d, s in enumerate(self.shape) if d != ax)
        return self.shape

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize

    @property
    def bytes_moved(self):
        """Bytes read plus bytes written by an ideal implementation."""
        return (self.size + math.prod(self.out_shape)) * self.itemsize

    def make_input(self, seed=0):
        rng = np.random.default_rng(seed)
        dt = _DTYPES[self.dtype]
        shape = self.shape[::-1] if self.layout == "T" else self.shape
        gen_dt = np.float32 if dt == np.float16 else dt
        base = rng.standard_normal(shape, dtype=gen_dt)
        base *= 4
        base = base.astype(dt, copy=False)
        return base.T if self.layout == "T" else base


CASES = [
    Case("softmax", (1000,)),
    Case("softmax", (64, 1000)),
    Case("softmax", (8, 32000)),
    Case("softmax", (4, 128256)),
    Case("softmax", (1, 12, 128, 128)),
    Case("softmax", (1, 12, 512, 512)),
    Case("softmax", (1, 16, 1024, 1024)),
    Case("softmax", (4096, 4096)),
    Case("softmax", (4096, 4096), "float64"),
    Case("softmax", (4096, 4096), axis=0),
    Case("softmax", (64, 1000, 64), axis=1),
    Case("softmax", (4096, 4096), layout="T"),
    Case("softmax", (1, 10_000_000)),
    Case("softmax", (100000, 10)),
    Case("softmax", (8, 32000), "float16"),
    Case("log_softmax", (8, 32000)),
    Case("log_softmax", (4096, 4096)),
    Case("logsumexp", (8, 32000)),
    Case("logsumexp", (4096, 4096)),
]


def select_cases(patterns):
    """The cases whose name contains any of `patterns` (case-insensitive); all if none."""
    if not patterns:
        return list(CASES)
    pats = [p.lower() for p in patterns]
    return [c for c in CASES if any(p in c.name.lower() for p in pats)]


def contiguous_form(x, axis):
    """(base, base_axis, to_user): C-contiguous memory holding x, the axis in it,
    and a function mapping a result computed on base back to x's layout.
    A transposed view maps to its base without a copy; anything else is copied."""
    axis = axis % x.ndim
    if x.flags.c_contiguous:
        return x, axis, lambda y: y
    if x.T.flags.c_contiguous:
        return x.T, x.ndim - 1 - axis, lambda y: y.T
    return np.ascontiguousarray(x), axis, lambda y: y


def reference(case, x):
    """The op in float64 (long double for float64 input), fastsoftmax's test oracle."""
    from . import _reference
    dt = np.longdouble if x.dtype == np.float64 else np.float64
    return getattr(_reference, case.op)(x, axis=case.axis, dtype=dt)


def max_error(y, ref):
    y = np.asarray(y)
    if y.shape != ref.shape:
        return float("nan")
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(y.astype(ref.dtype) - ref))) if y.size else 0.0


# --------------------------------------------------------------------- implementations

class Unsupported(Exception):
    """This implementation cannot run this case (the message says why)."""


def _empty_out(case, x):
    """A preallocated result the way a user would make one: np.empty_like(x) (same
    memory order as x) for softmax/log_softmax, a C array for logsumexp."""
    return np.empty(case.out_shape, x.dtype) if case.op == "logsumexp" else np.empty_like(x)


def _fs_out(case, x, threads):
    import fastsoftmax as fs
    out = _empty_out(case, x)
    return functools.partial(getattr(fs, case.op), x, case.axis, out=out), lambda r: out


def _fs_alloc(case, x, threads):
    import fastsoftmax as fs
    return functools.partial(getattr(fs, case.op), x, case.axis), lambda r: r


def _np_softmax(x, axis, out):
    m = x.max(axis, keepdims=True)
    np.subtract(x, m, out=out)
    np.exp(out, out=out)
    out /= out.sum(axis, keepdims=True)
    return out


def _np_log_softmax(x, axis, out):
    m = x.max(axis, keepdims=True)
    np.subtract(x, m, out=out)
    s = np.exp(out).sum(axis, keepdims=True)
    out -= np.log(s)
    return out


def _np_logsumexp(x, axis, out):
    m = x.max(axis, keepdims=True)
    s = np.exp(x - m).sum(axis)
    return np.add(np.log(s), np.squeeze(m, axis), out=out)


def _numpy(case, x, threads):
    fn = {"softmax": _np_softmax, "log_softmax": _np_log_softmax, "logsumexp": _np_logsumexp}[case.op]
    out = _empty_out(case, x)
    return functools.partial(fn, x, case.axis, out), lambda r: out


def _scipy(case, x, threads):
    import scipy.special as sp
    return functools.partial(getattr(sp, case.op), x, axis=case.axis), lambda r: r


def _torch_fn(op):
    import torch
    return {"softmax": torch.softmax, "log_softmax": torch.log_softmax, "logsumexp": torch.logsumexp}[op]


def _torch_alloc(case, x, threads):
    import torch
    torch.set_num_threads(threads)
    return functools.partial(_torch_fn(case.op), torch.from_numpy(x), case.axis), lambda r: r.numpy()


def _torch_out(case, x, threads):
    import torch
    torch.set_num_threads(threads)
    out = _empty_out(case, x)
    o = torch.from_numpy(out)
    call = functools.partial(_torch_fn(case.op), torch.from_numpy(x), case.axis, out=o)
    r = call()
    if r.data_ptr() != o.data_ptr():
        raise Unsupported("torch did not write into out=")
    return call, lambda r: out


def _ort_model(op, shape, dtype, axis):
    from onnx import TensorProto, helper
    elem = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE,
            np.float16: TensorProto.FLOAT16}[np.dtype(dtype).type]
    inits = []
    if op == "logsumexp":
        out_shape = [s for d, s in enumerate(shape) if d != axis]
        inits.append(helper.make_tensor("axes", TensorProto.INT64, [1], [axis]))
        node = helper.make_node("ReduceLogSumExp", ["x", "axes"], ["y"], keepdims=0)
    else:
        out_shape = list(shape)
        node = helper.make_node({"softmax": "Softmax", "log_softmax": "LogSoftmax"}[op],
                                ["x"], ["y"], axis=axis)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", elem, list(shape))],
                              [helper.make_tensor_value_info("y", elem, out_shape)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8  # opset 18 needs IR >= 8; keeps older onnxruntime builds able to load it
    return model.SerializeToString()


def _ort(case, x, threads):
    import onnxruntime as ort
    base, axis, to_user = contiguous_form(x, case.axis)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(_ort_model(case.op, base.shape, base.dtype, axis), so,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # e.g. no kernel for this dtype
        raise Unsupported(f"onnxruntime: {str(e).splitlines()[0][:120]}") from None
    out_shape = tuple(s for d, s in enumerate(base.shape) if d != axis) if case.op == "logsumexp" else base.shape
    out = np.empty(out_shape, base.dtype)
    io = sess.io_binding()
    io.bind_input("x", "cpu", 0, base.dtype, list(base.shape), base.ctypes.data)
    io.bind_output("y", "cpu", 0, out.dtype, list(out.shape), out.ctypes.data)
    call = functools.partial(sess.run_with_iobinding, io)
    call.keep_alive = (base, out)  # the binding holds raw pointers: their owners live as long as call
    return call, lambda r: to_user(out)


_JAX_READY = False


def _jax(case, x, threads):
    global _JAX_READY
    import jax
    if not _JAX_READY:
        jax.config.update("jax_enable_x64", True)  # float64 cases; float32 ones are unaffected
        _JAX_READY = True
    base, axis, to_user = contiguous_form(x, case.axis)
    fn = {"softmax": jax.nn.softmax, "log_softmax": jax.nn.log_softmax, "logsumexp": jax.nn.logsumexp}[case.op]
    jf = jax.jit(functools.partial(fn, axis=axis))
    xd = jax.device_put(base)
    xd.block_until_ready()

    def call():
        return jf(xd).block_until_ready()
    return call, lambda r: to_user(np.asarray(r))


def _floor_source(case, x):
    """The floors' source: as many of x's elements as the op moves bytes / 2, contiguous."""
    base, _, _ = contiguous_form(x, case.axis)
    return base.reshape(-1)[:case.bytes_moved // (2 * case.itemsize)]


def _copy_floor(case, x, threads=1):
    """np.copyto of the bytes the op moves; with threads > 1, the copy is cut into
    `threads` page-aligned chunks copied concurrently (np.copyto releases the GIL)."""
    src = _floor_source(case, x)
    dst = np.empty_like(src)
    if threads <= 1:
        return functools.partial(np.copyto, dst, src), None
    return _ThreadedCopy(dst, src, threads), None


def _stream_floor(case, x, threads):
    """_core.stream_copy of the bytes the op moves, on `threads` threads."""
    from fastsoftmax import _core
    src = _floor_source(case, x)
    return functools.partial(_core.stream_copy, src, np.empty_like(src), threads)


_POOLS = {}


class _ThreadedCopy:
    """np.copyto split over `threads` threads: the caller copies the first chunk."""

    def __init__(self, dst, src, threads):
        from concurrent.futures import ThreadPoolExecutor
        if threads - 1 not in _POOLS:
            _POOLS[threads - 1] = ThreadPoolExecutor(threads - 1, thread_name_prefix="bench-copy")
        self.pool = _POOLS[threads - 1]
        page = max(1, 4096 // src.itemsize)
        cuts = [min(len(src), -(-len(src) * i // threads // page) * page) for i in range(threads + 1)]
        cuts[-1] = len(src)
        self.parts = [(dst[a:b], src[a:b]) for a, b in zip(cuts, cuts[1:]) if b > a]

    def __call__(self):
        futures = [self.pool.submit(np.copyto, d, s) for d, s in self.parts[1:]]
        np.copyto(*self.parts[0])
        for f in futures:
            f.result()


@dataclass(frozen=True)
class Impl:
    key: str      # column name
    module: str   # what must import for it to run, space-separated ("" = always)
    prepare: object
    peer: bool    # counts as a peer for the "fastest peer" column


IMPLS = [
    Impl("fs out=", "", _fs_out, False),
    Impl("fs", "", _fs_alloc, False),
    Impl("numpy out=", "", _numpy, True),
    Impl("scipy", "scipy.special", _scipy, True),
    Impl("torch", "torch", _torch_alloc, True),
    Impl("torch out=", "torch", _torch_out, True),
    Impl("ort out=", "onnxruntime onnx", _ort, True),
    Impl("jax", "jax", _jax, True),
]
IMPL_KEYS = [i.key for i in IMPLS]
COPY_T = "copy mt"  # the copy floor split over the thread count (only when threads > 1)
STREAM = "stream"  # read once, written once with non-temporal stores, on the table's threads
FLOORS = ("copy", COPY_T, STREAM)
_FAMILY = {"fs out=": "fastsoftmax", "fs": "fastsoftmax", "numpy out=": "numpy", "scipy": "scipy",
           "torch": "torch", "torch out=": "torch", "ort out=": "onnxruntime", "jax": "jax"}


def available_impls(wanted=None):
    """{key: None if importable else the reason}, for the implementations in `wanted` (all if None)."""
    import importlib
    status, tried = {}, {}
    for impl in IMPLS:
        if wanted and impl.key not in wanted and _FAMILY[impl.key] not in wanted:
            continue
        reason = None
        for module in impl.module.split():
            if module not in tried:
                try:
                    importlib.import_module(module)
                    tried[module] = None
                except Exception as e:  # ImportError, or a broken install
                    tried[module] = f"{module} not importable ({type(e).__name__}: {str(e)[:80]})"
            reason = reason or tried[module]
        status[impl.key] = reason
    return status


def versions():
    out = {"python": platform.python_version()}
    for dist in ("fastsoftmax", "numpy", "scipy", "torch", "onnxruntime", "onnx", "jax", "jaxlib", "matplotlib"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def cpu_name():
    from fastsoftmax._config import cpu_name as name
    return name()


def cpus_available():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


class OtherLoad:
    """CPU time used by other processes while this one runs (from /proc/stat), in CPUs on average."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
            busy = (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")  # user nice system irq softirq steal
        except (OSError, ValueError, IndexError):
            return None
        t = os.times()
        return busy, t.user + t.system + t.children_user + t.children_system, time.monotonic()

    def cpus(self):
        end = self._sample()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        other = (end[0] - self.start[0]) - (end[1] - self.start[1])
        return max(0.0, other / (end[2] - self.start[2]))


def limit_process_threads(threads):
    """Make libraries that size their pools at start-up (XLA) use `threads`:
    cut this process's CPU affinity to `threads` CPUs if fewer than available,
    and for one thread set XLA_FLAGS. Call before importing jax. Returns the CPUs."""
    cpus = cpus_available()
    if threads < len(cpus) and hasattr(os, "sched_setaffinity"):
        cpus = cpus[:threads]
        os.sched_setaffinity(0, cpus)
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false"
                                       " intra_op_parallelism_threads=1").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return cpus


# --------------------------------------------------------------------------- timing

@dataclass(frozen=True)
class Mode:
    budget_s: float    # time for all rounds of one case
    sample_s: float    # minimum duration of one sample
    min_rounds: int
    max_rounds: int


FULL = Mode(budget_s=2.0, sample_s=2e-3, min_rounds=7, max_rounds=200)
QUICK = Mode(budget_s=0.25, sample_s=3e-4, min_rounds=3, max_rounds=25)


def _time_calls(call, number):
    t0 = time.perf_counter()
    for _ in itertools.repeat(None, number):
        call()
    return (time.perf_counter() - t0) / number


def measure(calls, mode, progress=None):
    """Median seconds per call of each callable in `calls` (a dict), interleaved.

    Returns {key: {"median": s, "samples": [...], "number": n}}."""
    keys = list(calls)
    if not keys:
        return {}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        est = {}
        for k in keys:  # a first estimate: the best of 3 calls (1 if slow), or a loop for fast calls
            t = _time_calls(calls[k], 1)
            if t < 0.01:
                t = min(t, _time_calls(calls[k], 1), _time_calls(calls[k], 1))
            if t < 1e-4:
                t = _time_calls(calls[k], max(1, int(1e-3 / max(t, 1e-8))))
            est[k] = t
        number = {k: max(1, math.ceil(mode.sample_s / est[k])) for k in keys}
        per_round = sum((number[k] + 1) * est[k] for k in keys)
        rounds = int(min(mode.max_rounds, max(mode.min_rounds, mode.budget_s / per_round)))
        samples = {k: [] for k in keys}
        order = list(keys)
        shuffle = np.random.default_rng(12345).shuffle
        for r in range(rounds):
            if progress:
                progress(r, rounds)
            shuffle(order)
            for k in order:
                calls[k]()  # untimed: wakes this library's worker threads, lets the previous one's wind down
                samples[k].append(_time_calls(calls[k], number[k]))
    finally:
        if gc_was:
            gc.enable()
    return {k: {"median": float(np.median(samples[k])), "samples": samples[k], "number": number[k]}
            for k in keys}


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label, total):
        self.on = sys.stderr.isatty()
        self.label, self.total = label, total

    def __call__(self, i, name, r=0, rounds=1):
        if not self.on:
            return
        frac = (i + r / max(rounds, 1)) / max(self.total, 1)
        width = 24
        fill = int(frac * width)
        line = f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {i + 1}/{self.total} {name}"
        sys.stderr.write(line[:150].ljust(100))
        sys.stderr.flush()

    def done(self):
        if self.on:
            sys.stderr.write("\r" + " " * 150 + "\r")
            sys.stderr.flush()


def run_case(case, status, threads, mode, progress=None):
    """Prepare, check and time every available implementation on one case."""
    x = case.make_input()
    ref = reference(case, x)
    calls, result = {}, {}
    for impl in IMPLS:
        if impl.key not in status:
            continue
        if status[impl.key] is not None:
            result[impl.key] = {"skipped": status[impl.key]}
            continue
        try:
            call, to_numpy = impl.prepare(case, x, threads)
            t0 = time.perf_counter()
            y = to_numpy(call())
            first = time.perf_counter() - t0
            err = max_error(y, ref)
            del y
            if first < 0.05:  # a second warm-up call, unless the first was long enough to warm up
                call()
        except Unsupported as e:
            result[impl.key] = {"skipped": str(e)}
            continue
        except Exception as e:  # a peer that rejects this dtype or layout
            result[impl.key] = {"skipped": f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"}
            continue
        calls[impl.key] = call
        result[impl.key] = {"error": err}
    del ref
    calls["copy"], _ = _copy_floor(case, x)
    if threads > 1:
        calls[COPY_T], _ = _copy_floor(case, x, threads)
    calls[STREAM] = _stream_floor(case, x, threads)
    for k in FLOORS:
        if k in calls:
            calls[k]()
            result[k] = {}
    timed = measure(calls, mode, progress)
    for k, v in timed.items():
        result[k].update(v)
    return result


def run_overhead(mode):
    """Per-call cost of tiny calls: the public API against the compiled entry point."""
    import fastsoftmax as fs
    from fastsoftmax import _core
    out = {}
    for n in (1, 8, 1000):
        x = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
        o = np.empty_like(x)
        calls = {
            "fastsoftmax.softmax(x)": functools.partial(fs.softmax, x),
            "fastsoftmax.softmax(x, out=o)": functools.partial(fs.softmax, x, out=o),
            "_core.run(SOFTMAX, x, o, 0, 1)": functools.partial(_core.run, _core.SOFTMAX, x, o, 0, 1),
            "np.copyto(o, x)": functools.partial(np.copyto, o, x),
        }
        try:
            import torch
            t = torch.from_numpy(x)
            calls["torch.softmax(t, -1)"] = functools.partial(torch.softmax, t, -1)
        except Exception:
            pass
        for k, c in list(calls.items()):
            try:
                c()
            except Exception:  # a private entry point that changed: leave its row out
                del calls[k]
        res = measure(calls, Mode(mode.budget_s / 2, mode.sample_s, mode.min_rounds, mode.max_rounds))
        out[str(n)] = {k: v["median"] for k, v in res.items()}
    return out


def worker(cfg):
    """Run every case at one thread count; returns a JSON-able dict."""
    threads = cfg["threads"]
    cpus = limit_process_threads(threads)
    import fastsoftmax as fs
    fs.set_num_threads(threads)
    mode = QUICK if cfg["quick"] else FULL
    status = available_impls(cfg.get("impls"))
    if "torch" in {_FAMILY[k] for k, v in status.items() if v is None}:
        import torch
        torch.set_num_threads(threads)
    cases = [c for c in CASES if c.name in cfg["cases"]]
    load = OtherLoad()
    bar = Progress(f"threads={threads}", len(cases) + 1)
    results = []
    for i, case in enumerate(cases):
        bar(i, case.name)
        res = run_case(case, status, threads, mode,
                       progress=lambda r, n, i=i, name=case.name: bar(i, name, r, n))
        results.append({"case": case.name, "op": case.op, "shape": list(case.shape), "dtype": case.dtype,
                        "axis": case.axis, "layout": case.layout, "bytes": case.bytes_moved, "impls": res})
        gc.collect()
    bar(len(cases), "python-side overhead")
    overhead = run_overhead(mode) if cfg.get("overhead", True) else None
    bar.done()
    return {"threads": threads, "cpus": cpus, "isa": fs.isa(), "mode": "quick" if cfg["quick"] else "full",
            "other_load_cpus": load.cpus(), "loadavg_end": _loadavg(),
            "method": vars(mode), "cases": results, "overhead": overhead,
            "skipped_impls": {k: v for k, v in status.items() if v is not None}}


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return None


def _worker_main(cfg_path, out_path):
    with open(cfg_path) as f:
        cfg = json.load(f)
    res = worker(cfg)
    with open(out_path, "w") as f:
        json.dump(res, f)


def run_in_subprocess(cfg):
    """worker(cfg) in a fresh interpreter (so thread pools start at the right size)."""
    with tempfile.TemporaryDirectory(prefix="fastsoftmax-bench-") as d:
        cfg_path, out_path = os.path.join(d, "cfg.json"), os.path.join(d, "out.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        code = "import sys; from fastsoftmax._bench import _worker_main; _worker_main(sys.argv[1], sys.argv[2])"
        proc = subprocess.run([sys.executable, "-c", code, cfg_path, out_path])
        if proc.returncode != 0 or not os.path.exists(out_path):
            raise RuntimeError(f"benchmark worker for threads={cfg['threads']} failed (exit code {proc.returncode})")
        with open(out_path) as f:
            return json.load(f)


# ------------------------------------------------------------------------- reporting

def fmt_time(s):
    if s is None or not math.isfinite(s):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale or unit == "ns":
            v = s / scale
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return "-"


def fmt_bytes(b):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= scale:
            v = b / scale
            return f"{v:.3g}{unit}" if v < 999.5 else f"{v:.0f}{unit}"
    return f"{b}B"


def fmt_err(e):
    if e is None:
        return ""
    if not math.isfinite(e):
        return "nan"
    if e == 0:
        return "0"
    m, ex = f"{e:.0e}".split("e")
    return f"{m}e{int(ex)}"


def summarise(case_result):
    """Ratios for one case: fastest peer, fs out=/peer, fs/peer, fs out=/copy, GB/s."""
    impls = case_result["impls"]

    def med(k):
        return impls.get(k, {}).get("median")
    peers = {k: med(k) for k in IMPL_KEYS if k not in ("fs out=", "fs") and med(k) is not None}
    best = min(peers, key=peers.get) if peers else None
    fs_out, fs_alloc = med("fs out="), med("fs")
    copies = [c for c in (med("copy"), med(COPY_T)) if c]
    copy = min(copies) if copies else None
    stream = med(STREAM)
    return {
        "best_peer": best,
        "best_peer_s": peers.get(best),
        "fs_out_over_peer": fs_out / peers[best] if best and fs_out else None,
        "fs_over_peer": fs_alloc / peers[best] if best and fs_alloc else None,
        "fs_out_over_copy": fs_out / copy if fs_out and copy else None,
        "fs_out_over_stream": fs_out / stream if fs_out and stream else None,
        "fs_out_gbs": case_result["bytes"] / fs_out / 1e9 if fs_out else None,
        "copy_gbs": case_result["bytes"] / copy / 1e9 if copy else None,
    }


def _ratio(r):
    return "-" if r is None else f"{r:.2f}"


def header(run, meta):
    v = meta["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("numpy", "scipy", "torch", "onnxruntime", "jax") if k in v)
    cpus = run["cpus"]
    lines = [
        f"fastsoftmax {v.get('fastsoftmax', '?')}{meta.get('source', '')} | threads: {run['threads']}"
        f" (process on CPUs {','.join(map(str, cpus))}) | SIMD tier: {run['isa']}",
        f"CPU: {meta['cpu']}, {meta['ncpus']} CPUs | python {v['python']} | {peers}",
        f"mode: {run['mode']} (per case: budget {run['method']['budget_s']} s, samples >= "
        f"{fmt_time(run['method']['sample_s'])}, {run['method']['min_rounds']}-{run['method']['max_rounds']} "
        "rounds, implementations interleaved in shuffled order; median time per call)",
    ]
    if run.get("other_load_cpus") is not None:
        lines.append(f"other processes used {run['other_load_cpus']:.2f} of {meta['ncpus']} CPUs on average "
                     f"during this table (load average at its end: {run.get('loadavg_end')}); "
                     "on a busy machine multi-threaded timings suffer most")
    if run.get("skipped_impls"):
        for k, why in run["skipped_impls"].items():
            lines.append(f"not run: {k}: {why}")
    return "\n".join(lines)


def format_table(run, meta):
    # a column every case skipped is still shown (as n/a, with its reason), so that a missing
    # peer is never mistaken for a slower one that was left out
    present = [k for k in IMPL_KEYS if any(k in c["impls"] for c in run["cases"])]
    cols = [k for k in FLOORS if any(k in c["impls"] for c in run["cases"])] + present
    rows = []
    notes = {}  # (column, reason) -> the cases it skipped
    for c in run["cases"]:
        s = summarise(c)
        cells = [c["case"], fmt_bytes(c["bytes"])]
        for k in cols:
            r = c["impls"].get(k, {})
            if "median" in r:
                cell = fmt_time(r["median"])
                if k not in FLOORS:
                    cell += " " + fmt_err(r.get("error"))
            elif "skipped" in r:
                cell = "n/a"
                notes.setdefault((k, r["skipped"]), []).append(c["case"])
            else:
                cell = "-"
            cells.append(cell)
        cells += [f"{s['fs_out_gbs']:.1f}" if s["fs_out_gbs"] else "-", s["best_peer"] or "-",
                  _ratio(s["fs_out_over_peer"]), _ratio(s["fs_over_peer"]), _ratio(s["fs_out_over_copy"]),
                  _ratio(s["fs_out_over_stream"])]
        rows.append(cells)
    head = ["case", "bytes"] + cols + ["GB/s", "best peer", "out=/peer", "fs/peer", "out=/copy", "out=/stream"]
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    out = [header(run, meta), ""]

    def fmt_row(r):
        return "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
    out.append(fmt_row(head))
    out.append("  ".join("-" * w for w in widths))
    out += [fmt_row(r) for r in rows]
    if notes:
        out.append("")
        for (k, reason), names in notes.items():
            where = "every case" if len(names) == len(run["cases"]) > 1 else ", ".join(names)
            out.append(f"n/a: {k}: {reason} ({where})")
    if run.get("overhead"):
        out.append("")
        out.append(format_overhead(run["overhead"]))
    return "\n".join(out)


def format_overhead(ov):
    sizes = list(ov)
    names = list(ov[sizes[0]])
    w = max(len(n) for n in names)
    lines = ["Per-call cost of small float32 softmax calls (median):",
             "  " + "call".ljust(w) + "".join(f"{'n=' + s:>10}" for s in sizes)]
    for n in names:
        lines.append("  " + n.ljust(w) + "".join(f"{fmt_time(ov[s].get(n)):>10}" for s in sizes))
    entry = "_core.run(SOFTMAX, x, o, 0, 1)"
    for api in ("fastsoftmax.softmax(x, out=o)", "fastsoftmax.softmax(x)"):
        d = [ov[s][api] - ov[s][entry] for s in sizes if api in ov[s] and entry in ov[s]]
        if d:
            lines.append(f"  Python-side overhead of {api} over the compiled entry point: "
                         + ", ".join(f"n={s}: {fmt_time(v)}" for s, v in zip(sizes, d)))
    return "\n".join(lines)


LEGEND = """\
Columns: bytes = read + written by the op. Each implementation: median time per call, then its max abs
error against a float64 reference (long double for f64 input). copy = np.copyto of the same bytes
(one thread); copy mt = the same copy split over the table's threads; stream = the same bytes read once and
written once with non-temporal stores, on the table's threads (the least any softmax of an array far
larger than the caches can take; in cache no floor). fs out= = fastsoftmax into
out=np.empty_like(x) made once; fs = fastsoftmax allocating;
numpy out= = max/subtract/exp/sum/divide into a preallocated out; scipy = scipy.special (allocates);
torch = torch.<op>(torch.from_numpy(x), dim) (allocates); torch out= = the same with out=; ort out= =
onnxruntime IOBinding, preallocated output; jax = jax.jit(jax.nn.<op>) on a device array (XLA allocates).
GB/s = bytes / fs out= time. best peer = fastest non-fastsoftmax column. out=/peer and fs/peer =
fastsoftmax time (with / without out=) divided by the best peer's (< 1: fastsoftmax is faster).
out=/copy = fs out= time / the faster copy; out=/stream = fs out= time / stream. n/a = the implementation cannot run the case (reason listed)."""


def format_summary(runs):
    """Across thread counts: where fastsoftmax is not clearly ahead, and how it scales."""
    lines = ["Summary"]
    for run in runs:
        slow = []
        for c in run["cases"]:
            s = c.get("summary") or summarise(c)
            if s["fs_out_over_peer"] is not None and s["fs_out_over_peer"] > 0.9:
                slow.append(f"{c['case']} ({s['fs_out_over_peer']:.2f}x {s['best_peer']})")
        lines.append(f"  threads={run['threads']}: fs out= above 0.9x the best peer on "
                     + (f"{len(slow)} case(s): " + "; ".join(slow) if slow else "no case"))
    if len(runs) > 1:
        base = runs[0]
        lines.append(f"  Speed-up of fs out= over threads={base['threads']} (and of the best peer and of the "
                     "stream floor, for comparison: where the floor gains little, memory bounds the case):")
        w = max(len(c["case"]) for c in base["cases"])
        for c in base["cases"]:
            t0 = c["impls"].get("fs out=", {}).get("median")
            p0 = (c.get("summary") or summarise(c))["best_peer_s"]
            f0 = c["impls"].get(STREAM, {}).get("median")
            cells = []
            for run in runs[1:]:
                other = next((o for o in run["cases"] if o["case"] == c["case"]), None)
                t1 = other and other["impls"].get("fs out=", {}).get("median")
                p1 = other and (other.get("summary") or summarise(other))["best_peer_s"]
                f1 = other and other["impls"].get(STREAM, {}).get("median")
                cells.append(f"threads={run['threads']}: {t0 / t1:5.2f}x" if t0 and t1 else "-")
                extra = ([f"peer {p0 / p1:4.2f}x"] if p0 and p1 else []) + ([f"stream {f0 / f1:4.2f}x"] if f0 and f1 else [])
                if extra:
                    cells[-1] += f" ({', '.join(extra)})"
            lines.append(f"    {c['case'].ljust(w)}  " + "  ".join(cells))
    return "\n".join(lines)


def plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(runs), 1, figsize=(14, 4.5 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        cases = [c for c in run["cases"] if "median" in c["impls"].get("torch", {})]
        keys = [k for k in IMPL_KEYS + list(FLOORS) if k != "torch"
                and any("median" in c["impls"].get(k, {}) for c in cases)]
        width = 0.8 / max(len(keys), 1)
        for j, k in enumerate(keys):
            xs, ys = [], []
            for i, c in enumerate(cases):
                m = c["impls"].get(k, {}).get("median")
                if m:
                    xs.append(i + (j - (len(keys) - 1) / 2) * width)
                    ys.append(c["impls"]["torch"]["median"] / m)
            floor = k in FLOORS
            ax.bar(xs, ys, width, label=k, hatch="//" if floor else None, alpha=0.5 if floor else 1.0)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels([c["case"] for c in cases], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("speed-up over torch.softmax (x)")
        ax.set_title(f"threads={run['threads']}, {run['isa']}, {run.get('cpu', '')}")
        ax.legend(fontsize=8, ncol=len(keys))
        ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _source_note():
    """' (git <sha>[+dirty])' when fastsoftmax runs from a git checkout; read-only git calls."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(here, ".git")):
        return ""
    try:
        sha = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", here, "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True, timeout=5).stdout.strip()
        return f" (git {sha}{'+uncommitted changes' if dirty else ''})" if sha else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def add_parser(sub):
    p = sub.add_parser("bench", help="time fastsoftmax against the installed peers",
                       description="Time fastsoftmax against NumPy, SciPy, PyTorch, onnxruntime and JAX "
                                   "(those installed) on the cases of issue 3; one table per thread count.")
    p.add_argument("--quick", action="store_true", help="short budget per case (about 10x faster, noisier)")
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts (default: 1 and all CPUs available)")
    p.add_argument("--json", metavar="PATH", help="write every median, sample, error and ratio as JSON")
    p.add_argument("--plot", metavar="PATH.png", help="bar chart of speed-up over torch per case (needs matplotlib)")
    p.add_argument("--cases", metavar="SUBSTR", action="append",
                   help="run only cases whose name contains SUBSTR (repeatable; case-insensitive)")
    p.add_argument("--impls", metavar="NAMES",
                   help="comma-separated implementations to run (column names, or fastsoftmax, numpy, scipy, "
                        "torch, onnxruntime, jax); default all installed")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--no-overhead", action="store_true", help="skip the small-call overhead table")
    return p


def main(args):
    if args.list:
        for c in CASES:
            print(c.name)
        return 0
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (fail before measuring, not after)
        except ImportError:
            print("error: --plot needs matplotlib (pip install matplotlib, or the 'bench' extra)", file=sys.stderr)
            return 2
    ncpu = len(cpus_available())
    try:
        threads = ([int(t) for t in args.threads.split(",") if t.strip()] if args.threads
                   else sorted({1, ncpu}))
    except ValueError:
        print(f"error: --threads takes comma-separated integers, got {args.threads!r}", file=sys.stderr)
        return 2
    if not threads or min(threads) < 1:
        print("error: --threads needs positive integers", file=sys.stderr)
        return 2
    cases = select_cases(args.cases)
    if not cases:
        print(f"error: no case matches {args.cases}; see --list", file=sys.stderr)
        return 2
    impls = None
    if args.impls:
        impls = [s.strip() for s in args.impls.split(",") if s.strip()]
        unknown = [s for s in impls if s not in IMPL_KEYS and s not in set(_FAMILY.values())]
        if unknown:
            print(f"error: unknown implementation(s) {unknown}; choose from {IMPL_KEYS} "
                  f"or {sorted(set(_FAMILY.values()))}", file=sys.stderr)
            return 2
    meta = {"cpu": cpu_name(), "ncpus": ncpu, "versions": versions(), "source": _source_note(),
            "platform": platform.platform(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"fastsoftmax bench, {meta['started']}, {meta['platform']}")
    print(LEGEND)
    runs = []
    for t in threads:
        cfg = {"threads": t, "quick": args.quick, "cases": [c.name for c in cases], "impls": impls,
               "overhead": not args.no_overhead}
        run = run_in_subprocess(cfg)
        run["cpu"] = meta["cpu"]
        for c in run["cases"]:
            c["summary"] = summarise(c)
        runs.append(run)
        print()
        print(format_table(run, meta), flush=True)
    print()
    print(format_summary(runs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "runs": runs}, f, indent=1)
        print(f"\nwrote {args.json}")
    if args.plot:
        if any("median" in c["impls"].get("torch", {}) for run in runs for c in run["cases"]):
            plot(runs, args.plot)
            print(f"wrote {args.plot}")
        else:
            print(f"not writing {args.plot}: the plot shows speed-up over torch, and torch did not run",
                  file=sys.stderr)
    return 0
