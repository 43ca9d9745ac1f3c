/* backward.cpp: gradients of softmax and log_softmax over one axis.
 *
 *   softmax:      dx = y * (g - sum(g * y))      y = softmax(x)
 *   log_softmax:  dx = g - exp(y) * sum(g)       y = log_softmax(x)  (y <= 0)
 *
 * Each slice (y, g, dx along the axis) takes two sweeps: the sum, then the
 * writing sweep. Slices with unit strides run in place; others are copied
 * into per-thread buffers first (gather) and the result copied out. Slices
 * run in parallel; each is summed in a fixed order, so results are the same
 * at any thread count. log_softmax's y is checked (max <= 0, NaN allowed)
 * before anything is written: a y above 0 is not a log_softmax output.
 *
 * where= (the forward's mask): the sums run over the elements that take part
 * only, dx is 0 at the others and in slices where none does, and only the y
 * that take part are checked. A mask constant along the axis is settled per
 * slice; one strided along it is gathered into a per-thread byte buffer.
 */
#include <math.h>
#include <stdlib.h>

#include "fastsoftmax.h"
#include "dispatch.h"
#include "threads.hpp"

namespace {

template <class T> struct Slices {
    int nd;
    int64_t shape[FS_MAX_DIMS], ys[FS_MAX_DIMS], gs[FS_MAX_DIMS], ds[FS_MAX_DIMS], ws[FS_MAX_DIMS];
    int64_t count;
    /* element offsets of slice r in y, g and dx, and its byte offset in the mask */
    void offsets(int64_t r, int64_t *oy, int64_t *og, int64_t *od, int64_t *ow) const {
        *oy = *og = *od = *ow = 0;
        for (int d = nd - 1; d >= 0; --d) {
            const int64_t i = r % shape[d];
            r /= shape[d];
            *oy += i * ys[d];
            *og += i * gs[d];
            *od += i * ds[d];
            *ow += i * ws[d];
        }
    }
};

/* The mask of a slice as the kernels take it (see driver.cpp's slice_mask):
 * null if every element takes part, or contiguous (gathered into wbuf when
 * strided); returns false when no element takes part. */
inline bool slice_mask(const uint8_t *&w, int64_t sw, int64_t n, uint8_t *wbuf) {
    if (!w) return true;
    if (sw == 0) {
        if (!*w) return false;
        w = nullptr;
        return true;
    }
    if (sw != 1) {
        for (int64_t i = 0; i < n; ++i) wbuf[i] = w[i * sw];
        w = wbuf;
    }
    return true;
}

template <class T>
int run(int op, const KernelTable<T> *k, const char *yb, const char *gb, char *db, const uint8_t *w, int ndim,
        const int64_t *shape, const int64_t *yst, const int64_t *gst, const int64_t *dst, const int64_t *wst, int axis,
        int nthreads) {
    const int64_t isz = (int64_t)sizeof(T);
    const int64_t n = shape[axis], sy = yst[axis] / isz, sg = gst[axis] / isz, sd = dst[axis] / isz;
    const int64_t sw = w ? wst[axis] : 0;
    const bool need_wbuf = w && sw != 0 && sw != 1;
    Slices<T> s;
    s.nd = 0;
    s.count = 1;
    for (int d = 0; d < ndim; ++d) {
        if (d == axis) continue;
        if (shape[d] == 0) return 0;
        if (shape[d] == 1) continue;
        s.shape[s.nd] = shape[d];
        s.ys[s.nd] = yst[d] / isz;
        s.gs[s.nd] = gst[d] / isz;
        s.ds[s.nd] = dst[d] / isz;
        s.ws[s.nd] = w ? wst[d] : 0;
        s.count *= shape[d];
        s.nd++;
    }
    if (n == 0) return 0;
    const T *y = (const T *)yb, *g = (const T *)gb;
    T *dx = (T *)db;
    const bool contiguous = sy == 1 && sg == 1 && sd == 1;
    const bool nt = s.count * n * isz >= 32 * 1024 * 1024;
    const int t = thread_count(nthreads, s.count * n, s.count);
    int error = 0;

    if (op == FS_LOG_SOFTMAX) {  /* check y <= 0 first: nothing is written for a bad y */
        int bad = 0;
        parallel(t, [&]() {
            int64_t lo, hi, oy, og, od, ow;
            thread_range(s.count, &lo, &hi);
            T *buf = sy == 1 ? nullptr : (T *)malloc(sizeof(T) * n);
            uint8_t *wbuf = need_wbuf ? (uint8_t *)malloc(n) : nullptr;
            if ((sy != 1 && !buf) || (need_wbuf && !wbuf)) {
                __atomic_store_n(&error, 1, __ATOMIC_RELAXED);
                free(buf);
                free(wbuf);
                return;
            }
            for (int64_t r = lo; r < hi && !__atomic_load_n(&bad, __ATOMIC_RELAXED); ++r) {
                s.offsets(r, &oy, &og, &od, &ow);
                const uint8_t *wr = w ? w + ow : nullptr;
                if (!slice_mask(wr, sw, n, wbuf)) continue;  /* nothing taking part: nothing to check */
                const T *yr = y + oy;
                if (buf) {
                    for (int64_t i = 0; i < n; ++i) buf[i] = yr[i * sy];
                    yr = buf;
                }
                if ((wr ? k->max_w(yr, wr, n) : k->max(yr, n)) > T(0)) __atomic_store_n(&bad, 1, __ATOMIC_RELAXED);
            }
            free(buf);
            free(wbuf);
        });
        if (error) return -1;
        if (bad) return FS_BAD_LOG_SOFTMAX_INPUT;
    }

    parallel(t, [&]() {
        int64_t lo, hi, oy, og, od, ow;
        thread_range(s.count, &lo, &hi);
        T *buf = contiguous ? nullptr : (T *)malloc(sizeof(T) * 3 * n);
        uint8_t *wbuf = need_wbuf ? (uint8_t *)malloc(n) : nullptr;
        if ((!contiguous && !buf) || (need_wbuf && !wbuf)) {
            __atomic_store_n(&error, 1, __ATOMIC_RELAXED);
            free(buf);
            free(wbuf);
            return;
        }
        for (int64_t r = lo; r < hi; ++r) {
            s.offsets(r, &oy, &og, &od, &ow);
            const uint8_t *wr = w ? w + ow : nullptr;
            if (!slice_mask(wr, sw, n, wbuf)) {  /* nothing taking part: a zero gradient */
                for (int64_t i = 0; i < n; ++i) dx[od + i * sd] = T(0);
                continue;
            }
            const T *yr = y + oy, *gr = g + og;
            T *dr = dx + od;
            if (!contiguous) {  /* gather: y, g into buffers; dx computed in the third */
                T *by = buf, *bg = buf + n;
                for (int64_t i = 0; i < n; ++i) {
                    by[i] = yr[i * sy];
                    bg[i] = gr[i * sg];
                }
                yr = by;
                gr = bg;
                dr = buf + 2 * n;
            }
            if (wr) {
                if (op == FS_SOFTMAX)
                    k->softmax_grad_w[nt && contiguous](yr, gr, wr, n, (T)k->dot_w(gr, yr, wr, n), dr);
                else
                    k->log_softmax_grad_w[nt && contiguous](yr, gr, wr, n, (T)k->dot_w(gr, nullptr, wr, n), dr);
            } else if (op == FS_SOFTMAX) {
                k->softmax_grad[nt && contiguous](yr, gr, n, (T)k->dot(gr, yr, n), dr);
            } else {
                k->log_softmax_grad[nt && contiguous](yr, gr, n, (T)k->dot(gr, nullptr, n), dr);
            }
            if (!contiguous)
                for (int64_t i = 0; i < n; ++i) (dx + od)[i * sd] = dr[i];
        }
        free(buf);
        free(wbuf);
    });
    return error ? -1 : 0;
}

}  // namespace

extern "C" int fs_run_backward(int op, int dtype, const char *y, const char *g, char *dx, const uint8_t *where,
                               int ndim, const int64_t *shape, const int64_t *y_strides, const int64_t *g_strides,
                               const int64_t *dx_strides, const int64_t *where_strides, int axis, int num_threads) {
    const Tier *tier = fs_current_tier();
    if (dtype == FS_FLOAT32)
        return run<float>(op, &tier->f32, y, g, dx, where, ndim, shape, y_strides, g_strides, dx_strides,
                          where_strides, axis, num_threads);
    return run<double>(op, &tier->f64, y, g, dx, where, ndim, shape, y_strides, g_strides, dx_strides, where_strides,
                       axis, num_threads);
}
