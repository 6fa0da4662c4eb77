"""Batched image augmentations with per-image random parameters.

Every augmentation is a small callable ``aug(x, generator) -> x``:

- ``x`` is a whole batch, a floating tensor ``(B, C, H, W)`` with values in
  ``[0, 1]`` on any device. Normalisation (mean/std) comes after augmentation;
  every output stays in ``[0, 1]`` and keeps the input's dtype and device.
- Each image gets its own random parameters, drawn in a few vectorised calls from
  the explicit :class:`torch.Generator` ``generator`` (on the generator's device,
  so a CUDA generator keeps the whole pipeline on the GPU). The global RNG is never
  used, so the same generator state gives the same batch.
- There is no Python loop over images and no PIL: a batch costs a few tensor
  operations whatever its size, and a CUDA batch needs no host synchronisation.

Arguments are validated once, in ``__init__``. :func:`simclr_augment` builds the
SimCLR recipe (Chen et al., 2020) from these pieces.
"""

import math
import numbers

import torch
import torch.nn.functional as F

from .ops._checks import check_batch, check_generator, check_interval, check_probability, uniform

__all__ = [
    "Compose",
    "ColorJitter",
    "GaussianBlur",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "simclr_augment",
]

# Rec. 601 luma, with torchvision's rounding of red (rgb_to_grayscale, adjust_*).
_LUMA = (0.2989, 0.587, 0.114)
# torchvision's RandomResizedCrop tries this many boxes before its fallback.
_CROP_ATTEMPTS = 10


def _check_rgb(x, name):
    """Return True for RGB, False for one channel; raise for anything else."""
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name} supports 1 or 3 channels, got {x.shape[1]}.")
    return x.shape[1] == 3


def _per_image(values, x):
    """Shape per-image parameters ``(B,)`` to broadcast over ``x`` and match its dtype."""
    return values.to(x.dtype).view(-1, 1, 1, 1)


def _gray(x):
    """Luma of an RGB batch, ``(B, 1, H, W)``; a 1-channel batch is its own luma."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _choose(mask, new, old):
    """Per image, ``new`` where ``mask`` (``(B, 1, 1, 1)`` bool) is set, else ``old``.

    Same result as ``torch.where`` (a weight of exactly 0 or 1 gives ``old`` or
    ``new`` exactly), but ``lerp`` is several times faster on a CPU.
    """
    return torch.lerp(old, new, mask.to(old.dtype))


class _Augmentation:
    """What every augmentation shares: the argument checks of a call, then ``_apply``,
    and a ``__repr__`` with the class name and its public parameters."""

    _params = ()

    def __call__(self, x, generator):
        check_batch(x, f"{type(self).__name__} input")
        check_generator(generator)
        return self._apply(x, generator)

    def __repr__(self):
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._params)
        return f"{type(self).__name__}({args})"


class RandomResizedCrop(_Augmentation):
    """Crop a random box from each image and resize it, for a whole batch at once.

    The boxes follow torchvision's ``RandomResizedCrop``: an area fraction drawn
    uniformly from ``scale`` and an aspect ratio drawn log-uniformly from ``ratio``;
    the first of 10 draws that fits inside the image is kept, and an image whose 10
    draws all fail gets torchvision's fallback (the largest centred box within
    ``ratio``). The draws are vectorised, so there is no retry loop. Boxes have
    sub-pixel position and size (torchvision rounds them to whole pixels). All
    images are cropped and resized by one ``affine_grid`` + ``grid_sample``
    (bilinear, no antialiasing: shrinking a large box to a much smaller ``size``
    aliases more than torchvision's antialiased resize). Since the box is sampled
    from the whole image, output pixels on its edge may blend in the pixels just
    outside it, where torchvision's crop-then-resize repeats the box's edge.

    Parameters
    ----------
    size : int or tuple of (int, int), default=None
        Output ``(height, width)``; an int means a square. None keeps the input size.
    scale : tuple of (float, float), default=(0.08, 1.0)
        Range of the box area as a fraction of the image area, in ``(0, 1]``.
    ratio : tuple of (float, float), default=(3/4, 4/3)
        Range of the box aspect ratio (width / height).

    Examples
    --------
    >>> import torch
    >>> from skssl.augment import RandomResizedCrop
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(4, 3, 32, 32, generator=g)
    >>> RandomResizedCrop(size=24)(x, g).shape
    torch.Size([4, 3, 24, 24])
    """

    _params = ("size", "scale", "ratio")

    def __init__(self, size=None, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        if size is not None:
            pair = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
            if len(pair) != 2 or not all(isinstance(s, numbers.Integral) and s >= 1 for s in pair):
                raise ValueError(
                    f"size must be None, a positive int or a pair of positive ints, got {size!r}."
                )
            size = (int(pair[0]), int(pair[1]))
        self.size = size
        self.scale = check_interval(scale, "scale", 0.0, 1.0, strict_low=True)
        self.ratio = check_interval(ratio, "ratio", 0.0, strict_low=True)

    def sample_boxes(self, n_images, height, width, generator, device):
        """Draw one crop box per image, as torchvision's ``get_params`` does for one.

        Up to 10 attempts per image draw an area in ``scale`` and a log-uniform ratio
        in ``ratio``; the first box that fits is kept, else the largest centred box
        whose ratio is within range.

        Parameters
        ----------
        n_images, height, width : int
        generator : torch.Generator
        device : str or torch.device

        Returns
        -------
        x0, y0, w, h : torch.Tensor of shape (n_images,), dtype float32
            Left, top, width and height of each box, in pixels.

        Examples
        --------
        >>> import torch
        >>> from skssl.augment import RandomResizedCrop
        >>> x0, y0, w, h = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0)).sample_boxes(
        ...     2, 8, 8, torch.Generator().manual_seed(0), "cpu")
        >>> w.tolist(), x0.tolist()
        ([8.0, 8.0], [0.0, 0.0])
        """
        n = _CROP_ATTEMPTS
        u = uniform((n_images, 2 * n + 2), generator, device, torch.float32)
        area = height * width * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, :n])
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_lo + (log_hi - log_lo) * u[:, n : 2 * n])
        w = torch.sqrt(area * aspect)
        h = torch.sqrt(area / aspect)
        fits = (w <= width) & (h <= height)
        first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)
        w = w.gather(1, first).squeeze(1)
        h = h.gather(1, first).squeeze(1)
        # torchvision's fallback: the largest centred box whose ratio is within range.
        fallback_w, fallback_h = float(width), float(height)
        if width / height < self.ratio[0]:
            fallback_h = width / self.ratio[0]
        elif width / height > self.ratio[1]:
            fallback_w = height * self.ratio[1]
        found = fits.any(dim=1)
        w = torch.where(found, w, fallback_w)
        h = torch.where(found, h, fallback_h)
        x0 = torch.where(found, u[:, 2 * n], 0.5) * (width - w)
        y0 = torch.where(found, u[:, 2 * n + 1], 0.5) * (height - h)
        return x0, y0, w, h

    def _apply(self, x, generator):
        n_images, n_channels, height, width = x.shape
        out_h, out_w = self.size if self.size is not None else (height, width)
        x0, y0, w, h = self.sample_boxes(n_images, height, width, generator, x.device)
        # affine_grid maps output coordinates in [-1, 1] to input ones, where -1 and 1
        # are the outer pixel edges (align_corners=False): scale by the box size, shift
        # to the box centre.
        zero = torch.zeros_like(w)
        theta = torch.stack(
            [
                torch.stack([w / width, zero, (2 * x0 + w) / width - 1], dim=1),
                torch.stack([zero, h / height, (2 * y0 + h) / height - 1], dim=1),
            ],
            dim=1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, [n_images, n_channels, out_h, out_w], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RandomHorizontalFlip(_Augmentation):
    """Mirror each image left-right with probability ``p``.

    Parameters
    ----------
    p : float, default=0.5
        Probability that an image is flipped.

    Examples
    --------
    >>> import torch
    >>> from skssl.augment import RandomHorizontalFlip
    >>> x = torch.tensor([[[[0.0, 1.0]]]])
    >>> RandomHorizontalFlip(p=1.0)(x, torch.Generator())
    tensor([[[[1., 0.]]]])
    """

    _params = ("p",)

    def __init__(self, p=0.5):
        self.p = check_probability(p)

    def _apply(self, x, generator):
        flip = uniform((x.shape[0], 1, 1, 1), generator, x.device, torch.float32) < self.p
        return _choose(flip, x.flip(-1), x)


def _jitter_range(name, value, center, bound):
    """torchvision's convention: ``v`` means ``[center - v, center + v]`` within ``bound``."""
    if value is None:
        return None
    if isinstance(value, numbers.Real):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}.")
        value = (max(center - value, bound[0]), center + value)
    lo, hi = check_interval(value, name, *bound)
    return None if lo == hi == center else (lo, hi)


def _shift_hue(x, shift):
    """Rotate the HSV hue of an RGB batch by ``shift`` turns, ``(B, 1, 1, 1)``.

    Saturation and value are kept, so each pixel keeps its max and min channel:
    this needs only the hue from RGB, and the closed-form HSV -> RGB.
    """
    r, g, b = x.unbind(1)
    maxc = x.amax(dim=1)
    minc = x.amin(dim=1)
    delta = maxc - minc
    # Hue in sixths of a turn, in [-1, 5); a gray pixel has delta = 0 and numerator 0.
    # Chosen by lerp with 0/1 weights (exact): torch.where is ~5x slower on a CPU.
    red_max = (maxc == r).to(x.dtype)
    green_max = (maxc == g).to(x.dtype)
    numerator = torch.lerp(
        torch.lerp(r - g + 4 * delta, b - r + 2 * delta, green_max), g - b, red_max
    )
    hue = numerator.div_(delta.clamp_min(torch.finfo(x.dtype).tiny)).add_(6 * shift.squeeze(1))
    hue = torch.remainder(hue, 6).unsqueeze(1)
    # The fully saturated colour of each hue: R = |H - 3| - 1, G = 2 - |H - 2|,
    # B = 2 - |H - 4|, clipped to [0, 1]; then RGB = min + (max - min) * colour.
    center, sign, bias = torch.tensor(
        [[3.0, 2.0, 4.0], [1.0, -1.0, -1.0], [-1.0, 2.0, 2.0]], dtype=x.dtype, device=x.device
    ).view(3, 1, 3, 1, 1)
    colour = (hue - center).abs_().mul_(sign).add_(bias).clamp_(0, 1)
    return colour.mul_(delta.unsqueeze(1)).add_(minc.unsqueeze(1))


class ColorJitter(_Augmentation):
    """Randomly change brightness, contrast, saturation and hue of each image.

    With probability ``p`` an image gets all four changes, each with its own random
    factor, as torchvision's ``ColorJitter`` defines them (results clipped to
    ``[0, 1]`` after each step):

    - brightness: ``x * f``;
    - contrast: blend with the mean luma of the image, ``m + f (x - m)``;
    - saturation: blend with the per-pixel luma, ``l + f (x - l)``;
    - hue: rotate the HSV hue by ``f`` turns.

    The order is fixed (brightness, contrast, saturation, hue), whereas torchvision
    and SimCLR draw a random order: a per-image random order costs four times the
    work, and a per-batch one a host synchronisation per batch on a GPU.
    On 1-channel images only brightness and contrast apply (saturation and hue are
    undefined for gray); other channel counts raise a ValueError.

    Parameters
    ----------
    brightness : float or tuple of (float, float), default=0.4
        A float ``b`` draws ``f`` uniformly from ``[max(0, 1 - b), 1 + b]``; a pair
        gives ``[min, max]`` directly (``min >= 0``). 0 or None disables it.
    contrast : float or tuple of (float, float), default=0.4
        As ``brightness``.
    saturation : float or tuple of (float, float), default=0.4
        As ``brightness``.
    hue : float or tuple of (float, float), default=0.1
        A float ``h`` in ``[0, 0.5]`` draws the shift uniformly from ``[-h, h]``;
        a pair gives ``[min, max]`` within ``[-0.5, 0.5]``. 0 or None disables it.
    p : float, default=0.8
        Probability that an image is jittered at all.

    Examples
    --------
    >>> import torch
    >>> from skssl.augment import ColorJitter
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(4, 3, 8, 8, generator=g)
    >>> y = ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)(x, g)
    >>> y.shape, bool(y.min() >= 0), bool(y.max() <= 1)
    (torch.Size([4, 3, 8, 8]), True, True)
    """

    _params = ("brightness", "contrast", "saturation", "hue", "p")

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=0.8):
        non_negative = (0.0, math.inf)
        self._ranges = (
            _jitter_range("brightness", brightness, 1.0, non_negative),
            _jitter_range("contrast", contrast, 1.0, non_negative),
            _jitter_range("saturation", saturation, 1.0, non_negative),
            _jitter_range("hue", hue, 0.0, (-0.5, 0.5)),
        )
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.p = check_probability(p)

    def _apply(self, x, generator):
        rgb = _check_rgb(x, "ColorJitter")
        # Always draw every column, so a seed gives the same factors whatever is enabled.
        u = uniform((x.shape[0], 5), generator, x.device, torch.float32)
        brightness, contrast, saturation, hue = (
            None if rng is None else _per_image(rng[0] + (rng[1] - rng[0]) * u[:, i + 1], x)
            for i, rng in enumerate(self._ranges)
        )
        if not rgb:
            saturation = hue = None
        if brightness is None and contrast is None and saturation is None and hue is None:
            return x
        # One copy, then in-place steps: on a CPU, allocating costs as much as computing.
        out = (x * brightness).clamp_(0, 1) if brightness is not None else x.clone()
        if contrast is not None:
            mean = _gray(out).mean(dim=(1, 2, 3), keepdim=True)
            out.mul_(contrast).add_(mean * (1 - contrast)).clamp_(0, 1)
        if saturation is not None:
            out.lerp_(_gray(out), 1 - saturation).clamp_(0, 1)
        if hue is not None:
            out = _shift_hue(out, hue)
        return _choose(_per_image(u[:, 0], x) < self.p, out, x)


class RandomGrayscale(_Augmentation):
    """Turn each RGB image to gray (luma in all 3 channels) with probability ``p``.

    1-channel images are returned unchanged.

    Parameters
    ----------
    p : float, default=0.2
        Probability that an image is turned gray.

    Examples
    --------
    >>> import torch
    >>> from skssl.augment import RandomGrayscale
    >>> x = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    >>> RandomGrayscale(p=1.0)(x, torch.Generator()).flatten()
    tensor([0.2989, 0.2989, 0.2989])
    """

    _params = ("p",)

    def __init__(self, p=0.2):
        self.p = check_probability(p)

    def _apply(self, x, generator):
        if not _check_rgb(x, "RandomGrayscale"):
            return x
        gray = uniform((x.shape[0], 1, 1, 1), generator, x.device, torch.float32) < self.p
        return _choose(gray, _gray(x).expand_as(x), x)


class GaussianBlur(_Augmentation):
    """Blur each image with probability ``p``, with its own Gaussian width.

    ``sigma`` is drawn uniformly per image. The whole batch is blurred by two
    depthwise convolutions (one per axis): the batch is folded into channels so
    that each image has its own kernel. Borders are reflected, as in torchvision.

    Parameters
    ----------
    kernel_size : int
        Odd kernel size in pixels; ``kernel_size // 2`` must be smaller than the
        image height and width. SimCLR uses 10 % of the image size.
    sigma : float or tuple of (float, float), default=(0.1, 2.0)
        Range of the standard deviation in pixels (a float fixes it).
    p : float, default=0.5
        Probability that an image is blurred.

    Examples
    --------
    >>> import torch
    >>> from skssl.augment import GaussianBlur
    >>> x = torch.zeros(1, 1, 5, 5)
    >>> x[0, 0, 2, 2] = 1.0
    >>> y = GaussianBlur(3, sigma=1.0, p=1.0)(x, torch.Generator())
    >>> round(float(y.sum()), 4), bool(y[0, 0, 2, 2] < 1)
    (1.0, True)
    """

    _params = ("kernel_size", "sigma", "p")

    def __init__(self, kernel_size, sigma=(0.1, 2.0), p=0.5):
        if not isinstance(kernel_size, numbers.Integral) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd positive int, got {kernel_size!r}.")
        self.kernel_size = int(kernel_size)
        if isinstance(sigma, numbers.Real):
            sigma = (sigma, sigma)
        self.sigma = check_interval(sigma, "sigma", 0.0, strict_low=True)
        self.p = check_probability(p)

    def _apply(self, x, generator):
        n_images, n_channels, height, width = x.shape
        radius = self.kernel_size // 2
        if radius >= min(height, width):
            raise ValueError(
                f"GaussianBlur(kernel_size={self.kernel_size}) needs images larger than "
                f"{radius} pixels, got {height}x{width}."
            )
        u = uniform((n_images, 2), generator, x.device, torch.float32)
        sigma = self.sigma[0] + (self.sigma[1] - self.sigma[0]) * u[:, 1:]
        offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
        kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        identity = (offsets == 0).to(kernel.dtype)
        kernel = torch.where(u[:, :1] < self.p, kernel, identity)
        kernel = kernel.to(x.dtype).repeat_interleave(n_channels, dim=0)
        # Fold the batch into channels: one depthwise filter per (image, channel).
        folded = F.pad(
            x.reshape(1, n_images * n_channels, height, width), [radius] * 4, mode="reflect"
        )
        groups = n_images * n_channels
        out = F.conv2d(folded, kernel.view(groups, 1, -1, 1), groups=groups)
        out = F.conv2d(out, kernel.view(groups, 1, 1, -1), groups=groups)
        return out.view_as(x).clamp_(0, 1)


class Compose(_Augmentation):
    """Apply augmentations in order, all drawing from the same generator.

    Parameters
    ----------
    transforms : list of callables
        Each called as ``t(x, generator)`` and returning the new batch.

    Examples
    --------
    >>> import torch
    >>> from skssl.augment import Compose, RandomHorizontalFlip, RandomResizedCrop
    >>> aug = Compose([RandomResizedCrop(size=16), RandomHorizontalFlip()])
    >>> g = torch.Generator().manual_seed(0)
    >>> aug(torch.rand(8, 1, 28, 28, generator=g), g).shape
    torch.Size([8, 1, 16, 16])
    """

    def __init__(self, transforms):
        transforms = list(transforms)
        for t in transforms:
            if not callable(t):
                raise ValueError(f"Compose needs callables, got {t!r}.")
        self.transforms = transforms

    def __call__(self, x, generator):
        for t in self.transforms:
            x = t(x, generator)
        return x

    def __repr__(self):
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


def simclr_augment(
    image_size,
    n_channels,
    crop_scale=(0.08, 1.0),
    jitter_strength=0.5,
    grayscale_p=0.2,
    blur=False,
):
    """Build the SimCLR augmentation recipe for a batch.

    Chen et al. (2020), "A Simple Framework for Contrastive Learning of Visual
    Representations", Appendix A: random resized crop, horizontal flip, colour
    jitter of strength ``s`` (brightness, contrast and saturation ``0.8 s``, hue
    ``0.2 s``) applied with probability 0.8, random grayscale with probability 0.2,
    and Gaussian blur (``kernel_size`` 10 % of the image, ``sigma`` in ``[0.1, 2]``,
    probability 0.5). For CIFAR-10 the paper uses ``s = 0.5`` and no blur, which
    are the defaults here for small images.

    On 1-channel images the colour jitter changes brightness and contrast only and
    grayscale is left out.

    Parameters
    ----------
    image_size : int or tuple of (int, int)
        Output ``(height, width)`` of the crop (an int means a square).
    n_channels : int
        1 (gray) or 3 (RGB).
    crop_scale : float or tuple of (float, float), default=(0.08, 1.0)
        Range of the crop area, as a fraction of the image; a float ``s`` means
        ``(s, 1.0)``.
    jitter_strength : float, default=0.5
        The colour jitter strength ``s``; 0 disables the jitter.
    grayscale_p : float, default=0.2
        Probability of turning an RGB view gray.
    blur : bool, default=False
        Whether to add the Gaussian blur (the paper blurs on ImageNet, not CIFAR).

    Returns
    -------
    augment : Compose
        Called as ``augment(x, generator)`` on a ``(B, C, H, W)`` batch in ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> from skssl.augment import simclr_augment
    >>> augment = simclr_augment(32, n_channels=3)
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(16, 3, 32, 32, generator=g)
    >>> view_a, view_b = augment(x, g), augment(x, g)
    >>> view_a.shape, bool((view_a != view_b).any())
    (torch.Size([16, 3, 32, 32]), True)
    """
    if image_size is None:
        raise ValueError("image_size must be a positive int or a pair of positive ints, got None.")
    if n_channels not in (1, 3):
        raise ValueError(f"n_channels must be 1 or 3, got {n_channels!r}.")
    if not isinstance(jitter_strength, numbers.Real) or jitter_strength < 0:
        raise ValueError(f"jitter_strength must be a non-negative float, got {jitter_strength!r}.")
    if not isinstance(blur, bool):
        raise ValueError(f"blur must be a bool, got {blur!r}.")
    if isinstance(crop_scale, numbers.Real):
        crop_scale = (crop_scale, 1.0)
    crop = RandomResizedCrop(size=image_size, scale=crop_scale)
    transforms = [crop, RandomHorizontalFlip(0.5)]
    s = float(jitter_strength)
    if s > 0:
        hue = min(0.2 * s, 0.5) if n_channels == 3 else None
        saturation = 0.8 * s if n_channels == 3 else None
        transforms.append(ColorJitter(0.8 * s, 0.8 * s, saturation, hue, p=0.8))
    if n_channels == 3:
        transforms.append(RandomGrayscale(grayscale_p))
    if blur:
        height, width = crop.size
        kernel_size = max(3, int(0.1 * min(height, width)) // 2 * 2 + 1)
        transforms.append(GaussianBlur(kernel_size, sigma=(0.1, 2.0), p=0.5))
    return Compose(transforms)
