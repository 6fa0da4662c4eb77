import numpy as np
import pytest
import torch

from skssl import RotationPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.heads import PyramidHead


def test_batch_turns_each_image_once_by_its_target():
    X = np.random.RandomState(0).rand(64, 5, 5).astype(np.float32)
    est = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1, device="cpu")
    est.fit(X)
    x = (torch.from_numpy(X[:, None]) - float(est.channel_mean_[0])) / float(est.channel_std_[0])
    inputs, targets = est.pretext_batch(X, random_state=1)
    assert inputs.shape == (64, 1, 5, 5) and targets.shape == (64,)
    assert set(targets.tolist()) == {0, 1, 2, 3}  # 64 draws: every turn comes up
    for b in range(64):
        torch.testing.assert_close(inputs[b], torch.rot90(x[b], int(targets[b]), dims=(1, 2)))
    again, same = est.pretext_batch(X, random_state=1)
    torch.testing.assert_close(again, inputs)
    assert same.tolist() == targets.tolist()
    assert est.pretext_batch(X, random_state=2)[1].tolist() != targets.tolist()


def test_all_rotations_puts_the_four_rotations_of_each_image_in_the_batch():
    X = np.arange(4 * 9, dtype=np.float32).reshape(4, 3, 3)
    est = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1, device="cpu",
                             all_rotations=True)
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


def test_all_rotations_is_a_network_parameter_only_in_name():
    """The head predicts 4 classes either way: a warm fit may switch the batch."""
    X = np.random.RandomState(0).rand(32, 6, 6).astype(np.float32)
    est = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1, device="cpu",
                             random_state=0).fit(X)
    est.set_params(all_rotations=True).partial_fit(X)
    assert est.n_iter_ == 2
    ratios = [h["inputs_per_s"] / h["images_per_s"] for h in est.history_]
    np.testing.assert_allclose(ratios, [1, 4])


def test_head_reads_the_pyramid_of_the_feature_map(no_map_encoder):
    """The head sees where things are: a change in one quadrant of the map moves the
    logits; an encoder without a feature map gets the MLP on its pooled features."""
    X = np.random.RandomState(0).rand(32, 8, 8).astype(np.float32)
    est = RotationPretrainer(encoder_kwargs={"channels": (4, 8)}, max_epochs=1, device="cpu",
                             random_state=0).fit(X)
    assert isinstance(est.head_, PyramidHead) and est.head_.mlp[0].in_features == 5 * 8
    assert est.transform(X).shape == (32, 5 * 8)
    head = est.head_.eval()
    maps = torch.randn(1, 8, 4, 4)
    flipped = maps.clone()
    flipped[:, :, :2, :2], flipped[:, :, 2:, 2:] = maps[:, :, 2:, 2:], maps[:, :, :2, :2]
    assert not torch.allclose(head(flipped), head(maps))  # same mean, cells swapped
    plain = RotationPretrainer(encoder=no_map_encoder, max_epochs=1, device="cpu",
                               random_state=0).fit(X)
    assert isinstance(plain.head_, torch.nn.Sequential)
    assert plain.head_(torch.zeros(3, 8)).shape == (3, 4)
