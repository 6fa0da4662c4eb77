import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_threads():
    # Two threads at most: the suite must be fast and deterministic on 2-core CI.
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield
