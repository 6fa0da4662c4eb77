"""Real image data that needs no download: Fashion-MNIST from Debian's package."""

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_fashion_mnist"]

DEFAULT_FASHION_MNIST_HOME = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path):
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {shape}, got {data.size} values.")
    return data.reshape(shape).copy()


def _find(home, stem):
    for name in (stem + ".gz", stem):
        if (home / name).exists():
            return home / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {home}. Install it with "
        "`apt-get install -y dataset-fashion-mnist` (Debian/Ubuntu), or pass "
        "data_home= a folder holding the four IDX files of "
        "https://github.com/zalandoresearch/fashion-mnist. Nothing is downloaded."
    )


def load_fashion_mnist(*, subset="train", return_X_y=False, data_home=None):
    """Load Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from local IDX files.

    70,000 grayscale 28x28 images of 10 kinds of clothing: 60,000 for training and
    10,000 for testing. The files come from Debian's ``dataset-fashion-mnist`` package
    (``/usr/share/datasets/fashion-mnist``) or from ``data_home``; nothing is downloaded.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Which split to load; ``"all"`` is train followed by test.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.
    data_home : str or path-like, default=None
        Folder with the IDX files (gzipped or not). Defaults to the ``SKSSL_FASHION_MNIST``
        environment variable, then to ``/usr/share/datasets/fashion-mnist``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images`` (n, 28, 28) uint8, ``data`` (n, 784) uint8 (a view of ``images``),
        ``target`` (n,) int64, ``target_names`` and ``DESCR``.
    (images, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        When the files are absent, with the command that installs them.

    Examples
    --------
    >>> from skssl.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)
    >>> X.shape, X.dtype, y[:3]
    ((10000, 28, 28), dtype('uint8'), array([9, 2, 1]))
    """
    if subset not in ("train", "test", "all"):
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}.")
    if data_home is None:
        data_home = os.environ.get("SKSSL_FASHION_MNIST", DEFAULT_FASHION_MNIST_HOME)
    home = Path(data_home)
    splits = ["train", "test"] if subset == "all" else [subset]
    images, target = [], []
    for split in splits:
        image_stem, label_stem = _FILES[split]
        images.append(_read_idx(_find(home, image_stem)))
        target.append(_read_idx(_find(home, label_stem)).astype(np.int64))
    images = np.concatenate(images) if len(images) > 1 else images[0]
    target = np.concatenate(target) if len(target) > 1 else target[0]
    if return_X_y:
        return images, target
    return Bunch(
        images=images,
        data=images.reshape(len(images), -1),
        target=target,
        target_names=list(FASHION_MNIST_CLASSES),
        DESCR=(
            f"Fashion-MNIST ({subset}): {len(images)} grayscale 28x28 images of 10 "
            "clothing classes (Xiao, Rasul & Vollgraf 2017), read from " + str(home)
        ),
    )
