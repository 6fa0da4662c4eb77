"""Build an encoder from a registry name, a module instance or a factory."""

import copy
import inspect

import torch
from torch import nn

from ..device import memory_format, to_memory_format
from ._registry import call_factory, make_encoder


def build_encoder(encoder, in_channels, image_size, *, encoder_kwargs=None,
                  channels_last=True):
    """Build the encoder a pretrainer trains, and check it on a dry batch.

    Parameters
    ----------
    encoder : str, torch.nn.Module or callable
        A name from :func:`available_encoders`, a module (deep-copied: the caller's
        instance is never trained in place) or a factory returning a module. A
        factory is called with ``in_channels=`` and ``image_size=`` when its signature
        accepts them, plus ``encoder_kwargs``.
    in_channels : int
        Image channels.
    image_size : tuple of (int, int)
        ``(height, width)`` of the encoder's inputs.
    encoder_kwargs : dict, default=None
        Keyword arguments of a named encoder or a factory.
    channels_last : bool, default=True
        Memory layout of the dry batch and of the returned module.

    Returns
    -------
    encoder : torch.nn.Module
        In train mode, with an integer ``num_features`` attribute (set from the dry
        batch when the module has none).

    Raises
    ------
    ValueError
        When the encoder fails on a dry batch, returns anything but ``(B, n)``
        features, or declares a ``num_features`` it does not return.

    Examples
    --------
    >>> import torch
    >>> from skssl.encoders import build_encoder
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3), torch.nn.AdaptiveAvgPool2d(1),
    ...                           torch.nn.Flatten())
    >>> build_encoder(net, 1, (8, 8)).num_features
    6
    """
    kwargs = encoder_kwargs or {}
    if isinstance(encoder, str):
        module = make_encoder(encoder, in_channels, image_size, **kwargs)
    elif isinstance(encoder, nn.Module):
        if kwargs:
            raise ValueError(
                "encoder_kwargs only applies to a named encoder or a factory; "
                "configure the module instance before passing it."
            )
        module = copy.deepcopy(encoder)
    else:
        accepted = inspect.signature(encoder).parameters
        given = {"in_channels": in_channels, "image_size": image_size}
        given = {k: v for k, v in given.items() if k in accepted}
        module = call_factory(encoder, "The encoder factory", kwargs, **given)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"The encoder factory returned {type(module).__name__}; it must return "
                "a torch.nn.Module."
            )
    # One dry batch turns a size mismatch deep inside torch into a clear error.
    n_features = dry_run_features(module, in_channels, image_size, channels_last)
    declared = getattr(module, "num_features", None)
    if declared is None:
        module.num_features = n_features
    elif declared != n_features:
        raise ValueError(
            f"The encoder's num_features is {declared!r} but it returns {n_features} "
            "features; fix the attribute or remove it."
        )
    return module


def dry_run_features(encoder, in_channels, image_size, channels_last=True):
    """Run ``encoder`` on two blank images; return how many features it gives.

    The encoder is put in ``channels_last`` layout, run in eval mode without
    gradients (nothing is learnt, no random number is drawn), and left in train mode.

    Parameters
    ----------
    encoder : torch.nn.Module
    in_channels : int
    image_size : tuple of (int, int)
    channels_last : bool, default=True

    Returns
    -------
    n_features : int

    Raises
    ------
    ValueError
        When it fails, naming the image size, or returns anything but ``(2, n)``.

    Examples
    --------
    >>> from skssl.encoders import dry_run_features, make_encoder
    >>> dry_run_features(make_encoder("cnn", 1, (8, 8), channels=(4,)), 1, (8, 8))
    4
    """
    encoder.to(memory_format=memory_format(channels_last)).eval()
    try:
        with torch.no_grad():
            out = encoder(to_memory_format(torch.zeros(2, in_channels, *image_size),
                                           channels_last))
    except Exception as exc:
        hint = "are the images too small for it?"
        if channels_last:
            hint += (
                " With channels_last=True, an encoder that calls .view on its "
                "activations fails: use .reshape, or channels_last=False"
            )
        raise ValueError(
            f"The encoder failed on a batch of {image_size[0]}x{image_size[1]} images "
            f"with {in_channels} channel(s) ({hint}): {exc}"
        ) from exc
    finally:
        encoder.train()
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"The encoder must map (B, C, H, W) images to (B, n_features) features; "
            f"it returned {shape} for a batch of 2. Add global pooling and flatten."
        )
    return int(out.shape[1])


def check_encoder_takes(encoder, in_channels, image_size, input_size, *, channels_last=True,
                        method="The pretrainer"):
    """Check that an encoder trained on ``input_size`` inputs also takes whole images.

    Patch methods (jigsaw, context) and SimCLR with small views train the encoder on
    inputs smaller than the images that :meth:`transform` gives it.

    Parameters
    ----------
    encoder : torch.nn.Module
        Built for ``input_size``, with ``num_features``.
    in_channels : int
    image_size, input_size : tuple of (int, int)
        Whole images, and the encoder's inputs during training.
    channels_last : bool, default=True
    method : str, default="The pretrainer"
        Named in the error.

    Raises
    ------
    ValueError
        When the encoder fails on whole images, or gives another number of features.

    Examples
    --------
    >>> from skssl.encoders import check_encoder_takes, make_encoder
    >>> enc = make_encoder("cnn", 1, (7, 7), channels=(4,))
    >>> check_encoder_takes(enc, 1, (28, 28), (7, 7))  # pools globally: fine
    """
    problem = (
        f"{method} trains the encoder on {input_size[0]}x{input_size[1]} "
        f"inputs (patches or views) and transform applies it to whole "
        f"{image_size[0]}x{image_size[1]} images, so the encoder must take both sizes. "
        "Use an encoder that pools globally over any size, such as 'cnn' or 'resnet18'."
    )
    try:
        n_features = dry_run_features(encoder, in_channels, image_size, channels_last)
    except ValueError as exc:
        raise ValueError(f"{problem} On whole images it raised: {exc.__cause__}") from exc
    if n_features != encoder.num_features:
        raise ValueError(
            f"{problem} It returns {encoder.num_features} features on patches "
            f"but {n_features} on whole images."
        )
