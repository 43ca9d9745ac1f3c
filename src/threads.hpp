/* threads.hpp: how the drivers use OpenMP (or run serially without it). */
#ifndef FS_THREADS_HPP
#define FS_THREADS_HPP
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

/* Below this many elements a parallel region costs more than it saves. */
const int64_t PARALLEL_MIN_ELEMENTS = 32768;

inline int thread_count(int requested, int64_t elements, int64_t items) {
#ifdef _OPENMP
    if (requested < 1 || elements < PARALLEL_MIN_ELEMENTS) return 1;
    return items < requested ? (int)(items > 0 ? items : 1) : requested;
#else
    (void)requested; (void)elements; (void)items;
    return 1;
#endif
}

/* Run body on t threads; t == 1 skips the parallel region and its fork cost. */
template <class F> inline void parallel(int t, F body) {
#ifdef _OPENMP
    if (t > 1) {
#pragma omp parallel num_threads(t)
        body();
        return;
    }
#endif
    (void)t;
    body();
}

inline void thread_range(int64_t total, int64_t *lo, int64_t *hi) {
#ifdef _OPENMP
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    int64_t t = 0, nt = 1;
#endif
    *lo = total * t / nt;
    *hi = total * (t + 1) / nt;
}

}  // namespace

#endif
