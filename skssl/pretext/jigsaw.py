"""JigsawPretrainer: solve jigsaw puzzles of image tiles (Noroozi & Favaro)."""

import math
from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from ..augment import RandomHorizontalFlip
from ..base import BasePretrainer
from ..heads import mlp_head
from ..ops import (
    channel_jitter,
    default_channel_shift,
    extract_jigsaw_tiles,
    hamming_permutations,
    jigsaw_geometry,
    normalize_patches,
    random_grayscale,
    shuffle_tiles,
    turn_each,
)
from ..ops._checks import randint

# grid="auto" takes the paper's 3x3 when its tiles have at least this many pixels.
_AUTO_MIN_TILE = 16


class JigsawPretrainer(BasePretrainer):
    """Learn image features by solving jigsaw puzzles.

    Noroozi & Favaro (2016), *Unsupervised Learning of Visual Representations by
    Solving Jigsaw Puzzles*: a square region of each image is split into a
    ``grid x grid`` grid of cells, a tile is cut at a random place inside each cell
    (the gap between tiles hides the edges and lines that would let the network
    match neighbours without understanding them), the tiles are shuffled by one of
    ``n_permutations`` permutations and the network predicts which. To put the
    tiles back, it must recognise object parts and know where they go.

    As in the paper, the permutation set is fixed at fit: the permutations that
    are furthest apart in Hamming distance (greedy, from
    :func:`~skssl.ops.hamming_permutations`), stored in
    ``permutations_``; each image draws one uniformly. Every tile is normalised on
    its own (mean 0, standard deviation 1 per channel) so that tiles cannot be
    matched by brightness or contrast. The network is the paper's context-free
    network: one encoder, shared by all tiles, embeds each tile (the tiles of a
    batch go through it as one batch), the ``grid * grid`` feature vectors are
    concatenated in the shuffled order, and a one-hidden-layer MLP classifies the
    permutation: the paper's fc7-fc8 (4096 hidden units on AlexNet features) as
    :func:`~skssl.heads.mlp_head`, ``Linear(grid * grid * n_features, 256) -
    BatchNorm - ReLU - Linear(256, n_permutations)``; batch norm makes short fits
    converge much faster.

    **A batch.** For ``B`` images of ``H x W`` pixels and ``C`` channels the region
    is ``grid * cell`` pixels with ``cell = min(H, W) // grid``, and tiles have
    ``t = cell * 64 // 75`` pixels (the paper's 64 px tiles in 75 px cells; see
    :func:`~skssl.ops.jigsaw_geometry`). The encoder's inputs have
    shape ``(B, grid * grid, C, t, t)`` (28 px Fashion-MNIST, where ``grid="auto"`` is
    2: ``(B, 4, 1, 11, 11)``, tiles jittered by up to 3 px in 14 px cells; with
    ``grid=3``, ``(B, 9, 1, 7, 7)`` in 9 px cells) and the targets shape ``(B,)``,
    the index of the permutation in ``permutations_``, where
    ``inputs[b, i]`` is the tile of cell ``permutations_[targets[b], i]``. Before it
    is cut, an image is mirrored left-right with probability ``flip_p``.

    **Turned pieces** (``turn_tiles=True``, the default). The pieces of a real
    puzzle come turned, and solving it means turning each one back as well as
    putting it in its place: every tile is turned by its own random number of
    quarter turns (0 to 3), and the head says, next to the permutation, how far
    each tile was turned (4 more logits per tile, a cross-entropy added to the
    permutation's). The targets are then the pair ``(permutation index of shape
    (B,), turns of shape (B, grid * grid))``, ``turns[b, i]`` for ``inputs[b, i]``
    (:func:`torch.rot90` of the tile by ``turns[b, i]``). A tile's turn is
    told by its content (a collar is at the top of a shirt): the 2x2 puzzle alone
    is solved 98 % of the time after 23 epochs on Fashion-MNIST and stops teaching
    (89 % with the turns), the turns keep each tile's features busy with what is in
    it. On Fashion-MNIST after 300 s of fit (seeds 0, 1, 2, one session, the same
    machine): kNN-20 accuracy 0.890, 0.886, 0.877 with the turns against 0.871,
    0.865, 0.870 without (+1.7 points on average), and a linear probe of 0.903,
    0.896, 0.903 against 0.902, 0.905, 0.902 (-0.2 on average, less than the
    seeds' spread of 0.7).

    **Colour.** On colour images the puzzle could be solved from colour alone or
    from chromatic aberration (a lens shifts the colour channels a little,
    depending on where the tile was in the photograph). As in the paper, a
    fraction ``grayscale_p`` of the images is turned grey and every channel of every
    tile is shifted by up to ``channel_shift`` pixels. Both are ignored on
    grayscale images.

    **Features.** The encoder is built for the tile size, and :meth:`transform`
    applies it to the whole image (the paper's transfer setting), so it must take
    both sizes: ``"cnn"`` and ``"resnet18"`` pool globally over any size; a ViT has
    a fixed input size and is refused at fit. Each whole image is normalised like a
    tile, on its own (mean 0, standard deviation 1 per channel), since the encoder
    has only ever seen inputs normalised so; the features are thus blind to an
    image's overall brightness and contrast. Measured on Fashion-MNIST (linear probe
    on 3000 test images, two seeds), this was 0.7 and 2.3 points more accurate than
    the per-channel statistics of the training set that the other pretrainers use.

    Parameters
    ----------
    %(common_parameters)s
    grid : {2, 3} or "auto", default="auto"
        Cells per side of the puzzle, so ``grid * grid`` tiles. ``"auto"``: the
        paper's 3 when its tiles have at least 16 px (images of at least 57 px on
        their short side), else 2. On 28 px Fashion-MNIST the paper's 3x3 cuts tiles
        of 7 px, 2x2 of 11 px, and 2x2 with its 24 orders learnt better features:
        a linear probe of 0.899-0.900 (kNN-20 0.851-0.861) against 0.884-0.892
        (0.838-0.853) after 300 s of fit on the 60,000 training images, seeds 0, 1
        and 2 on one day (2 cores). Larger images were not measured: they keep the
        paper's setting.
    n_permutations : int or "auto", default="auto"
        Jigsaw classes, in ``[2, 1000]`` and at most ``(grid * grid)!`` (24 for
        ``grid=2``). ``"auto"``: the paper's 100 for a 3x3 grid, every one of the 24
        orders for 2x2. The paper found that more classes make the task harder and
        the features better, up to 1000.
    grayscale_p : float, default=0.3
        Probability that a colour image is turned grey (the paper's 30 %).
    channel_shift : int, default=None
        Largest shift, in pixels, of each colour channel of each tile. ``None``
        scales the paper's 2 px on 64 px tiles to the tile size (at least 1 px);
        0 turns it off.
    flip_p : float, default=0.5
        Probability that an image is mirrored left-right before it is cut into
        tiles. The puzzle is the same puzzle (the tiles of the mirrored image), but the
        encoder sees twice the variety of parts. On Fashion-MNIST after 300 s of fit
        (seed 1, batches of 256): a linear probe of 0.901 and kNN-20 of 0.865, against
        0.900 and 0.856 without. 0 turns it off (the paper's batch).
    turn_tiles : bool, default=True
        Turn every tile by a random number of quarter turns and predict them, next to
        the permutation (see *Turned pieces* above). Set it to ``False`` for the
        paper's puzzle, and for images without a canonical orientation (aerial or
        microscopy images), whose tiles' turns cannot be told.

    Attributes
    ----------
    permutations_ : ndarray of shape (n_permutations, grid * grid), dtype int64
        The permutation set; row ``k`` is jigsaw class ``k``. Its shape gives the
        grid and the number of permutations that ``"auto"`` chose.
    head_ : torch.nn.Sequential
        The MLP that classifies the permutation.
    %(common_attributes)s

    See Also
    --------
    ContextPretrainer : Predict where a neighbouring patch is (Doersch et al.).
    RotationPretrainer : Predict the rotation of an image.
    skssl.ops.hamming_permutations : The permutation set, as a function.

    Examples
    --------
    >>> from skssl import JigsawPretrainer
    >>> from skssl.datasets import load_fashion_mnist
    >>> X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    >>> jig = JigsawPretrainer(n_permutations=10, encoder_kwargs={"channels": (8, 16)},
    ...                        max_epochs=3, batch_size=50, random_state=0)
    >>> jig.fit_transform(X[:600]).shape
    (600, 80)
    >>> jig.permutations_.shape  # grid="auto": 2x2 on 28 px images
    (10, 4)
    >>> jig.history_[-1]["pretext_accuracy"] > 0.15  # the permutation; chance is 0.1
    True

    The pretext batch the training loop makes from 4 images: 4 tiles of 11x11 pixels
    per image, the permutation index, and how many quarter turns each tile was turned.

    >>> tiles, (target, turns) = jig.pretext_batch(X[:4])
    >>> tiles.shape, target.shape, turns.shape
    (torch.Size([4, 4, 1, 11, 11]), torch.Size([4]), torch.Size([4, 4]))
    """

    _network_parameters = (
        *BasePretrainer._network_parameters, "grid", "n_permutations", "turn_tiles"
    )
    # What skssl.load gives a file written before the parameter existed.
    _defaults_before = {"turn_tiles": False}
    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "grid": [Interval(Integral, 2, 3, closed="both"), StrOptions({"auto"})],
        "n_permutations": [Interval(Integral, 2, 1000, closed="both"), StrOptions({"auto"})],
        "grayscale_p": [Interval(Real, 0, 1, closed="both")],
        "channel_shift": [Interval(Integral, 0, None, closed="left"), None],
        "flip_p": [Interval(Real, 0, 1, closed="both")],
        "turn_tiles": ["boolean"],
    }

    _parameter_notes = {
        "batch_size": (
            "Each image gives ``grid * grid`` encoder inputs, its tiles. 256 by default:\n"
            "with the turned tiles (``turn_tiles``), the mirrored images and the cosine\n"
            "decay of 3e-3, on Fashion-MNIST after 300 s of fit (seeds 0, 1, 2), a linear\n"
            "probe of 0.902-0.904 and kNN-20 of 0.880-0.889, against 0.896-0.903 and\n"
            "0.877-0.890 with batches of 128 (the default until 2026-12-04 evening, on\n"
            "a faster machine: 23-25 epochs against 18-19). Without the turns, 128\n"
            "had won: 0.901-0.903 and 0.865-0.866 against 0.900-0.903 and\n"
            "0.855-0.859 with 256 and no flips."
        ),
        "learning_rate": (
            "3e-3, decayed along a cosine (``lr_schedule``). On Fashion-MNIST after 300 s\n"
            "of fit: with batches of 256 and the turned tiles (seed 1), a linear probe of\n"
            "0.904 and kNN-20 of 0.884 against 0.901 and 0.879 at 2e-3; before the\n"
            "turned tiles, with batches of 128 (seeds 0, 1, 2), 0.901-0.903 and\n"
            "0.865-0.866 against 0.901-0.905 and 0.857-0.862 at 2e-3."
        ),
        "lr_schedule": (
            '``"cosine"`` by default: on Fashion-MNIST after 300 s of fit (3 seeds,\n'
            "batches of 256, no flips), the cosine decay of 2e-3 gave a linear probe of\n"
            "0.900-0.903 against 0.896-0.901 with a constant 1e-3, and the same kNN-20\n"
            "(0.855-0.859 against 0.849-0.862)."
        ),
        "pooling": (
            '``"auto"`` (the pyramid for the built-in encoders) by default: on\n'
            "Fashion-MNIST after 300 s of fit, a linear probe of 0.899-0.900 against\n"
            "0.864-0.868 with the mean readout of the same fits (3 seeds)."
        ),
    }
    _attribute_notes = {
        "history_": "Chance ``pretext_accuracy`` is ``1 / len(permutations_)``."
    }

    def __init__(
        self, *, encoder="cnn", encoder_kwargs=None, image_shape=None, max_epochs=10,
        max_time=None, batch_size=256, learning_rate=3e-3, lr_schedule="cosine",
        weight_decay=1e-4, optimizer="adamw", device="auto", random_state=None, verbose=0,
        warm_start=False, channels_last=True, precision="auto", checkpoint=None,
        checkpoint_every=None, pooling="auto", grid="auto", n_permutations="auto",
        grayscale_p=0.3, channel_shift=None, flip_p=0.5, turn_tiles=True,
    ):
        self._set_params(locals())

    def _grid_for(self, image_size):
        """``grid``, with ``"auto"`` resolved for images of ``(H, W)`` pixels."""
        if self.grid != "auto":
            return self.grid
        try:
            tile = jigsaw_geometry(image_size[:2], 3).tile_size
        except ValueError:  # too small for 3x3 tiles at all
            return 2
        return 3 if tile >= _AUTO_MIN_TILE else 2

    def _n_permutations_for(self, grid):
        """``n_permutations``, with ``"auto"`` resolved for ``grid``."""
        if self.n_permutations != "auto":
            return self.n_permutations
        return 100 if grid == 3 else math.factorial(grid**2)

    @property
    def _grid(self):
        """The grid of the fitted permutation set."""
        return math.isqrt(self.permutations_.shape[1])

    def _check_image_shape(self, image_shape):
        grid = self._grid_for(image_shape)
        try:
            jigsaw_geometry(image_shape[:2], grid)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None
        n_orders = math.factorial(grid**2)
        if self._n_permutations_for(grid) > n_orders:
            raise ValueError(
                f"n_permutations={self.n_permutations} exceeds the {n_orders} orders of "
                f"{grid**2} tiles (grid={grid}): use at most {n_orders}, or "
                'n_permutations="auto".'
            )

    def _fit_method_state(self, data, random_state):
        grid = self._grid_for(data.image_shape)
        self.permutations_ = hamming_permutations(
            self._n_permutations_for(grid), grid**2, random_state=random_state
        )

    def _encoder_input_size(self, image_size):
        tile = jigsaw_geometry(image_size, self._grid).tile_size
        return (tile, tile)

    def _build_head(self, n_inputs):
        n_turns = 4 * len(self.permutations_[0]) if self.turn_tiles else 0
        return mlp_head(n_inputs, len(self.permutations_) + n_turns)

    def _make_batch(self, x, generator):
        geometry = jigsaw_geometry(x.shape[-2:], self._grid)
        if self.flip_p > 0:  # 0 draws nothing: the paper's batch, random stream and all
            x = RandomHorizontalFlip(self.flip_p)(x, generator)
        x = random_grayscale(x, self.grayscale_p, generator=generator)
        tiles = extract_jigsaw_tiles(x, *geometry, generator=generator, normalize=False)
        shift = self.channel_shift
        if shift is None:
            shift = default_channel_shift(geometry.tile_size)
        tiles = normalize_patches(channel_jitter(tiles, shift, generator=generator))
        tiles, order = shuffle_tiles(tiles, self.permutations_, generator=generator)
        if not self.turn_tiles:
            return tiles, order
        b, t = tiles.shape[:2]
        turns = randint(0, 3, (b * t,), generator, tiles.device)
        tiles = turn_each(tiles.flatten(0, 1), turns).unflatten(0, (b, t))
        return tiles, (order, turns.view(b, t))

    def _split(self, outputs):
        """The permutation logits ``(B, n_permutations)`` and each tile's turn logits
        ``(B, T, 4)``."""
        n = len(self.permutations_)
        return outputs[:, :n], outputs[:, n:].unflatten(-1, (-1, 4))

    def _loss(self, outputs, targets):
        if not self.turn_tiles:
            return super()._loss(outputs, targets)
        (order_logits, turn_logits), (order, turns) = self._split(outputs), targets
        return super()._loss(order_logits, order) + super()._loss(turn_logits, turns)

    def _count_correct(self, outputs, targets):
        if not self.turn_tiles:
            return super()._count_correct(outputs, targets)
        return super()._count_correct(self._split(outputs)[0], targets[0])  # the permutation

    def _embed(self, x):
        return self._encode(normalize_patches(x))
