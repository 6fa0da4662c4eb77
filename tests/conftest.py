import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tests use tiny tensors: one thread is fastest, deterministic, and does not
    # oversubscribe a loaded 2-core machine.
    torch.set_num_threads(1)
    yield
