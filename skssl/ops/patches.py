"""Cutting, normalising and colour-guarding square patches of an image batch."""

import torch

from ._checks import check_generator, check_int, check_probability, randint

#: Smallest tile or patch side the default jigsaw and context layouts choose.
_MIN_PATCH = 3


def _gather_patches(x, top, left, size):
    """Cut square patches at per-sample positions with a single gather.

    ``top`` and ``left`` are ``(B, N)`` integer tensors on ``x.device``; the result
    is ``(B, N, C, size, size)``.
    """
    batch, channels, _, width = x.shape
    n_patches = top.shape[1]
    steps = torch.arange(size, device=x.device)
    rows = top[..., None] + steps
    cols = left[..., None] + steps
    flat = rows[..., :, None] * width + cols[..., None, :]
    index = flat.reshape(batch, 1, -1).expand(batch, channels, -1)
    patches = x.flatten(2).gather(2, index)
    return patches.reshape(batch, channels, n_patches, size, size).transpose(1, 2).contiguous()


def normalize_patches(patches, eps=1e-5):
    """Normalise every patch and channel to mean 0 and standard deviation 1.

    Both papers normalise each patch on its own so that the network cannot match
    patches by their brightness or contrast.

    Parameters
    ----------
    patches : torch.Tensor of shape (..., H, W)
        Float patches; statistics are taken over the last two dimensions.
    eps : float, default=1e-5
        Added to the variance, so that a constant patch becomes all zeros.

    Returns
    -------
    normalized : torch.Tensor
        Same shape and dtype as ``patches``.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import normalize_patches
    >>> p = normalize_patches(torch.arange(8.0).reshape(2, 1, 2, 2))
    >>> p.mean(dim=(-2, -1)).abs().max().item() < 1e-6
    True
    >>> round(p[0, 0].std(unbiased=False).item(), 3)
    1.0
    """
    var, mean = torch.var_mean(patches, dim=(-2, -1), keepdim=True, correction=0)
    return (patches - mean) * torch.rsqrt(var + eps)


def random_grayscale(x, p, *, generator):
    """Turn a random subset of colour images grey.

    With probability ``p`` per image, every channel is replaced by the mean of the
    channels. Noroozi & Favaro train on 30 % grey images so that the network cannot
    solve the puzzle from colour alone. Inputs are normalised per channel, so the
    plain channel mean stands in for luminance weights.

    Parameters
    ----------
    x : torch.Tensor of shape (..., C, H, W)
        Float images; every entry of the leading dimensions (an image, or a tile)
        draws on its own.
    p : float
        Probability, in ``[0, 1]``, that an image turns grey.
    generator : torch.Generator
        Source of the draws.

    Returns
    -------
    x_out : torch.Tensor
        Same shape as ``x``. With one channel, ``x`` itself is returned and
        nothing is drawn.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import random_grayscale
    >>> x = torch.randn(5, 3, 4, 4)
    >>> grey = random_grayscale(x, 1.0, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(grey[:, 0], grey[:, 2]))
    True
    >>> mono = x[:, :1]
    >>> random_grayscale(mono, 1.0, generator=torch.Generator()) is mono
    True
    """
    check_generator(generator)
    p = check_probability(p)
    if x.ndim < 3 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor of shape (..., C, H, W), got {tuple(x.shape)}.")
    if x.shape[-3] == 1:
        return x
    draws = torch.rand(x.shape[:-3], generator=generator, device=generator.device)
    grey = (draws < p).to(x.device)[..., None, None, None]
    return torch.where(grey, x.mean(dim=-3, keepdim=True).expand_as(x), x)


def channel_jitter(x, max_shift, *, generator):
    """Shift every colour channel by its own random offset (chromatic aberration guard).

    Lenses focus colours slightly differently, so a channel's offset tells where a
    patch sat in the photograph (Doersch et al. 2015, Sec. 3.1) and gives away the
    jigsaw or context answer. Following Noroozi & Favaro, each channel of each
    image is translated by integer offsets drawn uniformly in
    ``[-max_shift, max_shift]`` for rows and columns independently; pixels shifted
    in from outside repeat the border. All shifts are one gather.

    Parameters
    ----------
    x : torch.Tensor of shape (..., C, H, W)
        Float images; every entry of the leading dimensions draws on its own.
    max_shift : int
        At least 1 pixel.
        Largest shift in pixels (the paper uses 2).
    generator : torch.Generator
        Source of the shifts.

    Returns
    -------
    x_out : torch.Tensor
        Same shape as ``x``. With one channel or ``max_shift=0``, ``x`` itself is
        returned and nothing is drawn.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import channel_jitter
    >>> x = torch.randn(2, 3, 8, 8)
    >>> out = channel_jitter(x, 2, generator=torch.Generator().manual_seed(0))
    >>> out.shape
    torch.Size([2, 3, 8, 8])
    >>> mono = x[:, :1]
    >>> channel_jitter(mono, 2, generator=torch.Generator()) is mono
    True
    """
    check_generator(generator)
    max_shift = check_int(max_shift, "max_shift", 0)
    if x.ndim < 3:
        raise ValueError(f"x must be a tensor of shape (..., C, H, W), got {tuple(x.shape)}.")
    if x.shape[-3] == 1 or max_shift == 0:
        return x
    channels, height, width = x.shape[-3:]
    flat = x.reshape(-1, channels, height * width)
    shift = randint(-max_shift, max_shift, (2, flat.shape[0], channels, 1), generator, x.device)
    rows = (torch.arange(height, device=x.device) - shift[0]).clamp_(0, height - 1)
    cols = (torch.arange(width, device=x.device) - shift[1]).clamp_(0, width - 1)
    index = (rows[..., :, None] * width + cols[..., None, :]).flatten(2)
    return flat.gather(2, index).reshape(x.shape)


def default_channel_shift(patch_size):
    """Largest colour-channel shift for a patch size, scaled from Noroozi & Favaro.

    The paper shifts each colour channel of a 64 px tile by up to 2 px
    (:func:`channel_jitter`); the shift keeps that ratio and is at least 1 px, so it
    always drowns the sub-pixel chromatic aberration of a lens.

    Parameters
    ----------
    patch_size : int
        Side of the tile or patch in pixels.

    Returns
    -------
    max_shift : int

    Examples
    --------
    >>> from skssl.ops import default_channel_shift
    >>> default_channel_shift(7), default_channel_shift(64)
    (1, 2)
    """
    return max(1, (check_int(patch_size, "patch_size", 1) + 16) // 32)
