"""Behaviour of the shared training loop, through RotationPretrainer."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import skssl.training
from skssl import RotationPretrainer
from skssl.training import scheduled_learning_rate

FAST = dict(encoder_kwargs={"channels": (8, 16)}, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.images[:300].astype(np.float32), d.target[:300]


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = make_pipeline(
        RotationPretrainer(random_state=0, **FAST), StandardScaler(), LogisticRegression()
    )
    search = GridSearchCV(
        pipe,
        {"rotationpretrainer__max_epochs": [1, 2], "logisticregression__C": [0.1, 1.0]},
        cv=2,
    )
    search.fit(X.reshape(len(X), -1), y)
    assert set(search.best_params_) == {"rotationpretrainer__max_epochs", "logisticregression__C"}
    assert search.score(X.reshape(len(X), -1), y) > 0.5


def test_grid_search_on_pretext_score(digits):
    X, _ = digits
    search = GridSearchCV(
        RotationPretrainer(random_state=0, max_epochs=1, **FAST),
        {"learning_rate": [1e-3, 1e-2]},
        cv=2,
    ).fit(X)
    assert np.all(search.cv_results_["mean_test_score"] < 0)


def test_clone_is_unfitted(digits):
    X, _ = digits
    est = RotationPretrainer(max_epochs=1, random_state=0, **FAST).fit(X)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(X)


def test_joblib_and_pickle_round_trip(digits, tmp_path):
    X, _ = digits
    est = RotationPretrainer(max_epochs=1, random_state=0, **FAST).fit(X)
    joblib.dump(est, tmp_path / "est.joblib")
    loaded = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(X), est.transform(X))
    # a loaded model keeps training where it stopped
    again.partial_fit(X)
    assert again.n_iter_ == 2


def test_same_random_state_same_features(digits):
    X, _ = digits
    a = RotationPretrainer(max_epochs=1, random_state=3, **FAST).fit_transform(X)
    b = RotationPretrainer(max_epochs=1, random_state=3, **FAST).fit_transform(X)
    c = RotationPretrainer(max_epochs=1, random_state=4, **FAST).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_partial_fit_and_warm_start_continue_training(digits):
    X, _ = digits
    est = RotationPretrainer(random_state=0, **FAST)
    for _ in range(3):
        est.partial_fit(X)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    assert est.loss_curve_[-1] < est.loss_curve_[0]

    warm = RotationPretrainer(max_epochs=1, warm_start=True, random_state=0, **FAST)
    warm.fit(X)
    encoder = warm.encoder_
    warm.fit(X)
    warm.fit(X)
    assert warm.encoder_ is encoder and warm.n_iter_ == 3
    # same data order and randomness as three partial_fit calls
    np.testing.assert_allclose(warm.loss_curve_, est.loss_curve_, rtol=1e-5)

    cold = RotationPretrainer(max_epochs=1, random_state=0, **FAST).fit(X)
    cold.fit(X)
    assert cold.n_iter_ == 1


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_lr_schedule(digits, monkeypatch, schedule):
    X, _ = digits
    seen = []
    make_optimizer = skssl.training.make_optimizer

    def recording(*args):
        optimizer = make_optimizer(*args)
        optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"])
        )
        return optimizer

    monkeypatch.setattr(skssl.training, "make_optimizer", recording)
    est = RotationPretrainer(max_epochs=2, learning_rate=0.01, lr_schedule=schedule,
                             random_state=0, **FAST).fit(X)
    steps = 2 * 5  # 300 images in batches of at most 64
    if schedule == "constant":
        expected = [0.01] * steps
    else:
        expected = [0.005 * (1 + np.cos(np.pi * t / steps)) for t in range(steps)]
    np.testing.assert_allclose(seen, expected)
    # each call plans its own schedule, and a restored optimizer takes learning_rate
    seen.clear()
    est.set_params(learning_rate=0.002).partial_fit(X)
    assert seen[0] == pytest.approx(0.002) and len(seen) == 5
    assert (seen[-1] < 0.002) == (schedule == "cosine")


def test_cosine_schedule_follows_max_time():
    # With a time budget that ends before the planned epochs, the cosine decays over
    # the budget: the learning rate follows the elapsed fraction of max_time.
    def lr(step, seconds, max_time=10.0):
        return scheduled_learning_rate("cosine", 0.01, step, 100, seconds, max_time)

    assert lr(0, 0.0) == pytest.approx(0.01)
    assert lr(1, 5.0) == pytest.approx(0.005)
    assert lr(99, 1.0) == pytest.approx(0.005 * (1 + np.cos(np.pi * 0.99)))
    assert lr(2, 12.0) == pytest.approx(0.0)
    assert lr(50, 1e6, max_time=None) == pytest.approx(0.005)


class ViewFlatten(nn.Module):
    """A user encoder that flattens its activations with .view."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        h = self.conv(x)
        return h.view(h.shape[0], -1)


def test_channels_last(digits):
    X, _ = digits
    fast = RotationPretrainer(max_epochs=2, random_state=0, **FAST).fit(X)
    slow = RotationPretrainer(max_epochs=2, random_state=0, channels_last=False, **FAST).fit(X)
    conv = next(p for p in fast.encoder_.parameters() if p.ndim == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    # Same training up to float rounding, whatever the memory layout.
    np.testing.assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-3)
    np.testing.assert_allclose(fast.transform(X), slow.transform(X), rtol=1e-2, atol=1e-3)
    # An encoder that calls .view on activations: a clear error, and the fix works.
    with pytest.raises(ValueError, match="channels_last=False"):
        RotationPretrainer(encoder=ViewFlatten(), max_epochs=1, device="cpu").fit(X)
    est = RotationPretrainer(encoder=ViewFlatten(), max_epochs=1, channels_last=False,
                             device="cpu").fit(X)
    assert est.transform(X).shape == (len(X), 4 * 8 * 8)


def test_max_time_stops_early(digits):
    X, _ = digits
    est = RotationPretrainer(max_epochs=1000, max_time=0.5, batch_size=16,
                             encoder_kwargs={"channels": (8, 16)}, device="cpu").fit(X)
    assert 1 <= est.n_iter_ < 1000
    assert sum(h["seconds"] for h in est.history_) < 5


def test_history_and_verbose(digits, capsys):
    X, _ = digits
    est = RotationPretrainer(max_epochs=2, verbose=1, random_state=0, **FAST).fit(X)
    assert "RotationPretrainer epoch 2" in capsys.readouterr().err
    h = est.history_[-1]
    assert set(h) == {"epoch", "loss", "seconds", "images", "images_per_s", "inputs_per_s",
                      "pretext_accuracy"}
    assert h["images"] == len(X)
    assert h["inputs_per_s"] == pytest.approx(h["images_per_s"])  # one turn per image
    assert 0 <= h["pretext_accuracy"] <= 1
    assert est.score(X) == pytest.approx(est.score(X))


def test_input_not_modified_and_layouts_agree(digits):
    X, _ = digits
    X_copy = X.copy()
    est = RotationPretrainer(max_epochs=1, random_state=0, **FAST)
    flat = est.fit_transform(X.reshape(len(X), -1))
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_allclose(est.transform(X), flat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.transform(X[..., None]), flat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.transform(torch.from_numpy(X)), flat, rtol=1e-5, atol=1e-6)


def test_user_module_is_copied_not_trained():
    X = np.random.RandomState(0).rand(40, 8, 8).astype(np.float32)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    est = RotationPretrainer(encoder=net, max_epochs=1, device="cpu", random_state=0).fit(X)
    assert est.encoder_ is not net and est.encoder_.num_features == 4
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert est.transform(X).shape == (40, 4)


def test_encoder_factory_and_kwargs():
    X = np.random.RandomState(0).rand(20, 8, 8, 3).astype(np.float32)

    def factory(in_channels, width=5):
        return nn.Sequential(nn.Conv2d(in_channels, width, 3), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten())

    est = RotationPretrainer(encoder=factory, encoder_kwargs={"width": 6}, max_epochs=1,
                             device="cpu").fit(X)
    assert est.transform(X).shape == (20, 6)
    assert list(est.get_feature_names_out()) == [f"rotationpretrainer{i}" for i in range(6)]


def test_set_output_pandas(digits):
    pd = pytest.importorskip("pandas")
    X, _ = digits
    est = RotationPretrainer(max_epochs=1, random_state=0, **FAST).set_output(transform="pandas")
    out = est.fit_transform(X.reshape(len(X), -1))
    assert isinstance(out, pd.DataFrame) and out.shape == (len(X), 5 * 16)


def test_memmap_transform_matches_array(digits, tmp_path):
    X, _ = digits
    est = RotationPretrainer(max_epochs=1, random_state=0, **FAST).fit(X)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    np.testing.assert_array_equal(est.transform(mm), est.transform(X))


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"encoder": "nope"}, ValueError, "Unknown encoder 'nope'. Available encoders: .*cnn"),
        ({"encoder_kwargs": {"depth": 3}}, TypeError, "Bad encoder_kwargs"),
        ({"max_epochs": 0}, ValueError, "max_epochs"),
        ({"batch_size": -1}, ValueError, "batch_size"),
        ({"device": "tpu"}, ValueError, "Unknown device 'tpu'"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"encoder": nn.Conv2d(1, 4, 3)}, ValueError, r"\(B, n_features\)"),
        ({"encoder": nn.Sequential(nn.Conv2d(1, 4, 5), nn.Flatten())}, ValueError,
         "too small"),
    ],
)
def test_bad_parameters(params, error, match):
    X = np.random.RandomState(0).rand(10, 4, 4)
    with pytest.raises(error, match=match):
        RotationPretrainer(**{"max_epochs": 1, "device": "cpu", **params}).fit(X)


def test_cuda_unavailable_message():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        RotationPretrainer(device="cuda").fit(np.zeros((4, 4, 4)))


def test_bad_input_at_fit_and_transform(digits):
    X, _ = digits
    est = RotationPretrainer(max_epochs=1, random_state=0, **FAST)
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.fit(np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X))
    with pytest.raises(ValueError, match="at least 2 images"):
        est.fit(X[:1])
    est.fit(X)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        est.transform(np.zeros((3, 9, 9)))
    with pytest.raises(ValueError, match="X has 81 features, but RotationPretrainer is expecting"):
        est.transform(np.zeros((3, 81)))
    with pytest.raises(TypeError, match="numeric"):
        est.transform(np.full((3, 8, 8), "x"))


@pytest.mark.parametrize(
    ("cls", "change"),
    [
        (skssl.IntruderPretrainer, {"grid": 2}),
        (skssl.IntruderPretrainer, {"turn_images": False}),
        (skssl.JigsawPretrainer, {"n_permutations": 10}),
        (skssl.RotationPretrainer, {"encoder_kwargs": {"channels": (8,)}}),
    ],
)
def test_a_warm_fit_refuses_a_change_of_what_the_network_was_built_from(cls, change):
    X = np.kron(load_digits().images[:64], np.ones((2, 2)))
    est = cls(encoder_kwargs={"channels": (4,)}, max_epochs=1, batch_size=32, device="cpu",
              random_state=0).fit(X)
    weights = [p.detach().clone() for p in est.encoder_.parameters()]
    n_iter = est.n_iter_
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"{name} changed from .* warm_start=False"):
        est.set_params(**change).partial_fit(X)
    with pytest.raises(ValueError, match=f"{name} changed from"):
        est.set_params(warm_start=True).fit(X)
    # Nothing changed, and a new fit builds the new network.
    assert est.n_iter_ == n_iter
    assert all(torch.equal(a, b) for a, b in zip(weights, est.encoder_.parameters(), strict=True))
    est.set_params(warm_start=False).fit(X)
    est.partial_fit(X)  # built with the new value: a warm fit goes on
