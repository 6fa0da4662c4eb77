import numpy as np
import pytest
import torch

from skssl import RotationPretrainer
from skssl.datasets import load_fashion_mnist


def test_batch_has_all_four_rotations_of_each_image():
    X = np.arange(4 * 9, dtype=np.float32).reshape(4, 3, 3)
    est = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1, device="cpu")
    est.fit(X)
    x = (torch.from_numpy(X[:2, None]) - float(est.channel_mean_[0])) / float(est.channel_std_[0])
    inputs, targets = est.pretext_batch(X[:2])
    assert inputs.shape == (8, 1, 3, 3)
    assert targets.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    torch.testing.assert_close(inputs[2], torch.rot90(x[0], 1, dims=(1, 2)))
    torch.testing.assert_close(inputs[7], torch.rot90(x[1], 3, dims=(1, 2)))


def test_non_square_images_are_center_cropped():
    X = np.random.RandomState(0).rand(16, 6, 10).astype(np.float32)
    est = RotationPretrainer(encoder_kwargs={"channels": (4,)}, pooling="mean", max_epochs=1,
                             device="cpu").fit(X)
    assert est.transform(X).shape == (16, 4)
    # only the centre 6x6 square matters
    X2 = X.copy()
    X2[:, :, :2] = 0
    np.testing.assert_allclose(est.transform(X2), est.transform(X), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist(subset="test", return_X_y=True)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_learns_on_real_images(fashion):
    X, _ = fashion
    est = RotationPretrainer(encoder_kwargs={"channels": (16, 32)}, max_epochs=3,
                             batch_size=64, random_state=0, device="cpu").fit(X[:2000])
    losses = est.loss_curve_
    acc = [h["pretext_accuracy"] for h in est.history_]
    assert losses[0] > losses[1] > losses[2]
    assert losses[-1] < 0.8 * losses[0]
    assert acc[0] < acc[-1] and acc[-1] > 0.6  # chance is 0.25
