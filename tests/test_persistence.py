"""skssl.save / skssl.load, and checkpoints: safe files, exact round trips, resumed fits."""

import hashlib
import importlib.util
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
import safetensors.torch
import torch
from safetensors import safe_open
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
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

ROOT = Path(__file__).parent.parent
TINY = dict(encoder_kwargs={"channels": (4,)}, max_epochs=1, batch_size=16, device="cpu",
            random_state=0)
VIT = {"patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2}


def mirror_task(x, generator):
    inputs = torch.cat([x, x.flip(-1)])
    return inputs, torch.arange(2, device=x.device).repeat_interleave(len(x))


def l1_loss(outputs, targets):
    return (outputs - targets).abs().mean()


def regress_mean(x, generator):
    return x, x.mean(dim=(1, 2, 3))[:, None]


def small_net():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


def net_factory(in_channels, width=3):
    return nn.Sequential(nn.Conv2d(in_channels, width, 3), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())


# name -> (estimator, what load needs passed back)
ESTIMATORS = {
    "rotation": (lambda: RotationPretrainer(**TINY), {}),
    "jigsaw": (lambda: JigsawPretrainer(n_permutations=5, **TINY), {}),
    "context": (lambda: ContextPretrainer(**TINY), {}),
    "simclr": (lambda: SimCLRPretrainer(**TINY), {}),
    "intruder": (lambda: IntruderPretrainer(**TINY), {}),
    "mae": (lambda: MAEPretrainer(**{**TINY, "encoder_kwargs": VIT}, decoder_dim=8,
                                  decoder_depth=1, decoder_heads=2), {}),
    "custom": (lambda: PretextPretrainer(mirror_task, n_outputs=2, **TINY),
               {"task": mirror_task}),
    "custom_loss": (lambda: PretextPretrainer(regress_mean, 1, loss=l1_loss, **TINY),
                    {"task": regress_mean, "loss": l1_loss}),
    "user_module": (lambda: RotationPretrainer(**{**TINY, "encoder_kwargs": None},
                                               encoder=small_net()),
                    {"encoder": small_net()}),
    "user_factory": (lambda: RotationPretrainer(**{**TINY, "encoder_kwargs": {"width": 5}},
                                                encoder=net_factory),
                     {"encoder": net_factory}),
    # a teacher trained by fit, then a fitted one passed frozen: both stored in the file
    "bow": (lambda: BoWPretrainer(n_words=4, crop_scale=0.5, **TINY), {}),
    "bow_frozen_teacher": (
        lambda: BoWPretrainer(teacher=FrozenEstimator(RotationPretrainer(**TINY).fit(_images())),
                              n_words=4, **TINY), {}),
}


def _images():
    """32 digits magnified to 16x16 uint8 pixels: large enough for every method."""
    X = np.kron(load_digits().images[:32], np.ones((2, 2)))
    return np.round(X * 255 / 16).astype(np.uint8)


@pytest.fixture(scope="module")
def images():
    return _images()


@pytest.fixture(scope="module")
def saved(images, tmp_path_factory):
    est = RotationPretrainer(**TINY).fit(images)
    path = tmp_path_factory.mktemp("saved") / "rotation.safetensors"
    skssl.save(est, path)
    return est, path


def _weights(est):
    return {f"{name}.{k}": v for name in ("encoder_", "head_")
            for k, v in getattr(est, name).state_dict().items()}


def _assert_same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_round_trip_gives_the_same_model(name, images, tmp_path):
    make, passed_back = ESTIMATORS[name]
    est = make().fit(images)
    path = tmp_path / "model.safetensors"
    skssl.save(est, path)
    loaded = skssl.load(path, **passed_back)

    assert type(loaded) is type(est)
    assert loaded.get_params().keys() == est.get_params().keys()
    for key, value in est.get_params(deep=False).items():
        if key in passed_back:
            continue
        got = loaded.get_params()[key]
        if isinstance(value, BaseEstimator):  # a teacher: compared by parameters
            assert type(got) is type(value) and repr(got) == repr(value), key
        else:
            assert got == value, key
    np.testing.assert_array_equal(loaded.transform(images), est.transform(images))
    assert loaded.score(images) == est.score(images)
    assert loaded.history_ == est.history_ and loaded.input_scale_ == est.input_scale_
    _assert_same_weights(loaded, est)
    # the training state is saved too: both continue training alike
    loaded.partial_fit(images)
    est.partial_fit(images)
    _assert_same_weights(loaded, est)


@pytest.mark.parametrize("descriptor", ["patch", "frozen pretrainer", "pretrainer"])
def test_visual_bow_round_trip(descriptor, images, tmp_path):
    source = {
        "patch": "patch",
        "frozen pretrainer": FrozenEstimator(RotationPretrainer(**TINY).fit(images)),
        "pretrainer": RotationPretrainer(**TINY),  # fitted by VisualBoW.fit
    }[descriptor]
    est = VisualBoW(source, n_words=4, patch_size=3, random_state=0).fit(images)
    skssl.save(est, tmp_path / "bow.safetensors")
    loaded = skssl.load(tmp_path / "bow.safetensors")
    np.testing.assert_array_equal(loaded.transform(images), est.transform(images))
    assert type(loaded.descriptor) is type(est.descriptor)
    assert loaded.grid_size_ == est.grid_size_ and loaded.pyramid_ == est.pyramid_


def test_saved_file_is_plain_safetensors_with_a_json_description(saved):
    est, path = saved
    with safe_open(path, "pt") as f:
        document = json.loads(f.metadata()["skssl"])
        assert torch.equal(f.get_tensor("encoder_.features.0.weight"),
                           est.encoder_.state_dict()["features.0.weight"])
        names = set(f.keys())
    assert document["class"] == "RotationPretrainer"
    assert document["skssl_version"] == skssl.__version__
    assert document["torch_version"] == torch.__version__
    assert document["fitted"]["n_iter_"] == 1
    assert set(document["sha256"]) == names


def test_load_keeps_a_random_state_instance_as_none_and_writes_no_checkpoint(images,
                                                                             tmp_path):
    est = RotationPretrainer(**{**TINY, "random_state": np.random.RandomState(0)},
                             checkpoint=tmp_path / "ckpt.safetensors").fit(images)
    skssl.save(est, tmp_path / "model.safetensors")
    loaded = skssl.load(tmp_path / "model.safetensors")
    assert loaded.random_state is None and loaded.checkpoint is None
    np.testing.assert_array_equal(loaded.transform(images), est.transform(images))


def test_loaded_model_on_cpu_in_eval_mode(saved):
    loaded = skssl.load(saved[1])
    assert not loaded.encoder_.training and not loaded.head_.training
    assert all(p.device.type == "cpu" for p in loaded.encoder_.parameters())


# ---------------------------------------------------------------- damaged and hostile files
def _flip(data, position):
    data = bytearray(data)
    data[position] ^= 0x01
    return bytes(data)


def test_every_region_of_a_flipped_file_is_refused(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    # the length, the safetensors header, the JSON description and the weights
    positions = [0, 3, 9, 40, header // 2, header - 20, header + 1, (header + len(data)) // 2,
                 len(data) - 1]
    positions += list(range(header, len(data), max(1, (len(data) - header) // 25)))
    for position in positions:
        damaged = tmp_path / "damaged.safetensors"
        damaged.write_bytes(_flip(data, position))
        with pytest.raises(ValueError, match=r"corrupted|not an skssl model|malformed|truncated"):
            skssl.load(damaged)


@pytest.mark.parametrize("keep", [0, 5, 100, 0.5, 0.99])
def test_truncated_file_is_refused(saved, tmp_path, keep):
    data = saved[1].read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match="truncated|not an skssl model"):
        skssl.load(truncated)


class _Payload:
    """What an attacker plants: unpickling it creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_payloads_never_run(saved, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    pickle.loads(payload)  # the payload works...
    assert marker.exists()
    marker.unlink()
    data = saved[1].read_bytes()
    offset = 8 + int.from_bytes(data[:8], "little")
    header = json.loads(data[8:offset])
    files = {"pickle.pkl": payload}
    # the description replaced by a pickle, its hash recomputed as an attacker would
    text = payload.decode("latin-1")
    metadata = {"skssl": text, "skssl_sha256": hashlib.sha256(text.encode()).hexdigest()}
    files["description.safetensors"] = safetensors.torch.save(safetensors.torch.load(data),
                                                              metadata)
    # a weight replaced by the bytes of a pickle
    start, end = header["encoder_.features.0.weight"]["data_offsets"]
    files["weights.safetensors"] = (
        data[: offset + start] + (payload * 100)[: end - start] + data[offset + end :]
    )
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    joblib.dump(_Payload(marker), tmp_path / "model.joblib")
    for name in [*files, "model.joblib"]:
        with pytest.raises(ValueError, match="not an skssl model|corrupted|malformed"):
            skssl.load(tmp_path / name)
        assert not marker.exists(), name


def test_hostile_description_is_refused(saved, tmp_path):
    data = saved[1].read_bytes()
    tensors = safetensors.torch.load(data)
    document = json.loads(json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
                          ["__metadata__"]["skssl"])

    def write(**changes):
        text = json.dumps({**document, **changes})
        metadata = {"skssl": text, "skssl_sha256": hashlib.sha256(text.encode()).hexdigest()}
        path = tmp_path / "hostile.safetensors"
        path.write_bytes(safetensors.torch.save(tensors, metadata))
        return path

    cases = [
        ({"class": "os.system"}, "not one of skssl's public estimators"),
        ({"class": "BasePretrainer"}, "not one of skssl's public estimators"),
        ({"skssl_version": "9.0.0"}, r"written by skssl 9\.0\.0"),
        ({"format_version": 2}, "version 2"),
        ({"fitted": {**document["fitted"], "__class__": 1}}, "never writes"),
        ({"params": {**document["params"], "evil": 1}}, "do not fit RotationPretrainer"),
        ({"params": {**document["params"], "max_epochs": "many"}}, "max_epochs"),
        ({"passed_back": {"teacher": "x"}}, "malformed"),
        ({"fitted": {"n_iter_": {"__tensor__": "nope"}}}, "malformed"),
        ({"modules": ["encoder_", "extra_"]}, "modules that skssl never writes"),
        ({"sha256": {}}, "corrupted"),
    ]
    for changes, match in cases:
        with pytest.raises(ValueError, match=match):
            skssl.load(write(**changes))
    # another patch version of the same major.minor is read
    major, minor = skssl.__version__.split(".")[:2]
    assert skssl.load(write(skssl_version=f"{major}.{minor}.99")).n_iter_ == 1


def test_missing_tensor_is_refused(saved, tmp_path):
    data = saved[1].read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    tensors = safetensors.torch.load(data)
    del tensors["head_.mlp.0.weight"]
    path = tmp_path / "missing.safetensors"
    path.write_bytes(safetensors.torch.save(tensors, header["__metadata__"]))
    with pytest.raises(ValueError, match=r"'head_\.mlp\.0\.weight'\] are missing"):
        skssl.load(path)


def test_passed_back_arguments_are_checked(images, tmp_path):
    est = RotationPretrainer(**{**TINY, "encoder_kwargs": None}, encoder=small_net())
    skssl.save(est.fit(images), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"encoder was a module \(Sequential\).*encoder=\.\.\."):
        skssl.load(tmp_path / "m.safetensors")
    wider = nn.Sequential(nn.Conv2d(1, 5, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match="encoder passed to load does not fit the saved model"):
        skssl.load(tmp_path / "m.safetensors", encoder=wider)
    with pytest.raises(ValueError, match="task= was given"):
        skssl.load(tmp_path / "m.safetensors", encoder=small_net(), task=mirror_task)


def test_save_refuses_what_it_cannot_store(images, tmp_path):
    class Subclass(RotationPretrainer):
        pass

    with pytest.raises(TypeError, match="public estimators"):
        skssl.save(Subclass(**TINY).fit(images), tmp_path / "m.safetensors")
    module = make_encoder("cnn", 1, (16, 16), channels=(4,))
    with pytest.raises(TypeError, match="cannot store the parameter descriptor of VisualBoW"):
        skssl.save(VisualBoW(module, n_words=4).fit(images), tmp_path / "m.safetensors")
    est = RotationPretrainer(**TINY).fit(images)
    est.set_params(encoder_kwargs={"channels": (4,), "norm": object()})
    with pytest.raises(TypeError, match="cannot store the parameter encoder_kwargs"):
        skssl.save(est, tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_save_replaces_a_file_atomically(saved, tmp_path, monkeypatch):
    est, path = saved
    target = tmp_path / "model.safetensors"
    target.write_bytes(path.read_bytes())

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        skssl.save(est, target)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    assert target.read_bytes() == path.read_bytes()


# ---------------------------------------------------------------- checkpoints
KILLED_FIT = '''
"""A RotationPretrainer fit whose encoder kills the process at its KILL_AT-th call."""
import os
import signal
import sys

import numpy as np
import torch
from torch import nn

import skssl
from skssl.encoders import make_encoder

KILL_AT = None
calls = 0


class Counting(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.num_features = inner.num_features

    def forward(self, x):
        global calls
        calls += 1
        if calls == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(x)


def encoder(in_channels, image_size):
    return Counting(make_encoder("cnn", in_channels, image_size, channels=(4, 8)))


def estimator(checkpoint):
    return skssl.RotationPretrainer(
        encoder=encoder, max_epochs=4, batch_size=16, learning_rate=0.01,
        lr_schedule="cosine", device="cpu", random_state=0, checkpoint=checkpoint,
        warm_start=True, precision="float32")  # as the test process resolves "auto"


if __name__ == "__main__":
    torch.set_num_threads(1)
    KILL_AT = int(sys.argv[3])
    estimator(sys.argv[2]).fit(np.load(sys.argv[1]))
'''


def test_fit_killed_with_sigkill_resumes_to_the_same_weights(images, tmp_path):
    script = tmp_path / "killed_fit.py"
    script.write_text(textwrap.dedent(KILLED_FIT))
    np.save(tmp_path / "X.npy", images)
    checkpoint = tmp_path / "fit.safetensors"
    # 2 encoder calls to build it, then one per step, 2 steps per epoch: the 8th call is
    # the second step of epoch 3, after the checkpoint of epoch 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "X.npy"),
                           str(checkpoint), "8"], env=env, capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert skssl.load(checkpoint, encoder=_load_script(script).encoder).n_iter_ == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    fit = _load_script(script)
    resumed = fit.estimator(checkpoint).fit(images)  # warm_start=True: from the checkpoint
    assert fit.calls == 2 + 4  # built, then epochs 3 and 4 only
    reference = fit.estimator(None).fit(images)
    assert resumed.n_iter_ == reference.n_iter_ == 4
    np.testing.assert_array_equal(resumed.loss_curve_, reference.loss_curve_)
    _assert_same_weights(resumed, reference)
    # the end of the fit is checkpointed too: a warm fit from the file is a new call
    assert skssl.load(checkpoint, encoder=fit.encoder).n_iter_ == 4


def _load_script(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FailingTask:
    """Rotations that raise at the ``fail_at``-th call (0: never)."""

    def __init__(self, fail_at=0, error=RuntimeError):
        self.fail_at, self.error, self.calls = fail_at, error, 0

    def __call__(self, x, generator):
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error("the task failed")
        inputs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
        noise = torch.rand(len(inputs), 1, 1, 1, generator=generator) * 0.1
        return inputs + noise, torch.arange(4).repeat_interleave(len(x))


@pytest.mark.parametrize("fail_at", [3, 5, 6])
def test_fit_resumes_mid_epoch_from_a_timed_checkpoint(images, tmp_path, fail_at):
    # checkpoint_every=1e-9 checkpoints between every two steps; the task fails at its
    # fail_at-th call (the 1st is the probe): within epoch 1, or epoch 2 (2 steps each)
    checkpoint = tmp_path / "fit.safetensors"

    def make(task, **params):
        return PretextPretrainer(task, 4, **{**TINY, "max_epochs": 3, "lr_schedule": "cosine",
                                             **params})

    failing = make(FailingTask(fail_at), checkpoint=checkpoint, checkpoint_every=1e-9,
                   warm_start=True)
    with pytest.raises(RuntimeError, match="the task failed"):
        failing.fit(images)
    assert not hasattr(failing, "encoder_")
    task = FailingTask()
    resumed = make(task, checkpoint=checkpoint, warm_start=True).fit(images)
    assert task.calls == 1 + 6 - (fail_at - 2)  # the probe, then the steps not done yet
    reference = make(FailingTask()).fit(images)
    assert len(resumed.history_) == 3
    np.testing.assert_array_equal(resumed.loss_curve_, reference.loss_curve_)
    _assert_same_weights(resumed, reference)


def test_checkpoint_rules(images, tmp_path):
    checkpoint = tmp_path / "fit.safetensors"
    RotationPretrainer(**TINY, checkpoint=checkpoint).fit(images)
    # another class cannot resume from it
    with pytest.raises(ValueError, match="holds a RotationPretrainer, not a SimCLR"):
        SimCLRPretrainer(**TINY, checkpoint=checkpoint, warm_start=True).fit(images)
    # warm_start=False starts afresh and overwrites it; warm_start=True continues
    est = RotationPretrainer(**TINY, checkpoint=checkpoint, warm_start=True).fit(images)
    assert est.n_iter_ == 2
    assert RotationPretrainer(**TINY, checkpoint=checkpoint).fit(images).n_iter_ == 1
    assert skssl.load(checkpoint).n_iter_ == 1
    # a fit stopped mid-epoch resumes on the same images only
    failing = PretextPretrainer(FailingTask(3), 4, **TINY, checkpoint=checkpoint,
                                checkpoint_every=1e-9)
    with pytest.raises(RuntimeError):
        failing.fit(images)
    resumed = PretextPretrainer(FailingTask(), 4, **TINY, checkpoint=checkpoint,
                                warm_start=True)
    with pytest.raises(ValueError, match="during a fit on 32 images, and X has 30"):
        resumed.fit(images[:30])


def test_a_loaded_model_refuses_a_warm_fit_with_another_network(tmp_path):
    X = load_digits().images[:64]
    est = skssl.IntruderPretrainer(grid=2, encoder_kwargs={"channels": (4,)}, max_epochs=1,
                                   batch_size=32, device="cpu", random_state=0).fit(X)
    skssl.save(est, tmp_path / "intruder.safetensors")
    loaded = skssl.load(tmp_path / "intruder.safetensors")
    loaded.partial_fit(X)  # the same network: training goes on
    with pytest.raises(ValueError, match="grid changed from 2 to 3"):
        loaded.set_params(grid=3).partial_fit(X)
