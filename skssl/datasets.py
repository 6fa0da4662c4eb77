"""Image data: Fashion-MNIST (Debian's package, or a checked download) and image folders."""

import gzip
import hashlib
import logging
import os
import urllib.error
import urllib.request
from numbers import Integral
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from sklearn.utils import Bunch

from .persistence import _write_atomically

__all__ = ["fetch_fashion_mnist", "load_fashion_mnist", "load_image_folder"]

logger = logging.getLogger(__name__)

DEFAULT_FASHION_MNIST_HOME = "/usr/share/datasets/fashion-mnist"

# The original files, served over plain HTTP (S3 website endpoints have no HTTPS): the
# SHA-256 checks below are what makes a download trustworthy.
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# SHA-256 of the original .gz files, as recorded by TensorFlow Datasets
# (tensorflow_datasets/url_checksums/fashion_mnist.txt, with their sizes 26421880, 29515,
# 4422102 and 5148 bytes). Debian ships them with another gzip header (no file name,
# another time stamp: each file is shorter by exactly its name), so Debian's files have
# other hashes (and MD5s than upstream's README lists); they are never checked.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz":
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz":
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz":
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# What load_image_folder reads (case-insensitive); Pillow decodes them all.
IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
_GRAYSCALE_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


# ---------------------------------------------------------------------- Fashion-MNIST
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


def _splits(subset):
    if subset not in ("train", "test", "all"):
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}.")
    return ["train", "test"] if subset == "all" else [subset]


def _stems(subset):
    return [stem for split in _splits(subset) for stem in _FILES[split]]


def _locate(home, stem):
    """The IDX file ``stem`` in ``home``, gzipped or not; None when absent."""
    for name in (stem + ".gz", stem):
        if (home / name).is_file():
            return home / name
    return None


def _find(home, stem):
    path = _locate(home, stem)
    if path is None:
        raise FileNotFoundError(
            f"Fashion-MNIST file {stem}[.gz] not found in {home}. Install it with "
            "`apt-get install -y dataset-fashion-mnist` (Debian/Ubuntu), or pass "
            "data_home= a folder holding the four IDX files of "
            "https://github.com/zalandoresearch/fashion-mnist, or use "
            "fetch_fashion_mnist(), which downloads them."
        )
    return path


def _read_fashion_mnist(home, subset, return_X_y):
    """Fashion-MNIST's ``subset`` from the IDX files in ``home``, as a Bunch or (X, y)."""
    images, target = [], []
    for split in _splits(subset):
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


def _local_fashion_mnist_home():
    return Path(os.environ.get("SKSSL_FASHION_MNIST", DEFAULT_FASHION_MNIST_HOME))


def load_fashion_mnist(*, subset="train", return_X_y=False, data_home=None):
    """Load Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from local IDX files.

    70,000 grayscale 28x28 images of 10 kinds of clothing: 60,000 for training and
    10,000 for testing. The files come from Debian's ``dataset-fashion-mnist`` package
    (``/usr/share/datasets/fashion-mnist``) or from ``data_home``; nothing is downloaded
    (:func:`fetch_fashion_mnist` downloads them when they are absent).

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

    See Also
    --------
    fetch_fashion_mnist : The same data, downloaded and cached when not installed.

    Examples
    --------
    >>> from skssl.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)
    >>> X.shape, X.dtype, y[:3]
    ((10000, 28, 28), dtype('uint8'), array([9, 2, 1]))
    """
    _splits(subset)
    home = _local_fashion_mnist_home() if data_home is None else Path(data_home)
    return _read_fashion_mnist(home, subset, return_X_y)


def _data_home(data_home):
    """skssl's data folder, as scikit-learn's ``get_data_home`` finds its own."""
    if data_home is None:
        data_home = os.environ.get("SKSSL_DATA", Path("~") / "skssl_data")
    return Path(data_home).expanduser()


def _download(url, path, sha256):
    """Download ``url`` to ``path`` if its SHA-256 is ``sha256``; write nothing otherwise."""
    logger.info("Downloading %s to %s", url, path)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            blob = response.read()
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, a malformed URL
        raise OSError(
            f"Downloading {url} failed: {exc}. Install Debian's dataset-fashion-mnist "
            f"package, copy the four files into {path.parent}, or pass url= a mirror."
        ) from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise OSError(
            f"{url} has SHA-256 {digest}, not the expected {sha256}: the download is "
            "damaged or not the original file, and was not kept. Try again, or pass url= "
            "another mirror."
        )
    # Atomic: an interrupted download never leaves a partial file under the final name.
    _write_atomically(path, blob)


def fetch_fashion_mnist(*, data_home=None, subset="train", return_X_y=False,
                        download_if_missing=True, url=FASHION_MNIST_URL):
    """Load Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), downloading it if needed.

    The same data as :func:`load_fashion_mnist`, found in this order: the local files
    that :func:`load_fashion_mnist` reads (the folder in the ``SKSSL_FASHION_MNIST``
    environment variable, else Debian's package in ``/usr/share/datasets/fashion-mnist``);
    else a copy cached in ``data_home/fashion-mnist``; else the files of ``subset`` are
    downloaded from ``url`` into that cache, each checked against its SHA-256 before it
    is written (atomically: a temporary file renamed into place). A damaged download
    raises an error and leaves no file.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where skssl caches data sets, as scikit-learn's ``data_home``; the files go to
        its ``fashion-mnist`` subfolder. Defaults to the ``SKSSL_DATA`` environment
        variable, then to ``~/skssl_data``.
    subset : {"train", "test", "all"}, default="train"
        Which split to load; ``"all"`` is train followed by test.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.
    download_if_missing : bool, default=True
        Whether to download the files when they are neither installed nor cached;
        if False, a missing file raises a FileNotFoundError.
    url : str, default=FASHION_MNIST_URL
        The folder the files are downloaded from: the official host by default,
        ``http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/``, which serves
        plain HTTP only (an S3 website); the SHA-256 checks guard the files.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images`` (n, 28, 28) uint8, ``data`` (n, 784) uint8 (a view of ``images``),
        ``target`` (n,) int64, ``target_names`` and ``DESCR``, which names the folder
        read.
    (images, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        When the files are neither installed nor cached and ``download_if_missing`` is
        False.
    OSError
        When a download fails, or a downloaded file does not match its SHA-256.

    See Also
    --------
    load_fashion_mnist : Local files only; never downloads.

    Examples
    --------
    >>> from skssl.datasets import fetch_fashion_mnist
    >>> test = fetch_fashion_mnist(subset="test")
    >>> test.images.shape, test.target_names[:3]
    ((10000, 28, 28), ['T-shirt/top', 'Trouser', 'Pullover'])
    """
    stems = _stems(subset)
    local = _local_fashion_mnist_home()
    if all(_locate(local, stem) for stem in stems):
        return _read_fashion_mnist(local, subset, return_X_y)
    cache = _data_home(data_home) / "fashion-mnist"
    missing = [stem for stem in stems if _locate(cache, stem) is None]
    if missing and not download_if_missing:
        raise FileNotFoundError(
            f"Fashion-MNIST is not installed in {local} nor cached in {cache} (missing "
            f"{', '.join(missing)}), and download_if_missing is False. Pass "
            "download_if_missing=True, or install Debian's dataset-fashion-mnist package."
        )
    if missing:
        cache.mkdir(parents=True, exist_ok=True)
    for stem in missing:
        name = stem + ".gz"
        _download(url.rstrip("/") + "/" + name, cache / name, FASHION_MNIST_SHA256[name])
    return _read_fashion_mnist(cache, subset, return_X_y)


# ---------------------------------------------------------------------- image folders
def _image_files(folder):
    """The image files under ``folder`` (recursively), sorted; hidden entries skipped."""
    files = (
        path for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    return sorted(files, key=lambda path: path.relative_to(folder).parts)


def _read_image(path, color_mode, size):
    """One image file as uint8 ``(h, w)`` or ``(h, w, 3)``; "auto" keeps its own kind."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # photos upright, as viewers show them
            if image.mode.startswith("I") or image.mode == "F":
                image = _to_8_bit(image, path)
            gray = image.mode in _GRAYSCALE_MODES
            if color_mode == "grayscale" or (color_mode == "auto" and gray):
                image = image.convert("L")
            else:
                image = image.convert("RGB")  # drops alpha, as torchvision's ImageFolder
            if size is not None:
                image = image.resize(size[::-1], Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path} cannot be read as an image: {exc}") from None


def _to_8_bit(image, path):
    """A 16-bit grayscale image scaled to 8 bits (Pillow's convert would clip at 255)."""
    values = np.asarray(image)
    if image.mode == "F" or values.min() < 0 or values.max() > 65535:
        raise ValueError(
            f"{path} has {image.mode} pixels with values in [{values.min()}, {values.max()}]; "
            "load_image_folder reads 8- and 16-bit images: convert it first."
        )
    return Image.fromarray(np.round(values / 257.0).astype(np.uint8))


def _check_image_size(image_size):
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, Integral) else image_size
    if not isinstance(size, tuple | list) or len(size) != 2 or not all(
        isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in size
    ):
        raise ValueError(
            f"image_size must be a positive int or a (height, width) pair, got {image_size!r}."
        )
    return tuple(int(v) for v in size)


def load_image_folder(path, *, image_size=None, color_mode="auto", return_X_y=False):
    """Load a folder of image files (PNG, JPEG, ...) as a uint8 array, with Pillow.

    Two layouts, as torchvision's ``ImageFolder``: each subfolder of ``path`` is a class
    (``path/cat/1.png``, ``path/dog/a/2.jpg``: the class names sorted, images found
    anywhere below their class folder), or ``path`` holds the images themselves (no
    labels). Files are read in sorted order, so the same folder always gives the same
    array. Files whose extension is not one of ``.bmp .jpeg .jpg .png .tif .tiff .webp``
    (any case), hidden files and folders (``.name``), and subfolders without images are
    ignored. JPEG photos are turned upright by their EXIF orientation; an alpha channel
    is dropped; 16-bit grayscale is scaled to 8 bits.

    The images come in the channels-last layout every skssl estimator takes:
    ``(n, height, width)`` for grayscale, ``(n, height, width, 3)`` for colour.

    Parameters
    ----------
    path : str or path-like
        The folder.
    image_size : int or tuple of (int, int), default=None
        Resize every image to ``(height, width)`` (an int: a square), bilinearly with
        antialiasing; the aspect ratio is not kept. ``None`` keeps the sizes, which must
        then all be the same.
    color_mode : {"auto", "grayscale", "rgb"}, default="auto"
        ``"auto"``: grayscale when every image is grayscale, else RGB (grayscale images
        then get 3 equal channels). ``"grayscale"`` converts colour images to luminance
        (ITU-R 601-2), ``"rgb"`` grayscale ones to 3 equal channels.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``images`` uint8 ``(n, h, w)`` or ``(n, h, w, 3)``; ``data``, ``images`` as
        ``(n, h*w*c)`` rows (a view); ``target`` ``(n,)`` int64, the index of each
        image's class in ``target_names`` (the sorted subfolder names), both None for a
        folder of images without subfolders; ``filenames``, an array of the files'
        paths (``path`` joined with the file's path in it), in the order of the images;
        ``DESCR``.
    (images, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    NotADirectoryError
        When ``path`` is a file.
    ValueError
        When the folder holds no image file, holds images next to class subfolders, a
        file cannot be decoded (the message names it), or, without ``image_size``, two
        images differ in size (the message names both).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skssl.datasets import load_image_folder
    >>> folder = tempfile.mkdtemp()
    >>> for label, value in [("cat", 0), ("dog", 255)]:
    ...     os.mkdir(os.path.join(folder, label))
    ...     for i in range(2):
    ...         image = Image.fromarray(np.full((8, 6), value, dtype=np.uint8))
    ...         image.save(os.path.join(folder, label, f"{i}.png"))
    >>> data = load_image_folder(folder)
    >>> data.images.shape, data.target, data.target_names
    ((4, 8, 6), array([0, 0, 1, 1]), ['cat', 'dog'])
    >>> X, y = load_image_folder(folder, image_size=4, color_mode="rgb", return_X_y=True)
    >>> X.shape, X.dtype
    ((4, 4, 4, 3), dtype('uint8'))
    """
    if color_mode not in ("auto", "grayscale", "rgb"):
        raise ValueError(
            f"color_mode must be 'auto', 'grayscale' or 'rgb', got {color_mode!r}."
        )
    size = _check_image_size(image_size)
    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"Image folder {path} does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{path} is a file, not a folder of images.")
    files = _image_files(folder)
    if not files:
        raise ValueError(
            f"{path} holds no image file ({' '.join(IMAGE_EXTENSIONS)}), neither directly "
            "nor in subfolders."
        )
    top = [f for f in files if f.parent == folder]
    class_names = sorted({f.relative_to(folder).parts[0] for f in files if f.parent != folder})
    if top and class_names:
        raise ValueError(
            f"{path} holds both images ({top[0].name}, ...) and class subfolders "
            f"({class_names[0]}, ...): put every image in its class's subfolder, or "
            "load a folder of images without subfolders."
        )
    arrays = []
    for f in files:
        array = _read_image(f, color_mode, size)
        first = arrays[0] if arrays else array
        if array.shape[:2] != first.shape[:2]:
            raise ValueError(
                f"The images differ in size: {files[0]} is {first.shape[0]}x{first.shape[1]} "
                f"(height x width) and {f} is {array.shape[0]}x{array.shape[1]}. Pass "
                "image_size=(height, width), or an int, to resize every image."
            )
        arrays.append(array)
    if color_mode == "auto" and any(a.ndim == 3 for a in arrays):
        arrays = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    images = np.stack(arrays)
    if class_names:
        index = {name: i for i, name in enumerate(class_names)}
        target = np.array([index[f.relative_to(folder).parts[0]] for f in files], dtype=np.int64)
    else:
        class_names = target = None
    if return_X_y:
        return images, target
    kind = "grayscale" if images.ndim == 3 else "RGB"
    classes = f"{len(class_names)} classes" if class_names else "no classes"
    return Bunch(
        images=images,
        data=images.reshape(len(images), -1),
        target=target,
        target_names=class_names,
        filenames=np.array([str(f) for f in files]),
        DESCR=(
            f"{len(images)} {kind} {images.shape[1]}x{images.shape[2]} images, {classes}, "
            f"read from {path}"
        ),
    )
