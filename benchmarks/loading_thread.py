"""Fit throughput with each batch converted in the caller's thread vs in a loading thread.

skssl reads the next batch in a background thread only where reading may wait (a
memmap, a dataset) and converts it (to float, normalisation, the method's
preparation) in the training loop's own thread. The alternative, measured here
against it, reads *and converts* every batch in the background thread, as skssl did
before: the conversion is small, but torch operations in a second thread compete with
the step for the cores.

Each run is a fresh process that fits a pretrainer with its defaults for ``--seconds``
on the 60,000 Fashion-MNIST training images (in RAM) and prints the images per second
of the whole fit (images seen / seconds). The two ways alternate ``--repeats`` times,
so that a load change on a shared machine hits both; medians are compared.

    python benchmarks/loading_thread.py --methods intruder rotation context simclr \
        --seconds 45 --json benchmarks/results/speed/loading_thread.json
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

RUN = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from fashion_mnist import METHODS
import skssl.base
from skssl.datasets import load_fashion_mnist
from concurrent.futures import ThreadPoolExecutor

def convert_in_thread(read, convert, items, device, background=True):
    # read and convert in one background thread, one batch ahead (skssl before)
    items = list(items)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(lambda i: convert(read(i)), items[0]) if items else None
        for i, item in enumerate(items):
            batch = pending.result()
            if i + 1 < len(items):
                pending = pool.submit(lambda i: convert(read(i)), items[i + 1])
            yield item, batch

method, way, seconds, threads = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
if way == "thread":
    skssl.base.prefetch = convert_in_thread
torch.set_num_threads(threads)
X = load_fashion_mnist(subset="train", return_X_y=True)[0]
est = METHODS[method](device="cpu", random_state=0, max_epochs=1000, max_time=seconds).fit(X)
images = sum(h["images"] for h in est.history_)
print(json.dumps(images / sum(h["seconds"] for h in est.history_)))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["intruder", "rotation"])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    here = str(Path(__file__).parent)
    results = {}
    for method in args.methods:
        runs = {"caller": [], "thread": []}
        for _ in range(args.repeats):
            for way in runs:
                out = subprocess.run(
                    [sys.executable, "-c", RUN, here, method, way, str(args.seconds),
                     str(args.threads)], check=True, capture_output=True, text=True)
                runs[way].append(json.loads(out.stdout.strip().splitlines()[-1]))
        caller, thread = statistics.median(runs["caller"]), statistics.median(runs["thread"])
        print(f"{method}: converted in the caller's thread {caller:6.0f} images/s "
              f"({', '.join(f'{v:.0f}' for v in runs['caller'])}), in the loading thread "
              f"{thread:6.0f} ({', '.join(f'{v:.0f}' for v in runs['thread'])}): "
              f"{caller / thread:.2f}x", flush=True)
        results[method] = runs
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seconds": args.seconds, "threads": args.threads, "runs": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
