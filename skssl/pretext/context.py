"""ContextPretrainer: predict where a neighbouring patch is (Doersch, Gupta & Efros)."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from .._data import check_image_size
from ..base import BasePretrainer, mlp_head
from ._patches import (
    _MIN_TILE,
    CONTEXT_OFFSETS,
    _default_context,
    channel_jitter,
    default_channel_shift,
    extract_context_pairs,
    normalize_patches,
)


class ContextPretrainer(BasePretrainer):
    """Learn image features by predicting the relative position of two patches.

    Doersch, Gupta & Efros (2015), *Unsupervised Visual Representation Learning by
    Context Prediction*: the network sees the centre patch of a 3x3 layout and one
    of its 8 neighbours, and predicts which of the 8 it is. To tell that a patch
    is above another, it must recognise what both show (an ear is above an eye, a
    collar above a sleeve). As in the paper, the patches are separated by a
    ``gap`` and each is moved by up to ``jitter`` pixels, so that the answer cannot
    be read off lines and textures continuing across the border; every patch is
    normalised on its own (mean 0, standard deviation 1 per channel). The network
    is the paper's late-fusion siamese one: one encoder, shared by both patches
    (they go through it as one batch), embeds each patch, the two feature vectors
    are concatenated (centre first) and a one-hidden-layer MLP classifies the
    position: the paper's fc7-fc8 (4096 hidden units on AlexNet features) as
    :func:`~skssl.base.mlp_head`, ``Linear(2 * n_features, 256) - BatchNorm - ReLU -
    Linear(256, 8)``.

    **A batch.** For ``B`` images of ``C`` channels the encoder's inputs have shape
    ``(B, 2, C, p, p)``, ``inputs[:, 0]`` the centre patch and ``inputs[:, 1]`` the
    neighbour, and the targets shape ``(B,)``, in ``0..7``: the neighbour's
    ``(row, column)`` offset is ``CONTEXT_OFFSETS[target]`` (row-major around the
    centre: 0 top-left, 1 above, 3 left, 4 right, 7 bottom-right). The layout is
    placed at random where it fits. 28 px Fashion-MNIST gives ``(B, 2, 1, 7, 7)``:
    7 px patches, a 2 px gap, 1 px jitter
    (:func:`~skssl.pretext._patches.context_geometry`, scaled from the paper's
    96 px patches, 48 px gap, 7 px jitter).

    **Colour.** Lenses focus colours slightly differently (chromatic aberration),
    so the offset between colour channels tells where a patch was in the
    photograph and gives the answer away; Doersch et al. found their network
    exploiting it. ``color_guard`` removes the cue: ``"jitter"`` shifts every
    channel of every patch by its own random offset of up to 1 px (more for
    patches over 48 px, scaling Noroozi & Favaro's 2 px on 64 px tiles), which
    drowns the sub-pixel aberration while keeping colour; ``"grayscale"`` turns
    the images grey at fit *and* at :meth:`transform` (every channel set to their
    mean), like the paper's projection that removes the colour axis the
    aberration lives on, so colour is absent from the features too; ``None``
    keeps the images as they are. Grayscale images are not changed.

    **Features.** The encoder is built for the patch size, and :meth:`transform`
    applies it to the whole image, which must therefore work for both sizes:
    ``"cnn"`` and ``"resnet18"`` pool globally over any size; a ViT has a fixed input
    size and is refused at fit. Each whole image is normalised like a patch, on its
    own (as in :class:`JigsawPretrainer`; on Fashion-MNIST, 2 and 3 points of
    linear-probe accuracy better than the training set's per-channel statistics).

    Parameters
    ----------
    encoder : str, torch.nn.Module or callable, default="cnn"
        A name from :func:`skssl.encoders.available_encoders`, a module (deep-copied at
        fit, never trained in place) or a factory returning a module. It must take
        patches and whole images: ``"cnn"`` or ``"resnet18"``.
    encoder_kwargs : dict, default=None
        Keyword arguments of a named encoder or a factory.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` of flattened input; ``None`` infers a square shape.
    max_epochs : int, default=10
        Passes over the data in :meth:`fit`.
    max_time : float, default=None
        Time budget of :meth:`fit` in seconds.
    batch_size : int, default=512
        Images per batch (each gives one pair, two encoder inputs). Larger than the
        other methods' 256: two small patches per image are little work per step, and
        with 256 images the head and optimizer took 20 % of the fit on a CPU (9 % with
        512, at the same accuracy).
    learning_rate : float, default=1e-3
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` decays the learning rate towards 0 over each fit call (or over
        ``max_time``, when that budget ends first).
    weight_decay : float, default=1e-4
    optimizer : {"adamw", "adam", "sgd"}, default="adamw"
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling and the patch positions.
    verbose : int, default=0
        Show a progress bar per epoch.
    warm_start : bool, default=False
        Whether :meth:`fit` continues from the previous fit.
    channels_last : bool, default=True
        Run the encoder on ``channels_last`` (NHWC) tensors, about 1.5x faster
        for convolutions on a CPU; False for an encoder that calls ``.view`` on
        its activations.
    patch_size : int, default=None
        Side of a patch in pixels. ``None``: the largest for which the jittered 3x3
        layout fits in the image.
    gap : int, default=None
        Pixels between neighbouring patches, at least ``2 * jitter`` (so that
        jittered patches never overlap). ``None``: a quarter of a patch, at least
        ``2 * jitter``.
    jitter : int, default=None
        Largest shift of each patch in pixels. ``None``: the paper's 7 px per 96 px
        patch, at least 1 px.
    color_guard : {"jitter", "grayscale"} or None, default="jitter"
        Guard against chromatic aberration on colour images (see above).

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The trained encoder.
    head_ : torch.nn.Sequential
        The MLP that classifies the position.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    history_ : list of dict
        Per epoch: ``loss``, ``seconds``, ``images_per_s``, ``inputs_per_s``
        (patches) and ``pretext_accuracy`` (chance is 1/8).
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
    JigsawPretrainer : Put the shuffled tiles of an image back in order.
    RotationPretrainer : Predict the rotation of an image.

    Examples
    --------
    >>> import torch
    >>> from skssl import ContextPretrainer
    >>> from skssl.datasets import load_fashion_mnist
    >>> X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    >>> ctx = ContextPretrainer(encoder_kwargs={"channels": (8, 16)}, max_epochs=3,
    ...                         batch_size=50, random_state=0)
    >>> ctx.fit_transform(X[:300]).shape
    (300, 16)
    >>> ctx.history_[-1]["pretext_accuracy"] > 0.2  # chance is 0.125
    True

    The pretext batch the training loop makes from 4 images (normalised, as
    ``(B, C, H, W)``): a centre and a neighbour patch of 7x7 pixels per image, and
    the neighbour's position.

    >>> x = torch.randn(4, 1, 28, 28)
    >>> pairs, target = ctx._make_batch(x, torch.Generator().manual_seed(0))
    >>> pairs.shape, target.shape
    (torch.Size([4, 2, 1, 7, 7]), torch.Size([4]))
    >>> bool(((0 <= target) & (target < 8)).all())
    True
    """

    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "patch_size": [Interval(Integral, 1, None, closed="left"), None],
        "gap": [Interval(Integral, 0, None, closed="left"), None],
        "jitter": [Interval(Integral, 0, None, closed="left"), None],
        "color_guard": [StrOptions({"jitter", "grayscale"}), None],
    }

    def __init__(
        self,
        *,
        encoder="cnn",
        encoder_kwargs=None,
        image_shape=None,
        max_epochs=10,
        max_time=None,
        batch_size=512,
        learning_rate=1e-3,
        lr_schedule="constant",
        weight_decay=1e-4,
        optimizer="adamw",
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
        channels_last=True,
        patch_size=None,
        gap=None,
        jitter=None,
        color_guard="jitter",
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
        self.patch_size = patch_size
        self.gap = gap
        self.jitter = jitter
        self.color_guard = color_guard

    def _layout(self, patch_size):
        """The layout for ``patch_size``, the given gap and jitter, defaults for the rest."""
        default = _default_context(patch_size)
        jitter = default.jitter if self.jitter is None else self.jitter
        gap = max(default.gap, 2 * jitter) if self.gap is None else self.gap
        return default._replace(gap=gap, jitter=jitter)

    def _geometry(self, image_size):
        """The patch layout for images of ``image_size``; raise if it does not fit."""
        if self.patch_size is not None:
            geometry = self._layout(self.patch_size)
        else:
            # The span grows with the patch, so the first that does not fit ends the search.
            geometry = self._layout(_MIN_TILE)
            while (larger := self._layout(geometry.patch_size + 1)).span <= min(image_size):
                geometry = larger
        if geometry.gap < 2 * geometry.jitter:
            raise ValueError(
                f"gap={geometry.gap} must be at least 2 * jitter = {2 * geometry.jitter}, so "
                "that jittered patches never overlap."
            )
        check_image_size(
            image_size,
            geometry.span,
            f"{type(self).__name__} ({geometry.patch_size} px patches, a {geometry.gap} px "
            f"gap, {geometry.jitter} px jitter)",
        )
        return geometry

    def _check_image_shape(self, image_shape):
        self._geometry(image_shape[:2])

    def _encoder_input_size(self, image_size):
        patch = self._geometry(image_size).patch_size
        return (patch, patch)

    def _build_head(self, n_features):
        return mlp_head(2 * n_features, len(CONTEXT_OFFSETS))

    def _prepare(self, x):
        if self.color_guard == "grayscale":
            return x.mean(dim=1, keepdim=True).expand_as(x)
        return x

    def _make_batch(self, x, generator):
        geometry = self._geometry(x.shape[-2:])
        pairs, targets = extract_context_pairs(
            x, *geometry, generator=generator, normalize=False
        )
        if self.color_guard == "jitter":
            shift = default_channel_shift(geometry.patch_size)
            pairs = channel_jitter(pairs, shift, generator=generator)
        return normalize_patches(pairs), targets

    def _features(self, x):
        return self.encoder_(normalize_patches(x))
