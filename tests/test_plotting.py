"""skssl.plotting: pretext batches of every pretrainer, history, embeddings, and the extra."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

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
from skssl.ops import CONTEXT_OFFSETS

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skssl.plotting import plot_embedding, plot_history, show_pretext_batch  # noqa: E402

FAST = dict(encoder_kwargs={"channels": (4,)}, max_epochs=1, batch_size=32, random_state=0)
TINY_VIT = {"patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2}
N_SHOWN = 3


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    """64 digits upscaled to 16x16, floats on [0, 1], and their labels."""
    data = load_digits()
    return np.kron(data.images[:64], np.ones((2, 2))) / 16, data.target[:64]


def rotate(x, generator):
    inputs = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    return inputs, torch.arange(4, device=x.device).repeat_interleave(len(x))


def quadrant_tiles(x, generator):
    B, C, H, W = x.shape
    tiles = x.reshape(B, C, 2, H // 2, 2, W // 2).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(B, 4, C, H // 2, W // 2), (x.mean(dim=(1, 2, 3)) > 0).long()


def flips(x, generator):
    flipped = torch.rand(len(x), 2, generator=generator) < 0.5
    return x.flip(-1), flipped.float()


def _rotation_teacher(X):
    return FrozenEstimator(RotationPretrainer(**FAST).fit(X))


# name: (make the estimator from X, image axes per image, other axes per image)
METHODS = {
    "rotation": (lambda X: RotationPretrainer(**FAST), 2, 0),
    "rotation, all": (lambda X: RotationPretrainer(all_rotations=True, **FAST), 4, 0),
    "jigsaw": (lambda X: JigsawPretrainer(n_permutations=10, **FAST), 3, 0),
    "context": (lambda X: ContextPretrainer(**FAST), 4, 0),
    "intruder": (lambda X: IntruderPretrainer(**FAST), 2, 0),
    "simclr": (lambda X: SimCLRPretrainer(**FAST), 3, 0),
    "mae": (lambda X: MAEPretrainer(encoder_kwargs=TINY_VIT, decoder_dim=8, decoder_depth=1,
                                    max_epochs=1, random_state=0), 3, 0),
    "bow": (lambda X: BoWPretrainer(teacher=_rotation_teacher(X), n_words=8, **FAST), 2, 1),
    "custom": (lambda X: PretextPretrainer(rotate, n_outputs=4, **FAST), 4, 0),
}


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    return {name: make(X).fit(X) for name, (make, _, _) in METHODS.items()}


def _titles(fig):
    return [ax.get_title().replace("\n", " ") for ax in fig.axes]


@pytest.mark.parametrize("name", METHODS)
def test_every_pretrainer_draws_a_row_of_panels_per_image(name, fitted, digits):
    X, _ = digits
    _, n_image_axes, n_other_axes = METHODS[name]
    fig = show_pretext_batch(fitted[name], X, n_images=N_SHOWN)
    with_images = [ax for ax in fig.axes if ax.images]
    assert len(with_images) == N_SHOWN * n_image_axes
    assert len(fig.axes) == N_SHOWN * (n_image_axes + n_other_axes)
    assert all(ax.get_title() for ax in fig.axes)
    assert type(fitted[name]).__name__ in fig.get_suptitle()
    for ax in with_images:
        image = ax.images[0].get_array()
        assert image.ndim == 2 and np.nanmin(image) >= 0 and np.nanmax(image) <= 1


def test_rotation_titles_are_the_labels_and_the_images_come_back_on_the_scale_of_X(
    fitted, digits
):
    X, _ = digits
    _, turns = fitted["rotation"].pretext_batch(X[:2], random_state=0)
    fig = show_pretext_batch(fitted["rotation"], X, n_images=2)
    assert _titles(fig) == [t for k in turns.tolist() for t in ("upright", f"{90 * k}°")]
    for row, k in enumerate(turns.tolist()):  # un-normalised: the images of X (on [0, 1])
        np.testing.assert_allclose(fig.axes[2 * row].images[0].get_array(), X[row], atol=1e-5)
        np.testing.assert_allclose(fig.axes[2 * row + 1].images[0].get_array(),
                                   np.rot90(X[row], k), atol=1e-5)
    fig = show_pretext_batch(fitted["rotation, all"], X, n_images=2)
    assert _titles(fig) == ["0°", "90°", "180°", "270°"] * 2
    for row in range(2):  # the unrotated copies
        np.testing.assert_allclose(fig.axes[4 * row].images[0].get_array(), X[row], atol=1e-5)
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), np.rot90(X[0]), atol=1e-5)
    # On another scale (digits: 0 to 16), the images come back on [0, 1] all the same.
    rotation = RotationPretrainer(**FAST).fit(X * 16)
    shown = show_pretext_batch(rotation, X * 16, n_images=1).axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, X[0], atol=1e-5)


def test_jigsaw_and_context_titles_are_the_targets(fitted, digits):
    X, _ = digits
    _, (targets, turns) = fitted["jigsaw"].pretext_batch(X[:N_SHOWN], random_state=0)
    titles = _titles(show_pretext_batch(fitted["jigsaw"], X, n_images=N_SHOWN))
    assert titles[1::3] == [f"permutation {t}, turns " + " ".join(map(str, k))
                            for t, k in zip(targets.tolist(), turns.tolist(), strict=True)]
    assert titles[::3] == ["original"] * N_SHOWN
    assert titles[2::3] == ["put back"] * N_SHOWN

    _, targets = fitted["context"].pretext_batch(X[:N_SHOWN], random_state=0)
    titles = _titles(show_pretext_batch(fitted["context"], X, n_images=N_SHOWN))
    assert [title.split()[1] for title in titles[3::4]] == [str(t) for t in targets.tolist()]
    names = {(-1, 0): "(top)", (0, -1): "(left)", (1, 1): "(bottom-right)"}
    for title, target in zip(titles[3::4], targets.tolist(), strict=True):
        if CONTEXT_OFFSETS[target] in names:
            assert title.endswith(names[CONTEXT_OFFSETS[target]])


def test_intruder_outlines_every_corrupted_tile(fitted, digits):
    X, _ = digits
    _, (classes, turns) = fitted["intruder"].pretext_batch(X[:N_SHOWN], random_state=0)
    fig = show_pretext_batch(fitted["intruder"], X, n_images=N_SHOWN)
    for b, ax in enumerate(fig.axes[1::2]):
        assert len(ax.patches) == int((classes[b] != 0).sum())
        assert " ".join(ax.get_title().split()).endswith(f"turned {90 * int(turns[b])}°")


def test_bow_draws_the_target_bag_as_bars(fitted, digits):
    X, _ = digits
    bow = fitted["bow"]
    _, bags = bow.pretext_batch(X[:N_SHOWN], random_state=0)
    fig = show_pretext_batch(bow, X, n_images=N_SHOWN)
    bars = [ax for ax in fig.axes if not ax.images]
    assert len(bars) == N_SHOWN
    heights = [rect.get_height() for rect in bars[0].patches]
    np.testing.assert_allclose(heights, bags[0].numpy(), rtol=1e-6)


def test_custom_task_titles_are_its_targets(fitted, digits):
    X, _ = digits
    fig = show_pretext_batch(fitted["custom"], X, n_images=N_SHOWN)
    # rotate concatenates 4 copies: a row per copy, one column per image
    assert _titles(fig) == [str(k) for k in range(4) for _ in range(N_SHOWN)]


def test_custom_tiles_and_vector_targets(digits):
    X, _ = digits
    tiles = PretextPretrainer(quadrant_tiles, n_outputs=2, **FAST).fit(X)
    fig = show_pretext_batch(tiles, X, n_images=2)
    assert len(fig.axes) == 2
    # the 4 quadrants of 8x8 in a 2x2 mosaic, 1 pixel apart
    assert fig.axes[0].images[0].get_array().shape == (17, 17)

    vector = PretextPretrainer(flips, n_outputs=2, loss="bce", **FAST).fit(X)
    titles = _titles(show_pretext_batch(vector, X, n_images=2))
    assert len(titles) == 2
    assert all(t.startswith("[") and t.endswith("]") and len(t.split()) == 2 for t in titles)


def test_rgb_images_are_drawn_in_colour():
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, size=(16, 16, 16, 3)).astype(np.uint8)
    for est in (SimCLRPretrainer(**FAST), JigsawPretrainer(n_permutations=4, **FAST)):
        fig = show_pretext_batch(est.fit(X), X, n_images=2)
        shapes = {ax.images[0].get_array().shape[-1] for ax in fig.axes}
        assert shapes == {3}
    # the original of uint8 images is X / 255
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), X[0] / 255, atol=1e-6)


def test_options_frozen_estimator_subfigure_and_few_images(fitted, digits):
    X, _ = digits
    fig = show_pretext_batch(FrozenEstimator(fitted["simclr"]), X[:2], n_images=10)
    assert len(fig.axes) == 2 * 3  # X has 2 images
    figure = plt.figure()
    left, right = figure.subfigures(1, 2)
    assert show_pretext_batch(fitted["rotation"], X, n_images=1, fig=left) is left
    plot_history(fitted["rotation"], ax=right.subplots())
    assert len(figure.axes) == 2 + 2  # upright and turned; loss and accuracy
    with pytest.raises(ValueError, match="n_images"):
        show_pretext_batch(fitted["rotation"], X, n_images=0)


def test_unfitted_or_not_a_pretrainer(digits):
    X, y = digits
    with pytest.raises(NotFittedError, match="show_pretext_batch draws a fitted pretrainer"):
        show_pretext_batch(RotationPretrainer(), X)
    with pytest.raises(NotFittedError, match="Call fit first"):
        plot_history(IntruderPretrainer())
    with pytest.raises(TypeError, match="an skssl pretrainer"):
        show_pretext_batch(VisualBoW(n_words=4).fit(X), X)


def test_plot_history_loss_and_accuracy_when_defined(fitted, digits):
    X, _ = digits
    rotation = RotationPretrainer(**{**FAST, "max_epochs": 3}).fit(X)
    ax = plot_history(rotation)
    assert len(ax.figure.axes) == 2
    loss, = ax.get_lines()
    np.testing.assert_allclose(loss.get_ydata(), rotation.loss_curve_)
    np.testing.assert_array_equal(loss.get_xdata(), [1, 2, 3])
    accuracy, = ax.figure.axes[1].get_lines()
    np.testing.assert_allclose(accuracy.get_ydata(),
                               [h["pretext_accuracy"] for h in rotation.history_])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "pretext loss", "pretext accuracy"]
    # MAE is a regression: no accuracy, no second axis
    ax = plot_history(fitted["mae"])
    assert len(ax.figure.axes) == 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pretext loss"]


@pytest.mark.parametrize("method, name", [("pca", "PCA"), ("tsne", "t-SNE")])
def test_plot_embedding(method, name, digits):
    X, y = digits
    features = X.reshape(len(X), -1)
    ax = plot_embedding(features, y, method=method)
    assert ax.get_xlabel() == f"{name} 1"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [str(k) for k in np.unique(y)]
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(X)


def test_plot_embedding_without_labels_and_errors(digits):
    X, y = digits
    features = X.reshape(len(X), -1)
    ax = plot_embedding(features)
    assert ax.get_legend() is None and len(ax.collections) == 1
    names = np.array(["even", "odd"])[y % 2]
    legend = plot_embedding(features, names).get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["even", "odd"]
    with pytest.raises(ValueError, match="pca"):
        plot_embedding(features, y, method="umap")
    with pytest.raises(ValueError, match="labels must have shape"):
        plot_embedding(features, y[:10])


def test_missing_matplotlib_says_how_to_install_it(monkeypatch, fitted, digits):
    X, y = digits
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    for call in (
        lambda: show_pretext_batch(fitted["rotation"], X),
        lambda: plot_history(fitted["rotation"]),
        lambda: plot_embedding(X.reshape(len(X), -1), y),
    ):
        with pytest.raises(ImportError, match=r'pip install "skssl\[plot\]"'):
            call()


def test_importing_skssl_does_not_import_matplotlib():
    code = "import sys, skssl, skssl.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
