"""MAEPretrainer: reconstruct the hidden patches of images (masked autoencoders)."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..base import BasePretrainer
from ..device import autocast, resolve_device, to_memory_format
from ..heads import MAEDecoder
from ..losses import masked_patch_mse
from ..ops import random_masking

# What MAE asks of an encoder: the patch interface of skssl's VisionTransformer.
_PATCH_API = ("forward_tokens", "patchify", "unpatchify", "patch_size", "grid_size")
# The variance floor of per-patch normalised targets, as in the MAE code.
_NORM_PIX_EPS = 1e-6
# The named encoders whose patch size MAE picks when encoder_kwargs does not.
_NAMED_VITS = ("vit_tiny", "vit_small")


def _mae_patch_size(image_size):
    """The largest patch side of at most 16 pixels dividing both sides of
    ``image_size`` into at least 4 patches each (1 for images under 4 pixels)."""
    for p in range(16, 0, -1):
        if all(side % p == 0 and side // p >= 4 for side in image_size):
            return p
    return 1


class MAEPretrainer(BasePretrainer):
    """Learn image features by reconstructing randomly hidden patches (MAE).

    He, Chen, Xie, Li, Dollár & Girshick (2022), *Masked Autoencoders Are Scalable
    Vision Learners*. Each image is cut into patches and a random ``mask_ratio`` of
    them is hidden, independently per image (:func:`skssl.ops.random_masking`); the
    encoder, a Vision Transformer, sees the visible patches alone, and a small
    decoder (:class:`skssl.heads.MAEDecoder`) puts mask tokens in the other places
    and predicts the pixels of every patch. The loss is the mean squared error on the
    hidden patches only (:func:`skssl.losses.masked_patch_mse`), against pixels
    normalised per patch when ``norm_pix_loss``. With most patches hidden, the task
    cannot be solved by interpolating neighbours, and the encoder is cheap: it runs on
    a quarter of the tokens.

    The encoder must have patch tokens: ``"vit_tiny"`` (the default), ``"vit_small"``,
    a :class:`~skssl.encoders.VisionTransformer` or a factory returning one; others
    (``"cnn"``, ``"resnet18"``) are refused at fit. The patch size is set as for every
    encoder, ``encoder_kwargs={"patch_size": p}``, and must divide both sides of the
    images. For ``"vit_tiny"`` and ``"vit_small"`` without a ``patch_size``, MAE
    picks its own: the largest side of at most 16 pixels that cuts both sides of the
    images into at least 4 patches each. That is 7 on 28x28 images (16 patches, 4
    visible at ``mask_ratio=0.75``), 8 on 32x32 ones, and the paper's 16 on 224x224
    ones. Coarse patches make each step cheap, so a short fit on a CPU sees many
    more images. On Fashion-MNIST, 300 s of fit on 2 CPU cores gave 3 epochs with
    7-pixel patches and 1 with 4-pixel ones, and a linear probe 2.3 points above the
    same ViT untrained, against 0.7 points below it (probes on 10,000 images). After
    900 s (8 epochs, 7-pixel patches), the linear probe reads 0.854 against 0.801
    untrained and kNN 0.840 against 0.722 (4-pixel patches, 900 s: 0.821 against
    0.806).

    :meth:`transform` runs the encoder on all the patches, unmasked, and returns the
    mean of the patch tokens (the ViT's default ``pool="mean"``, the ``global_pool``
    of the MAE code). MAE's features are strong after fine-tuning but less linearly
    separable than those of contrastive methods: the paper's linear probes are well
    below its fine-tuning results (Section 4.3), so expect a weaker linear probe than
    :class:`~skssl.SimCLRPretrainer` gives. ``pooling="pyramid"`` (the mean of the
    token grid and of its four quadrants) gave better features on Fashion-MNIST after
    900 s (0.871 linear / 0.846 kNN against 0.851 / 0.841 with the mean, same fit),
    but it lifts an untrained ViT more (0.859 against 0.801), so the default stays
    the paper's mean. :meth:`reconstruct` shows the task;
    :meth:`pretext_batch` is not available, since MAE's step does not fit the
    ``(inputs, targets)`` mould.

    The paper trains for 800 to 1600 epochs with AdamW, weight decay 0.05 and a
    cosine decay (``lr_schedule="cosine"``) after a warm-up.

    Parameters
    ----------
    %(common_parameters)s
    mask_ratio : float, default=0.75
        Fraction of the patches hidden in every image, in ``(0, 1)``; 75 % worked
        best in the paper. ``round(mask_ratio * n_patches)`` patches are hidden, at
        least one patch stays visible.
    norm_pix_loss : bool, default=True
        Predict the pixels of each hidden patch normalised by the patch's own mean and
        standard deviation, which gave the paper better features.
    decoder_dim : int, default=128
        Width of the decoder; a multiple of 4 and of ``decoder_heads``.
    decoder_depth : int, default=2
        Transformer blocks of the decoder.
    decoder_heads : int, default=4
        Attention heads of the decoder's blocks.

    Attributes
    ----------
    head_ : MAEDecoder
        The decoder (not used by :meth:`transform`).
    %(common_attributes)s

    Notes
    -----
    The paper's decoder (512 wide, 8 blocks) is sized for the 196 patches of
    224x224 images; its ablations (Table 1a-b) find that a narrow, shallow decoder
    costs little in fine-tuning, though more in linear probing. On small images and a
    CPU, 128 wide and 2 blocks keep the decoder, which runs on every patch, cheaper
    than the encoder: with ``"vit_tiny"`` on 28x28 images it has 0.4M parameters to
    the encoder's 5.3M, and about a third of its multiply-adds. A class token
    (``pool="cls"``) is not passed to the decoder.

    See Also
    --------
    skssl.heads.MAEDecoder : The decoder.
    skssl.base.BasePretrainer : The training loop and the hooks a method overrides.

    Examples
    --------
    >>> from skssl import MAEPretrainer
    >>> from skssl.datasets import load_fashion_mnist
    >>> X = load_fashion_mnist(subset="test").images[:200]
    >>> vit = {"patch_size": 7, "embed_dim": 32, "depth": 1, "num_heads": 2}
    >>> mae = MAEPretrainer(encoder_kwargs=vit, decoder_dim=32, decoder_depth=1,
    ...                     max_epochs=3, batch_size=50, random_state=0)
    >>> mae.fit_transform(X).shape
    (200, 32)
    >>> mae.loss_curve_[-1] < mae.loss_curve_[0]
    True

    The task on two images: 12 of their 16 patches of 7x7 pixels are hidden.

    >>> original, masked, reconstruction = mae.reconstruct(X[:2])
    >>> original.shape, masked.shape, reconstruction.shape
    ((2, 28, 28), (2, 28, 28), (2, 28, 28))
    """

    _network_parameters = (
        *BasePretrainer._network_parameters, "decoder_dim", "decoder_depth", "decoder_heads"
    )
    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "mask_ratio": [Interval(Real, 0, 1, closed="neither")],
        "norm_pix_loss": ["boolean"],
        "decoder_dim": [Interval(Integral, 4, None, closed="left")],
        "decoder_depth": [Interval(Integral, 1, None, closed="left")],
        "decoder_heads": [Interval(Integral, 1, None, closed="left")],
    }

    _parameter_notes = {
        "encoder": (
            'MAE needs patch tokens: ``"vit_tiny"``, ``"vit_small"`` or a\n'
            ":class:`~skssl.encoders.VisionTransformer`; others are refused at fit."
        ),
        "encoder_kwargs": 'The patch size is ``{"patch_size": p}``.',
    }
    _attribute_notes = {"history_": "``pretext_accuracy`` is None: the task is a regression."}

    def __init__(
        self, *, encoder="vit_tiny", encoder_kwargs=None, image_shape=None, max_epochs=10,
        max_time=None, batch_size=256, learning_rate=1e-3, lr_schedule="constant",
        weight_decay=1e-4, optimizer="adamw", device="auto", random_state=None, verbose=0,
        warm_start=False, channels_last=True, precision="auto", checkpoint=None,
        checkpoint_every=None, pooling="mean", mask_ratio=0.75, norm_pix_loss=True,
        decoder_dim=128, decoder_depth=2, decoder_heads=4,
    ):
        self._set_params(locals())

    def _encoder_kwargs(self, input_size):
        kwargs = dict(self.encoder_kwargs or {})
        if self.encoder in _NAMED_VITS and "patch_size" not in kwargs:
            kwargs["patch_size"] = _mae_patch_size(input_size)
        return kwargs

    def _build_head(self, n_inputs):
        encoder = self.encoder_
        if not all(hasattr(encoder, name) for name in _PATCH_API):
            raise ValueError(
                f"{type(self).__name__} encodes the visible patches alone, so its encoder "
                f"needs patch tokens ({', '.join(_PATCH_API)}, as "
                "skssl.encoders.VisionTransformer has): use encoder='vit_tiny' or "
                "'vit_small', a VisionTransformer, or a factory returning one; got "
                f"{type(encoder).__name__} (encoder={self.encoder!r})."
            )
        rows, cols = encoder.grid_size
        n_patches = rows * cols
        if min(round(self.mask_ratio * n_patches), n_patches - 1) < 1:
            raise ValueError(
                f"mask_ratio={self.mask_ratio} hides none of the {n_patches} patches "
                f"({rows}x{cols}, of {encoder.patch_size}x{encoder.patch_size} pixels): MAE "
                "needs a hidden and a visible patch per image. Raise mask_ratio, or lower "
                'encoder_kwargs["patch_size"].'
            )
        patch_dim = encoder.patch_size**2 * self.image_shape_[2]
        return MAEDecoder(encoder.grid_size, patch_dim, n_inputs, self.decoder_dim,
                          self.decoder_depth, self.decoder_heads)

    def _train_step(self, net, x, generator):
        encoder, decoder = net.encoder, net.head
        keep, mask = random_masking(len(x), decoder.num_patches, self.mask_ratio,
                                    generator=generator, device=x.device)
        with autocast(x.device, self.precision):
            pred = self._predict(encoder, decoder, x, keep)
            loss = masked_patch_mse(pred, encoder.patchify(x), mask,
                                    norm_pix=self.norm_pix_loss, eps=_NORM_PIX_EPS)
        return loss, {"inputs": len(x)}

    def _predict(self, encoder, decoder, x, keep):
        """The decoder's pixels of every patch of ``x``, from the patches in ``keep``."""
        tokens = encoder.forward_tokens(to_memory_format(x, self.channels_last), keep)
        # The decoder puts patch tokens back in place: a class token has no place.
        return decoder(tokens[:, getattr(encoder, "num_prefix_tokens", 0):], keep)

    def reconstruct(self, X, *, random_state=0):
        """Hide patches of images as in training, and reconstruct them.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
            Images of the shape seen at fit.
        random_state : int, default=0
            Seed of the masks.

        Returns
        -------
        original, masked_input, reconstruction : ndarray of the shape of X, float32
            On the scale of ``X`` (0-255 for uint8 images). In ``masked_input`` the
            hidden patches are set to the channel means ``channel_mean_``, and in
            ``reconstruction`` they are the decoder's prediction (brought back from
            normalised-patch units with the true patches' mean and standard
            deviation when ``norm_pix_loss``, as in the paper's figures), while the
            visible patches are the original ones in both.

        Examples
        --------
        >>> import numpy as np
        >>> from skssl import MAEPretrainer
        >>> X = np.random.RandomState(0).rand(4, 8, 8, 3).astype(np.float32)
        >>> vit = {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2}
        >>> mae = MAEPretrainer(encoder_kwargs=vit, decoder_dim=16, decoder_depth=1,
        ...                     max_epochs=1, random_state=0).fit(X)
        >>> original, masked, reconstruction = mae.reconstruct(X)
        >>> original.shape, bool(np.array_equal(original, X))
        ((4, 8, 8, 3), True)
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        device = resolve_device(self.device)
        encoder, decoder = self.encoder_.to(device), self.head_.to(device)
        generator = torch.Generator().manual_seed(int(random_state))
        mean = torch.as_tensor(self.channel_mean_, device=device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.channel_std_, device=device).view(1, -1, 1, 1)
        batches = []
        with torch.inference_mode(), autocast(device, self.precision):
            for start in range(0, data.n_samples, self.batch_size):
                raw = self._prepare(data.batch(slice(start, start + self.batch_size), device))
                x = self._normalize(raw)
                keep, mask = random_masking(len(x), decoder.num_patches, self.mask_ratio,
                                            generator=generator, device=device)
                pred = self._predict(encoder, decoder, x, keep).float()
                if self.norm_pix_loss:
                    var, patch_mean = torch.var_mean(encoder.patchify(x), dim=-1,
                                                     keepdim=True, correction=0)
                    pred = pred * (var + _NORM_PIX_EPS).sqrt() + patch_mean
                hidden = encoder.unpatchify(mask[..., None].expand_as(pred).float()).bool()
                predicted = encoder.unpatchify(pred) * std + mean
                batches.append(torch.stack([
                    raw, torch.where(hidden, mean, raw), torch.where(hidden, predicted, raw),
                ]).cpu())
        images = torch.cat(batches, dim=1).permute(0, 1, 3, 4, 2).numpy()
        if data.unit_scale:
            images *= 255.0
        if data.X.ndim == 2:
            images = images.reshape(3, data.n_samples, -1)
        elif data.X.ndim == 3:
            images = images[..., 0]
        return tuple(images)
