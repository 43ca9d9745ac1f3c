"""softmax_backward over a strided axis (column plan) beside the copy floor.

    python benchmarks/backward_columns.py [threads] [repeats]

Cases (4096 x 4096 float32, 64 MiB per array): axis=0 of C-order arrays, the
.T views with axis=-1 (into a preallocated out, and allocating dx), the
contiguous row plan (axis=-1 of C order) for comparison, and np.copyto of the
same bytes. Each call is timed once per round, the cases interleaved round by
round (the machine may be shared), and the median over rounds reported.
"""
import json
import statistics
import sys
import timeit

import numpy as np

import fastsoftmax


def main(threads=1, repeats=15):
    fastsoftmax.set_num_threads(threads)
    rng = np.random.default_rng(0)
    n = 4096
    y = fastsoftmax.softmax(rng.standard_normal((n, n)).astype(np.float32), axis=0)
    g = rng.standard_normal((n, n)).astype(np.float32)
    yt, gt = np.ascontiguousarray(y.T), np.ascontiguousarray(g.T)  # their .T views are Fortran-ordered
    out, out_t, src = np.empty_like(y), np.empty_like(y), y.copy()
    cases = {
        "axis=0, out=": lambda: fastsoftmax.softmax_backward(y, g, axis=0, out=out),
        ".T axis=-1, out=": lambda: fastsoftmax.softmax_backward(yt.T, gt.T, axis=-1, out=out_t.T),
        ".T axis=-1, allocating": lambda: fastsoftmax.softmax_backward(yt.T, gt.T, axis=-1),
        "rows: axis=-1, out=": lambda: fastsoftmax.softmax_backward(y, g, axis=-1, out=out),
        "np.copyto 64 MiB": lambda: np.copyto(out, src),
    }
    for f in cases.values():
        f()  # warm-up
    times = {k: [] for k in cases}
    for _ in range(repeats):
        for k, f in cases.items():
            times[k].append(timeit.timeit(f, number=1))
    print(json.dumps({"threads": threads, "isa": fastsoftmax.isa(),
                      "median_ms": {k: round(statistics.median(v) * 1e3, 2) for k, v in times.items()}}, indent=1))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
