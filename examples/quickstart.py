"""Quickstart: self-supervised features against raw pixels, with few labels.

Runs on scikit-learn's bundled digits (1,797 8x8 images), so it needs no download.

1. Pretrain a RotationPretrainer on half of the images *without labels*: the network
   learns to tell by how much (0/90/180/270 degrees) an image was rotated.
2. With only a few labelled images per class, train a logistic regression on
   (a) raw pixels and (b) the pretrainer's frozen features, and compare test accuracy.

The pretrainer is a scikit-learn transformer: frozen with ``FrozenEstimator``, it sits in
a Pipeline like PCA would. 8x8 digits are a hard case for rotation prediction (the task is
solved from a few pixels); ``benchmarks/fashion_mnist.py`` has the figures on 28x28 images.
"""

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import RotationPretrainer

digits = load_digits()
X, y = digits.images, digits.target  # (1797, 8, 8) images, labels 0-9
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)

# Self-supervised step: every training image, no labels.
start = time.perf_counter()
pretrainer = RotationPretrainer(max_epochs=3, batch_size=128, random_state=0)
pretrainer.fit(X_train)
print(
    f"RotationPretrainer: {pretrainer.n_iter_} epochs in {time.perf_counter() - start:.0f} s, "
    f"rotation accuracy {pretrainer.history_[-1]['pretext_accuracy']:.2f} (chance 0.25)"
)

# Supervised step with few labels: n images per class.
raw = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
ssl = make_pipeline(
    FrozenEstimator(pretrainer), StandardScaler(), LogisticRegression(max_iter=2000)
)
rng = np.random.RandomState(0)
print(f"{'labels/class':>12} {'raw pixels':>11} {'rotation features':>18}")
for n_per_class in (5, 10, 50):
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y_train == c), n_per_class, replace=False) for c in range(10)]
    )
    raw.fit(X_train[idx].reshape(len(idx), -1), y_train[idx])
    ssl.fit(X_train[idx], y_train[idx])  # FrozenEstimator: the pretrainer is not refitted
    raw_acc = raw.score(X_test.reshape(len(X_test), -1), y_test)
    print(f"{n_per_class:>12} {raw_acc:>11.3f} {ssl.score(X_test, y_test):>18.3f}")
