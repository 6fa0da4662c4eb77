"""Context prediction: a centre patch and a neighbour (Doersch, Gupta & Efros, ICCV 2015)."""

from typing import NamedTuple

import torch

from .._data import check_image_size
from ._checks import check_batch, check_generator, check_int, image_hw, randint
from .patches import _MIN_PATCH, _gather_patches, normalize_patches

#: Relative ``(row, column)`` grid position of the neighbour patch for each
#: context target ``0..7``: the 3x3 layout in row-major order, skipping the centre.
CONTEXT_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


class ContextGeometry(NamedTuple):
    """Layout of a context pair: a 3x3 grid of patches separated by a gap, jittered.

    The fields are the keyword arguments of :func:`extract_context_pairs`.

    Examples
    --------
    >>> from skssl.ops import ContextGeometry
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


def _layout(patch_size, gap=None, jitter=None):
    """The layout for ``patch_size``: ``gap`` and ``jitter`` where given, else the defaults."""
    # Doersch et al. jitter 96 px patches by up to 7 px (at least 1 px here). Their
    # gap is half a patch; a quarter keeps patches larger on small images, and
    # 2 * jitter keeps jittered patches from ever overlapping.
    default_jitter = max(1, (7 * patch_size + 48) // 96)
    default_gap = max(2 * default_jitter, patch_size // 4)
    jitter = default_jitter if jitter is None else jitter
    gap = max(default_gap, 2 * jitter) if gap is None else gap
    return ContextGeometry(patch_size, gap, jitter)


def context_geometry(
    image_size, patch_size=None, gap=None, jitter=None, *, method="Context prediction"
):
    """Context-prediction layout for an image size, scaled from the paper by default.

    Doersch et al. use 96 px patches, a 48 px gap and up to 7 px of jitter. By
    default the jitter keeps the paper's ratio (at least 1 px), the gap is a quarter
    of a patch but at least twice the jitter (so jittered patches never overlap), and
    the patch is the largest for which the jittered 3x3 layout fits in the image:
    28 px gives 7 px patches, a 2 px gap and 1 px of jitter. Any of the three can be
    given instead; the others keep their defaults.

    Parameters
    ----------
    image_size : int or tuple of (int, int)
        Image side, or ``(height, width)``.
    patch_size : int, default=None
        Side of a patch in pixels. ``None``: the largest for which the layout fits.
    gap : int, default=None
        Pixels between neighbouring patches, at least ``2 * jitter``. ``None``: a
        quarter of a patch, at least ``2 * jitter``.
    jitter : int, default=None
        Largest shift of each patch in pixels. ``None``: the paper's 7 px per 96 px
        patch, at least 1 px.
    method : str, default="Context prediction"
        Named in the error raised when the image is too small.

    Returns
    -------
    geometry : ContextGeometry
        ``(patch_size, gap, jitter)``, with a ``span`` property.

    Raises
    ------
    ValueError
        If ``gap < 2 * jitter``, or if the layout does not fit in the image (with the
        defaults: if the image is smaller than 15 px on a side, which holds 3 px
        patches, a 2 px gap and 1 px jitter).

    Examples
    --------
    >>> from skssl.ops import context_geometry
    >>> context_geometry(28)
    ContextGeometry(patch_size=7, gap=2, jitter=1)
    >>> context_geometry(96)
    ContextGeometry(patch_size=26, gap=6, jitter=2)
    >>> context_geometry(28, gap=4)
    ContextGeometry(patch_size=6, gap=4, jitter=1)
    >>> context_geometry(20, patch_size=7)
    Traceback (most recent call last):
    ...
    ValueError: Context prediction (7 px patches, a 2 px gap, 1 px jitter) needs images ...
    """
    height, width = image_hw(image_size)
    if patch_size is not None:
        patch_size = check_int(patch_size, "patch_size", 1)
    if gap is not None:
        gap = check_int(gap, "gap", 0)
    if jitter is not None:
        jitter = check_int(jitter, "jitter", 0)
    if patch_size is not None:
        geometry = _layout(patch_size, gap, jitter)
    else:
        # The span grows with the patch, so the first that does not fit ends the search.
        geometry = _layout(_MIN_PATCH, gap, jitter)
        while (larger := _layout(geometry.patch_size + 1, gap, jitter)).span <= min(height, width):
            geometry = larger
    if geometry.gap < 2 * geometry.jitter:
        raise ValueError(
            f"gap={geometry.gap} must be at least 2 * jitter = {2 * geometry.jitter}, so "
            "that jittered patches never overlap."
        )
    check_image_size(
        (height, width),
        geometry.span,
        f"{method} ({geometry.patch_size} px patches, a {geometry.gap} px gap, "
        f"{geometry.jitter} px jitter)",
    )
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
        (:func:`~skssl.ops.normalize_patches`); ``False`` returns raw pixels (for plotting).

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
    >>> from skssl.ops import context_geometry, extract_context_pairs
    >>> x = torch.randn(4, 3, 28, 28)
    >>> g = torch.Generator().manual_seed(0)
    >>> pairs, target = extract_context_pairs(x, **context_geometry(28)._asdict(),
    ...                                       generator=g)
    >>> pairs.shape, target.shape
    (torch.Size([4, 2, 3, 7, 7]), torch.Size([4]))
    >>> bool(((target >= 0) & (target < 8)).all())
    True
    """
    check_batch(x)
    check_generator(generator)
    patch_size = check_int(patch_size, "patch_size", 1)
    jitter = check_int(jitter, "jitter", 0)
    gap = check_int(gap, "gap", 2 * jitter)
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
    centre_top = randint(0, height - span, (batch, 1), generator, x.device) + jitter + step
    centre_left = randint(0, width - span, (batch, 1), generator, x.device) + jitter + step
    target = randint(0, len(CONTEXT_OFFSETS) - 1, (batch,), generator, x.device)
    shifts = randint(-jitter, jitter, (2, batch, 2), generator, x.device)
    offsets = torch.tensor(CONTEXT_OFFSETS, device=x.device)[target]
    zero = torch.zeros_like(target)
    top = centre_top + torch.stack([zero, offsets[:, 0]], dim=1) * step + shifts[0]
    left = centre_left + torch.stack([zero, offsets[:, 1]], dim=1) * step + shifts[1]
    pairs = _gather_patches(x, top, left, patch_size)
    return (normalize_patches(pairs) if normalize else pairs), target
