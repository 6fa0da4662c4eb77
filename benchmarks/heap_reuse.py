"""What keeping freed memory in the heap (``skssl.device.reuse_freed_memory``) gives each
method's fit.

Every method is fitted on ``--batches`` batches of Fashion-MNIST test images (one epoch,
then ``--repeats`` more epochs of ``partial_fit``, timed by the loop itself), with the
heap reuse on (skssl's default on Linux with glibc) and off (glibc's own ``malloc``
behaviour: blocks over 32 MiB are unmapped when freed). Each (method, setting) runs in a
fresh process, so that its peak resident memory is its own; ``--rounds`` processes per
setting, alternating off and on, so that a change of the machine's speed hits both.
Reported, medians over the rounds: images/s (each the median of its timed epochs), page
faults per step in the timed epochs, and the process's peak resident memory.

    python benchmarks/heap_reuse.py --precision float32
    python benchmarks/heap_reuse.py --methods rotation intruder --precision auto
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

import torch
from fashion_mnist import METHODS


def worker(args):
    """One (method, setting) in this process; prints its JSON line."""
    from skssl.datasets import load_fashion_mnist

    torch.set_num_threads(args.threads)
    X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    est = METHODS[args.methods[0]](max_epochs=1, device="cpu", random_state=0,
                                   precision=args.precision)
    X = X[: args.batches * est.batch_size]
    est.fit(X)
    speeds, faults = [], 0
    for _ in range(args.repeats):
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        est.partial_fit(X)
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start
        speeds.append(est.history_[-1]["images_per_s"])
    print(json.dumps({
        "images_per_s": statistics.median(speeds),
        "faults_per_step": faults / (args.repeats * args.batches),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS),
                        default=["simclr", "rotation", "jigsaw", "context", "intruder"])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batches", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="processes per setting, alternating; medians")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    common = ["--precision", args.precision, "--batches", str(args.batches),
              "--repeats", str(args.repeats), "--threads", str(args.threads)]
    print(f"precision={args.precision}, {args.threads} threads, {args.batches} batches")
    for method in args.methods:
        runs = {"off": [], "on": []}
        for _ in range(args.rounds):
            for setting in ("off", "on"):
                cmd = [sys.executable, __file__, "--worker", "--methods", method, *common]
                    # SKSSL_REUSE_FREED_MEMORY=0 turns the reuse off (read at import).
                env = {**os.environ, "SKSSL_REUSE_FREED_MEMORY": "0" if setting == "off" else "1"}
                out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                     check=True).stdout
                runs[setting].append(json.loads(out.strip().splitlines()[-1]))
        on, off = ({key: statistics.median(r[key] for r in rs) for key in rs[0]}
                   for rs in (runs["on"], runs["off"]))
        print(f"{method:>9}: {off['images_per_s']:6.0f} -> {on['images_per_s']:6.0f} images/s "
              f"({on['images_per_s'] / off['images_per_s']:.2f}x), page faults per step "
              f"{off['faults_per_step']:7.0f} -> {on['faults_per_step']:5.0f}, peak memory "
              f"{off['peak_rss_mb']:5.0f} -> {on['peak_rss_mb']:5.0f} MB", flush=True)


if __name__ == "__main__":
    main()
