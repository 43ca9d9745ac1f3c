/* fastsoftmax.h: the C entry points the Cython module calls. */
#ifndef FASTSOFTMAX_H
#define FASTSOFTMAX_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { FS_SOFTMAX = 0, FS_LOG_SOFTMAX = 1, FS_LOGSUMEXP = 2 };
enum { FS_FLOAT32 = 0, FS_FLOAT64 = 1, FS_FLOAT16 = 2, FS_BFLOAT16 = 3 };
enum { FS_MAX_DIMS = 64 };

/* SIMD tiers, lowest first: 0 generic, 1 avx2, 2 avx512f. */
int fs_tier_count(void);
const char *fs_tier_name(int tier);
int fs_tier_supported(int tier);   /* compiled in, and this CPU and OS run it */
int fs_tier_best(void);            /* the highest supported tier */
int fs_tier_get(void);
int fs_tier_set(int tier);         /* 0 on success, -1 if not supported */
int fs_openmp_enabled(void);
int64_t fs_long_slice_bytes(void);  /* slices longer than this take the two-sweep path */
/* Convert n contiguous elements with the current tier's vector conversions
 * (for tests): FS_FLOAT16 / FS_BFLOAT16 <-> FS_FLOAT32. Returns 0, or -1 for
 * another pair. */
int fs_convert(int from, int to, const char *x, char *y, int64_t n);
/* y = exp(x) for contiguous x <= 0 with the current tier's exp (for tests). */
void fs_exp_nonpos(int dtype, const char *x, char *y, int64_t n);

/* The benchmarks' memory floor (stream_copy.cpp): copy `bytes` from src to dst
 * (not overlapping), each read once and written once with non-temporal
 * stores, on up to num_threads threads. Returns the threads used. Call
 * without the GIL. */
int fs_stream_copy(const char *src, char *dst, int64_t bytes, int num_threads);

/* Reduce x over `axis`. x and y share `shape` (for logsumexp y is the
 * keepdims result: its stride along axis is ignored). Strides are in bytes and
 * multiples of the item size. `where` (or null) is a mask of x's shape, one
 * byte per element (nonzero: the element takes part; NumPy bool), with its own
 * byte strides (any, 0 for broadcast dimensions); elements that take no part
 * are left out of the reduction and give 0 (softmax) or -inf (log_softmax).
 * Call without the GIL. Returns 0, or -1 when scratch memory could not be
 * allocated (y may then be partly written). */
int fs_run(int op, int dtype, const char *x, char *y, const uint8_t *where, int ndim, const int64_t *shape,
           const int64_t *x_strides, const int64_t *y_strides, const int64_t *where_strides, int axis,
           int num_threads);
/* fs_run with x and y of different dtypes (FS_FLOAT16, FS_BFLOAT16: the bits
 * of IEEE binary16 / bfloat16). float16 and bfloat16 results are computed in
 * float32 and rounded once (to nearest even); a wider x is first rounded to
 * the result dtype, as a cast would. float16 / bfloat16 x with a float32 or
 * float64 result is read exactly and computed in the result dtype. Supported
 * (x -> y): f32->f32, f64->f64, f16->f16, f32->f16, f64->f16, bf16->bf16,
 * f32->bf16, f16->f32, bf16->f32, f16->f64, bf16->f64; other pairs return
 * FS_UNSUPPORTED_TYPES and write nothing. Never a copy of the whole array:
 * converted data goes through per-thread buffers (a slice or a block of one). */
enum { FS_UNSUPPORTED_TYPES = 3 };
int fs_run_typed(int op, int xtype, int ytype, const char *x, char *y, const uint8_t *where, int ndim,
                 const int64_t *shape, const int64_t *x_strides, const int64_t *y_strides,
                 const int64_t *where_strides, int axis, int num_threads);

/* Gradient of softmax (op FS_SOFTMAX: dx = y * (g - sum(g * y))) or log_softmax
 * (FS_LOG_SOFTMAX: dx = g - exp(y) * sum(g)) over `axis`; y, g and dx share
 * `shape`. `where` (or null): the forward's mask, as in fs_run; the sums run
 * over the elements that take part and dx is 0 at the others. Returns 0, -1
 * (no scratch memory), or FS_BAD_LOG_SOFTMAX_INPUT when a y that takes part is
 * above 0 (nothing written). Call without the GIL. */
enum { FS_BAD_LOG_SOFTMAX_INPUT = 2 };
int fs_run_backward(int op, int dtype, const char *y, const char *g, char *dx, const uint8_t *where, int ndim,
                    const int64_t *shape, const int64_t *y_strides, const int64_t *g_strides,
                    const int64_t *dx_strides, const int64_t *where_strides, int axis, int num_threads);

#ifdef __cplusplus
}
#endif
#endif
