"""Out of core: memory of ``transform(X, out=memmap)``, and fit on a memmap on disk vs in RAM.

1. **Memory.** ``transform`` of an ``(n, 28, 28)`` uint8 memmap (200,000 images by
   default) into a float32 ``out`` memmap; the target is a peak under 300 MB above the
   process's memory before the call. A float32 copy of the images alone would be 627 MB
   (1.25 GB in float64). Resident memory (VmRSS) counts anonymous memory (RssAnon: what
   the process allocates) and the file pages of both memmaps that the kernel maps while
   they are read and written (RssFile: page cache, which the kernel can reclaim at any
   time; at most the two files, 157 + 102 MB here). Both are reported.

2. **Fit throughput.** Images/s of ``RotationPretrainer`` (the default ``"cnn"``) for
   ``--fit-seconds`` seconds on the same images held in RAM (``np.load``), and on disk
   as a memmap: ``disk``, a memmap of the file, whose pages the kernel caches once read
   (a dataset that fits in memory; the target is at least 95 % of the RAM throughput);
   ``cold``, the same memmap while a thread evicts its pages every 0.2 s
   (``madvise(MADV_DONTNEED)``, then ``posix_fadvise(POSIX_FADV_DONTNEED)``), so that
   the batches come from the disk, as with a dataset larger than memory read in random
   order. Runs alternate; medians are reported. Next to each, the time to load a batch
   of 256 random rows (read, as the background thread does, then float and normalise,
   as the loop does): the time that reading the next batch during the step saves, at
   most.

Each measurement runs in a fresh process (``ru_maxrss`` would also count peaks from
before the call, such as loading torch); memory is sampled every 5 ms during the call.

Run::

    python benchmarks/memmap_memory.py [--n 200000] [--fit-seconds 20] [--repeats 3] [--dir D]
        [--skip-transform] [--skip-fit]

To measure what loading the next batch in the background saves, run the fit part
against skssl before it did (the commit before "Data faster than the step", checked out
apart with ``git worktree add``) with ``PYTHONPATH=<that checkout>``, alternately.
"""

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MEASURE_TRANSFORM = r"""
import json, pickle, sys, threading, time
import numpy as np
est = pickle.load(open(sys.argv[1], "rb"))
X = np.load(sys.argv[2], mmap_mode="r")
out = np.lib.format.open_memmap(sys.argv[3], mode="w+", dtype=np.float32,
                                shape=(len(X), len(est.get_feature_names_out())))
est.transform(X[:256], out=out[:256])  # warm up torch's allocator and kernels
def memory():
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile"):
                values[key] = int(line.split()[1]) / 1024
    return values
before = memory()
peak, done = dict(before), threading.Event()
def sample():  # resident memory every 5 ms while transform runs
    while not done.is_set():
        for key, value in memory().items():
            peak[key] = max(peak[key], value)
        time.sleep(0.005)
sampler = threading.Thread(target=sample)
sampler.start()
start = time.perf_counter()
result = est.transform(X, out=out)
seconds = time.perf_counter() - start
done.set()
sampler.join()
for key, value in memory().items():
    peak[key] = max(peak[key], value)
assert result is out
print(json.dumps({"before": before, "peak": peak, "seconds": seconds, "shape": out.shape}))
"""

MEASURE_FIT = r"""
import json, mmap, os, sys, threading, time
import numpy as np
import torch
from skssl import RotationPretrainer
path, where, seconds, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
params = json.loads(sys.argv[5])
torch.set_num_threads(threads)
done = threading.Event()
if where == "ram":
    X = np.load(path)
elif where == "disk":
    X = np.load(path, mmap_mode="r")
else:
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    pages = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    X = np.frombuffer(pages, dtype=dtype, count=int(np.prod(shape)), offset=offset)
    X = X.reshape(shape)
    def evict():  # every read then comes from the disk: a dataset larger than memory
        while not done.wait(0.2):
            pages.madvise(mmap.MADV_DONTNEED)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    threading.Thread(target=evict, daemon=True).start()
start = time.perf_counter()
est = RotationPretrainer(max_epochs=1, max_time=seconds, device="cpu", random_state=0,
                         **params).fit(X)
wall = time.perf_counter() - start
# Loading a batch of 256 random rows (read in the background, converted in the loop).
rng = np.random.RandomState(1)
mean, std = float(est.channel_mean_[0]), float(est.channel_std_[0])
load_start = time.perf_counter()
for _ in range(20):
    rows = np.sort(rng.permutation(len(X))[:256])
    batch = torch.from_numpy(np.array(X[rows])).float().div_(255)
    batch = (batch - mean) / std
load = (time.perf_counter() - load_start) / 20
done.set()
entry = est.history_[-1]
print(json.dumps({"images_per_s": entry["images_per_s"], "images": entry["images"],
                  "train_seconds": entry["seconds"], "fit_wall_seconds": wall,
                  "load_ms": 1000 * load}))
"""


def run(code, *args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--fit-seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--skip-transform", action="store_true")
    parser.add_argument("--params", default="{}",
                        help="JSON parameters of the fitted RotationPretrainer, e.g. "
                        "'{\"encoder_kwargs\": {\"channels\": [8]}}' for a short step")
    parser.add_argument("--dir", default=None,
                        help="folder for the files, on a disk (not a tmpfs); default: TMPDIR")
    args = parser.parse_args()

    from skssl import RotationPretrainer

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        rng = np.random.RandomState(0)
        X = np.lib.format.open_memmap(tmp / "x.npy", mode="w+", dtype=np.uint8,
                                      shape=(args.n, 28, 28))
        for start in range(0, args.n, 10000):
            X[start : start + 10000] = rng.randint(0, 256, (min(10000, args.n - start), 28, 28))
        X.flush()
        est = RotationPretrainer(max_epochs=1, device="cpu", random_state=0).fit(X[:512])
        (tmp / "est.pkl").write_bytes(pickle.dumps(est))
        del X
        with open(tmp / "x.npy", "rb") as f:  # written to the disk, so that it can be evicted
            os.fsync(f.fileno())

        if not args.skip_transform:
            m = run(MEASURE_TRANSFORM, tmp / "est.pkl", tmp / "x.npy", tmp / "features.npy")
            before, peak = m["before"], m["peak"]
            print(f"transform of a ({args.n}, 28, 28) uint8 memmap into an out memmap of shape "
                  f"{tuple(m['shape'])} float32: {m['seconds']:.1f} s, "
                  f"{args.n / m['seconds']:.0f} images/s")
            for key, name in [("VmRSS", "resident"), ("RssAnon", "anonymous"),
                              ("RssFile", "file pages")]:
                print(f"  {name:>10} ({key}): before {before[key]:5.0f} MB, peak "
                      f"{peak[key]:5.0f} MB, peak extra {peak[key] - before[key]:4.0f} MB")
            print("  target: peak extra < 300 MB")

        if args.skip_fit:
            return
        rates = {"ram": [], "disk": [], "cold": []}
        for _ in range(args.repeats):
            for where in rates:
                r = run(MEASURE_FIT, tmp / "x.npy", where, args.fit_seconds, args.threads,
                        args.params)
                rates[where].append(r["images_per_s"])
                print(f"  fit, {where:>4}: {r['images_per_s']:6.0f} images/s "
                      f"({r['images']} images in {r['train_seconds']:.1f} s of training, "
                      f"{r['fit_wall_seconds']:.1f} s of fit); loading a batch of 256: "
                      f"{r['load_ms']:.1f} ms, a step: {256000 / r['images_per_s']:.0f} ms")
        ram, disk, cold = (statistics.median(rates[k]) for k in ("ram", "disk", "cold"))
        print(f"fit on a memmap on disk: {disk:.0f} images/s, in RAM: {ram:.0f} images/s "
              f"(medians of {args.repeats}, {args.threads} threads): {100 * disk / ram:.1f} % "
              f"(target >= 95 %); with its pages evicted: {cold:.0f} images/s, "
              f"{100 * cold / ram:.1f} %")


if __name__ == "__main__":
    main()
