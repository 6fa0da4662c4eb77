"""``"cnn"``: a small vanilla CNN that is fast on a CPU at 28x28."""

from torch import nn

from ._registry import register_encoder


class SmallCNN(nn.Module):
    """Small vanilla CNN: conv-BN-ReLU blocks, max-pooling, global average pooling.

    With the default ``channels=(32, 64, 128)`` it is the reference backbone of
    ``PERFORMANCE.md``::

        blk(1,32) blk(32,32) pool blk(32,64) blk(64,64) pool blk(64,128) avgpool

    Every stage but the last has two 3x3 conv-BN-ReLU blocks and ends with a 2x2
    max-pool (``ceil_mode``, so any image size of at least 1 pixel works); the last
    stage has one block. About 44 MFLOP per 28x28 image.

    Parameters
    ----------
    in_channels : int, default=1
        Number of input channels.
    channels : tuple of int, default=(32, 64, 128)
        Width of each stage; the last one is ``num_features``.

    Attributes
    ----------
    num_features : int
        Size of the pooled output.

    Examples
    --------
    >>> import torch
    >>> from skssl.encoders import SmallCNN
    >>> net = SmallCNN(in_channels=3, channels=(8, 16))
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 16])
    """

    def __init__(self, in_channels=1, channels=(32, 64, 128)):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1 or in_channels < 1:
            raise ValueError(
                f"SmallCNN needs in_channels >= 1 and a non-empty tuple of positive channels; "
                f"got in_channels={in_channels}, channels={channels}."
            )
        layers = []
        prev = in_channels
        for i, width in enumerate(channels):
            last = i == len(channels) - 1
            for _ in range(1 if last else 2):
                layers += [
                    nn.Conv2d(prev, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                prev = width
            if not last:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.num_features = prev

    def forward(self, x):
        return self.features(x)

    def feature_map(self, x):
        """The last stage's activations before global pooling, ``(B, num_features, h, w)``
        for ``(B, C, H, W)`` images, with ``h = ceil(H / 2**(stages - 1))``: one feature
        vector per location (the contract of :func:`skssl.encoders.feature_map`).

        Examples
        --------
        >>> import torch
        >>> from skssl.encoders import SmallCNN
        >>> SmallCNN(channels=(8, 16)).feature_map(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 16, 14, 14])
        """
        # The last two layers are the global average pooling and the flatten.
        return self.features[:-2](x)


@register_encoder("cnn")
def cnn(in_channels, image_size, channels=(32, 64, 128)):
    """Build :class:`SmallCNN` (any image size).

    Parameters
    ----------
    in_channels : int
        Number of input channels.
    image_size : tuple of (int, int)
        Unused: the network pools globally.
    channels : tuple of int, default=(32, 64, 128)
        Width of each stage.

    Returns
    -------
    encoder : SmallCNN
        In train mode, with ``num_features`` the last stage's width.

    Examples
    --------
    >>> from skssl.encoders import make_encoder
    >>> make_encoder("cnn", 1, (28, 28), channels=(16, 32)).num_features
    32
    """
    return SmallCNN(in_channels, channels)
