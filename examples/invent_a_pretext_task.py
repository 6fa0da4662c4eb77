"""Invent a pretext task in a few lines with PretextPretrainer.

1. Rebuild rotation prediction (Gidaris et al. 2018) as a plain function, and check
   that it gives exactly the features of RotationPretrainer for the same seed.
2. Invent a second task (which quadrants were mirrored?) and compare it with
   rotation, with our IntruderPretrainer and with an untrained encoder: every
   method trains for the same time on Fashion-MNIST images, then a linear probe
   (StandardScaler + LogisticRegression) is fitted on the encoder's features.

About 1-2 minutes on a CPU. On a busy machine, run it with OMP_NUM_THREADS=1: the
multi-threaded BLAS of the linear probe can otherwise stall for tens of seconds.
"""

import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import IntruderPretrainer, PretextPretrainer, RotationPretrainer
from skssl.datasets import load_fashion_mnist


# 1. Rotation prediction: four rotated copies of every image, predict the quarter turns.
def rotate(x, generator):
    inputs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    targets = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return inputs, targets


def rotation(**params):
    # 4 classes, cross-entropy, RotationPretrainer's MLP head; the rest is the base class.
    return PretextPretrainer(rotate, n_outputs=4, hidden_size=256, **params)


# 2. A new task: mirror each quadrant left-right with probability 1/2, say which (BCE).
def mirror_quadrants(x, generator):
    B, C, H, W = x.shape
    flips = torch.rand(B, 2, 2, generator=generator, device=generator.device).to(x.device) < 0.5
    quadrants = x.reshape(B, C, 2, H // 2, 2, W // 2)  # H and W even, as 28x28
    mirrored = torch.where(flips[:, None, :, None, :, None], quadrants.flip(-1), quadrants)
    return mirrored.reshape(B, C, H, W), flips.reshape(B, 4)


if __name__ == "__main__":
    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X_train, y_train = X[:3000], y[:3000]
    X_test, y_test = X[-1000:], y[-1000:]

    same = dict(max_epochs=1, batch_size=128, random_state=0, device="cpu")
    ours = rotation(**same).fit_transform(X_train[:512])
    builtin = RotationPretrainer(**same).fit_transform(X_train[:512])
    print(f"PretextPretrainer(rotate) == RotationPretrainer: {np.array_equal(ours, builtin)}")
    assert np.array_equal(ours, builtin)

    budget = dict(max_epochs=1000, max_time=15, batch_size=128, random_state=0)
    methods = {
        "untrained encoder (1 batch)": rotation(**{**budget, "max_time": 1e-3}),
        "rotation (PretextPretrainer)": rotation(**budget),
        "mirrored quadrants (PretextPretrainer)": PretextPretrainer(
            mirror_quadrants, n_outputs=4, loss="bce", **budget
        ),
        "IntruderPretrainer": IntruderPretrainer(**budget),
    }
    print(f"\n{'pretext task':40s} {'fit s':>6s} {'epochs':>6s} {'probe accuracy':>15s}")
    for name, est in methods.items():
        start = time.perf_counter()
        est.fit(X_train)
        seconds = time.perf_counter() - start
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        probe.fit(est.transform(X_train), y_train)
        accuracy = probe.score(est.transform(X_test), y_test)
        print(f"{name:40s} {seconds:6.1f} {est.n_iter_:6d} {accuracy:15.3f}")
