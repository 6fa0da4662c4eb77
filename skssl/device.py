"""Where and how tensors run: device choice, mixed precision and memory layout."""

import contextlib
import copy
import re

import torch
from torch import nn

__all__ = [
    "autocast",
    "memory_format",
    "resolve_device",
    "to_memory_format",
]


def resolve_device(device):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` into a device name.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA, then MPS, then the CPU.

    Returns
    -------
    device : str
        ``"cpu"``, ``"cuda:N"`` or ``"mps"``.

    Raises
    ------
    ValueError
        For an unknown name or a device this machine does not have.

    Examples
    --------
    >>> from skssl.device import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.current_device()}"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match:
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={name!r} but CUDA is not available on this machine; "
                "use device='auto' or device='cpu'."
            )
        index = int(match.group(1) or torch.cuda.current_device())
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={name!r} but this machine has {torch.cuda.device_count()} CUDA "
                "device(s)."
            )
        return f"cuda:{index}"
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device='mps' but MPS is not available; use 'auto' or 'cpu'.")
        return "mps"
    raise ValueError(
        f"Unknown device {name!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
    )


def autocast(device):
    """The mixed-precision context of skssl on ``device``: bfloat16 on CUDA, none elsewhere.

    On a CPU, bfloat16 autocast made the reference encoder's training step slower
    (773 vs 615 views/s in NCHW, 880 vs 921 channels-last), so it is not used there.

    Parameters
    ----------
    device : str or torch.device

    Returns
    -------
    context : context manager

    Examples
    --------
    >>> import torch
    >>> from skssl.device import autocast
    >>> with autocast("cpu"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.float32
    """
    if str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(channels_last):
    """``torch.channels_last`` or ``torch.contiguous_format``.

    Parameters
    ----------
    channels_last : bool

    Returns
    -------
    memory_format : torch.memory_format

    Examples
    --------
    >>> from skssl.device import memory_format
    >>> memory_format(True)
    torch.channels_last
    """
    return torch.channels_last if channels_last else torch.contiguous_format


def to_memory_format(x, channels_last):
    """Images ``(B, C, H, W)`` or tiles ``(B, T, C, H, W)`` in the encoder's layout.

    The strides are spelt out: torch's ``contiguous(memory_format=...)`` keeps the
    strides of a 1-channel batch whatever they are, and convolutions then pick either
    layout. Tiles are channels-last within each tile, so that ``flatten(0, 1)`` stays
    a view. Other tensors are returned as they are; so is ``x`` when it already has
    the layout.

    Parameters
    ----------
    x : torch.Tensor
    channels_last : bool
        NHWC (``True``) or NCHW (``False``) memory layout.

    Returns
    -------
    x : torch.Tensor
        Same shape and values as ``x``.

    Examples
    --------
    >>> import torch
    >>> from skssl.device import to_memory_format
    >>> to_memory_format(torch.zeros(2, 3, 4, 5), channels_last=True).stride()
    (60, 1, 15, 3)
    """
    if x.ndim not in (4, 5):
        return x
    if channels_last:
        *lead, C, H, W = x.shape
        n = len(lead)
        out = x.new_empty((*lead, H, W, C)).permute(*range(n), n + 2, n, n + 1)
    else:
        out = x.new_empty(x.shape)
    if out.stride() == x.stride():
        return x
    return out.copy_(x)


def _module_to_cpu(obj):
    """Copy the modules and tensors of a (nested) object to the CPU; deep-copy modules,
    so that a model trained on a GPU stays there and is pickled from the copy."""
    if isinstance(obj, nn.Module):
        return copy.deepcopy(obj).to("cpu")
    if isinstance(obj, torch.Tensor):
        return obj.to("cpu")
    if isinstance(obj, dict):
        return {k: _module_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_module_to_cpu(v) for v in obj)
    return obj


def _on_cpu(module):
    """Whether every parameter and buffer of ``module`` is on the CPU."""
    return all(p.device.type == "cpu" for p in module.parameters()) and all(
        b.device.type == "cpu" for b in module.buffers()
    )
