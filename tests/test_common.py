"""scikit-learn's common estimator checks on every public pretrainer."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skssl import (
    BoWPretrainer,
    ContextPretrainer,
    IntruderPretrainer,
    JigsawPretrainer,
    MAEPretrainer,
    PretextPretrainer,
    RotationPretrainer,
    SimCLRPretrainer,
    VisualBoW,
)
from skssl.datasets import load_fashion_mnist


def mirror_task(x, generator):
    """Was the image mirrored left-right? Any image size, even 1 x d."""
    inputs = torch.cat([x, x.flip(-1)])
    return inputs, torch.arange(2, device=x.device).repeat_interleave(len(x))


# Tiny, fast settings: the checks use small 2D float arrays with few columns, read
# here as 1-pixel-high images of any width (image_shape=(1, -1)).
FAST = dict(
    encoder_kwargs={"channels": (4,)},
    image_shape=(1, -1),
    max_epochs=2,
    batch_size=16,
    device="cpu",
    random_state=0,
)


class _Magnify:
    """Test adapter: the estimator reads every pixel as a 16x16 block.

    The checks make their own data, at most 10 columns, i.e. images of 1 x d <= 10
    pixels; no image_shape makes them as large as a jigsaw puzzle (12x12 pixels) or
    a context layout (15x15), and the methods rightly refuse them (tested in
    test_jigsaw.py and test_context.py); a 1-pixel image is a single patch, which MAE
    cannot both hide and show (tested in test_mae.py). Magnified 16 times, through
    the ``_prepare`` hook that the base class applies at fit, transform and score,
    they are large enough, and the checks run the methods' own code on them.
    """

    def _prepare(self, x):
        return super()._prepare(x.repeat_interleave(16, dim=-2).repeat_interleave(16, dim=-1))

    def _check_image_shape(self, image_shape):
        height, width, channels = image_shape
        super()._check_image_shape((16 * height, 16 * width, channels))


class MagnifiedJigsawPretrainer(_Magnify, JigsawPretrainer):
    pass


class MagnifiedContextPretrainer(_Magnify, ContextPretrainer):
    pass


class MagnifiedMAEPretrainer(_Magnify, MAEPretrainer):
    pass


TINY_VIT = {"patch_size": 8, "embed_dim": 8, "depth": 1, "num_heads": 2}


ESTIMATORS = [
    RotationPretrainer(**FAST),
    SimCLRPretrainer(**FAST),
    MagnifiedJigsawPretrainer(n_permutations=10, **FAST),
    MagnifiedContextPretrainer(**FAST),
    PretextPretrainer(mirror_task, n_outputs=2, **FAST),
    IntruderPretrainer(**FAST),
    # magnified 1 x d images: 2 x 2d patches of 8x8 pixels
    MagnifiedMAEPretrainer(**{**FAST, "encoder_kwargs": TINY_VIT}, decoder_dim=8,
                           decoder_depth=1, decoder_heads=2),
    # the default teacher, a RotationPretrainer, is trained first on the same data
    BoWPretrainer(**FAST, n_words=3),
    # 1 x d images: their 1x2 patches, normalised, are (-1, 1), (1, -1) or (0, 0)
    VisualBoW(n_words=3, patch_size=(1, 2), image_shape=(1, -1), random_state=0),
]

EXPECTED_FAILED_CHECKS = {}


# The checks' data is not on an image scale; SimCLR's and BoW's warnings about it are
# expected.
@pytest.mark.filterwarnings("ignore:SimCLRPretrainer augments images:UserWarning")
@pytest.mark.filterwarnings("ignore:BoWPretrainer augments images:UserWarning")
@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


PATCH_METHODS = [
    JigsawPretrainer(n_permutations=10, encoder_kwargs={"channels": (4, 8)}, max_epochs=2,
                     batch_size=8, device="cpu", random_state=0),
    ContextPretrainer(encoder_kwargs={"channels": (4, 8)}, max_epochs=2, batch_size=8,
                      device="cpu", random_state=0),
]


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist(subset="test", return_X_y=True)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("estimator", PATCH_METHODS, ids=lambda est: type(est).__name__)
def test_patch_methods_take_resnet18(estimator):
    # trained on 3x3 or 4x4 patches, applied to 16x16 images
    est = clone(estimator).set_params(encoder="resnet18", encoder_kwargs=None, max_epochs=1)
    X = np.random.RandomState(0).rand(4, 16, 16, 3).astype(np.float32)
    assert est.fit_transform(X).shape == (4, 5 * 512)  # the pyramid readout


@pytest.mark.parametrize(
    "estimator, grid",
    [
        (PATCH_METHODS[0], {"jigsawpretrainer__n_permutations": [5, 10]}),
        (PATCH_METHODS[1], {"contextpretrainer__patch_size": [5, 7]}),
    ],
    ids=["JigsawPretrainer", "ContextPretrainer"],
)
def test_pipeline_and_grid_search(estimator, grid, fashion):
    X, y = fashion[0][:200], fashion[1][:200]
    pipe = make_pipeline(
        clone(estimator).set_params(max_epochs=1, batch_size=50), StandardScaler(),
        LogisticRegression(max_iter=200),
    )
    search = GridSearchCV(pipe, {**grid, "logisticregression__C": [0.1, 1.0]}, cv=2)
    search.fit(X.reshape(len(X), -1), y)
    assert set(search.best_params_) == {*grid, "logisticregression__C"}
    assert search.score(X.reshape(len(X), -1), y) > 0.3  # 10 classes
