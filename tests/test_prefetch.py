"""Data faster than the step: the next batch is read in a background thread.

Rows that may wait for a disk or decoding (a memmap, a dataset) are read one batch
ahead in a background thread; every batch is converted to float in the caller's thread
(torch operations in a second thread compete with the step for the cores). Same
batches in the same order, so the same results (``test_fingerprints.py`` pins them bit
for bit); reading errors surface in the caller; stopping early stops reading.
"""

import threading
import time
from contextlib import closing

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skssl import RotationPretrainer
from skssl._data import check_images, prefetch

TINY = dict(encoder_kwargs={"channels": (4,)}, max_epochs=2, batch_size=16, device="cpu",
            random_state=0)
X = np.round(load_digits().images[:64] * 255 / 16).astype(np.uint8)


def recorder(events):
    def read(i):
        events.append(("read", i, threading.current_thread().name))
        return i

    def convert(i):
        events.append(("convert", i, threading.current_thread().name))
        return torch.tensor(i)

    return read, convert


def test_prefetch_reads_the_next_item_while_the_caller_works_and_converts_in_the_caller():
    events = []
    for i, x in prefetch(*recorder(events), range(4), "cpu"):
        assert int(x) == i
        time.sleep(0.05)  # the caller's step: the next read happens meanwhile
        events.append(("used", i, None))
    reads = [e for e in events if e[0] == "read"]
    assert [e[1] for e in reads] == [0, 1, 2, 3]
    assert all(e[2].startswith("skssl-prefetch") for e in reads)
    caller = threading.current_thread().name
    assert [e[2] for e in events if e[0] == "convert"] == [caller] * 4
    # item i + 1 is read before item i has been used
    order = [(e[0], e[1]) for e in events]
    for i in range(3):
        assert order.index(("read", i + 1)) < order.index(("used", i))


def test_prefetch_without_background_reads_in_the_caller():
    events = []
    assert [int(x) for _, x in prefetch(*recorder(events), range(3), "cpu",
                                        background=False)] == [0, 1, 2]
    assert {e[2] for e in events} == {threading.current_thread().name}


def test_only_rows_that_may_wait_for_storage_are_read_in_the_background(tmp_path):
    np.save(tmp_path / "x.npy", X)
    assert check_images(np.load(tmp_path / "x.npy", mmap_mode="r")).read_from_storage
    assert check_images(FailingDataset(X, bad=-1)).read_from_storage
    assert not check_images(X).read_from_storage
    assert not check_images(torch.from_numpy(X)).read_from_storage


def test_prefetch_stops_when_closed_and_raises_read_errors():
    read_items = []

    def read(i):
        read_items.append(i)
        if i == 5:
            raise OSError("disk gone")
        return i

    with closing(prefetch(read, torch.tensor, range(100), "cpu")) as batches:
        for i, _ in batches:
            if i == 2:
                break
    assert read_items == [0, 1, 2, 3]  # one ahead, then no more
    with pytest.raises(OSError, match="disk gone"):
        for _ in prefetch(read, torch.tensor, range(100), "cpu"):
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
