"""pooling="pyramid": the readout of transform, for every encoder with a feature map."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import skssl
from skssl import (
    ContextPretrainer,
    IntruderPretrainer,
    JigsawPretrainer,
    RotationPretrainer,
    SimCLRPretrainer,
)

X = (load_digits().images[:64] / 16).astype(np.float32)
SMALL = dict(encoder_kwargs={"channels": (4, 8)}, max_epochs=1, batch_size=32, device="cpu",
             random_state=0)


def test_pyramid_is_the_mean_and_four_cells():
    est = RotationPretrainer(pooling="mean", **SMALL).fit(X)
    mean = est.transform(X)
    pyramid = est.set_params(pooling="pyramid").transform(X)  # a readout: no refit
    assert mean.shape == (64, 8) and pyramid.shape == (64, 5 * 8)
    np.testing.assert_allclose(pyramid[:, :8], mean, rtol=1e-5, atol=1e-6)
    # each cell of the 2x2 grid, by hand, on the encoder's last feature map
    x = (torch.from_numpy(X[:3])[:, None] - float(est.channel_mean_[0])) / float(
        est.channel_std_[0])
    with torch.no_grad():
        maps = est.encoder_.eval().feature_map(x)  # (3, 8, 4, 4) on 8x8 digits
    top_left = maps[:, :, :2, :2].mean((2, 3)).numpy()
    bottom_right = maps[:, :, 2:, 2:].mean((2, 3)).numpy()
    cells = pyramid[:3, 8:].reshape(3, 4, 8)  # region-major: 4 cells of 8 features
    np.testing.assert_allclose(cells[:, 0], top_left, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cells[:, 3], bottom_right, rtol=1e-4, atol=1e-5)
    assert est.get_feature_names_out().shape == (40,)


@pytest.mark.parametrize("cls", [RotationPretrainer, JigsawPretrainer, ContextPretrainer,
                                 IntruderPretrainer, SimCLRPretrainer])
def test_auto_is_the_pyramid_for_encoders_with_a_map(cls):
    X16 = X.repeat(2, axis=1).repeat(2, axis=2)  # context needs 15x15 pixels at least
    est = cls(**SMALL)
    assert est.pooling == "auto"
    auto = est.fit(X16).transform(X16[:5])
    np.testing.assert_array_equal(auto, est.set_params(pooling="pyramid").transform(X16[:5]))
    assert auto.shape == (5, 40)


def test_pyramid_round_trips_through_save(tmp_path):
    est = RotationPretrainer(pooling="pyramid", **SMALL).fit(X)
    skssl.save(est, tmp_path / "model")
    np.testing.assert_array_equal(skssl.load(tmp_path / "model").transform(X), est.transform(X))


def test_pyramid_needs_a_feature_map(no_map_encoder):
    est = RotationPretrainer(encoder=no_map_encoder, pooling="pyramid", max_epochs=1, device="cpu")
    with pytest.raises(ValueError, match='pooling="pyramid".*no feature_map'):
        est.fit(X)
    assert not hasattr(est, "encoder_")  # a failed fit leaves the estimator as it was
    # the default, "auto", reads such an encoder out with the mean
    fitted = RotationPretrainer(encoder=no_map_encoder, max_epochs=1, device="cpu").fit(X)
    assert fitted.transform(X).shape == (64, 8)
    np.testing.assert_array_equal(fitted.transform(X),
                                  fitted.set_params(pooling="mean").transform(X))
    with pytest.raises(ValueError, match="no feature_map"):
        fitted.set_params(pooling="pyramid").transform(X)


def test_pyramid_on_a_one_row_feature_map():
    # 1x16 images give a 1-row map: the row is repeated, still 4 cells and the same mean
    strip = np.random.RandomState(0).rand(32, 1, 16).astype(np.float32)
    est = RotationPretrainer(pooling="mean", **SMALL).fit(strip)
    mean = est.transform(strip)
    pyramid = est.set_params(pooling="pyramid").transform(strip)
    assert pyramid.shape == (32, 5 * 8)
    np.testing.assert_allclose(pyramid[:, :8], mean, rtol=1e-5, atol=1e-6)
