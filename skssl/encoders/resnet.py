"""``"resnet18"``: torchvision's ResNet-18, with the SimCLR stem for small images."""

from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from ._registry import register_encoder

#: Images whose shorter side is at most this many pixels get the small-input stem.
SMALL_INPUT_MAX_SIDE = 64


class ResNet18Encoder(ResNet):
    """ResNet-18 without its classifier, for any number of input channels.

    The network is torchvision's ``resnet18(weights=None)`` (same blocks, same
    initialisation, same ``state_dict`` keys) with three changes:

    - ``conv1`` takes ``in_channels`` channels;
    - ``fc`` is the identity, so ``forward`` returns the ``(B, 512)`` pooled features;
    - with ``small_input=True``, the ImageNet stem (7x7 stride-2 convolution, then a
      3x3 stride-2 max-pool, a 4x downsampling) becomes a 3x3 stride-1 convolution
      and no max-pool. This is the CIFAR-10 variant of SimCLR (Chen et al., 2020,
      appendix B.9): on 32x32 images the ImageNet stem would leave a 1x1 map
      before the last stage.

    Parameters
    ----------
    in_channels : int, default=3
        Number of input channels.
    small_input : bool, default=True
        Use the small-image stem (3x3 stride-1 ``conv1``, no max-pool) instead of
        the ImageNet one (7x7 stride-2 ``conv1``, then max-pool).

    Attributes
    ----------
    num_features : int
        Size of the pooled output: 512.
    small_input : bool
        Which stem the network has.

    See Also
    --------
    make_encoder : ``make_encoder("resnet18", ...)`` picks the stem from the image size.

    Examples
    --------
    >>> import torch
    >>> from skssl.encoders import ResNet18Encoder
    >>> net = ResNet18Encoder(in_channels=1).eval()
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 512])
    >>> net.conv1.stride, ResNet18Encoder(small_input=False).conv1.stride
    ((1, 1), (2, 2))
    """

    def __init__(self, in_channels=3, small_input=True):
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels!r}.")
        if not isinstance(small_input, bool):
            raise TypeError(f"small_input must be a bool, got {small_input!r}.")
        # num_classes=1: the classifier is dropped below, no need for a 512x1000 one.
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=1)
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        # The same initialisation torchvision gives every convolution.
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.fc = nn.Identity()
        self.small_input = small_input
        self.num_features = 512

    def feature_map(self, x):
        """The last stage's activations (``layer4``) before the average pooling,
        ``(B, 512, h, w)`` for ``(B, C, H, W)`` images: ``h = ceil(H / 8)`` with the
        small-input stem, ``ceil(H / 32)`` with the ImageNet one (the contract of
        :func:`skssl.encoders.feature_map`).

        Examples
        --------
        >>> import torch
        >>> from skssl.encoders import ResNet18Encoder
        >>> ResNet18Encoder(in_channels=1).eval().feature_map(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 512, 4, 4])
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@register_encoder("resnet18")
def resnet18(in_channels, image_size, small_input=None):
    """Build :class:`ResNet18Encoder`, choosing the stem from the image size.

    Parameters
    ----------
    in_channels : int
        Number of input channels.
    image_size : tuple of (int, int)
        Input height and width.
    small_input : bool or None, default=None
        Use the small-image stem (3x3 stride-1 convolution, no max-pool). ``None``
        means automatic: the small stem when ``min(image_size) <= 64``
        (``SMALL_INPUT_MAX_SIDE``), the ImageNet stem for larger images.

    Returns
    -------
    encoder : ResNet18Encoder
        In train mode, with ``num_features=512``.

    Examples
    --------
    >>> from skssl.encoders import make_encoder
    >>> make_encoder("resnet18", 3, (32, 32)).small_input
    True
    >>> make_encoder("resnet18", 3, (224, 224)).small_input
    False
    >>> make_encoder("resnet18", 1, (96, 96), small_input=True).conv1.stride
    (1, 1)
    """
    if small_input is None:
        small_input = min(image_size) <= SMALL_INPUT_MAX_SIDE
    return ResNet18Encoder(in_channels, small_input=small_input)
