"""Heads: the small networks a method puts on top of the encoder during training."""

from torch import nn

__all__ = ["ProjectionHead", "SimCLRProjectionHead"]


class ProjectionHead(nn.Module):
    """An MLP described block by block.

    Each block is ``(in_dim, out_dim, batch_norm, activation)`` and becomes a
    linear layer followed by ``batch_norm`` and ``activation`` when they are not
    None. A linear layer followed by batch norm has no bias, since the norm's shift
    replaces it.

    Parameters
    ----------
    blocks : list of tuple of (int, int, nn.Module or None, nn.Module or None)
        The blocks, from input to output.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skssl.heads import ProjectionHead
    >>> head = ProjectionHead([(8, 4, nn.BatchNorm1d(4), nn.ReLU()), (4, 2, None, None)])
    >>> head(torch.randn(3, 8)).shape
    torch.Size([3, 2])
    """

    def __init__(self, blocks):
        super().__init__()
        layers = []
        for in_dim, out_dim, batch_norm, activation in blocks:
            layers.append(nn.Linear(in_dim, out_dim, bias=batch_norm is None))
            layers += [m for m in (batch_norm, activation) if m is not None]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class SimCLRProjectionHead(ProjectionHead):
    """The projection head ``g`` of SimCLR: Linear - BatchNorm - ReLU - Linear.

    Chen et al. (2020), "A Simple Framework for Contrastive Learning of Visual
    Representations", Section 2.1: the contrastive loss is applied to
    ``z = W2 ReLU(W1 h)`` rather than to the encoder's features ``h``, which keeps
    more information in ``h`` (Section 4.2); their implementation adds batch norm
    after ``W1``. The features used downstream are ``h``, before this head.

    Parameters
    ----------
    input_dim : int
        Size of the encoder features ``h``.
    hidden_dim : int, default=512
        Width of the hidden layer.
    output_dim : int, default=128
        Size of ``z``; the paper uses 128.

    Examples
    --------
    >>> import torch
    >>> from skssl.heads import SimCLRProjectionHead
    >>> SimCLRProjectionHead(32, hidden_dim=16, output_dim=8)(torch.randn(4, 32)).shape
    torch.Size([4, 8])
    """

    def __init__(self, input_dim, hidden_dim=512, output_dim=128):
        super().__init__(
            [
                (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
                (hidden_dim, output_dim, None, None),
            ]
        )
