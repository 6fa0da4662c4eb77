"""ContextPretrainer: predict where a neighbouring patch is (Doersch, Gupta & Efros)."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from ..base import BasePretrainer
from ..heads import mlp_head
from ..ops import (
    CONTEXT_OFFSETS,
    channel_jitter,
    context_geometry,
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
    :func:`~skssl.heads.mlp_head`, ``Linear(2 * n_features, 256) - BatchNorm - ReLU -
    Linear(256, 8)``.

    **A batch.** For ``B`` images of ``C`` channels the encoder's inputs have shape
    ``(B, 2, C, p, p)``, ``inputs[:, 0]`` the centre patch and ``inputs[:, 1]`` the
    neighbour, and the targets shape ``(B,)``, in ``0..7``: the neighbour's
    ``(row, column)`` offset is ``CONTEXT_OFFSETS[target]`` (row-major around the
    centre: 0 top-left, 1 above, 3 left, 4 right, 7 bottom-right). The layout is
    placed at random where it fits. 28 px Fashion-MNIST gives ``(B, 2, 1, 7, 7)``:
    7 px patches, a 2 px gap, 1 px jitter
    (:func:`~skssl.ops.context_geometry`, scaled from the paper's
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
    %(common_parameters)s
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
    head_ : torch.nn.Sequential
        The MLP that classifies the position.
    %(common_attributes)s

    See Also
    --------
    JigsawPretrainer : Put the shuffled tiles of an image back in order.
    RotationPretrainer : Predict the rotation of an image.

    Examples
    --------
    >>> from skssl import ContextPretrainer
    >>> from skssl.datasets import load_fashion_mnist
    >>> X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    >>> ctx = ContextPretrainer(encoder_kwargs={"channels": (8, 16)}, max_epochs=3,
    ...                         batch_size=50, random_state=0)
    >>> ctx.fit_transform(X[:300]).shape
    (300, 80)
    >>> ctx.history_[-1]["pretext_accuracy"] > 0.2  # chance is 0.125
    True

    The pretext batch the training loop makes from 4 images: a centre and a
    neighbour patch of 7x7 pixels per image, and the neighbour's position.

    >>> pairs, target = ctx.pretext_batch(X[:4])
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

    _parameter_notes = {
        "batch_size": (
            "Each image gives one pair, two encoder inputs. Larger than the other\n"
            "methods' 256: two small patches per image are little work per step, and\n"
            "with 256 images the head and optimizer took 20 % of the fit on a CPU (9 %\n"
            "with 512, at the same accuracy)."
        ),
        "learning_rate": (
            "4e-3, decayed along a cosine (``lr_schedule``): on Fashion-MNIST after 300 s\n"
            "of fit (seeds 0, 1, 2, one session), a linear probe of 0.905, 0.905, 0.908\n"
            "and kNN-20 of 0.876, 0.872, 0.875, against 0.904, 0.904, 0.901 and 0.873,\n"
            "0.869, 0.873 with 2e-3 (the default until 2026-12-05; measured the same night,\n"
            "where 2e-3 gave 0.901-0.907 on seed 2 in three fits)."
        ),
        "lr_schedule": (
            '``"cosine"`` by default: on Fashion-MNIST after 300 s of fit (3 seeds), the\n'
            "cosine decay of 2e-3 gave a linear probe of 0.902-0.906 against 0.897-0.905\n"
            "with a constant 1e-3, and a kNN-20 of 0.869-0.875 against 0.870-0.877."
        ),
        "pooling": (
            '``"auto"`` (the pyramid for the built-in encoders) by default: on\n'
            "Fashion-MNIST after 300 s of fit, a linear probe of 0.897-0.902 against\n"
            "0.866-0.869 with the mean readout of the same fits (3 seeds)."
        ),
    }
    _attribute_notes = {"history_": "Chance ``pretext_accuracy`` is 1/8."}

    def __init__(
        self, *, encoder="cnn", encoder_kwargs=None, image_shape=None, max_epochs=10,
        max_time=None, batch_size=512, learning_rate=4e-3, lr_schedule="cosine",
        weight_decay=1e-4, optimizer="adamw", device="auto", random_state=None, verbose=0,
        warm_start=False, channels_last=True, precision="auto", checkpoint=None,
        checkpoint_every=None, pooling="auto", patch_size=None, gap=None, jitter=None,
        color_guard="jitter",
    ):
        self._set_params(locals())

    def _geometry(self, image_size):
        """The patch layout for images of ``image_size``; raise if it does not fit."""
        return context_geometry(
            image_size, self.patch_size, self.gap, self.jitter, method=type(self).__name__
        )

    def _check_image_shape(self, image_shape):
        self._geometry(image_shape[:2])

    def _encoder_input_size(self, image_size):
        patch = self._geometry(image_size).patch_size
        return (patch, patch)

    def _build_head(self, n_inputs):
        return mlp_head(n_inputs, len(CONTEXT_OFFSETS))

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

    def _embed(self, x):
        return self._encode(normalize_patches(x))
