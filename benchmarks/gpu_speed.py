"""GPU speed: fit images/s of rotation and SimCLR with ResNet-18 on 32x32 images.

For ``RotationPretrainer`` and ``SimCLRPretrainer`` with ``encoder="resnet18"`` on
32x32 RGB uint8 images (random pixels: speed does not depend on them), in the four
combinations of

- precision: the estimators' ``precision="float32"`` and, where the device computes in
  bfloat16 natively (what ``precision="auto"`` then picks), ``"bfloat16"``;
- memory layout: ``channels_last`` on or off (the estimators' parameter),

this measures the images/s of ``fit`` (timed by the loop itself, ``history_``, after a
warm-up fit of the same configuration: cuDNN's and the allocator's first calls are not
counted), and of the bare encoder step on the same inputs: the method's own encoder
inputs (``pretext_batch``: 4 rotations, or 2 augmented 23x23 views per image) made once
and kept on the device, then forward + backward + AdamW of a fresh ResNet-18, in the
same precision and layout. ``fit / bare`` is the share of the bare step's speed that
the whole method keeps (loading, pretext batch, head, loss, accuracy, the loop).

One short script for a machine with a GPU; ``--quick`` (a few images and steps, on the
CPU if there is no GPU) checks that it runs::

    python benchmarks/gpu_speed.py                 # about 3 minutes on one GPU
    python benchmarks/gpu_speed.py --quick         # about a minute on 2 CPU cores
    python benchmarks/gpu_speed.py --out results/gpu_speed.json
"""

import argparse
import json
import platform
import time

import numpy as np
import torch

from skssl import RotationPretrainer, SimCLRPretrainer
from skssl.device import (
    autocast,
    memory_format,
    resolve_device,
    resolve_precision,
    to_memory_format,
)
from skssl.encoders import make_encoder

METHODS = {"rotation": RotationPretrainer, "simclr": SimCLRPretrainer}


def synchronize(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def fit_images_per_s(cls, X, params, seconds, warm_up=True):
    """Images/s of a fit of ``seconds``, after a short warm-up fit of the same model."""
    if warm_up:
        cls(**{**params, "max_time": min(2.0, seconds)}).fit(X)
    est = cls(**{**params, "max_time": seconds}).fit(X)
    history = est.history_
    images = sum(h["images"] for h in history)
    return images / sum(h["seconds"] for h in history), est


def bare_images_per_s(est, X, device, seconds):
    """Images/s of forward + backward + AdamW of a fresh encoder on the method's inputs."""
    inputs, _ = est.pretext_batch(X[: est.batch_size])
    per_image = len(inputs) / est.batch_size  # 4 rotations, 2 views
    inputs = to_memory_format(inputs.to(device), est.channels_last)
    torch.manual_seed(0)
    encoder = make_encoder("resnet18", inputs.shape[1], tuple(inputs.shape[-2:]))
    encoder = encoder.to(device, memory_format=memory_format(est.channels_last))
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3, weight_decay=1e-4)

    def step():
        with autocast(device, est.precision):
            loss = encoder(inputs).float().square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up
        step()
    synchronize(device)
    steps, start = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - start < seconds:
        step()
        steps += 1
        synchronize(device)
    return steps * est.batch_size / (time.perf_counter() - start), per_image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few images and seconds: checks that the script runs")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=50_000, help="training images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS),
                        default=sorted(METHODS))
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()
    if args.quick:
        args.n, args.batch_size, args.seconds = 64, 8, 0.5

    device = resolve_device(args.device)
    cuda = device.startswith("cuda")
    name = torch.cuda.get_device_name(device) if cuda else platform.machine()
    print(f"torch {torch.__version__}, device {device} ({name}), {args.n} images of 32x32x3, "
          f"batch {args.batch_size}, {args.seconds:g} s per measurement")
    precisions = ["float32"]
    if resolve_precision("auto", device) == "bfloat16":
        precisions.append("bfloat16")
    if not cuda:
        print("no CUDA device: a check that the script runs, the figures mean little")
    X = np.random.RandomState(0).randint(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)

    rows = []
    print(f"{'method':>9} {'precision':>9} {'layout':>13} {'fit img/s':>10} "
          f"{'bare img/s':>11} {'fit/bare':>8}")
    for method in args.methods:
        for prec in precisions:
            for channels_last in (False, True):
                params = dict(encoder="resnet18", batch_size=args.batch_size, max_epochs=10_000,
                              device=device, random_state=0, channels_last=channels_last,
                              precision=prec)
                fit, est = fit_images_per_s(METHODS[method], X, params, args.seconds,
                                            warm_up=not args.quick)
                bare, per_image = bare_images_per_s(est, X, device, args.seconds)
                layout = "channels_last" if channels_last else "contiguous"
                print(f"{method:>9} {prec:>9} {layout:>13} {fit:10.0f} {bare:11.0f} "
                      f"{100 * fit / bare:7.0f}%")
                rows.append({"method": method, "precision": prec, "channels_last": channels_last,
                             "fit_images_per_s": fit, "bare_images_per_s": bare,
                             "encoder_inputs_per_image": per_image})
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": device, "device_name": name, "torch": torch.__version__,
                       "n": args.n, "batch_size": args.batch_size, "rows": rows}, f, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
