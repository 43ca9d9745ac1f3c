/* kernels_avx2.cpp: the avx2 tier: softmax, log_softmax and logsumexp kernels
 * for float32 and float64 rows and column tiles.
 *
 * ISA: AVX2 + FMA (Haswell, Zen 1 and later). setup.py compiles this file, and only this file, with the flags
 * of its tier; dispatch.cpp calls into it only when the CPU has them.
 * Algorithm: kernels.hpp (loops) over vec_avx2.hpp (vector layer and exp).
 * Error of the whole softmax: the bounds in README.md "Accuracy", asserted by tests/ (_helpers.py).
 */
#include <stdint.h>
#include <string.h>
#include <immintrin.h>
#include "kernels.h"
#include "exp_constants.hpp"
#include "sanitize.hpp"

namespace fs_avx2 {
#include "vec_avx2.hpp"
#include "kernels.hpp"
}

extern const Tier fs_tier_avx2 = {
    "avx2",
    fs_avx2::Kernels<fs_avx2::VecF32>::table(),
    fs_avx2::Kernels<fs_avx2::VecF64>::table(),
};
