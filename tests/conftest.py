import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tests use tiny tensors: one thread is fastest, deterministic, and does not
    # oversubscribe a loaded 2-core machine.
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def _float32_by_default(monkeypatch):
    # precision="auto" is bfloat16 on CPUs with AVX-512 BF16 or AMX and float32 on the
    # others: tests resolve it to float32 everywhere, so that their tolerances and
    # pinned numbers hold on every CI machine. Tests of bfloat16 ask for it by name.
    monkeypatch.setattr("skssl.device.native_bfloat16", lambda device: False)
    yield


@pytest.fixture
def locate():
    """Find where a normalised patch was cut: ``locate(patch, image) -> (top, left)``.

    ``patch`` is ``(t, t)`` and ``image`` ``(H, W)``; the window of the image that
    normalises (mean 0, standard deviation 1) to the patch is returned.
    """
    from skssl.ops import normalize_patches

    def locate(patch, image):
        t = patch.shape[-1]
        windows = normalize_patches(image.unfold(0, t, 1).unfold(1, t, 1))
        error = (windows - patch).abs().amax(dim=(-2, -1))
        return divmod(int(error.argmin()), windows.shape[1])

    return locate


class _NoMap(nn.Module):
    """An encoder without a feature map: 8 features of a flat 8x8 image."""

    num_features = 8

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8))

    def forward(self, x):
        return self.net(x)


@pytest.fixture
def no_map_encoder():
    """An encoder factory (8x8 images) whose encoders have no ``feature_map``."""
    return _NoMap
