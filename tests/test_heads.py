import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skssl.heads import ProjectionHead, PyramidHead, SimCLRProjectionHead


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


def test_pyramid_head_reads_the_mean_then_the_four_cells():
    head = PyramidHead(3, 4, hidden=8).eval()
    maps = torch.randn(2, 3, 7, 7)
    # 7 rows into 2 cells: rows 0-3 and 3-6 (adaptive pooling overlaps the middle row)
    cells = torch.stack([maps[:, :, r, c].mean((2, 3)) for r in (slice(0, 4), slice(3, 7))
                         for c in (slice(0, 4), slice(3, 7))], dim=2)
    pooled = torch.cat([maps.mean((2, 3)), cells.flatten(1)], dim=1)
    torch.testing.assert_close(pooled, torch.cat([maps.mean((2, 3)),
                                                  F.adaptive_avg_pool2d(maps, 2).flatten(1)], 1))
    torch.testing.assert_close(head(maps), head.mlp(pooled))
    assert head.mlp[0].in_features == 15
    # a 1x1 map (a tiny image): its one value, five times
    one = torch.randn(2, 3, 1, 1)
    x = one.flatten(1)
    torch.testing.assert_close(head(one), head.mlp(torch.cat([x, x.repeat_interleave(4, 1)], 1)))
    with pytest.raises(ValueError, match="feature maps"):
        head(torch.zeros(2, 3))
