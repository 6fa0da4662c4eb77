"""Bags of visual words: dense descriptors, word assignment and spatial pooling.

Dense descriptors are one ``D``-vector per location of a ``(h, w)`` grid: raw patches
(:func:`extract_patches`) or an encoder's feature map
(:func:`skssl.encoders.feature_map`), both maps ``(B, D, h, w)``, flattened to rows
``(B, h * w, D)`` in row-major order of the locations. A vocabulary of ``K`` words
turns each row into a code of ``K`` weights (:func:`assign_words`), which
:func:`pool_regions` sums or maxes over the image, or over each cell of a spatial
pyramid (:func:`pyramid_regions`).
"""

from numbers import Integral

import torch
import torch.nn.functional as F

ASSIGNMENTS = ("hard", "triangle", "softmax")


def _pair(value, name):
    pair = (value, value) if isinstance(value, Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, Integral) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}.")
    return int(pair[0]), int(pair[1])


def extract_patches(x, patch_size, stride=1):
    """Every ``patch_size`` patch of the images at ``stride``, as a descriptor map.

    Parameters
    ----------
    x : torch.Tensor of shape (B, C, H, W)
    patch_size : int or tuple of (int, int)
        ``(height, width)`` of the patches; an int means a square.
    stride : int or tuple of (int, int), default=1
        Step between patches, in pixels.

    Returns
    -------
    patches : torch.Tensor of shape (B, C * ph * pw, h, w)
        The patch at row ``i``, column ``j`` of the grid starts at pixel ``(i * sh,
        j * sw)``; it is flattened in ``(channel, row, column)`` order.
        ``h = (H - ph) // sh + 1`` and ``w = (W - pw) // sw + 1``.

    Raises
    ------
    ValueError
        When the images are smaller than a patch.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import extract_patches
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> patches = extract_patches(x, 2, stride=2)
    >>> patches.shape
    torch.Size([1, 4, 2, 2])
    >>> patches[0, :, 0, 1].tolist()  # the top-right patch
    [2.0, 3.0, 6.0, 7.0]
    """
    (ph, pw), (sh, sw) = _pair(patch_size, "patch_size"), _pair(stride, "stride")
    batch, channels, height, width = x.shape
    if height < ph or width < pw:
        raise ValueError(f"Patches of {ph}x{pw} pixels do not fit in {height}x{width} images.")
    grid = ((height - ph) // sh + 1, (width - pw) // sw + 1)
    return F.unfold(x, (ph, pw), stride=(sh, sw)).view(batch, channels * ph * pw, *grid)


def normalize_contrast(descriptors, eps, dim=-1):
    """Give every descriptor mean 0 and variance 1 over its ``D`` values.

    Coates, Lee & Ng (2011), *An Analysis of Single-Layer Networks in Unsupervised
    Feature Learning*, Section 3.1.1: ``(d - mean(d)) / sqrt(var(d) + eps)``, the
    brightness and contrast normalisation of patches; ``eps`` keeps flat patches
    from blowing up their noise (10 for pixels in 0-255 in the paper).

    Parameters
    ----------
    descriptors : torch.Tensor
    eps : float
        Added to the variance.
    dim : int, default=-1
        The dimension of the ``D`` values.

    Returns
    -------
    normalized : torch.Tensor
        Same shape as ``descriptors``.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import normalize_contrast
    >>> normalize_contrast(torch.tensor([[1.0, 3.0], [2.0, 2.0]]), eps=0.0).nan_to_num().tolist()
    [[-1.0, 1.0], [0.0, 0.0]]
    """
    var, mean = torch.var_mean(descriptors, dim=dim, keepdim=True, correction=0)
    return (descriptors - mean) * torch.rsqrt(var + eps)


def zca_whitening(descriptors, eps=0.1):
    """Fit ZCA whitening: ``(d - mean) @ matrix`` has about the identity as covariance.

    The matrix is ``U diag(1 / sqrt(s + eps * mean(s))) U^T`` for the eigenvalues
    ``s`` and eigenvectors ``U`` of the descriptors' covariance (Coates & Ng 2011,
    Section 3.1.1, who add 0.1 to the eigenvalues of normalised patches, whose mean
    eigenvalue is about 1; relative to the mean eigenvalue here, so that any scale
    of descriptors is regularised alike).

    Parameters
    ----------
    descriptors : torch.Tensor of shape (N, D)
    eps : float, default=0.1
        Regularisation, relative to the mean eigenvalue.

    Returns
    -------
    mean : torch.Tensor of shape (D,)
    matrix : torch.Tensor of shape (D, D)
        Symmetric; both in the dtype of ``descriptors``.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import zca_whitening
    >>> d = torch.randn(5000, 3, generator=torch.Generator().manual_seed(0))
    >>> d = d @ torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    >>> mean, matrix = zca_whitening(d, eps=0.0)
    >>> white = (d - mean) @ matrix
    >>> torch.allclose(white.T @ white / len(d), torch.eye(3), atol=1e-4)
    True
    """
    x = descriptors.double()
    mean = x.mean(dim=0)
    centered = x - mean
    eigenvalues, eigenvectors = torch.linalg.eigh(centered.T @ centered / len(x))
    eigenvalues = eigenvalues.clamp_min(0)
    # The floor keeps identical descriptors (no variance at all) finite: they map to 0.
    floor = max(float(eigenvalues.mean()), 1e-12) * eps if eps > 0 else 0.0
    matrix = eigenvectors @ torch.diag((eigenvalues + floor).rsqrt()) @ eigenvectors.T
    return mean.to(descriptors.dtype), matrix.to(descriptors.dtype)


def squared_distances(descriptors, vocabulary):
    """Squared Euclidean distances of ``(..., D)`` descriptors to ``(K, D)`` words.

    One matrix product of augmented vectors, ``[d, |d|^2, 1] . [-2 w, 1, |w|^2]``,
    clipped at 0 against rounding: a single pass over the ``(..., K)`` result.

    Parameters
    ----------
    descriptors : torch.Tensor of shape (..., D)
    vocabulary : torch.Tensor of shape (K, D)

    Returns
    -------
    distances : torch.Tensor of shape (..., K)

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import squared_distances
    >>> squared_distances(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
    tensor([[25.,  1.]])
    """
    left = torch.cat([descriptors, descriptors.square().sum(-1, keepdim=True),
                      torch.ones_like(descriptors[..., :1])], dim=-1)
    right = torch.cat([-2 * vocabulary, torch.ones_like(vocabulary[:, :1]),
                       vocabulary.square().sum(-1, keepdim=True)], dim=-1)
    return (left @ right.T).clamp_(min=0)


def assign_words(descriptors, vocabulary, assignment="hard", temperature=1.0):
    """Code descriptors by the words of a vocabulary.

    - ``"hard"``: 1 for the nearest word, 0 elsewhere (vector quantisation);
    - ``"triangle"``: ``max(0, mean(z) - z_k)`` with ``z_k`` the Euclidean distance to
      word ``k``, Coates, Lee & Ng (2011)'s "triangle" k-means: the words closer than
      average, weighted by how much closer;
    - ``"softmax"``: ``softmax_k(-z_k^2 / temperature)``, the soft assignment of OBoW
      (Gidaris et al. 2021), which sets ``temperature`` to the mean squared distance
      to the nearest word divided by 15.

    Parameters
    ----------
    descriptors : torch.Tensor of shape (..., D)
    vocabulary : torch.Tensor of shape (K, D)
    assignment : {"hard", "triangle", "softmax"}, default="hard"
    temperature : float, default=1.0
        Of ``"softmax"``.

    Returns
    -------
    codes : torch.Tensor of shape (..., K)
        Non-negative.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import assign_words
    >>> words = torch.tensor([[0.0], [1.0], [3.0]])
    >>> descriptors = torch.tensor([[0.2], [2.9]])
    >>> assign_words(descriptors, words).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    >>> [round(v, 2) for v in assign_words(descriptors, words, "triangle")[0].tolist()]
    [1.07, 0.47, 0.0]
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}.")
    # In place on the distances: on a CPU, every pass over (..., K) counts.
    distances = squared_distances(descriptors, vocabulary)
    if assignment == "hard":
        nearest = distances.argmin(dim=-1, keepdim=True)
        return distances.zero_().scatter_(-1, nearest, 1.0)
    if assignment == "triangle":
        z = distances.sqrt_()
        return torch.sub(z.mean(dim=-1, keepdim=True), z, out=z).clamp_(min=0)
    return torch.softmax(distances.mul_(-1.0 / temperature), dim=-1)


def pyramid_regions(grid, levels):
    """The regions of a spatial pyramid over a ``(h, w)`` grid of locations.

    Lazebnik, Schmid & Ponce (2006), *Beyond Bags of Features*: level ``l`` cuts the
    grid into ``l x l`` cells (rows into ``min(l, h)`` bands, columns into
    ``min(l, w)``, of sizes within one location of each other) and each cell gets its
    own histogram.

    Parameters
    ----------
    grid : tuple of (int, int)
    levels : sequence of int
        Cells per side of each level; ``(1,)`` is the whole image alone, ``(1, 2)``
        the whole image and its four quadrants.

    Returns
    -------
    regions : torch.Tensor of shape (h * w, R), dtype float32
        ``regions[i, r]`` is 1 when location ``i`` (row-major) lies in region ``r``;
        regions are ordered by level, then row-major.

    Examples
    --------
    >>> from skssl.ops import pyramid_regions
    >>> pyramid_regions((2, 3), (2,)).T.int().tolist()  # 4 cells: columns {0, 1} and {2}
    [[1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1]]
    """
    height, width = grid
    rows, cols = torch.arange(height), torch.arange(width)
    columns = []
    for level in levels:
        n_rows, n_cols = min(level, height), min(level, width)
        cell = (rows * n_rows // height)[:, None] * n_cols + cols * n_cols // width
        columns.append(F.one_hot(cell.flatten(), n_rows * n_cols))
    return torch.cat(columns, dim=1).float()


def pool_regions(codes, regions, pooling="sum"):
    """Pool the codes of each image over each region: one histogram per region.

    With ``pooling="mean"``, the average of each region's codes: a spatial pyramid of
    features rather than of words (the ``pooling="pyramid"`` of the pretrainers).

    Parameters
    ----------
    codes : torch.Tensor of shape (B, L, K)
        The codes of the ``L`` locations of each image, row-major.
    regions : torch.Tensor of shape (L, R)
        From :func:`pyramid_regions`.
    pooling : {"sum", "max", "mean"}, default="sum"

    Returns
    -------
    histograms : torch.Tensor of shape (B, R, K)

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import pool_regions, pyramid_regions
    >>> codes = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])  # 2 locations (a 1x2 grid), 2 words
    >>> pool_regions(codes, pyramid_regions((1, 2), (1, 2))).tolist()
    [[[1.0, 2.0], [1.0, 1.0], [0.0, 1.0]]]
    >>> pool_regions(codes, pyramid_regions((1, 2), (1,)), "max").tolist()
    [[[1.0, 1.0]]]
    >>> pool_regions(codes, pyramid_regions((1, 2), (1,)), "mean").tolist()
    [[[0.5, 1.0]]]
    """
    regions = regions.to(codes.device, codes.dtype)
    if pooling == "sum":
        return regions.T @ codes
    if pooling == "mean":
        return (regions / regions.sum(0)).T @ codes
    if pooling != "max":
        raise ValueError(f'pooling must be "sum", "max" or "mean", got {pooling!r}.')
    return torch.stack([codes[:, mask.bool()].amax(dim=1) for mask in regions.T], dim=1)
