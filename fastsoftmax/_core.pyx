# cython: boundscheck=False, wraparound=False
"""The compiled core: hands validated arrays to the C++ driver without the GIL.

Every user-facing rule lives in _api.py; by the time a call gets here x and y
are aligned, native-order arrays of the same shape (for logsumexp y has the
keepdims shape), and y is writeable: float32 or float64 both, or float16 /
bfloat16 (ml_dtypes) on either side of a pair fs_run_typed takes (fastsoftmax.h).
"""
from libc.stdint cimport int64_t, uint8_t
cimport numpy as cnp

cnp.import_array()

cdef extern from *:
    """
    #include <stdint.h>
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    /* Ask for transparent huge pages on the 2 MiB-aligned interior of a fresh
     * output of at least 4 MiB, as NumPy does for its own arrays: PyTorch's
     * allocator does not, and faulting in 4 KiB pages one by one cost more
     * than the softmax itself (64 MiB: ~35 ms of faults against ~5 ms). */
    static void fs_advise_huge(void *p, int64_t bytes) {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        const uintptr_t huge = (uintptr_t)1 << 21;
        if (bytes < 2 * (int64_t)huge) return;
        uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + (uintptr_t)bytes) & ~(huge - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);  /* a hint: failure changes nothing */
    #else
        (void)p; (void)bytes;
    #endif
    }
    """
    void fs_advise_huge(void *p, int64_t bytes) nogil


cdef extern from "numpy/arrayobject.h":
    # not declared in numpy's .pxd: an empty array with x's memory order
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order, void *descr, int subok)

cdef extern from "fastsoftmax.h":
    int FS_MAX_DIMS
    int fs_tier_count()
    const char *fs_tier_name(int tier)
    int fs_tier_supported(int tier)
    int fs_tier_best()
    int fs_tier_get()
    int fs_tier_set(int tier)
    int fs_openmp_enabled()
    int64_t fs_long_slice_bytes()
    void fs_exp_nonpos(int dtype, const char *x, char *y, int64_t n) nogil
    int fs_convert(int src, int dst, const char *x, char *y, int64_t n) nogil
    int FS_BAD_LOG_SOFTMAX_INPUT
    int fs_run_backward(int op, int dtype, const char *y, const char *g, char *dx, const uint8_t *where, int ndim,
                        const int64_t *shape, const int64_t *y_strides, const int64_t *g_strides,
                        const int64_t *dx_strides, const int64_t *where_strides, int axis, int num_threads) nogil
    int fs_run(int op, int dtype, const char *x, char *y, const uint8_t *where, int ndim, const int64_t *shape,
               const int64_t *x_strides, const int64_t *y_strides, const int64_t *where_strides, int axis,
               int num_threads) nogil
    int fs_stream_copy(const char *src, char *dst, int64_t nbytes, int num_threads) nogil
    int FS_UNSUPPORTED_TYPES
    int fs_run_typed(int op, int xtype, int ytype, const char *x, char *y, const uint8_t *where, int ndim,
                     const int64_t *shape, const int64_t *x_strides, const int64_t *y_strides,
                     const int64_t *where_strides, int axis, int num_threads) nogil

#: slices longer than this many bytes take the two-sweep blocked path (tests cross it)
LONG_SLICE_BYTES = fs_long_slice_bytes()

SOFTMAX = 0
LOG_SOFTMAX = 1
LOGSUMEXP = 2


def run(int op, cnp.ndarray x, cnp.ndarray y, int axis, int num_threads, cnp.ndarray mask=None):
    """Reduce x over `axis` into y (op: SOFTMAX, LOG_SOFTMAX or LOGSUMEXP). y has
    x's shape, or for logsumexp the keepdims shape or x's shape without axis.
    mask (the where= argument): None, or a bool array of x's shape (any
    strides, 0 in broadcast dimensions); False elements take no part."""
    if cnp.PyArray_NDIM(y) != cnp.PyArray_NDIM(x) and not (
            op == LOGSUMEXP and cnp.PyArray_NDIM(y) == cnp.PyArray_NDIM(x) - 1):
        raise ValueError("fastsoftmax: output rank does not match")
    cdef int d
    if mask is not None:
        if cnp.PyArray_TYPE(mask) != cnp.NPY_BOOL:
            raise TypeError("fastsoftmax: the mask must be a bool array")
        if cnp.PyArray_NDIM(mask) != cnp.PyArray_NDIM(x):
            raise ValueError("fastsoftmax: the mask must have the input's shape")
        for d in range(cnp.PyArray_NDIM(x)):
            if cnp.PyArray_DIMS(mask)[d] != cnp.PyArray_DIMS(x)[d]:
                raise ValueError("fastsoftmax: the mask must have the input's shape")
    _run(op, x, y, axis, num_threads, mask)


cdef inline int _type_code(cnp.ndarray a):
    """The C type code of a's dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16
    (ml_dtypes', recognised without importing it), -1 anything else."""
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT32:
        return 0
    if t == cnp.NPY_FLOAT64:
        return 1
    if t == cnp.NPY_FLOAT16:
        return 2
    d = a.dtype
    if d.kind == "V" and d.itemsize == 2 and d.name == "bfloat16" and d.type.__module__ == "ml_dtypes":
        return 3
    return -1


cdef inline bint _plain_float(object a):
    """An exact ndarray of native, aligned float16/float32/float64 (what the kernels take as is)."""
    if type(a) is not cnp.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    return ((t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64 or t == cnp.NPY_FLOAT16) and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr))


cdef inline void _extent(cnp.ndarray a, char **lo, char **hi):
    """The byte range [lo, hi) that a's elements occupy."""
    cdef char *base = <char *>cnp.PyArray_DATA(a)
    cdef cnp.npy_intp *shape = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(a)
    cdef int d
    lo[0] = base
    hi[0] = base + cnp.PyArray_ITEMSIZE(a)
    for d in range(cnp.PyArray_NDIM(a)):
        if shape[d] == 0:
            hi[0] = base
            return
        if strides[d] < 0:
            lo[0] += (shape[d] - 1) * strides[d]
        else:
            hi[0] += (shape[d] - 1) * strides[d]


def fast(int op, object x, object axis, object out, int num_threads):
    """The common call in one step: x a plain float array, axis an int, out None
    or a plain array of the right shape and dtype that does not overlap x (or is
    x, for softmax/log_softmax). Returns the result, or None for anything else:
    the caller then takes the general path (which also raises the errors)."""
    if not _plain_float(x) or type(axis) is not int:
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    cdef int ndim = cnp.PyArray_NDIM(xa)
    cdef long ax = axis
    if ndim == 0 or ax < -ndim or ax >= ndim:
        return None
    if ax < 0:
        ax += ndim
    cdef cnp.ndarray ya
    cdef char *xlo
    cdef char *xhi
    cdef char *ylo
    cdef char *yhi
    cdef int d, j
    cdef cnp.npy_intp yshape[64]
    if out is None:
        if op == LOGSUMEXP:
            j = 0
            for d in range(ndim):
                if d != ax:
                    yshape[j] = cnp.PyArray_DIMS(xa)[d]
                    j += 1
            ya = cnp.PyArray_EMPTY(ndim - 1, yshape, cnp.PyArray_TYPE(xa), 0)
        else:
            ya = PyArray_NewLikeArray(xa, cnp.NPY_KEEPORDER, NULL, 0)
    else:
        if not _plain_float(out):
            return None
        ya = <cnp.ndarray>out
        if (cnp.PyArray_TYPE(ya) != cnp.PyArray_TYPE(xa) or not cnp.PyArray_ISWRITEABLE(ya)
                or cnp.PyArray_NDIM(ya) != (ndim - 1 if op == LOGSUMEXP else ndim)):
            return None
        j = 0
        for d in range(ndim):
            if op == LOGSUMEXP and d == ax:
                continue
            if cnp.PyArray_DIMS(ya)[j] != cnp.PyArray_DIMS(xa)[d]:
                return None
            j += 1
        _extent(xa, &xlo, &xhi)
        _extent(ya, &ylo, &yhi)
        if xlo < yhi and ylo < xhi:  # overlap: only x itself is safe (elementwise, same strides)
            if op == LOGSUMEXP or cnp.PyArray_DATA(ya) != cnp.PyArray_DATA(xa):
                return None
            for d in range(ndim):
                if cnp.PyArray_STRIDES(ya)[d] != cnp.PyArray_STRIDES(xa)[d]:
                    return None
    _run(op, xa, ya, ax, num_threads)
    return ya if out is not None or cnp.PyArray_NDIM(ya) > 0 else ya[()]


cdef _run(int op, cnp.ndarray x, cnp.ndarray y, int axis, int num_threads, cnp.ndarray mask=None):
    """fs_run on x and y; for logsumexp y may lack the reduced axis. mask: None
    or a bool array of x's shape (checked by the caller)."""
    cdef int ndim = cnp.PyArray_NDIM(x)
    cdef int64_t shape[64]
    cdef int64_t xs[64]
    cdef int64_t ys[64]
    cdef int64_t ws[64]
    cdef const uint8_t *wp = NULL
    cdef int d, j = 0, rc
    cdef cnp.npy_intp *xshape = cnp.PyArray_DIMS(x)
    cdef cnp.npy_intp *xstr = cnp.PyArray_STRIDES(x)
    cdef cnp.npy_intp *ystr = cnp.PyArray_STRIDES(y)
    cdef bint squeezed = cnp.PyArray_NDIM(y) == ndim - 1
    cdef const char *xp = <const char *>cnp.PyArray_DATA(x)
    cdef char *yp = <char *>cnp.PyArray_DATA(y)
    cdef int xtype = _type_code(x), ytype = _type_code(y)
    if ndim > 64:
        raise ValueError("fastsoftmax: arrays of more than 64 dimensions are not supported")
    for d in range(ndim):
        shape[d] = xshape[d]
        xs[d] = xstr[d]
        if squeezed and d == axis:
            ys[d] = 0
        else:
            ys[d] = ystr[j]
            j += 1
    if mask is not None:
        wp = <const uint8_t *>cnp.PyArray_DATA(mask)
        for d in range(ndim):
            ws[d] = cnp.PyArray_STRIDES(mask)[d]
    with nogil:
        rc = fs_run_typed(op, xtype, ytype, xp, yp, wp, ndim, shape, xs, ys, ws, axis, num_threads)
    if rc == FS_UNSUPPORTED_TYPES:
        raise TypeError(f"fastsoftmax: no kernel from {x.dtype} to {y.dtype}")
    if rc != 0:
        raise MemoryError("fastsoftmax: could not allocate scratch memory")


def run_backward(int op, cnp.ndarray y, cnp.ndarray g, cnp.ndarray dx, int axis, int num_threads,
                 cnp.ndarray mask=None):
    """Gradient of softmax (op SOFTMAX) or log_softmax (LOG_SOFTMAX) over `axis`:
    y, g and dx are aligned native arrays of one float dtype and one shape.
    mask: None, or the forward's where= as a bool array of that shape."""
    cdef int ndim = cnp.PyArray_NDIM(y)
    cdef int64_t shape[64]
    cdef int64_t ys[64]
    cdef int64_t gs[64]
    cdef int64_t ds[64]
    cdef int64_t ws[64]
    cdef const uint8_t *wp = NULL
    cdef int d, rc
    if ndim > 64:
        raise ValueError("fastsoftmax: arrays of more than 64 dimensions are not supported")
    if mask is not None:
        if cnp.PyArray_TYPE(mask) != cnp.NPY_BOOL or cnp.PyArray_NDIM(mask) != ndim:
            raise ValueError("fastsoftmax: the mask must be a bool array of y's shape")
        wp = <const uint8_t *>cnp.PyArray_DATA(mask)
    for d in range(ndim):
        shape[d] = cnp.PyArray_DIMS(y)[d]
        ys[d] = cnp.PyArray_STRIDES(y)[d]
        gs[d] = cnp.PyArray_STRIDES(g)[d]
        ds[d] = cnp.PyArray_STRIDES(dx)[d]
        if mask is not None:
            if cnp.PyArray_DIMS(mask)[d] != shape[d]:
                raise ValueError("fastsoftmax: the mask must be a bool array of y's shape")
            ws[d] = cnp.PyArray_STRIDES(mask)[d]
    cdef int dtype = 0 if cnp.PyArray_TYPE(y) == cnp.NPY_FLOAT32 else 1
    if cnp.PyArray_TYPE(y) != cnp.NPY_FLOAT32 and cnp.PyArray_TYPE(y) != cnp.NPY_FLOAT64:
        raise TypeError(f"fastsoftmax: the gradients take float32 or float64, not {y.dtype}")
    cdef const char *yp = <const char *>cnp.PyArray_DATA(y)
    cdef const char *gp = <const char *>cnp.PyArray_DATA(g)
    cdef char *dp = <char *>cnp.PyArray_DATA(dx)
    with nogil:
        rc = fs_run_backward(op, dtype, yp, gp, dp, wp, ndim, shape, ys, gs, ds, ws, axis, num_threads)
    if rc == FS_BAD_LOG_SOFTMAX_INPUT:
        raise ValueError("log_softmax_backward: y must be an output of log_softmax (every value <= 0"
                         + (" where the mask is True)" if mask is not None else ")"))
    if rc != 0:
        raise MemoryError("fastsoftmax: could not allocate scratch memory")


# ---- the torch bridge's fast path: fastsoftmax/torch.py binds torch's objects here ----
cdef object _t_types = None      # the tensor types the kernels take: (Tensor, Parameter)
cdef object _t_f32 = None, _t_f64 = None, _t_f16 = None, _t_bf16 = None, _t_strided = None
cdef tuple _t_checks = ()        # zero-argument callables; any true result sends the call to torch
cdef object _t_grad_enabled = None, _t_empty_like = None
cdef object _t_with_grad = None  # (x, dim, op) -> the result through the autograd.Function


def torch_bind(tensor_types, f32, f64, f16, bf16, strided, checks, grad_enabled, empty_like, with_grad):
    global _t_types, _t_f32, _t_f64, _t_f16, _t_bf16, _t_strided, _t_checks, _t_grad_enabled, _t_empty_like
    global _t_with_grad
    _t_types, _t_f32, _t_f64, _t_f16, _t_bf16, _t_strided = frozenset(tensor_types), f32, f64, f16, bf16, strided
    _t_checks, _t_grad_enabled, _t_empty_like = tuple(checks), grad_enabled, empty_like
    _t_with_grad = with_grad


cdef inline int _torch_code(object dt):
    """The FS_* dtype code of a torch dtype + 1, or 0 for a dtype the kernels do not take."""
    return (1 if dt is _t_f32 else 2 if dt is _t_f64 else 3 if dt is _t_f16 else 4 if dt is _t_bf16 else 0)


cdef inline int _torch_kind(object x, bint half):
    """The FS_* dtype code + 1 if the forward kernels (half: float16 and
    bfloat16 too) can read tensor x's memory as it is (outside torch.compile),
    else 0."""
    if type(x) not in _t_types or not x.is_cpu:
        return 0
    cdef int code = _torch_code(x.dtype)
    if code == 0 or (code > 2 and not half) or x.layout is not _t_strided:
        return 0
    for check in _t_checks:
        if check():
            return 0
    return code


def torch_kernel_tensor(object x, bint half=False):
    """Can the kernels read tensor x's memory as it is (outside torch.compile)?
    half: the forward kernels, which take float16 and bfloat16 too."""
    return _torch_kind(x, half) != 0


def torch_forward(int op, object x, object dim, int num_threads):
    """softmax / log_softmax of tensor x over dim (no cast needed): the output
    (through with_grad when autograd must record the call), or None for the
    caller to handle."""
    if type(dim) is not int:
        return None
    cdef int code = _torch_kind(x, True)
    if code == 0:
        return None
    size = x.shape
    cdef long d = dim
    cdef long nd = len(size)
    if d < -(nd or 1) or d >= (nd or 1):
        return None
    if x.requires_grad and _t_grad_enabled():
        return _t_with_grad(x, d, op)
    if not x.is_contiguous():  # the caller picks the output layout and the plan
        return None
    y = _t_empty_like(x)
    _run_tensor(op, x.data_ptr(), y.data_ptr(), size, x.stride(), None, code - 1, d, num_threads)
    return y


cdef _run_tensor(int op, size_t xp, size_t yp, object size, object stride, object ystride, int dtype, long dim,
                 int num_threads):
    """fs_run on raw memory: x with `stride` into y with `ystride` (in elements;
    None: y is C-contiguous)."""
    cdef int64_t shape[64]
    cdef int64_t xs[64]
    cdef int64_t ys[64]
    cdef int nd = len(size), d, rc
    cdef int64_t isz = 4 if dtype == 0 else 8 if dtype == 1 else 2
    cdef int64_t acc = isz
    if nd > 64:
        raise ValueError("fastsoftmax: tensors of more than 64 dimensions are not supported")
    if nd == 0:  # one element
        nd = 1
        shape[0] = 1
        xs[0] = ys[0] = isz
        dim = 0
    else:
        for d in range(nd - 1, -1, -1):
            shape[d] = size[d]
            xs[d] = <int64_t>stride[d] * isz
            ys[d] = acc if ystride is None else <int64_t>ystride[d] * isz
            acc *= shape[d]
        if dim < 0:
            dim += nd
    cdef int64_t total = isz
    for d in range(nd):
        total *= shape[d]
    with nogil:
        fs_advise_huge(<void *>yp, total)  # y is fresh (dense, of x's size): see fs_advise_huge
        rc = fs_run_typed(op, dtype, dtype, <const char *>xp, <char *>yp, NULL, nd, shape, xs, ys, NULL,
                          <int>dim, num_threads)
    if rc != 0:
        raise MemoryError("fastsoftmax: could not allocate scratch memory")


def run_tensor(int op, object x, object y, long dim, int num_threads):
    """The torch bridge's forward: fs_run on the memory of tensor x into tensor y,
    a fresh tensor of x's shape and dtype (float32 or float64, CPU, strided
    layout: the caller checked; y does not overlap x). dim is in range; 0-d x is
    one element."""
    cdef int code = _torch_code(x.dtype)
    if code == 0 or x.dtype is not y.dtype:
        raise TypeError(f"fastsoftmax: no kernel for {x.dtype} -> {y.dtype}")
    _run_tensor(op, x.data_ptr(), y.data_ptr(), x.shape, x.stride(), y.stride(), code - 1, dim, num_threads)


def advise_huge(size_t p, int64_t nbytes):
    """Transparent huge pages for a fresh buffer of nbytes at p (see fs_advise_huge)."""
    fs_advise_huge(<void *>p, nbytes)


def run_backward_tensor(int op, object y, object g, object dx, long dim, int num_threads):
    """The torch bridge's backward: fs_run_backward on tensors y and g (one
    shape and dtype, any strides) into dx, a fresh C-contiguous tensor."""
    cdef int64_t shape[64]
    cdef int64_t ys[64]
    cdef int64_t gs[64]
    cdef int64_t ds[64]
    cdef int nd, d, rc
    cdef size_t yp = y.data_ptr()
    cdef size_t gp = g.data_ptr()
    cdef size_t dp = dx.data_ptr()
    size = y.shape
    ystride = y.stride()
    gstride = g.stride()
    nd = len(size)
    if nd > 64:
        raise ValueError("fastsoftmax: tensors of more than 64 dimensions are not supported")
    cdef int code = _torch_code(y.dtype)
    if code == 0 or code > 2 or g.dtype is not y.dtype:
        raise TypeError(f"fastsoftmax: no backward kernel for {y.dtype} and {g.dtype}")
    cdef int dtype = code - 1
    cdef int64_t isz = 4 if dtype == 0 else 8
    cdef int64_t acc = isz
    if nd == 0:
        nd = 1
        shape[0] = 1
        ys[0] = gs[0] = ds[0] = isz
        dim = 0
    else:
        for d in range(nd - 1, -1, -1):
            shape[d] = size[d]
            ys[d] = <int64_t>ystride[d] * isz
            gs[d] = <int64_t>gstride[d] * isz
            ds[d] = acc
            acc *= shape[d]
        if dim < 0:
            dim += nd
    with nogil:
        fs_advise_huge(<void *>dp, acc)  # dx is fresh and C-contiguous
        rc = fs_run_backward(op, dtype, <const char *>yp, <const char *>gp, <char *>dp, NULL, nd, shape, ys, gs, ds,
                             NULL, <int>dim, num_threads)
    if rc == FS_BAD_LOG_SOFTMAX_INPUT:
        raise ValueError("log_softmax_backward: y must be an output of log_softmax (every value <= 0)")
    if rc != 0:
        raise MemoryError("fastsoftmax: could not allocate scratch memory")


def exp_nonpos(cnp.ndarray x):
    """exp(x) for x <= 0 (contiguous float32/float64) with the current tier's
    exp alone: lets the tests measure it directly."""
    if not _plain_float(x) or not cnp.PyArray_IS_C_CONTIGUOUS(x):
        raise TypeError("exp_nonpos takes a contiguous float32 or float64 array")
    cdef cnp.ndarray y = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), cnp.PyArray_TYPE(x), 0)
    fs_exp_nonpos(0 if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32 else 1, <const char *>cnp.PyArray_DATA(x),
                  <char *>cnp.PyArray_DATA(y), cnp.PyArray_SIZE(x))
    return y


def convert(cnp.ndarray x, cnp.ndarray y):
    """y[...] = x converted with the current tier's vector conversions (for the
    tests): contiguous arrays of one size, float16 / bfloat16 <-> float32."""
    if (not cnp.PyArray_IS_C_CONTIGUOUS(x) or not cnp.PyArray_IS_C_CONTIGUOUS(y)
            or cnp.PyArray_SIZE(x) != cnp.PyArray_SIZE(y) or not cnp.PyArray_ISWRITEABLE(y)):
        raise ValueError("convert takes two contiguous arrays of one size")
    if fs_convert(_type_code(x), _type_code(y), <const char *>cnp.PyArray_DATA(x), <char *>cnp.PyArray_DATA(y),
                  cnp.PyArray_SIZE(x)) != 0:
        raise TypeError(f"convert: no conversion from {x.dtype} to {y.dtype}")


def stream_copy(cnp.ndarray src, cnp.ndarray dst, int num_threads):
    """dst[...] = src, each byte read once and written once with non-temporal
    stores, on up to num_threads threads (returns how many ran): the memory
    floor of `python -m fastsoftmax bench`. Contiguous arrays of one size in
    bytes, not overlapping."""
    if (not cnp.PyArray_IS_C_CONTIGUOUS(src) or not cnp.PyArray_IS_C_CONTIGUOUS(dst)
            or cnp.PyArray_NBYTES(src) != cnp.PyArray_NBYTES(dst)):
        raise ValueError("stream_copy takes two contiguous arrays of one size in bytes")
    if not cnp.PyArray_ISWRITEABLE(dst):
        raise ValueError("stream_copy: the destination is read-only")
    cdef char *slo
    cdef char *shi
    cdef char *dlo
    cdef char *dhi
    _extent(src, &slo, &shi)
    _extent(dst, &dlo, &dhi)
    if slo < dhi and dlo < shi:
        raise ValueError("stream_copy: the arrays overlap")
    cdef const char *sp = <const char *>cnp.PyArray_DATA(src)
    cdef char *dp = <char *>cnp.PyArray_DATA(dst)
    cdef int64_t nbytes = cnp.PyArray_NBYTES(src)
    cdef int used
    with nogil:
        used = fs_stream_copy(sp, dp, nbytes, num_threads)
    return used


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
