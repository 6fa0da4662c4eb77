import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skssl._data import check_image_size, check_images


@pytest.mark.parametrize(
    "shape, image_shape, expected",
    [
        ((4, 784), None, (28, 28, 1)),
        ((4, 3 * 32 * 32), None, (32, 32, 3)),
        ((4, 12), (3, 4), (3, 4, 1)),
        ((4, 36), (3, 4), (3, 4, 3)),
        ((4, 36), (3, 4, 3), (3, 4, 3)),
        ((4, 12), (-1, 6), (2, 6, 1)),
        ((4, 5, 7), None, (5, 7, 1)),
        ((4, 5, 7, 3), None, (5, 7, 3)),
    ],
)
def test_layouts(shape, image_shape, expected):
    data = check_images(np.zeros(shape, dtype=np.float32), image_shape)
    assert data.image_shape == expected
    H, W, C = expected
    assert data.batch(np.arange(2), "cpu").shape == (2, C, H, W)


def test_flat_rows_are_channels_last():
    images = np.random.RandomState(0).rand(3, 4, 5, 3).astype(np.float32)
    flat = check_images(images.reshape(3, -1), (4, 5, 3)).batch(np.arange(3), "cpu")
    nd = check_images(images).batch(np.arange(3), "cpu")
    torch.testing.assert_close(flat, nd)
    torch.testing.assert_close(nd, torch.from_numpy(images).permute(0, 3, 1, 2))


def test_uint8_is_scaled_and_tensor_input():
    x = np.full((2, 4, 4), 255, dtype=np.uint8)
    assert float(check_images(x).batch(slice(0, 2), "cpu").max()) == 1.0
    t = torch.from_numpy(x)
    assert float(check_images(t).batch(np.arange(2), "cpu").max()) == 1.0


def test_channel_mean_std():
    rng = np.random.RandomState(0)
    images = rng.rand(50, 6, 6, 3) * [1.0, 2.0, 3.0]
    mean, std = check_images(images).channel_mean_std()
    np.testing.assert_allclose(mean, images.reshape(-1, 3).mean(0))
    np.testing.assert_allclose(std, images.reshape(-1, 3).std(0))


def test_memmap_batches_are_not_whole_copies(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8,
                                   shape=(100, 8, 8))
    mm[:] = np.arange(100, dtype=np.uint8)[:, None, None]
    data = check_images(mm)
    assert data.X is mm
    batch = data.batch(np.array([3, 7]), "cpu")
    np.testing.assert_allclose(batch[:, 0, 0, 0].numpy(), np.array([3, 7]) / 255, rtol=1e-6)


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.zeros(5), ValueError, "Reshape your data"),
        (np.zeros((2, 3, 3, 3, 3)), ValueError, "Reshape your data"),
        (np.zeros((0, 4)), ValueError, "0 sample"),
        (np.zeros((3, 0)), ValueError, "0 feature"),
        (np.array([[0.0, np.nan, 0.0, 0.0]]), ValueError, "NaN or infinity"),
        (np.array([[0.0, np.inf, 0.0, 0.0]]), ValueError, "NaN or infinity"),
        (torch.tensor([[0.0, float("nan"), 0.0, 0.0]]), ValueError, "NaN or infinity"),
        (np.array([["a", "b", "c", "d"]]), TypeError, "numeric"),
        (np.zeros((2, 4), dtype=complex), ValueError, "Complex"),
        (sp.csr_matrix(np.eye(4)), TypeError, "sparse"),
        (np.zeros((2, 5)), ValueError, "image_shape"),
        (np.zeros((2, 3, 8, 8)), ValueError, "channels-first"),
    ],
)
def test_bad_input(X, error, match):
    with pytest.raises(error, match=match):
        check_images(X)


def test_shape_mismatch_with_fit():
    with pytest.raises(ValueError, match="X has 9 features, but Est is expecting 16"):
        check_images(np.zeros((2, 9)), expected=(4, 4, 1), estimator_name="Est")
    with pytest.raises(ValueError, match="fitted on images of shape"):
        check_images(np.zeros((2, 3, 3)), expected=(4, 4, 1), estimator_name="Est")


def test_bad_image_shape():
    with pytest.raises(ValueError, match="does not fit rows of 10"):
        check_images(np.zeros((2, 10)), image_shape=(3, 3))
    with pytest.raises(ValueError, match="does not match"):
        check_images(np.zeros((2, 4, 4)), image_shape=(2, 8))


def test_check_image_size():
    with pytest.raises(ValueError, match="at least 9x9 pixels, got 8x8"):
        check_image_size((8, 8, 1), 9, "Jigsaw")
