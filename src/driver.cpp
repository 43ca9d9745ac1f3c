/* driver.cpp: turns one strided reduction into a plan and runs it on threads.
 *
 * The array is seen as (outer..., n) where n is the reduced axis. Plans:
 *   row     the axis has unit stride: one slice after another, SIMD along it;
 *           runs of evenly spaced rows go to the pipelined kernel (rows():
 *           the max of row k, the exp sweep of row k - 1 and the writing
 *           sweep of row k - 2 in one loop), other rows to the single-row
 *           kernels, which share its sweeps and so its bits.
 *   column  another dimension has unit stride: SIMD across it, in tiles of
 *           whole vectors, walking the axis by its stride (axis=0, middle
 *           axes, transposed and Fortran-ordered input; no transpose, no copy).
 *   gather  no usable unit stride: each slice is copied into a per-thread
 *           buffer (small, in cache), computed there and copied out.
 * Slices longer than LONG_BYTES use two sweeps over fixed blocks: per block
 * (max, sum of exp), folded in block order, then one writing sweep; a single
 * long row is split across threads by those blocks. Whole blocks of a
 * contiguous slice take their first sweep pipelined (block k's max with
 * block k - 1's sum: kernels.h block_stats), the same bits as one by one. Rows shorter than 8
 * vectors are done many per kernel call, each in registers (small_rows);
 * outputs of STREAM_BYTES or more (softmax rows: SOFTMAX_STREAM_BYTES) are written with non-temporal stores.
 *
 * Determinism: every sum is formed in an order fixed by n and the plan, never
 * by the thread count, so results are bit-identical at any thread count.
 *
 * where= masks (one byte per element, nonzero = the element takes part) ride
 * along with x through every plan, with their own strides; the masked kernels
 * (the *_w entries of the kernel table) leave the other elements out of max,
 * sum and count and write 0 / -inf there. A mask that does not change along
 * the axis (stride 0) is settled per slice: a slice that takes part runs the
 * unmasked kernels, one that does not is written directly. A mask that is not
 * contiguous along the axis is gathered, like x, into a per-thread byte buffer
 * (rows) or tile (columns). A slice with nothing taking part gives 0 / -inf /
 * -inf without any special case: its max is -inf and its sum and count 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <type_traits>
#include <utility>

#include "fastsoftmax.h"
#include "dispatch.h"
#include "dims.hpp"
#include "half.hpp"
#include "threads.hpp"
#include "exp_constants.hpp"

namespace {

/* Per-thread scratch on whole cache lines: vector loads of the buffers never
 * straddle two lines (malloc gives 16 bytes). Freed with free(). */
inline void *alloc_lines(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

/* Storage types of float16 and bfloat16 elements (the bits; computed in float32). */
struct f16 { uint16_t bits; };
struct bf16 { uint16_t bits; };

/* Element conversions between the storage types of x (XS) and y (YS) and the
 * type the kernels compute in (T). Reading rounds x to the result dtype first
 * when that is narrower (float32 input with dtype=float16 is cast to float16,
 * then computed in float32). Contiguous runs of float16 / bfloat16 use the
 * tier's vector conversions; the rest is scalar, with the same bits. */
template <class T, class XS, class YS> struct Conv {
    static constexpr bool DIRECT = std::is_same<XS, T>::value && std::is_same<YS, T>::value;
    static inline float round_to_result(float v) {
        if constexpr (std::is_same<YS, f16>::value) return fs_h2f(fs_f2h(v));
        else if constexpr (std::is_same<YS, bf16>::value) return fs_b2f(fs_f2b(v));
        else return v;
    }
    static inline T in(XS v) {
        if constexpr (std::is_same<XS, f16>::value) return (T)fs_h2f(v.bits);
        else if constexpr (std::is_same<XS, bf16>::value) return (T)fs_b2f(v.bits);
        else if constexpr (std::is_same<XS, double>::value && std::is_same<YS, f16>::value) return (T)fs_h2f(fs_d2h(v));
        else if constexpr (std::is_same<XS, float>::value) return (T)round_to_result(v);
        else return (T)v;
    }
    static inline YS out(T v) {
        if constexpr (std::is_same<YS, f16>::value) return f16{fs_f2h((float)v)};
        else if constexpr (std::is_same<YS, bf16>::value) return bf16{fs_f2b((float)v)};
        else return (YS)v;
    }
    static void in_n(const HalfConvert *hc, const XS *x, int64_t stride, int64_t n, T *buf) {
        if constexpr (std::is_same<T, float>::value && std::is_same<XS, f16>::value) {
            if (stride == 1) return hc->h2f((const uint16_t *)x, n, buf);
        }
        if constexpr (std::is_same<T, float>::value && std::is_same<XS, bf16>::value) {
            if (stride == 1) return hc->b2f((const uint16_t *)x, n, buf);
        }
        if constexpr (std::is_same<T, float>::value && std::is_same<XS, float>::value &&
                      (std::is_same<YS, f16>::value || std::is_same<YS, bf16>::value)) {
            if (stride == 1) {  /* rounded to the half dtype and back, a chunk at a time */
                constexpr bool H = std::is_same<YS, f16>::value;
                uint16_t tmp[256];
                for (int64_t i = 0; i < n; i += 256) {
                    const int64_t len = n - i < 256 ? n - i : 256;
                    (H ? hc->f2h : hc->f2b)(x + i, len, tmp);
                    (H ? hc->h2f : hc->b2f)(tmp, len, buf + i);
                }
                return;
            }
        }
        for (int64_t i = 0; i < n; ++i) buf[i] = in(x[i * stride]);
    }
    static void out_n(const HalfConvert *hc, const T *buf, int64_t n, YS *y, int64_t stride) {
        if constexpr (std::is_same<T, float>::value && std::is_same<YS, f16>::value) {
            if (stride == 1) return hc->f2h(buf, n, (uint16_t *)y);
        }
        if constexpr (std::is_same<T, float>::value && std::is_same<YS, bf16>::value) {
            if (stride == 1) return hc->f2b(buf, n, (uint16_t *)y);
        }
        for (int64_t i = 0; i < n; ++i) y[i * stride] = out(buf[i]);
    }
};

/* Slices longer than this (bytes) take the two-sweep blocked path. */
const int64_t LONG_BYTES = 1024 * 1024;
/* Block of the two-sweep path: read twice per pass, so it should sit in L1. */
const int64_t BLOCK_BYTES = 16 * 1024;
/* Outputs of at least this many bytes are written with non-temporal stores,
 * and inputs this large come from memory (the pipelined rows then prefetch
 * each next row). */
const int64_t STREAM_BYTES = 32 * 1024 * 1024;
/* Softmax rows stream from here on: their exp values are staged in L1 and y is
 * written once, where plain stores write it twice (8x L2; the L3 is shared with
 * other cores). Pipelined float32 rows of 512, one Zen 5 core, plain against
 * streaming: 4 MiB out 165 / 166 us, 8 MiB 449 / 339 us, 12 MiB 934 / 585 us,
 * 24 MiB 2.35 / 1.35 ms. log_softmax writes y once either way, and streaming
 * its (4096, 1024) float32 took 2.1 ms against 1.3 ms; column tiles write rows of
 * a few lines ((2048, 2048) axis=0 log_softmax: 17.5 ms against 4.4 ms). */
const int64_t SOFTMAX_STREAM_BYTES = 8 * 1024 * 1024;
/* Softmax rows up to this size (bytes) whose y is not on whole lines stage their exp values. */
const int64_t STAGE_ROW_BYTES = 4 * 1024;
/* Column tiles up to this size (bytes) take three sweeps in cache: x's
 * tile and y's then share the L2 with room to spare. At 512 KiB they filled
 * a Zen 4's 1 MiB L2: interleaved A/B, one thread, medians, float32 axis=0
 * (2048, 8192) softmax 18.7 -> 11.4 ms, log_softmax 65.5 -> 13.6 ms (as
 * tall tiles now); (512, 4096) softmax 1.27 -> 1.16 ms. */
const int64_t COL_SHORT_BYTES = 256 * 1024;
/* Column tiles narrower than this (bytes) and than their rows write y in
 * pieces of a few lines a row apart, where non-temporal stores are slow:
 * (1024, 16384) float32 axis=0 log_softmax took 67 ms streaming against
 * 18.6 ms plain (Zen 4). */
const int64_t COL_STREAM_MIN_BYTES = 4 * 1024;
const int64_t COL_TILE_BYTES = FS_COL_TILE_BYTES;
/* Rows per block of tall column tiles: read twice (max, then sum) from cache.
 * Each block's per-column merge costs ~10 cycles a column; 128 rows halved
 * them against 64 (8 to 32 and 512 or more were slower): one Zen 4 thread,
 * float32 axis=0 softmax, medians, (4096, 4096) 11.3 -> 10.0 ms, float64
 * 30.6 -> 27.9 ms. */
const int64_t COL_BLOCK_ROWS = 128;

struct Outer {             /* the non-reduced dimensions, coalesced */
    int nd;
    int64_t shape[FS_MAX_DIMS];
    int64_t xs[FS_MAX_DIMS]; /* strides in elements */
    int64_t ys[FS_MAX_DIMS];
    int64_t ws[FS_MAX_DIMS]; /* mask strides in bytes (0 without a mask) */
    int64_t count;           /* product of shape */
};

/* Walks the outer index space from any start, adding strides like an odometer. */
struct Odometer {
    const Outer *o;
    int64_t idx[FS_MAX_DIMS];
    int64_t xoff, yoff, woff;
    void start(const Outer *outer, int64_t linear) {
        o = outer;
        xoff = yoff = woff = 0;
        for (int d = o->nd - 1; d >= 0; --d) {
            idx[d] = linear % o->shape[d];
            linear /= o->shape[d];
            xoff += idx[d] * o->xs[d];
            yoff += idx[d] * o->ys[d];
            woff += idx[d] * o->ws[d];
        }
    }
    /* x offset of the next index if only the last dimension moves, else this one's
     * (a prefetch hint: no need to be exact at a wrap). */
    int64_t next_x() const {
        const int d = o->nd - 1;
        return d >= 0 && idx[d] + 1 < o->shape[d] ? xoff + o->xs[d] : xoff;
    }
    void next() {
        for (int d = o->nd - 1; d >= 0; --d) {
            xoff += o->xs[d];
            yoff += o->ys[d];
            woff += o->ws[d];
            if (++idx[d] < o->shape[d]) return;
            xoff -= o->shape[d] * o->xs[d];
            yoff -= o->shape[d] * o->ys[d];
            woff -= o->shape[d] * o->ws[d];
            idx[d] = 0;
        }
    }
};

/* T: the type the kernels compute in; XS, YS: how x and y are stored (T
 * itself, or float16 / bfloat16 / a wider input rounded to the result dtype).
 * When they differ from T ("converted"), x is read into per-thread T buffers
 * (a slice, a block of a long slice, a block of column rows: never the whole
 * array), computed there and written back converted. */
template <class T, class XS = T, class YS = T> struct Plan {
    typedef Conv<T, XS, YS> C;
    static constexpr bool DIRECT = C::DIRECT;
    /* half in and half out of one kind (float32 computing): the fused
     * conversion sweeps of HalfConvert, [0] float16, [1] bfloat16; else -1 */
    static constexpr int FUSED = !std::is_same<T, float>::value || !std::is_same<XS, YS>::value ? -1
                                 : std::is_same<XS, f16>::value ? 0 : std::is_same<XS, bf16>::value ? 1 : -1;
    const KernelTable<T> *k;
    const HalfConvert *hc;
    int op;
    int64_t n, xsn, ysn;   /* axis length and strides in elements */
    bool masked;           /* a where= mask comes with x */
    int64_t wsn;           /* the mask's stride along the axis, bytes */
    int64_t block;         /* two-sweep block, elements */
    bool long_slices;
    bool stream;           /* output far larger than the caches: non-temporal stores */
    bool ytrans = false;   /* column plan with y contiguous along the axis (see ColumnTile) */
    bool ybuf = false;     /* column plan with y contiguous in neither dimension: through a buffer */

    /* Per-block (max, sum over x != max, count of x == max) of a long slice,
     * in nb-long arrays (one allocation: free(st.sum)); combined by fold(). */
    typedef BlockStats<T> Stats;
    static bool alloc_stats(Stats *st, int64_t nb) {
        double *mem = (double *)malloc((size_t)nb * (2 * sizeof(double) + sizeof(T)));
        if (!mem) return false;
        *st = {(T *)(mem + 2 * nb), mem, mem + nb};
        return true;
    }
    void fold(const Stats &st, int64_t nb, T *M, double *sum_rest, double *count) const {
        T mx = -__builtin_inf();
        for (int64_t b = 0; b < nb; ++b)
            if (st.m[b] > mx) mx = st.m[b];  /* NaN blocks are skipped here; their sum is NaN */
        double hi = 0.0, lo = 0.0, cnt = 0.0;
        for (int64_t b = 0; b < nb; ++b) {
            double v;
            if (st.m[b] == mx) {
                v = st.sum[b];
                cnt += st.count[b];
            } else if (st.m[b] == -__builtin_inf()) {
                v = 0;  /* -inf or left out throughout: softmax's plain sum is NaN there (-inf - -inf) */
            } else {
                /* the block's terms are exp(x - m_b): scaled by exp(m_b - mx). A
                 * float64 difference rounds, by up to ulp(mx) / 2: hundreds of
                 * ulp of the factor at |mx| in the hundreds (log_softmax of a
                 * max of 600.3 among 0.1s: 109 ulp). Its exact error (2Sum)
                 * goes back in as exp(d) (1 + err), as the kernels' terms do;
                 * float32 maxes differ exactly in double. */
                const double a = (double)st.m[b], c = -(double)mx, d = a + c;
                double f = exp(d);
                if (sizeof(T) == 8 && __builtin_isfinite(d)) {
                    const double bp = d - a, err = (a - (d - bp)) + (c - bp);
                    f += f * err;
                }
                v = (st.sum[b] + st.count[b]) * f;
            }
            double t = hi + v;  /* Neumaier, as in the kernels */
            lo += fabs(hi) >= fabs(v) ? (hi - t) + v : (v - t) + hi;
            hi = t;
        }
        *M = mx;
        *sum_rest = hi + lo;
        *count = cnt;
    }

    /* One slice of length n at most LONG_BYTES, contiguous. `next` is the next
     * row's start (prefetched) or null; with `stage` (streaming outputs) the
     * exp values go to that per-thread buffer, so y is written once, non-temporally. */
    void short_contiguous(const T *x, T *y, const T *next = nullptr, T *stage = nullptr) const {
        T m = k->max(x, n);
        if (op == FS_SOFTMAX) {
            T *e = stage ? stage : y;
            double s = k->rexp_store(x, n, m, e, next);
            k->scale_store[stage != nullptr](e, n, (T)(1.0 / s), y);
            return;
        }
        double count;
        double rest = k->rexp_sum_excl(x, n, m, &count, next);
        if (op == FS_LOG_SOFTMAX)
            k->shift_store[stream](x, n, m, (T)fs_log_softmax_offset(m, rest, count), y);
        else
            *y = (T)((double)m + fs_log_sum(rest, count));
    }

    /* The same with a contiguous mask w (null: every element takes part). With
     * nothing taking part the sum is 0, so 1/sum is inf; the writing kernels
     * put 0 / -inf in every element all the same. */
    void short_contiguous_w(const T *x, const uint8_t *w, T *y, const T *next = nullptr, T *stage = nullptr) const {
        /* rows short enough for small_rows take it here too, as contiguous rows
         * do (run_rows: `small`), so that a row gets the same bits whatever the
         * layout of x and y (strided, gathered, buffered) */
        if (n < k->small_max || (w && n == k->small_max)) {
            if (w)
                k->small_rows_w(op, x, 0, w, 0, y, 0, n, 1);
            else
                k->small_rows(op, x, 0, y, 0, n, 1);
            return;
        }
        if (!w) {
            short_contiguous(x, y, next, stage);
            return;
        }
        T m = k->max_w(x, w, n);
        if (op == FS_SOFTMAX) {
            T *e = stage ? stage : y;
            const T s = (T)(1.0 / k->rexp_store_w(x, w, n, m, e, next));
            /* e is exactly 0 where the mask is: a finite 1/sum keeps it 0, and
             * the plain scaling pass needs no mask; NaN or inf (a NaN taking part,
             * nothing taking part) would turn those 0 into NaN */
            if (__builtin_isfinite(s))
                k->scale_store[stage != nullptr](e, n, s, y);
            else
                k->scale_store_w[stage != nullptr](e, w, n, s, y);
            return;
        }
        double count;
        double rest = k->rexp_sum_excl_w(x, w, n, m, &count, next);
        if (op == FS_LOG_SOFTMAX)
            k->shift_store_w[stream](x, w, n, m, (T)fs_log_softmax_offset(m, rest, count), y);
        else
            *y = (T)((double)m + fs_log_sum(rest, count));
    }

    /* A slice with no element taking part: 0 (softmax), -inf (log_softmax, logsumexp). */
    void write_masked(YS *y) const {
        if (op == FS_LOGSUMEXP) {
            *y = C::out(-__builtin_inf());
            return;
        }
        const YS v = C::out(op == FS_SOFTMAX ? T(0) : T(-__builtin_inf()));
        for (int64_t i = 0; i < n; ++i) y[i * ysn] = v;
    }

    /* The mask of a slice that starts at w as the kernels take it: null when
     * every element takes part; false when none does (written, nothing to do). A
     * mask strided along the axis is gathered into wbuf (its first len bytes). */
    bool slice_mask(const uint8_t *&w, YS *y, uint8_t *wbuf, int64_t len) const {
        if (!masked) {
            w = nullptr;
            return true;
        }
        if (wsn == 0) {  /* the same for the whole slice */
            if (!*w) {
                write_masked(y);
                return false;
            }
            w = nullptr;
            return true;
        }
        if (wsn != 1 && len) {
            gather_bytes(w, wsn, len, wbuf);
            w = wbuf;
        }
        return true;
    }

    /* x's elements into buf (T), converted; y's from buf */
    /* stride -1 (a reversed slice, read in its own order) in a loop of its
     * own, which GCC vectorises with a lane reversal: (4096, 4096)[:, ::-1]
     * float32, one Zen 4 core, logsumexp 17.0 -> 10.7 ms, softmax into a
     * reversed out 23.9 -> 16.4 ms (read in memory order, which summed the
     * slice backwards, they took 5.3 and 8.0 ms) */
    void gather(const XS *x, int64_t stride, int64_t n, T *buf) const {
        if constexpr (DIRECT) {
            if (stride == -1)
                for (int64_t i = 0; i < n; ++i) buf[i] = x[-i];
            else
                for (int64_t i = 0; i < n; ++i) buf[i] = x[i * stride];
        } else {
            C::in_n(hc, x, stride, n, buf);
        }
    }
    static void gather_bytes(const uint8_t *w, int64_t stride, int64_t n, uint8_t *buf) {
        for (int64_t i = 0; i < n; ++i) buf[i] = w[i * stride];
    }
    void scatter(const T *buf, int64_t n, YS *y, int64_t stride) const {
        if constexpr (DIRECT) {
            if (stride == -1)
                for (int64_t i = 0; i < n; ++i) y[-i] = buf[i];
            else
                for (int64_t i = 0; i < n; ++i) y[i * stride] = buf[i];
        } else {
            C::out_n(hc, buf, n, y, stride);
        }
    }

    /* dst[r] = src[r * pitch], r < len: one column of a buffer written out as
     * a contiguous run of y (the mixed-layout plans); converted through a
     * contiguous piece and the vector conversion. */
    void write_column(const T *src, int64_t pitch, int64_t len, YS *dst) const {
        if constexpr (DIRECT) {
            for (int64_t r = 0; r < len; ++r) dst[r] = src[r * pitch];
        } else {
            T piece[512];
            for (int64_t r0 = 0; r0 < len; r0 += 512) {
                const int64_t m = len - r0 < 512 ? len - r0 : 512;
                for (int64_t r = 0; r < m; ++r) piece[r] = src[(r0 + r) * pitch];
                scatter(piece, m, dst + r0, 1);
            }
        }
    }

    /* One short slice with any strides; buf holds n elements. w: the slice's
     * mask, contiguous (see slice_mask), or null. */
    void short_slice(const XS *x, const uint8_t *w, YS *y, T *buf, const XS *next = nullptr) const {
        const bool lse = op == FS_LOGSUMEXP;
        if constexpr (FUSED >= 0) {  /* half in and out, unmasked, contiguous: 3 sweeps as float32 */
            if (!w && xsn == 1 && (lse || ysn == 1)) {
                const uint16_t *xh = (const uint16_t *)x;
                uint16_t *yh = (uint16_t *)y;
                const T m = hc->cvt_max[FUSED](xh, n, buf);
                /* the exp sweep prefetches the next row (its float offsets
                 * cover the half row twice over: the lines are just touched) */
                const T *nx = (const T *)next;
                if (op == FS_SOFTMAX) {
                    const double s = k->rexp_store(buf, n, m, buf, nx);
                    hc->scale_cvt[FUSED](buf, n, (T)(1.0 / s), yh);
                    return;
                }
                double count;
                const double rest = k->rexp_sum_excl(buf, n, m, &count, nx);
                if (op == FS_LOG_SOFTMAX)
                    hc->shift_cvt[FUSED](buf, n, m, (T)fs_log_softmax_offset(m, rest, count), yh);
                else
                    *y = C::out((T)((double)m + fs_log_sum(rest, count)));
                return;
            }
        }
        if constexpr (!DIRECT) {  /* converted: read into buf, compute there, write back */
            gather(x, xsn, n, buf);
            if (lse) {
                T r;
                short_contiguous_w(buf, w, &r);
                *y = C::out(r);
            } else {
                short_contiguous_w(buf, w, buf);
                scatter(buf, n, y, ysn);
            }
            return;
        } else {
            if (xsn == 1 && (lse || ysn == 1)) {
                short_contiguous_w(x, w, y);
                return;
            }
            const T *xr = x;
            if (xsn != 1) {
                gather(x, xsn, n, buf);
                xr = buf;
            }
            if (lse || ysn == 1) {
                short_contiguous_w(xr, w, y);
            } else {
                short_contiguous_w(xr, w, buf);  /* in place when xr == buf */
                scatter(buf, n, y, ysn);
            }
        }
    }

    /* Block b of a long slice: its pointer, or a gathered copy in buf; the same
     * for its mask (w: the slice's mask as it lies, stride wsn; null: none). */
    const T *block_in(const XS *x, int64_t b, int64_t *len, T *buf) const {
        int64_t start = b * block;
        *len = n - start < block ? n - start : block;
        if constexpr (DIRECT)
            if (xsn == 1) return x + start;
        gather(x + start * xsn, xsn, *len, buf);
        return buf;
    }
    const uint8_t *block_mask(const uint8_t *w, int64_t b, int64_t len, uint8_t *wbuf) const {
        if (!w) return nullptr;
        if (wsn == 1) return w + b * block;
        gather_bytes(w + b * block * wsn, wsn, len, wbuf);
        return wbuf;
    }

    void block_stat(const XS *x, const uint8_t *w, int64_t b, const Stats &st, T *buf, uint8_t *wbuf) const {
        int64_t len;
        const T *xb = block_in(x, b, &len, buf);
        const T *next = nullptr;
        if constexpr (DIRECT) next = xsn == 1 && (b + 1) * block < n ? x + (b + 1) * block : nullptr;
        const uint8_t *wb = block_mask(w, b, len, wbuf);
        const T m = st.m[b] = wb ? k->max_w(xb, wb, len) : k->max(xb, len);
        if (op == FS_SOFTMAX) {  /* the plain sum: softmax has no use for the count */
            st.sum[b] = wb ? k->rexp_sum_w(xb, wb, len, m, next) : k->rexp_sum(xb, len, m, next);
            st.count[b] = 0;
        } else {
            st.sum[b] = wb ? k->rexp_sum_excl_w(xb, wb, len, m, &st.count[b], next)
                           : k->rexp_sum_excl(xb, len, m, &st.count[b], next);
        }
    }
    /* The first sweep over blocks [lo, hi): whole blocks of a contiguous
     * unmasked slice through the pipelined kernel (the same bits), the rest one by one. */
    void stats(const XS *x, const uint8_t *w, int64_t lo, int64_t hi, const Stats &st, T *buf, uint8_t *wbuf) const {
        if constexpr (DIRECT) {
            const int64_t whole = (hi < n / block ? hi : n / block) - lo;
            if (xsn == 1 && !w && whole > 1) {
                k->block_stats(x + lo * block, block, whole, {st.m + lo, st.sum + lo, st.count + lo}, op);
                lo += whole;
            }
        }
        for (int64_t b = lo; b < hi; ++b) block_stat(x, w, b, st, buf, wbuf);
    }

    /* Second sweep over block b: c is 1/sum (softmax) or the log offset. */
    void block_write(const XS *x, const uint8_t *w, YS *y, int64_t b, T M, T c, T *buf, uint8_t *wbuf) const {
        int64_t len;
        const T *xb = block_in(x, b, &len, buf);
        const uint8_t *wb = block_mask(w, b, len, wbuf);
        const bool y_direct = DIRECT && ysn == 1;
        T *yb = buf;
        if constexpr (DIRECT) if (y_direct) yb = y + b * block;
        const bool nt = stream && y_direct;
        if (wb) {
            if (op == FS_SOFTMAX)
                k->rexp_scale_store_w[nt](xb, wb, len, M, c, yb);
            else
                k->shift_store_w[nt](xb, wb, len, M, c, yb);
        } else if (op == FS_SOFTMAX) {
            k->rexp_scale_store[nt](xb, len, M, c, yb);
        } else {
            k->shift_store[nt](xb, len, M, c, yb);
        }
        if (!y_direct) scatter(buf, len, y + b * block * ysn, ysn);
    }

    /* The value sweep 2 needs; logsumexp is written here, returns false then. */
    bool finish(T M, double rest, double count, YS *y, T *c) const {
        if (op == FS_SOFTMAX) {  /* a slice holding +inf is NaN (inf - inf) */
            *c = M == (T)__builtin_inf() ? (T)__builtin_nan("") : (T)(1.0 / (rest + count));
            return true;
        }
        if (op == FS_LOGSUMEXP) {
            *y = C::out((T)((double)M + fs_log_sum(rest, count)));
            return false;
        }
        *c = (T)fs_log_softmax_offset(M, rest, count);
        return true;
    }

    /* A long slice on the calling thread (w: its mask as it lies, or null). */
    void long_slice(const XS *x, const uint8_t *w, YS *y, const Stats &st, T *buf, uint8_t *wbuf) const {
        const int64_t nb = (n + block - 1) / block;
        stats(x, w, 0, nb, st, buf, wbuf);
        T M, c;
        double rest, count;
        fold(st, nb, &M, &rest, &count);
        if (!finish(M, rest, count, y, &c)) return;
        for (int64_t b = 0; b < nb; ++b) block_write(x, w, y, b, M, c, buf, wbuf);
    }
};

/* Converted short rows of at most small_max elements: this many elements (T) per
 * batch of rows, read into one buffer, computed by one small_rows call. */
const int64_t CVT_BATCH = 4096;

template <class T, class XS, class YS>
int run_rows(Plan<T, XS, YS> &p, const XS *x, const uint8_t *w, YS *y, const Outer &o, int nthreads) {
    typedef Plan<T, XS, YS> P;
    constexpr bool DIRECT = P::DIRECT;
    const int64_t total = o.count * p.n;
    const bool far = total * (int64_t)sizeof(T) >= STREAM_BYTES;  /* x comes from memory */
    const bool split_slices = p.long_slices && o.count < 2 * (int64_t)nthreads;
    int error = 0;
    /* a mask strided along the axis is gathered into wbuf: a slice, or a block of a long one */
    const bool need_wbuf = p.masked && p.wsn != 0 && p.wsn != 1;
    const int64_t wbuf_len = p.long_slices ? p.block : p.n;
    if (!split_slices) {
        /* rows of exactly small_max (8 vectors) go to the pipelined kernel
         * instead, whose steady step is 8 vectors: (1536, 128) float32 softmax
         * 45 -> 38 us, one Zen 5 core; shorter rows are faster here. Rows with a
         * mask along the axis stay (a mask settled per slice does not: its
         * slices get the bits of the unmasked call). */
        const bool small = DIRECT && !p.long_slices && p.n <= p.k->small_max && p.xsn == 1 &&
                           (p.op == FS_LOGSUMEXP || p.ysn == 1) &&
                           (p.n < p.k->small_max || (p.masked && p.wsn != 0));
        /* converted short rows, unmasked: read in batches, small_rows on the buffer */
        const bool small_cvt = !DIRECT && !p.long_slices && p.n <= p.k->small_max && !p.masked;
        const int64_t batch_rows = small_cvt ? (CVT_BATCH / p.n > 0 ? CVT_BATCH / p.n : 1) : 0;
        /* where the results start in buf: past the rows, at 2 KiB modulo 4 KiB
         * from them, so that storing row j's results does not alias (4K
         * aliasing) the loads of row j + 1 */
        const int64_t res_at = ((batch_rows * p.n * (int64_t)sizeof(T) + 4095) / 4096 * 4096 + 2048) / (int64_t)sizeof(T);
        /* x in rows, y contiguous across them instead of along the axis (a
         * C-ordered x into an F-ordered out=, say): runs of yt_rows rows are
         * computed into buf at pitch yt_pitch and written out one position of
         * the axis at a time, yt_rows elements in a row. Slice by slice through
         * the strided y, (4096, 4096) float32 took 155 ms against 3.4 ms into a
         * C-ordered out: every element a page apart. The padded pitch keeps a
         * column of buf out of one L1 set. */
        const bool ytrans = p.xsn == 1 && p.op != FS_LOGSUMEXP && p.ysn != 1 && !p.long_slices &&
                            o.nd >= 1 && o.ys[o.nd - 1] == 1;
        const int64_t yt_pitch = p.n + 64 / (int64_t)sizeof(T);
        int64_t yt_rows = 1024 * 1024 / (int64_t)sizeof(T) / yt_pitch / 16 * 16;  /* buf fills L2: (4096, 4096) 17 -> 15 ms against 256 KiB */
        yt_rows = yt_rows < 16 ? 16 : yt_rows > 256 ? 256 : yt_rows;
        const int t = thread_count(nthreads, total, o.count);
        const int64_t nb = (p.n + p.block - 1) / p.block;
        parallel(t, [&]() {
            T *buf = nullptr;
            uint8_t *wbuf = nullptr;
            typename P::Stats st = {};
            const bool contiguous = DIRECT && p.xsn == 1 && (p.op == FS_LOGSUMEXP || p.ysn == 1);
            /* softmax rows stage their exp values in two rows of buf for the
             * pipelined kernel: streaming ones, and short ones whose y is not on
             * whole lines (storing them into y splits lines: (1536, 128) float32
             * 46 -> 43 us; longer rows lose, their stage leaves L1) */
            const bool stage = contiguous && !p.long_slices && p.op == FS_SOFTMAX &&
                               (p.stream || (p.n * (int64_t)sizeof(T) <= STAGE_ROW_BYTES && (uintptr_t)y % 64));
            const bool need_buf = p.long_slices ? (p.xsn != 1 || p.ysn != 1 || !DIRECT) : !contiguous || stage;
            const int64_t buf_len = p.long_slices ? p.block
                                    : ytrans ? (yt_rows * yt_pitch > p.n ? yt_rows * yt_pitch : p.n)
                                    : small_cvt ? res_at + batch_rows * p.n
                                    : stage ? 2 * p.k->rows_stage(p.n) : p.n;
            if (need_buf) buf = (T *)alloc_lines(sizeof(T) * buf_len);
            if (need_wbuf) wbuf = (uint8_t *)malloc(wbuf_len);
            const bool st_ok = !p.long_slices || P::alloc_stats(&st, nb);
            if ((need_buf && !buf) || (need_wbuf && !wbuf) || !st_ok) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
                error = 1;
            } else {
                int64_t lo, hi;
                thread_range(o.count, &lo, &hi);
                Odometer it;
                it.start(&o, lo);
                if (ytrans) {  /* the kernels the rows would run into a like-ordered out, into buf */
                    const int d = o.nd - 1;
                    while (lo < hi) {
                        const int64_t left = o.shape[d] - it.idx[d];
                        int64_t cnt = hi - lo < left ? hi - lo : left;
                        cnt = cnt < yt_rows ? cnt : yt_rows;
                        YS *yr = y + it.yoff;
                        bool done = false;
                        if constexpr (DIRECT) {
                            if (!p.masked) {
                                if (p.n < p.k->small_max)
                                    p.k->small_rows(p.op, x + it.xoff, o.xs[d], buf, yt_pitch, p.n, cnt);
                                else
                                    p.k->rows(p.op, x + it.xoff, o.xs[d], buf, yt_pitch, p.n, cnt, 0, far, nullptr);
                                for (int64_t j = 0; j < cnt; ++j) it.next();
                                done = true;
                            }
                        } else if (small_cvt) {  /* converted into buf, then small_rows in place, as small_cvt */
                            for (int64_t j = 0; j < cnt; ++j, it.next()) p.gather(x + it.xoff, 1, p.n, buf + j * yt_pitch);
                            p.k->small_rows(p.op, buf, yt_pitch, buf, yt_pitch, p.n, cnt);
                            done = true;
                        }
                        if (!done) {  /* row by row, as the loop below: a row with nothing taking part is 0 / -inf */
                            for (int64_t j = 0; j < cnt; ++j, it.next()) {
                                const uint8_t *wr = w + it.woff;
                                T *br = buf + j * yt_pitch;
                                /* (a slice masked out whole is not written through y's stride, only here) */
                                if ((!p.masked || p.wsn != 0 || *wr) && p.slice_mask(wr, y + it.yoff, wbuf, p.n)) {
                                    if constexpr (DIRECT) {
                                        p.short_contiguous_w(x + it.xoff, wr, br);
                                    } else {
                                        p.gather(x + it.xoff, 1, p.n, br);
                                        p.short_contiguous_w(br, wr, br);
                                    }
                                } else {
                                    for (int64_t i = 0; i < p.n; ++i) br[i] = p.op == FS_SOFTMAX ? T(0) : -__builtin_inf();
                                }
                            }
                        }
                        for (int64_t j = 0; j < p.n; ++j) p.write_column(buf + j, yt_pitch, cnt, yr + j * p.ysn);
                        lo += cnt;
                    }
                }
                if constexpr (DIRECT) {
                    if (small && o.nd <= 1 && (!p.masked || p.wsn == 1)) {  /* evenly spaced short rows: one kernel call */
                        const int64_t xs = o.nd ? o.xs[0] : 0, ys = o.nd ? o.ys[0] : 0;
                        if (p.masked) {
                            const int64_t ws = o.nd ? o.ws[0] : 0;
                            p.k->small_rows_w(p.op, x + lo * xs, xs, w + lo * ws, ws, y + lo * ys, ys, p.n, hi - lo);
                        } else {
                            p.k->small_rows(p.op, x + lo * xs, xs, y + lo * ys, ys, p.n, hi - lo);
                        }
                        hi = lo;
                    } else if (contiguous && !p.long_slices && !p.masked) {
                        /* runs of evenly spaced rows (along the last outer dim, where
                         * outer dims do not merge) go to one kernel call each: short
                         * rows to small_rows (a vector width of rows at a time), longer
                         * ones to the pipelined kernel; other layouts take the loop below */
                        const int d = o.nd - 1;
                        while (lo < hi) {
                            const int64_t left = d >= 0 ? o.shape[d] - it.idx[d] : hi - lo;
                            const int64_t cnt = hi - lo < left ? hi - lo : left;
                            const int64_t xs = d >= 0 ? o.xs[d] : 0, ys = d >= 0 ? o.ys[d] : 0;
                            if (small)
                                p.k->small_rows(p.op, x + it.xoff, xs, y + it.yoff, ys, p.n, cnt);
                            else
                                p.k->rows(p.op, x + it.xoff, xs, y + it.yoff, ys, p.n, cnt, p.stream, far,
                                          stage ? buf : nullptr);
                            for (int64_t j = 0; j < cnt; ++j) it.next();
                            lo += cnt;
                        }
                    }
                } else if (small_cvt) {
                    /* batches of rows read into buf, results after them (not in
                     * place: see ColumnTile::rows_in); rows that follow each
                     * other in memory are converted as one run */
                    const bool lse = p.op == FS_LOGSUMEXP;
                    T *res = buf + res_at;
                    const bool x_run = o.nd == 1 && o.xs[0] == p.n && p.xsn == 1;
                    const bool y_run = !lse && o.nd == 1 && o.ys[0] == p.n && p.ysn == 1;
                    for (int64_t r = lo; r < hi;) {
                        const int64_t cnt = hi - r < batch_rows ? hi - r : batch_rows;
                        Odometer out = it;
                        if (x_run) {
                            p.gather(x + it.xoff, 1, cnt * p.n, buf);
                            for (int64_t j = 0; j < cnt; ++j) it.next();
                        } else {
                            for (int64_t j = 0; j < cnt; ++j, it.next()) p.gather(x + it.xoff, p.xsn, p.n, buf + j * p.n);
                        }
                        if (x_run && r + cnt < hi) {  /* the next batch streams in while this one computes */
                            const char *nb = (const char *)(x + it.xoff);
                            const int64_t bytes = (hi - r - cnt < batch_rows ? hi - r - cnt : batch_rows) * p.n *
                                                  (int64_t)sizeof(XS);
                            for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(nb + b, 0, 3);
                        }
                        if (y_run) {  /* and this batch's output lines are fetched for writing */
                            const char *ob = (const char *)(y + out.yoff);
                            for (int64_t b = 0; b < cnt * p.n * (int64_t)sizeof(YS); b += 64) __builtin_prefetch(ob + b, 1, 3);
                        }
                        p.k->small_rows(p.op, buf, p.n, res, lse ? 1 : p.n, p.n, cnt);
                        if (y_run) {
                            p.scatter(res, cnt * p.n, y + out.yoff, 1);
                        } else {
                            for (int64_t j = 0; j < cnt; ++j, out.next()) {
                                if (lse)
                                    y[out.yoff] = P::C::out(res[j]);
                                else
                                    p.scatter(res + j * p.n, p.n, y + out.yoff, p.ysn);
                            }
                        }
                        r += cnt;
                    }
                    hi = lo;
                }
                for (int64_t r = lo; r < hi; ++r, it.next()) {
                    const uint8_t *wr = w + it.woff;
                    if (!p.slice_mask(wr, y + it.yoff, wbuf, p.long_slices ? 0 : p.n)) continue;
                    if constexpr (DIRECT) {
                        if (small) {
                            if (wr)
                                p.k->small_rows_w(p.op, x + it.xoff, 0, wr, 0, y + it.yoff, 0, p.n, 1);
                            else
                                p.k->small_rows(p.op, x + it.xoff, 0, y + it.yoff, 0, p.n, 1);
                            continue;
                        }
                    }
                    if (p.long_slices) {
                        p.long_slice(x + it.xoff, wr, y + it.yoff, st, buf, wbuf);
                    } else if (contiguous) {
                        if constexpr (DIRECT)
                            p.short_contiguous_w(x + it.xoff, wr, y + it.yoff, r + 1 < hi ? x + it.next_x() : nullptr,
                                                 p.stream ? buf : nullptr);
                    } else {
                        p.short_slice(x + it.xoff, wr, y + it.yoff, buf,
                                      DIRECT || r + 1 >= hi ? nullptr : x + it.next_x());
                    }
                }
            }
            free(buf);
            free(wbuf);
            free(st.sum);
        });
        return error ? -1 : 0;
    }

    /* Few long slices: split each one across threads by its fixed blocks. */
    const int64_t nb = (p.n + p.block - 1) / p.block;
    const int t = thread_count(nthreads, p.n, nb);
    typename P::Stats st;
    if (!P::alloc_stats(&st, nb)) return -1;
    const bool need_buf = p.xsn != 1 || p.ysn != 1 || !DIRECT;
    Odometer it;
    it.start(&o, 0);
    for (int64_t r = 0; r < o.count && !error; ++r, it.next()) {
        const XS *xr = x + it.xoff;
        YS *yr = y + it.yoff;
        const uint8_t *wr = w + it.woff;
        if (!p.slice_mask(wr, yr, nullptr, 0)) continue;
        T M, c = 0;
        double rest, count;
        bool write = true;
        parallel(t, [&]() {
            T *buf = nullptr;
            uint8_t *wbuf = nullptr;
            if (need_buf) buf = (T *)alloc_lines(sizeof(T) * p.block);
            if (need_wbuf) wbuf = (uint8_t *)malloc(p.block);
            if ((need_buf && !buf) || (need_wbuf && !wbuf)) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
                error = 1;
            }
#ifdef _OPENMP
#pragma omp barrier
#endif
            if (!error) {
                int64_t lo, hi;
                thread_range(nb, &lo, &hi);
                p.stats(xr, wr, lo, hi, st, buf, wbuf);
#ifdef _OPENMP
#pragma omp barrier
#pragma omp single
#endif
                {
                    p.fold(st, nb, &M, &rest, &count);
                    write = p.finish(M, rest, count, yr, &c);
                }  /* implicit barrier */
                if (write)
                    for (int64_t b = lo; b < hi; ++b) p.block_write(xr, wr, yr, b, M, c, buf, wbuf);
            }
            free(buf);
            free(wbuf);
        });
    }
    free(st.sum);
    return error ? -1 : 0;
}

/* Column plan: `inner` (unit x stride, length ni) is vectorised in tiles of
 * w columns; y's stride along it is ys_inner (1 unless logsumexp).
 * Short columns (n <= COL_SHORT_BYTES / 64 / itemsize rows) take three sweeps
 * over a tile that stays in cache (max, exp stored and summed, scale); taller
 * ones two streaming sweeps: blocks of COL_BLOCK_ROWS rows give per-column
 * (max, sum) that are merged in order, then one writing sweep. A column's
 * result depends on n only, never on w, so tiles can be cut to fit the threads. */
template <class T, class XS = T, class YS = T> struct ColumnTile {
    typedef Plan<T, XS, YS> P;
    static constexpr bool DIRECT = P::DIRECT;
    enum { TW = COL_TILE_BYTES / sizeof(T) };
    static constexpr double sum_unscale = std::is_same<T, float>::value ? ExpF32::sum_unscale : ExpF64::sum_unscale;
    /* bytes of a gathered mask tile: a whole short tile (n * w * sizeof(T) <=
     * COL_SHORT_BYTES) or one block of rows of a tall one; converted tiles
     * (float16, bfloat16) are read into a T buffer of as many elements */
    static constexpr int64_t WTILE = COL_SHORT_BYTES / sizeof(T) > COL_BLOCK_ROWS * TW
                                         ? COL_SHORT_BYTES / sizeof(T) : COL_BLOCK_ROWS * TW;
    T m[TW], off[TW], bm[TW], nbm[TW];
    double sum[TW], lo[TW], count[TW], bsum[TW], bcount[TW];

    static bool short_columns(int64_t n) { return n * 64 * (int64_t)sizeof(T) <= COL_SHORT_BYTES; }

    /* Rows [r0, r0 + len) of the tile's mask as the column kernels take it: in
     * place when it is contiguous across the columns (pitch: its stride along
     * the axis), else gathered into wtile (pitch w). */
    static const uint8_t *mask_rows(const P &p, const uint8_t *mk, int64_t wsi, int64_t r0, int64_t len,
                                    int64_t w, uint8_t *wtile, int64_t *pk) {
        if (wsi == 1) {
            *pk = p.wsn;
            return mk + r0 * p.wsn;
        }
        for (int64_t r = 0; r < len; ++r) {
            const uint8_t *src = mk + (r0 + r) * p.wsn;
            for (int64_t c = 0; c < w; ++c) wtile[r * w + c] = src[c * wsi];
        }
        *pk = w;
        return wtile;
    }

    /* Rows [r0, r0 + len) of x as T with their pitch: in place, or (converted)
     * read into xbuf with pitch w. The results of such rows go to another part
     * of the buffer (rows_out: OUT_AT, not in place: AVX-512 masked loads of a
     * narrow tile's next row stall behind the masked stores of this one in the
     * same cache line) and are written back converted by rows_flush.
     * XBUF elements: the input part, then two output parts (see sweep). */
    static constexpr int64_t OUT_AT = WTILE + 64, XBUF = 2 * WTILE + 64;
    static const T *rows_in(const P &p, const XS *x, int64_t r0, int64_t len, int64_t w, T *xbuf, int64_t *px) {
        if constexpr (DIRECT) {
            *px = p.xsn;
            return x + r0 * p.xsn;
        } else {
            if (p.xsn == w)  /* the rows follow each other: one run */
                p.gather(x + r0 * p.xsn, 1, len * w, xbuf);
            else
                for (int64_t r = 0; r < len; ++r) p.gather(x + (r0 + r) * p.xsn, 1, w, xbuf + r * w);
            *px = w;
            return xbuf;
        }
    }
    /* p.ytrans (x in columns, y contiguous along the axis, as for x.T into a
     * C-ordered out=): the tile's rows go to the buffer at pitch w + YPAD and
     * are written out one column (one slice of y) at a time. Done element by
     * element through the strided y, (4096, 4096) axis=0 into an F-ordered
     * out took 121 ms against 9.8 ms into a C-ordered one: every element a
     * page apart. The padding keeps a column of the buffer out of one L1 set. */
    enum { YPAD = 64 / sizeof(T) };
    static bool buffered(const P &p) { return !DIRECT || p.ytrans || p.ybuf; }
    static T *rows_out(const P &p, YS *y, int64_t r0, int64_t w, T *xbuf, int64_t *py) {
        if constexpr (DIRECT)
            if (!p.ytrans && !p.ybuf) {
                *py = p.ysn;
                return y + r0 * p.ysn;
            }
        *py = p.ytrans ? w + YPAD : w;
        return xbuf;
    }
    static void rows_flush(const P &p, YS *y, int64_t r0, int64_t len, int64_t w, int64_t ys_inner, const T *xbuf) {
        if (p.ytrans) {  /* p.ysn == 1 */
            for (int64_t c = 0; c < w; ++c) p.write_column(xbuf + c, w + YPAD, len, y + c * ys_inner + r0);
            return;
        }
        if (p.ybuf) {
            for (int64_t r = 0; r < len; ++r) p.scatter(xbuf + r * w, w, y + (r0 + r) * p.ysn, ys_inner);
            return;
        }
        if constexpr (!DIRECT) {
            if (p.ysn == w)
                p.scatter(xbuf, len * w, y + r0 * p.ysn, 1);
            else
                for (int64_t r = 0; r < len; ++r) p.scatter(xbuf + r * w, w, y + (r0 + r) * p.ysn, 1);
        }
    }

    /* mk: the tile's mask (null: none), wsi its stride across the columns.
     * xbuf: WTILE elements for converted tiles (else unused). xn: the tile this
     * thread runs next (wn columns), or null: a short tile's exp sweep
     * prefetches it. Interleaved A/B, Zen 3, one thread, medians: float32
     * (64, 1000, 64) axis=1 softmax 6.40 -> 6.18 ms, log_softmax 6.27 -> 5.75 ms;
     * (1000, 1000) axis=0 softmax 1.33 -> 1.22 ms. */
    void run(const P &p, const XS *x, YS *y, int64_t w, int64_t ys_inner, const uint8_t *mk, int64_t wsi,
             uint8_t *wtile, T *xbuf, const XS *xn = nullptr, int64_t wn = 0) {
        const KernelTable<T> *k = p.k;
        const int64_t n = p.n;
        if (mk && wsi == 0 && p.wsn == 0) {  /* one mask byte for the whole tile */
            if (*mk) {
                mk = nullptr;
            } else {
                for (int64_t c = 0; c < w; ++c) p.write_masked(y + c * ys_inner);
                return;
            }
        }
        /* the writing sweep in blocks of rows when the mask is gathered or x converted */
        auto chunks = [&](auto f) {  /* f(r0, len, mask, pitch) */
            if (DIRECT && !buffered(p) && (!mk || wsi == 1)) {
                f((int64_t)0, n, mk, mk ? p.wsn : (int64_t)0);
                return;
            }
            for (int64_t r0 = 0; r0 < n; r0 += COL_BLOCK_ROWS) {
                const int64_t len = n - r0 < COL_BLOCK_ROWS ? n - r0 : COL_BLOCK_ROWS;
                int64_t pk = 0;
                const uint8_t *wk = mk ? mask_rows(p, mk, wsi, r0, len, w, wtile, &pk) : nullptr;
                f(r0, len, wk, pk);
            }
        };
        if (short_columns(n)) {
            int64_t pk = 0, px, py;
            const uint8_t *wk = mk ? mask_rows(p, mk, wsi, 0, n, w, wtile, &pk) : nullptr;
            const T *xt = rows_in(p, x, 0, n, w, xbuf, &px);
            ColNext<T> pfn = {nullptr, nullptr, n, 0, nullptr, wn};
            if constexpr (DIRECT) pfn.x = xn;
            const ColNext<T> *pf = pfn.x && !wk ? &pfn : nullptr;
            if (wk)
                k->col_max_w(xt, n, px, w, wk, pk, m);
            else
                k->col_max(xt, n, px, w, m);
            if (p.op == FS_SOFTMAX) {
                T *yt = rows_out(p, y, 0, w, xbuf + OUT_AT, &py);
                if (wk)
                    k->col_rexp_store_w(xt, n, px, w, wk, pk, m, yt, py, sum);
                else
                    k->col_rexp_store(xt, n, px, w, m, yt, py, sum, pf);
                bool finite = true;
                for (int64_t c = 0; c < w; ++c) {
                    off[c] = (T)(1.0 / sum[c]);
                    finite = finite && __builtin_isfinite(off[c]);
                }
                if (wk && !finite)  /* y is 0 where masked; only a NaN or inf scale needs the mask (see rows) */
                    k->col_scale_w(yt, n, py, w, wk, pk, off);
                else
                    k->col_scale(yt, n, py, w, off);
                rows_flush(p, y, 0, n, w, ys_inner, xbuf + OUT_AT);
                return;
            }
            if (wk)
                k->col_rexp_sum_w(xt, n, px, w, wk, pk, m, sum, count, nullptr);
            else
                k->col_rexp_sum(xt, n, px, w, m, sum, count, pf);
            if (p.op == FS_LOG_SOFTMAX) {
                for (int64_t c = 0; c < w; ++c) off[c] = (T)fs_log_softmax_offset(m[c], sum[c], count[c]);
                T *yt = rows_out(p, y, 0, w, xbuf + OUT_AT, &py);
                if (wk)
                    k->col_shift_store_w[p.stream](xt, n, px, w, wk, pk, m, off, yt, py);
                else
                    k->col_shift_store[p.stream](xt, n, px, w, m, off, yt, py);
                rows_flush(p, y, 0, n, w, ys_inner, xbuf + OUT_AT);
                return;
            }
        } else {
            /* softmax takes plain block sums; log_softmax and logsumexp leave out
             * x == block max and count it (for log1p). A column block of only
             * -inf is summed against 0 instead of its max: it adds 0, not NaN.
             * Each block's max is taken while the block before it is summed
             * (ColNext) when x is read in place with its mask, if any. */
            const bool softmax = p.op == FS_SOFTMAX;
            const bool ride = DIRECT && (!mk || wsi == 1);
            for (int64_t c = 0; c < w; ++c) {
                m[c] = -__builtin_inf();
                sum[c] = lo[c] = count[c] = 0.0;
            }
            T *cur = bm, *nxt = nbm;  /* this block's max, the next one's */
            auto rider = [&](int64_t r0, ColNext<T> *cn) -> const ColNext<T> * {  /* the block at row r0 */
                if constexpr (DIRECT) {
                    if (!ride || r0 >= n) return nullptr;
                    *cn = {x + r0 * p.xsn, mk ? mk + r0 * p.wsn : nullptr,
                           n - r0 < COL_BLOCK_ROWS ? n - r0 : COL_BLOCK_ROWS, n - r0, nxt};
                    return cn;
                }
                return nullptr;
            };
            ColNext<T> cn;
            for (int64_t r = 0; r < n; r += COL_BLOCK_ROWS) {
                const int64_t len = n - r < COL_BLOCK_ROWS ? n - r : COL_BLOCK_ROWS;
                int64_t pk = 0, px;
                const uint8_t *wk = mk ? mask_rows(p, mk, wsi, r, len, w, wtile, &pk) : nullptr;
                const T *xt = rows_in(p, x, r, len, w, xbuf, &px);
                const ColNext<T> *next = rider(r + COL_BLOCK_ROWS, &cn);
                if (!ride || r == 0) {  /* else cur holds it: taken with the last block's sums */
                    if (wk)
                        k->col_max_w(xt, len, px, w, wk, pk, cur);
                    else
                        k->col_max(xt, len, px, w, cur);
                }
                if (softmax) {
                    for (int64_t c = 0; c < w; ++c) {
                        off[c] = cur[c] == -__builtin_inf() ? T(0) : cur[c];
                        bcount[c] = 0.0;
                    }
                    if (wk)
                        k->col_rexp_sum_w(xt, len, px, w, wk, pk, off, bsum, nullptr, next);
                    else
                        k->col_rexp_sum(xt, len, px, w, off, bsum, nullptr, next);
                } else if (wk) {
                    k->col_rexp_sum_w(xt, len, px, w, wk, pk, cur, bsum, bcount, next);
                } else {
                    k->col_rexp_sum(xt, len, px, w, cur, bsum, bcount, next);
                }
                k->col_merge(w, cur, bsum, bcount, m, sum, lo, count);
                if (ride) std::swap(cur, nxt);
            }
            for (int64_t c = 0; c < w; ++c) sum[c] = (sum[c] + lo[c]) * sum_unscale;  /* col_merge scales them */
            /* The writing sweep, block by block. Converted: two halves of xbuf
             * in turn, each block written back while the next is computed (its
             * masked stores retire first: reading them at once stalls). */
            T *bufs[2] = {xbuf ? xbuf + OUT_AT : nullptr, xbuf ? xbuf + OUT_AT + WTILE / 2 : nullptr};
            int flip = 0;
            int64_t pend_r0 = 0, pend_len = 0;
            auto sweep = [&](auto kernel) {  /* kernel(xt, px, yt, py, len, wk, pk) */
                chunks([&](int64_t r0, int64_t len, const uint8_t *wk, int64_t pk) {
                    int64_t px, py;
                    const T *xt = rows_in(p, x, r0, len, w, xbuf, &px);
                    T *yt = rows_out(p, y, r0, w, bufs[flip], &py);
                    kernel(xt, px, yt, py, len, wk, pk);
                    if (buffered(p)) {
                        if (pend_len) rows_flush(p, y, pend_r0, pend_len, w, ys_inner, bufs[flip ^ 1]);
                        pend_r0 = r0;
                        pend_len = len;
                        flip ^= 1;
                    }
                });
                if (pend_len) rows_flush(p, y, pend_r0, pend_len, w, ys_inner, bufs[flip ^ 1]);
            };
            if (softmax) {
                for (int64_t c = 0; c < w; ++c)  /* +inf in the column: NaN, as inf - inf */
                    off[c] = m[c] == (T)__builtin_inf() ? (T)__builtin_nan("") : (T)(1.0 / (sum[c] + count[c]));
                sweep([&](const T *xt, int64_t px, T *yt, int64_t py, int64_t len, const uint8_t *wk, int64_t pk) {
                    if (wk)
                        k->col_rexp_scale_store_w[p.stream](xt, len, px, w, wk, pk, m, off, yt, py);
                    else
                        k->col_rexp_scale_store[p.stream](xt, len, px, w, m, off, yt, py);
                });
                return;
            }
            if (p.op == FS_LOG_SOFTMAX) {
                for (int64_t c = 0; c < w; ++c) off[c] = (T)fs_log_softmax_offset(m[c], sum[c], count[c]);
                sweep([&](const T *xt, int64_t px, T *yt, int64_t py, int64_t len, const uint8_t *wk, int64_t pk) {
                    if (wk)
                        k->col_shift_store_w[p.stream](xt, len, px, w, wk, pk, m, off, yt, py);
                    else
                        k->col_shift_store[p.stream](xt, len, px, w, m, off, yt, py);
                });
                return;
            }
        }
        for (int64_t c = 0; c < w; ++c) y[c * ys_inner] = P::C::out((T)((double)m[c] + fs_log_sum(sum[c], count[c])));
    }
};

/* Tall converted column tiles: columns per tile (a block of COL_BLOCK_ROWS
 * rows of them, read into float32, then stays in L1/L2 for its sweeps). */
const int64_t CVT_TALL_TILE = 256;

/* wsi: the mask's stride across the inner (column) dimension. */
template <class T, class XS, class YS>
int run_columns(Plan<T, XS, YS> &p, const XS *x, const uint8_t *wm, YS *y, const Outer &o, int64_t ni,
                int64_t ys_inner, int64_t wsi, int nthreads) {
    typedef ColumnTile<T, XS, YS> Tile;
    const int64_t line = 64 / (int64_t)sizeof(T);
    /* Widest tile: all of a short column tile in cache, or TW for tall ones;
     * buffered output (converted, p.ybuf, or p.ytrans at pitch w + YPAD) within its buffer. */
    int64_t tile = Tile::short_columns(p.n)
                       ? (COL_SHORT_BYTES / (int64_t)sizeof(T) / p.n - (p.ytrans ? (int64_t)Tile::YPAD : 0)) / line * line
                   : !Tile::buffered(p) ? Tile::TW : CVT_TALL_TILE;
    if (tile > Tile::TW) tile = Tile::TW;
    const int t = thread_count(nthreads, o.count * ni * p.n, o.count * ((ni + line - 1) / line));
    if (o.count * ((ni + tile - 1) / tile) < t) {  /* too few tiles: narrow them, whole lines */
        const int64_t per_outer = (t + o.count - 1) / o.count;
        tile = ((ni + per_outer - 1) / per_outer + line - 1) / line * line;
    }
    const int64_t ntiles = (ni + tile - 1) / tile;
    const int64_t items = o.count * ntiles;
    if (tile < ni && tile * (int64_t)sizeof(T) < COL_STREAM_MIN_BYTES) p.stream = false;
    const bool need_wtile = p.masked && wsi != 1;
    int error = 0;
    parallel(t, [&]() {
        Tile *ct = (Tile *)malloc(sizeof(Tile));
        uint8_t *wtile = need_wtile ? (uint8_t *)malloc(Tile::WTILE) : nullptr;
        T *xbuf = Tile::buffered(p) ? (T *)alloc_lines(sizeof(T) * Tile::XBUF) : nullptr;
        if (!ct || (need_wtile && !wtile) || (Tile::buffered(p) && !xbuf)) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            error = 1;
        } else {
            int64_t lo, hi;
            thread_range(items, &lo, &hi);
            Odometer it;
            it.start(&o, lo / ntiles);
            int64_t j = lo % ntiles;
            for (int64_t i = lo; i < hi; ++i) {
                const int64_t c0 = j * tile;
                const int64_t w = ni - c0 < tile ? ni - c0 : tile;
                const XS *xn = nullptr;  /* this thread's next tile */
                int64_t wn = 0;
                if (i + 1 < hi && j + 1 < ntiles) {
                    xn = x + it.xoff + c0 + tile;
                    wn = ni - c0 - tile < tile ? ni - c0 - tile : tile;
                } else if (i + 1 < hi) {
                    xn = x + it.next_x();
                    wn = ni < tile ? ni : tile;
                }
                ct->run(p, x + it.xoff + c0, y + it.yoff + c0 * ys_inner, w, ys_inner,
                        p.masked ? wm + it.woff + c0 * wsi : nullptr, wsi, wtile, xbuf, xn, wn);
                if (++j == ntiles) {
                    j = 0;
                    it.next();
                }
            }
        }
        free(ct);
        free(wtile);
        free(xbuf);
    });
    return error ? -1 : 0;
}

/* T: the computing type (its kernel table k); XS, YS: how x and y are stored. */
template <class T, class XS = T, class YS = T>
int run(int op, const KernelTable<T> *k, const HalfConvert *hc, const char *xb, char *yb, const uint8_t *w, int ndim,
        const int64_t *shape, const int64_t *xst, const int64_t *yst, const int64_t *wst, int axis, int nthreads) {
    const int64_t isz = (int64_t)sizeof(T), xsz = (int64_t)sizeof(XS), ysz = (int64_t)sizeof(YS);
    const bool lse = op == FS_LOGSUMEXP;
    Plan<T, XS, YS> p;
    p.k = k;
    p.hc = hc;
    p.op = op;
    p.n = shape[axis];
    p.xsn = xst[axis] / xsz;
    p.ysn = lse ? 0 : yst[axis] / ysz;
    p.masked = w != nullptr;
    p.wsn = w ? wst[axis] : 0;
    const XS *x = (const XS *)xb;
    YS *y = (YS *)yb;

    /* Outer dims: drop length-1 ones; flip those where x runs backwards (an
     * outer dim runs either way: no slice's order changes), so that a unit
     * stride across the slices is +1 for the column plan whatever y does. */
    Outer o;
    o.nd = 0;
    o.count = 1;
    for (int d = 0; d < ndim; ++d) {
        if (d == axis) continue;
        if (shape[d] == 0) return 0;
        if (shape[d] == 1) continue;
        int64_t xs = xst[d] / xsz, ys = yst[d] / ysz, ws = w ? wst[d] : 0;
        if (xs < 0) {
            x += (shape[d] - 1) * xs;
            y += (shape[d] - 1) * ys;
            w += (shape[d] - 1) * ws;
            xs = -xs;
            ys = -ys;
            ws = -ws;
        }
        o.shape[o.nd] = shape[d];
        o.xs[o.nd] = xs;
        o.ys[o.nd] = ys;
        o.ws[o.nd] = ws;
        o.count *= shape[d];
        o.nd++;
    }
    if (p.n == 0) {  /* empty slices: softmax has nothing to write, logsumexp is -inf */
        if (lse) {
            Odometer it;
            it.start(&o, 0);
            for (int64_t r = 0; r < o.count; ++r, it.next()) y[it.yoff] = Conv<T, XS, YS>::out(-__builtin_inf());
        }
        return 0;
    }
    /* A slice with a negative stride is read in its own order, not in memory
     * order: reversing it would sum it in the other order, so that the bits
     * would depend on out='s strides (and logsumexp's on x's). */
    /* rows in x's memory order, with few dimensions */
    int64_t *const ost[3] = {o.xs, o.ys, o.ws};
    o.nd = sort_merge_dims(o.nd, o.shape, ost, 3);

    p.block = BLOCK_BYTES / isz;
    p.long_slices = p.n * isz > LONG_BYTES;
    /* converted plans write through per-thread buffers: no non-temporal stores */
    const int64_t out_bytes = o.count * p.n * isz;
    const bool direct_out = Plan<T, XS, YS>::DIRECT && !lse;
    p.stream = direct_out && out_bytes >= STREAM_BYTES;

    /* Column plan: the axis is strided and an outer dim has unit stride in x.
     * y has it too, or has it along the axis (then ytrans: see ColumnTile), or
     * neither (ybuf: tiles go through a buffer). The plan follows x alone, so
     * that out='s layout never changes the bits (a strided out= once sent x
     * to the row plan, which adds in another order). */
    if (p.xsn != 1) {
        for (int d = o.nd - 1; d >= 0; --d) {
            if (o.xs[d] == 1) {
                const int64_t ni = o.shape[d], ys_inner = o.ys[d], wsi = o.ws[d];
                if (!lse && o.ys[d] != 1) {
                    (p.ysn == 1 ? p.ytrans : p.ybuf) = true;
                    p.stream = false;  /* the kernels write the buffer */
                }
                drop_dim(o.nd--, o.shape, ost, 3, d);
                o.count /= ni;
                return run_columns(p, x, w, y, o, ni, ys_inner, wsi, nthreads);
            }
        }
    }
    if (op == FS_SOFTMAX) p.stream = direct_out && out_bytes >= SOFTMAX_STREAM_BYTES;
    return run_rows(p, x, w, y, o, nthreads);
}

}  // namespace

extern "C" int64_t fs_long_slice_bytes(void) { return LONG_BYTES; }

extern "C" void fs_exp_nonpos(int dtype, const char *x, char *y, int64_t n) {
    const Tier *tier = fs_current_tier();
    if (dtype == FS_FLOAT32)
        tier->f32.exp_nonpos((const float *)x, n, (float *)y);
    else
        tier->f64.exp_nonpos((const double *)x, n, (double *)y);
}

extern "C" int fs_convert(int from, int to, const char *x, char *y, int64_t n) {
    const HalfConvert *hc = &fs_current_tier()->half;
    if (from == FS_FLOAT16 && to == FS_FLOAT32) hc->h2f((const uint16_t *)x, n, (float *)y);
    else if (from == FS_FLOAT32 && to == FS_FLOAT16) hc->f2h((const float *)x, n, (uint16_t *)y);
    else if (from == FS_BFLOAT16 && to == FS_FLOAT32) hc->b2f((const uint16_t *)x, n, (float *)y);
    else if (from == FS_FLOAT32 && to == FS_BFLOAT16) hc->f2b((const float *)x, n, (uint16_t *)y);
    else return -1;
    return 0;
}

extern "C" int fs_run_typed(int op, int xtype, int ytype, const char *x, char *y, const uint8_t *where, int ndim,
                            const int64_t *shape, const int64_t *x_strides, const int64_t *y_strides,
                            const int64_t *where_strides, int axis, int num_threads) {
    const Tier *tier = fs_current_tier();
    const HalfConvert *hc = &tier->half;
#define FS_RUN(T, XS, YS, K) \
    return run<T, XS, YS>(op, &tier->K, hc, x, y, where, ndim, shape, x_strides, y_strides, where_strides, axis, \
                          num_threads)
    switch (ytype * 4 + xtype) {
    case FS_FLOAT32 * 4 + FS_FLOAT32: FS_RUN(float, float, float, f32);
    case FS_FLOAT64 * 4 + FS_FLOAT64: FS_RUN(double, double, double, f64);
    /* float16 / bfloat16 results: computed in float32 */
    case FS_FLOAT16 * 4 + FS_FLOAT16: FS_RUN(float, f16, f16, f32);
    case FS_FLOAT16 * 4 + FS_FLOAT32: FS_RUN(float, float, f16, f32);
    case FS_FLOAT16 * 4 + FS_FLOAT64: FS_RUN(float, double, f16, f32);
    case FS_BFLOAT16 * 4 + FS_BFLOAT16: FS_RUN(float, bf16, bf16, f32);
    case FS_BFLOAT16 * 4 + FS_FLOAT32: FS_RUN(float, float, bf16, f32);
    /* float16 / bfloat16 input, wider results: read exactly, computed in the result dtype */
    case FS_FLOAT32 * 4 + FS_FLOAT16: FS_RUN(float, f16, float, f32);
    case FS_FLOAT32 * 4 + FS_BFLOAT16: FS_RUN(float, bf16, float, f32);
    case FS_FLOAT64 * 4 + FS_FLOAT16: FS_RUN(double, f16, double, f64);
    case FS_FLOAT64 * 4 + FS_BFLOAT16: FS_RUN(double, bf16, double, f64);
    }
#undef FS_RUN
    return FS_UNSUPPORTED_TYPES;
}

extern "C" int fs_run(int op, int dtype, const char *x, char *y, const uint8_t *where, int ndim, const int64_t *shape,
                      const int64_t *x_strides, const int64_t *y_strides, const int64_t *where_strides, int axis,
                      int num_threads) {
    return fs_run_typed(op, dtype, dtype, x, y, where, ndim, shape, x_strides, y_strides, where_strides, axis,
                        num_threads);
}
