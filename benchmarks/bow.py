"""Bags of visual words on Fashion-MNIST, under the protocol of ``fashion_mnist.py``.

Rows (frozen features, then ``StandardScaler + LogisticRegression(max_iter=1000)`` and
kNN-20 cosine, trained on the training images and scored on the 10,000 test images):

- ``visualbow``: :class:`skssl.VisualBoW` on raw patches (its defaults, or ``--params``),
  fit on the training images; ``fit_transform_seconds`` is the fit plus the transform
  of the training and test images (70,000 by default).
- ``bow``: a :class:`skssl.RotationPretrainer` teacher is fit first, then
  :class:`skssl.BoWPretrainer` with ``teacher=FrozenEstimator(teacher)``. Three rows:
  the random-init encoder, the teacher, and the student, whose ``fit_seconds`` counts
  the teacher's fit too (``student_fit_seconds`` is its own).

Examples::

    python benchmarks/bow.py --methods visualbow --json benchmarks/results/bow.json
    python benchmarks/bow.py --methods bow --teacher-epochs 5 --epochs 5 \\
        --json benchmarks/results/bow.json
    python benchmarks/fashion_mnist.py --markdown benchmarks/results/bow.json

Rows are merged into the ``--json`` file by name, each with its ``meta`` (commit, CPU,
threads, torch, date; ``records.py``). A pilot on subsets: ``--n-train 10000 --n-probe
10000 --n-test 5000``.
"""

import argparse
import json
import time
from pathlib import Path

import records
import torch
from fashion_mnist import markdown, probe, random_init_features
from sklearn.frozen import FrozenEstimator

from skssl import BoWPretrainer, RotationPretrainer, VisualBoW
from skssl.datasets import load_fashion_mnist


def visualbow_rows(args, X_fit, X_train, y_train, X_test, y_test):
    bow = VisualBoW(random_state=args.seed, **args.params)
    start = time.perf_counter()
    bow.fit(X_fit)
    fit_seconds = time.perf_counter() - start
    train_features, test_features = bow.transform(X_train), bow.transform(X_test)
    seconds = time.perf_counter() - start
    params = "".join(f", {k}={v}" for k, v in args.params.items())
    row = {
        "fit_seconds": fit_seconds,
        "fit_transform_seconds": seconds,
        "transform_images_per_s": (len(X_train) + len(X_test)) / (seconds - fit_seconds),
        "n_features": train_features.shape[1],
        **probe(train_features, y_train, test_features, y_test),
    }
    return {f"VisualBoW [patches{params}], fit on {len(X_fit)} images": row}


def bow_rows(args, X_fit, X_train, y_train, X_test, y_test):
    common = dict(encoder=args.encoder, encoder_kwargs=args.encoder_kwargs or None,
                  batch_size=args.batch_size, random_state=args.seed, verbose=args.verbose)
    suffix = f"[{args.encoder}{json.dumps(args.encoder_kwargs) if args.encoder_kwargs else ''}]"
    rows = {}
    mean, std = X_fit.mean() / 255.0, X_fit.std() / 255.0
    rows[f"random-init {suffix}"] = probe(
        random_init_features(args.encoder, args.encoder_kwargs, X_train, mean, std), y_train,
        random_init_features(args.encoder, args.encoder_kwargs, X_test, mean, std), y_test)

    teacher = RotationPretrainer(max_epochs=args.teacher_epochs,
                                 max_time=args.teacher_max_time, **common)
    start = time.perf_counter()
    teacher.fit(X_fit)
    teacher_seconds = time.perf_counter() - start
    budget = (f"{args.teacher_epochs} ep" if args.teacher_max_time is None
              else f"{args.teacher_max_time:.0f} s")
    name = f"rotation {suffix}, fit on {len(X_fit)} images, {budget}"
    rows[name] = {"fit_seconds": teacher_seconds,
                  **probe(teacher.transform(X_train), y_train, teacher.transform(X_test), y_test)}

    student = BoWPretrainer(teacher=FrozenEstimator(teacher), max_epochs=args.epochs,
                            max_time=args.max_time, **common, **args.params)
    start = time.perf_counter()
    student.fit(X_fit)
    student_seconds = time.perf_counter() - start
    history = student.history_
    params = "".join(f", {k}={v}" for k, v in args.params.items())
    budget = f"{args.epochs} ep" if args.max_time is None else f"{args.max_time:.0f} s"
    rows[f"bow {suffix}{params}, teacher: {name}; {budget}"] = {
        "fit_seconds": teacher_seconds + student_seconds,
        "student_fit_seconds": student_seconds,
        "fit_images_per_s": sum(h["images"] for h in history) / sum(
            h["seconds"] for h in history),
        "final_pretext_loss": history[-1]["loss"],
        "final_pretext_accuracy": history[-1]["pretext_accuracy"],
        **probe(student.transform(X_train), y_train, student.transform(X_test), y_test),
    }
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["visualbow", "bow"],
                        choices=["visualbow", "bow"])
    parser.add_argument("--params", type=json.loads, default={},
                        help="JSON dict of VisualBoW or BoWPretrainer parameters")
    parser.add_argument("--encoder", default="cnn")
    parser.add_argument("--encoder-kwargs", type=json.loads, default={})
    parser.add_argument("--teacher-epochs", type=int, default=5)
    parser.add_argument("--teacher-max-time", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=5, help="BoWPretrainer epochs")
    parser.add_argument("--max-time", type=float, default=None, help="BoWPretrainer budget (s)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-train", type=int, default=60000, help="images to fit on")
    parser.add_argument("--n-probe", type=int, default=60000,
                        help="training images of the probes")
    parser.add_argument("--n-test", type=int, default=10000, help="test images scored")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="merge results into this file")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    meta = records.run_meta()  # the code imported now is the code measured
    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    data = (X[: args.n_train], X[: args.n_probe], y[: args.n_probe], X_test[: args.n_test],
            y_test[: args.n_test])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fit on "
          f"{args.n_train}, probes on {args.n_probe}, scored on {args.n_test}", flush=True)
    results = {}
    for method in args.methods:
        rows = (visualbow_rows if method == "visualbow" else bow_rows)(args, *data)
        for row, r in rows.items():
            print(json.dumps({row: r}), flush=True)
        results.update(rows)
    if args.json:
        results = records.merge(args.json, results, meta)
    print(markdown(results))


if __name__ == "__main__":
    main()
