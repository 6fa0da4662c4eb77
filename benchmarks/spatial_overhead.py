"""Jigsaw's and Context's training step against the bare encoder step on the same patches.

The full step is the loop's own (``_train_step``: load and normalise the images, cut,
shuffle and normalise the tiles or patches, encoder, concatenation, MLP head,
cross-entropy, backward, AdamW, pretext accuracy); the bare step is the encoder's
forward + backward + AdamW on the same number of ready-made tiles or patches
(``9 * batch_size`` for Jigsaw, ``2 * batch_size`` for Context). The two alternate,
so that a load change on a shared machine hits both; the batch making and the head
are also timed alone. Milliseconds per step (median), wall clock and CPU time of
this thread (robust to other processes when torch runs on one thread).

    PYTHONPATH=. python benchmarks/spatial_overhead.py --method jigsaw --batch-size 256
"""

import argparse
import statistics
import time

import numpy as np
import torch

from skssl import ContextPretrainer, JigsawPretrainer
from skssl._data import check_images
from skssl.datasets import load_fashion_mnist


def _timed(fn):
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return 1000 * (time.perf_counter() - wall), 1000 * (time.thread_time() - cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=["jigsaw", "context"], default="jigsaw")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--channels", default="32,64,128", help="widths of the 'cnn' encoder")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    X = X[: 4 * args.batch_size]
    cls = JigsawPretrainer if args.method == "jigsaw" else ContextPretrainer
    channels = tuple(int(c) for c in args.channels.split(","))
    est = cls(encoder_kwargs={"channels": channels}, batch_size=args.batch_size, device="cpu",
              random_state=0)
    data = check_images(X)
    est._initialize(data)
    est.device_ = "cpu"
    net = est._build_network(est.encoder_, est.head_).train()
    optimizer = est._make_optimizer(net.parameters())
    generator = torch.Generator().manual_seed(0)
    stats = {"loss": 0.0, "images": 0, "inputs": 0, "correct": 0, "count": 0}
    rows = np.arange(args.batch_size)

    x = est._load(data, rows, "cpu")
    inputs, targets = est._make_batch(x, generator)
    patches = est._to_memory_format(inputs.flatten(0, 1).contiguous())  # layout of the fit
    encoder = est._make_encoder(1, tuple(patches.shape[-2:])).train()
    bare_optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3, weight_decay=1e-4)

    def full():
        est._train_step(net, optimizer, data, rows, generator, stats)

    def bare():
        loss = encoder(patches).square().mean()
        bare_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        bare_optimizer.step()

    def make_batch():
        est._make_batch(x, generator)

    features = torch.randn(len(rows), inputs.shape[1] * est.encoder_.num_features,
                           requires_grad=True)

    def head_and_loss():
        est._loss(est.head_(features), targets).backward()

    results = {name: [] for name in ("full", "bare", "make_batch", "head_and_loss")}
    full()  # warm-up
    bare()
    for _ in range(args.steps):
        for name, fn in [
            ("full", full),
            ("bare", bare),
            ("make_batch", make_batch),
            ("head_and_loss", head_and_loss),
        ]:
            results[name].append(_timed(fn))
    med = {
        name: tuple(statistics.median(t[i] for t in times) for i in (0, 1))
        for name, times in results.items()
    }
    shape = "x".join(str(s) for s in patches.shape[1:])
    print(f"{cls.__name__}, batch {args.batch_size} ({len(patches)} patches of {shape}), "
          f"cnn {channels}, {args.threads} thread(s)")
    for name, (wall, cpu) in med.items():
        print(f"  {name:14s} wall {wall:8.1f} ms   cpu {cpu:8.1f} ms")
    for i, clock in enumerate(("wall", "cpu")):
        ratio = med["bare"][i] / med["full"][i]
        print(f"  throughput full / bare ({clock}): {100 * ratio:.1f} %")


if __name__ == "__main__":
    main()
