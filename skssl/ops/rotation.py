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


def turn_each(x, turns):
    """Turn every image of a batch by its own number of quarter turns.

    One gather per batch: image ``b`` comes out as
    ``torch.rot90(x[b], turns[b], dims=(1, 2))``. A non-square batch can only be
    turned by half turns (an odd number of quarter turns would change its shape).

    Parameters
    ----------
    x : torch.Tensor of shape (B, C, H, W)
        Images (or any per-image grids, such as per-tile labels), of any dtype.
    turns : torch.Tensor of shape (B,), integer
        Quarter turns counter-clockwise for each image, in ``[0, 3]``; even where
        ``H != W``.

    Returns
    -------
    turned : torch.Tensor of shape (B, C, H, W)
        A new tensor; ``x`` is not modified.

    Examples
    --------
    >>> import torch
    >>> from skssl.ops import turn_each
    >>> x = torch.arange(8).view(2, 1, 2, 2)
    >>> turn_each(x, torch.tensor([0, 1]))[:, 0].tolist()
    [[[0, 1], [2, 3]], [[5, 7], [4, 6]]]
    """
    if x.ndim != 4:
        raise ValueError(f"x must be a batch of shape (B, C, H, W); got shape {tuple(x.shape)}.")
    if not isinstance(turns, torch.Tensor) or turns.shape != x.shape[:1] or (
        turns.is_floating_point() or turns.is_complex()
    ):
        raise TypeError(
            f"turns must be an integer tensor of shape ({x.shape[0]},), one per image; "
            f"got {turns!r:.80}."
        )
    B, C, H, W = x.shape
    if B and (int(turns.min()) < 0 or int(turns.max()) > 3):
        raise ValueError("turns must be quarter turns in [0, 3].")
    if H != W and B and bool((turns % 2).any()):
        raise ValueError(
            f"{H}x{W} images can only be turned by half turns (turns 0 or 2); an odd "
            "number of quarter turns would change their shape. Crop them square first "
            "(skssl.ops.center_crop_square)."
        )
    pixels = torch.arange(H * W, device=x.device).view(H, W)
    reads = torch.stack([
        torch.rot90(pixels, k).flatten() if H == W or k % 2 == 0 else pixels.flatten()
        for k in range(4)
    ])
    index = reads[turns.to(x.device).long()][:, None, :].expand(B, C, H * W)
    return x.flatten(2).gather(2, index).view(B, C, H, W)
