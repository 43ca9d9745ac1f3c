"""The PyTorch bridge against PyTorch's own softmax, side by side in one run.

    python benchmarks/bench_torch.py --threads 1
    python benchmarks/bench_torch.py --threads 2 [--quick]

Three tables of interleaved medians (fastsoftmax._bench.measure; the machine is
shared and noisy, so calls alternate and repeat):
  forward     fastsoftmax.torch.softmax / log_softmax vs torch.nn.functional, no autograd,
              beside the copy floor (np.copyto of the same bytes into a reused array)
  fwd+bwd     y = f(x); y.backward(g) with x.requires_grad, both through autograd
  model       a small GPT-style model's CPU forward pass (attention written by
              hand, as in many CPU inference scripts: scores, causal mask,
              F.softmax), plain and inside fastsoftmax.torch.patched()
torch and fastsoftmax both get --threads threads.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import fastsoftmax
import fastsoftmax.torch as fst
from fastsoftmax import _bench

FORWARD = [  # (name, shape, dim, transposed, op)
    ("(4, 32)", (4, 32), -1, False, "softmax"),
    ("(64, 1000)", (64, 1000), -1, False, "softmax"),
    ("(8, 32000)", (8, 32000), -1, False, "softmax"),
    ("(8, 32000) log_softmax", (8, 32000), -1, False, "log_softmax"),
    ("(1, 12, 512, 512)", (1, 12, 512, 512), -1, False, "softmax"),
    ("(4096, 4096)", (4096, 4096), -1, False, "softmax"),
    ("(4096, 4096) dim=0", (4096, 4096), 0, False, "softmax"),
    ("(4096, 4096).T dim=-1", (4096, 4096), -1, True, "softmax"),
    ("(4096, 4096) float16", (4096, 4096), -1, False, "softmax"),
    ("(8, 32000) float16 log_softmax", (8, 32000), -1, False, "log_softmax"),
]
BACKWARD = [
    ("(64, 1000)", (64, 1000), -1, "softmax"),
    ("(8, 32000)", (8, 32000), -1, "softmax"),
    ("(8, 32000) log_softmax", (8, 32000), -1, "log_softmax"),
    ("(1, 12, 512, 512)", (1, 12, 512, 512), -1, "softmax"),
    ("(4096, 4096)", (4096, 4096), -1, "softmax"),
]
OPS = {"softmax": (fst.softmax, F.softmax), "log_softmax": (fst.log_softmax, F.log_softmax)}


class Block(torch.nn.Module):
    """A pre-norm transformer block with attention written out (no fused SDPA)."""

    def __init__(self, d, heads, max_len=2048):
        super().__init__()
        self.heads = heads
        self.register_buffer("bias", torch.full((max_len, max_len), float("-inf")).triu_(1), persistent=False)
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.qkv, self.proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(), torch.nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        # an additive causal bias (-inf above the diagonal), as many CPU inference codes build it
        att = torch.baddbmm(self.bias[:t, :t].expand(b * h, t, t), q.reshape(b * h, t, -1),
                            k.reshape(b * h, t, -1).transpose(-2, -1), alpha=1.0 / math.sqrt(d // h))
        att = F.softmax(att.view(b, h, t, t), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class TinyGPT(torch.nn.Module):
    def __init__(self, vocab=8192, d=128, heads=4, layers=4):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, d)
        self.blocks = torch.nn.Sequential(*[Block(d, heads) for _ in range(layers)])
        self.head = torch.nn.Linear(d, vocab)

    def forward(self, idx):
        return F.log_softmax(self.head(self.blocks(self.emb(idx))), dim=-1)


def fmt(s):
    return _bench.fmt_time(s)


def table(title, header, rows):
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="short timing budget (a smoke run, not figures)")
    args = ap.parse_args()
    mode = _bench.QUICK if args.quick else _bench.FULL
    torch.set_num_threads(args.threads)
    fastsoftmax.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"fastsoftmax {fastsoftmax.__version__} ({fastsoftmax.isa()}), torch {torch.__version__}, "
          f"threads={args.threads}, CPU {_bench.cpu_name()}, {os.cpu_count()} CPUs")

    rows = []
    for name, shape, dim, transposed, op in FORWARD:
        x = torch.randn(shape) * 3
        if "float16" in name:
            x = x.half()
        if transposed:
            x = x.t()
        ours, theirs = OPS[op]
        src, dst = x.numpy(), torch.empty_like(x, memory_format=torch.contiguous_format).numpy()
        r = _bench.measure({"fst": lambda: ours(x, dim), "torch": lambda: theirs(x, dim),
                            "copy": lambda: np.copyto(dst, src)}, mode)
        a, b, c = r["fst"]["median"], r["torch"]["median"], r["copy"]["median"]
        rows.append([name, fmt(a), fmt(b), f"{a / b:.2f}x", fmt(c), f"{a / c:.2f}x"])
    table("forward, no autograd (median per call)",
          ["case", "fastsoftmax.torch", "torch", "ratio", "np.copyto (same bytes)", "ratio to copy"], rows)

    rows = []
    for name, shape, dim, op in BACKWARD:
        ours, theirs = OPS[op]
        x = (torch.randn(shape) * 3).requires_grad_()
        g = torch.randn(shape)

        def step(f):
            x.grad = None
            f(x, dim).backward(g)

        r = _bench.measure({"fst": lambda: step(ours), "torch": lambda: step(theirs)}, mode)
        a, b = r["fst"]["median"], r["torch"]["median"]
        rows.append([name, fmt(a), fmt(b), f"{a / b:.2f}x"])
    table("forward + backward (median per step)", ["case", "fastsoftmax.torch", "torch", "ratio"], rows)

    rows = []
    for batch, seq in ((1, 1024), (8, 256)):
        model = TinyGPT().eval()
        idx = torch.randint(0, 8192, (batch, seq))

        def plain():
            with torch.no_grad():
                return model(idx)

        @fst.patched()
        def patched():
            with torch.no_grad():
                return model(idx)

        err = (plain() - patched()).abs().max().item()
        r = _bench.measure({"patched": patched, "torch": plain}, mode)
        a, b = r["patched"]["median"], r["torch"]["median"]
        rows.append([f"TinyGPT (4 layers, d=128, 4 heads, vocab 8192), batch {batch}, seq {seq}", fmt(a), fmt(b), f"{a / b:.2f}x", f"{err:.1e}"])
    table("model forward pass (median per call)",
          ["model", "patched()", "torch", "ratio", "max |diff| of log-probs"], rows)


if __name__ == "__main__":
    main()
