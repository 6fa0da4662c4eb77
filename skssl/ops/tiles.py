"""Corrupted tiles of whole images: intruders, misplaced and rotated tiles (skssl's own task)."""

import torch
import torch.nn.functional as F

from ._checks import check_batch, check_generator, check_int, randint, uniform

#: Class of a tile in the targets of :func:`corrupt_tiles`, in order.
TILE_CLASSES = ("intact", "intruder", "misplaced", "rotated")
INTACT, INTRUDER, MISPLACED, ROTATED = range(len(TILE_CLASSES))


def _tile_layout(size, n_tiles):
    """Split ``size`` pixels into ``n_tiles`` nearly equal tiles (``n_tiles <= size``).

    Returns the tile of each pixel, and the first pixel and length of each tile.
    """
    tile_of = torch.arange(size) * n_tiles // size
    start = (torch.arange(n_tiles + 1) * size + n_tiles - 1) // n_tiles
    return tile_of, start[:-1], start.diff()


def _similar(x, k):
    """The ``k`` other images of the batch most like each image, ``(B, k)`` indices:
    highest cosine similarity of their 7x7 average-pooled thumbnails."""
    thumbs = F.normalize(F.adaptive_avg_pool2d(x.float(), 7).flatten(1), dim=1)
    similarity = thumbs @ thumbs.T
    similarity.fill_diagonal_(-2.0)  # below any cosine: never an image's own donor
    return similarity.topk(k, dim=1).indices


def corrupt_tiles(
    x,
    grid=4,
    p_intruder=0.2,
    p_misplaced=0.15,
    p_rotated=0.15,
    min_change=0.1,
    *,
    generator,
    similar_donors=None,
):
    """Corrupt random tiles of every image and label what happened to each tile.

    Every image is cut into a ``grid x grid`` layout of nearly equal tiles, and every
    tile, independently, is

    - replaced, with probability ``p_intruder``, by the tile at the same place in
      another image of the batch (an *intruder*; every tile draws its own donor);
    - replaced, with probability ``p_misplaced``, by another tile of the same image,
      cut to its size (*misplaced*);
    - turned by 180 degrees in place, with probability ``p_rotated`` (*rotated*;
      180 degrees keeps the shape of a non-square tile);
    - else left *intact*.

    A corrupted tile whose pixels change by less than ``min_change`` on average
    (background replaced by background, a symmetric tile turned) is labelled intact:
    nothing in the image could tell. Tiles never straddle images, so a layout finer
    than the image (``grid`` larger than ``H`` or ``W``) uses ``min(grid, H)`` rows
    and ``min(grid, W)`` columns of tiles, and the missing tiles are always intact.
    With ``similar_donors=k``, every intruder comes from one of the ``k`` images of
    the batch most like its own (hard intruders: a sleeve of another shirt rather
    than of a sandal). Everything is one gather per batch, on ``x.device``.

    Parameters
    ----------
    x : torch.Tensor of shape (B, C, H, W)
        Normalised float image batch.
    grid : int, default=4
        Tiles per side.
    p_intruder, p_misplaced, p_rotated : float, default=0.2, 0.15, 0.15
        Probability that a tile is corrupted in each way; their sum is at most 1.
    min_change : float, default=0.1
        Smallest mean absolute change of a tile's pixels (over its pixels and
        channels, in the units of ``x``) for it to be labelled corrupted.
    generator : torch.Generator
        Source of the corruptions, donors and source tiles.
    similar_donors : int, default=None
        If set, each intruder tile's donor is drawn from the ``similar_donors`` other
        images of the batch whose 7x7 average-pooled thumbnails have the highest
        cosine similarity with its image's; ``None`` draws it from all the other
        images. Capped at ``B - 1``.

    Returns
    -------
    corrupted : torch.Tensor of shape (B, C, H, W)
    targets : torch.Tensor of shape (B, grid * grid), dtype int64
        Class of each tile, row-major: an index into :data:`TILE_CLASSES`
        (0 intact, 1 intruder, 2 misplaced, 3 rotated).

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import corrupt_tiles
    >>> x = torch.randn(8, 1, 28, 28)
    >>> g = torch.Generator().manual_seed(0)
    >>> corrupted, targets = corrupt_tiles(x, grid=4, generator=g)
    >>> corrupted.shape, targets.shape
    (torch.Size([8, 1, 28, 28]), torch.Size([8, 16]))
    >>> intact = targets[0] == 0
    >>> tiles = lambda img: img.reshape(4, 7, 4, 7).transpose(1, 2).reshape(16, 49)
    >>> bool((tiles(corrupted[0, 0])[intact] == tiles(x[0, 0])[intact]).all())
    True

    Intruders from the 2 images most like each image:

    >>> corrupted, targets = corrupt_tiles(x, grid=4, generator=g, similar_donors=2)
    >>> corrupted.shape
    torch.Size([8, 1, 28, 28])
    """
    check_batch(x)
    check_generator(generator)
    grid = check_int(grid, "grid", 1)
    if similar_donors is not None:
        similar_donors = check_int(similar_donors, "similar_donors", 1)
    probabilities = (p_intruder, p_misplaced, p_rotated)
    if min(probabilities) < 0 or sum(probabilities) > 1:
        raise ValueError(
            "p_intruder, p_misplaced and p_rotated must be non-negative and sum to at most "
            f"1; got {p_intruder}, {p_misplaced} and {p_rotated}."
        )
    batch, channels, height, width = x.shape
    device = x.device
    n_labels = grid * grid
    rows, cols = min(grid, height), min(grid, width)
    row_tile, row_start, row_len = (t.to(device) for t in _tile_layout(height, rows))
    col_tile, col_start, col_len = (t.to(device) for t in _tile_layout(width, cols))

    draw = uniform((batch, n_labels), generator, device)
    bounds = torch.tensor(probabilities, device=device).cumsum(0)
    kind = torch.where(draw < bounds[-1], torch.bucketize(draw, bounds, right=True) + 1, INTACT)
    # Donors are other images, source tiles other tiles: an offset in [1, n - 1] mod n.
    images = torch.arange(batch, device=device)[:, None]
    if similar_donors is None or batch < 2:
        donor = (images + randint(1, max(batch - 1, 1), kind.shape, generator, device)) % batch
    else:
        donor = _similar(x, min(similar_donors, batch - 1))
        pick = randint(0, donor.shape[1] - 1, kind.shape, generator, device)
        donor = donor.gather(1, pick)
    n_tiles = rows * cols
    here = torch.arange(n_labels, device=device)
    here = (here // grid) * cols + here % grid
    source = (here + randint(1, max(n_tiles - 1, 1), kind.shape, generator, device)) % n_tiles

    # Per output pixel (row-major): its tile, its offset in the tile, where it is read.
    r = torch.arange(height, device=device).repeat_interleave(width)
    c = torch.arange(width, device=device).repeat(height)
    r_tile, c_tile = row_tile[r], col_tile[c]
    label = r_tile * grid + c_tile
    dr, dc = r - row_start[r_tile], c - col_start[c_tile]
    pixel_kind, pixel_source = kind[:, label], source[:, label]
    s_row, s_col = pixel_source // cols, pixel_source % cols
    misplaced = pixel_kind == MISPLACED
    read_r = torch.where(misplaced, row_start[s_row] + torch.minimum(dr, row_len[s_row] - 1), r)
    read_c = torch.where(misplaced, col_start[s_col] + torch.minimum(dc, col_len[s_col] - 1), c)
    rotated = pixel_kind == ROTATED
    read_r = torch.where(rotated, row_start[r_tile] + row_len[r_tile] - 1 - dr, read_r)
    read_c = torch.where(rotated, col_start[c_tile] + col_len[c_tile] - 1 - dc, read_c)
    read_image = torch.where(pixel_kind == INTRUDER, donor[:, label], images)
    index = (read_image * height + read_r) * width + read_c
    flat = x.transpose(0, 1).reshape(channels, -1)
    corrupted = flat[:, index].transpose(0, 1).reshape(x.shape)

    change = (corrupted - x).abs().mean(1).flatten(1)
    tile_change = torch.zeros((batch, n_labels), device=device, dtype=change.dtype)
    tile_change.index_add_(1, label, change)
    tile_size = torch.bincount(label, minlength=n_labels).clamp(min=1)
    targets = torch.where(tile_change > min_change * tile_size, kind, INTACT)
    return corrupted, targets
