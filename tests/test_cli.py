"""The command line, run in-process through ``skssl.cli.main`` (and once as ``python -m``)."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import skssl
from skssl.cli import METHODS, main

TINY = json.dumps({"encoder_kwargs": {"channels": [4]}, "batch_size": 32})


@pytest.fixture
def npy(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "images.npy"
    np.save(path, rng.integers(0, 256, (40, 12, 12), dtype=np.uint8))
    return path


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "pictures"
    for label in ["a", "b"]:
        (root / label).mkdir(parents=True)
        for i in range(6):
            size = (12, 12) if i % 2 else (16, 14)  # two sizes: --image-size is needed
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


def _fit(data, out, *extra):
    return main(["fit", "--method", "rotation", "--data", str(data), "--out", str(out),
                 "--epochs", "1", "--random-state", "0", "--params", TINY, *extra])


def test_fit_transform_npy(npy, tmp_path, capsys):
    model, features = tmp_path / "model.skssl", tmp_path / "features.npy"
    assert _fit(npy, model) == 0
    out = capsys.readouterr()
    assert "RotationPretrainer: 1 epoch(s) on 40 images of shape (12, 12, 1)" in out.out
    assert out.err == ""  # no progress bar: stderr is not a terminal
    estimator = skssl.load(model)
    assert estimator.get_params()["encoder_kwargs"] == {"channels": [4]}
    assert estimator.random_state == 0 and estimator.n_iter_ == 1

    assert main(["transform", "--model", str(model), "--data", str(npy),
                 "--out", str(features)]) == 0
    assert "Features of shape (40, 20) saved to" in capsys.readouterr().out  # 5 x 4: pyramid
    X = np.load(npy)
    np.testing.assert_array_equal(np.load(features), estimator.transform(X))
    assert np.load(features).shape == (40, 20)

    assert main(["info", "--model", str(model)]) == 0
    info = capsys.readouterr().out
    assert info.startswith("RotationPretrainer(")
    assert "image_shape_: (12, 12, 1)" in info and "features out: 20" in info


def test_fit_transform_image_folder(folder, tmp_path, capsys):
    model, features = tmp_path / "model.skssl", tmp_path / "features.npy"
    assert _fit(folder, model, "--image-size", "10x8", "--verbose") == 0
    assert "epoch 1" in capsys.readouterr().err  # the progress bar, asked for
    assert skssl.load(model).image_shape_ == (10, 8, 3)
    # transform reads the folder at the model's size and colour mode
    assert main(["transform", "--model", str(model), "--data", str(folder),
                 "--out", str(features)]) == 0
    assert np.load(features).shape == (12, 20)

    assert _fit(folder, model, "--image-size", "9", "--color-mode", "grayscale") == 0
    assert skssl.load(model).image_shape_ == (9, 9, 1)


def test_fit_same_seed_same_model(npy, tmp_path):
    for name in ["a.skssl", "b.skssl"]:
        assert _fit(npy, tmp_path / name) == 0
    X = np.load(npy)
    a, b = (skssl.load(tmp_path / name).transform(X) for name in ["a.skssl", "b.skssl"])
    np.testing.assert_array_equal(a, b)


def _error(capsys, argv):
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err  # one line
    return err


def test_fit_errors(npy, folder, tmp_path, capsys):
    out = str(tmp_path / "m.skssl")
    base = ["fit", "--method", "rotation", "--out", out]
    err = _error(capsys, ["fit", "--method", "rotatoin", "--data", str(npy), "--out", out])
    assert "invalid choice: 'rotatoin'" in err and all(name in err for name in METHODS)
    err = _error(capsys, [*base, "--data", str(tmp_path / "none.npy")])
    assert "none.npy does not exist" in err
    (tmp_path / "x.csv").write_text("1,2")
    assert "neither a .npy file" in _error(capsys, [*base, "--data", str(tmp_path / "x.csv")])
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    err = _error(capsys, [*base, "--data", str(tmp_path / "bad.npy")])
    assert "bad.npy cannot be read as a .npy array" in err
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    err = _error(capsys, [*base, "--data", str(tmp_path / "objects.npy")])
    assert "objects.npy cannot be read" in err  # never unpickled

    err = _error(capsys, [*base, "--data", str(npy), "--params", "{epochs: 1}"])
    assert "--params is not valid JSON" in err
    assert "JSON object" in _error(capsys, [*base, "--data", str(npy), "--params", "[1]"])
    err = _error(capsys, [*base, "--data", str(npy), "--params", '{"epochs": 1}'])
    assert "Invalid parameter 'epochs'" in err
    err = _error(capsys, [*base, "--data", str(npy), "--params", '{"max_epochs": 0}'])
    assert "max_epochs" in err
    err = _error(capsys, [*base, "--data", str(npy), "--epochs", "2",
                          "--params", '{"max_epochs": 1}'])
    assert "both by --epochs and by --params" in err
    err = _error(capsys, [*base, "--data", str(npy), "--image-size", "8"])
    assert "apply to a folder of images" in err
    assert "expected a size in pixels" in _error(capsys, [*base, "--data", str(folder),
                                                          "--image-size", "8x"])

    err = _error(capsys, [*base, "--data", str(folder)])  # two image sizes
    assert "differ in size" in err and "image_size" in err
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG broken")
    err = _error(capsys, [*base, "--data", str(folder), "--image-size", "8"])
    assert "broken.png cannot be read as an image" in err

    err = _error(capsys, [*base[:-1], str(tmp_path / "no" / "m.skssl"), "--data", str(npy)])
    assert "does not exist" in err
    assert not os.path.exists(out)


def test_transform_and_info_errors(npy, tmp_path, capsys):
    features = str(tmp_path / "f.npy")
    err = _error(capsys, ["transform", "--model", str(tmp_path / "none"), "--data", str(npy),
                          "--out", features])
    assert "none does not exist" in err
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump({"not": "a model"}, f)
    for argv in (["transform", "--model", str(tmp_path / "model.pkl"), "--data", str(npy),
                  "--out", features], ["info", "--model", str(tmp_path / "model.pkl")]):
        assert "is not an skssl model file" in _error(capsys, argv)
    assert "required: --model" in _error(capsys, ["info"])

    model = tmp_path / "model.skssl"
    assert _fit(npy, model) == 0
    np.save(tmp_path / "other.npy", np.zeros((3, 10, 10), np.uint8))
    err = _error(capsys, ["transform", "--model", str(model), "--data",
                          str(tmp_path / "other.npy"), "--out", features])
    assert "fitted on images of shape (12, 12, 1)" in err


def test_help_lists_the_methods(capsys):
    assert main(["fit", "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: skssl fit")
    for name, cls in METHODS.items():
        assert f"{name:<9} {cls.__name__}, learns by" in text


def test_python_m_skssl_help():
    result = subprocess.run([sys.executable, "-m", "skssl", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: skssl")
    assert all(command in result.stdout for command in ["fit", "transform", "info"])
    assert ", ".join(METHODS) in " ".join(result.stdout.split())
