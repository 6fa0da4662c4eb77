"""MAE's training step against a bare full-token step of the same ViT.

The promise of MAE's asymmetric design: the encoder sees only the visible quarter of
the patches, so a step costs far less than a step of the same ViT on every patch.
The full step is ``MAEPretrainer``'s own, timed by its loop over one epoch of
``partial_fit`` on ``--batches`` batches (masking, encoder on the visible tokens,
decoder on every patch, loss, backward, AdamW). The bare step is the same ViT's
forward + backward + AdamW on all the patches of the same images (mean-pooled
features, a dummy loss). The two alternate ``--repeats`` times; medians are compared,
in images per second.

    python benchmarks/mae_speed.py --threads 2
"""

import argparse
import json
import statistics
import time

import torch
from fashion_mnist import bare_train_step, fitted_encoder_kwargs, normalized_images

from skssl import MAEPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.device import reuse_freed_memory


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=json.loads, default={},
                        help="JSON dict of MAEPretrainer parameters")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=4, help="batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    X = X[: args.batches * args.batch_size]
    est = MAEPretrainer(batch_size=args.batch_size, device="cpu", random_state=0,
                        max_epochs=1, **args.params).fit(X[: args.batch_size])
    images = normalized_images(est, X[: args.batch_size])
    step = bare_train_step(est.encoder, fitted_encoder_kwargs(est), images, est.channels_last,
                           precision=est.precision)

    full, bare = [], []
    for _ in range(args.repeats):
        est.partial_fit(X)
        full.append(est.history_[-1]["images_per_s"])
        with reuse_freed_memory():  # as in a fit
            start = time.perf_counter()
            for _ in range(args.batches):
                step()
            bare.append(args.batches * args.batch_size / (time.perf_counter() - start))
    full, bare = statistics.median(full), statistics.median(bare)
    print(f"MAE {args.params} [{est.encoder}], batch {args.batch_size}, "
          f"{torch.get_num_threads()} thread(s), {est.encoder_.num_patches} patches, "
          f"mask_ratio {est.mask_ratio}")
    print(f"  MAE step {full:7.0f} images/s   bare full-token step {bare:7.0f} images/s   "
          f"MAE / bare {full / bare:.2f}x")


if __name__ == "__main__":
    main()
