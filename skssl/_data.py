"""Image input handling shared by every estimator.

Accepted layouts (``n`` images of height ``H``, width ``W`` and ``C`` channels):

- ``(n, H*W*C)`` flattened rows, channels last (``images.reshape(n, -1)``); the
  image shape comes from ``image_shape`` or, when it is ``None``, is inferred as a
  square grayscale (``d = s*s``) or square RGB (``d = 3*s*s``) image;
- ``(n, H, W)`` grayscale images;
- ``(n, H, W, C)`` channels-last images.

Numpy arrays, numpy memmaps and torch tensors are accepted, and so is any other
object with ``__len__`` and ``__getitem__`` (a dataset class, an HDF5 or zarr array):
:class:`RowSource` reads its rows on demand. Nothing is copied whole:
:meth:`ImageData.batch` converts one batch at a time to float32, so a memmap much larger
than memory can be used.

Scale: uint8 images are pixel values, divided by 255 onto [0, 1]. So are images of
another integer dtype whose values all lie in 0..255 (an int64 DataFrame of pixels
is the same image as its uint8 array); other values are used as they are. The scale
is a fitted fact: :func:`check_scale` refuses data clearly on another scale than
the data seen at fit.
"""

import copy
import math
import mmap
import numbers
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch

# Values scanned at once by the NaN/inf and mean/std passes (float64 -> 64 MB).
_CHUNK_VALUES = 8_000_000


def _is_tensor(X):
    return isinstance(X, torch.Tensor)


def _as_array(X):
    """Return X as a numpy array or torch tensor without copying when possible."""
    if sp.issparse(X):
        raise TypeError(
            "A sparse matrix was passed, but skssl needs dense images. Use X.toarray()."
        )
    if _is_tensor(X):
        if X.is_complex():
            raise ValueError("Complex data not supported; pass real-valued images.")
        if not (X.is_floating_point() or X.dtype in _TORCH_INTS or X.dtype == torch.bool):
            raise TypeError(f"Images must be numeric, got a tensor of dtype {X.dtype}.")
        return X.detach()
    if isinstance(X, RowSource):
        return X
    if not isinstance(X, np.ndarray):
        if hasattr(X, "__dataframe__") or hasattr(X, "iloc"):
            X = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
        elif _is_row_source(X):
            return RowSource(X)
        else:
            try:
                X = np.asarray(X)
            except ValueError as exc:  # nested lists of different lengths
                raise ValueError(
                    f"X could not be read as an array of images ({exc}). Pass a numeric "
                    "array of shape (n, H, W[, C]) or (n, H*W*C): all images must have the "
                    "same shape."
                ) from None
    if np.iscomplexobj(X):
        raise ValueError("Complex data not supported; pass real-valued images.")
    if X.dtype == object:
        X = _object_to_float(X)
    elif X.dtype.kind not in "biuf":
        raise TypeError(
            f"Images must be numeric (uint8, integer or float), got dtype {X.dtype}. "
            "Convert them with X.astype(np.float32) or load them as uint8."
        )
    return X


def _object_to_float(X):
    """An object array of numbers as float64, or an error naming what is wrong."""
    hint = (
        "Pass a numeric array of shape (n, H, W[, C]) or (n, H*W*C): all images must "
        "have the same shape."
    )
    try:
        return X.astype(np.float64)
    except TypeError as exc:  # an entry that is not a number
        raise TypeError(
            f"X has dtype object with entries that are not numbers: {exc}. {hint}"
        ) from None
    except ValueError as exc:  # an entry that is a sequence: images of different shapes
        raise ValueError(f"X has dtype object and could not be converted to numbers ({exc}). "
                         f"{hint}") from None


def _is_row_source(X):
    """Whether ``X`` is read row by row rather than converted: an indexable object with a
    length that is not a plain Python container (lists and tuples are converted)."""
    return (
        hasattr(X, "__len__")
        and hasattr(X, "__getitem__")
        and not isinstance(X, (list, tuple, str, bytes, Mapping))
    )


class RowSource:
    """Images read on demand from an object with ``__len__`` and ``__getitem__``.

    ``source[i]`` is image ``i``: an array, a tensor or anything ``numpy.asarray``
    reads (a PIL image), of the same shape and dtype for every ``i``. Batches are read
    image by image, or with one slice ``source[a:b]`` when the source is an array-like
    with ``shape`` and ``dtype`` (h5py and zarr arrays); nothing is read whole. Shape,
    dtype and the number of dimensions come from the source or its first image, so
    that :func:`check_images` treats it as an array.

    Parameters
    ----------
    source : object
        With ``len(source)`` images.
    shape : tuple of int, default=None
        Read each image as ``shape[1:]`` (a reshaped view, see :meth:`reshape`).

    Raises
    ------
    TypeError
        When an image is a tuple (a dataset that returns ``(image, label)``), or not
        numeric.
    ValueError
        When an image has another shape or dtype than the first one.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl._data import RowSource
    >>> class Squares:
    ...     def __len__(self):
    ...         return 3
    ...     def __getitem__(self, i):
    ...         return np.full((2, 2), i, dtype=np.uint8)
    >>> rows = RowSource(Squares())
    >>> rows.shape, rows.dtype, rows[np.array([0, 2])][:, 0, 0].tolist()
    ((3, 2, 2), dtype('uint8'), [0, 2])
    """

    def __init__(self, source, shape=None):
        self.source = source
        n = len(source)
        self._sliceable = hasattr(source, "shape") and hasattr(source, "dtype")
        if n == 0:  # check_images says that there are no samples
            self.shape, self.dtype = (0, 0), np.dtype(np.float32)
        else:
            first = self._read(0)
            self._item_shape, self.dtype = first.shape, first.dtype
            if first.dtype.kind == "c":
                raise ValueError("Complex data not supported; pass real-valued images.")
            if first.dtype.kind not in "biuf":
                raise TypeError(
                    f"Images must be numeric (uint8, integer or float), but X[0] has dtype "
                    f"{first.dtype}."
                )
            self.shape = (n, *first.shape) if shape is None else tuple(shape)
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def _read(self, i):
        item = self.source[i]
        if isinstance(item, tuple):
            raise TypeError(
                f"X[{i}] is a tuple of {len(item)}: skssl reads X[i] as image i. Pass a "
                "dataset whose items are images alone (e.g. a wrapper returning "
                "dataset[i][0]) or an array."
            )
        if isinstance(item, torch.Tensor):
            return item.detach().cpu().numpy()
        return np.asarray(item)

    def __getitem__(self, key):
        """Images ``key`` (an int, a slice or an array of ints) as a new ndarray."""
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        if isinstance(key, slice) and self._sliceable:
            batch = np.asarray(self.source[key])
            return batch.reshape(len(batch), *self.shape[1:])
        rows = range(len(self))[key] if isinstance(key, slice) else np.asarray(key)
        batch = np.empty((len(rows), *self._item_shape), dtype=self.dtype)
        for j, i in enumerate(rows):
            item = self._read(int(i))
            if item.shape != self._item_shape or item.dtype != self.dtype:
                raise ValueError(
                    f"X[{int(i)}] is an image of shape {item.shape} and dtype {item.dtype}, "
                    f"but X[0] has shape {self._item_shape} and dtype {self.dtype}: every "
                    "image must have the same shape and dtype."
                )
            batch[j] = item
        return batch.reshape(len(rows), *self.shape[1:])

    def reshape(self, *shape):
        """The same images read with another shape per image, like ``ndarray.reshape``.

        Parameters
        ----------
        *shape : int
            ``(-1, ...)``: the number of images does not change.

        Returns
        -------
        rows : RowSource
        """
        if len(shape) == 1 and isinstance(shape[0], tuple):
            shape = shape[0]
        item = shape[1:]
        if shape[0] not in (-1, len(self)) or math.prod(item) != math.prod(self._item_shape):
            raise ValueError(f"cannot reshape images of shape {self._item_shape} to {item}")
        view = copy.copy(self)
        view.shape, view.ndim = (len(self), *item), len(shape)
        return view


_TORCH_INTS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
# Values beyond this overflow float32 to infinity in ImageData.batch.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_uint8(X):
    return X.dtype == (torch.uint8 if _is_tensor(X) else np.uint8)


def _is_integer(X):
    return X.dtype in _TORCH_INTS if _is_tensor(X) else X.dtype.kind in "iu"


def _resolve_image_shape(d, image_shape):
    """Turn ``image_shape`` (or None) into ``(H, W, C)`` for rows of ``d`` values."""
    if image_shape is None:
        for c in (1, 3):
            s = math.isqrt(d // c)
            if d % c == 0 and s * s * c == d and s > 0:
                return (s, s, c)
        raise ValueError(
            f"Cannot infer the image shape of rows with {d} values: they are not square "
            f"grayscale (s*s) or square RGB (3*s*s) images. Pass image_shape=(height, width) "
            f"or (height, width, channels), or pass X as an (n, height, width[, channels]) array."
        )
    shape = [int(v) for v in image_shape]
    unknown = [i for i, v in enumerate(shape) if v == -1]
    if len(unknown) == 0 and len(shape) == 2:  # (H, W): channels from the row length
        shape.append(-1)
        unknown = [2]
    elif len(shape) == 2:
        shape.append(1)
    known = math.prod(v for v in shape if v != -1)
    if len(unknown) > 1 or known <= 0 or d % known or (not unknown and known != d):
        raise ValueError(
            f"image_shape={tuple(image_shape)} does not fit rows of {d} values: X.shape[1] "
            "must be height * width * channels, with at most one -1 in image_shape."
        )
    if unknown:
        shape[unknown[0]] = d // known
    return tuple(shape)


class ImageData:
    """A validated, read-only view of image input that yields float batches.

    Create it with :func:`check_images`. The user's array is kept as it is (never
    modified, never copied whole); :meth:`batch` converts the rows it is asked for.

    Parameters
    ----------
    X : ndarray, memmap or torch.Tensor
        The images, with ``n`` rows.
    image_shape : tuple of (int, int, int)
        ``(H, W, C)``.
    unit_scale : bool, default=None
        Whether integer values (other than uint8, always pixel values) are pixel
        values to divide by 255; ``None`` decides from the values: all in 0..255.

    Attributes
    ----------
    n_samples : int
    image_shape : tuple of (int, int, int)
    n_features : int
        ``H * W * C``.
    unit_scale : bool
        Whether :meth:`batch` divides the values by 255.
    low, high : float
        The smallest and largest value of ``X`` (0 and 255 for uint8 images).

    Raises
    ------
    ValueError
        NaN or infinity, or values that overflow float32.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl._data import check_images
    >>> data = check_images(np.zeros((5, 8, 8), dtype=np.uint8))
    >>> data.image_shape, data.batch(np.arange(2), "cpu").shape
    ((8, 8, 1), torch.Size([2, 1, 8, 8]))
    """

    def __init__(self, X, image_shape, unit_scale=None):
        self.X = X
        self.image_shape = image_shape
        self.n_samples = X.shape[0]
        self.n_features = math.prod(image_shape)
        self.low, self.high = self._scan()
        if _is_uint8(X):
            self.unit_scale = True
        elif _is_integer(X):
            in_pixel_range = 0 <= self.low and self.high <= 255
            self.unit_scale = in_pixel_range if unit_scale is None else unit_scale
        else:
            self.unit_scale = False

    def batch(self, indices, device):
        """Return images ``indices`` as a float32 tensor ``(b, C, H, W)`` on ``device``.

        Pixel values (``unit_scale``) are divided by 255; other values are converted
        as they are. The same as ``convert(read(indices), device)``.

        Parameters
        ----------
        indices : array of int or slice
        device : str or torch.device

        Returns
        -------
        batch : torch.Tensor
        """
        return self.convert(self.read(indices), device)

    def read(self, indices):
        """Return rows ``indices`` as they are stored: a NumPy array (a copy) or a tensor.

        The part of :meth:`batch` that may wait for a disk or decode images (a memmap's
        pages, a dataset's items); no torch computation runs here on the CPU.
        """
        if _is_tensor(self.X):
            if self.X.is_cuda:  # on prefetch's side stream: after the work that made X
                side = torch.cuda.current_stream(self.X.device)
                side.wait_stream(torch.cuda.default_stream(self.X.device))
            if not isinstance(indices, slice):
                indices = torch.as_tensor(indices, device=self.X.device)
            return self.X[indices]
        # A copy: a float32 batch would otherwise be the user's memory, divided in
        # place by convert. A RowSource reads into a new array already.
        rows = self.X[indices]
        return rows if isinstance(self.X, RowSource) else np.array(rows)

    def convert(self, rows, device):
        """Rows from :meth:`read` as a float32 tensor ``(b, C, H, W)`` on ``device``."""
        H, W, C = self.image_shape
        if _is_tensor(rows):
            t = rows.to(device, non_blocking=True)
        else:
            t = torch.from_numpy(rows)
            if str(device).startswith("cuda"):
                # From page-locked memory, the copy runs asynchronously (DMA).
                t = t.pin_memory().to(device, non_blocking=True)
            else:
                t = t.to(device)
        t = t.to(torch.float32)
        if self.unit_scale:
            t = t.div_(255.0)
        return t.reshape(-1, H, W, C).permute(0, 3, 1, 2).contiguous()

    @property
    def read_from_storage(self):
        """Whether :meth:`read` may wait for a disk or decode images (a memmap, a
        dataset), so that reading the next batch during a step is worth a thread."""
        return isinstance(self.X, (np.memmap, RowSource))

    def chunks(self):
        """Yield consecutive row slices covering about 8M values each."""
        step = max(1, _CHUNK_VALUES // max(1, self.n_features))
        for start in range(0, self.n_samples, step):
            yield slice(start, min(start + step, self.n_samples))

    def channel_mean_std(self, ranks=None):
        """Per-channel mean and standard deviation, in one streaming float64 pass.

        Parameters
        ----------
        ranks : skssl._distributed.Replicas, default=None
            Processes that share the pass: each reads every ``world_size``-th chunk
            of rows, and their sums are added up.

        Returns
        -------
        mean, std : ndarray of shape (C,)
            On the [0, 1] scale for uint8 images; ``std`` is at least 1e-6.
        """
        C = self.image_shape[2]
        total = np.zeros(C)
        total_sq = np.zeros(C)
        chunks = list(self.chunks())
        if ranks is not None:
            chunks = chunks[ranks.rank :: ranks.world_size]
        for rows in chunks:
            x = self.batch(rows, "cpu").to(torch.float64)
            total += x.sum(dim=(0, 2, 3)).numpy()
            total_sq += (x * x).sum(dim=(0, 2, 3)).numpy()
        if ranks is not None:
            total, total_sq = np.split(np.asarray(ranks.sum([*total, *total_sq])), 2)
        count = self.n_samples * self.image_shape[0] * self.image_shape[1]
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return mean, np.maximum(std, 1e-6)

    def value_range(self):
        """Smallest and largest value on the batch scale.

        Returns
        -------
        low, high : float
            For uint8 images, the bounds ``(0.0, 1.0)`` of their scale.
        """
        if self.unit_scale:
            return self.low / 255.0, self.high / 255.0
        return self.low, self.high

    def _scan(self):
        """Check that every value is finite in float32; return the smallest and largest.

        One streaming pass, skipped for uint8 images (finite, in 0..255). Values that
        overflow float32 (1e39 in a float64 array) would become infinite in a batch.
        """
        X = self.X
        if _is_uint8(X):
            return 0.0, 255.0
        floating = X.is_floating_point() if _is_tensor(X) else X.dtype.kind == "f"
        isfinite = torch.isfinite if _is_tensor(X) else np.isfinite
        low, high = math.inf, -math.inf
        for rows in self.chunks():
            x = X[rows]
            if floating and not isfinite(x).all():
                raise ValueError("Input X contains NaN or infinity; remove or impute them first.")
            low, high = min(low, float(x.min())), max(high, float(x.max()))
        if max(-low, high) > _FLOAT32_MAX:
            raise ValueError(
                f"Input X has values in [{low:.3g}, {high:.3g}], beyond the range of float32 "
                f"(+-{_FLOAT32_MAX:.3g}) in which skssl computes: they would become infinite. "
                "Rescale X, e.g. to [0, 1]."
            )
        return low, high


def prefetch(read, convert, items, device, background=True):
    """Yield ``(item, convert(read(item)))`` for every item, reading the next while the
    caller works.

    On the CPU, ``read`` (a memmap's pages, a dataset's images: waits for a disk or
    image decoding, no torch computation) runs in one background thread, one item
    ahead, when ``background`` is true, and ``convert`` (to float, normalisation) runs
    in the caller's thread: torch operations in a second thread compete with the step
    for the cores (on 2 cores, fits on Fashion-MNIST in RAM ran 1.29 to 1.40x faster
    with the conversion in the caller's thread, ``benchmarks/loading_thread.py``). On
    CUDA both run in the background thread on a side stream (with pinned memory, the
    copies to the GPU are asynchronous) and the caller's stream waits for it: the cores
    are free while the GPU computes. On another device (MPS), everything runs in the
    caller's thread. The batches and their order do not change, so neither do the
    results. Close the generator (``contextlib.closing``) to stop it; a read in flight
    finishes first.

    Parameters
    ----------
    read : callable
        ``read(item) -> rows``.
    convert : callable
        ``convert(rows) -> torch.Tensor``, on ``device``.
    items : sequence
    device : str
        Where ``convert`` puts the tensors.
    background : bool, default=True
        Whether ``read`` is slow enough to be worth a thread on the CPU (rows of an
        in-memory array are not: they are read in the caller's thread).

    Yields
    ------
    item : object
    batch : torch.Tensor

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skssl._data import prefetch
    >>> batches = prefetch(np.arange, torch.from_numpy, [1, 2, 3], "cpu")
    >>> [(i, int(x.sum())) for i, x in batches]
    [(1, 0), (2, 1), (3, 3)]
    """
    items = list(items)
    device = str(device)
    cuda = device.startswith("cuda")
    if not (cuda or (device == "cpu" and background)):
        for item in items:
            yield item, convert(read(item))
        return
    stream = torch.cuda.Stream(device) if cuda else None

    def work(item):
        if stream is None:
            return read(item), None
        with torch.cuda.stream(stream):
            return convert(read(item)), stream.record_event()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="skssl-prefetch") as pool:
        pending = pool.submit(work, items[0]) if items else None
        for i, item in enumerate(items):
            batch, ready = pending.result()
            pending = pool.submit(work, items[i + 1]) if i + 1 < len(items) else None
            if ready is None:
                batch = convert(batch)
            else:
                current = torch.cuda.current_stream(device)
                current.wait_event(ready)
                batch.record_stream(current)  # made on the side stream, used on this one
            yield item, batch


def page_releaser(array):
    """A function ``release(stop)`` that drops the memory pages of ``array[:stop]`` from
    this process, when ``array`` is a shared memmap whose rows are read or written for
    good.

    A memmap's pages stay mapped in the process once touched, so that streaming a
    large file through ``transform`` would count all of it in the process's resident
    memory, although the kernel may reclaim these pages. ``madvise(MADV_DONTNEED)``
    unmaps them: the data stays in the file and the page cache (written pages are
    written back), and a later access reads it again. Each call releases the whole
    pages between the previous ``stop`` and this one. Only for C-contiguous shared
    mappings (``numpy.memmap`` modes ``"r"``, ``"r+"``, ``"w+"``: a ``"c"`` memmap's
    changes live in its pages alone) on systems with ``madvise``; otherwise ``release``
    does nothing.

    Parameters
    ----------
    array : ndarray

    Returns
    -------
    release : callable
        ``release(stop) -> int``, the bytes released.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skssl._data import page_releaser
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(4096, 8))
    >>> X[:] = 1.0
    >>> release = page_releaser(X)
    >>> release(2048) > 0, release(2048), float(X.sum())  # the data is still there
    (True, 0, 32768.0)
    >>> page_releaser(np.ones((4096, 8)))(4096)  # not a memmap
    0
    """
    mapping, base = None, array
    while base is not None and mapping is None:
        if isinstance(base, np.memmap) and base.mode not in ("r", "r+", "w+"):
            break
        if isinstance(base, mmap.mmap):
            mapping = base
        base = getattr(base, "base", None)
    if (mapping is None or not hasattr(mapping, "madvise") or not hasattr(mmap, "MADV_DONTNEED")
            or array.ndim == 0 or not array.flags.c_contiguous):
        return lambda stop: 0
    page, row_bytes = mmap.PAGESIZE, array.strides[0]
    origin = np.frombuffer(mapping, dtype=np.uint8).__array_interface__["data"][0]
    offset = array.__array_interface__["data"][0] - origin
    done = [-(-offset // page) * page]  # whole pages only

    def release(stop):
        last = (offset + min(stop, len(array)) * row_bytes) // page * page
        if last <= done[0]:
            return 0
        mapping.madvise(mmap.MADV_DONTNEED, done[0], last - done[0])
        released, done[0] = last - done[0], last
        return released

    return release


def check_images(X, image_shape=None, *, expected=None, unit_scale=None,
                 estimator_name="estimator"):
    """Validate image input and return an :class:`ImageData`.

    Parameters
    ----------
    X : array-like, memmap or torch.Tensor
        ``(n, H*W*C)``, ``(n, H, W)`` or ``(n, H, W, C)``.
    image_shape : tuple, default=None
        ``(H, W)`` or ``(H, W, C)`` for flattened rows; one entry may be ``-1`` (inferred,
        as in ``numpy.reshape``). ``None`` infers a square grayscale or RGB shape.
    expected : tuple of (int, int, int), default=None
        The ``(H, W, C)`` seen at fit: the input must match it. Flattened rows are
        then read with this shape.
    unit_scale : bool, default=None
        Whether integer values are pixel values (divided by 255), as at fit; ``None``
        decides from the values. uint8 values are always pixel values.
    estimator_name : str
        Used in error messages.

    Returns
    -------
    data : ImageData

    Raises
    ------
    ValueError
        Empty input, wrong number of dimensions, NaN or infinity (in float32),
        complex values, ragged input, or an image shape that differs from
        ``expected``.
    TypeError
        Non-numeric or sparse input.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl._data import check_images
    >>> check_images(np.zeros((3, 28 * 28))).image_shape
    (28, 28, 1)
    >>> check_images(np.zeros((3, 12)), image_shape=(2, -1)).image_shape
    (2, 6, 1)
    """
    X = _as_array(X)
    if X.ndim not in (2, 3, 4):
        raise ValueError(
            f"Expected a 2D (n, H*W*C), 3D (n, H, W) or 4D (n, H, W, C) array, got a "
            f"{X.ndim}D array of shape {tuple(X.shape)} instead. Reshape your data, e.g. "
            "X.reshape(1, -1) for a single flattened image."
        )
    n = X.shape[0]
    if n == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a minimum of 1 "
            "is required."
        )
    if X.ndim == 2:
        d = X.shape[1]
        if d == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 "
                "is required."
            )
        if expected is not None:
            n_expected = math.prod(expected)
            if d != n_expected:
                raise ValueError(
                    f"X has {d} features, but {estimator_name} is expecting {n_expected} "
                    f"features as input (images of shape {expected})."
                )
            shape = tuple(expected)
        else:
            shape = _resolve_image_shape(d, image_shape)
    else:
        H, W = int(X.shape[1]), int(X.shape[2])
        C = int(X.shape[3]) if X.ndim == 4 else 1
        if X.ndim == 4 and C > 4 and X.shape[1] in (1, 3):
            raise ValueError(
                f"X has shape {tuple(X.shape)}, which looks channels-first (n, C, H, W); "
                "skssl expects channels-last (n, H, W, C). Use X.transpose(0, 2, 3, 1) "
                "(or X.permute(0, 2, 3, 1) for a tensor)."
            )
        shape = (H, W, C)
        if min(shape) == 0:
            raise ValueError(f"X has an empty image dimension: shape={tuple(X.shape)}.")
        if image_shape is not None and expected is None:
            given = _resolve_image_shape(H * W * C, image_shape)
            if given != shape:
                raise ValueError(
                    f"image_shape={image_shape} does not match the shape of the images "
                    f"{shape}; pass image_shape=None for {X.ndim}D input."
                )
        if expected is not None and shape != tuple(expected):
            raise ValueError(
                f"X has images of shape {shape}, but {estimator_name} was fitted on images "
                f"of shape {tuple(expected)}."
            )
    return ImageData(X, shape, unit_scale)


def check_scale(data, input_scale, estimator_name="estimator"):
    """Raise a ValueError when images are clearly on another scale than at fit.

    Parameters
    ----------
    data : ImageData
        Checked images, read as at fit (``unit_scale`` of integers as at fit).
    input_scale : "uint8" or tuple of (float, float)
        What fit saw: pixel values divided by 255, or the range of other values.
    estimator_name : str
        Used in error messages.

    Raises
    ------
    ValueError
        Values outside the fitted range widened by its width on each side (floats
        in [0, 255] for a model fitted on uint8 images, whose scale is [0, 1]), or
        pixel values for a model fitted on values beyond [0, 2].

    Examples
    --------
    >>> import numpy as np
    >>> from skssl._data import check_images, check_scale
    >>> check_scale(check_images(np.full((2, 4, 4), 0.5)), "uint8")
    >>> check_scale(check_images(np.full((2, 4, 4), 200.0)), "uint8")
    Traceback (most recent call last):
    ...
    ValueError: estimator was fitted on uint8 images (pixel values 0-255, scaled to
    [0, 1]), but X is float64 with values in [200, 200]. Pass uint8 images ...
    """
    low, high = data.value_range()
    dtype = str(data.X.dtype).replace("torch.", "")
    if input_scale == "uint8":
        if low < -1.0 or high > 2.0:
            raise ValueError(
                f"{estimator_name} was fitted on uint8 images (pixel values 0-255, scaled to "
                f"[0, 1]), but X is {dtype} with values in [{data.low:.3g}, {data.high:.3g}]. Pass "
                "uint8 images (X.astype(np.uint8)) or scale X to [0, 1] (X / 255)."
            )
        return
    fit_low, fit_high = input_scale
    if data.unit_scale and fit_high > 2.0:
        raise ValueError(
            f"{estimator_name} was fitted on values in [{fit_low:.3g}, {fit_high:.3g}], but X "
            f"is {dtype} pixel values, which skssl scales to [0, 1]. Pass X as at fit, e.g. "
            "X.astype(np.float32)."
        )
    width = fit_high - fit_low or 1.0
    if low < fit_low - width or high > fit_high + width:
        raw = " (pixel values scaled to [0, 1])" if data.unit_scale else ""
        raise ValueError(
            f"{estimator_name} was fitted on values in [{fit_low:.3g}, {fit_high:.3g}], but X "
            f"has values in [{low:.3g}, {high:.3g}]{raw}: another scale. Scale X as the "
            "training images were."
        )


def check_image_size(image_shape, min_size, method):
    """Raise a ValueError when images are smaller than ``min_size`` pixels.

    Parameters
    ----------
    image_shape : tuple of (int, int, int)
        ``(H, W, C)``.
    min_size : int or tuple of (int, int)
        Minimum ``(height, width)``.
    method : str
        Named in the message.

    Examples
    --------
    >>> from skssl._data import check_image_size
    >>> check_image_size((28, 28, 1), 9, "JigsawPretrainer")
    """
    if isinstance(min_size, numbers.Integral):
        min_size = (min_size, min_size)
    H, W = image_shape[:2]
    if H < min_size[0] or W < min_size[1]:
        raise ValueError(
            f"{method} needs images of at least {min_size[0]}x{min_size[1]} pixels, "
            f"got {H}x{W}."
        )
