"""One process or two: fit images/s of a data-parallel fit on the cores of one machine.

The same ``RotationPretrainer`` fit (default ``"cnn"`` encoder, batches of 256 images,
Fashion-MNIST's 28x28 training images, or random ones without it) for ``--seconds``
seconds, three ways:

- one process, torch on ``--threads`` threads (all the cores);
- one process, one thread;
- ``torchrun --nproc_per_node=--threads`` processes of one thread each (gloo), each
  computing its share of every batch: DistributedDataParallel.

Images/s are the loop's own (``history_``, summed over ranks). Runs alternate,
``--repeats`` times; medians are reported. On one machine the processes share the same
cores as the threads of one process: what DDP adds is the gradient all-reduce, the
batch-norm statistics of every layer and the agreement on stopping, per step; what it
may save is the threads' synchronisation inside every operation.

    python benchmarks/distributed_speed.py [--threads 2] [--seconds 30] [--repeats 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np


def images():
    try:
        from skssl.datasets import load_fashion_mnist

        return load_fashion_mnist(subset="train", return_X_y=True)[0]
    except FileNotFoundError:
        return np.random.RandomState(0).randint(0, 256, (60000, 28, 28), dtype=np.uint8)


def worker(path, seconds, threads):
    """One fit (one rank under torchrun); rank 0 prints its images/s as JSON."""
    import torch
    import torch.distributed as dist

    from skssl import RotationPretrainer

    torch.set_num_threads(threads)
    X = np.load(path, mmap_mode="r")
    est = RotationPretrainer(max_epochs=1000, max_time=seconds, device="cpu",
                             random_state=0).fit(X)
    if not dist.is_initialized() or dist.get_rank() == 0:
        history = est.history_
        rate = sum(h["images"] for h in history) / sum(h["seconds"] for h in history)
        print(json.dumps({"images_per_s": rate, "steps_images": history[-1]["images"]}))


def run(command, env=None):
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=3, metavar=("DATA", "SECONDS", "THREADS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], float(args.worker[1]), int(args.worker[2]))

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npy"
        np.save(path, images())
        me = [sys.executable, __file__, "--worker", str(path), str(args.seconds)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        ways = {
            f"1 process x {args.threads} threads": lambda: run(me + [str(args.threads)]),
            "1 process x 1 thread": lambda: run(me + ["1"]),
            f"{args.threads} processes x 1 thread (DDP, gloo)": lambda: run(
                [sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={args.threads}", __file__, "--worker", str(path),
                 str(args.seconds), "1"], env=env),
        }
        rates = {name: [] for name in ways}
        for _ in range(args.repeats):
            for name, way in ways.items():
                rates[name].append(way())
                print(f"  {name:32s} {rates[name][-1]:6.0f} images/s", flush=True)
    print(f"RotationPretrainer, batch 256, {args.seconds:g} s fits, medians of {args.repeats}:")
    base = statistics.median(rates[next(iter(rates))])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:34s} {median:6.0f} images/s  ({median / base:.2f}x the first)")


if __name__ == "__main__":
    main()
