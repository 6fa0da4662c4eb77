"""The encoder registry: one name, one factory."""

import inspect

_ENCODERS = {}


def register_encoder(name):
    """Register an encoder factory under ``name``.

    The factory is called as ``factory(in_channels, image_size, **kwargs)`` where
    ``image_size`` is ``(height, width)``, and returns an :class:`torch.nn.Module`
    with an integer ``num_features`` attribute.

    Parameters
    ----------
    name : str
        The name users pass as ``encoder=name``.

    Returns
    -------
    decorator : callable
        Registers and returns the factory unchanged.

    Examples
    --------
    >>> import torch
    >>> from skssl.encoders import register_encoder, make_encoder
    >>> @register_encoder("tiny_linear")
    ... def tiny_linear(in_channels, image_size, out=8):
    ...     net = torch.nn.Sequential(torch.nn.Flatten(),
    ...                               torch.nn.LazyLinear(out))
    ...     net.num_features = out
    ...     return net
    >>> make_encoder("tiny_linear", 1, (4, 4)).num_features
    8
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}.")

    def decorator(factory):
        _ENCODERS[name] = factory
        return factory

    return decorator


def available_encoders():
    """Return the sorted list of registered encoder names.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from skssl.encoders import available_encoders
    >>> "cnn" in available_encoders()
    True
    """
    return sorted(_ENCODERS)


def make_encoder(name, in_channels, image_size, **kwargs):
    """Build the registered encoder ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`available_encoders`.
    in_channels : int
        Number of image channels (1 for grayscale, 3 for RGB).
    image_size : int or tuple of (int, int)
        Input height and width (an int means a square image).
    **kwargs
        Passed to the encoder's factory (e.g. ``width`` for ``"cnn"``).

    Returns
    -------
    encoder : torch.nn.Module
        With an integer ``num_features`` attribute.

    Examples
    --------
    >>> import torch
    >>> from skssl.encoders import make_encoder
    >>> enc = make_encoder("cnn", in_channels=1, image_size=28)
    >>> enc(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 128])
    """
    if name not in _ENCODERS:
        raise ValueError(
            f"Unknown encoder {name!r}. Available encoders: {', '.join(available_encoders())}; "
            "or pass an nn.Module instance or a factory."
        )
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    factory = _ENCODERS[name]
    try:
        inspect.signature(factory).bind(in_channels, tuple(image_size), **kwargs)
    except TypeError as exc:
        raise TypeError(
            f"Bad encoder_kwargs {sorted(kwargs)} for encoder {name!r}: {exc}. "
            f"Its factory accepts {inspect.signature(factory)}."
        ) from None
    return call_factory(factory, f"The encoder {name!r}", kwargs, in_channels, tuple(image_size))


def call_factory(factory, what, kwargs, *args, **named):
    """Call an encoder factory with ``encoder_kwargs``; name them in what it raises.

    A wrong value in ``encoder_kwargs`` (``channels=16`` where a tuple is expected)
    fails deep inside the factory, with a message that does not say where it came from.

    Parameters
    ----------
    factory : callable
    what : str
        The encoder, as the message names it.
    kwargs : dict
        ``encoder_kwargs``.
    *args, **named
        The factory's other arguments.

    Returns
    -------
    encoder : object
        What the factory returns.

    Raises
    ------
    TypeError or ValueError
        The factory's own, with ``encoder_kwargs`` and the factory's signature.

    Examples
    --------
    >>> from skssl.encoders._registry import call_factory
    >>> def factory(width):
    ...     return list(range(width))
    >>> call_factory(factory, "The factory", {"width": 2})
    [0, 1]
    >>> call_factory(factory, "The factory", {"width": "2"})
    Traceback (most recent call last):
    ...
    TypeError: The factory could not be built with encoder_kwargs={'width': '2'} ...
    """
    try:
        return factory(*args, **named, **kwargs)
    except (TypeError, ValueError) as exc:
        error = TypeError if isinstance(exc, TypeError) else ValueError
        name = getattr(factory, "__name__", "factory")
        raise error(
            f"{what} could not be built with encoder_kwargs={kwargs!r} ({exc}); check "
            f"their values against {name}{inspect.signature(factory)}."
        ) from exc
