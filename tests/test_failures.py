"""What a demanding user gets wrong, and what skssl answers: a catalogue of failures.

Every case raises a ValueError, TypeError or NotFittedError (a FloatingPointError for
a non-finite loss) from skssl's own checks (or scikit-learn's parameter validation),
never from deep inside torch or numpy, with a message that names the parameter or the
input and says what to do. Cases that are accepted on purpose are tested at the end.
Then: a fit that raises leaves the estimator as it was, and Ctrl-C is visible.
"""

import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted
from torch import nn

import skssl
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
from skssl.encoders import make_encoder

TINY = dict(encoder_kwargs={"channels": (4,)}, max_epochs=1, batch_size=16, device="cpu",
            random_state=0)
VIT = {"patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2}
# Errors raised here are skssl's own, or scikit-learn's parameter validation.
OURS = ("/skssl/", "sklearn/utils/_param_validation.py", "sklearn/utils/validation.py")


def rotate(x, generator):
    inputs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    return inputs, torch.arange(4, device=x.device).repeat_interleave(len(x))


ESTIMATORS = {
    "rotation": lambda **p: RotationPretrainer(**{**TINY, **p}),
    "jigsaw": lambda **p: JigsawPretrainer(n_permutations=5, **{**TINY, **p}),
    "context": lambda **p: ContextPretrainer(**{**TINY, **p}),
    "simclr": lambda **p: SimCLRPretrainer(**{**TINY, **p}),
    "intruder": lambda **p: IntruderPretrainer(**{**TINY, **p}),
    "bow": lambda **p: BoWPretrainer(n_words=4, crop_scale=0.5, **{**TINY, **p}),
    "mae": lambda **p: MAEPretrainer(decoder_dim=8, decoder_depth=1, decoder_heads=2,
                                     **{**TINY, "encoder_kwargs": VIT, **p}),
    "custom": lambda **p: PretextPretrainer(**{"task": rotate, "n_outputs": 4, **TINY, **p}),
}


def _images(n=32, size=16):
    """Digits magnified to ``size`` pixels, uint8: large enough for every method."""
    X = np.kron(load_digits().images[:n], np.ones((2, 2)))[:, :size, :size]
    return np.round(X * 255 / 16).astype(np.uint8)


X = _images()
FLOATS = X.astype(np.float64)


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = ESTIMATORS[name]().fit(X)
        return cache[name]

    return get


def _assert_raises_clearly(action, error, match):
    with pytest.raises(error, match=match) as info:
        action()
    where = str(info.traceback[-1].path)
    assert any(part in where for part in OURS), f"raised from {where}: {info.value!r}"
    return info


# ---------------------------------------------------------------- every pretrainer
PARAMETER_CASES = {
    "max_epochs=True": ({"max_epochs": True}, ValueError,
                        "'max_epochs' parameter .* a bool is not accepted"),
    "batch_size=0": ({"batch_size": 0}, ValueError,
                     r"'batch_size' parameter .* in the range \[1, inf\)"),
    "learning_rate=-1": ({"learning_rate": -1.0}, ValueError, "'learning_rate' parameter"),
    "device='tpu'": ({"device": "tpu"}, ValueError, "Unknown device 'tpu'; use 'auto', 'cpu'"),
    "encoder_kwargs channels=16": (
        {"encoder_kwargs": {"channels": 16}}, TypeError,
        "encoder_kwargs.*(check their values|Its factory accepts)"),
    "checkpoint_every alone": ({"checkpoint_every": 10.0}, ValueError,
                               "checkpoint_every=10.0 needs a checkpoint file: set checkpoint"),
}

FIT_INPUT_CASES = {
    "NaN": (np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, FLOATS), ValueError,
            "NaN or infinity; remove or impute them"),
    "1e39 in float64": (FLOATS * 1e37, ValueError,
                        r"beyond the range of float32 .* Rescale X"),
    "ragged list": ([np.zeros((16, 16))] * 3 + [np.zeros((15, 16))], ValueError,
                    "all images must have the same shape"),
    "one image": (X[:1], ValueError, "needs at least 2 images"),
}

FITTED_CASES = {
    "floats 0-255 after uint8": (lambda est: est.transform(FLOATS), ValueError,
                                 r"fitted on uint8 images .* or scale X to \[0, 1\] \(X / 255\)"),
    "int64 0-1020 after uint8": (lambda est: est.transform(X.astype(np.int64) * 4), ValueError,
                                 r"X is int64 with values in \[0, 1.02e\+03\]\. Pass uint8"),
    "other image shape": (lambda est: est.score(_images(size=12)), ValueError,
                          r"fitted on images of shape \(16, 16, 1\)"),
    "1e39 at transform": (lambda est: est.transform(np.full((2, 16, 16), 1e39)), ValueError,
                          "beyond the range of float32"),
}


@pytest.mark.parametrize("case", list(PARAMETER_CASES))
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_bad_parameter(name, case):
    params, error, match = PARAMETER_CASES[case]
    _assert_raises_clearly(lambda: ESTIMATORS[name](**params).fit(X), error, match)


@pytest.mark.parametrize("case", list(FIT_INPUT_CASES))
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_bad_input_at_fit(name, case):
    data, error, match = FIT_INPUT_CASES[case]
    _assert_raises_clearly(lambda: ESTIMATORS[name]().fit(data), error, match)


@pytest.mark.parametrize("case", list(FITTED_CASES))
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_bad_input_after_fit(name, case, fitted):
    action, error, match = FITTED_CASES[case]
    _assert_raises_clearly(lambda: action(fitted(name)), error, match)


@pytest.mark.parametrize("method", ["transform", "score", "save"])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_not_fitted(name, method):
    est = ESTIMATORS[name]()
    action = {
        "transform": lambda: est.transform(X),
        "score": lambda: est.score(X),
        "save": lambda: skssl.save(est, "never-written.safetensors"),
    }[method]
    _assert_raises_clearly(action, NotFittedError, "is not fitted yet")
    assert not Path("never-written.safetensors").exists()


# ---------------------------------------------------------------- method by method
def _task_at(n, change):
    """Rotations whose output ``change`` alters at the task's ``n``-th call (the 1st is
    the probe that sizes the head)."""
    calls = []

    def task(x, generator):
        calls.append(1)
        inputs, targets = rotate(x, generator)
        return change(inputs, targets) if len(calls) == n else (inputs, targets)

    return task


def _loss_at(n, value):
    calls = []

    def loss(outputs, targets):
        calls.append(1)
        out = F.cross_entropy(outputs, targets)
        return value(out) if len(calls) == n else out

    return loss


class NotAModule:
    pass


def _failing_factory(in_channels, width=4):
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    return nn.Sequential(nn.Conv2d(in_channels, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _save_load_pickle(tmp):
    import pickle

    path = Path(tmp) / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": 1}))
    return skssl.load(path)


def _load_without_task(tmp):
    path = Path(tmp) / "custom.safetensors"
    skssl.save(ESTIMATORS["custom"]().fit(X), path)
    return skssl.load(path)


SPECIFIC_CASES = {
    # parameters
    "unknown encoder": (lambda: RotationPretrainer(**TINY, encoder="nope").fit(X), ValueError,
                        "Unknown encoder 'nope'. Available encoders: .*cnn"),
    "unknown encoder_kwargs": (
        lambda: RotationPretrainer(**{**TINY, "encoder_kwargs": {"depth": 3}}).fit(X),
        TypeError, r"Bad encoder_kwargs \['depth'\] for encoder 'cnn'.*accepts"),
    "factory rejects encoder_kwargs": (
        lambda: RotationPretrainer(**{**TINY, "encoder_kwargs": {"width": 0}},
                                   encoder=_failing_factory).fit(X),
        ValueError, r"encoder factory could not be built with encoder_kwargs=\{'width': 0\}"),
    "factory returns no module": (
        lambda: RotationPretrainer(**{**TINY, "encoder_kwargs": None},
                                   encoder=lambda in_channels: NotAModule()).fit(X),
        TypeError, "must return a torch.nn.Module"),
    "encoder without pooling": (
        lambda: RotationPretrainer(**{**TINY, "encoder_kwargs": None},
                                   encoder=nn.Conv2d(1, 4, 3)).fit(X),
        ValueError, r"map \(B, C, H, W\) images to \(B, n_features\).*Add global pooling"),
    "module with encoder_kwargs": (
        lambda: RotationPretrainer(**TINY, encoder=nn.Conv2d(1, 4, 3)).fit(X), ValueError,
        "encoder_kwargs only applies to a named encoder or a factory"),
    "optimizer='lbfgs'": (lambda: RotationPretrainer(**TINY, optimizer="lbfgs").fit(X),
                          ValueError, "'optimizer' parameter .* among .*'adamw'"),
    "lr_schedule='step'": (lambda: RotationPretrainer(**TINY, lr_schedule="step").fit(X),
                           ValueError, "'lr_schedule' parameter .* among .*'cosine'"),
    "checkpoint in no folder": (
        lambda: RotationPretrainer(**TINY, checkpoint="no/such/folder/fit.safetensors").fit(X),
        ValueError, "checkpoint='no/such/folder/fit.safetensors' is in .* not an existing folder"),
    "checkpoint=3": (lambda: RotationPretrainer(**TINY, checkpoint=3).fit(X), ValueError,
                     "'checkpoint' parameter .* 'str'"),
    "random_state='seed'": (
        lambda: RotationPretrainer(**{**TINY, "random_state": "seed"}).fit(X), ValueError,
        "'random_state' parameter"),
    "warm_start='yes'": (lambda: RotationPretrainer(**TINY, warm_start="yes").fit(X),
                         ValueError, "'warm_start' parameter"),
    "image_shape does not fit": (
        lambda: RotationPretrainer(**TINY, image_shape=(5, 5)).fit(X.reshape(32, -1)),
        ValueError, r"image_shape=\(5, 5\) does not fit rows of 256 values"),
    "jigsaw grid=4": (lambda: ESTIMATORS["jigsaw"](grid=4).fit(X), ValueError,
                      "'grid' parameter"),
    "jigsaw too many permutations": (
        lambda: JigsawPretrainer(**TINY, grid=2, n_permutations=30).fit(X), ValueError,
        r"n_permutations=30 exceeds the 24 orders of 4 tiles \(grid=2\)"),
    "jigsaw images too small": (lambda: ESTIMATORS["jigsaw"]().fit(_images(size=7)),
                                ValueError, "JigsawPretrainer: .*7"),
    "context images too small": (lambda: ESTIMATORS["context"]().fit(_images(size=8)),
                                 ValueError, "ContextPretrainer.*8x8"),
    "simclr crop_scale reversed": (
        lambda: ESTIMATORS["simclr"](crop_scale=(0.5, 0.2)).fit(X), ValueError,
        r"crop_scale must be a float in \(0, 1\] or a pair"),
    "simclr temperature=0": (lambda: ESTIMATORS["simclr"](temperature=0).fit(X), ValueError,
                             "'temperature' parameter"),
    "simclr 2 channels": (lambda: ESTIMATORS["simclr"]().fit(np.stack([X, X], axis=-1)),
                          ValueError, r"gray \(1 channel\) or RGB \(3 channels\)"),
    "mae with a cnn": (lambda: ESTIMATORS["mae"](encoder="cnn", encoder_kwargs=None).fit(X),
                       ValueError, "needs patch tokens .* use encoder='vit_tiny'"),
    "mae mask_ratio=1": (lambda: ESTIMATORS["mae"](mask_ratio=1.0).fit(X), ValueError,
                         "'mask_ratio' parameter"),
    "custom n_outputs=True": (lambda: PretextPretrainer(rotate, True, **TINY).fit(X),
                              ValueError, "'n_outputs' parameter .* a bool is not accepted"),
    "custom task not callable": (lambda: PretextPretrainer("rotate", 4, **TINY).fit(X),
                                 ValueError, "'task' parameter .* callable"),
    "custom loss='hinge'": (lambda: ESTIMATORS["custom"](loss="hinge").fit(X), ValueError,
                            "'loss' parameter"),
    # faults at a later step
    "task labels out of range at step 2": (
        lambda: ESTIMATORS["custom"](task=_task_at(3, lambda i, t: (i, t + 4))).fit(X),
        ValueError, r"class targets in \[0, n_outputs=4\); the task returned targets in \[4, 7\]"),
    "task NaN inputs at step 2": (
        lambda: ESTIMATORS["custom"](task=_task_at(3, lambda i, t: (i * np.nan, t))).fit(X),
        ValueError, "The task returned inputs with NaN or infinity"),
    "task returns one tensor": (
        lambda: ESTIMATORS["custom"](task=_task_at(2, lambda i, t: i)).fit(X), TypeError,
        r"must return a tuple \(inputs, targets\); it returned a torch.float32 tensor"),
    "task negative probabilities": (
        lambda: ESTIMATORS["custom"](
            task=_task_at(2, lambda i, t: (i, -F.one_hot(t, 4).float()))).fit(X),
        ValueError, "class probabilities .*negative"),
    "loss callable not scalar": (
        lambda: ESTIMATORS["custom"](loss=lambda o, t: o).fit(X), TypeError,
        "loss callable must return a scalar tensor"),
    "non-finite loss": (
        lambda: ESTIMATORS["custom"](loss=_loss_at(2, lambda v: v * np.inf)).fit(X),
        FloatingPointError,
        r"loss became (inf|nan) at epoch 1, step 2/2.*learning rate.*scale.*a task or loss"),
    # inputs
    "object array with a dict": (
        lambda: RotationPretrainer(**TINY).fit(
            np.array([{"a": 1}] + [0.0] * 255, dtype=object).reshape(1, 256).repeat(2, 0)),
        TypeError, "X has dtype object with entries that are not numbers.*same shape"),
    "object array of ragged images": (
        lambda: RotationPretrainer(**TINY).fit(
            np.array([np.zeros((4, 4)), np.zeros((5, 5))], dtype=object)),
        ValueError, "X has dtype object.*all images must have the same shape"),
    "strings": (lambda: RotationPretrainer(**TINY).fit(np.full((2, 16, 16), "x")), TypeError,
                r"must be numeric .* X\.astype\(np\.float32\)"),
    "complex": (lambda: RotationPretrainer(**TINY).fit(FLOATS.astype(complex)), ValueError,
                "Complex data not supported; pass real-valued images"),
    "sparse": (lambda: RotationPretrainer(**TINY).fit(sp.csr_matrix(X.reshape(32, -1))),
               TypeError, r"dense images\. Use X\.toarray\(\)"),
    "1D": (lambda: RotationPretrainer(**TINY).fit(X.ravel()), ValueError,
           "got a 1D array .* Reshape your data"),
    "5D": (lambda: RotationPretrainer(**TINY).fit(X[:, None, :, :, None]), ValueError,
           "got a 5D array .* Reshape your data"),
    "no images": (lambda: RotationPretrainer(**TINY).fit(X[:0]), ValueError,
                  "0 sample"),
    "channels first": (lambda: RotationPretrainer(**TINY).fit(np.stack([X] * 3, axis=1)),
                       ValueError, r"looks channels-first .* X\.transpose\(0, 2, 3, 1\)"),
    "infinity": (lambda: RotationPretrainer(**TINY).fit(np.where(X > 200, np.inf, FLOATS)),
                 ValueError, "NaN or infinity"),
    # misuse after fit
    "flat rows of another size": (
        lambda: ESTIMATORS["rotation"]().fit(X).transform(np.zeros((2, 81))), ValueError,
        "X has 81 features, but RotationPretrainer is expecting 256 features"),
    "uint8 after floats 0-255": (
        lambda: ESTIMATORS["rotation"]().fit(FLOATS).transform(X), ValueError,
        r"fitted on values in \[0, 255\], but X is uint8 pixel values.*as at fit"),
    "floats x10 after floats": (
        lambda: ESTIMATORS["rotation"]().fit(FLOATS).transform(FLOATS * 10), ValueError,
        r"fitted on values in \[0, 255\], but X has values in \[0, 2.55e\+03\]: another scale"),
    "partial_fit on another scale": (
        lambda: ESTIMATORS["rotation"]().fit(X).partial_fit(FLOATS), ValueError,
        "fitted on uint8 images"),
    "partial_fit on another shape": (
        lambda: ESTIMATORS["rotation"]().fit(X).partial_fit(_images(size=12)), ValueError,
        "fitted on images of shape"),
    "pretext_batch before fit": (lambda: ESTIMATORS["rotation"]().pretext_batch(X),
                                 NotFittedError, "not fitted yet"),
    "reconstruct before fit": (lambda: ESTIMATORS["mae"]().reconstruct(X), NotFittedError,
                               "not fitted yet"),
    "save a VisualBoW of a user module": (
        lambda: skssl.save(VisualBoW(make_encoder("cnn", 1, (16, 16), channels=(4,)),
                                     n_words=4).fit(X), "never-written.safetensors"),
        TypeError, "cannot store the parameter descriptor of VisualBoW.*passed back to load"),
    "save a subclass": (
        lambda: skssl.save(type("Mine", (RotationPretrainer,), {})(**TINY).fit(X),
                           "never-written.safetensors"),
        TypeError, "skssl.save stores skssl's public estimators"),
    # VisualBoW reads images as the pretrainers do
    "VisualBoW NaN": (lambda: VisualBoW(n_words=4).fit(FIT_INPUT_CASES["NaN"][0]), ValueError,
                      "NaN or infinity"),
    "VisualBoW 1e39": (lambda: VisualBoW(n_words=4).fit(FLOATS * 1e37), ValueError,
                       "beyond the range of float32"),
    "VisualBoW ragged": (lambda: VisualBoW(n_words=4).fit(FIT_INPUT_CASES["ragged list"][0]),
                         ValueError, "all images must have the same shape"),
    "VisualBoW not fitted": (lambda: VisualBoW().transform(X), NotFittedError,
                             "not fitted yet"),
    "VisualBoW other shape": (
        lambda: VisualBoW(n_words=4, random_state=0).fit(X).transform(_images(size=12)),
        ValueError, "fitted on images of shape"),
}


@pytest.mark.parametrize("case", list(SPECIFIC_CASES))
def test_specific_failure(case):
    action, error, match = SPECIFIC_CASES[case]
    _assert_raises_clearly(action, error, match)


@pytest.mark.parametrize(
    "action, match",
    [(_save_load_pickle, "not an skssl model file.*never unpickles"),
     (_load_without_task, r"task was a function \(rotate\).*skssl.load\(path, task=\.\.\.\)")],
    ids=["load a pickle", "load without the task"],
)
def test_load_failure(action, match, tmp_path):
    _assert_raises_clearly(lambda: action(tmp_path), ValueError, match)


def test_cuda_unavailable():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _assert_raises_clearly(lambda: RotationPretrainer(**{**TINY, "device": "cuda"}).fit(X),
                           ValueError, "device='cuda' but CUDA is not available")


# ---------------------------------------------------------------- accepted on purpose
def test_accepted_inputs():
    est = ESTIMATORS["rotation"]().fit(X)
    expected = est.transform(X)
    pd = pytest.importorskip("pandas")
    # integer pixels of any dtype are uint8 images: an int64 DataFrame, a nested list
    frame = pd.DataFrame(X.reshape(32, -1).astype(np.int64))
    np.testing.assert_array_equal(est.transform(frame), expected)
    np.testing.assert_array_equal(est.transform(X.tolist()), expected)
    # floats in [0, 1] are the scale of uint8 images after / 255
    np.testing.assert_allclose(est.transform(X / 255), expected, rtol=1e-4, atol=1e-5)
    # numpy integers are numbers; bool images are 0/1 floats
    assert RotationPretrainer(**{**TINY, "max_epochs": np.int64(1)}).fit(X).n_iter_ == 1
    assert RotationPretrainer(**TINY).fit(X > 128).input_scale_ == (0.0, 1.0)


def test_integers_beyond_pixels_are_values():
    # int16 values beyond 255 (e.g. medical images) are used as they are, and so are
    # integers at transform, whatever their range
    values = X.astype(np.int16) * 4
    est = ESTIMATORS["rotation"]().fit(values)
    assert est.input_scale_ == (0.0, 1020.0)
    small = values // 4  # all in 0..255, but read as at fit: not divided by 255
    np.testing.assert_allclose(est.transform(small), est.transform(small.astype(np.float32)))


# ---------------------------------------------------------------- a fit that raises
class FailAt:
    """Rotations that raise ``error`` at the ``n``-th call (the 1st is the probe)."""

    def __init__(self, n, error=None):
        self.n, self.error, self.calls = n, error or RuntimeError("the task failed"), 0

    def __call__(self, x, generator):
        self.calls += 1
        if self.calls == self.n:
            raise self.error
        return rotate(x, generator)


def test_failed_fit_leaves_the_estimator_unfitted():
    est = PretextPretrainer(FailAt(3), 4, **TINY)
    before = set(vars(est))
    with pytest.raises(RuntimeError, match="the task failed"):
        est.fit(X)
    assert set(vars(est)) == before
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    with pytest.raises(NotFittedError):
        est.transform(X)
    # and a bad device, found before any training
    est = RotationPretrainer(**{**TINY, "device": "tpu"})
    with pytest.raises(ValueError):
        est.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)


@pytest.mark.parametrize("how", ["partial_fit", "warm fit", "cold refit"])
def test_failed_fit_keeps_the_previous_fit(how):
    task = FailAt(0)
    est = PretextPretrainer(task, 4, **TINY).fit(X)
    features, weights, history = est.transform(X), _state(est), list(est.history_)
    task.n, task.calls = 2, 0  # fails at the task's next 2nd call, after a step or not
    with pytest.raises(RuntimeError, match="the task failed"):
        if how == "partial_fit":
            est.partial_fit(X)
        else:
            est.set_params(warm_start=how == "warm fit").fit(X)
    np.testing.assert_array_equal(est.transform(X), features)
    assert all(torch.equal(v, weights[k]) for k, v in _state(est).items())
    assert est.n_iter_ == 1 and est.history_ == history
    task.n = 0
    est.partial_fit(X)  # usable: continues from the previous fit
    assert est.n_iter_ == 2


def _state(est):
    return {f"{m}.{k}": v.clone() for m in ("encoder_", "head_")
            for k, v in getattr(est, m).state_dict().items()}


def test_non_finite_loss_names_the_step_and_keeps_the_weights():
    est = PretextPretrainer(rotate, 4, **TINY).fit(X)
    weights = _state(est)
    est.set_params(loss=_loss_at(2, lambda v: v * np.nan), warm_start=True)
    with pytest.raises(FloatingPointError) as info:
        est.fit(X)
    message = str(info.value)
    assert "at epoch 2, step 2/2" in message
    for cause in ("learning_rate=0.001", "uint8 pixel values", "a task or loss"):
        assert cause in message
    assert "left as it was before this call" in message
    for key, value in _state(est).items():
        assert torch.equal(value, weights[key]) and torch.isfinite(value.float()).all()


# ---------------------------------------------------------------- Ctrl-C
def test_keyboard_interrupt_in_a_pipeline_is_visible():
    y = load_digits().target[:32]
    pipe = make_pipeline(PretextPretrainer(FailAt(3, KeyboardInterrupt()), 4,
                                           **{**TINY, "max_epochs": 3}),
                         LogisticRegression(max_iter=50))
    with pytest.warns(UserWarning, match="interrupted by the user.*interrupted_ is True"):
        pipe.fit(X.reshape(32, -1), y)
    pretrainer = pipe[0]
    assert pretrainer.interrupted_ and pretrainer.n_iter_ == 1
    assert pretrainer.history_[0]["images"] == 16  # the one step done before Ctrl-C
    assert np.isfinite(pipe.predict_proba(X.reshape(32, -1))).all()
    # a complete fit says it was not interrupted
    assert not ESTIMATORS["rotation"]().fit(X).interrupted_


def test_sigint_stops_after_the_current_step():
    calls = []

    def task(x, generator):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C during the 2nd step: it still completes
            os.kill(os.getpid(), signal.SIGINT)
        return rotate(x, generator)

    est = PretextPretrainer(task, 4, **{**TINY, "max_epochs": 5})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    assert any("interrupted by the user" in str(w.message) for w in caught)
    assert est.interrupted_ and len(calls) == 3 and est.history_[0]["images"] == 32
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert np.isfinite(est.transform(X)).all()
