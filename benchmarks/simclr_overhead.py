"""SimCLR's training step against the bare encoder step on the same number of views.

The full step is the loop's own (``_train_step``: load, augment both views,
normalise, encoder, projection head, NT-Xent, backward, AdamW, pretext accuracy);
the bare step is the encoder's forward + backward + AdamW on ``2 * batch_size``
ready-made views. The two alternate, so that a load change on a shared machine hits
both; the augmentation and the head + loss are also timed alone. Milliseconds per
step (median), wall clock and CPU time of this thread (robust to other processes
when torch runs on one thread).

    PYTHONPATH=. python benchmarks/simclr_overhead.py --batch-size 256 --steps 5 --view-size 20
"""

import argparse
import statistics
import time

import numpy as np
import torch

from skssl import SimCLRPretrainer
from skssl._data import check_images
from skssl.datasets import load_fashion_mnist


def _timed(fn):
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return 1000 * (time.perf_counter() - wall), 1000 * (time.thread_time() - cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--view-size", type=int, default=None,
                        help="SimCLRPretrainer's view_size (None: the 28x28 image size)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    X = X[: 4 * args.batch_size]
    est = SimCLRPretrainer(batch_size=args.batch_size, view_size=args.view_size, device="cpu",
                           random_state=0)
    data = check_images(X)
    est._initialize(data)
    est.device_ = "cpu"
    net = est._build_network(est.encoder_, est.head_).train()
    optimizer = est._make_optimizer(net.parameters())
    generator = torch.Generator().manual_seed(0)
    stats = {"loss": 0.0, "images": 0, "inputs": 0, "correct": 0, "count": 0}
    rows = np.arange(args.batch_size)

    size = est._view_size((28, 28))
    encoder = est._make_encoder(1, size).train()
    bare_optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3, weight_decay=1e-4)
    views = torch.randn(2 * args.batch_size, 1, *size, generator=generator)
    views = est._to_memory_format(views)  # the layout of the fit

    def full():
        est._train_step(net, optimizer, data, rows, generator, stats)

    def bare():
        loss = encoder(views).square().mean()
        bare_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        bare_optimizer.step()

    x = est._load(data, rows, "cpu", normalize=False)
    augment = est._augmentation(data.image_shape)

    def augmentation():
        augment(torch.cat([x, x]), generator)

    features = torch.randn(2 * args.batch_size, est.encoder_.num_features, requires_grad=True)

    def head_and_loss():
        est._loss(est.head_(features), None).backward()

    results = {name: [] for name in ("full", "bare", "augmentation", "head_and_loss")}
    full()  # warm-up
    bare()
    for _ in range(args.steps):
        for name, fn in [
            ("full", full),
            ("bare", bare),
            ("augmentation", augmentation),
            ("head_and_loss", head_and_loss),
        ]:
            results[name].append(_timed(fn))
    med = {
        name: tuple(statistics.median(t[i] for t in times) for i in (0, 1))
        for name, times in results.items()
    }
    views_n = 2 * args.batch_size
    print(f"batch {args.batch_size} ({views_n} views of {size[0]}x{size[1]}x1), "
          f"{args.threads} thread(s)")
    for name, (wall, cpu) in med.items():
        print(f"  {name:14s} wall {wall:8.1f} ms   cpu {cpu:8.1f} ms")
    for i, clock in enumerate(("wall", "cpu")):
        ratio = med["bare"][i] / med["full"][i]
        print(f"  throughput full / bare ({clock}): {100 * ratio:.1f} %")


if __name__ == "__main__":
    main()
