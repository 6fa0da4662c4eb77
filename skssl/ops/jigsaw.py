"""Jigsaw puzzles of image tiles (Noroozi & Favaro, ECCV 2016)."""

import functools
import itertools
import math
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._checks import check_batch, check_generator, check_int, image_hw, randint
from .patches import _MIN_PATCH, _gather_patches, normalize_patches

# Enumerating every permutation of more tiles would take too long and too much memory.
_MAX_PERMUTATION_TILES = 9


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
    >>> from skssl.ops import hamming_permutations
    >>> perms = hamming_permutations(10, random_state=0)
    >>> perms.shape, perms.dtype
    ((10, 9), dtype('int64'))
    >>> bool((np.sort(perms, axis=1) == np.arange(9)).all())
    True
    >>> dist = (perms[:, None] != perms[None]).sum(-1)
    >>> int(dist[~np.eye(10, dtype=bool)].min()) >= 7
    True
    """
    n_tiles = check_int(n_tiles, "n_tiles", 2, _MAX_PERMUTATION_TILES)
    n_permutations = check_int(n_permutations, "n_permutations", 2, 1000)
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
    >>> from skssl.ops import JigsawGeometry
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
    >>> from skssl.ops import jigsaw_geometry
    >>> g = jigsaw_geometry(28)
    >>> g
    JigsawGeometry(grid=3, cell_size=9, tile_size=7)
    >>> g.crop_size, g.max_jitter
    (27, 2)
    >>> jigsaw_geometry((96, 128))
    JigsawGeometry(grid=3, cell_size=32, tile_size=27)
    """
    grid = check_int(grid, "grid", 2)
    height, width = image_hw(image_size)
    # The smallest cell whose tile, at the paper's 64/75 ratio, is _MIN_PATCH px.
    min_cell = math.ceil(_MIN_PATCH * 75 / 64)
    if min(height, width) < grid * min_cell:
        raise ValueError(
            f"Jigsaw with grid={grid} needs images of at least {grid * min_cell}x"
            f"{grid * min_cell} pixels (cells of {min_cell} px holding tiles of at least "
            f"{_MIN_PATCH} px); got {height}x{width}."
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
        (:func:`~skssl.ops.normalize_patches`), as in the paper; ``False`` returns raw pixels
        (for plotting).

    Returns
    -------
    tiles : torch.Tensor of shape (B, grid * grid, C, tile_size, tile_size)
        Tiles in row-major cell order, on ``x.device``.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import extract_jigsaw_tiles, jigsaw_geometry
    >>> x = torch.randn(4, 1, 28, 28)
    >>> g = torch.Generator().manual_seed(0)
    >>> tiles = extract_jigsaw_tiles(x, **jigsaw_geometry(28)._asdict(), generator=g)
    >>> tiles.shape
    torch.Size([4, 9, 1, 7, 7])
    """
    check_batch(x)
    check_generator(generator)
    grid = check_int(grid, "grid", 1)
    cell_size = check_int(cell_size, "cell_size", 1)
    tile_size = check_int(tile_size, "tile_size", 1, cell_size)
    batch, _, height, width = x.shape
    crop_size = grid * cell_size
    if crop_size > min(height, width):
        raise ValueError(
            f"A jigsaw grid of {grid}x{grid} cells of {cell_size} px needs images of at "
            f"least {crop_size}x{crop_size} pixels; got {height}x{width}."
        )
    n_tiles = grid * grid
    crop_top = randint(0, height - crop_size, (batch, 1), generator, x.device)
    crop_left = randint(0, width - crop_size, (batch, 1), generator, x.device)
    jitter = randint(0, cell_size - tile_size, (2, batch, n_tiles), generator, x.device)
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
    >>> from skssl.ops import shuffle_tiles
    >>> tiles = torch.arange(3.0).expand(2, 3)
    >>> shuffled, target = shuffle_tiles(tiles, [[2, 0, 1], [1, 2, 0]],
    ...                                  generator=torch.Generator().manual_seed(0))
    >>> shuffled.shape, target.dtype
    (torch.Size([2, 3]), torch.int64)
    >>> bool((shuffled[target == 0] == torch.tensor([2.0, 0.0, 1.0])).all())
    True
    """
    check_generator(generator)
    if not isinstance(tiles, torch.Tensor) or tiles.ndim < 2:
        raise ValueError("tiles must be a tensor of shape (B, n_tiles, ...).")
    perms = torch.as_tensor(permutations, dtype=torch.long, device=tiles.device)
    if perms.ndim != 2 or perms.shape[1] != tiles.shape[1] or perms.shape[0] < 1:
        raise ValueError(
            f"permutations must have shape (n_permutations, {tiles.shape[1]}) to shuffle "
            f"{tiles.shape[1]} tiles; got {tuple(perms.shape)}."
        )
    batch = tiles.shape[0]
    target = randint(0, perms.shape[0] - 1, (batch,), generator, tiles.device)
    rows = torch.arange(batch, device=tiles.device)[:, None]
    return tiles[rows, perms[target]], target
