/* dims.hpp: the outer (non-reduced) dimensions of a reduction, shared by the
 * forward (driver.cpp) and backward (backward.cpp) drivers. Each dimension has
 * a length and one stride per array walked together (x, y, mask; or y, g, dx).
 */
#ifndef FS_DIMS_HPP
#define FS_DIMS_HPP
#include <stdint.h>
#include <stdlib.h>

namespace {

/* Remove dimension d of nd from shape and each of the ns stride arrays. */
inline void drop_dim(int nd, int64_t *shape, int64_t *const *st, int ns, int d) {
    for (int e = d; e + 1 < nd; ++e) {
        shape[e] = shape[e + 1];
        for (int a = 0; a < ns; ++a) st[a][e] = st[a][e + 1];
    }
}

/* Order the dimensions by the first array's stride, largest first, then merge
 * neighbours that step evenly in every array, so that slices are visited in
 * the first array's memory order with as few dimensions as possible. Returns
 * the new count. */
inline int sort_merge_dims(int nd, int64_t *shape, int64_t *const *st, int ns) {
    for (int i = 1; i < nd; ++i)
        for (int j = i; j > 0 && llabs(st[0][j]) > llabs(st[0][j - 1]); --j) {
            int64_t t = shape[j];
            shape[j] = shape[j - 1];
            shape[j - 1] = t;
            for (int a = 0; a < ns; ++a) {
                t = st[a][j];
                st[a][j] = st[a][j - 1];
                st[a][j - 1] = t;
            }
        }
    int out = 0;
    for (int d = 0; d < nd; ++d) {
        bool even = out > 0;
        for (int a = 0; a < ns && even; ++a) even = st[a][out - 1] == st[a][d] * shape[d];
        if (even) {
            shape[out - 1] *= shape[d];
            for (int a = 0; a < ns; ++a) st[a][out - 1] = st[a][d];
        } else {
            shape[out] = shape[d];
            for (int a = 0; a < ns; ++a) st[a][out] = st[a][d];
            out++;
        }
    }
    return out;
}

}  // namespace

#endif
