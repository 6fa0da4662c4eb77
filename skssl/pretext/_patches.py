"""Patch extraction shared by the Jigsaw and Context pretext tasks.

Everything here works on a normalised float batch ``x`` of shape ``(B, C, H, W)``
on any device, draws its randomness from an explicit :class:`torch.Generator`
(random tensors are made on ``generator.device`` and then moved to ``x.device``)
and never loops over images: patches are cut with one ``gather`` per batch.

- Jigsaw (Noroozi & Favaro, "Unsupervised Learning of Visual Representations by
  Solving Jigsaw Puzzles", ECCV 2016): :func:`hamming_permutations`,
  :func:`jigsaw_geometry`, :func:`extract_jigsaw_tiles`, :func:`shuffle_tiles`.
- Context (Doersch, Gupta & Efros, "Unsupervised Visual Representation Learning by
  Context Prediction", ICCV 2015): :func:`context_geometry`,
  :func:`extract_context_pairs`, :data:`CONTEXT_OFFSETS`.
- Shortcut guards for colour images: :func:`random_grayscale`,
  :func:`channel_jitter`, :func:`default_channel_shift`; :func:`normalize_patches`.
"""

import functools
import itertools
import math
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils import check_random_state

#: Relative ``(row, column)`` grid position of the neighbour patch for each
#: context target ``0..7``: the 3x3 layout in row-major order, skipping the centre.
CONTEXT_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))

_MAX_PERMUTATION_TILES = 9
_MIN_TILE = 3


def _check_int(value, name, low, high=None):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {value!r}.")
    if value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}.")
    return int(value)


def _check_batch(x):
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a float tensor of shape (B, C, H, W), got {shape}.")


def _check_generator(generator):
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}.")


def _image_hw(image_size):
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        return int(image_size), int(image_size)
    height, width = (int(s) for s in image_size)
    return height, width


def _randint(low, high, size, generator, device):
    """Integers in ``[low, high]`` (both included), drawn on the generator's device."""
    draws = torch.randint(low, high + 1, size, generator=generator, device=generator.device)
    return draws.to(device)


def _gather_patches(x, top, left, size):
    """Cut square patches at per-sample positions with a single gather.

    ``top`` and ``left`` are ``(B, N)`` integer tensors on ``x.device``; the result
    is ``(B, N, C, size, size)``.
    """
    batch, channels, _, width = x.shape
    n_patches = top.shape[1]
    steps = torch.arange(size, device=x.device)
    rows = top[..., None] + steps
    cols = left[..., None] + steps
    flat = rows[..., :, None] * width + cols[..., None, :]
    index = flat.reshape(batch, 1, -1).expand(batch, channels, -1)
    patches = x.flatten(2).gather(2, index)
    return patches.reshape(batch, channels, n_patches, size, size).transpose(1, 2).contiguous()


def normalize_patches(patches, eps=1e-5):
    """Normalise every patch and channel to mean 0 and standard deviation 1.

    Both papers normalise each patch on its own so that the network cannot match
    patches by their brightness or contrast.

    Parameters
    ----------
    patches : torch.Tensor of shape (..., H, W)
        Float patches; statistics are taken over the last two dimensions.
    eps : float, default=1e-5
        Added to the variance, so that a constant patch becomes all zeros.

    Returns
    -------
    normalized : torch.Tensor
        Same shape and dtype as ``patches``.

    Examples
    --------
    >>> import torch
    >>> from skssl.pretext._patches import normalize_patches
    >>> p = normalize_patches(torch.arange(8.0).reshape(2, 1, 2, 2))
    >>> p.mean(dim=(-2, -1)).abs().max().item() < 1e-6
    True
    >>> round(p[0, 0].std(unbiased=False).item(), 3)
    1.0
    """
    var, mean = torch.var_mean(patches, dim=(-2, -1), keepdim=True, correction=0)
    return (patches - mean) * torch.rsqrt(var + eps)


@functools.lru_cache(maxsize=2)
def _all_permutations(n_tiles):
    """Every permutation of ``range(n_tiles)`` as a read-only ``(n_tiles!, n_tiles)`` int8 array."""
    count = math.factorial(n_tiles)
    flat = itertools.chain.from_iterable(itertools.permutations(range(n_tiles)))
    perms = np.fromiter(flat, dtype=np.int8, count=count * n_tiles).reshape(count, n_tiles)
    perms.flags.writeable = False
    return perms


def hamming_permutations(n_permutations, n_tiles=9, random_state=None):
    """Choose a set of permutations far apart in Hamming distance.

    The greedy selection of Noroozi & Favaro (2016, Algorithm 1): start from a
    random permutation, then repeatedly add the permutation of ``range(n_tiles)``
    whose minimum Hamming distance to the permutations already chosen is the
    largest. Ties are broken by the larger total distance to the chosen set (the
    paper's average criterion), then at random. The running minimum and total over
    all ``n_tiles!`` candidates are updated with each new permutation, so the cost
    is ``O(n_permutations * n_tiles!)`` vectorised operations.

    Parameters
    ----------
    n_permutations : int
        How many permutations (jigsaw classes) to choose, in ``[2, 1000]`` and at
        most ``n_tiles!``. The paper uses 100 by default and up to 1000.
    n_tiles : int, default=9
        Number of tiles, in ``[2, 9]``: all ``n_tiles!`` permutations are enumerated.
    random_state : int, RandomState instance or None, default=None
        Seeds the first permutation and the tie-breaking order.

    Returns
    -------
    permutations : ndarray of shape (n_permutations, n_tiles), dtype int64
        Distinct permutations of ``range(n_tiles)``; row ``k`` is jigsaw class ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.pretext._patches import hamming_permutations
    >>> perms = hamming_permutations(10, random_state=0)
    >>> perms.shape, perms.dtype
    ((10, 9), dtype('int64'))
    >>> bool((np.sort(perms, axis=1) == np.arange(9)).all())
    True
    >>> dist = (perms[:, None] != perms[None]).sum(-1)
    >>> int(dist[~np.eye(10, dtype=bool)].min()) >= 7
    True
    """
    n_tiles = _check_int(n_tiles, "n_tiles", 2, _MAX_PERMUTATION_TILES)
    n_permutations = _check_int(n_permutations, "n_permutations", 2, 1000)
    n_candidates = math.factorial(n_tiles)
    if n_permutations > n_candidates:
        raise ValueError(
            f"n_permutations={n_permutations} exceeds the {n_candidates} permutations "
            f"of n_tiles={n_tiles} tiles."
        )
    rng = check_random_state(random_state)
    # A random candidate order makes argmax break the remaining ties at random.
    order = rng.permutation(n_candidates)
    candidates = np.ascontiguousarray(_all_permutations(n_tiles)[order].T)
    min_dist = np.full(n_candidates, n_tiles, dtype=np.uint8)
    total_dist = np.zeros(n_candidates, dtype=np.uint32)
    chosen = np.empty((n_permutations, n_tiles), dtype=np.int64)
    j = rng.randint(n_candidates)
    for i in range(n_permutations):
        chosen[i] = candidates[:, j]
        dist = (candidates != candidates[:, j : j + 1]).sum(axis=0, dtype=np.uint8)
        np.minimum(min_dist, dist, out=min_dist)
        total_dist += dist
        # Chosen candidates have min_dist 0, so they are never picked twice.
        j = np.argmax((min_dist.astype(np.uint32) << 16) | total_dist)
    return chosen


class JigsawGeometry(NamedTuple):
    """Layout of a jigsaw puzzle: a square grid of cells, one jittered tile per cell.

    The fields are the keyword arguments of :func:`extract_jigsaw_tiles`.

    Examples
    --------
    >>> from skssl.pretext._patches import JigsawGeometry
    >>> g = JigsawGeometry(grid=3, cell_size=9, tile_size=7)
    >>> g.crop_size, g.max_jitter
    (27, 2)
    """

    grid: int
    cell_size: int
    tile_size: int

    @property
    def crop_size(self):
        """Side of the square region cut from each image: ``grid * cell_size``."""
        return self.grid * self.cell_size

    @property
    def max_jitter(self):
        """Largest offset of a tile inside its cell: ``cell_size - tile_size``."""
        return self.cell_size - self.tile_size


def jigsaw_geometry(image_size, grid=3):
    """Default jigsaw layout for an image size, scaled from the paper.

    Noroozi & Favaro crop a 225 px region, split it into 3x3 cells of 75 px and
    cut a randomly placed 64 px tile inside each cell, so neighbouring tiles are on
    average 11 px apart and never overlap. Here the region is the largest square
    grid that fits (``cell_size = min(H, W) // grid``) and the tile keeps the
    paper's ratio, ``tile_size = cell_size * 64 // 75``, with at least 1 px of
    jitter: a 28 px image gives cells of 9 px and tiles of 7 px jittered by up to
    2 px.

    Parameters
    ----------
    image_size : int or tuple of (int, int)
        Image side, or ``(height, width)``.
    grid : int, default=3
        Cells per side (``grid * grid`` tiles).

    Returns
    -------
    geometry : JigsawGeometry
        ``(grid, cell_size, tile_size)``, with ``crop_size`` and ``max_jitter``
        properties.

    Raises
    ------
    ValueError
        If the image cannot hold tiles of at least 3 px, that is if it is smaller
        than ``4 * grid`` pixels on a side.

    Examples
    --------
    >>> from skssl.pretext._patches import jigsaw_geometry
    >>> g = jigsaw_geometry(28)
    >>> g
    JigsawGeometry(grid=3, cell_size=9, tile_size=7)
    >>> g.crop_size, g.max_jitter
    (27, 2)
    >>> jigsaw_geometry((96, 128))
    JigsawGeometry(grid=3, cell_size=32, tile_size=27)
    """
    grid = _check_int(grid, "grid", 2)
    height, width = _image_hw(image_size)
    # The smallest cell whose tile, at the paper's 64/75 ratio, is _MIN_TILE px.
    min_cell = math.ceil(_MIN_TILE * 75 / 64)
    if min(height, width) < grid * min_cell:
        raise ValueError(
            f"Jigsaw with grid={grid} needs images of at least {grid * min_cell}x"
            f"{grid * min_cell} pixels (cells of {min_cell} px holding tiles of at least "
            f"{_MIN_TILE} px); got {height}x{width}."
        )
    cell_size = min(height, width) // grid
    tile_size = min(cell_size * 64 // 75, cell_size - 1)
    return JigsawGeometry(grid=grid, cell_size=cell_size, tile_size=tile_size)


def extract_jigsaw_tiles(x, grid, cell_size, tile_size, *, generator, normalize=True):
    """Cut a ``grid x grid`` puzzle of jittered tiles from every image.

    Each image gets its own random square crop of ``grid * cell_size`` pixels; the
    crop is split into ``grid x grid`` cells and every cell gets its own randomly
    placed ``tile_size`` tile (offsets up to ``cell_size - tile_size`` px, drawn
    independently per image and per cell), so tiles never overlap and their edges
    rarely line up. All tiles are cut with one gather.

    Parameters
    ----------
    x : torch.Tensor of shape (B, C, H, W)
        Float image batch.
    grid : int
        Cells per side.
    cell_size : int
        Side of a cell in pixels.
    tile_size : int
        Side of a tile in pixels, at most ``cell_size``.
    generator : torch.Generator
        Source of the crop and jitter offsets.
    normalize : bool, default=True
        Normalise each tile and channel to mean 0 and standard deviation 1
        (:func:`normalize_patches`), as in the paper; ``False`` returns raw pixels
        (for plotting).

    Returns
    -------
    tiles : torch.Tensor of shape (B, grid * grid, C, tile_size, tile_size)
        Tiles in row-major cell order, on ``x.device``.

    Examples
    --------
    >>> import torch
    >>> from skssl.pretext._patches import extract_jigsaw_tiles, jigsaw_geometry
    >>> x = torch.randn(4, 1, 28, 28)
    >>> g = torch.Generator().manual_seed(0)
    >>> tiles = extract_jigsaw_tiles(x, **jigsaw_geometry(28)._asdict(), generator=g)
    >>> tiles.shape
    torch.Size([4, 9, 1, 7, 7])
    """
    _check_batch(x)
    _check_generator(generator)
    grid = _check_int(grid, "grid", 1)
    cell_size = _check_int(cell_size, "cell_size", 1)
    tile_size = _check_int(tile_size, "tile_size", 1, cell_size)
    batch, _, height, width = x.shape
    crop_size = grid * cell_size
    if crop_size > min(height, width):
        raise ValueError(
            f"A jigsaw grid of {grid}x{grid} cells of {cell_size} px needs images of at "
            f"least {crop_size}x{crop_size} pixels; got {height}x{width}."
        )
    n_tiles = grid * grid
    crop_top = _randint(0, height - crop_size, (batch, 1), generator, x.device)
    crop_left = _randint(0, width - crop_size, (batch, 1), generator, x.device)
    jitter = _randint(0, cell_size - tile_size, (2, batch, n_tiles), generator, x.device)
    cells = torch.arange(n_tiles, device=x.device)
    top = crop_top + (cells // grid) * cell_size + jitter[0]
    left = crop_left + (cells % grid) * cell_size + jitter[1]
    tiles = _gather_patches(x, top, left, tile_size)
    return normalize_patches(tiles) if normalize else tiles


def shuffle_tiles(tiles, permutations, *, generator):
    """Shuffle each puzzle by a permutation picked uniformly from a fixed set.

    Parameters
    ----------
    tiles : torch.Tensor of shape (B, n_tiles, ...)
        Tiles in their original order, as returned by :func:`extract_jigsaw_tiles`.
    permutations : array-like of shape (n_permutations, n_tiles)
        The permutation set, e.g. from :func:`hamming_permutations`.
    generator : torch.Generator
        Source of the permutation indices.

    Returns
    -------
    shuffled : torch.Tensor
        Same shape as ``tiles``, with
        ``shuffled[b, i] = tiles[b, permutations[target[b], i]]``: position ``i`` of
        the shuffled puzzle shows the tile of cell ``permutations[target[b], i]``.
    target : torch.Tensor of shape (B,), dtype int64
        Index of the permutation applied to each sample (the jigsaw class), on
        ``tiles.device``.

    Examples
    --------
    >>> import torch
    >>> from skssl.pretext._patches import shuffle_tiles
    >>> tiles = torch.arange(3.0).expand(2, 3)
    >>> shuffled, target = shuffle_tiles(tiles, [[2, 0, 1], [1, 2, 0]],
    ...                                  generator=torch.Generator().manual_seed(0))
    >>> shuffled.shape, target.dtype
    (torch.Size([2, 3]), torch.int64)
    >>> bool((shuffled[target == 0] == torch.tensor([2.0, 0.0, 1.0])).all())
    True
    """
    _check_generator(generator)
    if not isinstance(tiles, torch.Tensor) or tiles.ndim < 2:
        raise ValueError("tiles must be a tensor of shape (B, n_tiles, ...).")
    perms = torch.as_tensor(permutations, dtype=torch.long, device=tiles.device)
    if perms.ndim != 2 or perms.shape[1] != tiles.shape[1] or perms.shape[0] < 1:
        raise ValueError(
            f"permutations must have shape (n_permutations, {tiles.shape[1]}) to shuffle "
            f"{tiles.shape[1]} tiles; got {tuple(perms.shape)}."
        )
    batch = tiles.shape[0]
    target = _randint(0, perms.shape[0] - 1, (batch,), generator, tiles.device)
    rows = torch.arange(batch, device=tiles.device)[:, None]
    return tiles[rows, perms[target]], target


def random_grayscale(x, p, *, generator):
    """Turn a random subset of colour images grey.

    With probability ``p`` per image, every channel is replaced by the mean of the
    channels. Noroozi & Favaro train on 30 % grey images so that the network cannot
    solve the puzzle from colour alone. Inputs are normalised per channel, so the
    plain channel mean stands in for luminance weights.

    Parameters
    ----------
    x : torch.Tensor of shape (..., C, H, W)
        Float images; every entry of the leading dimensions (an image, or a tile)
        draws on its own.
    p : float
        Probability, in ``[0, 1]``, that an image turns grey.
    generator : torch.Generator
        Source of the draws.

    Returns
    -------
    x_out : torch.Tensor
        Same shape as ``x``. With one channel, ``x`` itself is returned and
        nothing is drawn.

    Examples
    --------
    >>> import torch
    >>> from skssl.pretext._patches import random_grayscale
    >>> x = torch.randn(5, 3, 4, 4)
    >>> grey = random_grayscale(x, 1.0, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(grey[:, 0], grey[:, 2]))
    True
    >>> mono = x[:, :1]
    >>> random_grayscale(mono, 1.0, generator=torch.Generator()) is mono
    True
    """
    _check_generator(generator)
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}.")
    if x.ndim < 3 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor of shape (..., C, H, W), got {tuple(x.shape)}.")
    if x.shape[-3] == 1:
        return x
    draws = torch.rand(x.shape[:-3], generator=generator, device=generator.device)
    grey = (draws < p).to(x.device)[..., None, None, None]
    return torch.where(grey, x.mean(dim=-3, keepdim=True).expand_as(x), x)


def channel_jitter(x, max_shift, *, generator):
    """Shift every colour channel by its own random offset (chromatic aberration guard).

    Lenses focus colours slightly differently, so a channel's offset tells where a
    patch sat in the photograph (Doersch et al. 2015, Sec. 3.1) and gives away the
    jigsaw or context answer. Following Noroozi & Favaro, each channel of each
    image is translated by integer offsets drawn uniformly in
    ``[-max_shift, max_shift]`` for rows and columns independently; pixels shifted
    in from outside repeat the border. All shifts are one gather.

    Parameters
    ----------
    x : torch.Tensor of shape (..., C, H, W)
        Float images; every entry of the leading dimensions draws on its own.
    max_shift : int
        Largest shift in pixels (the paper uses 2).
    generator : torch.Generator
        Source of the shifts.

    Returns
    -------
    x_out : torch.Tensor
        Same shape as ``x``. With one channel or ``max_shift=0``, ``x`` itself is
        returned and nothing is drawn.

    Examples
    --------
    >>> import torch
    >>> from skssl.pretext._patches import channel_jitter
    >>> x = torch.randn(2, 3, 8, 8)
    >>> out = channel_jitter(x, 2, generator=torch.Generator().manual_seed(0))
    >>> out.shape
    torch.Size([2, 3, 8, 8])
    >>> mono = x[:, :1]
    >>> channel_jitter(mono, 2, generator=torch.Generator()) is mono
    True
    """
    _check_generator(generator)
    max_shift = _check_int(max_shift, "max_shift", 0)
    if x.ndim < 3:
        raise ValueError(f"x must be a tensor of shape (..., C, H, W), got {tuple(x.shape)}.")
    if x.shape[-3] == 1 or max_shift == 0:
        return x
    channels, height, width = x.shape[-3:]
    flat = x.reshape(-1, channels, height * width)
    shift = _randint(-max_shift, max_shift, (2, flat.shape[0], channels, 1), generator, x.device)
    rows = (torch.arange(height, device=x.device) - shift[0]).clamp_(0, height - 1)
    cols = (torch.arange(width, device=x.device) - shift[1]).clamp_(0, width - 1)
    index = (rows[..., :, None] * width + cols[..., None, :]).flatten(2)
    return flat.gather(2, index).reshape(x.shape)


def default_channel_shift(patch_size):
    """Largest colour-channel shift for a patch size, scaled from Noroozi & Favaro.

    The paper shifts each colour channel of a 64 px tile by up to 2 px
    (:func:`channel_jitter`); the shift keeps that ratio and is at least 1 px, so it
    always drowns the sub-pixel chromatic aberration of a lens.

    Parameters
    ----------
    patch_size : int
        Side of the tile or patch in pixels.

    Returns
    -------
    max_shift : int

    Examples
    --------
    >>> from skssl.pretext._patches import default_channel_shift
    >>> default_channel_shift(7), default_channel_shift(64)
    (1, 2)
    """
    return max(1, (_check_int(patch_size, "patch_size", 1) + 16) // 32)


class ContextGeometry(NamedTuple):
    """Layout of a context pair: a 3x3 grid of patches separated by a gap, jittered.

    The fields are the keyword arguments of :func:`extract_context_pairs`.

    Examples
    --------
    >>> from skssl.pretext._patches import ContextGeometry
    >>> ContextGeometry(patch_size=7, gap=2, jitter=1).span
    27
    """

    patch_size: int
    gap: int
    jitter: int

    @property
    def span(self):
        """Side of the region the jittered 3x3 layout may cover: ``3p + 2 gap + 2 jitter``."""
        return 3 * self.patch_size + 2 * self.gap + 2 * self.jitter


def _default_context(patch_size):
    # Doersch et al. jitter 96 px patches by up to 7 px (at least 1 px here). Their
    # gap is half a patch; a quarter keeps patches larger on small images, and
    # 2 * jitter keeps jittered patches from ever overlapping.
    jitter = max(1, (7 * patch_size + 48) // 96)
    return ContextGeometry(patch_size, max(2 * jitter, patch_size // 4), jitter)


def context_geometry(image_size):
    """Default context-prediction layout for an image size, scaled from the paper.

    Doersch et al. use 96 px patches, a 48 px gap and up to 7 px of jitter. Here the
    jitter keeps the paper's ratio (at least 1 px), the gap is a quarter of a patch
    but at least twice the jitter (so jittered patches never overlap), and the patch
    is the largest for which the jittered 3x3 layout fits in the image: 28 px gives
    7 px patches, a 2 px gap and 1 px of jitter.

    Parameters
    ----------
    image_size : int or tuple of (int, int)
        Image side, or ``(height, width)``.

    Returns
    -------
    geometry : ContextGeometry
        ``(patch_size, gap, jitter)``, with a ``span`` property.

    Raises
    ------
    ValueError
        If the image is smaller than 15 px on a side (3 px patches, 2 px gap,
        1 px jitter).

    Examples
    --------
    >>> from skssl.pretext._patches import context_geometry
    >>> context_geometry(28)
    ContextGeometry(patch_size=7, gap=2, jitter=1)
    >>> context_geometry(96)
    ContextGeometry(patch_size=26, gap=6, jitter=2)
    """
    height, width = _image_hw(image_size)
    side = min(height, width)
    smallest = _default_context(_MIN_TILE)
    if smallest.span > side:
        raise ValueError(
            f"Context prediction needs images of at least {smallest.span}x{smallest.span} "
            f"pixels ({smallest.patch_size} px patches, a {smallest.gap} px gap, "
            f"{smallest.jitter} px jitter); got {height}x{width}."
        )
    # The span grows with the patch size, so the first that does not fit ends the search.
    geometry = smallest
    while (larger := _default_context(geometry.patch_size + 1)).span <= side:
        geometry = larger
    return geometry


def extract_context_pairs(x, patch_size, gap, jitter, *, generator, normalize=True):
    """Cut a (centre, neighbour) patch pair from every image, with its relative position.

    Per image, the 3x3 layout of ``patch_size`` patches separated by ``gap`` pixels
    is placed at a random position where it fits (jitter included); the pair is the
    centre patch and one of its 8 neighbours chosen uniformly. Each of the two
    patches is then moved by its own offsets in ``[-jitter, jitter]`` (rows and
    columns), so the network cannot match patches by continuing lines across the
    gap.

    Parameters
    ----------
    x : torch.Tensor of shape (B, C, H, W)
        Float image batch.
    patch_size : int
        Side of a patch in pixels.
    gap : int
        Pixels between neighbouring patches before jitter, at least ``2 * jitter``.
    jitter : int
        Largest shift of a patch in pixels, at least 0.
    generator : torch.Generator
        Source of the positions, neighbours and jitter.
    normalize : bool, default=True
        Normalise each patch and channel to mean 0 and standard deviation 1
        (:func:`normalize_patches`); ``False`` returns raw pixels (for plotting).

    Returns
    -------
    pairs : torch.Tensor of shape (B, 2, C, patch_size, patch_size)
        ``pairs[:, 0]`` is the centre patch, ``pairs[:, 1]`` the neighbour.
    target : torch.Tensor of shape (B,), dtype int64
        Position of the neighbour, ``0..7`` in row-major order skipping the
        centre: ``CONTEXT_OFFSETS[target]`` is its ``(row, column)`` offset in grid
        steps (0 is top-left, 3 left, 4 right, 7 bottom-right).

    Examples
    --------
    >>> import torch
    >>> from skssl.pretext._patches import context_geometry, extract_context_pairs
    >>> x = torch.randn(4, 3, 28, 28)
    >>> g = torch.Generator().manual_seed(0)
    >>> pairs, target = extract_context_pairs(x, **context_geometry(28)._asdict(),
    ...                                       generator=g)
    >>> pairs.shape, target.shape
    (torch.Size([4, 2, 3, 7, 7]), torch.Size([4]))
    >>> bool(((target >= 0) & (target < 8)).all())
    True
    """
    _check_batch(x)
    _check_generator(generator)
    patch_size = _check_int(patch_size, "patch_size", 1)
    jitter = _check_int(jitter, "jitter", 0)
    gap = _check_int(gap, "gap", 2 * jitter)
    batch, _, height, width = x.shape
    span = ContextGeometry(patch_size, gap, jitter).span
    if span > min(height, width):
        raise ValueError(
            f"Context prediction with {patch_size} px patches, a {gap} px gap and "
            f"{jitter} px jitter needs images of at least {span}x{span} pixels; "
            f"got {height}x{width}."
        )
    step = patch_size + gap
    # Nominal top-left of the centre patch: the layout's corner plus jitter and one step.
    centre_top = _randint(0, height - span, (batch, 1), generator, x.device) + jitter + step
    centre_left = _randint(0, width - span, (batch, 1), generator, x.device) + jitter + step
    target = _randint(0, len(CONTEXT_OFFSETS) - 1, (batch,), generator, x.device)
    shifts = _randint(-jitter, jitter, (2, batch, 2), generator, x.device)
    offsets = torch.tensor(CONTEXT_OFFSETS, device=x.device)[target]
    zero = torch.zeros_like(target)
    top = centre_top + torch.stack([zero, offsets[:, 0]], dim=1) * step + shifts[0]
    left = centre_left + torch.stack([zero, offsets[:, 1]], dim=1) * step + shifts[1]
    pairs = _gather_patches(x, top, left, patch_size)
    return (normalize_patches(pairs) if normalize else pairs), target
