/* kernels.h: the table of SIMD kernels one tier provides (one table per dtype).
 *
 * Row kernels walk n contiguous elements. Column kernels walk a tile of n rows
 * by w <= tile contiguous columns; row r of x starts at x + r * pitch_x
 * (pitches in elements). "rexp" = reduce-add of exp(x - m); "excl" = elements
 * equal to m are left out of the sum and counted instead, so that logsumexp and
 * log_softmax can use log1p(sum of the rest) and keep tiny results accurate.
 * Sums come back in double (compensated) so long rows stay accurate.
 */
#ifndef FS_KERNELS_H
#define FS_KERNELS_H
#include <stdint.h>

/* log(sum of exp(x - m)) from the sum over x != m and the count of x == m:
 * log1p keeps logsumexp([0, -40]) = 4.2e-18 instead of 0. */
static inline double fs_log_sum(double sum_rest, double count) { return __builtin_log1p(sum_rest + (count - 1.0)); }
/* log_softmax's offset; a slice holding +inf is NaN, as softmax's is. */
static inline double fs_log_softmax_offset(double m, double sum_rest, double count) {
    return m == __builtin_inf() ? __builtin_nan("") : fs_log_sum(sum_rest, count);
}

/* Widest column tile, bytes per row. A tall tile's rows are read as one
 * stream each, pages apart: DRAM reads run far faster in long runs (a 64 MiB
 * float32 array read in 4 KiB pieces a row apart: 4.4 ms; in 16 KiB ones,
 * whole rows: 1.5 ms, one Zen 4 core). The per-column state (col_sum_rows'
 * accumulators: 64 KiB of stack, 96 on the generic tier) then sits in L2,
 * which costs less than the short runs did. Interleaved A/B
 * against 4 KiB, Zen 4, one thread, medians: (4096, 4096) float32 axis=0
 * softmax 14.1 -> 11.5 ms, log_softmax 16.6 -> 14.9 ms; two threads: softmax
 * 7.43 -> 6.96 ms. */
enum { FS_COL_TILE_BYTES = 16 * 1024 };

/* The next block of a tall column tile, read in the same loop as this block's
 * sums so that its DRAM reads overlap their exps: n rows at x (no more than
 * this block has; this block's pitch; mask rows at mk, or null), their column
 * max goes to m. Rows [0, ahead) of x may be prefetched: the next blocks' rows
 * that exist. With m null, the next short tile, only prefetched into L2 by
 * the exp sweep of this one: rows [0, n), columns [0, w) of x, at this
 * tile's pitch. */
template <class T> struct ColNext {
    const T *x;
    const uint8_t *mk;
    int64_t n, ahead;
    T *m;
    int64_t w;
};

/* Per-block results of a long slice's first sweep: the max, the sum of
 * exp(x - max) and 0 (softmax, as rexp_sum), or the sum over x != max and
 * the count of x == max (log_softmax, logsumexp, as rexp_sum_excl). */
template <class T> struct BlockStats {
    T *m;
    double *sum, *count;
};

template <class T> struct KernelTable {
    T (*max)(const T *x, int64_t n);
    /* y = exp(x-m), returns the sum; `next` (or null) is prefetched: the next row. */
    double (*rexp_store)(const T *x, int64_t n, T m, T *y, const T *next);
    /* sum of exp(x-m) over x != m, count of x == m, the rounding of x - m put
     * back into each term (log_softmax, logsumexp) */
    double (*rexp_sum_excl)(const T *x, int64_t n, T m, double *count, const T *next);
    /* The writing kernels come in pairs: [0] plain stores, [1] non-temporal stores. */
    void (*scale_store[2])(const T *e, int64_t n, T s, T *y);               /* y = e * s (e may be y) */
    void (*rexp_scale_store[2])(const T *x, int64_t n, T m, T s, T *y);    /* y = exp(x-m) * s */
    void (*shift_store[2])(const T *x, int64_t n, T m, T c, T *y);         /* y = (x-m) - c */

    int small_max; /* small_rows takes rows of n <= small_max */
    void (*small_rows)(int op, const T *x, int64_t px, T *y, int64_t py, int64_t n, int64_t rows);
    /* many rows of any length n, row r at x + r * px, y + r * py (logsumexp:
     * its value at y[r * py]), the sweeps of three rows overlapped; the same
     * bits as max, rexp_store / rexp_sum_excl and the writing kernels. nt:
     * non-temporal stores; softmax then needs stage, 2 * rows_stage(n) elements
     * on whole cache lines (else unused). far: x is far larger than the
     * caches (each next row is prefetched). */
    void (*rows)(int op, const T *x, int64_t px, T *y, int64_t py, int64_t n, int64_t nrows, int nt, int far,
                 T *stage);
    int64_t (*rows_stage)(int64_t n);
    /* nb blocks of n elements back to back (a long slice): each one's max, sum
     * and count into st[0, nb), the same bits as max and, per op, rexp_sum or
     * rexp_sum_excl per block */
    void (*block_stats)(const T *x, int64_t n, int64_t nb, BlockStats<T> st, int op);
    /* the sum of exp(x-m), the same bits as rexp_store's */
    double (*rexp_sum)(const T *x, int64_t n, T m, const T *next);

    /* Column tiles: n rows of w contiguous columns, row r at x + r * px. */
    void (*col_max)(const T *x, int64_t n, int64_t px, int64_t w, T *m);
    void (*col_rexp_store)(const T *x, int64_t n, int64_t px, int64_t w, const T *m, T *y, int64_t py, double *sum,
                           const ColNext<T> *next);
    /* sum over x != m and count of x == m per column, as rexp_sum_excl (count
     * null: the plain sum of exp(x - m)); next (or null): the next block, whose
     * max is taken in the same loop */
    void (*col_rexp_sum)(const T *x, int64_t n, int64_t px, int64_t w, const T *m, double *sum, double *count,
                         const ColNext<T> *next);
    void (*col_scale)(T *y, int64_t n, int64_t py, int64_t w, const T *s);
    void (*col_rexp_scale_store[2])(const T *x, int64_t n, int64_t px, int64_t w, const T *m, const T *s, T *y,
                                    int64_t py);
    void (*col_shift_store[2])(const T *x, int64_t n, int64_t px, int64_t w, const T *m, const T *off, T *y,
                               int64_t py);
    void (*col_merge)(int64_t w, const T *bm, const double *bsum, const double *bcount, T *M, double *hi, double *lo,
                      double *count);

    void (*exp_nonpos)(const T *x, int64_t n, T *y); /* y = exp(x), x <= 0: the exp alone, for tests */

    /* Backward: dot = sum(a * b) (b null: sum(a)), in a fixed order;
     * softmax_grad: dx = y * (g - d); log_softmax_grad: dx = g - exp(y) * s (y <= 0). */
    double (*dot)(const T *a, const T *b, int64_t n);
    void (*softmax_grad[2])(const T *y, const T *g, int64_t n, T d, T *dx);
    void (*log_softmax_grad[2])(const T *y, const T *g, int64_t n, T s, T *dx);
    /* Backward column tiles (n rows of w contiguous columns, pitches in elements):
     * col_dot: per-column sum of a * b (b null: of a), each column in dot's order;
     * col_softmax_grad / col_log_softmax_grad: as the row kernels with d[c] / s[c];
     * col_pos_max: the largest max(y, 0), NaN ignored (> 0: not a log_softmax output). */
    void (*col_dot)(const T *a, int64_t pa, const T *b, int64_t pb, int64_t n, int64_t w, double *sum);
    void (*col_softmax_grad[2])(const T *y, int64_t py, const T *g, int64_t pg, int64_t n, int64_t w, const T *d,
                                T *dx, int64_t pd);
    void (*col_log_softmax_grad[2])(const T *y, int64_t py, const T *g, int64_t pg, int64_t n, int64_t w,
                                    const T *s, T *dx, int64_t pd);
    T (*col_pos_max)(const T *y, int64_t n, int64_t py, int64_t w);

    /* where= masks: the same kernels with a mask, one byte per element (nonzero:
     * the element takes part). Rows: w runs alongside x (contiguous). Column
     * tiles: row r's bytes at mk + r * pk (pk may be 0), contiguous across the
     * tile. Elements that take no part are left out of max, sum and count, and
     * the writing kernels put 0 (softmax) or -inf (log_softmax) there. */
    T (*max_w)(const T *x, const uint8_t *w, int64_t n);
    double (*rexp_store_w)(const T *x, const uint8_t *w, int64_t n, T m, T *y, const T *next);
    double (*rexp_sum_excl_w)(const T *x, const uint8_t *w, int64_t n, T m, double *count, const T *next);
    double (*rexp_sum_w)(const T *x, const uint8_t *w, int64_t n, T m, const T *next);
    void (*scale_store_w[2])(const T *e, const uint8_t *w, int64_t n, T s, T *y);
    void (*rexp_scale_store_w[2])(const T *x, const uint8_t *w, int64_t n, T m, T s, T *y);
    void (*shift_store_w[2])(const T *x, const uint8_t *w, int64_t n, T m, T c, T *y);
    void (*small_rows_w)(int op, const T *x, int64_t px, const uint8_t *w, int64_t pw, T *y, int64_t py, int64_t n,
                         int64_t rows);
    void (*col_max_w)(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk, T *m);
    void (*col_rexp_store_w)(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk, const T *m,
                             T *y, int64_t py, double *sum);
    void (*col_rexp_sum_w)(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk, const T *m,
                           double *sum, double *count, const ColNext<T> *next);
    void (*col_scale_w)(T *y, int64_t n, int64_t py, int64_t w, const uint8_t *mk, int64_t pk, const T *s);
    void (*col_rexp_scale_store_w[2])(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                                      const T *m, const T *s, T *y, int64_t py);
    void (*col_shift_store_w[2])(const T *x, int64_t n, int64_t px, int64_t w, const uint8_t *mk, int64_t pk,
                                 const T *m, const T *off, T *y, int64_t py);
    /* backward with a mask: sums over the elements that take part; dx is 0 elsewhere */
    double (*dot_w)(const T *a, const T *b, const uint8_t *w, int64_t n);
    void (*softmax_grad_w[2])(const T *y, const T *g, const uint8_t *w, int64_t n, T d, T *dx);
    void (*log_softmax_grad_w[2])(const T *y, const T *g, const uint8_t *w, int64_t n, T s, T *dx);
};

/* float16 / bfloat16 storage <-> float32, contiguous runs (half.hpp gives
 * the rules; every tier gives the same bits). */
struct HalfConvert {
    void (*h2f)(const uint16_t *s, int64_t n, float *d);
    void (*f2h)(const float *s, int64_t n, uint16_t *d);
    void (*b2f)(const uint16_t *s, int64_t n, float *d);
    void (*f2b)(const float *s, int64_t n, uint16_t *d);
    /* Fused with the first and last sweeps of a converted short slice:
     * [0] float16, [1] bfloat16. cvt_max: d = s as float32, returns max(d)
     * (exact for non-NaN data; a NaN makes the slice NaN through its sum).
     * scale_cvt: d = e * s rounded; shift_cvt: d = (x - m) - c rounded (the
     * same bits as the float32 kernels followed by the conversion). */
    float (*cvt_max[2])(const uint16_t *s, int64_t n, float *d);
    void (*scale_cvt[2])(const float *e, int64_t n, float s, uint16_t *d);
    void (*shift_cvt[2])(const float *x, int64_t n, float m, float c, uint16_t *d);
};

struct Tier {
    const char *name;
    KernelTable<float> f32;
    KernelTable<double> f64;
    HalfConvert half;
};

/* Each kernels_<isa>.cpp defines one of these (the AVX ones only on x86-64). */
extern const Tier fs_tier_generic;
extern const Tier fs_tier_avx2;
extern const Tier fs_tier_avx512;

#endif
