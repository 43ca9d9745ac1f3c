"""Masked softmax (where=) against the usual formulations, side by side in one run.

    python benchmarks/bench_masked.py --threads 1 [--quick]

Causal attention scores (1, 12, 512, 512) float32 with a (512, 512) causal
mask broadcast over batch and heads, softmax over the last axis:
  fastsoftmax where=     fs.softmax(x, where=causal, out=y)
  fastsoftmax unmasked   fs.softmax(x, out=y): what the mask costs on top
  NumPy                  np.where(causal, x, -inf), then max / exp / sum / divide in place
  torch masked_fill      x.masked_fill(~causal, -inf).softmax(-1)   (if torch is installed)
  jax where=             jax.nn.softmax(x, where=causal), jitted     (if jax is installed)
  np.copyto              the copy floor of the same bytes
Interleaved medians (fastsoftmax._bench.measure).
"""
import argparse
import os

import numpy as np

from fastsoftmax import _bench


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="short timing budget (a smoke run, not figures)")
    args = ap.parse_args()
    _bench.limit_process_threads(args.threads)  # before jax is imported
    import fastsoftmax as fs
    fs.set_num_threads(args.threads)
    mode = _bench.QUICK if args.quick else _bench.FULL

    shape = (1, 12, 512, 512)
    x = (np.random.default_rng(0).standard_normal(shape, dtype=np.float32) * 3)
    causal = np.tril(np.ones(shape[-2:], dtype=bool))
    y = np.empty_like(x)
    tmp = np.empty_like(x)

    def numpy_masked():
        np.copyto(tmp, x)
        tmp[..., ~causal] = -np.inf
        m = tmp.max(axis=-1, keepdims=True)
        np.subtract(tmp, m, out=tmp)
        np.exp(tmp, out=tmp)
        np.divide(tmp, tmp.sum(axis=-1, keepdims=True), out=tmp)
        return tmp

    calls = {
        "fastsoftmax where=": lambda: fs.softmax(x, where=causal, out=y),
        "fastsoftmax unmasked": lambda: fs.softmax(x, out=y),
        "NumPy": numpy_masked,
        "np.copyto": lambda: np.copyto(y, x),
    }
    ref = fs.softmax(x, where=causal)
    errors = {"NumPy": float(np.max(np.abs(numpy_masked() - ref)))}
    try:
        import torch
        torch.set_num_threads(args.threads)
        tx, tnot = torch.from_numpy(x), torch.from_numpy(~causal)
        calls["torch masked_fill"] = lambda: tx.masked_fill(tnot, float("-inf")).softmax(-1)
        errors["torch masked_fill"] = float(np.max(np.abs(calls["torch masked_fill"]().numpy() - ref)))
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp
        jx, jm = jnp.asarray(x), jnp.asarray(causal)
        f = jax.jit(lambda a, m: jax.nn.softmax(a, axis=-1, where=m))
        calls["jax where="] = lambda: f(jx, jm).block_until_ready()
        errors["jax where="] = float(np.max(np.abs(np.asarray(calls["jax where="]()) - ref)))
    except ImportError:
        pass

    r = _bench.measure(calls, mode)
    best = r["fastsoftmax where="]["median"]
    print(f"masked softmax {shape} float32, causal mask, threads={args.threads}, "
          f"CPU {_bench.cpu_name()}, {os.cpu_count()} CPUs\n")
    print("| implementation | median | time / fastsoftmax where= | max abs diff from fastsoftmax |")
    print("| --- | --- | --- | --- |")
    for k, v in r.items():
        e = errors.get(k)
        print(f"| {k} | {_bench.fmt_time(v['median'])} | {v['median'] / best:.2f}x | "
              f"{'' if e is None else f'{e:.1e}'} |")


if __name__ == "__main__":
    main()
