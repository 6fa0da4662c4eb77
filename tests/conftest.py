import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tests use tiny tensors: one thread is fastest, deterministic, and does not
    # oversubscribe a loaded 2-core machine.
    torch.set_num_threads(1)
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
