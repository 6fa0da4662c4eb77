"""Where a method's training step spends its time: the torch profiler over fit steps.

A pretrainer is fitted for one epoch on ``--batches`` batches of Fashion-MNIST test
images (warm-up), then profiled over one more epoch of ``partial_fit``: the whole
step as users run it (loading, augmentation, pretext batch, encoder, head, loss,
backward, optimiser). The table groups the profiled operators by kind and gives each
kind's share of the self CPU time: convolutions (forward and backward), matrix
products, batch normalisation, element-wise and pooling, layout conversions and copies,
the optimiser, and the rest; then the 15 costliest operators.

    python benchmarks/profile_step.py --method simclr
    python benchmarks/profile_step.py --method rotation --precision float32
"""

import argparse
import json
import re

import torch
from fashion_mnist import METHODS
from torch.profiler import ProfilerActivity, profile

from skssl.datasets import load_fashion_mnist
from skssl.device import resolve_precision

# Operator kinds, matched on the profiled names in this order (first match wins).
KINDS = (
    ("convolution", r"conv|mkldnn_convolution"),
    ("matrix product", r"addmm|::mm|bmm|matmul|linear"),
    ("batch norm", r"batch_norm"),
    ("optimizer", r"Optimizer|_foreach|adam"),
    ("layout and copies", r"copy_|contiguous|to_dense|_to_copy|clone|cat|stack|permute|as_strided"),
    ("pooling", r"pool"),
    ("element-wise", r"relu|threshold|add|mul|div|sub|sqrt|exp|pow|where|clamp|fill|zero"),
)


def kind_of(name):
    for kind, pattern in KINDS:
        if re.search(pattern, name):
            return kind
    return "other"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", choices=sorted(METHODS), default="simclr")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the shares here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    est = METHODS[args.method](max_epochs=1, device="cpu", random_state=0,
                               precision=args.precision)
    X = X[: args.batches * est.batch_size]
    est.fit(X)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        est.partial_fit(X)
    # Top-level operators only: their self times add up to the step's CPU time.
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")
              or "Optimizer" in e.key]
    total = sum(e.self_cpu_time_total for e in events)
    shares = {}
    for e in events:
        kind = kind_of(e.key)
        shares[kind] = shares.get(kind, 0.0) + e.self_cpu_time_total / total
    precision = resolve_precision(args.precision, "cpu")
    print(f"{args.method}, {precision}, {args.threads} thread(s), {args.batches} batches of "
          f"{est.batch_size}: {est.history_[-1]['images_per_s']:.0f} images/s")
    for kind, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:>18}: {100 * share:5.1f} %")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"method": args.method, "precision": precision, "shares": shares,
                       "images_per_s": est.history_[-1]["images_per_s"]}, f, indent=1)


if __name__ == "__main__":
    main()
