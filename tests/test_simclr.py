"""SimCLRPretrainer: two augmented views, projection head, NT-Xent."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import SimCLRPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.heads import SimCLRProjectionHead
from skssl.losses import positive_pair_accuracy

FAST = dict(encoder_kwargs={"channels": (8, 16)}, batch_size=50, device="cpu")


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return (d.images[:300] / 16).astype(np.float32), d.target[:300]


def test_loss_falls_on_fashion_mnist():
    X, _ = load_fashion_mnist(subset="test", return_X_y=True)
    est = SimCLRPretrainer(
        encoder_kwargs={"channels": (16, 32)},
        max_epochs=3,
        batch_size=64,
        device="cpu",
        random_state=0,
    ).fit(X[:1000])
    assert est.loss_curve_[-1] < est.loss_curve_[0] - 0.1
    first, last = est.history_[0], est.history_[-1]
    # chance of finding the positive among the 2B - 1 = 127 other views: 1/127
    assert last["pretext_accuracy"] > max(first["pretext_accuracy"], 5 / 127)
    assert last["inputs_per_s"] == pytest.approx(2 * last["images_per_s"])
    assert isinstance(est.head_, SimCLRProjectionHead)
    assert est.transform(X[:10]).shape == (10, 5 * 32)  # pyramid: image + 4 cells


def test_same_random_state_same_features(digits):
    X, _ = digits
    a = SimCLRPretrainer(max_epochs=1, random_state=3, **FAST).fit_transform(X)
    b = SimCLRPretrainer(max_epochs=1, random_state=3, **FAST).fit_transform(X)
    c = SimCLRPretrainer(max_epochs=1, random_state=4, **FAST).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    est = SimCLRPretrainer(max_epochs=1, random_state=3, **FAST).fit(X)
    assert est.score(X) == est.score(X) < 0


def test_two_views_of_each_image_differ(digits):
    X, _ = digits
    est = SimCLRPretrainer(max_epochs=1, random_state=0, **FAST).fit(X)
    inputs, targets = est.pretext_batch(X[:20])
    assert inputs.shape == (40, 1, 8, 8) and targets is None
    view_a, view_b = inputs[:20], inputs[20:]
    assert (view_a - view_b).abs().flatten(1).amax(1).min() > 1e-3


def test_smaller_views(digits):
    # The encoder trains on 6x6 views of the 8x8 images and transform gives it whole
    # images; the augmentation is built once per configuration.
    X, _ = digits
    est = SimCLRPretrainer(max_epochs=1, view_size=6, random_state=0, **FAST).fit(X)
    inputs, _ = est.pretext_batch(X[:5])
    assert inputs.shape == (10, 1, 6, 6)
    assert est.history_[0]["inputs_per_s"] > 0
    assert est.transform(X).shape == (len(X), 5 * 16)  # pyramid pooling: 1 + 4 cells
    # the cached augmentation follows a change of parameters
    inputs, _ = est.set_params(view_size=(4, 5)).pretext_batch(X[:5])
    assert inputs.shape == (10, 1, 4, 5)
    # An encoder that only takes its training size gets a clear error.
    fixed = SimCLRPretrainer(encoder="vit_tiny", view_size=6, max_epochs=1, device="cpu",
                             encoder_kwargs={"patch_size": 2, "pos_embed": "learned"})
    with pytest.raises(ValueError, match="must take both sizes"):
        fixed.fit(X)


def test_views_are_normalised_after_augmentation(digits):
    # Without jitter and with full-image crops, a view is the image, maybe mirrored,
    # standardised with the statistics learnt at fit.
    X, _ = digits
    est = SimCLRPretrainer(
        max_epochs=1, crop_scale=(1.0, 1.0), jitter_strength=0, random_state=0, **FAST
    ).fit(X)
    x = torch.from_numpy(X[:20]).unsqueeze(1)
    inputs, _ = est.pretext_batch(X[:20])
    clean = (torch.cat([x, x]) - float(est.channel_mean_[0])) / float(est.channel_std_[0])
    same = torch.isclose(inputs, clean, atol=1e-5).flatten(1).all(1)
    mirrored = torch.isclose(inputs, clean.flip(-1), atol=1e-5).flatten(1).all(1)
    assert bool((same | mirrored).all()) and same.any() and mirrored.any()


def test_pretext_accuracy_finds_the_positive():
    z = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    assert positive_pair_accuracy(z, z) == 1.0
    assert positive_pair_accuracy(z, z.roll(1, 0)) < 1.0


def test_rgb_images_with_blur():
    X = np.random.RandomState(0).randint(0, 256, (40, 12, 12, 3), dtype=np.uint8)
    est = SimCLRPretrainer(max_epochs=1, blur=True, random_state=0, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # uint8 images need no rescaling
        assert est.fit_transform(X).shape == (40, 5 * 16)
    inputs, _ = est.pretext_batch(X[:4])
    assert inputs.shape == (8, 3, 12, 12)


def test_warns_when_images_are_not_on_the_unit_scale(digits):
    X, _ = digits
    with pytest.warns(UserWarning, match=r"values in \[0, 16\]"):
        SimCLRPretrainer(max_epochs=1, random_state=0, **FAST).fit(X * 16)


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = make_pipeline(
        SimCLRPretrainer(max_epochs=2, random_state=0, **FAST),
        StandardScaler(),
        LogisticRegression(),
    )
    search = GridSearchCV(
        pipe,
        {"simclrpretrainer__crop_scale": [0.5, (0.2, 1.0)], "logisticregression__C": [0.1, 1.0]},
        cv=2,
    )
    search.fit(X.reshape(len(X), -1), y)
    assert set(search.best_params_) == {"simclrpretrainer__crop_scale", "logisticregression__C"}
    assert search.score(X.reshape(len(X), -1), y) > 0.5


@pytest.mark.parametrize(
    "params, shape, match",
    [
        ({"crop_scale": (0.5, 2.0)}, (8, 8), "crop_scale must be"),
        ({"crop_scale": (0.5,)}, (8, 8), "crop_scale must be"),
        ({"crop_scale": 0.0}, (8, 8), "crop_scale"),
        ({"temperature": 0.0}, (8, 8), "temperature"),
        ({"grayscale_p": 1.5}, (8, 8), "grayscale_p"),
        ({}, (8, 8, 2), "1 channel.* or RGB"),
        ({"blur": True}, (1, 8), "blur=True needs views of at least 2x2"),
        ({"blur": True, "view_size": (1, 4)}, (8, 8), "blur=True needs views of at least 2x2"),
        ({"view_size": (4, 4, 4)}, (8, 8), "view_size must be"),
        ({"view_size": (4, 0)}, (8, 8), "view_size must be"),
        ({"view_size": 0}, (8, 8), "view_size"),
    ],
)
def test_bad_parameters(params, shape, match):
    X = np.random.RandomState(0).rand(10, *shape)
    with pytest.raises(ValueError, match=match):
        SimCLRPretrainer(max_epochs=1, device="cpu", **params).fit(X)


SMALL = {
    "cnn": {"channels": (4,)},
    "resnet18": {},
    "vit_tiny": {"patch_size": 7, "embed_dim": 8, "depth": 1, "num_heads": 1},
}


@pytest.mark.parametrize(
    "encoder, size, expected",
    [("cnn", 28, 20), ("resnet18", 32, 23), ("cnn", 8, 8), ("vit_tiny", 28, 28)],
)
def test_auto_view_size_follows_the_image_and_encoder(encoder, size, expected):
    # The measured recipe: views 5/7 of the side for named CNNs on images of 16 pixels
    # or more; ViTs (one input size) and tiny images keep the image size.
    X = np.random.RandomState(0).rand(8, size, size).astype(np.float32)
    est = SimCLRPretrainer(encoder=encoder, encoder_kwargs=SMALL[encoder], max_epochs=1,
                           batch_size=8, device="cpu", random_state=0)
    assert est.view_size == "auto"
    inputs, _ = est.fit(X).pretext_batch(X[:2])
    assert inputs.shape[-2:] == (expected, expected)
    assert est.transform(X).shape[0] == len(X)
