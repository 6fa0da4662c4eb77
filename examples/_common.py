"""What the example scripts share: arguments, data, the raw-pixels comparison, the figure.

Not part of skssl: the gallery's plumbing, kept here so that every script shows its own
idea and nothing else. Each script runs in two modes:

- full (the default): Fashion-MNIST's 60,000 training images, a pretraining budget of
  ``--max-time`` seconds, linear probes with 10, 100 and 1,000 labels per class,
  tested on the 10,000 test images; at most 5 minutes on 2 CPU cores;
- quick (``--quick``, or the environment variable ``SKSSL_EXAMPLES_QUICK=1``): 512
  images, a tiny encoder, one epoch, a few seconds; what the tests run.

Without Fashion-MNIST (``apt-get install -y dataset-fashion-mnist``), the scripts say so
and fall back on scikit-learn's digits, enlarged to 16x16 pixels.
"""

import argparse
import os
import time
import warnings
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skssl.datasets import load_fashion_mnist

# The probes' BLAS on one thread: next to torch's threads, a multi-threaded BLAS spends
# most of its time waiting (a logistic regression on 133 images: 2.6 s against 0.15 s,
# on 2 cores). Torch keeps its own threads.
threadpool_limits(1, user_api="blas")

FIGURES = Path(__file__).resolve().parent / "figures"
QUICK_ENV = "SKSSL_EXAMPLES_QUICK"
# Quick mode: a tiny encoder and one epoch on a few images, for the tests.
QUICK_PARAMS = {"encoder_kwargs": {"channels": (8, 16)}, "max_epochs": 1, "batch_size": 128,
                "max_time": None}
QUICK_TRAIN, QUICK_TEST = 512, 500
# Labelled training images per class of the linear probes.
LABEL_COUNTS = {True: (5, 20), False: (10, 100, 1000)}


def parse_args(name, doc, argv=None, max_time=120.0, n_show=4, extra=None):
    """The options every example takes; ``--out`` defaults to ``examples/figures/<name>.png``.

    ``extra(parser)`` adds a script's own options.
    """
    parser = argparse.ArgumentParser(
        description=doc.strip().split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", default=os.environ.get(QUICK_ENV, "") == "1",
        help=f"a few seconds: {QUICK_TRAIN} images, a tiny encoder, one epoch "
        f"(also {QUICK_ENV}=1)",
    )
    parser.add_argument("--max-time", type=float, default=max_time,
                        help="seconds of pretraining (default %(default)s)")
    parser.add_argument("--n-train", type=int, default=None,
                        help="training images to pretrain on (default: all)")
    parser.add_argument("--n-show", type=int, default=n_show,
                        help="test images drawn (default %(default)s)")
    parser.add_argument("--out", type=Path, default=FIGURES / f"{name}.png",
                        help="where to save the figure (default %(default)s)")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


@lru_cache(maxsize=2)
def load_data(quick):
    """Training and test images with their labels and class names."""
    try:
        if quick:  # the test split alone is faster to read
            test = load_fashion_mnist(subset="test")
            train = SimpleNamespace(images=test.images[:QUICK_TRAIN],
                                    target=test.target[:QUICK_TRAIN])
            test = SimpleNamespace(images=test.images[-QUICK_TEST:],
                                   target=test.target[-QUICK_TEST:],
                                   target_names=test.target_names)
        else:
            train, test = load_fashion_mnist(subset="train"), load_fashion_mnist(subset="test")
        name = "Fashion-MNIST"
    except FileNotFoundError as exc:
        print(f"Fashion-MNIST is not installed ({str(exc).split('. ')[0]}).\n"
              "Falling back on scikit-learn's digits, enlarged to 16x16 pixels: the "
              "figures mean less there. Install Fashion-MNIST with\n"
              "    apt-get install -y dataset-fashion-mnist\n")
        digits = load_digits()
        images = np.kron(digits.images, np.ones((2, 2), dtype=np.float32)) / 16
        half = len(images) // 2
        train = SimpleNamespace(images=images[:half], target=digits.target[:half])
        test = SimpleNamespace(images=images[half:], target=digits.target[half:],
                               target_names=[str(k) for k in range(10)])
        name = "digits"
    return SimpleNamespace(X_train=train.images, y_train=train.target, X_test=test.images,
                           y_test=test.target, classes=np.asarray(test.target_names),
                           name=name)


def configure(pretrainer, args, max_time=None, quick=None):
    """Set the budget: ``max_time`` seconds (default ``--max-time``) in full mode, or
    the quick mode's tiny encoder and one epoch, updated with the ``quick`` parameters."""
    if args.quick:
        return pretrainer.set_params(**{**QUICK_PARAMS, **(quick or {})})
    return pretrainer.set_params(max_epochs=1000, max_time=max_time or args.max_time)


def training_images(data, args):
    return data.X_train if args.n_train is None else data.X_train[: args.n_train]


def fit(pretrainer, X, label=None):
    """Fit on unlabelled images and say how it went."""
    start = time.perf_counter()
    pretrainer.fit(X)
    seconds = time.perf_counter() - start
    last = pretrainer.history_[-1]
    accuracy = last["pretext_accuracy"]
    losses = [f"{loss:.3f}" for loss in pretrainer.loss_curve_]
    print(f"{label or type(pretrainer).__name__}: {pretrainer.n_iter_} epoch(s) on "
          f"{len(X)} unlabelled images in {seconds:.0f} s, pretext loss "
          + " -> ".join(losses[:1] + losses[1:][-1:])
          + ("" if accuracy is None else f", pretext accuracy {accuracy:.2f}"))
    return pretrainer


def untrained(pretrainer, X):
    """The same pretrainer after a single training step: the encoder as initialised."""
    one_step = clone(pretrainer).set_params(max_epochs=1, max_time=1e-9, verbose=0)
    return one_step.fit(X[:2048])


def labelled_subsets(y, counts, seed=0):
    """Nested indices of ``n`` training images per class, for each ``n`` of ``counts``."""
    rng = np.random.RandomState(seed)
    order = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    return [np.concatenate([o[:n] for o in order]) for n in counts]


def compare(data, extractors, quick):
    """Print the test accuracy of one linear probe on raw pixels and on each features.

    ``extractors``: name -> fitted transformer. The probe (StandardScaler +
    LogisticRegression) is trained with a few labels per class. Returns the test
    features of each extractor.
    """
    counts = LABEL_COUNTS[quick]
    subsets = labelled_subsets(data.y_train, counts)
    largest = subsets[-1]
    flat = {"raw pixels": (data.X_train[largest].reshape(len(largest), -1),
                           data.X_test.reshape(len(data.X_test), -1))}
    test_features = {}
    for name, extractor in extractors.items():
        test_features[name] = extractor.transform(data.X_test)
        flat[name] = (extractor.transform(data.X_train[largest]), test_features[name])
    print(f"\nLinear probe on {data.name}: test accuracy on {len(data.X_test)} images, "
          "trained with n labelled images per class")
    if quick:
        print("(quick mode: a few images, tiny models; the numbers mean nothing)")
    print(f"{'n':>5} " + " ".join(f"{name:>{max(len(name), 6)}}" for name in flat))
    # Both sides get the same solver budget: a probe stopped at max_iter is a fair one.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for n, subset in zip(counts, subsets, strict=True):
            rows = np.isin(largest, subset)
            cells = []
            for name, (train, test) in flat.items():
                probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
                probe.fit(train[rows], data.y_train[largest][rows])
                cells.append(f"{probe.score(test, data.y_test):>{max(len(name), 6)}.3f}")
            print(f"{n:>5} " + " ".join(cells))
    print()
    return test_features


def new_figure(height=6.5, width=13.0):
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), layout="constrained")


def save(fig, out):
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"saved {out}")


def method_figure(pretrainer, data, features, args):
    """The pretext batch on test images, the training curve and the test features (PCA)."""
    from skssl.plotting import plot_embedding, plot_history, show_pretext_batch

    fig = new_figure(height=max(6.5, 1.5 * args.n_show + 0.8))
    left, right = fig.subfigures(1, 2, width_ratios=(3, 2))
    show_pretext_batch(pretrainer, data.X_test, n_images=args.n_show, fig=left)
    top, bottom = right.subplots(2, 1, height_ratios=(2, 3))
    plot_history(pretrainer, ax=top)
    shown = slice(0, 1000)
    plot_embedding(features[shown], data.classes[data.y_test[shown]], ax=bottom)
    bottom.set_title(f"PCA of the features of {len(data.y_test[shown])} test images")
    return fig


def run_example(name, doc, pretrainer, argv=None, quick_params=None):
    """A method's example: pretrain on unlabelled images, compare with raw pixels and
    with the same encoder untrained, and draw the pretext task."""
    args = parse_args(name, doc, argv)
    data = load_data(args.quick)
    configure(pretrainer, args, quick=quick_params)
    X = training_images(data, args)
    fit(pretrainer, X)
    method = type(pretrainer).__name__
    features = compare(data, {"untrained": untrained(pretrainer, X), method: pretrainer},
                       args.quick)
    save(method_figure(pretrainer, data, features[method], args), args.out)
    return pretrainer
