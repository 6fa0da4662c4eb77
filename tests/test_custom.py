"""PretextPretrainer: a pretext task written as a plain function."""

import pickle

import joblib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import PretextPretrainer, RotationPretrainer
from skssl.heads import PretextNet

FAST = dict(encoder_kwargs={"channels": (8, 16)}, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.images[:300].astype(np.float32), d.target[:300]


# Module-level tasks, so that the estimators using them pickle.
def rotate(x, generator):
    inputs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    return inputs, torch.arange(4, device=x.device).repeat_interleave(len(x))


def quadrant_means(x, generator):
    """Regress the mean of each quadrant (MSE, 4 outputs)."""
    h, w = x.shape[2] // 2, x.shape[3] // 2
    quads = [x[..., :h, :w], x[..., :h, w:], x[..., h:, :w], x[..., h:, w:]]
    return x, torch.stack([q.mean(dim=(1, 2, 3)) for q in quads], dim=1)


def negated_halves(x, generator):
    """Negate each half (top, bottom) with probability 1/2; say which (BCE, 2 labels)."""
    signs = torch.rand(len(x), 2, generator=generator, device=generator.device).to(x.device)
    negated = signs < 0.5
    half = x.shape[2] // 2
    factor = torch.where(negated, -1.0, 1.0).repeat_interleave(
        torch.tensor([half, x.shape[2] - half], device=x.device), dim=1
    )
    return x * factor[:, None, :, None], negated


def soft_rotation(x, generator):
    inputs, targets = rotate(x, generator)
    return inputs, F.one_hot(targets, 4).float() * 0.9 + 0.025


def halves_order(x, generator):
    """Two tiles per sample (top and bottom halves), maybe swapped: a 5D task."""
    half = x.shape[2] // 2
    tiles = torch.stack([x[:, :, :half], x[:, :, half : 2 * half]], dim=1)
    swap = torch.rand(len(x), generator=generator, device=generator.device).to(x.device) < 0.5
    tiles = torch.where(swap[:, None, None, None, None], tiles.flip(1), tiles)
    return tiles, swap.long()


def l1_loss(outputs, targets):
    return (outputs - targets).abs().mean()


def test_rotation_task_gives_rotation_pretrainer_batches(digits):
    """The same task, batch for batch; the built-in's head reads the feature map's
    pyramid (PyramidHead), the custom one's the pooled features, so they train apart."""
    X, _ = digits
    custom = PretextPretrainer(rotate, n_outputs=4, hidden_size=256, max_epochs=2,
                               random_state=0, **FAST).fit(X)
    builtin = RotationPretrainer(max_epochs=2, random_state=0, all_rotations=True, **FAST)
    # with the same head on the pooled features, the same training, bit for bit
    builtin._build_head = lambda n_inputs: custom._build_head(n_inputs)
    builtin._build_network = lambda encoder, head: PretextNet(encoder, head)
    builtin.fit(X)
    for a, b in zip(custom.pretext_batch(X[:16], random_state=3),
                    builtin.pretext_batch(X[:16], random_state=3), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(custom.transform(X), builtin.transform(X))
    assert custom.loss_curve_ == builtin.loss_curve_
    assert custom.history_[-1]["pretext_accuracy"] == builtin.history_[-1]["pretext_accuracy"]
    assert custom.score(X) == builtin.score(X)


@pytest.mark.parametrize(
    "task, n_outputs, loss",
    [
        (rotate, 4, "cross_entropy"),
        (soft_rotation, 4, "cross_entropy"),
        (quadrant_means, 4, "mse"),
        (negated_halves, 2, "bce"),
        (quadrant_means, 4, l1_loss),
        (halves_order, 2, "cross_entropy"),
    ],
)
def test_tasks_train_and_transform(digits, task, n_outputs, loss):
    X, _ = digits
    est = PretextPretrainer(task, n_outputs, loss=loss, max_epochs=3, random_state=0, **FAST)
    features = est.fit_transform(X)
    assert features.shape == (len(X), 5 * 16) and features.dtype == np.float32  # pyramid
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    assert np.isfinite(est.score(X))
    accuracy = est.history_[-1]["pretext_accuracy"]
    assert (accuracy is not None) == (task in (rotate, halves_order))


def test_tiles_head_and_hidden_layer(digits):
    X, _ = digits
    est = PretextPretrainer(halves_order, 2, max_epochs=1, random_state=0, **FAST).fit(X)
    assert est.head_.in_features == 2 * 16
    mlp = PretextPretrainer(rotate, 4, hidden_size=32, max_epochs=1, **FAST).fit(X)
    names = [m.__class__.__name__ for m in mlp.head_]
    assert names == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert mlp.head_[0].out_features == 32 and mlp.head_[3].out_features == 4


def test_random_task_is_seeded(digits):
    X, _ = digits
    a = PretextPretrainer(negated_halves, 2, loss="bce", max_epochs=1, random_state=1, **FAST)
    b = PretextPretrainer(negated_halves, 2, loss="bce", max_epochs=1, random_state=1, **FAST)
    np.testing.assert_array_equal(a.fit_transform(X), b.fit_transform(X))


def test_pickle_with_module_level_task(digits, tmp_path):
    X, _ = digits
    est = PretextPretrainer(negated_halves, 2, loss="bce", max_epochs=1, random_state=0, **FAST)
    est.fit(X)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(X), est.transform(X))
    joblib.dump(est, tmp_path / "est.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "est.joblib").transform(X),
                                  est.transform(X))
    again.partial_fit(X)
    assert again.n_iter_ == 2


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = make_pipeline(
        PretextPretrainer(rotate, 4, max_epochs=1, random_state=0, **FAST),
        StandardScaler(),
        LogisticRegression(),
    )
    search = GridSearchCV(
        pipe, {"pretextpretrainer__hidden_size": [None, 16], "logisticregression__C": [0.1]},
        cv=2,
    ).fit(X.reshape(len(X), -1), y)
    assert search.best_params_["pretextpretrainer__hidden_size"] in (None, 16)
    assert search.score(X.reshape(len(X), -1), y) > 0.5


def _task(result):
    """A task returning ``result(x)``."""

    def task(x, generator):
        return result(x)

    return task


def _rows(x):
    return torch.zeros(len(x), dtype=torch.long)


@pytest.mark.parametrize(
    "result, loss, error, match",
    [
        (lambda x: x, "cross_entropy", TypeError, r"must return a tuple \(inputs, targets\); "
         r"it returned a torch.float32 tensor"),
        (lambda x: (x, _rows(x), 1), "cross_entropy", TypeError, "it returned a 3-tuple"),
        (lambda x: (x.numpy(), _rows(x)), "cross_entropy", TypeError,
         r"inputs must be a float tensor of shape \(N, 1, h, w\).*returned a ndarray"),
        (lambda x: (x.long(), _rows(x)), "cross_entropy", TypeError, "torch.int64 tensor"),
        (lambda x: (x[:, 0], _rows(x)), "cross_entropy", ValueError,
         r"\(N, 1, h, w\) or \(N, T, 1, h, w\).*returned shape \(\d+, 8, 8\)"),
        (lambda x: (x.expand(-1, 3, -1, -1), _rows(x)), "cross_entropy", ValueError,
         r"1 channel\(s\), as the images"),
        (lambda x: (x, _rows(x)[:-1]), "cross_entropy", ValueError,
         r"returned (\d+) inputs but targets of shape \(\d+,\): targets need one row per input"),
        (lambda x: (x, [0] * len(x)), "cross_entropy", TypeError, "targets must be a tensor"),
        (lambda x: (x, _rows(x) + 3), "cross_entropy", ValueError,
         r"class targets in \[0, n_outputs=3\); the task returned targets in \[3, 3\]"),
        (lambda x: (x, _rows(x).float()), "cross_entropy", ValueError,
         r"integer class targets of shape \(\d+,\) in \[0, 3\) or float class probabilities "
         r"of shape \(\d+, 3\); the task returned a torch.float32 tensor"),
        (lambda x: (x, -torch.ones(len(x), 3)), "cross_entropy", ValueError, "negative"),
        (lambda x: (x, torch.zeros(len(x), 2)), "mse", ValueError,
         r"compares targets with the head's \(\d+, n_outputs=3\) outputs; the task returned "
         r"targets of shape \(\d+, 2\)"),
        (lambda x: (x, torch.full((len(x), 3), np.nan)), "mse", ValueError, "NaN"),
        (lambda x: (x, torch.full((len(x), 3), 2.0)), "bce", ValueError,
         r"binary targets in \[0, 1\]; the task returned values in \[2, 2\]"),
        (lambda x: (x * np.inf, torch.zeros(len(x), 3)), "bce", ValueError, "NaN or infinity"),
        (lambda x: (x, torch.zeros(len(x), 3)), lambda o, t: (o - t).abs(), TypeError,
         r"loss callable must return a scalar tensor; it returned a torch.float32 tensor "
         r"of shape \(\d+, 3\)"),
    ],
)
def test_bad_task_outputs_raise_clear_errors(digits, result, loss, error, match):
    X, _ = digits
    est = PretextPretrainer(_task(result), 3, loss=loss, max_epochs=1, **FAST)
    with pytest.raises(error, match=match):
        est.fit(X)


class _SwitchingTask:
    """Tiles on the first call, whole images afterwards."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x, generator):
        self.calls += 1
        inputs = torch.stack([x, x], dim=1) if self.calls == 1 else x
        return inputs, torch.zeros(len(x), dtype=torch.long)


def test_layout_must_not_change(digits):
    X, _ = digits
    with pytest.raises(ValueError, match=r"the head was sized for 2 tile\(s\) per sample"):
        PretextPretrainer(_SwitchingTask(), 2, max_epochs=1, **FAST).fit(X)


class _LateBadTargets:
    """Valid targets for the probe and the first batches, out of range from the third."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x, generator):
        self.calls += 1
        return x, torch.full((len(x),), 0 if self.calls < 4 else 5)


def test_values_checked_on_every_batch(digits):
    X, _ = digits
    est = PretextPretrainer(_LateBadTargets(), 3, max_epochs=2, **FAST)
    with pytest.raises(ValueError, match=r"class targets in \[0, n_outputs=3\)"):
        est.fit(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"loss": "hinge"}, "loss"),
        ({"n_outputs": 0}, "n_outputs"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"task": "rotate"}, "task"),
    ],
)
def test_bad_parameters(digits, params, match):
    X, _ = digits
    with pytest.raises(ValueError, match=match):
        PretextPretrainer(**{"task": rotate, "n_outputs": 4, **params}, **FAST).fit(X)
