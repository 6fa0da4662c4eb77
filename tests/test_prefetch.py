"""Data faster than the step: the next batch is loaded in a background thread.

Same batches in the same order, so the same results (``test_fingerprints.py`` pins them
bit for bit); loading errors surface in the caller; stopping early stops loading.
"""

import threading
import time
from contextlib import closing

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skssl import RotationPretrainer
from skssl._data import prefetch

TINY = dict(encoder_kwargs={"channels": (4,)}, max_epochs=2, batch_size=16, device="cpu",
            random_state=0)
X = np.round(load_digits().images[:64] * 255 / 16).astype(np.uint8)


def test_prefetch_loads_the_next_item_while_the_caller_works():
    events = []

    def load(i):
        events.append(("load", i, threading.current_thread().name))
        return torch.tensor(i)

    for i, x in prefetch(load, range(4), "cpu"):
        assert int(x) == i
        time.sleep(0.05)  # the caller's step: the next load happens meanwhile
        events.append(("used", i, None))
    loads = [e for e in events if e[0] == "load"]
    assert [e[1] for e in loads] == [0, 1, 2, 3]
    assert all(e[2].startswith("skssl-prefetch") for e in loads)
    # item i + 1 is loaded before item i has been used
    order = [(e[0], e[1]) for e in events]
    for i in range(3):
        assert order.index(("load", i + 1)) < order.index(("used", i))


def test_prefetch_stops_when_closed_and_raises_load_errors():
    loaded = []

    def load(i):
        loaded.append(i)
        if i == 5:
            raise OSError("disk gone")
        return torch.tensor(i)

    with closing(prefetch(load, range(100), "cpu")) as batches:
        for i, _ in batches:
            if i == 2:
                break
    assert loaded == [0, 1, 2, 3]  # one ahead, then no more
    with pytest.raises(OSError, match="disk gone"):
        for _ in prefetch(load, range(100), "cpu"):
            pass


class FailingDataset:
    """Images read one by one; reading image ``bad`` fails (a file gone midway)."""

    def __init__(self, images, bad):
        self.images, self.bad, self.threads = images, bad, set()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        self.threads.add(threading.current_thread().name.split("_")[0])
        if i == self.bad and threading.current_thread().name.startswith("skssl-prefetch"):
            raise OSError(f"cannot read image {i}")
        return self.images[i]


def test_fit_loads_in_the_background_and_a_load_error_leaves_the_model_as_it_was():
    est = RotationPretrainer(**TINY).fit(X)
    before = est.transform(X)
    data = FailingDataset(X, bad=40)
    with pytest.raises(OSError, match="cannot read image 40"):
        est.partial_fit(data)
    assert "skssl-prefetch" in data.threads  # training batches were read in the background
    assert est.n_iter_ == 2
    np.testing.assert_array_equal(est.transform(X), before)
