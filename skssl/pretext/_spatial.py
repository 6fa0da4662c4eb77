"""Pieces shared by the spatial-context pretext tasks, Jigsaw and Context."""

from torch import nn

#: Hidden units of :class:`PatchFusionHead`.
FUSION_HIDDEN = 512


class PatchFusionHead(nn.Sequential):
    """Late fusion of per-patch features: one hidden layer on their concatenation.

    ``Linear(n_patches * n_features, hidden) - ReLU - Linear(hidden, n_classes)``.
    Both Noroozi & Favaro (2016, fc7-fc8 on the nine concatenated tile features) and
    Doersch et al. (2015, fc7-fc8 on the two concatenated patch features) fuse the
    patches this way, after a shared per-patch encoder; they use 4096 hidden units
    for AlexNet features, 512 suits the small encoders here.
    :class:`skssl.base.PretextNet` does the concatenation, in patch order.

    Parameters
    ----------
    n_patches : int
        Patches (tiles) per sample.
    n_features : int
        Features of the encoder per patch.
    n_classes : int
        Pretext classes.
    hidden : int, default=512

    Examples
    --------
    >>> import torch
    >>> from skssl.pretext._spatial import PatchFusionHead
    >>> head = PatchFusionHead(9, 32, 100)
    >>> head(torch.zeros(4, 9 * 32)).shape
    torch.Size([4, 100])
    """

    def __init__(self, n_patches, n_features, n_classes, hidden=FUSION_HIDDEN):
        super().__init__(
            nn.Linear(n_patches * n_features, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, n_classes),
        )


def default_channel_shift(patch_size):
    """Largest colour-channel shift for a patch size, scaled from Noroozi & Favaro.

    The paper shifts each colour channel of a 64 px tile by up to 2 px; the shift
    keeps that ratio and is at least 1 px, so it always masks the sub-pixel
    chromatic aberration of a lens.

    Parameters
    ----------
    patch_size : int

    Returns
    -------
    max_shift : int

    Examples
    --------
    >>> from skssl.pretext._spatial import default_channel_shift
    >>> default_channel_shift(7), default_channel_shift(64)
    (1, 2)
    """
    return max(1, (int(patch_size) + 16) // 32)
