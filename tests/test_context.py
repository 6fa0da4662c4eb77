import pickle

import numpy as np
import pytest
import torch

from skssl import ContextPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.ops import (
    CONTEXT_OFFSETS,
    ContextGeometry,
    context_geometry,
    normalize_patches,
)

SMALL = dict(encoder_kwargs={"channels": (8, 16)}, batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist(subset="test", return_X_y=True)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize(
    "params, size, expected",
    [
        ({}, 28, context_geometry(28)),
        ({}, 96, context_geometry(96)),
        ({}, 15, ContextGeometry(3, 2, 1)),
        ({"patch_size": 5}, 28, ContextGeometry(5, 2, 1)),
        ({"gap": 4}, 28, ContextGeometry(6, 4, 1)),
        ({"jitter": 0, "gap": 0}, 28, ContextGeometry(9, 0, 0)),
        ({"jitter": 3}, 40, ContextGeometry(7, 6, 3)),
    ],
)
def test_geometry_defaults_fill_the_image(params, size, expected):
    est = ContextPretrainer(**params)
    assert context_geometry(size, est.patch_size, est.gap, est.jitter) == expected


def test_batch_is_a_centre_and_a_neighbour(locate):
    # fit on the scale of the batches looked at (standard normal)
    est = ContextPretrainer(random_state=0, **SMALL).fit(np.random.RandomState(0).randn(4, 28, 28))
    x = torch.randn(16, 1, 28, 28)
    pairs, target = est.pretext_batch(x[:, 0].numpy())
    assert pairs.shape == (16, 2, 1, 7, 7)
    assert target.dtype == torch.int64 and target.shape == (16,)
    assert ((target >= 0) & (target < 8)).all() and len(target.unique()) > 4
    torch.testing.assert_close(pairs.mean(dim=(-2, -1)), torch.zeros(16, 2, 1), atol=1e-5, rtol=0)
    for b in range(16):
        centre = np.array(locate(pairs[b, 0, 0], x[b, 0]))
        neighbour = np.array(locate(pairs[b, 1, 0], x[b, 0]))
        step = np.array(CONTEXT_OFFSETS[int(target[b])]) * (7 + 2)
        # one grid step (patch + gap) away, give or take the jitter of both patches
        assert (np.abs(neighbour - centre - step) <= 2).all()


def test_color_guards():
    x = torch.randn(8, 3, 28, 28)
    est = ContextPretrainer(random_state=0, **SMALL)
    est.fit(np.random.RandomState(0).randn(4, 28, 28, 3))

    def batch(guard):
        est.set_params(color_guard=guard)
        pairs, _ = est.pretext_batch(x.permute(0, 2, 3, 1).numpy())
        return pairs

    plain = batch(None)
    assert not torch.allclose(batch("jitter"), plain)
    grey = batch("grayscale")
    torch.testing.assert_close(grey[:, :, 0], grey[:, :, 2])
    # grayscale images: no guard changes anything
    mono = ContextPretrainer(random_state=0, **SMALL).fit(np.random.RandomState(0).randn(4, 28, 28))

    def mono_batch(guard):
        return mono.set_params(color_guard=guard).pretext_batch(x[:, 0].numpy())[0]

    for guard in ("jitter", "grayscale"):
        torch.testing.assert_close(mono_batch(guard), mono_batch(None))


def test_grayscale_guard_applies_at_transform_too():
    rng = np.random.RandomState(0)
    X = rng.rand(16, 20, 20, 3).astype(np.float32)
    est = ContextPretrainer(color_guard="grayscale", max_epochs=1, random_state=0, **SMALL).fit(X)
    # only the channel mean matters (images are normalised per channel first)
    standard = (X - est.channel_mean_) / est.channel_std_
    swapped = standard[..., ::-1] * est.channel_std_ + est.channel_mean_
    np.testing.assert_allclose(est.transform(swapped), est.transform(X), rtol=1e-4, atol=1e-5)


def test_learns_on_real_images(fashion):
    X, _ = fashion
    est = ContextPretrainer(encoder_kwargs={"channels": (16, 32)}, max_epochs=5, batch_size=64,
                            random_state=0, device="cpu").fit(X[:2000])
    acc = [h["pretext_accuracy"] for h in est.history_]
    assert est.loss_curve_[-1] < 0.75 * est.loss_curve_[0]
    assert acc[0] < acc[-1] and acc[-1] > 0.4  # chance is 1/8
    assert est.history_[-1]["inputs_per_s"] == pytest.approx(2 * est.history_[-1]["images_per_s"])


def test_transform_encodes_whole_images(fashion):
    X = fashion[0][:64]
    est = ContextPretrainer(pooling="mean", max_epochs=1, random_state=0, **SMALL).fit(X)
    features = est.transform(X)
    assert features.shape == (64, 16) and features.dtype == np.float32
    # each whole image is normalised on its own, as the patches are at fit
    x = torch.from_numpy(X[:, None] / 255.0).float()
    x = (x - est.channel_mean_[0]) / est.channel_std_[0]
    with torch.no_grad():
        expected = est.encoder_.eval()(normalize_patches(x)).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    # so brightness and contrast do not change the features (on the [0, 1] scale of
    # the uint8 training images: another scale is refused)
    np.testing.assert_allclose(est.transform(X / 255 * 0.5 + 0.1), features, rtol=1e-3,
                               atol=1e-4)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(X), features)
    assert again.score(X) == est.score(X)


@pytest.mark.parametrize(
    "params, shape, match",
    [
        ({}, (14, 30), r"3 px patches, a 2 px gap, 1 px jitter\) needs images of at least 15x15"),
        ({"patch_size": 10}, (28, 28), "at least 36x36 pixels, got 28x28"),
        ({"gap": 1, "jitter": 1}, (28, 28), "gap=1 must be at least 2 \\* jitter = 2"),
        ({"color_guard": "drop"}, (28, 28), "color_guard"),
        ({"patch_size": 0}, (28, 28), "patch_size"),
        ({"encoder": "vit_tiny"}, (28, 28), r"7x7 inputs .* whole 28x28 .* 'cnn' or 'resnet18'"),
    ],
)
def test_bad_parameters_and_small_images(params, shape, match):
    X = np.random.RandomState(0).rand(4, *shape)
    est = ContextPretrainer(**{"max_epochs": 1, "device": "cpu", **params})
    with pytest.raises(ValueError, match=match):
        est.fit(X)
