# cython: boundscheck=False, wraparound=False
"""The compiled core: hands validated arrays to the C++ driver without the GIL.

Every user-facing rule lives in _api.py; by the time a call gets here x and y
are aligned, native-order float32/float64 arrays of the same shape (for
logsumexp y has the keepdims shape), and y is writeable.
"""
from libc.stdint cimport int64_t
cimport numpy as cnp

cnp.import_array()

cdef extern from "fastsoftmax.h":
    int FS_MAX_DIMS
    int fs_tier_count()
    const char *fs_tier_name(int tier)
    int fs_tier_supported(int tier)
    int fs_tier_best()
    int fs_tier_get()
    int fs_tier_set(int tier)
    int fs_openmp_enabled()
    int fs_run(int op, int dtype, const char *x, char *y, int ndim, const int64_t *shape,
               const int64_t *x_strides, const int64_t *y_strides, int axis, int num_threads) nogil

SOFTMAX = 0
LOG_SOFTMAX = 1
LOGSUMEXP = 2


def run(int op, cnp.ndarray x, cnp.ndarray y, int axis, int num_threads):
    """Reduce x over `axis` into y (op: SOFTMAX, LOG_SOFTMAX or LOGSUMEXP)."""
    cdef int ndim = cnp.PyArray_NDIM(x)
    cdef int64_t shape[64]
    cdef int64_t xs[64]
    cdef int64_t ys[64]
    cdef int d, rc, dtype
    cdef cnp.npy_intp *xshape = cnp.PyArray_DIMS(x)
    cdef cnp.npy_intp *xstr = cnp.PyArray_STRIDES(x)
    cdef cnp.npy_intp *ystr = cnp.PyArray_STRIDES(y)
    cdef const char *xp = <const char *>cnp.PyArray_DATA(x)
    cdef char *yp = <char *>cnp.PyArray_DATA(y)
    if ndim > 64 or cnp.PyArray_NDIM(y) != ndim:
        raise ValueError("fastsoftmax: unsupported array rank")
    dtype = 0 if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32 else 1
    for d in range(ndim):
        shape[d] = xshape[d]
        xs[d] = xstr[d]
        ys[d] = ystr[d]
    with nogil:
        rc = fs_run(op, dtype, xp, yp, ndim, shape, xs, ys, axis, num_threads)
    if rc != 0:
        raise MemoryError("fastsoftmax: could not allocate scratch memory")


def tier_names():
    """Names of all tiers, lowest first."""
    return [fs_tier_name(i).decode() for i in range(fs_tier_count())]


def supported_tiers():
    """Names of the tiers this build and this CPU can run, lowest first."""
    return [fs_tier_name(i).decode() for i in range(fs_tier_count()) if fs_tier_supported(i)]


def best_tier():
    return fs_tier_name(fs_tier_best()).decode()


def get_tier():
    return fs_tier_name(fs_tier_get()).decode()


def set_tier(str name):
    """Switch the kernel table (tests use it to cover every tier in one process)."""
    names = tier_names()
    if name not in names:
        raise ValueError(f"unknown SIMD tier {name!r}; valid values: {', '.join(names)}")
    if fs_tier_set(names.index(name)) != 0:
        raise ValueError(f"SIMD tier {name!r} is not supported on this CPU; "
                         f"supported: {', '.join(supported_tiers())}")


def openmp_enabled():
    return bool(fs_openmp_enabled())
