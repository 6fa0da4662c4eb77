"""Losses of the self-supervised methods, as :class:`torch.nn.Module` objects."""

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NTXentLoss", "masked_patch_mse", "positive_pair_accuracy"]


class NTXentLoss(nn.Module):
    """Normalised temperature-scaled cross-entropy loss (NT-Xent) of SimCLR.

    Chen et al. (2020), "A Simple Framework for Contrastive Learning of Visual
    Representations", Eq. (1). For a batch of ``B`` images seen in two views, each
    of the ``2B`` projections is an anchor; its positive is the other view of the
    same image and its negatives are the ``2B - 2`` other projections. With cosine
    similarities ``s`` and temperature ``t``, an anchor's loss is the cross-entropy
    ``-log(exp(s_pos / t) / sum_{k != anchor} exp(s_k / t))``; the loss is the mean
    over the ``2B`` anchors.

    Parameters
    ----------
    temperature : float, default=0.5
        Positive temperature ``t``; SimCLR uses 0.5 on CIFAR-10.
    gather : callable or None, default=None
        For data-parallel training: called on each local ``(B, D)`` view batch, it
        returns the views of all ranks concatenated in rank order, ``(world * B, D)``,
        keeping the gradient, e.g.
        ``lambda z: torch.cat(torch.distributed.nn.functional.all_gather(z))``.
        Every rank then computes the loss of the global batch, so that every
        image meets the negatives of all ranks; the gathered gradients, summed
        over ranks, and DDP's mean over ranks give the same parameter gradient as
        one process on the global batch. None uses the local batch only. Prefer a
        module-level function over a lambda so that the loss can be pickled.

    Examples
    --------
    >>> import torch
    >>> from skssl.losses import NTXentLoss
    >>> loss = NTXentLoss(temperature=0.5)
    >>> g = torch.Generator().manual_seed(0)
    >>> z_a, z_b = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    >>> float(loss(z_a, z_a)) < float(loss(z_a, z_b))
    True
    """

    def __init__(self, temperature=0.5, gather=None):
        super().__init__()
        if (
            not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature)
            or temperature <= 0
        ):
            raise ValueError(f"temperature must be a positive float, got {temperature!r}.")
        if gather is not None and not callable(gather):
            raise ValueError(f"gather must be None or a callable, got {gather!r}.")
        self.temperature = float(temperature)
        self.gather = gather

    def forward(self, z_a, z_b):
        """Compute the loss of two views.

        Parameters
        ----------
        z_a, z_b : torch.Tensor of shape (B, D)
            Projections of the first and second views; row ``i`` of both comes from
            image ``i``.

        Returns
        -------
        loss : torch.Tensor
            A scalar.
        """
        if z_a.ndim != 2 or z_a.shape != z_b.shape:
            raise ValueError(
                "NTXentLoss expects two (B, D) tensors of the same shape, got "
                f"{tuple(z_a.shape)} and {tuple(z_b.shape)}."
            )
        if self.gather is not None:
            z_a, z_b = self.gather(z_a), self.gather(z_b)
        n = z_a.shape[0]
        # In float32 under mixed precision too: bfloat16's 3 digits would blur the
        # similarities that the temperature then sharpens.
        with torch.autocast(z_a.device.type, enabled=False):
            z = F.normalize(torch.cat([z_a, z_b]).float(), dim=1)
            logits = z @ z.T / self.temperature
        self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_pairs, float("-inf"))
        # Anchor i (view a) has its positive at i + n (view b), and back.
        index = torch.arange(n, device=z.device)
        targets = torch.cat([index + n, index])
        return F.cross_entropy(logits, targets)


def positive_pair_accuracy(z_a, z_b):
    """How often a view's nearest other view (cosine) is the other view of its image.

    The pretext accuracy of contrastive methods: each of the ``2B`` views looks for
    its positive among the ``2B - 1`` others, as NT-Xent asks it to.

    Parameters
    ----------
    z_a, z_b : torch.Tensor of shape (B, D)
        Projections of the two views; row ``i`` of both comes from image ``i``.

    Returns
    -------
    accuracy : float
        In ``[0, 1]``; chance is ``1 / (2B - 1)``.

    Examples
    --------
    >>> import torch
    >>> from skssl.losses import positive_pair_accuracy
    >>> z = torch.eye(4)
    >>> positive_pair_accuracy(z, z)
    1.0
    """
    z = F.normalize(torch.cat([z_a, z_b]).float(), dim=1)
    similarity = (z @ z.T).fill_diagonal_(-torch.inf)
    n = len(z)
    positive = torch.arange(n, device=z.device).roll(n // 2)
    return int((similarity.argmax(1) == positive).sum()) / n


def masked_patch_mse(pred, target, mask, *, norm_pix=True, eps=1e-6):
    """MAE's reconstruction loss: the mean squared error on the hidden patches only.

    He et al. (2022), "Masked Autoencoders Are Scalable Vision Learners", Section 3:
    the loss is computed on the masked patches alone (the visible ones would be
    copied), and with ``norm_pix`` the target of each patch is its pixels normalised
    by the patch's own mean and standard deviation, which improved their features.

    Parameters
    ----------
    pred : torch.Tensor of shape (B, N, P)
        Predicted pixels of every patch (in normalised-patch units with ``norm_pix``).
    target : torch.Tensor of shape (B, N, P)
        The true pixels, e.g. :func:`skssl.ops.patchify` of the images.
    mask : torch.Tensor of shape (B, N), dtype bool
        True where a patch is hidden; the loss ignores the others.
    norm_pix : bool, default=True
        Normalise each target patch to mean 0 and variance 1 over its ``P`` pixels.
    eps : float, default=1e-6
        Added to the variance (taken without Bessel's correction, so that a patch of
        one pixel, or a constant one, becomes 0 rather than NaN).

    Returns
    -------
    loss : torch.Tensor
        A float32 scalar; 0 when no patch is hidden.

    Examples
    --------
    >>> import torch
    >>> from skssl.losses import masked_patch_mse
    >>> target = torch.arange(12.0).reshape(1, 3, 4)
    >>> mask = torch.tensor([[True, False, False]])
    >>> pred = torch.zeros(1, 3, 4)
    >>> float(masked_patch_mse(pred, target, mask, norm_pix=False))  # patch 0 alone
    3.5
    >>> pred[0, 1:] = 100.0  # visible patches do not count
    >>> float(masked_patch_mse(pred, target, mask, norm_pix=False))
    3.5
    """
    if pred.shape != target.shape or pred.ndim != 3 or mask.shape != pred.shape[:2]:
        raise ValueError(
            "masked_patch_mse expects pred and target of shape (B, N, P) and a mask of "
            f"shape (B, N); got {tuple(pred.shape)}, {tuple(target.shape)} and "
            f"{tuple(mask.shape)}."
        )
    target = target.float()
    if norm_pix:
        var, mean = torch.var_mean(target, dim=-1, keepdim=True, correction=0)
        target = (target - mean) * torch.rsqrt(var + eps)
    per_patch = (pred.float() - target).pow(2).mean(dim=-1)
    weights = mask.float()
    return (per_patch * weights).sum() / weights.sum().clamp(min=1.0)
