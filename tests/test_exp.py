"""The exp of each SIMD tier on its own (src/exp_constants.hpp, vec_*.hpp).

Every softmax bound rests on it: exp(t) for t <= 0 stays within 1.3 ULP
(tiers with FMA) or 1.6 ULP (generic, no FMA) of the exactly rounded value
over the whole range, subnormal results included, 2 ULP for the AVX2 tier's
float32 (a degree-5 polynomial), 1 ULP for the AVX-512 tier's float32 (a
table of 2^(j/16) and a degree-3 polynomial); exactly 1 at 0, exactly 0
where the true value rounds to 0 (and for -inf), and NaN for NaN.
Measured on 1.8M points per dtype: max 1.27 (float64) ULP AVX-512,
1.94 / 1.25 AVX2, 1.42 / 1.53 generic; mean 0.27-0.29 ULP, 0.64 for AVX2
float32. AVX-512 float32: 0.974 ULP over every float32 t in [-104, 0].
"""
import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _core
from _helpers import ulp_errors

LOWEST = {np.float32: -104.0, np.float64: -746.0}
SUBNORMAL_START = {np.float32: -87.33654, np.float64: -708.3964}


def limits(isa, dtype):
    """(max, mean) ULP allowed for the tier's exp."""
    if isa == "generic":
        return 1.6, 0.35
    if isa == "avx2" and dtype == np.float32:
        return 2.0, 0.7
    if isa == "avx512f" and dtype == np.float32:
        return 1.0, 0.35
    return 1.3, 0.35


def sample(dtype, rng):
    """Dense random points over [lowest, 0], the subnormal range, near 0 and the edges."""
    lo = LOWEST[dtype]
    parts = [
        rng.uniform(lo, 0, 400_000),
        rng.uniform(lo, SUBNORMAL_START[dtype], 50_000),
        -rng.exponential(1e-3, 50_000),
        np.linspace(lo, 0, 100_003),
        # k changes where t * log2(e) crosses a half-integer: both sides of each
        (np.arange(-int(-lo * 1.4427) - 1, 1) + 0.5) * np.log(2),
    ]
    t = np.concatenate(parts).astype(dtype)
    return t[t <= 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_accuracy(isa, dtype, rng):
    t = sample(dtype, rng)
    y = _core.exp_nonpos(t)
    wide = np.float64 if dtype == np.float32 else np.longdouble
    ref = np.exp(t.astype(wide))
    err = ulp_errors(y, ref, dtype)
    limit, mean = limits(isa, dtype)
    assert float(np.max(err)) <= limit, f"worst {float(np.max(err)):.3f} ULP at t = {t[np.argmax(err)]!r}"
    assert float(np.mean(err)) < mean


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_special_points(isa, dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    t = np.array([0.0, -0.0, -np.inf, np.nan, LOWEST[dtype], LOWEST[dtype] - 1, -1e30,
                  np.log(tiny, dtype=np.float64)], dtype)
    y = _core.exp_nonpos(t)
    assert y[0] == 1 and y[1] == 1
    assert y[2] == 0 and y[4] == 0 and y[5] == 0 and y[6] == 0
    assert np.isnan(y[3])
    assert 0 < y[7] <= 2 * tiny  # the smallest subnormal is reached, not flushed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", list(range(1, 40)))
def test_exp_every_tail(isa, dtype, n):
    """Lengths 1..39 cover every masked tail of every tier's vector width."""
    t = -np.linspace(0, 5, n).astype(dtype)
    y = _core.exp_nonpos(t)
    wide = np.float64 if dtype == np.float32 else np.longdouble
    assert float(np.max(ulp_errors(y, np.exp(t.astype(wide)), dtype))) <= limits(isa, dtype)[0]


# Values of t = x - max whose exp (softmax) or scaled term (log_softmax,
# logsumexp) is far too small to change a sum: "fast" ones still take the fast
# path on tiers that have one (AVX2), "slow" ones need the general path (a
# subnormal result, or a term below the fast bound).
SMALL_T = {np.float32: {"softmax": (-60.0, -95.0), "log": (-100.0, -140.0)},
           np.float64: {"softmax": (-300.0, -720.0), "log": (-500.0, -1080.0)}}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, 40, 1000, 40_000])
def test_a_slow_lane_leaves_the_other_lanes_bits(isa, dtype, n, rng):
    """The exp takes its fast path (2^k added to the exponent) only when a test
    says every lane of the vector, or of four vectors at once in the row sweeps,
    has a normal result; else the general path for all of them. Both must give
    the same bits: one element whose tiny term forces the general path on its
    neighbours (or -inf, a term of 0) leaves every other output bit-identical
    to the same slice with a tiny term that keeps them on the fast path."""
    x = rng.uniform(-4, 4, (3, n)).astype(dtype)
    m = x.max(axis=-1)
    j = n // 2
    for op, key in ((fs.softmax, "softmax"), (fs.log_softmax, "log"), (fs.logsumexp, "log")):
        outs = []
        for t in SMALL_T[dtype][key] + (-np.inf,):
            a = x.copy()
            a[:, j] = m + dtype(t)
            y = op(a, axis=-1)
            outs.append(y if op is fs.logsumexp else np.delete(y, j, axis=-1))
        for y in outs[1:]:
            np.testing.assert_array_equal(outs[0].view(f"u{x.itemsize}"), y.view(f"u{x.itemsize}"), err_msg=op.__name__)


def max_element_ulps(x, j):
    """Worst ULP error over the rows of log_softmax(x)[:, j], x[:, j] each
    row's max: -log1p(sum of exp(x - max) over the other elements), in wider
    precision."""
    y = fs.log_softmax(x, axis=-1)[:, j]
    xw = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
    ref = -np.log1p(np.exp(np.delete(xw, j, axis=-1) - xw[:, j:j + 1]).sum(axis=-1))
    return float(np.max(ulp_errors(y, ref, x.dtype.type)))


# (max, one x, the others' range): each row puts the row sweeps on one way to
# the rounding error of x - max (see below). The one x's term dominates the
# sum S of the terms below the max (the others are far smaller: their summed
# rounding errors would otherwise average out), and its x - max is inexact.
ERR_ROWS = [(-1.2345, -81.2345, (-130.2, -102.3)),  # m <= 0: every |x| >= |m|
            (100.3, 20.3, (-28.7, -0.7)),            # every x >= -m: |m| >= |x|
            (50.3, -29.7, (-78.7, -50.7))]           # x < -m: neither, 2Sum


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1000, 40_000])
@pytest.mark.parametrize("case", range(len(ERR_ROWS)))
def test_each_way_to_the_rounding_error_of_x_minus_max(isa, dtype, n, case, rng):
    """log_softmax of the max element is -log1p(S), S the sum of the other
    terms, each corrected by its x - m's rounding error. The row sweeps get
    that error from Fast2Sum (two operations) where the operands' magnitudes
    are known (every |x| >= |m| when m <= 0; |m| >= |x| where x >= -m), else
    from 2Sum (five). S tiny and dominated by one term, t = -80: -log1p(S) ~ -S
    keeps its relative accuracy only if that term's error is right (measured
    0.4-1.4 ULP; a wrong one, up to 64 ULP)."""
    m, one, (lo, hi) = ERR_ROWS[case]
    x = rng.uniform(lo, hi, (2, n)).astype(dtype)
    x[:, 7], x[:, 8] = m, one
    assert max_element_ulps(x, 7) <= 3


# m > 0 with its last bit set (so that x - m is inexact for larger |x|)
ODD_M = {np.float32: 21.1, np.float64: 20.3}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("one", [-45.3, -37.7, -58.1])
def test_one_test_for_both_fast_paths_keeps_x_below_minus_max_out(isa, dtype, one, rng):
    """With m > 0 the sum sweep takes Fast2Sum (|m| >= |x|) for four vectors
    at once when every t = x - m >= lo_m, one test for both that and the fast
    exp: lo_m must be above -2m (x < -m gives t <= -2m), else an x < -m whose
    exponent is above m's gets Fast2Sum's wrong error. Here that x dominates
    the sum (t ~ -59 to -79; its neighbours at t ~ -129.5, inside the fast
    exp's range, the rest far below): log_softmax of the max element within
    3 ULP (measured at most 1.9); lo_m = fast_lowest_scaled alone gives
    17-29 ULP."""
    m = ODD_M[dtype]
    x = np.full((2, 1000), -300.0)
    x[:, :128] = m + rng.uniform(-130, -129, (2, 128))
    x[:, 7], x[:, 8] = m, one
    x = x.astype(dtype)
    assert max_element_ulps(x, 7) <= 3
