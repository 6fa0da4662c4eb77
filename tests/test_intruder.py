"""IntruderPretrainer."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import IntruderPretrainer
from skssl.datasets import load_fashion_mnist
from skssl.heads import TileHead
from skssl.ops import corrupt_tiles


def test_head_predicts_every_tile():
    X = load_digits().images[:100]
    est = IntruderPretrainer(grid=2, encoder_kwargs={"channels": (8,)}, max_epochs=1,
                             device="cpu", random_state=0).fit(X)
    maps = torch.zeros(3, est.encoder_.num_features, 4, 4)  # the encoder's feature maps
    tiles, turns = est.head_(maps)
    assert tiles.shape == (3, 4, 4) and turns.shape == (3, 4)
    assert 0 <= est.history_[0]["pretext_accuracy"] <= 1
    plain = IntruderPretrainer(grid=2, encoder_kwargs={"channels": (8,)}, max_epochs=1,
                               device="cpu", random_state=0, turn_images=False).fit(X)
    assert plain.head_(maps).shape == (3, 4, 4)
    assert plain.pretext_batch(X[:5])[1].shape == (5, 4)
    with pytest.raises(ValueError, match="sum to at most 1"):
        IntruderPretrainer(p_intruder=0.5, p_misplaced=0.5, p_rotated=0.5, max_epochs=1,
                           device="cpu").fit(X)


def test_tile_head_reads_each_tile_at_its_place():
    # A change of the feature map inside one tile's cell moves that tile's logits more
    # than any other tile's; the others still move a little, through the image mean.
    head = TileHead(8, grid=2, n_classes=4).eval()
    torch.manual_seed(0)
    head.norm.running_var.fill_(0.01)
    maps = torch.randn(1, 8, 4, 4)
    changed = maps.clone()
    changed[:, :, 2:, :2] += 3  # the bottom-left cell: tile 2 in row-major order
    moved = (head(changed) - head(maps)).abs().sum(-1)[0]
    assert moved.argmax() == 2
    with pytest.raises(ValueError, match="feature maps"):
        head(torch.zeros(2, 8))


def test_encoders_without_a_feature_map_get_the_pooled_mlp_head(no_map_encoder):
    X = load_digits().images[:64]
    est = IntruderPretrainer(encoder=no_map_encoder, grid=2, max_epochs=1, batch_size=32,
                             device="cpu", random_state=0).fit(X)
    tiles, turns = est.head_(torch.zeros(3, 8))
    assert tiles.shape == (3, 4, 4) and turns.shape == (3, 4)
    assert est.transform(X[:5]).shape == (5, 8)
    est.set_params(turn_images=False).fit(X)
    assert est.head_(torch.zeros(3, 8)).shape == (3, 4, 4)


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
    # The loss of a model that knows only how often each tile class occurs, and that
    # the 4 turns are equally likely.
    scaled = (torch.as_tensor(held_out, dtype=torch.float32)[:, None] / 255
              - float(est.channel_mean_[0])) / float(est.channel_std_[0])
    _, targets = corrupt_tiles(scaled, generator=torch.Generator().manual_seed(0))
    freq = targets.flatten().bincount(minlength=4).float() / targets.numel()
    prior_loss = float(-(freq * freq.log()).sum()) + math.log(4)
    assert -est.score(held_out) < prior_loss - 0.03


def test_turned_images_carry_their_tile_classes(fashion):
    # Every tile labelled intact is (nearly) the tile of the turned clean image at that
    # place, every corrupted one is not: the classes were turned with the image.
    X, _ = fashion
    est = IntruderPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1, batch_size=64,
                             device="cpu", random_state=0).fit(X[:64])
    corrupted, (classes, turns) = est.pretext_batch(X[:64])
    assert set(turns.tolist()) == {0, 1, 2, 3}
    clean = est._load(est._check_images(X[:64], reset=False), np.arange(64), "cpu")

    def tiles(img):
        return img.reshape(4, 7, 4, 7).transpose(1, 2).reshape(16, 49)

    for b in range(64):
        turned = torch.rot90(clean[b, 0], int(turns[b]))
        change = (tiles(corrupted[b, 0]) - tiles(turned)).abs().mean(1)
        assert bool((change[classes[b] == 0] < est.min_change).all())
        assert bool((change[classes[b] != 0] >= est.min_change).all())


def test_non_square_images_are_turned_by_half_turns():
    X = np.random.default_rng(0).random((40, 12, 16))
    est = IntruderPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1, batch_size=20,
                             device="cpu", random_state=0).fit(X)
    corrupted, (_, turns) = est.pretext_batch(X, random_state=1)
    assert corrupted.shape == (40, 1, 12, 16)
    assert set(turns.tolist()) == {0, 2}


def test_files_saved_before_similar_donors_keep_any_donor():
    from skssl.persistence import _describe_estimator, _rebuild

    X = load_digits().images[:64]
    old = IntruderPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1, batch_size=32,
                             similar_donors=None, device="cpu", random_state=0).fit(X)
    tensors = {}
    document = _describe_estimator(old, "", tensors)
    del document["params"]["similar_donors"]
    loaded = _rebuild(document, tensors, "old.skssl")
    assert loaded.similar_donors is None
    np.testing.assert_array_equal(loaded.transform(X), old.transform(X))
    assert IntruderPretrainer().similar_donors == 16
