"""The spatial feature map of an encoder: one feature vector per image location."""

import torch


def has_feature_map(encoder):
    """Whether ``encoder`` has a callable ``feature_map`` method (the dense contract)."""
    return callable(getattr(encoder, "feature_map", None))


def feature_map(encoder, x):
    """Run ``encoder.feature_map`` on ``x``, with a clear error for encoders without it.

    Dense methods (:class:`skssl.VisualBoW` with an encoder, :class:`skssl.BoWPretrainer`'s
    teacher) need the encoder's features before global pooling. The built-in encoders
    give them: :class:`SmallCNN` and :class:`ResNet18Encoder` their last stage,
    :class:`VisionTransformer` its patch tokens as a grid.

    Parameters
    ----------
    encoder : torch.nn.Module
        With a method ``feature_map(x) -> (B, D, h, w)``.
    x : torch.Tensor of shape (B, C, H, W)
        Images, as the encoder expects them (normalised as in training).

    Returns
    -------
    features : torch.Tensor of shape (B, D, h, w)

    Raises
    ------
    ValueError
        When the encoder has no ``feature_map`` method, or it returns anything but a
        ``(B, D, h, w)`` tensor.

    Examples
    --------
    >>> import torch
    >>> from skssl.encoders import feature_map, make_encoder
    >>> enc = make_encoder("cnn", 1, (28, 28), channels=(8, 16)).eval()
    >>> feature_map(enc, torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 16, 14, 14])
    >>> feature_map(torch.nn.Flatten(), torch.zeros(2, 1, 4, 4))
    Traceback (most recent call last):
    ...
    ValueError: Flatten has no feature_map method, ...
    """
    if not has_feature_map(encoder):
        raise ValueError(
            f"{type(encoder).__name__} has no feature_map method, which dense descriptors "
            "need: one feature vector per image location. Use a built-in encoder ('cnn', "
            "'resnet18', 'vit_tiny', 'vit_small'), or give the module a method "
            "feature_map(x) returning (B, D, h, w) features before global pooling."
        )
    out = encoder.feature_map(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 4 or len(out) != len(x):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{type(encoder).__name__}.feature_map must return (B, D, h, w) features for "
            f"a batch of {len(x)} images, got {shape}."
        )
    return out
