"""Searches across processes: joblib's loky workers, one process per candidate fit.

scikit-learn sends each fit of a search to a worker process by pickling the estimator
(and memory-maps large inputs there, read-only). Each worker must use its share of the
cores, not all of them: joblib's loky backend starts workers with ``OMP_NUM_THREADS``
(and the MKL/OpenBLAS equivalents) set to ``cpu_count() // n_jobs``, and torch reads it
when it starts in the worker. These tests pin that skssl keeps to it (skssl itself
never sets torch's thread count) and that the results are those of ``n_jobs=1``.

On a CPU, the last bits of a float computation depend on how many threads share it
(reductions are split per thread), so "the same results" holds for fits that get the
same number of torch threads; the tests give every fit one thread, in the main process
(``conftest.py``) and in the workers (``inner_max_num_threads=1``).
"""

import os

import joblib
import numpy as np
import torch
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from torch import nn

from skssl import RotationPretrainer, SimCLRPretrainer

FAST = dict(encoder_kwargs={"channels": (4, 8)}, max_epochs=1, batch_size=64, device="cpu",
            random_state=0)


def _images(n=1400, seed=0):
    """Random 28x28 uint8 blobs and their class (a bright quadrant): 1.1 MB, over joblib's
    1 MB threshold, so the workers read a read-only memmap of them."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 4, n)
    X = rng.randint(0, 80, (n, 28, 28)).astype(np.uint8)
    for k in range(4):
        r, c = divmod(k, 2)
        X[y == k, 14 * r : 14 * r + 14, 14 * c : 14 * c + 14] += 120
    return X, y


class ThreadRecordingCNN(nn.Module):
    """A tiny encoder that records how many threads torch had when it was built."""

    def __init__(self):
        super().__init__()
        self.torch_threads = torch.get_num_threads()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = 4

    def forward(self, x):
        return self.net(x)


def test_grid_search_n_jobs_2_gives_the_results_of_n_jobs_1():
    X, y = _images()
    grid = {"simclrpretrainer__learning_rate": [1e-3, 3e-3]}
    results = {}
    for n_jobs in (1, 2):
        pipe = make_pipeline(SimCLRPretrainer(**FAST), LogisticRegression(max_iter=200))
        with parallel_config(backend="loky", inner_max_num_threads=1):
            search = GridSearchCV(pipe, grid, cv=2, n_jobs=n_jobs).fit(X, y)
        results[n_jobs] = search
    one, two = results[1], results[2]
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(one.cv_results_[key], two.cv_results_[key], err_msg=key)
    assert one.best_params_ == two.best_params_
    # the refit runs in the main process both times: the same model
    np.testing.assert_array_equal(one.best_estimator_[0].transform(X[:100]),
                                  two.best_estimator_[0].transform(X[:100]))


def test_workers_use_their_share_of_the_cores_and_send_back_fitted_models():
    X, _ = _images(600)
    est = RotationPretrainer(**{**FAST, "encoder": ThreadRecordingCNN, "encoder_kwargs": None})
    cv = cross_validate(est, X, cv=2, n_jobs=2, return_estimator=True)
    # loky's default: cpu_count() // n_jobs threads per worker, or the parent's setting
    expected = int(os.environ.get("OMP_NUM_THREADS", max(joblib.cpu_count() // 2, 1)))
    for fitted in cv["estimator"]:
        assert fitted.encoder_.torch_threads == expected
        # fitted in a worker, pickled back: a usable model
        assert fitted.transform(X[:5]).shape == (5, 4)
    assert np.all(np.isfinite(cv["test_score"]))
