"""Time the SimCLR augmentation of one batch: skssl vs torchvision v2 vs kornia.

torchvision's v2 transforms draw one set of parameters per call, so per-image
randomness means one call per image; kornia (if installed) and skssl work on the
whole batch. Single thread, CPU, milliseconds per batch (median of ``--repeats``).

    PYTHONPATH=. python benchmarks/augment_speed.py --batch-size 256
"""

import argparse
import statistics
import time

import torch
from torchvision.transforms import v2

from skssl.augment import simclr_augment


def _median_ms(fn, args, repeats):
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _torchvision(size, channels, blur):
    rgb = channels == 3
    steps = [
        v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4 if rgb else 0, 0.1 if rgb else 0)], p=0.8),
    ]
    steps += [v2.RandomGrayscale(0.2)] if rgb else []
    steps += [v2.RandomApply([v2.GaussianBlur(3, (0.1, 2.0))], p=0.5)] if blur else []
    pipeline = v2.Compose(steps)
    return lambda x: torch.stack([pipeline(image) for image in x])


def _kornia(size, channels, blur):
    try:
        import kornia.augmentation as K
    except ImportError:
        return None
    rgb = channels == 3
    steps = [
        K.RandomResizedCrop((size, size), scale=(0.08, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4 if rgb else 0, 0.1 if rgb else 0, p=0.8),
    ]
    steps += [K.RandomGrayscale(p=0.2)] if rgb else []
    steps += [K.RandomGaussianBlur((3, 3), (0.1, 2.0), p=0.5)] if blur else []
    return torch.nn.Sequential(*steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    for channels, size in [(1, 28), (3, 32)]:
        x = torch.rand(args.batch_size, channels, size, size, generator=generator)
        for blur in (False, True):
            ours = simclr_augment(size, channels, blur=blur)
            row = {"skssl": _median_ms(ours, (x, generator), args.repeats)}
            tv = _torchvision(size, channels, blur)
            row["torchvision.v2 per image"] = _median_ms(tv, (x,), max(1, args.repeats // 2))
            kornia = _kornia(size, channels, blur)
            if kornia is not None:
                row["kornia"] = _median_ms(kornia, (x,), args.repeats)
            cells = "  ".join(f"{name} {ms:7.2f}" for name, ms in row.items())
            print(f"{args.batch_size}x{channels}x{size}x{size} blur={blur!s:5}  ms/batch: {cells}")


if __name__ == "__main__":
    main()
