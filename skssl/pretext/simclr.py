"""SimCLRPretrainer: contrastive learning between two augmented views (Chen et al. 2020)."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from .._distributed import all_gather_with_grad
from ..augment import simclr_augment
from ..base import BasePretrainer
from ..heads import SimCLRProjectionHead
from ..losses import NTXentLoss, positive_pair_accuracy


class SimCLRPretrainer(BasePretrainer):
    """Learn image features by matching two augmented views of each image (SimCLR).

    Chen, Kornblith, Norouzi & Hinton (2020), *A Simple Framework for Contrastive
    Learning of Visual Representations*. Every image of a batch of ``B`` is augmented
    twice (random resized crop, horizontal flip, colour jitter, grayscale and, if
    asked, Gaussian blur: :func:`skssl.augment.simclr_augment`); the encoder and a
    projection head (:class:`skssl.heads.SimCLRProjectionHead`) map the ``2B`` views
    to vectors, and the NT-Xent loss (:class:`skssl.losses.NTXentLoss`) pulls the two
    views of an image together and pushes them away from the ``2B - 2`` other views.
    :meth:`transform` returns the encoder's features, before the head, as the paper
    recommends (Section 4.2). In a data-parallel fit (``torchrun``), the projections of
    every rank are gathered, with their gradients, so that each view meets the
    negatives of the whole global batch, as the paper does across TPU cores.

    The augmentations run on the whole batch on the training device, driven by the
    loop's seeded generator, on images on the [0, 1] scale: uint8 images are scaled
    there; float images should already be (a warning says when they are not).
    Defaults follow the paper's CIFAR-10 choices (Appendix B.9): colour jitter
    strength 0.5, no blur, temperature 0.5, a 128-d projection. The paper trains
    with LARS, batches of 256 to 4096 and a cosine learning-rate decay
    (``lr_schedule="cosine"``); here the optimizer is AdamW by default.
    Images must have 1 (gray: only brightness and contrast jitter) or 3 channels.

    The defaults are the best recipe we measured on a CPU (``benchmarks/fashion_mnist.py``):
    views smaller than the image (``view_size="auto"``), crops from 20 % of the image
    (``crop_scale=0.2``: 8 % loses the object of a 28x28 image), and a cosine decay of a
    ``learning_rate`` of 2e-3 over ``max_epochs`` or ``max_time``. On Fashion-MNIST (the
    ``cnn`` encoder, batches of 256, 20x20 views) it gives a linear probe of 0.883 after
    15 minutes of fit on 2 CPU cores, against 0.860-0.865 with the paper's crops and
    full-size views at a constant rate.

    Parameters
    ----------
    %(common_parameters)s
    projection_dim : int, default=128
        Size of the projection the loss compares (128 in the paper).
    hidden_dim : int, default=512
        Width of the projection head's hidden layer.
    temperature : float, default=0.5
        Temperature of the NT-Xent loss (0.5 in the paper on CIFAR-10).
    crop_scale : float or tuple of (float, float), default=0.2
        Range of the crop's area as a fraction of the image, in ``(0, 1]``; a float
        ``s`` means ``(s, 1.0)``. The crop is resized to ``view_size``. The paper's
        0.08 suits 224x224 photographs; on 28x28 images 0.2 gave better features.
    jitter_strength : float, default=0.5
        Colour jitter strength ``s`` (brightness, contrast and saturation ``0.8 s``,
        hue ``0.2 s``, applied to 80 % of the views); 0 turns the jitter off.
    grayscale_p : float, default=0.2
        Probability that an RGB view is turned gray (no effect on gray images).
    blur : bool, default=False
        Whether to blur half of the views (kernel 10 % of the view size, at least
        3 pixels), as the paper does on ImageNet but not on CIFAR-10.
    view_size : "auto", int, tuple of (int, int) or None, default="auto"
        ``(height, width)`` the random crops are resized to (an int means a square);
        ``None`` keeps the image size. Smaller views train faster: on Fashion-MNIST,
        20x20 views of the 28x28 images give the ``cnn`` encoder 2x more views per
        second, and better features for the same fit time. ``"auto"`` takes
        ``round(5 / 7 * side)`` (20 for 28, 23 for 32) when the encoder is named and
        convolutional (``"cnn"``, ``"resnet18"``, ...) and the images have at least
        16 pixels a side; otherwise (ViTs, which take one input size, encoder modules
        or factories, tiny images) it keeps the image size. Smaller views need an
        encoder that pools globally, since :meth:`transform` gives it whole images;
        objects then look larger than in the average crop, which is what Touvron et
        al. (2019, *Fixing the train-test resolution discrepancy*) found helps with
        random resized crops.

    Attributes
    ----------
    head_ : SimCLRProjectionHead
        The projection head (not used by :meth:`transform`).
    %(common_attributes)s

    See Also
    --------
    skssl.augment.simclr_augment : The augmentation recipe.
    skssl.base.BasePretrainer : The training loop and the hooks a method overrides.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skssl import SimCLRPretrainer
    >>> X = load_digits().images[:200] / 16  # floats on the [0, 1] scale
    >>> # 8x8 digits lose too much in crops of 8 % of the image: keep at least half
    >>> simclr = SimCLRPretrainer(encoder_kwargs={"channels": (8, 16)}, crop_scale=0.5,
    ...                           max_epochs=5, batch_size=50, random_state=0)
    >>> simclr.fit_transform(X).shape  # 16 features, pooled over the image and 4 cells
    (200, 80)
    >>> simclr.loss_curve_[-1] < simclr.loss_curve_[0]
    True
    """

    _network_parameters = (*BasePretrainer._network_parameters, "hidden_dim", "projection_dim")
    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "projection_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "crop_scale": [Interval(Real, 0, 1, closed="right"), tuple],
        "jitter_strength": [Interval(Real, 0, None, closed="left")],
        "grayscale_p": [Interval(Real, 0, 1, closed="both")],
        "blur": ["boolean"],
        "view_size": [
            StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), tuple, list, None
        ],
    }

    _make_batch_takes_raw = True

    _parameter_notes = {
        "batch_size": "Each image gives 2 views; more images mean more negatives.",
        "learning_rate": "2e-3 with the cosine decay won our benchmarks.",
        "lr_schedule": "The paper decays with a cosine; so does ours by default.",
        "pooling": (
            '``"auto"`` by default, the pyramid for the built-in encoders: on Fashion-MNIST\n'
            "after 300 s of fit, a linear probe of 0.908 against 0.879 with the mean (the\n"
            "untrained encoder: 0.866 and 0.804)."
        ),
    }
    _attribute_notes = {
        "history_": (
            "``inputs_per_s`` counts views (twice the images); ``pretext_accuracy``\n"
            "is how often a view's nearest projection (cosine) among the ``2B - 1``\n"
            "others of its batch is its positive."
        ),
    }

    def __init__(
        self, *, encoder="cnn", encoder_kwargs=None, image_shape=None, max_epochs=10,
        max_time=None, batch_size=256, learning_rate=2e-3, lr_schedule="cosine", weight_decay=1e-4,
        optimizer="adamw", device="auto", random_state=None, verbose=0, warm_start=False,
        channels_last=True, precision="auto", checkpoint=None, checkpoint_every=None,
        pooling="auto", projection_dim=128, hidden_dim=512, temperature=0.5, crop_scale=0.2,
        jitter_strength=0.5, grayscale_p=0.2, blur=False, view_size="auto",
    ):
        self._set_params(locals())

    def _augmentation(self, image_shape):
        """The augmentation of ``(H, W, C)`` images, built from the current parameters."""
        H, W, C = image_shape
        if C not in (1, 3):
            raise ValueError(
                f"{type(self).__name__} augments gray (1 channel) or RGB (3 channels) "
                f"images, got {C} channels."
            )
        view = self._view_size((H, W))
        if self.blur and min(view) < 2:
            raise ValueError(
                f"blur=True needs views of at least 2x2 pixels, got {view[0]}x{view[1]}; "
                "use blur=False."
            )
        scale = (self.crop_scale, 1.0) if isinstance(self.crop_scale, Real) else self.crop_scale
        if (
            len(scale) != 2
            or not all(isinstance(s, Real) for s in scale)
            or not (0 < scale[0] <= scale[1] <= 1)
        ):
            raise ValueError(
                "crop_scale must be a float in (0, 1] or a pair (min, max) with "
                f"0 < min <= max <= 1, got {self.crop_scale!r}."
            )
        return simclr_augment(
            view,
            C,
            crop_scale=scale,
            jitter_strength=self.jitter_strength,
            grayscale_p=self.grayscale_p,
            blur=bool(self.blur),
        )

    def _view_size(self, image_size):
        """``(height, width)`` of the views of ``image_size`` images."""
        if self.view_size is None:
            return tuple(image_size)
        if isinstance(self.view_size, str) and self.view_size == "auto":
            named_cnn = isinstance(self.encoder, str) and not self.encoder.startswith("vit")
            if not named_cnn or min(image_size) < 16:
                return tuple(image_size)
            return tuple(max(1, round(5 * s / 7)) for s in image_size)
        size = self.view_size
        pair = (size, size) if isinstance(size, Integral) else tuple(size)
        if len(pair) != 2 or not all(isinstance(v, Integral) and v >= 1 for v in pair):
            raise ValueError(
                f"view_size must be None, a positive int or a pair of positive ints, got "
                f"{size!r}."
            )
        return int(pair[0]), int(pair[1])

    def _check_image_shape(self, image_shape):
        self._augmentation(image_shape)

    def _encoder_input_size(self, image_size):
        return self._view_size(image_size)

    def _build_head(self, n_inputs):
        return SimCLRProjectionHead(n_inputs, self.hidden_dim, self.projection_dim)

    def _make_batch(self, x, generator):
        B, C, H, W = x.shape
        # One call for both views: every image of the doubled batch draws its own
        # parameters, so rows i and B + i are two independent views of image i.
        key = (H, W, C, self.crop_scale, self.jitter_strength, self.grayscale_p, self.blur,
               self.view_size)
        if getattr(self, "_augment_cache", (None,))[0] != key:
            self._augment_cache = (key, self._augmentation((H, W, C)))
        views = self._augment_cache[1](torch.cat([x, x]), generator)
        return self._normalize(views), None

    def _loss(self, outputs, targets):
        # In a data-parallel fit, the views of every rank are negatives (a larger
        # batch of them), with gradients back to the rank that made them.
        z_a, z_b = outputs.float().chunk(2)
        return NTXentLoss(self.temperature, gather=all_gather_with_grad)(z_a, z_b)

    def _count_correct(self, outputs, targets):
        z_a, z_b = (all_gather_with_grad(z) for z in outputs.chunk(2))
        return round(positive_pair_accuracy(z_a, z_b) * len(outputs)), len(outputs)
