"""The benchmark tool's own parts: the stream floor (_core.stream_copy) copies
exactly, at any alignment and thread count, and `python -m fastsoftmax bench`
times it beside the copy floor and reports fastsoftmax's ratio to it.
(No timing is asserted: speed is shown by the benchmarks, not by tests.)"""
import numpy as np
import pytest

from fastsoftmax import _bench, _core

# around 64-byte lines, 4 KiB pages (the threads' pieces) and a few MiB
SIZES = [0, 1, 15, 16, 63, 64, 65, 127, 4095, 4096, 4097, 3 * 4096 + 200, (1 << 20) + 13, (5 << 20) + 4101]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("nbytes", SIZES)
@pytest.mark.parametrize("offsets", [(0, 0), (1, 0), (0, 7), (13, 51), (64, 4095)])
def test_stream_copy_exact(nbytes, offsets, threads, rng):
    so, do = offsets
    src_buf = rng.integers(0, 256, nbytes + so + 64, dtype=np.uint8)
    dst_buf = np.full(nbytes + do + 64, 0xA5, dtype=np.uint8)
    src, dst = src_buf[so:so + nbytes], dst_buf[do:do + nbytes]
    used = _core.stream_copy(src, dst, threads)
    assert np.array_equal(dst, src)
    assert (dst_buf[:do] == 0xA5).all() and (dst_buf[do + nbytes:] == 0xA5).all()  # nothing outside dst
    assert 1 <= used <= threads
    if threads == 2 and nbytes >= 1 << 20 and _core.openmp_enabled():
        assert used == 2


def test_stream_copy_other_dtypes(rng):
    src = rng.standard_normal((300, 70)).astype(np.float32)
    dst = np.empty(300 * 70 * 4, dtype=np.uint8)
    _core.stream_copy(src, dst, 2)
    assert np.array_equal(dst.view(np.float32).reshape(300, 70), src)


def test_stream_copy_rejects():
    a = np.zeros(1000, np.float32)
    with pytest.raises(ValueError, match="one size"):
        _core.stream_copy(a, np.zeros(999, np.float32), 1)
    with pytest.raises(ValueError, match="one size"):
        _core.stream_copy(np.zeros((100, 20), np.float32)[:, ::2], np.zeros(1000, np.float32), 1)
    ro = np.zeros(1000, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.stream_copy(a, ro, 1)
    buf = np.zeros(2000, np.float32)
    with pytest.raises(ValueError, match="overlap"):
        _core.stream_copy(buf[:1000], buf[500:1500], 1)
    _core.stream_copy(buf[:1000], buf[1000:], 1)  # adjacent is fine


def test_bench_reports_the_stream_floor():
    """One quick case through the bench's own path: the stream floor is timed
    next to the copy floors, and the table and summary carry its ratio."""
    (case,) = [c for c in _bench.CASES if c.name == "softmax (64, 1000)"]
    status = _bench.available_impls(["fs out="])
    mode = _bench.Mode(budget_s=0.05, sample_s=1e-4, min_rounds=3, max_rounds=5)
    res = _bench.run_case(case, status, 2, mode)
    for k in ("copy", _bench.COPY_T, _bench.STREAM, "fs out="):
        assert res[k]["median"] > 0
    c = {"case": case.name, "op": case.op, "shape": list(case.shape), "dtype": case.dtype, "axis": case.axis,
         "layout": case.layout, "bytes": case.bytes_moved, "impls": res}
    s = _bench.summarise(c)
    assert s["fs_out_over_stream"] == pytest.approx(res["fs out="]["median"] / res[_bench.STREAM]["median"])
    run = {"threads": 2, "cpus": [0, 1], "isa": "x", "mode": "quick", "method": vars(mode), "cases": [c]}
    meta = {"versions": {"python": "3", "fastsoftmax": "0"}, "cpu": "cpu", "ncpus": 2}
    table = _bench.format_table(run, meta)
    head = [ln for ln in table.splitlines() if ln.startswith("case")][0].split()
    assert _bench.STREAM in head and "out=/stream" in head
    row = [ln for ln in table.splitlines() if ln.startswith(case.name)][0]
    assert row.split()[-1] == f"{s['fs_out_over_stream']:.2f}"
    runs = [dict(run, threads=1), run]
    assert "stream 1.00x" in _bench.format_summary(runs)
