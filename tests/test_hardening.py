"""Hardening (issue 6): out-of-bounds guards, concurrency, leaks, huge arrays,
and the bad-input catalogue (docs/errors.md).

* Guard pages: arrays whose last element ends exactly at a PROT_NONE page, or
  whose first element starts right after one (read backwards through negative
  strides), for every length 1..70 (and a few longer ones), rows and columns,
  with and without out= placed the same way, on every SIMD tier. A byte read
  or written outside the array faults; each dtype x tier runs in a subprocess
  so a crash is a failing test that names the signal.
* Concurrency: 8 Python threads x 1,000 calls on shared read-only inputs with
  OpenMP on, while another thread toggles set_num_threads(1/2): every result
  bit-identical to a serial run, no deadlock (daemon threads + join timeout).
* Leaks: 20,000 calls of each public function (with and without out=, errors
  in between): RSS flat, reference counts of inputs and outputs unchanged.
* Huge arrays (slow; FASTSOFTMAX_LONG_TESTS=1 and enough MemAvailable): zero-
  stride broadcast inputs of more than 2**31 elements, and one axis > 2**31.
* Bad-input catalogue: every rejected input, its exception type and message,
  and `out` untouched. docs/errors.md holds the same table.
"""
import gc
import math
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core

from _helpers import OPS, same_bits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastsoftmax.__file__)))
LONG = os.environ.get("FASTSOFTMAX_LONG_TESTS") == "1"
ENV_VARS = ("FASTSOFTMAX_ISA", "FASTSOFTMAX_NUM_THREADS", "OMP_NUM_THREADS")


def run_python(code, timeout=300, **env):
    """python -c code in a clean fastsoftmax environment (plus env)."""
    e = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    e["PYTHONPATH"] = ROOT + os.pathsep + os.path.dirname(os.path.abspath(__file__)) \
        + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], env=e, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def describe_exit(p):
    if p.returncode < 0:
        import signal
        try:
            name = signal.Signals(-p.returncode).name
        except ValueError:
            name = str(-p.returncode)
        return f"killed by signal {name}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    return f"exit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"


# ---- 1. out-of-bounds guard pages -----------------------------------------

GUARD_BODY = r'''
import ctypes, mmap, sys
import numpy as np
import fastsoftmax as fs
from fastsoftmax import _core

DT = np.dtype(sys.argv[1] if len(sys.argv) > 1 else "@DTYPE@")
_core.set_tier("@TIER@")
assert fs.isa() == "@TIER@"
PAGE = mmap.PAGESIZE
DATA_PAGES = _core.LONG_SLICE_BYTES // PAGE + 8  # room for one slice on the long (blocked) path
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PROT_NONE = 0


class Guarded:
    """[guard page][DATA_PAGES pages][guard page]: buf is the data, as uint8."""
    def __init__(self):
        self.mm = mmap.mmap(-1, (DATA_PAGES + 2) * PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.mm))
        for off in (0, (DATA_PAGES + 1) * PAGE):
            if libc.mprotect(base + off, PAGE, PROT_NONE) != 0:
                raise OSError(ctypes.get_errno(), "mprotect failed")
        self.buf = np.frombuffer(self.mm, np.uint8, count=DATA_PAGES * PAGE, offset=PAGE)
        self.nbytes = DATA_PAGES * PAGE

    def at_end(self, shape):
        """A C-contiguous array of shape whose last byte is the last byte before the guard."""
        n = int(np.prod(shape)) * DT.itemsize
        return self.buf[self.nbytes - n:].view(DT).reshape(shape)

    def at_start(self, shape):
        """A C-contiguous array of shape whose first byte follows the leading guard."""
        n = int(np.prod(shape)) * DT.itemsize
        return self.buf[:n].view(DT).reshape(shape)


gx, gy = Guarded(), Guarded()
rng = np.random.default_rng(6)
from _helpers import check as check_bound  # the contract's ULP bound (tests/ is on the path)


def check(op, x, axis, out_place):
    """op(x) with and without out (out placed by out_place), each within the contract's bound."""
    v = np.array(x)  # the values, before any call (x may not change)
    got = getattr(fs, op)(x, axis=axis)
    assert np.array_equal(x, v), (op, "input changed")
    check_bound(op, got, v, axis=axis)
    out = out_place(np.shape(got))
    out[...] = 7
    res = getattr(fs, op)(x, axis=axis, out=out)
    assert res is out
    assert np.array_equal(x, v), (op, "input changed")
    # (not bit-compared with `got`: the kernel's plan may depend on the output layout)
    check_bound(op, out, v, axis=axis)


def ends(shape):
    return gy.at_end(shape)


def starts_rev(shape):
    """out read/written backwards from the first byte after the leading guard."""
    a = gy.at_start(shape)
    return a[(slice(None, None, -1),) * a.ndim] if a.ndim else a


LENGTHS = list(range(1, 71)) + [127, 128, 129, 255, 256, 257, 1000, 1023, 1025]
count = 0
for n in LENGTHS:
    vals = (rng.standard_normal(3 * n) * 4).astype(DT)
    for op in ("softmax", "log_softmax", "logsumexp"):
        # rows: a 1-d slice and a (3, n) block, ending at the guard page
        x = gx.at_end((n,)); x[...] = vals[:n]
        check(op, x, -1, ends); count += 1
        x = gx.at_end((3, n)); x[...] = vals.reshape(3, n)
        check(op, x, -1, ends); count += 1
        # columns: a (k, n) block, reduced over axis 0, ending at the guard page
        x = gx.at_end((3, n)); x[...] = vals.reshape(3, n)
        check(op, x, 0, ends); count += 1
        x = gx.at_end((n, 3)); x[...] = vals.reshape(n, 3)
        check(op, x, 0, ends); count += 1
        # under-reads: start at the first byte after a guard, read backwards
        x = gx.at_start((n,)); x[...] = vals[:n]
        check(op, x[::-1], -1, starts_rev); count += 1
        x = gx.at_start((3, n)); x[...] = vals.reshape(3, n)
        check(op, x[::-1, ::-1], -1, starts_rev); count += 1
        check(op, x[::-1, ::-1], 0, starts_rev); count += 1
        x = gx.at_start((n, 3)); x[...] = vals.reshape(n, 3)
        check(op, x[::-1], 0, starts_rev); count += 1
        # in place, at the end of the page (softmax / log_softmax)
        if op != "logsumexp":
            x = gx.at_end((3, n)); x[...] = vals.reshape(3, n)
            want = getattr(fs, op)(np.array(x), axis=-1)
            assert getattr(fs, op)(x, axis=-1, out=x) is x
            assert np.array_equal(x, want), (op, n, "in place")
            count += 1
# one slice on the two-sweep blocked path (longer than LONG_SLICE_BYTES), both directions;
# compared with the same call on an ordinary copy (the ULP oracle is too slow at this length)
n = _core.LONG_SLICE_BYTES // DT.itemsize + 37
vals = (rng.standard_normal(n) * 4).astype(DT)
ltol = dict(rtol=1e-5, atol=1e-9) if DT == np.float32 else dict(rtol=1e-12, atol=1e-15)
for op in ("softmax", "log_softmax", "logsumexp"):
    for x in (gx.at_end((n,)), gx.at_start((n,))[::-1]):
        x[...] = vals
        want = getattr(fs, op)(vals)
        out = (gy.at_end if x.strides[0] > 0 else starts_rev)(np.shape(want))
        for got in (getattr(fs, op)(x), getattr(fs, op)(x, out=out)):
            assert np.allclose(got, want, **ltol), (op, n, x.strides)
        count += 1
print("OK", count)
'''


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_guard_pages_no_read_or_write_outside_the_array(isa, dtype):
    code = GUARD_BODY.replace("@DTYPE@", dtype).replace("@TIER@", isa)
    p = run_python(code, timeout=300)
    assert p.returncode == 0, describe_exit(p)
    assert p.stdout.startswith("OK"), describe_exit(p)
    assert int(p.stdout.split()[1]) > 2000


def test_guard_page_harness_can_fault():
    """The harness itself: touching one element past the array kills the child
    with SIGSEGV (so a kernel over-read would too)."""
    code = GUARD_BODY.split("LENGTHS = ")[0].replace("@DTYPE@", "float32").replace(
        "@TIER@", _core.get_tier())
    code += textwrap.dedent("""
        x = gx.at_end((5,))
        ptr = x.ctypes.data + x.nbytes  # the first byte of the guard page
        print("touching", flush=True)
        ctypes.c_char.from_address(ptr).value
        print("survived")
    """)
    # under AddressSanitizer (tools/sanitize.sh) let the signal kill the child
    # as it would natively, rather than ASan reporting it and exiting
    env = {"ASAN_OPTIONS": os.environ["ASAN_OPTIONS"] + ":handle_segv=0"} if "ASAN_OPTIONS" in os.environ else {}
    p = run_python(code, timeout=60, **env)
    assert p.returncode < 0 and "survived" not in p.stdout, describe_exit(p)


# ---- 2. concurrency ---------------------------------------------------------

def test_many_python_threads_bit_identical_and_no_deadlock():
    rng = np.random.default_rng(66)
    small = (rng.standard_normal((64, 300)) * 4).astype(np.float32)
    big = (rng.standard_normal((300, 200)) * 4).astype(np.float64)  # 60,000 elements: OpenMP
    small.flags.writeable = False
    big.flags.writeable = False
    cases = []
    for op in OPS:
        cases.append((op, small, -1))
        cases.append((op, big, 0))
    with fastsoftmax.num_threads(1):
        serial = [getattr(fastsoftmax, op)(x, axis=ax) for op, x, ax in cases]
    old = fastsoftmax.get_num_threads()
    n_threads, n_calls = 8, 1000
    errors, done = [], []
    stop = threading.Event()
    start = threading.Barrier(n_threads + 1)

    def worker(tid):
        try:
            start.wait()
            outs = [np.empty_like(s) for s in serial]
            for i in range(n_calls):
                k = 2 * ((i + tid) % 3) + (1 if i % 10 == 0 else 0)  # one call in ten: big, axis 0
                op, x, ax = cases[k]
                if i % 2:
                    r = getattr(fastsoftmax, op)(x, axis=ax, out=outs[k])
                else:
                    r = getattr(fastsoftmax, op)(x, axis=ax)
                if not same_bits(r, serial[k]):
                    errors.append((tid, i, op, x.shape, ax))
                    return
            done.append(tid)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((tid, repr(e)))

    def toggler():
        start.wait()
        k = 0
        while not stop.is_set():
            fastsoftmax.set_num_threads(1 + k % 2)
            k += 1
        toggles.append(k)

    toggles = []
    ths = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(n_threads)]
    tog = threading.Thread(target=toggler, daemon=True)
    try:
        for t in ths + [tog]:
            t.start()
        for t in ths:
            t.join(timeout=120)
        hung = [t for t in ths if t.is_alive()]
        stop.set()
        tog.join(timeout=10)
        assert not hung, f"{len(hung)} thread(s) still running after 120 s: deadlock?"
        assert not tog.is_alive(), "set_num_threads toggler hung"
    finally:
        stop.set()
        fastsoftmax.set_num_threads(old)
    assert not errors, f"results differ from the serial run / errors: {errors[:5]}"
    assert sorted(done) == list(range(n_threads))
    assert toggles and toggles[0] > 10, "set_num_threads was barely toggled"
    assert all(np.array_equal(r, s) for r, s in zip(
        [getattr(fastsoftmax, op)(x, axis=ax) for op, x, ax in cases], serial))


def test_set_num_threads_huge_value_is_rejected_or_works():
    old = fastsoftmax.get_num_threads()
    try:
        try:
            fastsoftmax.set_num_threads(2**31)
        except (ValueError, OverflowError):
            return  # rejected up front: fine
        y = fastsoftmax.softmax(np.zeros(4))  # accepted: then calls must still work
        assert np.array_equal(y, np.full(4, 0.25))
    finally:
        fastsoftmax.set_num_threads(old)


# ---- 3. leaks ----------------------------------------------------------------

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _leak_round(x, outs, xt, iters):
    fs = fastsoftmax
    bad_out = np.empty(x.shape, np.float64)
    for i in range(iters):
        fs.softmax(x)
        fs.log_softmax(x, axis=0)
        fs.logsumexp(x)
        fs.softmax(x, out=outs["softmax"])
        fs.log_softmax(x, out=outs["log_softmax"])
        fs.logsumexp(x, out=outs["logsumexp"])
        if i % 4 == 0:  # the general path: tuple axes, dtype=, keepdims, scalars, lists
            fs.softmax(xt, axis=(0, 1))
            fs.log_softmax(x, dtype=np.float64)
            fs.logsumexp(x, axis=None, keepdims=True)
            fs.logsumexp(x, axis=1, out=outs["lse_general"], keepdims=False, dtype=np.float32)
            fs.softmax(3.0)
            fs.log_softmax([1.0, 2.0])
            fs.softmax(x, where=x > 0)  # where= masks: rows and columns, gathered too
            fs.logsumexp(xt, axis=0, where=np.asfortranarray(xt > 0))
        if i % 8 == 0:  # errors in between
            for call in (lambda: fs.softmax(x, axis=5), lambda: fs.logsumexp(x, axis=(0, 0)),
                         lambda: fs.log_softmax(x, out=bad_out),
                         lambda: fs.softmax(x, out=outs["softmax"][:1]),
                         lambda: fs.softmax(np.ones(3, complex)),
                         lambda: fs.softmax(x, where=1),
                         lambda: fs.softmax(x, where=np.ones((2, 2), bool)),
                         lambda: fs.set_num_threads(0)):
                try:
                    call()
                except (ValueError, TypeError, NotImplementedError):
                    pass
                else:
                    raise AssertionError("expected an error")
            with fs.num_threads(fs.get_num_threads()):
                fs.isa()
            fs.show_config()


def test_no_leaks_rss_flat_and_refcounts_unchanged():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 33)).astype(np.float32)
    xt = np.asfortranarray(rng.standard_normal((5, 7, 3)))
    outs = {"softmax": np.empty_like(x), "log_softmax": np.empty_like(x),
            "logsumexp": np.empty(4, np.float32), "lse_general": np.empty(4, np.float32)}
    _leak_round(x, outs, xt, 2000)  # warm-up: caches, free lists, first allocations
    gc.collect()
    refs = {k: sys.getrefcount(v) for k, v in outs.items()}
    rx, rxt = sys.getrefcount(x), sys.getrefcount(xt)
    before = rss_bytes()
    _leak_round(x, outs, xt, 20000)
    gc.collect()
    after = rss_bytes()
    assert sys.getrefcount(x) == rx, "reference leak on the input"
    assert sys.getrefcount(xt) == rxt, "reference leak on the input (general path)"
    assert {k: sys.getrefcount(v) for k, v in outs.items()} == refs, "reference leak on out="
    growth = after - before
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        return  # tools/sanitize.sh: ASan's quarantine holds freed memory, RSS says nothing
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.2f} MiB over 20,000 rounds " \
                               f"({before / 2**20:.1f} -> {after / 2**20:.1f} MiB)"


def _trim_heap():
    """Give the heap's free memory back to the OS (glibc), so that new
    allocations show in RSS whatever earlier tests freed (the suite order
    must not decide whether a leak is visible)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def test_leak_check_detects_a_leak():
    """The RSS measure is sensitive enough: holding 20,000 small arrays shows up."""
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("under ASan (tools/sanitize.sh) RSS follows its quarantine, not the heap")
    gc.collect()
    _trim_heap()
    before = rss_bytes()
    held = [np.ones(64) for _ in range(20000)]  # ~ 20,000 x (512 + header) bytes
    assert rss_bytes() - before > 4 * 2**20
    del held


# ---- 4. huge arrays (slow) ----------------------------------------------------

def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def need_long(nbytes):
    if not LONG:
        pytest.skip("set FASTSOFTMAX_LONG_TESTS=1 to run huge-array tests")
    if mem_available() < nbytes + 2 * 2**30:
        pytest.skip(f"needs {(nbytes + 2 * 2**30) / 2**30:.1f} GiB available")


@pytest.mark.slow
def test_huge_single_axis_longer_than_2_31():
    n = 2**31 + 2**20 + 3
    need_long(n * 4)
    x = np.broadcast_to(np.float32(0.5), (n,))  # zero stride: no memory for the input
    y = fastsoftmax.softmax(x)
    assert y.shape == (n,) and y.dtype == np.float32
    exact = np.float32(1.0 / n)
    idx = np.r_[0:5, 2**31 - 2:2**31 + 3, n - 5:n, np.arange(0, n, 2**20 + 1)]
    assert np.allclose(y[idx], exact, rtol=3e-6, atol=0), (y[idx][:20], exact)
    del y
    lse = fastsoftmax.logsumexp(x)
    assert abs(float(lse) - (0.5 + math.log(n))) < 1e-5 * (0.5 + math.log(n))
    ls = fastsoftmax.log_softmax(x)
    assert np.allclose(ls[idx], -math.log(n), rtol=1e-6, atol=0)


@pytest.mark.slow
def test_huge_total_more_than_2_31_rows_and_columns():
    rows, w = 2**21 + 3, 1024  # 2**31 + 3072 elements
    need_long(rows * w * 4)
    row = (np.arange(w, dtype=np.float32) % 17) - 8
    x = np.broadcast_to(row, (rows, w))
    want = fastsoftmax.softmax(row)
    y = fastsoftmax.softmax(x, axis=-1)
    for r in (0, 1, 2**20, 2**21 - 1, 2**21, 2**21 + 1, rows - 1):
        assert same_bits(y[r], want), r
    assert np.array_equal(y[::4099, 5], np.full(y[::4099, 5].shape, want[5]))
    del y
    # columns: each of the 1024 slices is 2**21 + 3 long, the whole array > 2**31
    col_x = np.broadcast_to(np.float32(1.0), (rows, w))
    y = fastsoftmax.log_softmax(col_x, axis=0)
    exact = -math.log(rows)
    assert np.allclose(y[[0, 2**21, rows - 1]], exact, rtol=1e-6, atol=0)
    assert np.allclose(y[::9973, ::31], exact, rtol=1e-6, atol=0)
    del y
    lse = fastsoftmax.logsumexp(x, axis=0)
    assert np.allclose(lse, row + math.log(rows), rtol=1e-6)


@pytest.mark.slow
def test_huge_logsumexp_over_4_billion_broadcast_elements():
    n = 2**32 + 7  # output is one number: only time is needed
    if not LONG:
        pytest.skip("set FASTSOFTMAX_LONG_TESTS=1 to run huge-array tests")
    x = np.broadcast_to(np.float64(-1.0), (n,))
    assert abs(float(fastsoftmax.logsumexp(x)) - (-1.0 + math.log(n))) < 1e-12 * math.log(n)


# ---- 5. the bad-input catalogue ---------------------------------------------

_X = np.arange(12, dtype=np.float32).reshape(3, 4)


def _out(shape=(3, 4), dtype=np.float32):
    return np.full(shape, 42, dtype)


def _ro_out():
    o = _out()
    o.flags.writeable = False
    return o


AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError

# (id, input as shown in docs, call(out) -> None, exception type, key phrase, out factory or None)
CATALOGUE = [
    ("complex input", "softmax(np.ones(3, np.complex128))",
     lambda o: fastsoftmax.softmax(np.ones(3, np.complex128)), TypeError, "complex128", None),
    ("object input", "softmax(np.array([1.0, 2.0], dtype=object))",
     lambda o: fastsoftmax.softmax(np.array([1.0, 2.0], dtype=object)), TypeError, "dtype object", None),
    ("str input", "softmax(np.array(['a']))",
     lambda o: fastsoftmax.softmax(np.array(["a"])), TypeError, "<U1", None),
    ("bytes input", "softmax(np.array([b'a']))",
     lambda o: fastsoftmax.softmax(np.array([b"a"])), TypeError, "S1", None),
    ("datetime input", "softmax(np.array(['2020-01-01'], 'datetime64[D]'))",
     lambda o: fastsoftmax.softmax(np.array(["2020-01-01"], "datetime64[D]")), TypeError, "datetime64", None),
    ("timedelta input", "logsumexp(np.array([1], 'timedelta64[s]'))",
     lambda o: fastsoftmax.logsumexp(np.array([1], "timedelta64[s]")), TypeError, "timedelta64", None),
    ("longdouble input", "log_softmax(np.ones(3, np.longdouble))",
     lambda o: fastsoftmax.log_softmax(np.ones(3, np.longdouble)), TypeError, "float128", None),
    ("complex input with out", "softmax(np.ones((3, 4), complex), out=out)",
     lambda o: fastsoftmax.softmax(np.ones((3, 4), complex), out=o), TypeError, "complex128", _out),
    ("axis out of range", "softmax(x, axis=2)  # x 2-d",
     lambda o: fastsoftmax.softmax(_X, axis=2, out=o), AxisError, "out of bounds", _out),
    ("negative axis out of range", "logsumexp(x, axis=-3)",
     lambda o: fastsoftmax.logsumexp(_X, axis=-3, out=o), AxisError, "out of bounds", lambda: _out((4,))),
    ("axis out of range in a tuple", "log_softmax(x, axis=(0, 2))",
     lambda o: fastsoftmax.log_softmax(_X, axis=(0, 2), out=o), AxisError, "out of bounds", _out),
    ("axis beyond C long", "softmax(x, axis=2**70)",
     lambda o: fastsoftmax.softmax(_X, axis=2**70, out=o), OverflowError, "too large", _out),
    ("repeated axis", "softmax(x, axis=(0, 0))",
     lambda o: fastsoftmax.softmax(_X, axis=(0, 0), out=o), ValueError, "repeated axis", _out),
    ("repeated axis (negative alias)", "logsumexp(x, axis=(1, -1))",
     lambda o: fastsoftmax.logsumexp(_X, axis=(1, -1), out=o), ValueError, "repeated axis", lambda: _out((3,))),
    ("float axis", "softmax(x, axis=1.0)",
     lambda o: fastsoftmax.softmax(_X, axis=1.0, out=o), TypeError, "cannot be interpreted as an integer", _out),
    ("str axis", "softmax(x, axis='0')",
     lambda o: fastsoftmax.softmax(_X, axis="0", out=o), TypeError, "str", _out),
    ("out wrong shape", "softmax(x, out=np.empty((4, 3), np.float32))",
     lambda o: fastsoftmax.softmax(_X, out=o), ValueError, "out has shape (4, 3)", lambda: _out((4, 3))),
    ("logsumexp out wrong shape", "logsumexp(x, out=np.empty(4, np.float32))",
     lambda o: fastsoftmax.logsumexp(_X, out=o), ValueError, "out has shape (4,)", lambda: _out((4,))),
    ("logsumexp out keepdims shape", "logsumexp(x, keepdims=True, out=np.empty(3, np.float32))",
     lambda o: fastsoftmax.logsumexp(_X, keepdims=True, out=o), ValueError, "result has shape (3, 1)",
     lambda: _out((3,))),
    ("out wrong dtype", "softmax(x32, out=np.empty((3, 4), np.float64))",
     lambda o: fastsoftmax.softmax(_X, out=o), TypeError, "out has dtype float64", lambda: _out(dtype=np.float64)),
    ("out same-kind dtype", "log_softmax(x64, out=np.empty((3, 4), np.float32))",
     lambda o: fastsoftmax.log_softmax(_X.astype(np.float64), out=o), TypeError,
     "result has dtype float64", _out),
    ("out integer dtype", "logsumexp(int_x, out=np.empty(3, np.int64))",
     lambda o: fastsoftmax.logsumexp(np.ones((3, 4), int), out=o), TypeError, "out has dtype int64",
     lambda: _out((3,), np.int64)),
    ("out read-only", "softmax(x, out=readonly)",
     lambda o: fastsoftmax.softmax(_X, out=o), ValueError, "read-only", _ro_out),
    ("out read-only (logsumexp)", "logsumexp(x, out=readonly)",
     lambda o: fastsoftmax.logsumexp(_X, out=o), ValueError, "read-only",
     lambda: np.broadcast_to(np.float32(42), (3,))),
    ("out a list", "softmax(x, out=[[0.0] * 4] * 3)",
     lambda o: fastsoftmax.softmax(_X, out=[[0.0] * 4] * 3), TypeError, "numpy.ndarray", None),
    ("out a matrix-like non-ndarray", "log_softmax(x, out=memoryview(...))",
     lambda o: fastsoftmax.log_softmax(_X, out=memoryview(np.zeros((3, 4), np.float32))),
     TypeError, "got memoryview", None),
    ("where= not bool", "softmax(x, where=np.ones((3, 4), int))",
     lambda o: fastsoftmax.softmax(_X, where=np.ones((3, 4), int), out=o), TypeError,
     "where= must be a boolean array, got dtype int64", _out),
    ("where= a Python int", "logsumexp(x, where=1)",
     lambda o: fastsoftmax.logsumexp(_X, where=1, out=o), TypeError, "where= must be a boolean array",
     lambda: _out((3,))),
    ("where= not broadcastable", "softmax(x, where=np.ones((4, 3), bool))",
     lambda o: fastsoftmax.softmax(_X, where=np.ones((4, 3), bool), out=o), ValueError,
     "where= of shape (4, 3) cannot be broadcast to the input's shape (3, 4)", _out),
    ("where= more dimensions than x", "log_softmax(x, where=np.ones((1, 3, 4), bool))",
     lambda o: fastsoftmax.log_softmax(_X, where=np.ones((1, 3, 4), bool), out=o), ValueError,
     "where= of shape (1, 3, 4) cannot be broadcast", _out),
    ("out float16 for float32", "softmax(x, out=np.empty((3, 4), np.float16))",
     lambda o: fastsoftmax.softmax(_X, out=o), TypeError,
     "softmax: out has dtype float16, but the result has dtype float32", lambda: _out((3, 4), np.float16)),
    ("dtype=float16 with float32 out", "log_softmax(x, dtype=np.float16, out=out32)",
     lambda o: fastsoftmax.log_softmax(_X, dtype=np.float16, out=o), TypeError,
     "log_softmax: out has dtype float32, but the result has dtype float16", _out),
    ("dtype= not a float", "softmax(x, dtype=np.int32)",
     lambda o: fastsoftmax.softmax(_X, dtype=np.int32, out=o), TypeError, "dtype= must be", _out),
    ("set_num_threads(0)", "set_num_threads(0)",
     lambda o: fastsoftmax.set_num_threads(0), ValueError, "n >= 1", None),
    ("set_num_threads(-1)", "set_num_threads(-1)",
     lambda o: fastsoftmax.set_num_threads(-1), ValueError, "n >= 1", None),
    ("set_num_threads(1.5)", "set_num_threads(1.5)",
     lambda o: fastsoftmax.set_num_threads(1.5), TypeError, "integer, got float", None),
    ("set_num_threads('2')", "set_num_threads('2')",
     lambda o: fastsoftmax.set_num_threads("2"), TypeError, "integer, got str", None),
    ("set_num_threads(True)", "set_num_threads(True)",
     lambda o: fastsoftmax.set_num_threads(True), TypeError, "integer, got bool", None),
    ("num_threads(0)", "with num_threads(0): ...",
     lambda o: fastsoftmax.num_threads(0).__enter__(), ValueError, "n >= 1", None),
]


@pytest.mark.parametrize("name, shown, call, exc, phrase, make_out", CATALOGUE,
                         ids=[c[0] for c in CATALOGUE])
def test_bad_input_catalogue(name, shown, call, exc, phrase, make_out):
    out = make_out() if make_out else None
    before = None if out is None else out.copy()
    threads_before = fastsoftmax.get_num_threads()
    with pytest.raises(exc) as info:
        call(out)
    assert info.type is exc or exc is AxisError, f"raised {info.type.__name__}, expected {exc.__name__}"
    assert phrase in str(info.value), f"{phrase!r} not in {str(info.value)!r}"
    if out is not None:
        assert np.array_equal(out, before), "out was written although an error was raised"
    assert fastsoftmax.get_num_threads() == threads_before


ENV_CATALOGUE = [
    ("FASTSOFTMAX_ISA", "sse9", "ValueError", ["FASTSOFTMAX_ISA", "generic", "avx2", "avx512f"]),
    ("FASTSOFTMAX_ISA", "generic,avx2", "ValueError", ["not a SIMD tier", "valid values"]),
    ("FASTSOFTMAX_NUM_THREADS", "0", "ValueError", ["FASTSOFTMAX_NUM_THREADS", "positive integer"]),
    ("FASTSOFTMAX_NUM_THREADS", "-2", "ValueError", ["positive integer", "'-2'"]),
    ("FASTSOFTMAX_NUM_THREADS", "two", "ValueError", ["positive integer", "'two'"]),
    ("FASTSOFTMAX_NUM_THREADS", "1.5", "ValueError", ["positive integer", "'1.5'"]),
]


@pytest.mark.parametrize("var, value, exc, phrases", ENV_CATALOGUE,
                         ids=[f"{v}={x}" for v, x, _, _ in ENV_CATALOGUE])
def test_bad_environment_catalogue(var, value, exc, phrases):
    p = run_python("import fastsoftmax; print('imported')", timeout=60, **{var: value})
    assert p.returncode > 0, describe_exit(p)
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(exc + ":"), last
    for w in phrases:
        assert w in last, f"{w!r} not in {last!r}"
    assert "imported" not in p.stdout
