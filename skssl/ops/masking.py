"""Patches and random masking of masked autoencoders (He et al., "Masked Autoencoders
Are Scalable Vision Learners", CVPR 2022)."""

import torch

from ._checks import check_batch, check_generator, check_int, check_probability, image_hw, uniform


def patchify(images, patch_size):
    """Cut images into flattened, non-overlapping square patches.

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W)
        Float images; ``patch_size`` divides ``H`` and ``W``.
    patch_size : int
        Side ``p`` of the patches.

    Returns
    -------
    patches : torch.Tensor of shape (B, (H // p) * (W // p), p * p * C)
        Patches in row-major order; each is flattened as ``(row, column, channel)``,
        as in MAE.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import patchify
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> patchify(x, 2)[0, 1].tolist()  # the top-right patch
    [2.0, 3.0, 6.0, 7.0]
    """
    check_batch(images, "images")
    p = check_int(patch_size, "patch_size", 1)
    batch, channels, height, width = images.shape
    if height % p or width % p:
        raise ValueError(f"patch_size={p} must divide the image size {height}x{width}.")
    rows, cols = height // p, width // p
    x = images.reshape(batch, channels, rows, p, cols, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(batch, rows * cols, p * p * channels)


def unpatchify(patches, patch_size, image_size, channels):
    """Reassemble images from their patches: the inverse of :func:`patchify`.

    Parameters
    ----------
    patches : torch.Tensor of shape (B, N, p * p * C)
        Patches in row-major order, flattened as :func:`patchify` does.
    patch_size : int
        Side ``p`` of the patches.
    image_size : int or tuple of (int, int)
        ``(H, W)`` of the images, multiples of ``p`` with ``N = (H // p) * (W // p)``.
    channels : int
        ``C``.

    Returns
    -------
    images : torch.Tensor of shape (B, C, H, W)

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import patchify, unpatchify
    >>> x = torch.randn(2, 3, 8, 12)
    >>> torch.equal(unpatchify(patchify(x, 4), 4, (8, 12), 3), x)
    True
    """
    p = check_int(patch_size, "patch_size", 1)
    channels = check_int(channels, "channels", 1)
    height, width = image_hw(image_size)
    rows, cols = height // p, width // p
    expected = (rows * cols, p * p * channels)
    if height % p or width % p or patches.ndim != 3 or tuple(patches.shape[1:]) != expected:
        raise ValueError(
            f"{height}x{width} images with {channels} channel(s) in {p}x{p} patches need "
            f"patches of shape (B, {expected[0]}, {expected[1]}), got {tuple(patches.shape)}."
        )
    x = patches.reshape(-1, rows, cols, p, p, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(-1, channels, height, width)


def random_masking(n_images, n_patches, mask_ratio, *, generator, device=None):
    """Choose, for every image, which patches stay visible and which are hidden.

    MAE hides a random ``mask_ratio`` of the patches of every image, uniformly and
    independently per image, and encodes only the others. Every image hides the same
    number ``round(mask_ratio * n_patches)`` of patches, so the visible tokens of a
    batch form one ``(B, n_keep, D)`` tensor; at least one patch stays visible.

    Parameters
    ----------
    n_images : int
        ``B``.
    n_patches : int
        Patches per image.
    mask_ratio : float
        Fraction of the patches to hide, in ``[0, 1]``.
    generator : torch.Generator
        Source of the draws, made on its device.
    device : torch.device or str, default=None
        Device of the results; ``None`` for the generator's.

    Returns
    -------
    keep : torch.Tensor of shape (B, n_keep), dtype int64
        The visible patches of every image, in increasing order, with
        ``n_keep = n_patches - min(round(mask_ratio * n_patches), n_patches - 1)``.
    mask : torch.Tensor of shape (B, n_patches), dtype bool
        True where a patch is hidden.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import random_masking
    >>> keep, mask = random_masking(2, 16, 0.75, generator=torch.Generator().manual_seed(0))
    >>> keep.shape, mask.sum(dim=1).tolist()
    (torch.Size([2, 4]), [12, 12])
    >>> bool(mask.gather(1, keep).any())  # the kept patches are the visible ones
    False
    """
    n_images = check_int(n_images, "n_images", 1)
    n_patches = check_int(n_patches, "n_patches", 1)
    mask_ratio = check_probability(mask_ratio, "mask_ratio")
    check_generator(generator)
    device = generator.device if device is None else device
    n_keep = n_patches - min(round(mask_ratio * n_patches), n_patches - 1)
    # Sorting uniform noise gives every image its own uniformly random permutation,
    # in one call for the batch (MAE's "random_masking").
    noise = uniform((n_images, n_patches), generator, device)
    keep = noise.argsort(dim=1)[:, :n_keep].sort(dim=1).values
    mask = torch.ones(n_images, n_patches, dtype=torch.bool, device=device)
    return keep, mask.scatter(1, keep, False)
