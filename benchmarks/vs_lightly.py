"""skssl's SimCLR side by side with lightly's, on the same machine, in one session.

The peer is ``../shared/bench/peer_lightly_simclr.py``: lightly 1.6's own
``SimCLRTransform``, ``NTXentLoss`` and ``SimCLRProjectionHead`` around the shared
reference backbone, in a plain PyTorch loop with a DataLoader. It runs in a separate
virtual environment (lightly is never a dependency of skssl)::

    python -m venv --system-site-packages /tmp/peer && /tmp/peer/bin/pip install lightly==1.6.0

``--system-site-packages`` makes the peer use the same torch as skssl. This script runs
the peer (as a subprocess of the venv's Python) and ``SimCLRPretrainer`` with the
peer's settings (in this process), one after the other, ``--repeats`` times each,
alternating, and reports both throughputs and their ratio. Matched settings: the
``cnn`` encoder (the reference backbone), batches of 256, 28x28 views
(``view_size=None``), crops from 20 %, horizontal flips, colour jitter with
probability 0.8 and brightness and contrast 0.8 (``jitter_strength=1``), a
128-128-64 projection head, Adam at 1e-3 with weight decay 1e-6, temperature 0.5.
skssl's own defaults (20x20 views, AdamW, cosine decay) are run too, as a third line.
Both run in skssl's default ``precision="auto"`` (bfloat16 mixed precision on a CPU
with AVX-512 BF16 or AMX, float32 elsewhere; the JSON records which); a speed run also
runs lightly's settings in float32, lightly's precision.

With ``--max-time S`` both fit for ``S`` seconds on all 60,000 images and are scored
with the protocol of ``fashion_mnist.py`` (linear probe and kNN-20): accuracy at equal
fit time. To run both as on a CPU without AVX-512 (``precision="auto"`` is then float32),
set ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``: the rows say so. Nothing else
may run on the machine meanwhile: the peer's JSON records the CPU share other processes
took (``train_foreign_cpu_share``).

Examples::

    python benchmarks/vs_lightly.py --peer-python /tmp/peer/bin/python --subset 6000 \\
        --json benchmarks/results/lightly.json                       # speed, 3 minutes
    python benchmarks/vs_lightly.py --peer-python /tmp/peer/bin/python --max-time 900 \\
        --repeats 1 --defaults-only --json benchmarks/results/lightly.json  # accuracy, 40 min
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import records
import torch
from fashion_mnist import probe

import skssl
from skssl.datasets import load_fashion_mnist
from skssl.device import resolve_precision

# The peer's script, in the shared folder next to the checkout.
PEER = records.REPO.parent / "shared" / "bench" / "peer_lightly_simclr.py"

# SimCLRPretrainer with the peer's settings (see the module docstring).
MATCHED = dict(
    view_size=None, crop_scale=0.2, jitter_strength=1.0, grayscale_p=0.0, blur=False,
    hidden_dim=128, projection_dim=64, temperature=0.5, optimizer="adam",
    learning_rate=1e-3, weight_decay=1e-6, lr_schedule="constant", batch_size=256,
)


def run_peer(python, args, seconds_budget):
    """The peer's images/s (and accuracies with a budget), from its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [python, str(args.peer_script), "--num-workers", str(args.num_workers),
               "--out", str(out)]
        if seconds_budget is None:
            cmd += ["--subset", str(args.subset), "--epochs", str(args.epochs), "--skip-eval"]
        else:
            cmd += ["--epochs", "1000", "--max-time", str(seconds_budget)]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        return json.loads(out.read_text())


def run_ours(params, X, X_test, y, y_test, args, seconds_budget):
    est = skssl.SimCLRPretrainer(random_state=0, **params)
    if seconds_budget is None:
        est.set_params(max_epochs=args.epochs)
        data = X[: args.subset]
    else:
        est.set_params(max_epochs=1000, max_time=seconds_budget)
        data = X
    start = time.perf_counter()
    est.fit(data)
    seconds = time.perf_counter() - start
    images = sum(h["images"] for h in est.history_)
    result = {"fit_seconds": seconds, "epochs": est.n_iter_, "img_per_s": images / seconds,
              "precision": resolve_precision(est.precision, est.device_)}
    if seconds_budget is not None:
        result.update(probe(est.transform(X), y, est.transform(X_test), y_test))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", required=True, help="Python of the lightly venv")
    parser.add_argument("--peer-script", type=Path, default=PEER, help="the peer's script")
    parser.add_argument("--subset", type=int, default=6000, help="images of a speed run")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of a speed run")
    parser.add_argument("--max-time", type=float, default=None,
                        help="fit budget (s) of an equal-time accuracy run on 60,000 images")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each")
    parser.add_argument("--num-workers", type=int, default=2, help="the peer's DataLoader")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--defaults-only", action="store_true",
                        help="of ours, run SimCLRPretrainer() alone (saves a fit)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    meta = records.run_meta()
    X, y = load_fashion_mnist(return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)

    # Ours with lightly's settings in our default precision ("auto": bfloat16 on a CPU
    # with AVX-512 BF16 or AMX) and, in a speed run, in float32 as lightly computes.
    ours = [("skssl, lightly's settings", MATCHED), ("skssl, defaults", {})]
    if args.max_time is None:
        ours.insert(1, ("skssl, lightly's settings, float32", {**MATCHED, "precision": "float32"}))
    if args.defaults_only:
        ours = [(name, params) for name, params in ours if name == "skssl, defaults"]
    runs = {"lightly": [], **{name: [] for name, _ in ours}}
    for _ in range(args.repeats):
        peer = run_peer(args.peer_python, args, args.max_time)
        runs["lightly"].append({
            # images seen over training seconds (the peer's own train_img_per_s assumes
            # every requested epoch ran, which a --max-time run cuts short)
            "img_per_s": peer["images_seen"] / peer["train_seconds"],
            "foreign_cpu_share": peer.get("train_foreign_cpu_share"),
            "linear_acc": peer.get("eval", {}).get("linear_probe_acc"),
            "knn_acc": peer.get("eval", {}).get("knn20_cosine_acc"),
            "lightly": peer.get("lightly_version"),
        })
        print("lightly", runs["lightly"][-1], flush=True)
        for name, params in ours:
            runs[name].append(run_ours(params, X, X_test, y, y_test, args, args.max_time))
            print(name, runs[name][-1], flush=True)

    peer_speed = np.median([r["img_per_s"] for r in runs["lightly"]])
    what = (f"fit on {args.subset} images, {args.epochs} ep" if args.max_time is None
            else f"fit on 60000 images, {args.max_time:.0f} s")
    what += records.run_as()  # both runs limited to an older instruction set, if so
    results = {}
    for name, rs in runs.items():
        row = {k: float(np.median([r[k] for r in rs])) for k in rs[0]
               if isinstance(rs[0][k], (int, float))}
        if "precision" in rs[0]:
            row["precision"] = rs[0]["precision"]
        row["runs"] = rs
        row["speed_vs_lightly"] = row["img_per_s"] / peer_speed
        results[f"SimCLR vs lightly: {name}, {what}"] = row
        print(f"{name:>28}: {row['img_per_s']:7.1f} img/s, {row['speed_vs_lightly']:.2f}x lightly"
              + (f", linear {row['linear_acc']:.3f}" if row.get("linear_acc") else ""))
    if args.json:
        records.merge(args.json, results, meta)


if __name__ == "__main__":
    main()
