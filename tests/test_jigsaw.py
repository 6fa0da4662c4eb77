import pickle

import numpy as np
import pytest
import torch

from skssl import JigsawPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.ops import normalize_patches

SMALL = dict(encoder_kwargs={"channels": (8, 16)}, batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist(subset="test", return_X_y=True)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_permutation_set_is_far_apart_stored_and_seeded():
    X = np.random.RandomState(0).rand(8, 12, 12).astype(np.float32)
    est = JigsawPretrainer(n_permutations=20, grid=3, max_epochs=1, random_state=0,
                           **SMALL).fit(X)
    perms = est.permutations_
    assert perms.shape == (20, 9) and perms.dtype == np.int64
    assert (np.sort(perms, axis=1) == np.arange(9)).all()
    distance = (perms[:, None] != perms[None]).sum(-1)[~np.eye(20, dtype=bool)]
    assert distance.min() >= 7  # 20 of the 9! orders, chosen greedily
    again = JigsawPretrainer(n_permutations=20, grid=3, max_epochs=1, random_state=0,
                             **SMALL).fit(X)
    np.testing.assert_array_equal(again.permutations_, perms)
    other = JigsawPretrainer(n_permutations=20, max_epochs=1, random_state=1, **SMALL).fit(X)
    assert not np.array_equal(other.permutations_, perms)
    # a warm start keeps the classes the head has learnt
    warm = JigsawPretrainer(n_permutations=20, max_epochs=1, warm_start=True, random_state=1,
                            **SMALL).fit(X)
    first = warm.permutations_
    assert warm.fit(X).permutations_ is first


@pytest.mark.parametrize("flip_p, turn_tiles", [(0.0, False), (1.0, False), (1.0, True)])
def test_batch_is_the_shuffled_puzzle_of_each_image(locate, flip_p, turn_tiles):
    est = JigsawPretrainer(n_permutations=30, grid=3, flip_p=flip_p, turn_tiles=turn_tiles,
                           random_state=0, **SMALL)
    est.fit(np.random.RandomState(0).randn(4, 28, 28))  # the scale of the batch looked at
    x = torch.randn(5, 1, 28, 28)
    tiles, target = est.pretext_batch(x[:, 0].numpy())
    turns = torch.zeros(5, 9, dtype=torch.int64)
    if turn_tiles:  # each tile turned by its own quarter turns, the second target
        target, turns = target
        assert turns.dtype == torch.int64 and turns.shape == (5, 9)
        assert set(turns.unique().tolist()) == {0, 1, 2, 3}
        tiles = torch.stack([torch.rot90(t, -int(k), dims=(-2, -1))  # turned back
                             for t, k in zip(tiles.flatten(0, 1), turns.flatten(), strict=True)])
        tiles = tiles.unflatten(0, (5, 9))
    assert tiles.shape == (5, 9, 1, 7, 7)
    assert target.dtype == torch.int64 and target.shape == (5,)
    assert ((target >= 0) & (target < 30)).all()
    torch.testing.assert_close(tiles.mean(dim=(-2, -1)), torch.zeros(5, 9, 1), atol=1e-5, rtol=0)
    # flip_p=1: every image is mirrored left-right before it is cut into tiles
    source = x.flip(-1) if flip_p else x
    for b in range(5):
        # undo the permutation: tiles in cell order lie on a 3x3 grid of 9 px cells
        order = np.argsort(est.permutations_[int(target[b])])
        where = np.array([locate(tiles[b, i, 0], source[b, 0]) for i in order]).reshape(3, 3, 2)
        assert (np.diff(where[..., 0], axis=0) >= 7).all()  # rows go down
        assert (np.diff(where[..., 1], axis=1) >= 7).all()  # columns go right
        assert (np.ptp(where, axis=(0, 1)) <= 27 - 7).all()  # inside one 27 px crop
        for i, (top, left) in zip(order, where.reshape(-1, 2), strict=True):  # cut from it
            window = source[b, 0, top : top + 7, left : left + 7]
            torch.testing.assert_close(normalize_patches(window), tiles[b, i, 0],
                                       atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "side, grid, n_permutations, tile",
    [(8, 2, 24, 3), (28, 2, 24, 11), (56, 2, 24, 23), (57, 3, 100, 16), (96, 3, 100, 27)],
)
def test_auto_grid_is_the_papers_3x3_from_16_px_tiles_else_2x2_with_every_order(
    side, grid, n_permutations, tile
):
    X = np.random.RandomState(0).rand(4, side, side + 3).astype(np.float32)
    est = JigsawPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1, device="cpu",
                           random_state=0).fit(X)
    assert est.permutations_.shape == (n_permutations, grid * grid)
    assert len({tuple(p) for p in est.permutations_}) == n_permutations
    tiles, (target, turns) = est.pretext_batch(X[:2])
    assert tiles.shape == (2, grid * grid, 1, tile, tile)
    assert target.shape == (2,) and turns.shape == (2, grid * grid)
    assert est.head_[-1].out_features == n_permutations + 4 * grid * grid  # and the turns
    assert est.get_params()["grid"] == "auto"  # the parameter is left as given


def test_colour_guards():
    x = torch.randn(6, 3, 28, 28)
    est = JigsawPretrainer(n_permutations=10, random_state=0, **SMALL)
    est.fit(np.random.RandomState(0).randn(4, 28, 28, 3))

    def batch(**params):
        tiles, _ = est.set_params(**params).pretext_batch(x.permute(0, 2, 3, 1).numpy())
        return tiles

    grey = batch(grayscale_p=1.0, channel_shift=0)
    torch.testing.assert_close(grey[:, :, 0], grey[:, :, 2])
    plain = batch(grayscale_p=0.0, channel_shift=0)
    assert not torch.allclose(plain[:, :, 0], plain[:, :, 2])
    assert not torch.allclose(batch(grayscale_p=0.0, channel_shift=None), plain)
    # grayscale images: the guards draw nothing and change nothing
    mono = JigsawPretrainer(n_permutations=10, random_state=0, **SMALL)
    mono.fit(np.random.RandomState(0).randn(4, 28, 28))
    a = mono.set_params(grayscale_p=0.0, channel_shift=0).pretext_batch(x[:, 0].numpy())
    b = mono.set_params(grayscale_p=1.0, channel_shift=2).pretext_batch(x[:, 0].numpy())
    torch.testing.assert_close(a, b)


def test_learns_on_real_images(fashion):
    X, _ = fashion
    est = JigsawPretrainer(grid=3, n_permutations=30, encoder_kwargs={"channels": (16, 32)},
                           max_epochs=3, batch_size=64, random_state=0, device="cpu")
    est.fit(X[:1500])
    acc = [h["pretext_accuracy"] for h in est.history_]
    assert est.loss_curve_[0] > est.loss_curve_[1] > est.loss_curve_[2]
    assert acc[0] < acc[-1] and acc[-1] > 0.5  # chance is 1/30
    assert est.history_[-1]["inputs_per_s"] == pytest.approx(9 * est.history_[-1]["images_per_s"])


def test_transform_encodes_whole_images(fashion):
    X = fashion[0][:64]
    est = JigsawPretrainer(n_permutations=10, pooling="mean", max_epochs=1, random_state=0,
                           **SMALL).fit(X)
    features = est.transform(X)
    assert features.shape == (64, 16) and features.dtype == np.float32
    # each whole image is normalised on its own, as the patches are at fit
    x = torch.from_numpy(X[:, None] / 255.0).float()
    x = (x - est.channel_mean_[0]) / est.channel_std_[0]
    with torch.no_grad():
        expected = est.encoder_.eval()(normalize_patches(x)).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    # so brightness and contrast do not change the features (on the [0, 1] scale of
    # the uint8 training images: another scale is refused)
    np.testing.assert_allclose(est.transform(X / 255 * 0.5 + 0.1), features, rtol=1e-3,
                               atol=1e-4)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.permutations_, est.permutations_)
    np.testing.assert_array_equal(again.transform(X), features)
    assert again.score(X) == est.score(X)


@pytest.mark.parametrize(
    "params, shape, match",
    [
        ({"grid": 3}, (11, 20), r"at least 12x12 pixels .* got 11x20"),
        ({}, (7, 20), r"grid=2 needs images of at least 8x8 pixels .* got 7x20"),
        ({"n_permutations": 30}, (28, 28), r"exceeds the 24 orders .* n_permutations=\"auto\""),
        ({"grid": 2}, (7, 7), "at least 8x8 pixels"),
        ({"grid": 2, "n_permutations": 30}, (16, 16), "exceeds the 24 orders of 4 tiles"),
        ({"grid": 4}, (16, 16), "grid"),
        ({"n_permutations": 1001}, (16, 16), "n_permutations"),
        ({"grayscale_p": 1.5}, (16, 16), "grayscale_p"),
        ({"encoder": "vit_tiny"}, (28, 28), r"11x11 inputs .* whole 28x28 .* 'cnn' or 'resnet18'"),
    ],
)
def test_bad_parameters_and_small_images(params, shape, match):
    X = np.random.RandomState(0).rand(4, *shape)
    est = JigsawPretrainer(**{"max_epochs": 1, "device": "cpu", **params})
    with pytest.raises(ValueError, match=match):
        est.fit(X)


def test_turned_tiles_are_learnt_and_older_files_load_without_them(fashion):
    from skssl.persistence import _describe_estimator, _rebuild

    X = fashion[0][:1500]
    est = JigsawPretrainer(encoder_kwargs={"channels": (16, 32)}, max_epochs=3, batch_size=64,
                           random_state=0, device="cpu").fit(X)
    tiles, (_, turns) = est.pretext_batch(X[:300], random_state=1)
    net = est._build_network(est.encoder_, est.head_).eval()
    with torch.no_grad():
        logits = net(tiles)[:, len(est.permutations_):].unflatten(-1, (4, 4))
    # 0.37 after these 70 steps; chance is 0.25, with a standard deviation of 0.0125 over
    # these 1,200 tiles
    assert float((logits.argmax(-1) == turns).float().mean()) > 0.32
    # a file written before turn_tiles existed holds a head without the turns
    old = JigsawPretrainer(turn_tiles=False, max_epochs=1, random_state=0, **SMALL).fit(X[:64])
    tensors = {}
    document = _describe_estimator(old, "", tensors)
    del document["params"]["turn_tiles"]
    loaded = _rebuild(document, tensors, "old.skssl")
    assert loaded.turn_tiles is False
    np.testing.assert_array_equal(loaded.transform(X[:64]), old.transform(X[:64]))
