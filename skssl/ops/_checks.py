"""Argument checks and random draws shared by :mod:`skssl.ops` and :mod:`skssl.augment`.

Random numbers are drawn on ``generator.device`` and then moved to the data's
device, so that a CPU generator gives the same numbers whatever device the data is on.
"""

import math
from numbers import Integral, Real

import torch


def check_int(value, name, low, high=None):
    """Return ``value`` as an int, checking that ``low <= value <= high``.

    Parameters
    ----------
    value : int
        The value to check; a bool is refused.
    name : str
        Named in the error message.
    low : int
        Smallest allowed value.
    high : int, default=None
        Largest allowed value; ``None`` for no upper bound.

    Returns
    -------
    value : int

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If it is out of bounds.

    Examples
    --------
    >>> from skssl.ops._checks import check_int
    >>> check_int(3, "grid", 1)
    3
    >>> check_int(0, "grid", 1)
    Traceback (most recent call last):
    ...
    ValueError: grid must be >= 1, got 0.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {value!r}.")
    if value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}.")
    return int(value)


def check_batch(x, name="x"):
    """Check that ``x`` is a floating tensor of shape ``(B, C, H, W)``.

    Parameters
    ----------
    x : object
        The batch to check.
    name : str, default="x"
        Named in the error message.

    Raises
    ------
    ValueError
        If ``x`` is not a 4-dimensional floating tensor.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops._checks import check_batch
    >>> check_batch(torch.zeros(2, 1, 4, 4))
    >>> check_batch(torch.zeros(4, 4))
    Traceback (most recent call last):
    ...
    ValueError: x must be a floating tensor of shape (B, C, H, W), got torch.float32 of ...
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        if isinstance(x, torch.Tensor):
            got = f"{x.dtype} of shape {tuple(x.shape)}"
        else:
            got = type(x).__name__
        raise ValueError(f"{name} must be a floating tensor of shape (B, C, H, W), got {got}.")


def check_generator(generator):
    """Check that ``generator`` is a :class:`torch.Generator`.

    Parameters
    ----------
    generator : object

    Raises
    ------
    TypeError
        If it is not.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops._checks import check_generator
    >>> check_generator(torch.Generator())
    >>> check_generator(0)
    Traceback (most recent call last):
    ...
    TypeError: generator must be a torch.Generator, got int.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}.")


def check_probability(p, name="p"):
    """Return the probability ``p`` as a float, checking that it is in ``[0, 1]``.

    Parameters
    ----------
    p : float
    name : str, default="p"
        Named in the error message.

    Returns
    -------
    p : float

    Raises
    ------
    ValueError
        If ``p`` is not a real number in ``[0, 1]``.

    Examples
    --------
    >>> from skssl.ops._checks import check_probability
    >>> check_probability(1)
    1.0
    >>> check_probability(1.5)
    Traceback (most recent call last):
    ...
    ValueError: p must be a probability in [0, 1], got 1.5.
    """
    if not isinstance(p, Real) or not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}.")
    return float(p)


def check_interval(value, name, low=-math.inf, high=math.inf, *, strict_low=False):
    """Return a ``(min, max)`` pair of floats, checking ``low <= min <= max <= high``.

    Parameters
    ----------
    value : tuple of (float, float)
    name : str
        Named in the error message.
    low, high : float, default=-inf, inf
        Bounds of the interval.
    strict_low : bool, default=False
        Require ``low < min`` instead of ``low <= min``.

    Returns
    -------
    interval : tuple of (float, float)

    Raises
    ------
    ValueError
        If ``value`` is not a pair of numbers within the bounds, in order.

    Examples
    --------
    >>> from skssl.ops._checks import check_interval
    >>> check_interval((0.5, 1), "scale", 0.0, 1.0, strict_low=True)
    (0.5, 1.0)
    >>> check_interval((0.0, 1), "scale", 0.0, 1.0, strict_low=True)
    Traceback (most recent call last):
    ...
    ValueError: scale must satisfy 0.0 < min <= max <= 1.0, got (0.0, 1).
    """
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair of numbers, got {value!r}.") from None
    too_low = lo <= low if strict_low else lo < low
    if too_low or not lo <= hi <= high:
        bound = f"{low} < min" if strict_low else f"{low} <= min"
        raise ValueError(f"{name} must satisfy {bound} <= max <= {high}, got {value!r}.")
    return lo, hi


def randint(low, high, size, generator, device):
    """Draw integers in ``[low, high]`` (both included) from ``generator``, on ``device``.

    Parameters
    ----------
    low, high : int
        Smallest and largest value.
    size : tuple of int
        Shape of the result.
    generator : torch.Generator
        Source of the draws, which are made on its device.
    device : torch.device or str
        Device of the result.

    Returns
    -------
    draws : torch.Tensor of shape ``size``, dtype int64

    Examples
    --------
    >>> import torch
    >>> from skssl.ops._checks import randint
    >>> draws = randint(-1, 1, (1000,), torch.Generator().manual_seed(0), "cpu")
    >>> sorted(draws.unique().tolist())
    [-1, 0, 1]
    """
    draws = torch.randint(low, high + 1, size, generator=generator, device=generator.device)
    return draws.to(device)


def uniform(size, generator, device, dtype=None):
    """Draw ``U[0, 1)`` numbers from ``generator``, on ``device``.

    Parameters
    ----------
    size, generator, device
        As in :func:`randint`.
    dtype : torch.dtype, default=None
        Floating dtype; ``None`` for torch's default.

    Returns
    -------
    draws : torch.Tensor of shape ``size``

    Examples
    --------
    >>> import torch
    >>> from skssl.ops._checks import uniform
    >>> u = uniform((1000,), torch.Generator().manual_seed(0), "cpu", torch.float32)
    >>> bool((u >= 0).all() and (u < 1).all()), u.dtype
    (True, torch.float32)
    """
    draws = torch.rand(size, generator=generator, device=generator.device, dtype=dtype)
    return draws.to(device)


def image_hw(image_size):
    """Return ``(height, width)`` of an image size given as a side or a pair.

    Parameters
    ----------
    image_size : int or tuple of (int, int)

    Returns
    -------
    height, width : int

    Examples
    --------
    >>> from skssl.ops._checks import image_hw
    >>> image_hw(28), image_hw((32, 64))
    ((28, 28), (32, 64))
    """
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        return int(image_size), int(image_size)
    height, width = (int(s) for s in image_size)
    return height, width
