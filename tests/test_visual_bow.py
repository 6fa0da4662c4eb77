"""VisualBoW: dense descriptors, a k-means vocabulary, pooled word histograms."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import RotationPretrainer, VisualBoW
from skssl.datasets import load_fashion_mnist
from skssl.encoders import ResNet18Encoder, SmallCNN, VisionTransformer, feature_map
from skssl.ops import pool_regions, pyramid_regions


@pytest.fixture(scope="module")
def digits():
    return (load_digits().images[:300] / 16).astype(np.float32)


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist(subset="test", return_X_y=True)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_hard_counts_match_a_hand_computation():
    # 16x16 images cut into 16 patches of 4x4 at stride 4: each image counts 16 words.
    X = np.random.RandomState(0).randint(0, 256, size=(30, 16, 16)).astype(np.uint8)
    X[:5, :8] = 0  # flat patches: normalised to all zeros
    bow = VisualBoW(n_words=6, patch_size=4, stride=4, whiten=False, assignment="hard",
                    pooling="sum", pyramid=(1,), random_state=0).fit(X)
    counts = bow.transform(X)

    patches = (X / 255).reshape(30, 4, 4, 4, 4).transpose(0, 1, 3, 2, 4).reshape(30, 16, 16)
    centred = patches - patches.mean(axis=2, keepdims=True)
    normalised = centred / np.sqrt(patches.var(axis=2, keepdims=True) + 10 / 255**2)
    distances = ((normalised[:, :, None] - bow.vocabulary_[None, None]) ** 2).sum(-1)
    nearest = distances.argmin(axis=2)
    expected = np.stack([np.bincount(row, minlength=6) for row in nearest])
    np.testing.assert_array_equal(counts, expected)
    assert counts.dtype == np.float32 and (counts.sum(axis=1) == 16).all()

    l1 = bow.set_params(norm="l1").transform(X)
    np.testing.assert_allclose(l1, expected / 16, rtol=1e-6)


@pytest.mark.parametrize("assignment", ["hard", "soft"])
@pytest.mark.parametrize("pooling", ["sum", "max"])
def test_l1_histograms_sum_to_one(digits, assignment, pooling):
    bow = VisualBoW(n_words=16, patch_size=3, assignment=assignment, pooling=pooling,
                    pyramid=(1, 2), norm="l1", random_state=0).fit(digits)
    features = bow.transform(digits[:50])
    assert features.shape == (50, 16 * 5)
    assert (features >= 0).all()
    np.testing.assert_allclose(features.sum(axis=1), 1.0, rtol=1e-5)
    if (assignment, pooling) == ("hard", "max"):  # presence of each word in each cell
        for row in features:
            np.testing.assert_allclose(row[row > 0], 1 / (row > 0).sum(), rtol=1e-5)


def test_l2_norm_and_idf(digits):
    bow = VisualBoW(n_words=16, patch_size=3, norm="l2", use_idf=True,
                    random_state=0).fit(digits)
    assert bow.idf_.shape == (16,) and (bow.idf_ >= 1).all()
    np.testing.assert_allclose(np.linalg.norm(bow.transform(digits), axis=1), 1.0, rtol=1e-5)


def test_vocabulary_is_seeded(digits):
    def vocabulary(seed):
        return VisualBoW(n_words=16, patch_size=3, max_descriptors=2000,
                         random_state=seed).fit(digits).vocabulary_

    np.testing.assert_array_equal(vocabulary(0), vocabulary(0))
    assert not np.allclose(vocabulary(0), vocabulary(1))


def test_sample_is_bounded_and_whitened(digits):
    bow = VisualBoW(n_words=8, patch_size=3, max_descriptors=500, random_state=0).fit(digits)
    assert bow.n_descriptors_ == 500
    mean, matrix = bow.whitening_
    assert mean.shape == (9,) and matrix.shape == (9, 9)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-5)
    assert VisualBoW(whiten=False, n_words=8, patch_size=3).fit(digits).whitening_ is None


def test_auto_pyramid_follows_the_grid():
    X = np.random.RandomState(0).rand(20, 28, 28).astype(np.float32)
    bow = VisualBoW(n_words=8, random_state=0).fit(X)  # 24x24 patches of 5x5
    assert bow.grid_size_ == (24, 24) and bow.pyramid_ == (4,)
    assert bow.transform(X).shape == (20, 8 * 16)
    assert VisualBoW(n_words=8, random_state=0).fit(X[:, :13, :16]).pyramid_ == (2,)  # 9x12
    small = VisualBoW(n_words=8, patch_size=3, random_state=0).fit(X[:, :7, :7])  # 5x5 grid
    assert small.pyramid_ == (1,) and small.transform(X[:3, :7, :7]).shape == (3, 8)


def test_images_smaller_than_a_patch():
    with pytest.raises(ValueError, match=r"patches of 5x5 pixels, but the images are 4x4"):
        VisualBoW().fit(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="too few or too small"):
        VisualBoW(n_words=50, patch_size=4).fit(np.zeros((2, 5, 5)))


def test_memmap_batches_and_set_output(digits, tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, digits)
    images = np.load(path, mmap_mode="r")
    bow = VisualBoW(n_words=8, patch_size=3, batch_size=7, random_state=0).fit(images)
    np.testing.assert_array_equal(bow.transform(images), bow.transform(np.array(digits)))
    expected = bow.transform(digits[:20])
    np.testing.assert_allclose(bow.set_params(batch_size=64).transform(digits[:20]), expected,
                               rtol=1e-5, atol=1e-6)
    frame = bow.set_output(transform="pandas").transform(digits[:3])
    assert list(frame.columns[:2]) == ["visualbow0", "visualbow1"] and frame.shape == (3, 8)


def test_encoder_feature_maps():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        cnn = SmallCNN(channels=(4, 8)).eval()
        torch.testing.assert_close(feature_map(cnn, x).mean(dim=(2, 3)), cnn(x))
        resnet = ResNet18Encoder(in_channels=1).eval()
        maps = feature_map(resnet, x)
        assert maps.shape == (2, 512, 4, 4)
        torch.testing.assert_close(maps.mean(dim=(2, 3)), resnet(x))
        for pool in ("mean", "cls"):
            vit = VisionTransformer(1, (28, 28), embed_dim=16, depth=1, num_heads=2,
                                    pool=pool).eval()
            maps = feature_map(vit, x)
            assert maps.shape == (2, 16, 7, 7)
            tokens = vit.forward_tokens(x)[:, vit.num_prefix_tokens :]
            torch.testing.assert_close(maps[:, :, 1, 2], tokens[:, 7 + 2])
    with pytest.raises(ValueError, match="Flatten has no feature_map method"):
        feature_map(torch.nn.Flatten(), x)


def test_pretrainer_and_module_descriptors(digits):
    fast = dict(encoder_kwargs={"channels": (4, 8)}, max_epochs=1, batch_size=50,
                random_state=0)
    rotation = RotationPretrainer(**fast).fit(digits)
    frozen = VisualBoW(FrozenEstimator(rotation), n_words=8, random_state=0).fit(digits)
    assert frozen.vocabulary_.shape == (8, 8) and frozen.grid_size_ == (4, 4)
    torch.testing.assert_close(frozen.descriptor_.encoder_.state_dict(),
                               rotation.encoder_.state_dict())
    assert frozen.descriptor_ is not rotation
    assert frozen.transform(digits[:5]).shape == (5, 8)

    unfitted = RotationPretrainer(**fast)
    refit = VisualBoW(unfitted, n_words=8, random_state=0).fit(digits)
    assert not hasattr(unfitted, "encoder_") and hasattr(refit.descriptor_, "encoder_")

    module = VisualBoW(SmallCNN(channels=(4, 8)), n_words=8, whiten=False,
                       random_state=0).fit(digits)
    assert module.transform(digits[:5]).shape == (5, 8)
    with pytest.raises(ValueError, match="has no feature_map method"):
        VisualBoW(torch.nn.Flatten()).fit(digits)
    with pytest.raises(ValueError, match="takes a skssl pretrainer"):
        VisualBoW(StandardScaler()).fit(digits)


def test_pooling_over_pyramid_cells():
    maps = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)  # 3 words
    codes = maps.flatten(2).transpose(1, 2)  # (B, L, K), locations row-major
    pooled = pool_regions(codes, pyramid_regions((4, 4), (1, 2)))
    assert pooled.shape == (2, 5, 3)
    torch.testing.assert_close(pooled[:, 0], maps.sum(dim=(2, 3)))
    torch.testing.assert_close(pooled[:, 4], maps[:, :, 2:, 2:].sum(dim=(2, 3)))
    maxed = pool_regions(codes, pyramid_regions((4, 4), (2,)), "max")
    torch.testing.assert_close(maxed[:, 1], maps[:, :, :2, 2:].amax(dim=(2, 3)))


def test_pipeline_and_grid_search(fashion):
    X, y = fashion[0][:300], fashion[1][:300]
    pipe = make_pipeline(VisualBoW(n_words=16, max_descriptors=5000, random_state=0),
                         StandardScaler(),
                         LogisticRegression(max_iter=300))
    search = GridSearchCV(pipe, {"visualbow__n_words": [8, 16],
                                 "visualbow__assignment": ["hard", "soft"]}, cv=2)
    search.fit(X.reshape(len(X), -1), y)
    assert set(search.best_params_) == {"visualbow__n_words", "visualbow__assignment"}
    assert search.score(X.reshape(len(X), -1), y) > 0.5  # 10 classes


def test_transform_refuses_images_on_another_scale_than_fit():
    X = np.random.RandomState(0).randint(0, 256, (20, 16, 16), dtype=np.uint8)
    bow = VisualBoW(n_words=4, patch_size=4, stride=4, random_state=0).fit(X)
    assert bow.input_scale_ == "uint8"
    np.testing.assert_array_equal(bow.transform(X.astype(np.int64)), bow.transform(X))
    with pytest.raises(ValueError, match="fitted on uint8 images"):
        bow.transform(X.astype(np.float64))
