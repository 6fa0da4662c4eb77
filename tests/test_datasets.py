"""Data loaders: image folders, and Fashion-MNIST fetched from a local HTTP server."""

import functools
import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest
from PIL import Image

from skssl import datasets
from skssl.datasets import fetch_fashion_mnist, load_fashion_mnist, load_image_folder


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)


def _gray(value, shape=(6, 5)):
    return np.full(shape, value, dtype=np.uint8)


# ---------------------------------------------------------------------- image folders
def test_class_folders_sorted_with_int_labels(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for label in ["dog", "cat", "bird"]:
        for name in ["b.png", "a.PNG", "sub/c.png"]:
            array = rng.integers(0, 256, (6, 5), dtype=np.uint8)
            _save(tmp_path / label / name, array)
            written[f"{label}/{name}"] = array
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    _save(tmp_path / "cat" / ".hidden.png", _gray(0))
    (tmp_path / "empty").mkdir()

    data = load_image_folder(tmp_path)
    assert data.target_names == ["bird", "cat", "dog"]
    assert data.target.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.target.dtype == np.int64
    names = [str(f)[len(str(tmp_path)) + 1 :] for f in data.filenames]
    assert names[:3] == ["bird/a.PNG", "bird/b.png", "bird/sub/c.png"]
    assert data.images.shape == (9, 6, 5) and data.images.dtype == np.uint8
    for name, image in zip(names, data.images, strict=True):
        np.testing.assert_array_equal(image, written[name])  # PNG is lossless
    assert data.data.shape == (9, 30)
    X, y = load_image_folder(tmp_path, return_X_y=True)
    np.testing.assert_array_equal(X, data.images)
    np.testing.assert_array_equal(y, data.target)


def test_flat_folder_has_no_target(tmp_path):
    for i in range(3):
        _save(tmp_path / f"{i}.png", _gray(10 * i))
    data = load_image_folder(tmp_path)
    assert data.target is None and data.target_names is None
    assert data.images[:, 0, 0].tolist() == [0, 10, 20]
    X, y = load_image_folder(tmp_path, return_X_y=True)
    assert X.shape == (3, 6, 5) and y is None


def test_colour_modes(tmp_path):
    red = np.zeros((4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    _save(tmp_path / "a.png", red)
    _save(tmp_path / "b.png", _gray(100, (4, 4)))
    rgba = np.concatenate([red, np.zeros((4, 4, 1), np.uint8)], axis=2)
    _save(tmp_path / "c.png", rgba)

    auto = load_image_folder(tmp_path).images  # one colour image: all RGB
    assert auto.shape == (3, 4, 4, 3)
    np.testing.assert_array_equal(auto[0], red)
    assert (auto[1] == 100).all()  # grayscale: three equal channels
    np.testing.assert_array_equal(auto[2], red)  # alpha dropped
    np.testing.assert_array_equal(load_image_folder(tmp_path, color_mode="rgb").images, auto)
    gray = load_image_folder(tmp_path, color_mode="grayscale").images
    assert gray.shape == (3, 4, 4)
    assert gray[0, 0, 0] == 76 and gray[1, 0, 0] == 100  # luminance 0.299 * 255

    (tmp_path / "a.png").unlink()
    (tmp_path / "c.png").unlink()
    assert load_image_folder(tmp_path).images.shape == (1, 4, 4)  # all gray: gray
    assert load_image_folder(tmp_path, color_mode="rgb").images.shape == (1, 4, 4, 3)


def test_sixteen_bit_grayscale_is_scaled(tmp_path):
    _save(tmp_path / "a.png", np.array([[0, 65535], [257 * 100, 1000]], dtype=np.uint16))
    np.testing.assert_array_equal(load_image_folder(tmp_path).images[0], [[0, 255], [100, 4]])


def test_resize_and_jpeg(tmp_path):
    _save(tmp_path / "a" / "big.jpg", _gray(200, (40, 30)), quality=95)
    _save(tmp_path / "b" / "small.jpeg", np.full((8, 8, 3), 50, np.uint8), quality=95)
    with pytest.raises(ValueError, match=r"differ in size: .*big\.jpg is 40x30 .*small\.jpeg "
                                         r"is 8x8.*image_size"):
        load_image_folder(tmp_path)
    X, y = load_image_folder(tmp_path, image_size=(16, 12), return_X_y=True)
    assert X.shape == (2, 16, 12, 3) and y.tolist() == [0, 1]
    assert np.abs(X[0].astype(int) - 200).max() <= 2  # JPEG is lossy
    assert np.abs(X[1].astype(int) - 50).max() <= 2
    assert load_image_folder(tmp_path, image_size=5, color_mode="grayscale").images.shape == (
        2, 5, 5)


def test_exif_orientation_turns_photos_upright(tmp_path):
    image = Image.fromarray(_gray(0, (4, 6)))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "photo.jpg", exif=exif)
    assert load_image_folder(tmp_path).images.shape == (1, 6, 4)


@pytest.mark.parametrize("image_size", [0, (3,), (2, -1), 2.5, True])
def test_bad_image_size(tmp_path, image_size):
    _save(tmp_path / "a.png", _gray(0))
    with pytest.raises(ValueError, match="image_size must be"):
        load_image_folder(tmp_path, image_size=image_size)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        load_image_folder(tmp_path / "file.png")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("")
    with pytest.raises(ValueError, match="holds no image file"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="color_mode must be"):
        load_image_folder(tmp_path, color_mode="RGB")

    mixed = tmp_path / "mixed"
    _save(mixed / "top.png", _gray(0))
    _save(mixed / "cls" / "a.png", _gray(0))
    with pytest.raises(ValueError, match="both images .*top.png.* and class subfolders"):
        load_image_folder(mixed)


@pytest.mark.parametrize("content", [b"", b"not a png at all", "truncated"])
def test_unreadable_image_is_named(tmp_path, content):
    _save(tmp_path / "good.png", _gray(0))
    if content == "truncated":
        Image.fromarray(_gray(0, (64, 64))).save(tmp_path / "bad.png")
        content = (tmp_path / "bad.png").read_bytes()[:-40]
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(ValueError, match=r"bad\.png cannot be read as an image"):
        load_image_folder(tmp_path)


# ---------------------------------------------------------------------- Fashion-MNIST
def _idx_gz(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def fake_fashion_mnist(tmp_path, monkeypatch):
    """Tiny IDX files in ``served/``, their hashes as the expected ones; no local copy."""
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(5),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (2, 28, 28)),
        "t10k-labels-idx1-ubyte": np.array([9, 3]),
    }
    for stem, array in arrays.items():
        _idx_gz(served / (stem + ".gz"), array)
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in served.iterdir()
    })
    monkeypatch.setattr(datasets, "DEFAULT_FASHION_MNIST_HOME", str(tmp_path / "not-installed"))
    monkeypatch.delenv("SKSSL_FASHION_MNIST", raising=False)
    monkeypatch.setenv("SKSSL_DATA", str(tmp_path / "data-home"))
    return served, arrays


@pytest.fixture
def server(fake_fashion_mnist):
    """An HTTP server on 127.0.0.1 serving the fake files; ``requests`` lists the paths."""
    served, _ = fake_fashion_mnist
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", requests, httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_fetch_downloads_then_uses_the_cache(server, fake_fashion_mnist, tmp_path):
    url, requests, httpd = server
    _, arrays = fake_fashion_mnist
    data = fetch_fashion_mnist(subset="test", url=url)
    np.testing.assert_array_equal(data.images, arrays["t10k-images-idx3-ubyte"])
    assert data.target.tolist() == [9, 3] and data.target_names[9] == "Ankle boot"
    assert str(tmp_path / "data-home" / "fashion-mnist") in data.DESCR
    assert sorted(requests) == [
        "/t10k-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]  # only what is needed
    cache = tmp_path / "data-home" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # no temporary file left

    httpd.shutdown()  # the cache answers from now on
    httpd.server_close()
    X, y = fetch_fashion_mnist(subset="test", url=url, return_X_y=True)
    np.testing.assert_array_equal(X, data.images)
    X, y = fetch_fashion_mnist(subset="test", url=url, download_if_missing=False,
                               return_X_y=True)
    assert y.tolist() == [9, 3]


def test_fetch_all_into_explicit_data_home(server, tmp_path):
    url, _, _ = server
    X, y = fetch_fashion_mnist(data_home=tmp_path / "elsewhere", subset="all", url=url,
                               return_X_y=True)
    assert X.shape == (7, 28, 28) and y.tolist() == [0, 1, 2, 3, 4, 9, 3]
    assert len(list((tmp_path / "elsewhere" / "fashion-mnist").iterdir())) == 4


def test_fetch_checksum_mismatch_leaves_no_file(server, tmp_path, monkeypatch):
    url, _, _ = server
    monkeypatch.setitem(datasets.FASHION_MNIST_SHA256, "t10k-labels-idx1-ubyte.gz", "0" * 64)
    with pytest.raises(OSError, match=r"t10k-labels-idx1-ubyte\.gz has SHA-256 [0-9a-f]{64}, "
                                      r"not the expected 0{64}.*not kept"):
        fetch_fashion_mnist(subset="test", url=url)
    cache = tmp_path / "data-home" / "fashion-mnist"
    assert [p.name for p in cache.iterdir()] == ["t10k-images-idx3-ubyte.gz"]


def test_fetch_without_download(fake_fashion_mnist, tmp_path):
    with pytest.raises(FileNotFoundError, match="download_if_missing is False"):
        fetch_fashion_mnist(download_if_missing=False)
    assert not (tmp_path / "data-home").exists()


def test_fetch_server_errors_are_clear(server):
    url, _, _ = server
    with pytest.raises(OSError, match=r"Downloading .*/missing/train-images-idx3-ubyte\.gz "
                                      r"failed: HTTP Error 404"):
        fetch_fashion_mnist(url=url + "missing/")


def test_fetch_prefers_installed_files(fake_fashion_mnist, monkeypatch):
    served, arrays = fake_fashion_mnist
    monkeypatch.setenv("SKSSL_FASHION_MNIST", str(served))
    X, y = fetch_fashion_mnist(url="http://127.0.0.1:9/nothing-here/", return_X_y=True)
    np.testing.assert_array_equal(X, arrays["train-images-idx3-ubyte"])
    X2, y2 = load_fashion_mnist(return_X_y=True)  # the same reader
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


@pytest.mark.parametrize("fetch", [load_fashion_mnist, fetch_fashion_mnist])
def test_bad_subset(fetch):
    with pytest.raises(ValueError, match="subset must be"):
        fetch(subset="validation")
