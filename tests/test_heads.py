import torch
from torch import nn

from skssl.heads import ProjectionHead, SimCLRProjectionHead


def test_projection_head_builds_the_blocks():
    head = ProjectionHead(
        [(6, 5, nn.BatchNorm1d(5), nn.ReLU()), (5, 4, None, nn.Tanh()), (4, 2, None, None)]
    )
    kinds = [type(m).__name__ for m in head.layers]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "Tanh", "Linear"]
    # A linear layer before batch norm needs no bias.
    assert head.layers[0].bias is None and head.layers[3].bias is not None
    assert head(torch.randn(3, 6)).shape == (3, 2)


def test_simclr_head_shapes():
    head = SimCLRProjectionHead(32, hidden_dim=16, output_dim=8)
    assert [type(m).__name__ for m in head.layers] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head(torch.randn(5, 32)).shape == (5, 8)
    default = SimCLRProjectionHead(128)
    assert default(torch.randn(2, 128)).shape == (2, 128)
    assert default.layers[0].out_features == 512
