"""IntruderPretrainer and its corruption, corrupt_tiles."""

import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import IntruderPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.pretext.intruder import INTACT, INTRUDER, MISPLACED, ROTATED, corrupt_tiles


def _tiles(img, grid):
    """The ``grid x grid`` tiles of ``img`` (C, H, W), as corrupt_tiles cuts them."""
    height, width = img.shape[1:]
    rows = [(i * height + grid - 1) // grid for i in range(grid + 1)]
    cols = [(j * width + grid - 1) // grid for j in range(grid + 1)]
    return [img[:, rows[i] : rows[i + 1], cols[j] : cols[j + 1]]
            for i in range(grid) for j in range(grid)]


def _fit(tile, size):
    rows = torch.arange(size[0]).clamp(max=tile.shape[1] - 1)
    cols = torch.arange(size[1]).clamp(max=tile.shape[2] - 1)
    return tile[:, rows][:, :, cols]


@pytest.mark.parametrize("shape, grid", [((6, 1, 28, 28), 4), ((5, 3, 10, 13), 3)])
def test_each_tile_is_what_its_target_says(shape, grid):
    x = torch.randn(shape)
    out, targets = corrupt_tiles(x, grid, 0.3, 0.3, 0.3, min_change=0.0,
                                 generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and targets.shape == (len(x), grid * grid)
    assert targets.dtype == torch.int64
    assert set(targets.unique().tolist()) == {INTACT, INTRUDER, MISPLACED, ROTATED}
    for b in range(len(x)):
        before, after = _tiles(x[b], grid), _tiles(out[b], grid)
        others = [_tiles(x[d], grid) for d in range(len(x)) if d != b]
        for t, kind in enumerate(targets[b].tolist()):
            tile = after[t]
            if kind == INTACT:
                assert torch.equal(tile, before[t])
            elif kind == INTRUDER:  # the same tile of another image
                assert any(torch.equal(tile, other[t]) for other in others)
            elif kind == ROTATED:
                assert torch.equal(tile, before[t].flip(-1, -2))
            else:  # another tile of the same image, cut (or edge-padded) to this size
                assert any(torch.equal(tile, _fit(src, tile.shape[1:]))
                           for s, src in enumerate(before) if s != t)


def test_corruptions_that_change_nothing_are_intact():
    x = torch.zeros(4, 1, 8, 8)
    x[0, :, :4, :4] = torch.arange(16.0).reshape(4, 4)  # one textured tile in one image
    out, targets = corrupt_tiles(x, 2, 0.4, 0.3, 0.3, generator=torch.Generator().manual_seed(1))
    changed = torch.stack([torch.stack([(a != b).any() for a, b in zip(
        _tiles(out[i], 2), _tiles(x[i], 2), strict=True)]) for i in range(4)])
    torch.testing.assert_close(targets != INTACT, changed)
    assert changed.sum() < 4 * 4  # most corruptions moved zeros over zeros


def test_probabilities_and_determinism():
    x = torch.randn(8, 1, 12, 12)
    _, all_intruders = corrupt_tiles(x, 3, 1.0, 0.0, 0.0, generator=torch.Generator())
    assert (all_intruders == INTRUDER).all()
    _, nothing = corrupt_tiles(x, 3, 0.0, 0.0, 0.0, generator=torch.Generator())
    assert (nothing == INTACT).all()
    a = corrupt_tiles(x, generator=torch.Generator().manual_seed(5))
    b = corrupt_tiles(x, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="sum to at most 1; got 0.6, 0.3 and 0.2"):
        corrupt_tiles(x, 3, 0.6, 0.3, 0.2, generator=torch.Generator())


def test_images_smaller_than_the_grid():
    x = torch.randn(4, 1, 1, 7)
    out, targets = corrupt_tiles(x, 4, 0.3, 0.3, 0.3, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # one row of tiles: the three rows of labels below it are always intact
    assert (targets.reshape(4, 4, 4)[:, 1:] == INTACT).all()


def test_head_predicts_every_tile():
    X = load_digits().images[:100]
    est = IntruderPretrainer(grid=2, encoder_kwargs={"channels": (8,)}, max_epochs=1,
                             device="cpu", random_state=0).fit(X)
    net = est._build_network(est.encoder_, est.head_)
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 4, 4)
    assert 0 <= est.history_[0]["pretext_accuracy"] <= 1
    with pytest.raises(ValueError, match="sum to at most 1"):
        IntruderPretrainer(p_intruder=0.5, p_misplaced=0.5, p_rotated=0.5, max_epochs=1,
                           device="cpu").fit(X)


def test_pipeline_and_grid_search():
    d = load_digits()
    X, y = d.data[:300], d.target[:300]
    pipe = make_pipeline(
        IntruderPretrainer(encoder_kwargs={"channels": (8, 16)}, batch_size=64, max_epochs=1,
                           device="cpu", random_state=0),
        StandardScaler(),
        LogisticRegression(),
    )
    search = GridSearchCV(pipe, {"intruderpretrainer__grid": [2, 4]}, cv=2).fit(X, y)
    assert search.best_params_["intruderpretrainer__grid"] in (2, 4)
    assert search.score(X, y) > 0.5


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist(subset="test", return_X_y=True)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_learns_tile_content_on_real_images(fashion):
    X, _ = fashion
    # Three stages: the pooled features must see past a tile to judge it.
    est = IntruderPretrainer(encoder_kwargs={"channels": (16, 32, 64)}, max_epochs=4,
                             batch_size=32, random_state=0, device="cpu").fit(X[:2000])
    losses = est.loss_curve_
    assert losses[0] > losses[1] > losses[2] > losses[3]
    held_out = X[5000:5500]
    # The loss of a model that knows only how often each class occurs.
    scaled = (torch.as_tensor(held_out, dtype=torch.float32)[:, None] / 255
              - float(est.channel_mean_[0])) / float(est.channel_std_[0])
    _, targets = corrupt_tiles(scaled, generator=torch.Generator().manual_seed(0))
    freq = targets.flatten().bincount(minlength=4).float() / targets.numel()
    prior_loss = float(-(freq * freq.log()).sum())
    assert -est.score(held_out) < prior_loss - 0.03
