import math

import pytest
import torch

from skssl.losses import NTXentLoss


def _views(n=3, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def _loop_ntxent(z_a, z_b, temperature):
    """Eq. (1) of SimCLR, one anchor at a time."""
    z = torch.cat([z_a, z_b])
    n = len(z_a)

    def sim(i, j):
        return float(z[i] @ z[j] / (z[i].norm() * z[j].norm())) / temperature

    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        denominator = sum(math.exp(sim(i, k)) for k in range(2 * n) if k != i)
        total -= math.log(math.exp(sim(i, positive)) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_matches_per_anchor_formula(temperature):
    z_a, z_b = _views()
    loss = NTXentLoss(temperature)(z_a, z_b)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(_loop_ntxent(z_a, z_b, temperature), rel=1e-5)


def test_symmetric_and_scale_invariant():
    z_a, z_b = _views(n=5, d=8)
    loss = NTXentLoss()
    assert torch.allclose(loss(z_a, z_b), loss(z_b, z_a))
    assert torch.allclose(loss(z_a, z_b), loss(3 * z_a, 0.5 * z_b))


def test_aligned_views_give_lower_loss_and_gradients():
    z_a, z_b = _views(n=6, d=8)
    z_a.requires_grad_(True)
    loss = NTXentLoss()
    value = loss(z_a, z_b)
    value.backward()
    assert torch.isfinite(z_a.grad).all() and z_a.grad.abs().sum() > 0
    assert loss(z_b, z_b) < value


def test_gather_uses_the_global_batch():
    z_a, z_b = _views(n=3)
    other_a, other_b = _views(n=3, seed=1)

    def gather(z):
        # Stands for rank 0 of 2: the other rank's views follow the local ones.
        return torch.cat([z, other_a if z is z_a else other_b])

    distributed = NTXentLoss(gather=gather)(z_a, z_b)
    single = NTXentLoss()(torch.cat([z_a, other_a]), torch.cat([z_b, other_b]))
    assert torch.allclose(distributed, single)


@pytest.mark.parametrize("temperature", [0, -1.0, float("inf"), float("nan"), "0.5", None])
def test_invalid_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="gather"):
        NTXentLoss(gather=3)
    with pytest.raises(ValueError, match="same shape"):
        NTXentLoss()(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="same shape"):
        NTXentLoss()(torch.zeros(3), torch.zeros(3))
