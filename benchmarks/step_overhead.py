"""A method's training step against the bare encoder step on the same encoder inputs.

The full step is the estimator's own: one epoch of ``partial_fit`` over ``--batches``
batches (load and normalise the images, make the pretext batch, encoder, head, loss,
backward, AdamW, pretext accuracy), timed by the loop itself (``history_``). The bare
step is a fresh encoder's forward + backward + AdamW on the method's own encoder
inputs (``pretext_batch``: 4 rotations, 9 tiles, 2 patches or 2 views per image), in
the fit's memory layout. The two alternate ``--repeats`` times, so that a load change
on a shared machine hits both; medians are compared.

    python benchmarks/step_overhead.py --method simclr --params '{"view_size": 20}'
    python benchmarks/step_overhead.py --method context --batch-size 512
"""

import argparse
import json
import statistics
import time

import torch
from fashion_mnist import METHODS, bare_train_step

from skssl.datasets import load_fashion_mnist
from skssl.device import reuse_freed_memory


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", choices=sorted(METHODS), default="simclr")
    parser.add_argument("--params", type=json.loads, default={},
                        help="JSON dict of pretrainer parameters")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=4, help="batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    X = X[: args.batches * args.batch_size]
    est = METHODS[args.method](batch_size=args.batch_size, device="cpu", random_state=0,
                               max_epochs=1, **args.params).fit(X)
    inputs, _ = est.pretext_batch(X[: args.batch_size])
    step = bare_train_step(est.encoder, est.encoder_kwargs or {}, inputs, est.channels_last,
                           precision=est.precision)
    n_inputs = len(inputs.flatten(0, 1) if inputs.ndim == 5 else inputs)

    full, bare = [], []
    for _ in range(args.repeats):
        est.partial_fit(X)
        full.append(est.history_[-1]["inputs_per_s"])
        with reuse_freed_memory():  # as in a fit
            start = time.perf_counter()
            for _ in range(args.batches):
                step()
            bare.append(args.batches * n_inputs / (time.perf_counter() - start))
    full, bare = statistics.median(full), statistics.median(bare)
    print(f"{args.method} {args.params}, batch {args.batch_size} ({n_inputs} encoder inputs "
          f"of {tuple(inputs.shape[-3:])}), {args.threads} thread(s)")
    print(f"  full step {full:8.0f} inputs/s   bare {bare:8.0f} inputs/s   "
          f"full / bare {100 * full / bare:.1f} %")


if __name__ == "__main__":
    main()
