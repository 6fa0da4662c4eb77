"""Where and how tensors run: device choice, mixed precision and memory layout."""

import contextlib
import copy
import os
import re

import torch
from torch import nn

from ._heap import FaultWatch, reuse_freed_memory

__all__ = [
    "FaultWatch",
    "autocast",
    "memory_format",
    "native_bfloat16",
    "resolve_device",
    "resolve_precision",
    "reuse_freed_memory",
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


# oneDNN's instruction-set limits (ONEDNN_MAX_CPU_ISA) below AVX512_CORE_BF16.
_ISA_WITHOUT_BFLOAT16 = frozenset({
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
})


def native_bfloat16(device):
    """Whether ``device`` computes in bfloat16 natively: mixed precision speeds it up.

    CUDA devices that support bfloat16, and CPUs with the AVX-512 BF16 or AMX
    instructions (Intel Cooper Lake, Sapphire Rapids and later, AMD Zen 4 and later).
    On other CPUs bfloat16 is emulated and slower than float32, as it is where the
    environment variable ``ONEDNN_MAX_CPU_ISA`` limits oneDNN to an instruction set
    without it (``AVX2``, say).

    Parameters
    ----------
    device : str or torch.device

    Returns
    -------
    native : bool

    Examples
    --------
    >>> from skssl.device import native_bfloat16
    >>> native_bfloat16("mps")
    False
    """
    name = str(device)
    if name.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if name == "cpu":
        # oneDNN limited to an instruction set without bfloat16 (ONEDNN_MAX_CPU_ISA=AVX2,
        # say, to run as on an older CPU) computes bfloat16 emulated.
        isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
        if isa in _ISA_WITHOUT_BFLOAT16:
            return False
        # Private helpers of torch.cpu (torch >= 2.1): absent, the CPU counts as without.
        return any(getattr(torch.cpu, f"_is_{isa}_supported", lambda: False)()
                   for isa in ("avx512_bf16", "amx_tile"))
    return False


def resolve_precision(precision, device):
    """Turn ``precision="auto"`` into ``"bfloat16"`` or ``"float32"`` for ``device``.

    ``"auto"`` is bfloat16 mixed precision where the device computes in bfloat16
    natively (:func:`native_bfloat16`), float32 elsewhere. On 2 cores of an AMD
    EPYC (Zen 4, AVX-512 BF16), a training step of the reference CNN took 2.5x more
    28x28 views per second in bfloat16 (1,487 vs 590). On a CPU of an earlier
    measurement, whose instruction set was not recorded, bfloat16 was slower (880 vs
    921 views/s).

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
    device : str or torch.device

    Returns
    -------
    precision : {"float32", "bfloat16"}

    Examples
    --------
    >>> from skssl.device import resolve_precision
    >>> resolve_precision("float32", "cpu")
    'float32'
    >>> resolve_precision("auto", "mps")
    'float32'
    """
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    if precision not in ("float32", "bfloat16"):
        raise ValueError(
            f"precision={precision!r} is not one of 'auto', 'float32' or 'bfloat16'."
        )
    return precision


def autocast(device, precision="auto"):
    """The mixed-precision context of skssl on ``device``.

    Within it, convolutions and matrix products run in bfloat16 when
    :func:`resolve_precision` says so (weights, gradients and losses stay float32);
    otherwise nothing changes.

    Parameters
    ----------
    device : str or torch.device
    precision : {"auto", "float32", "bfloat16"}, default="auto"

    Returns
    -------
    context : context manager

    Examples
    --------
    >>> import torch
    >>> from skssl.device import autocast
    >>> with autocast("cpu", "float32"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.float32
    >>> with autocast("cpu", "bfloat16"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    if resolve_precision(precision, device) == "bfloat16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
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
