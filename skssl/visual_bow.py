"""VisualBoW: images as bags of visual words, a scikit-learn transformer."""

from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._data import check_images, check_scale
from ._descriptors import descriptor_maps, fitted_descriptor, learn_vocabulary, sample_descriptors
from .ops import (
    assign_words,
    extract_patches,
    normalize_contrast,
    pool_regions,
    pyramid_regions,
    zca_whitening,
)
from .ops.bow import _pair

__all__ = ["VisualBoW"]

# Coates & Ng add 10 to the variance of patches of 0-255 pixels: 10 / 255**2 on [0, 1].
_CONTRAST_EPS = 10 / 255**2
# "auto" cuts the grid of descriptors into cells of about this many per side, and at
# most _MAX_CELLS per side (the features grow with the square).
_CELL_SIDE = 6
_MAX_CELLS = 4
# Codes computed at once (locations x words): 8 MB of float32, which stay in a CPU's
# cache through the elementwise passes (0.54 s per 1,000 Fashion-MNIST images on one
# core, against 0.61 s at 16 MB and 0.71 s at 32 MB).
_CODES_PER_CHUNK = 2**21


class VisualBoW(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Represent images by the visual words they contain, on a learnt vocabulary.

    The classic pipeline (Csurka et al. 2004; Sivic & Zisserman 2003), with the
    choices that Coates, Lee & Ng (2011), *An Analysis of Single-Layer Networks in
    Unsupervised Feature Learning*, found to matter:

    1. dense local descriptors: every ``patch_size`` patch at ``stride``, normalised
       for brightness and contrast (:func:`skssl.ops.normalize_contrast`), or the
       feature map of an encoder, one descriptor per location;
    2. optionally ZCA-whitened (:func:`skssl.ops.zca_whitening`);
    3. a vocabulary of ``n_words`` words, the centres of a k-means
       (``MiniBatchKMeans``) on a seeded sample of at most ``max_descriptors``;
    4. each descriptor coded by the words (:func:`skssl.ops.assign_words`) and the
       codes pooled over the image, or over the cells of a spatial pyramid
       (Lazebnik, Schmid & Ponce 2006): one histogram per cell, concatenated;
    5. optionally idf-weighted and normalised.

    No network is trained. :meth:`transform` works batch by batch (a memmap larger
    than memory works), with torch for the distances, and returns float32
    ``(n, n_words * n_cells)``. Images are read as in the rest of skssl: uint8 scaled
    to [0, 1], floats as they are.

    The defaults are the best of a pilot on Fashion-MNIST: with them, a linear probe
    (``StandardScaler + LogisticRegression``) on the 60,000 training images scores
    0.906 on the test images, against 0.835 for raw pixels, and fit plus transform
    of the 70,000 images take 27 s on 2 CPU cores (``benchmarks/bow.py``). What
    mattered there (on 10,000 images): triangle coding, 2.3 points above hard
    assignment; 4x4 cells, 4 points above one histogram per image; whitening, 1.1
    points; while sum and max pooling, 5x5 and 6x6 patches, 200 and 400 words did
    about as well as each other.

    Parameters
    ----------
    descriptor : "patch", skssl pretrainer or torch.nn.Module, default="patch"
        ``"patch"``: raw patches. A pretrainer: its encoder's feature map
        (:func:`skssl.encoders.feature_map`) on images normalised as in its
        training; wrap a fitted one in ``sklearn.frozen.FrozenEstimator`` to use it
        as it is, since any other pretrainer is first fitted on the data of
        :meth:`fit` (``clone``, as in GridSearchCV, unfits a plain one). A module
        with a ``feature_map`` method, deep-copied, sees images on the [0, 1] scale.
    n_words : int, default=200
        Size of the vocabulary.
    patch_size : int or tuple of (int, int), default=5
        ``(height, width)`` of the patches of ``"patch"``.
    stride : int or tuple of (int, int), default=1
        Step between the patches of ``"patch"``; Coates & Ng found a step of 1 best.
    whiten : bool, default=True
        ZCA-whiten the descriptors (regularisation 0.1 of the mean eigenvalue);
        Coates & Ng found it essential for k-means on patches.
    assignment : {"hard", "soft"}, default="soft"
        ``"hard"`` counts each descriptor for its nearest word; ``"soft"`` is
        Coates & Ng's "triangle" coding ``max(0, mean(z) - z_k)``, with ``z_k`` the
        distance to word ``k``: the words nearer than average, by how much.
    pooling : {"sum", "max"}, default="sum"
        How the codes of a cell become its histogram.
    pyramid : "auto" or tuple of int, default="auto"
        Cells per side of each pyramid level (:func:`skssl.ops.pyramid_regions`):
        ``(1,)`` one histogram per image, ``(1, 2)`` that and one per quadrant.
        ``"auto"`` is one level of cells of about 6x6 descriptors: the shorter side
        of the grid of descriptors divided by 6, rounded, from 1 to 4 cells per side
        (4x4 cells for 28x28 images and 5x5 patches). Where objects are centred, as
        in Fashion-MNIST, the layout matters: there 4x4 cells beat 3x3 by 0.8
        points of linear-probe accuracy, 2x2 by 2.7 and a whole-image histogram by 4.
    norm : {"l1", "l2"} or None, default=None
        Normalisation of each image's whole feature vector.
    use_idf : bool, default=False
        Weight each word by its smoothed inverse document frequency over the images
        of :meth:`fit`, ``log((1 + n) / (1 + df)) + 1`` (an extra pass over them).
    max_descriptors : int, default=200_000
        Size of the k-means sample, which bounds the memory of :meth:`fit`.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` of flattened ``(n, H*W*C)`` input; ``None`` infers
        a square grayscale or RGB shape. Ignored for ``(n, H, W[, C])`` input.
    batch_size : int, default=128
        Images per batch of descriptors.
    random_state : int, RandomState instance or None, default=None
        Seeds the descriptor sample and the k-means.

    Attributes
    ----------
    input_scale_ : str or tuple of (float, float)
        ``"uint8"`` when the training images were pixel values (divided by 255),
        otherwise the ``(min, max)`` of their values; :meth:`transform` refuses
        images clearly on another scale.
    descriptor_ : BasePretrainer, torch.nn.Module or None
        The fitted copy of ``descriptor`` that :meth:`transform` uses; None for patches.
    vocabulary_ : ndarray of shape (n_words, D)
        The words, in the whitened space with ``whiten``.
    whitening_ : tuple of (ndarray of shape (D,), ndarray of shape (D, D)) or None
        ``(mean, matrix)``: descriptors are whitened as ``(d - mean) @ matrix``.
    idf_ : ndarray of shape (n_words,) or None
        The word weights of ``use_idf``.
    grid_size_ : tuple of (int, int)
        Rows and columns of descriptors per image.
    pyramid_ : tuple of int
        The pyramid levels used.
    n_descriptors_ : int
        Descriptors the vocabulary was learnt from.
    n_features_in_ : int
        ``H * W * C``.
    image_shape_ : tuple of (int, int, int)
        ``(H, W, C)`` seen at fit.

    See Also
    --------
    skssl.BoWPretrainer : Trains a network to predict such bags of words.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skssl import VisualBoW
    >>> X = load_digits().images / 16
    >>> bow = VisualBoW(n_words=32, patch_size=3, random_state=0).fit(X)
    >>> bow.grid_size_, bow.pyramid_  # 6x6 patches of 3x3 pixels: one cell of 6x6
    ((6, 6), (1,))
    >>> bow.transform(X[:4]).shape
    (4, 32)
    >>> pyramid = VisualBoW(n_words=32, patch_size=3, pyramid=(1, 2), random_state=0).fit(X)
    >>> pyramid.transform(X[:4]).shape  # the whole image, then its 4 quadrants
    (4, 160)

    With hard assignment, sum pooling and ``norm="l1"``, each row is the fraction
    of the image's 36 patches that each word takes:

    >>> bow = VisualBoW(n_words=32, patch_size=3, assignment="hard", pyramid=(1,),
    ...                 norm="l1", random_state=0).fit(X)
    >>> counts = bow.transform(X[:4]) * 36
    >>> bool((counts.round() == counts.round(4)).all()), counts.sum(axis=1).round(4).tolist()
    (True, [36.0, 36.0, 36.0, 36.0])
    """

    _parameter_constraints: dict = {
        "descriptor": [StrOptions({"patch"}), BaseEstimator, nn.Module],
        "n_words": [Interval(Integral, 1, None, closed="left")],
        "patch_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "stride": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "whiten": ["boolean"],
        "assignment": [StrOptions({"hard", "soft"})],
        "pooling": [StrOptions({"sum", "max"})],
        "pyramid": [StrOptions({"auto"}), tuple, list],
        "norm": [StrOptions({"l1", "l2"}), None],
        "use_idf": ["boolean"],
        "max_descriptors": [Interval(Integral, 1, None, closed="left")],
        "image_shape": [tuple, list, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self, descriptor="patch", *, n_words=200, patch_size=5, stride=1, whiten=True,
        assignment="soft", pooling="sum", pyramid="auto", norm=None, use_idf=False,
        max_descriptors=200_000, image_shape=None, batch_size=128, random_state=None,
    ):
        self.descriptor = descriptor
        self.n_words = n_words
        self.patch_size = patch_size
        self.stride = stride
        self.whiten = whiten
        self.assignment = assignment
        self.pooling = pooling
        self.pyramid = pyramid
        self.norm = norm
        self.use_idf = use_idf
        self.max_descriptors = max_descriptors
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Learn the vocabulary from a sample of the images' descriptors.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
            Images: ``(n, H*W*C)``, ``(n, H, W)`` or ``(n, H, W, C)``.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        name = type(self).__name__
        data = check_images(X, self.image_shape, estimator_name=name)
        self.image_shape_, self.n_features_in_ = data.image_shape, data.n_features
        # Transform reads integers as fit did, and refuses images on another scale.
        self.input_scale_ = "uint8" if data.unit_scale else tuple(data.value_range())
        rng = check_random_state(self.random_state)
        H, W, C = data.image_shape
        if self.descriptor == "patch":
            self.descriptor_ = None
            ph, pw = _pair(self.patch_size, "patch_size")
            if H < ph or W < pw:
                raise ValueError(
                    f"{name} cuts patches of {ph}x{pw} pixels, but the images are {H}x{W} "
                    f"(n_features={data.n_features}); lower patch_size."
                )
        else:
            self.descriptor_ = fitted_descriptor(self.descriptor, data.X.reshape(-1, H, W, C),
                                                 name)
        self.whitening_ = self.idf_ = None
        with torch.inference_mode():
            self.grid_size_ = tuple(self._maps(data.batch(slice(0, 1), "cpu")).shape[2:])
            self.pyramid_ = self._levels()
            sample = sample_descriptors(self._descriptors, data, self.max_descriptors, rng,
                                        self.batch_size)
            if self.whiten:
                mean, matrix = zca_whitening(sample)
                self.whitening_ = (mean.numpy(), matrix.numpy())
                sample = (sample - mean) @ matrix
            self.n_descriptors_ = len(sample)
            self.vocabulary_ = learn_vocabulary(sample, self.n_words, rng, name)
            if self.use_idf:
                document_frequency = np.zeros(self.n_words)
                whole_image = pyramid_regions(self.grid_size_, (1,))
                for start in range(0, data.n_samples, self.batch_size):
                    x = data.batch(slice(start, start + self.batch_size), "cpu")
                    counts = self._histograms(x, whole_image, "sum")[:, 0]
                    document_frequency += (counts > 0).sum(0).numpy()
                self.idf_ = (np.log((1 + data.n_samples) / (1 + document_frequency)) + 1).astype(
                    np.float32)
        return self

    def transform(self, X):
        """Map images to their bags of visual words.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
            Images of the shape seen at fit.

        Returns
        -------
        histograms : ndarray of shape (n_samples, n_words * n_cells), dtype float32
            For each pyramid cell (by level, then row-major), the pooled codes of the
            ``n_words`` words.
        """
        check_is_fitted(self)
        name = type(self).__name__
        data = check_images(X, expected=self.image_shape_, estimator_name=name,
                            unit_scale=self.input_scale_ == "uint8")
        check_scale(data, self.input_scale_, name)
        regions = pyramid_regions(self.grid_size_, self.pyramid_)
        idf = None if self.idf_ is None else torch.from_numpy(self.idf_)
        out = np.empty((data.n_samples, self._n_features_out), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, data.n_samples, self.batch_size):
                rows = slice(start, start + self.batch_size)
                histograms = self._histograms(data.batch(rows, "cpu"), regions, self.pooling)
                if idf is not None:
                    histograms *= idf
                histograms = histograms.flatten(1)
                if self.norm is not None:
                    histograms = F.normalize(histograms, p=int(self.norm[1]), dim=1)
                out[rows] = histograms.numpy()
        return out

    @property
    def _n_features_out(self):
        return len(self.vocabulary_) * pyramid_regions(self.grid_size_, self.pyramid_).shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def _levels(self):
        if self.pyramid != "auto":
            levels = tuple(self.pyramid)
            if not levels or not all(isinstance(v, Integral) and v >= 1 for v in levels):
                raise ValueError(
                    f"pyramid must be 'auto' or a non-empty tuple of positive ints, got "
                    f"{self.pyramid!r}."
                )
            return tuple(int(v) for v in levels)
        cells = int(min(self.grid_size_) / _CELL_SIDE + 0.5)
        return (min(_MAX_CELLS, max(1, cells)),)

    def _maps(self, x):
        """Descriptor maps ``(B, D, h, w)`` of a batch: raw patches, or the feature map."""
        if self.descriptor_ is None:
            return extract_patches(x, self.patch_size, self.stride)
        return descriptor_maps(self.descriptor_, x).float()

    def _descriptors(self, x):
        """Descriptors ``(B, L, D)`` of a batch, one per location, before whitening."""
        descriptors = self._maps(x).flatten(2).transpose(1, 2).contiguous()
        if self.descriptor_ is None:
            return normalize_contrast(descriptors, _CONTRAST_EPS)
        return descriptors

    def _histograms(self, x, regions, pooling):
        """Word codes of a batch pooled over ``regions``: ``(B, R, n_words)``."""
        descriptors = self._descriptors(x)
        if self.whitening_ is not None:
            mean, matrix = (torch.from_numpy(a) for a in self.whitening_)
            descriptors = (descriptors - mean) @ matrix
        vocabulary = torch.from_numpy(self.vocabulary_)
        assignment = "hard" if self.assignment == "hard" else "triangle"
        # The codes of a few images at a time stay in cache, where each elementwise pass
        # over the codes of a whole batch would read them from memory.
        step = max(1, _CODES_PER_CHUNK // (descriptors.shape[1] * len(vocabulary)))
        return torch.cat([
            pool_regions(assign_words(descriptors[i : i + step], vocabulary, assignment),
                         regions, pooling)
            for i in range(0, len(descriptors), step)
        ])
