"""IntruderPretrainer: spot the tiles of a whole image that do not belong there (ours)."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from ..base import BasePretrainer, mlp_head
from ._patches import _check_batch, _check_generator, _check_int, _randint

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


def corrupt_tiles(
    x,
    grid=4,
    p_intruder=0.2,
    p_misplaced=0.15,
    p_rotated=0.15,
    min_change=0.1,
    *,
    generator,
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
    Everything is one gather per batch, on ``x.device``.

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

    Returns
    -------
    corrupted : torch.Tensor of shape (B, C, H, W)
    targets : torch.Tensor of shape (B, grid * grid), dtype int64
        Class of each tile, row-major: an index into :data:`TILE_CLASSES`
        (0 intact, 1 intruder, 2 misplaced, 3 rotated).

    Examples
    --------
    >>> import torch
    >>> from skssl.pretext.intruder import corrupt_tiles
    >>> x = torch.randn(8, 1, 28, 28)
    >>> g = torch.Generator().manual_seed(0)
    >>> corrupted, targets = corrupt_tiles(x, grid=4, generator=g)
    >>> corrupted.shape, targets.shape
    (torch.Size([8, 1, 28, 28]), torch.Size([8, 16]))
    >>> intact = targets[0] == 0
    >>> tiles = lambda img: img.reshape(4, 7, 4, 7).transpose(1, 2).reshape(16, 49)
    >>> bool((tiles(corrupted[0, 0])[intact] == tiles(x[0, 0])[intact]).all())
    True
    """
    _check_batch(x)
    _check_generator(generator)
    grid = _check_int(grid, "grid", 1)
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

    draw = torch.rand((batch, n_labels), generator=generator, device=generator.device).to(device)
    bounds = torch.tensor(probabilities, device=device).cumsum(0)
    kind = torch.where(draw < bounds[-1], torch.bucketize(draw, bounds, right=True) + 1, INTACT)
    # Donors are other images, source tiles other tiles: an offset in [1, n - 1] mod n.
    images = torch.arange(batch, device=device)[:, None]
    donor = (images + _randint(1, max(batch - 1, 1), kind.shape, generator, device)) % batch
    n_tiles = rows * cols
    here = torch.arange(n_labels, device=device)
    here = (here // grid) * cols + here % grid
    source = (here + _randint(1, max(n_tiles - 1, 1), kind.shape, generator, device)) % n_tiles

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


class IntruderPretrainer(BasePretrainer):
    """Learn image features by spotting the tiles of an image that do not belong there.

    Our pretext task (skssl's invented one). Every training image is cut into a
    ``grid x grid`` layout of tiles, and random tiles are corrupted in one of three
    ways (:func:`corrupt_tiles`): replaced by the tile at the same place in *another
    image of the batch* (an intruder), replaced by another tile of the same image
    (misplaced), or turned by 180 degrees in place (rotated). The encoder sees the
    whole corrupted image, and a head on its pooled features says, for every tile,
    which of the four classes (intact, intruder, misplaced, rotated) it is in. The
    head is the MLP of the classic methods (:func:`~skssl.base.mlp_head`), whose last
    layer gives the ``4 * grid**2`` logits.

    Motivation: the classic predictive tasks (rotation, jigsaw, context) are known to
    have three weaknesses, and this task answers each of them.

    - **Tiny output space** (4 rotations, 8 neighbour positions): the answer here
      is one of four classes for each of ``grid**2`` tiles, ``4**16`` joint answers
      on the default 4x4 layout, so one image gives 16 graded decisions and the task
      does not saturate after a few epochs.
    - **No negatives from other images**: intruders come from the other images of
      the batch, at the same place. To see that a sleeve does not belong to this
      trouser, the network must know what belongs together, that is tell images
      apart, as contrastive methods do, without their pairs, projection head or
      large batches.
    - **Shortcuts**: intruders come from the same place in their donor, so position,
      border and background statistics do not give them away; all three corruptions
      leave the same seams at the tile borders, so seams say *that* a tile changed but
      not *how*: the class must be read from the content; and a corruption that
      does not change the image is labelled intact, so there is no unlearnable
      noise. Intruders and misplaced tiles need no canonical orientation, so the task
      stays meaningful on images that give their orientation away or have none
      (set ``p_rotated=0`` for those, aerial or microscopy images say).

    Unlike jigsaw and context prediction, whose encoder sees small tiles, the encoder
    here always sees whole images, as in :meth:`transform`, and the tile answers
    must be read from its pooled features, which therefore learn what is where.

    Parameters
    ----------
    grid : int, default=4
        Tiles per side (7x7-pixel tiles on 28x28 images); ``grid**2`` answers per
        image.
    p_intruder : float, default=0.2
        Probability that a tile is replaced by the same tile of another image.
    p_misplaced : float, default=0.15
        Probability that a tile is replaced by another tile of the same image.
    p_rotated : float, default=0.15
        Probability that a tile is turned by 180 degrees in place. The three
        probabilities sum to at most 1.
    min_change : float, default=0.1
        A corrupted tile whose pixels change by less than this on average (in units
        of the per-channel standard deviation) is labelled intact.
    encoder : str, torch.nn.Module or callable, default="cnn"
        A name from :func:`skssl.encoders.available_encoders`, a module (deep-copied at
        fit, never trained in place) or a factory returning a module.
    encoder_kwargs : dict, default=None
        Keyword arguments of a named encoder or a factory.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` of flattened input; ``None`` infers a square shape.
    max_epochs : int, default=10
        Passes over the data in :meth:`fit`.
    max_time : float, default=None
        Time budget of :meth:`fit` in seconds.
    batch_size : int, default=256
        Images per batch (one corrupted copy each); intruders come from the same batch.
    learning_rate : float, default=1e-3
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` decays the learning rate towards 0 over each fit call (or over
        ``max_time``, when that budget ends first).
    weight_decay : float, default=1e-4
    optimizer : {"adamw", "adam", "sgd"}, default="adamw"
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
        Show a progress bar per epoch.
    warm_start : bool, default=False
        Whether :meth:`fit` continues from the previous fit.
    channels_last : bool, default=True
        Run the encoder on ``channels_last`` (NHWC) tensors, about 1.5x faster
        for convolutions on a CPU; False for an encoder that calls ``.view`` on
        its activations.

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The trained encoder.
    head_ : torch.nn.Module
        MLP from the pooled features to ``(grid**2, 4)`` tile-class logits.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    history_ : list of dict
        Per epoch: ``loss``, ``seconds``, ``images_per_s``, ``inputs_per_s`` and
        ``pretext_accuracy`` (over tiles; most tiles are intact with the defaults).
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
        ``H * W * C``.
    image_shape_ : tuple of (int, int, int)
        ``(H, W, C)`` seen at fit.
    channel_mean_, channel_std_ : ndarray of shape (C,)
        Per-channel normalisation learnt at fit.
    device_ : str
        Device used by the last fit.

    See Also
    --------
    corrupt_tiles : The corruption and its labels.
    RotationPretrainer : A classic predictive task, with 4 answers per image.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skssl import IntruderPretrainer
    >>> X = load_digits().images[:200]
    >>> est = IntruderPretrainer(encoder_kwargs={"channels": (8, 16)}, max_epochs=3,
    ...                          batch_size=50, random_state=0)
    >>> est.fit_transform(X).shape
    (200, 16)
    >>> est.loss_curve_[-1] < est.loss_curve_[0]
    True
    """

    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "grid": [Interval(Integral, 1, None, closed="left")],
        "p_intruder": [Interval(Real, 0, 1, closed="both")],
        "p_misplaced": [Interval(Real, 0, 1, closed="both")],
        "p_rotated": [Interval(Real, 0, 1, closed="both")],
        "min_change": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        grid=4,
        p_intruder=0.2,
        p_misplaced=0.15,
        p_rotated=0.15,
        min_change=0.1,
        encoder="cnn",
        encoder_kwargs=None,
        image_shape=None,
        max_epochs=10,
        max_time=None,
        batch_size=256,
        learning_rate=1e-3,
        lr_schedule="constant",
        weight_decay=1e-4,
        optimizer="adamw",
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
        channels_last=True,
    ):
        super().__init__(
            encoder=encoder,
            encoder_kwargs=encoder_kwargs,
            image_shape=image_shape,
            max_epochs=max_epochs,
            max_time=max_time,
            batch_size=batch_size,
            learning_rate=learning_rate,
            lr_schedule=lr_schedule,
            weight_decay=weight_decay,
            optimizer=optimizer,
            device=device,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            channels_last=channels_last,
        )
        self.grid = grid
        self.p_intruder = p_intruder
        self.p_misplaced = p_misplaced
        self.p_rotated = p_rotated
        self.min_change = min_change

    def _build_head(self, n_features):
        n_tiles = self.grid * self.grid
        return nn.Sequential(
            mlp_head(n_features, n_tiles * len(TILE_CLASSES)),
            nn.Unflatten(1, (n_tiles, len(TILE_CLASSES))),
        )

    def _make_batch(self, x, generator):
        return corrupt_tiles(
            x,
            self.grid,
            self.p_intruder,
            self.p_misplaced,
            self.p_rotated,
            self.min_change,
            generator=generator,
        )
