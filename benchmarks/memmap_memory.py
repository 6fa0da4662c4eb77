"""Peak extra memory of ``transform`` on a 60,000-image uint8 memmap.

The target: under 300 MB above the process's memory before the call. A float32 copy of
the whole array would be 188 MB on its own (and 753 MB for a float64 one); skssl
converts batch by batch, so the extra is the output (60,000 x 128 float32 = 31 MB), the
pages of the memmap that the kernel maps while reading it (47 MB at most), and one batch.

Run::

    python benchmarks/memmap_memory.py [--n 60000]

The pretrainer is fitted in a first process on 512 images and pickled; a second, fresh
process loads it, opens the memmap, records its resident memory, then samples it every
5 ms while ``transform`` runs (``ru_maxrss`` would also count peaks from before the call,
such as loading torch).
"""

import argparse
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MEASURE = r"""
import pickle, sys, threading, time
import numpy as np
est = pickle.load(open(sys.argv[1], "rb"))
X = np.load(sys.argv[2], mmap_mode="r")
est.transform(X[:256])  # warm up torch's allocator and kernels on a small batch
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
peak, done = [0.0], threading.Event()
def sample():  # resident memory every 5 ms while transform runs
    while not done.is_set():
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.005)
before = rss_mb()
sampler = threading.Thread(target=sample)
sampler.start()
features = est.transform(X)
done.set()
sampler.join()
peak = max(peak[0], rss_mb())
print(f"{before:.0f} {peak:.0f} {features.shape[0]} {features.shape[1]} {features.dtype}")
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=60000)
    args = parser.parse_args()

    from skssl import RotationPretrainer

    with tempfile.TemporaryDirectory() as tmp:
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
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(tmp / "est.pkl"), str(tmp / "x.npy")],
            check=True, capture_output=True, text=True,
        ).stdout.split()
    before, peak = float(out[0]), float(out[1])
    print(f"transform of a ({args.n}, 28, 28) uint8 memmap -> ({out[2]}, {out[3]}) {out[4]}")
    print(f"resident memory before: {before:.0f} MB, peak during: {peak:.0f} MB, "
          f"peak extra: {peak - before:.0f} MB (target < 300 MB)")


if __name__ == "__main__":
    main()
