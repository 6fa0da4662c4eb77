"""``transform`` throughput of each encoder against a bare ``encoder(x)`` forward pass.

Target: ``transform`` at least 90 % of the bare forward pass at the same batch size.
For each encoder, a RotationPretrainer is fitted for a few steps on Fashion-MNIST, then
``transform`` on ``--n`` images (uint8 in, float32 features out: conversion, normalisation
and the copy back included) and the bare forward pass of its encoder on the same images,
already normalised as tensors in the fit's memory layout, in eval mode under
``torch.inference_mode``, are timed alternately ``--repeats`` times; the medians are compared.

Run::

    python benchmarks/transform_speed.py [--encoders cnn resnet18 vit_tiny vit_small]
"""

import argparse
import time

import numpy as np
import torch
from fashion_mnist import normalized_images

from skssl import RotationPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.device import reuse_freed_memory


def bare(encoder, batches):
    """The bare forward pass over prepared batches (freed memory kept, as transform does)."""
    with torch.inference_mode(), reuse_freed_memory():
        for x in batches:
            encoder(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", nargs="+", default=["cnn", "resnet18", "vit_tiny",
                                                          "vit_small"])
    parser.add_argument("--n", type=int, default=2048, help="images per timing")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    X = X[: args.n]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.n} images, "
          f"batch {args.batch_size}")
    print(f"{'encoder':>10} {'transform img/s':>16} {'bare img/s':>11} {'ratio':>6}")
    for name in args.encoders:
        est = RotationPretrainer(encoder=name, max_epochs=1, batch_size=args.batch_size,
                                 device="cpu", random_state=0).fit(X[:64])
        batches = [normalized_images(est, X[s : s + args.batch_size])
                   for s in range(0, args.n, args.batch_size)]
        encoder = est.encoder_.eval()

        est.transform(X[: args.batch_size])
        bare(encoder, batches)
        ours, base = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            est.transform(X)
            ours.append(args.n / (time.perf_counter() - start))
            start = time.perf_counter()
            bare(encoder, batches)
            base.append(args.n / (time.perf_counter() - start))
        ours, base = float(np.median(ours)), float(np.median(base))
        print(f"{name:>10} {ours:>16.0f} {base:>11.0f} {ours / base:>6.1%}", flush=True)


if __name__ == "__main__":
    main()
