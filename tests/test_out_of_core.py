"""Out of core both ways: fit and transform read memmaps and indexable datasets batch by
batch, never whole, and ``transform(X, out=...)`` writes into the caller's array."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skssl import RotationPretrainer, SimCLRPretrainer, VisualBoW
from skssl._data import RowSource, page_releaser

TINY = dict(encoder_kwargs={"channels": (4,)}, max_epochs=1, batch_size=32, device="cpu",
            pooling="mean", random_state=0)
X = np.round(load_digits().images[:96] * 255 / 16).astype(np.uint8)


class Dataset:
    """A dataset class as users write them: ``len`` and one image per index.

    Converting it whole fails, so a test passes only if skssl reads it image by image.
    """

    def __init__(self, images, as_tensor=False):
        self.images = images
        self.as_tensor = as_tensor
        self.keys = []

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        self.keys.append(i)
        image = self.images[i]
        return torch.from_numpy(image) if self.as_tensor else image

    def __array__(self, *args, **kwargs):
        raise AssertionError("the dataset was converted whole")

    def __iter__(self):
        raise AssertionError("the dataset was iterated whole")


class SliceableArray(Dataset):
    """An array-like with shape and dtype that reads slices (as h5py and zarr arrays do)."""

    @property
    def shape(self):
        return self.images.shape

    @property
    def dtype(self):
        return self.images.dtype


@pytest.fixture(scope="module")
def rotation():
    return RotationPretrainer(**TINY).fit(X)


@pytest.mark.parametrize("cls", [RotationPretrainer, SimCLRPretrainer])
@pytest.mark.parametrize("source", [Dataset, SliceableArray])
def test_fit_and_transform_read_a_dataset_image_by_image(cls, source):
    reference = cls(**TINY).fit(X)
    data = source(X, as_tensor=source is Dataset)
    est = cls(**TINY).fit(data)
    assert est.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(est.transform(data), reference.transform(X))
    keys = data.keys
    assert all(isinstance(k, int) for k in keys) if source is Dataset else any(
        isinstance(k, slice) for k in keys)


def test_memmap_fit_equals_array_fit(tmp_path):
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    a, b = RotationPretrainer(**TINY).fit(X), RotationPretrainer(**TINY).fit(mm)
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.transform(X), b.transform(mm))


def test_visual_bow_reads_a_dataset():
    bow = VisualBoW(n_words=8, random_state=0)
    np.testing.assert_allclose(bow.fit(Dataset(X)).transform(Dataset(X)),
                               VisualBoW(n_words=8, random_state=0).fit(X).transform(X))


def test_transform_writes_into_a_memmap(rotation, tmp_path):
    out = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32,
                                    shape=(len(X), 4))
    assert rotation.transform(Dataset(X), out=out) is out
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), rotation.transform(X))


@pytest.mark.parametrize(
    "out, error, match",
    [
        (np.zeros((len(X), 5), np.float32), ValueError,
         r"out has shape \(96, 5\), but RotationPretrainer.transform writes 96 rows of 4 "
         r"features: allocate out with shape \(96, 4\)"),
        (np.zeros((len(X) - 1, 4), np.float32), ValueError, r"out has shape \(95, 4\)"),
        (np.zeros((len(X), 4)), ValueError, "out has dtype float64, but the features are "
         "float32: allocate out with dtype=np.float32"),
        (torch.zeros(len(X), 4), TypeError, "out must be a numpy array or memmap of shape "
         r"\(96, 4\) and dtype float32, got Tensor"),
    ],
)
def test_transform_out_checked(rotation, out, error, match):
    with pytest.raises(error, match=match):
        rotation.transform(X, out=out)


def test_transform_out_read_only_or_overlapping(rotation, tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((len(X), 4), np.float32))
    with pytest.raises(ValueError, match="out is read-only .* mode='r\\+' or 'w\\+'"):
        rotation.transform(X, out=np.load(tmp_path / "f.npy", mmap_mode="r"))
    flat = RotationPretrainer(**TINY).fit(X.reshape(len(X), -1).astype(np.float32))
    images = X.reshape(len(X), -1).astype(np.float32)
    with pytest.raises(ValueError, match="out shares memory with X"):
        flat.transform(images, out=images[:, :4])
    np.testing.assert_array_equal(images, X.reshape(len(X), -1))  # untouched


class Labelled(Dataset):
    def __getitem__(self, i):
        return self.images[i], 0


class Ragged(Dataset):
    def __getitem__(self, i):
        return self.images[i][: 8 - (i == 50)]


class Words(Dataset):
    def __getitem__(self, i):
        return np.array(["a"] * 4)


@pytest.mark.parametrize(
    "data, error, match",
    [
        (Labelled(X), TypeError, r"X\[0\] is a tuple of 2: skssl reads X\[i\] as image i"),
        (Ragged(X), ValueError, r"X\[50\] is an image of shape \(7, 8\) and dtype uint8, but "
         r"X\[0\] has shape \(8, 8\)"),
        (Words(X), TypeError, r"Images must be numeric .* X\[0\] has dtype <U1"),
        (Dataset(X[:0]), ValueError, r"Found array with 0 sample\(s\)"),
    ],
)
def test_bad_datasets(data, error, match):
    with pytest.raises(error, match=match):
        RotationPretrainer(**TINY).fit(data)


def test_row_source_reshape():
    rows = RowSource(Dataset(X)).reshape(-1, 64)
    assert rows.shape == (96, 64) and rows.ndim == 2
    np.testing.assert_array_equal(rows[np.array([3, 5])], X[[3, 5]].reshape(2, 64))
    with pytest.raises(ValueError, match="cannot reshape"):
        RowSource(Dataset(X)).reshape(-1, 65)


def _rss_file_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("RssFile"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc")
def test_transform_releases_memmap_pages(rotation, tmp_path):
    n = 200_000  # 12.8 MB of 8x8 images, 3.2 MB of features
    X_big = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8,
                                      shape=(n, 8, 8))
    X_big[:] = np.resize(X, (n, 8, 8))
    X_big.flush()
    del X_big
    images = np.load(tmp_path / "x.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32,
                                    shape=(n, 4))
    est = copy.deepcopy(rotation).set_params(batch_size=4096)
    est.transform(images[:256], out=out[:256])  # warm up
    before = _rss_file_mb()
    est.transform(images, out=out)
    assert _rss_file_mb() - before < 4  # without releasing the pages: 16 MB
    np.testing.assert_array_equal(out[: len(X)], rotation.transform(X))


def test_page_releaser_only_of_shared_memmaps(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((4096, 8), np.float32))
    assert page_releaser(np.load(tmp_path / "x.npy", mmap_mode="r"))(4096) > 0
    private = np.load(tmp_path / "x.npy", mmap_mode="c")
    private[:] = 2.0
    assert page_releaser(private)(4096) == 0  # its changes live in its pages
    assert float(private.sum()) == 2.0 * private.size
    assert page_releaser(np.ones((4096, 8)))(4096) == 0
