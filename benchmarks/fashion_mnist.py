"""The skssl evaluation protocol on Fashion-MNIST, used for every method.

1. Fit each pretrainer on the training images (60,000 by default) without labels.
2. Freeze it and ``transform`` the training and test images.
3. Score the features with (a) a linear probe, ``StandardScaler + LogisticRegression
   (max_iter=1000)`` trained on the training features and scored on the 10,000 test
   images, and (b) ``KNeighborsClassifier(n_neighbors=20, metric="cosine")``.

Rows: raw pixels, the random-init encoder (same architecture, no training), and each
pretrainer. Besides accuracy, each pretrainer row reports its fit throughput against
the bare encoder's forward+backward+AdamW step on the same number and shape of encoder
inputs, and its transform throughput against a bare forward pass at the same batch
size, both measured in this process, right after the fit, in the fit's ``precision``
(recorded in each row; ``"auto"`` is bfloat16 on a CPU with AVX-512 BF16 or AMX).
Untrained encoders are read out in float32.

Examples::

    python benchmarks/fashion_mnist.py --methods raw random rotation --epochs 2
    python benchmarks/fashion_mnist.py --methods rotation --encoder resnet18 \\
        --n-train 5000 --epochs 1 --json benchmarks/results.json
    python benchmarks/fashion_mnist.py --markdown benchmarks/results.json

Results are merged into the JSON file by row name, so rows can be run separately, and
each row records where and when it was measured (``meta``: commit, CPU, threads, torch,
date; ``records.py``). ``--markdown`` prints the README table of one or more files: the
CPU, threads and torch version in a line above it when every row shares them (a column
otherwise), and the date and commit of each row.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import records
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skssl
from skssl.datasets import load_fashion_mnist
from skssl.device import autocast, resolve_precision, reuse_freed_memory, to_memory_format
from skssl.encoders import build_encoder, make_encoder
from skssl.ops import pool_regions, pyramid_regions

METHODS = {
    "rotation": skssl.RotationPretrainer,
    "jigsaw": skssl.JigsawPretrainer,
    "context": skssl.ContextPretrainer,
    "simclr": skssl.SimCLRPretrainer,
    "intruder": skssl.IntruderPretrainer,
    "mae": skssl.MAEPretrainer,
    # its default teacher, a RotationPretrainer with the same budget, trains inside fit
    "bow": skssl.BoWPretrainer,
}


def probe(train_features, y_train, test_features, y_test, mlp=False):
    """Linear-probe and kNN-20 (cosine) test accuracy of frozen features, and with
    ``mlp`` that of a one-hidden-layer MLP (256 units, early stopping), which shows how
    much a linear probe misses of features that are not linearly separable."""
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    linear.fit(train_features, y_train)
    knn = KNeighborsClassifier(n_neighbors=20, metric="cosine", n_jobs=-1)
    knn.fit(train_features, y_train)
    scores = {
        "linear_acc": float(linear.score(test_features, y_test)),
        "knn_acc": float(knn.score(test_features, y_test)),
    }
    if mlp:
        net = make_pipeline(StandardScaler(), MLPClassifier(
            (256,), early_stopping=True, max_iter=200, random_state=0))
        scores["mlp_acc"] = float(net.fit(train_features, y_train).score(test_features, y_test))
    return scores


def _time_steps(step, n_steps, warmup=3, min_seconds=10.0):
    """Mean seconds per step over at least ``n_steps`` steps and ``min_seconds``.

    A fit's throughput is an average over minutes; timing the bare step for a few
    seconds at least keeps a short burst of load on a shared machine from setting it.
    The bare step keeps freed memory in the heap as a fit does
    (``skssl.device.reuse_freed_memory``).
    """
    with reuse_freed_memory():
        for _ in range(warmup):
            step()
        start = time.perf_counter()
        done = 0
        while done < n_steps or time.perf_counter() - start < min_seconds:
            step()
            done += 1
        return (time.perf_counter() - start) / done


def fitted_encoder_kwargs(est):
    """The ``encoder_kwargs`` that rebuild a fitted pretrainer's encoder: its own, plus
    the patch size of a ViT, which a method may pick itself (MAE does)."""
    kwargs = dict(est.encoder_kwargs or {})
    if hasattr(est.encoder_, "patch_size"):
        kwargs["patch_size"] = est.encoder_.patch_size
    return kwargs


def bare_train_step(encoder, encoder_kwargs, inputs, channels_last, seed=0, precision="auto"):
    """Forward+backward+AdamW step of a fresh bare encoder on a method's own ``inputs``.

    ``inputs`` are ``(N, C, h, w)`` or tiles ``(N, T, C, h, w)`` (flattened to ``N*T``
    images), put in the fit's memory layout, in the fit's ``precision``. Returns the
    step, a function of nothing.
    """
    torch.manual_seed(seed)
    inputs = inputs.flatten(0, 1) if inputs.ndim == 5 else inputs
    inputs = to_memory_format(inputs.detach().contiguous(), channels_last)
    module = build_encoder(encoder, inputs.shape[1], tuple(inputs.shape[2:]),
                           encoder_kwargs=encoder_kwargs, channels_last=channels_last)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-4)

    def step():
        with autocast("cpu", precision):
            loss = module(inputs).float().square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def normalized_images(est, X):
    """Images ``X`` (uint8, ``(n, H, W)``) as a fitted pretrainer's encoder sees them at
    transform: on the [0, 1] scale, normalised with its statistics, in its layout."""
    x = torch.from_numpy(X).float().div_(255)[:, None]
    mean = torch.from_numpy(est.channel_mean_).view(1, -1, 1, 1)
    std = torch.from_numpy(est.channel_std_).view(1, -1, 1, 1)
    return to_memory_format((x - mean) / std, est.channels_last)


def bare_forward_images_per_s(encoder, images, n_steps, precision="auto"):
    """Forward pass of ``encoder`` on a batch of normalised ``images``, eval mode, no grad.

    ``images`` and ``encoder`` come in the pretrainer's layout; ``precision`` is its own.
    """
    encoder.eval()

    def step():
        with torch.inference_mode(), autocast("cpu", precision):
            encoder(images)

    return images.shape[0] / _time_steps(step, n_steps)


def random_init_features(encoder_name, encoder_kwargs, X, mean, std, seed=0, batch_size=512,
                         pooling="mean"):
    """Features of an untrained encoder (eval mode), on images normalised like a fit,
    pooled as the pretrainers' ``pooling`` parameter says."""
    torch.manual_seed(seed)
    encoder = make_encoder(encoder_name, 1, X.shape[1:3], **encoder_kwargs).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            x = torch.from_numpy(X[start : start + batch_size]).float().div_(255)[:, None]
            x = (x - mean) / std
            if pooling == "mean":
                out.append(encoder(x).numpy())
                continue
            maps = encoder.feature_map(x)  # pooling="pyramid", as BasePretrainer does
            regions = pyramid_regions(tuple(maps.shape[-2:]), (1, 2))
            codes = maps.flatten(2).transpose(1, 2)
            out.append(pool_regions(codes, regions, "mean").flatten(1).numpy())
    return np.concatenate(out)


def run_pretrainer(name, args, X_fit, X_train, X_test, encoder_kwargs):
    """Fit on ``X_fit``, transform ``X_train`` and ``X_test``, time against the bare encoder."""
    est = METHODS[name](
        encoder=args.encoder,
        encoder_kwargs=encoder_kwargs or None,
        max_epochs=args.epochs,
        max_time=args.max_time,
        random_state=args.seed,
        verbose=args.verbose,
        **args.params,
    )
    if args.batch_size is not None:
        est.set_params(batch_size=args.batch_size)
    start = time.perf_counter()
    est.fit(X_fit)
    fit_seconds = time.perf_counter() - start
    history = est.history_
    train_seconds = sum(h["seconds"] for h in history)
    images = sum(h["images"] for h in history)
    inputs_per_s = sum(h["inputs_per_s"] * h["seconds"] for h in history) / train_seconds

    start = time.perf_counter()
    train_features = est.transform(X_train)
    test_features = est.transform(X_test)
    transform_images_per_s = (len(X_train) + len(X_test)) / (time.perf_counter() - start)

    # One real batch: the method's encoder inputs, and the whole images transform sees.
    try:
        inputs, _ = est.pretext_batch(X_fit[: est.batch_size])
    except NotImplementedError:  # MAE: its bare baseline is the encoder on whole images
        inputs = normalized_images(est, X_fit[: est.batch_size])
    step = bare_train_step(args.encoder, fitted_encoder_kwargs(est), inputs, est.channels_last,
                           precision=est.precision)
    n_inputs = len(inputs.flatten(0, 1) if inputs.ndim == 5 else inputs)
    bare_train = n_inputs / _time_steps(step, args.steps)
    whole_images = normalized_images(est, X_fit[: est.batch_size])
    bare_forward = bare_forward_images_per_s(est.encoder_, whole_images, args.steps,
                                             est.precision)
    return est, train_features, test_features, {
        "fit_seconds": fit_seconds,
        "epochs": est.n_iter_,
        "fit_images": images,
        "fit_images_per_s": images / train_seconds,
        "fit_inputs_per_s": inputs_per_s,
        "encoder_input_shape": list(inputs.shape[-3:]),
        "bare_train_inputs_per_s": bare_train,
        "fit_vs_bare": inputs_per_s / bare_train,
        "transform_images_per_s": transform_images_per_s,
        "bare_forward_images_per_s": bare_forward,
        "transform_vs_bare": transform_images_per_s / bare_forward,
        "final_pretext_loss": history[-1]["loss"],
        "final_pretext_accuracy": history[-1]["pretext_accuracy"],
        "precision": resolve_precision(est.precision, est.device_),
        **({"patch_size": est.encoder_.patch_size} if hasattr(est.encoder_, "patch_size") else {}),
    }


COLUMNS = [
    ("row", "row"),
    ("linear_acc", "linear acc"),
    ("knn_acc", "kNN-20 acc"),
    ("mlp_acc", "MLP acc"),
    ("fit_seconds", "fit s"),
    ("fit_images_per_s", "fit img/s"),
    ("fit_vs_bare", "fit / bare fwd+bwd"),
    ("transform_images_per_s", "transform img/s"),
    ("transform_vs_bare", "transform / bare fwd"),
    ("precision", "precision"),
]


def markdown(results):
    """The README table of ``results`` (name -> row): accuracies, speeds, and the date
    and commit of each row; CPU, threads or torch get a column when rows differ."""
    columns = list(COLUMNS)
    columns += [(f"meta.{key}", title) for key, title in records.machine_columns(results)]
    columns.append(("measured", "date, commit"))
    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row, r in results.items():
        if "linear_acc" not in r:  # not a protocol row (e.g. vs_lightly.py's speed runs)
            continue
        meta = r.get("meta") or {}
        cells = []
        for key, _ in columns:
            if key == "row":
                v = row
            elif key == "measured":
                v = " ".join(str(meta[k]) for k in ("date", "commit") if meta.get(k)) or None
            elif key == "precision":  # rows of before the parameter ran in float32
                v = r.get(key, "float32")
            elif key.startswith("meta."):
                v = records.machine_value(meta, key[len("meta."):])
            else:
                v = r.get(key)
            if v is None:
                cells.append("–")
            elif key in ("linear_acc", "knn_acc", "mlp_acc"):
                cells.append(f"{v:.3f}")
            elif key in ("fit_vs_bare", "transform_vs_bare"):
                cells.append(f"{100 * v:.0f} %")
            elif isinstance(v, float):
                cells.append(f"{v:,.0f}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["raw", "random", "rotation"],
                        help=f"rows to run: raw, random, {', '.join(METHODS)}")
    parser.add_argument("--encoder", default="cnn")
    parser.add_argument("--encoder-kwargs", default="{}", help="JSON dict, e.g. "
                        "'{\"channels\": [16, 32]}'")
    parser.add_argument("--params", type=json.loads, default={},
                        help="JSON dict of pretrainer parameters, e.g. "
                             "'{\"lr_schedule\": \"cosine\", \"temperature\": 0.2}'")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-time", type=float, default=None,
                        help="fit budget in seconds per pretrainer")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="the method's default unless given")
    parser.add_argument("--n-train", type=int, default=60000,
                        help="images to fit the pretrainers on (probes use all 60,000)")
    parser.add_argument("--n-probe", type=int, default=60000,
                        help="training images the probes use (all 10,000 test images are "
                             "scored); fewer for slow encoders")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--steps", type=int, default=20,
                        help="timed steps of the bare encoder (at least 10 s of them)")
    parser.add_argument("--mlp-probe", action="store_true",
                        help="also score the features with an MLP (256 hidden units)")
    parser.add_argument("--mean-readout", action="store_true",
                        help='with a pyramid readout, also score the global-mean part of '
                             'the features (the pooling="mean" readout of the same fit) as '
                             'mean_linear_acc and mean_knn_acc')
    parser.add_argument("--seed", type=int, default=0,
                        help="random_state of the pretrainers; the untrained encoder's weights")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="merge results into this file")
    parser.add_argument("--markdown", type=Path, nargs="+", default=None,
                        help="print the README table of these results files and exit")
    args = parser.parse_args(argv)

    if args.markdown:
        results = records.load(args.markdown)
        line = records.machine_line(results)
        if line:
            print(f"All rows: {line}.\n")
        print(markdown(results))
        return
    unknown = set(args.methods) - {"raw", "random", *METHODS}
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}")
    encoder_kwargs = json.loads(args.encoder_kwargs)

    if args.threads:
        torch.set_num_threads(args.threads)
    meta = records.run_meta()  # the code imported now is the code measured
    X_train, y_train = load_fashion_mnist(subset="train", return_X_y=True)
    X_fit = X_train[: args.n_train]
    X_train, y_train = X_train[: args.n_probe], y_train[: args.n_probe]
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"train {X_train.shape}, test {X_test.shape}", flush=True)
    suffix = f"[{args.encoder}{'' if not encoder_kwargs else json.dumps(encoder_kwargs)}]"
    results = {}
    for method in args.methods:
        if method == "raw":
            row = "raw pixels"
            r = probe(X_train.reshape(len(X_train), -1) / 255.0, y_train,
                      X_test.reshape(len(X_test), -1) / 255.0, y_test, args.mlp_probe)
        elif method == "random":
            pooling = args.params.get("pooling", "mean")
            row = f"random-init {suffix}" + ("" if pooling == "mean" else f", pooling={pooling}")
            if args.seed != 0:  # the seed of the initial weights
                row += f", seed={args.seed}"
            mean, std = X_train.mean() / 255.0, X_train.std() / 255.0
            features = [random_init_features(args.encoder, encoder_kwargs, X, mean, std,
                                             seed=args.seed, pooling=pooling)
                        for X in (X_train, X_test)]
            r = probe(features[0], y_train, features[1], y_test, args.mlp_probe)
        else:
            budget = f"{args.epochs} ep" if args.max_time is None else f"{args.max_time:.0f} s"
            params = "".join(f", {k}={v}" for k, v in args.params.items())
            if args.batch_size is not None:
                params = f", batch_size={args.batch_size}{params}"
            if args.seed != 0:
                params += f", seed={args.seed}"
            row = f"{method} {suffix}{params}, fit on {args.n_train} images, {budget}"
            if args.n_probe < 60000:
                row += f", probes on {args.n_probe}"
            row += records.run_as()
            est, f_train, f_test, r = run_pretrainer(
                method, args, X_fit, X_train, X_test, encoder_kwargs
            )
            r.update(probe(f_train, y_train, f_test, y_test, args.mlp_probe))
            n = est.encoder_.num_features  # the pyramid has 5x, the mean first
            r["pooling"] = "pyramid" if f_train.shape[1] == 5 * n else "mean"
            if args.mean_readout and r["pooling"] == "pyramid":
                mean = probe(f_train[:, :n], y_train, f_test[:, :n], y_test)
                r.update({f"mean_{key}": value for key, value in mean.items()})
        print(json.dumps({row: r}), flush=True)
        results[row] = r

    if args.json:
        results = records.merge(args.json, results, meta)
    print(markdown(results))


if __name__ == "__main__":
    main()
