"""BoWPretrainer: a student predicts, from a perturbed copy, a teacher's bag of words."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import BoWPretrainer, RotationPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.encoders import SmallCNN
from skssl.heads import CosineClassifier

FAST = dict(encoder_kwargs={"channels": (8, 16)}, batch_size=50, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def digits():
    return (load_digits().images[:200] / 16).astype(np.float32)


@pytest.fixture(scope="module")
def fashion():
    try:
        X, y = load_fashion_mnist(subset="test", return_X_y=True)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return X[:400], y[:400]


@pytest.fixture(scope="module")
def rotation(fashion):
    return RotationPretrainer(max_epochs=1, **FAST).fit(fashion[0])


def test_loss_falls_on_fashion_mnist(fashion):
    X, _ = fashion
    # three stages: 7x7 teacher maps, whose bags of words are peaked enough to learn
    fast = {**FAST, "encoder_kwargs": {"channels": (8, 16, 16)}}
    rotation = RotationPretrainer(max_epochs=2, **fast).fit(X)
    bow = BoWPretrainer(teacher=FrozenEstimator(rotation), n_words=64, max_epochs=4,
                        **fast).fit(X)
    assert bow.loss_curve_[-1] < bow.loss_curve_[0] - 0.1
    first, last = bow.history_[0], bow.history_[-1]
    assert last["pretext_accuracy"] > first["pretext_accuracy"]
    assert isinstance(bow.head_, CosineClassifier)
    assert bow.vocabulary_.shape == (64, 16)
    assert bow.transform(X[:10]).shape == (10, 16)
    assert bow.score(X) < 0


@pytest.mark.parametrize("targets", ["soft", "hard"])
def test_targets_are_distributions_over_the_words(digits, targets):
    bow = BoWPretrainer(n_words=16, targets=targets, max_epochs=1, **FAST).fit(digits)
    inputs, bags = bow.pretext_batch(digits[:20])
    assert inputs.shape == (20, 1, 8, 8) and bags.shape == (20, 16)
    assert (bags >= 0).all()
    torch.testing.assert_close(bags.sum(dim=1), torch.ones(20))
    if targets == "hard":  # counts of the 4x4 = 16 locations of the teacher's map
        torch.testing.assert_close(bags * 16, (bags * 16).round())
    # targets come from the clean images: the same whatever the perturbation
    torch.testing.assert_close(bow.pretext_batch(digits[:20], random_state=1)[1], bags)
    assert not torch.equal(bow.pretext_batch(digits[:20], random_state=1)[0], inputs)


def test_default_teacher_is_a_seeded_rotation_pretrainer(digits):
    bow = BoWPretrainer(n_words=16, max_epochs=1, **FAST).fit(digits)
    teacher = bow.teacher_
    assert isinstance(teacher, RotationPretrainer) and teacher.n_iter_ == 1
    assert teacher.encoder_.num_features == 16  # the student's encoder_kwargs
    again = BoWPretrainer(n_words=16, max_epochs=1, **FAST).fit(digits)
    np.testing.assert_array_equal(bow.transform(digits), again.transform(digits))
    np.testing.assert_array_equal(bow.vocabulary_, again.vocabulary_)
    other = clone(again).set_params(random_state=1).fit(digits)
    assert not np.allclose(other.vocabulary_, bow.vocabulary_)


def test_frozen_teacher_is_copied_and_unfitted_teacher_fitted(digits):
    rotation = RotationPretrainer(max_epochs=1, **FAST).fit(digits)
    frozen = BoWPretrainer(teacher=FrozenEstimator(rotation), n_words=16, max_epochs=1,
                           **FAST)
    bow = clone(frozen).fit(digits)  # clone keeps a frozen teacher fitted
    assert bow.teacher_ is not rotation and bow.teacher_.n_iter_ == 1
    torch.testing.assert_close(bow.teacher_.encoder_.state_dict(),
                               rotation.encoder_.state_dict())

    unfitted = RotationPretrainer(max_epochs=1, **FAST)
    bow = BoWPretrainer(teacher=unfitted, n_words=16, max_epochs=1, **FAST).fit(digits)
    assert not hasattr(unfitted, "encoder_") and bow.teacher_.n_iter_ == 1


def test_iterated_and_module_teachers(digits):
    first = BoWPretrainer(n_words=16, max_epochs=1, **FAST).fit(digits)
    second = BoWPretrainer(teacher=FrozenEstimator(first), n_words=16, max_epochs=1,
                           **FAST).fit(digits)
    assert isinstance(second.teacher_, BoWPretrainer)
    np.testing.assert_array_equal(second.teacher_.transform(digits), first.transform(digits))

    module = BoWPretrainer(teacher=SmallCNN(channels=(4, 8)), n_words=8, max_epochs=1,
                           **FAST).fit(digits)
    assert module.vocabulary_.shape == (8, 8)
    with pytest.raises(ValueError, match="has no feature_map method"):
        BoWPretrainer(teacher=torch.nn.Flatten(), max_epochs=1, **FAST).fit(digits)


def test_teacher_of_other_images_is_refused(digits):
    rotation = RotationPretrainer(max_epochs=1, **FAST).fit(np.zeros((4, 10, 10)))
    with pytest.raises(ValueError, match=r"teacher was fitted on images of shape \(10, 10, 1\)"):
        BoWPretrainer(teacher=FrozenEstimator(rotation), max_epochs=1, **FAST).fit(digits)
    with pytest.raises(ValueError, match="gray .* or RGB"):
        BoWPretrainer(max_epochs=1, **FAST).fit(np.zeros((4, 8, 8, 2)))


def test_grid_search_with_a_frozen_teacher(fashion, rotation):
    X, y = fashion[0][:200], fashion[1][:200]
    pipe = make_pipeline(
        BoWPretrainer(teacher=FrozenEstimator(rotation), max_epochs=1, **FAST),
        StandardScaler(), LogisticRegression(max_iter=200),
    )
    grid = {"bowpretrainer__n_words": [16, 32], "logisticregression__C": [0.1, 1.0]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X.reshape(len(X), -1), y)
    assert set(search.best_params_) == set(grid)
    assert search.score(X.reshape(len(X), -1), y) > 0.3  # 10 classes
    # the teacher was used, not refitted
    assert search.best_estimator_[0].teacher_.n_iter_ == rotation.n_iter_
