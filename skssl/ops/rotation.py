"""Rotations by multiples of 90 degrees (Gidaris, Singh & Komodakis, ICLR 2018)."""

import torch


def center_crop_square(x):
    """Centre-crop a batch ``(B, C, H, W)`` to ``(B, C, s, s)`` with ``s = min(H, W)``.

    A rotation by 90 degrees changes the shape of a non-square image, and padding it
    would give the rotation away, so rotations are taken of the centre square.

    Parameters
    ----------
    x : torch.Tensor

    Returns
    -------
    cropped : torch.Tensor
        A view of ``x``.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import center_crop_square
    >>> center_crop_square(torch.zeros(2, 3, 10, 16)).shape
    torch.Size([2, 3, 10, 10])
    """
    H, W = x.shape[-2:]
    s = min(H, W)
    top, left = (H - s) // 2, (W - s) // 2
    return x[..., top : top + s, left : left + s]


def rotations(x):
    """All four rotations of every image, labelled by the number of quarter turns.

    As in the paper, the four rotated copies of an image go into the same batch.

    Parameters
    ----------
    x : torch.Tensor of shape (B, C, s, s)
        Square images.

    Returns
    -------
    inputs : torch.Tensor of shape (4 * B, C, s, s)
        ``inputs[k * B + b]`` is image ``b`` turned by ``k`` quarter turns
        counter-clockwise (``torch.rot90(x[b], k, dims=(1, 2))``).
    targets : torch.Tensor of shape (4 * B,), dtype int64
        ``k`` for each input, on ``x.device``.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import rotations
    >>> inputs, targets = rotations(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    >>> targets.tolist()
    [0, 1, 2, 3]
    >>> inputs[1, 0]
    tensor([[2., 4.],
            [1., 3.]])
    """
    inputs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    targets = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return inputs, targets
