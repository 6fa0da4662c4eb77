"""Figures: what a pretrainer's network sees and must predict, its training, its features.

Needs matplotlib, the ``plot`` extra (``pip install "skssl[plot]"``). Neither
``import skssl`` nor ``import skssl.plotting`` imports matplotlib: the functions import
it when called, and say how to install it when it is missing.

- :func:`show_pretext_batch`: a pretext batch as the training loop makes it, for every
  pretrainer of skssl (and any task of a :class:`~skssl.PretextPretrainer`).
- :func:`plot_history`: the pretext loss and accuracy per epoch (``history_``).
- :func:`plot_embedding`: features in two dimensions (PCA or t-SNE), coloured by label.
"""

import math
import textwrap
from collections import namedtuple
from itertools import zip_longest
from numbers import Integral

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.manifold import TSNE
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from .base import BasePretrainer
from .ops import CONTEXT_OFFSETS, TILE_CLASSES
from .ops.tiles import _tile_layout
from .pretext.bow import BoWPretrainer
from .pretext.context import ContextPretrainer
from .pretext.intruder import IntruderPretrainer
from .pretext.jigsaw import JigsawPretrainer
from .pretext.mae import MAEPretrainer
from .pretext.rotation import RotationPretrainer
from .pretext.simclr import SimCLRPretrainer

__all__ = ["plot_embedding", "plot_history", "show_pretext_batch"]

# One panel of a pretext figure: an image in [0, 1] ((h, w) or (h, w, 3)) or None for
# a panel that `draw(ax)` fills alone, its title, and what to draw on top.
_Panel = namedtuple("_Panel", "image title draw", defaults=(None, "", None))
# The grey of the empty cells of the context layout, and the colour of the gaps between
# tiles (gray mosaics mark them NaN, drawn in that colour).
_EMPTY = 0.85
_GAP = (0.35, 0.55, 0.85)
# Panel size in inches, and the characters of a panel title's line.
_PANEL = 1.6
_TITLE_CHARS = 22
# Generic tasks: at most this many inputs per row, and rows.
_MAX_COLUMNS = 8
_MAX_ROWS = 4


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'skssl.plotting needs matplotlib, the "plot" extra: pip install "skssl[plot]" '
            "(or pip install matplotlib)."
        ) from exc
    return plt


def _fitted_pretrainer(estimator, function):
    """The fitted pretrainer that ``function`` draws (unwrapping a FrozenEstimator)."""
    if isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    if not isinstance(estimator, BasePretrainer):
        raise TypeError(
            f"{function} draws an skssl pretrainer (a BasePretrainer), got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(
        estimator,
        msg=(
            f"This %(name)s instance is not fitted yet: {function} draws a fitted "
            "pretrainer, since the batch depends on what fit learnt (the normalisation, "
            "jigsaw's permutations, a teacher's vocabulary). Call fit first: one epoch "
            "(max_epochs=1) on a few images is enough to look at the task."
        ),
    )
    return estimator


# ---------------------------------------------------------------------- display scale
def _unit(estimator, images, raw):
    """Images onto [0, 1] for display: ``raw`` ones on the scale of X, others on the
    scale the channel statistics were learnt on (``input_scale_``)."""
    scale = estimator.input_scale_
    if scale == "uint8":
        low, high = 0.0, (255.0 if raw else 1.0)
    else:
        low, high = scale
    return np.clip((images - low) / max(high - low, 1e-12), 0.0, 1.0)


def _hwc(images):
    """``(..., C, h, w)`` to what imshow draws: ``(..., h, w)`` or ``(..., h, w, 3)``.

    Images of other than 1 or 3 channels are drawn as the mean of their channels.
    """
    C = images.shape[-3]
    if C == 3:
        return np.moveaxis(images, -3, -1)
    return images[..., 0, :, :] if C == 1 else images.mean(axis=-3)


def _denormalized(estimator, inputs):
    """Inputs normalised with the channel statistics, back on [0, 1], drawable."""
    inputs = inputs.detach().float().cpu().numpy()
    shape = (-1, 1, 1)
    images = inputs * estimator.channel_std_.reshape(shape) + estimator.channel_mean_.reshape(shape)
    return _hwc(_unit(estimator, images, raw=False))


def _stretched(inputs):
    """Patches normalised on their own (jigsaw, context): each stretched onto [0, 1]."""
    inputs = inputs.detach().float().cpu().numpy()
    low = inputs.min(axis=(-3, -2, -1), keepdims=True)
    high = inputs.max(axis=(-3, -2, -1), keepdims=True)
    return _hwc((inputs - low) / np.maximum(high - low, 1e-12))


def _as_images(estimator, X):
    """``X`` (any accepted layout, on its own scale) as ``(n, C, H, W)`` on [0, 1]."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    elif hasattr(X, "to_numpy"):
        X = X.to_numpy()
    images = np.asarray(X, dtype=np.float32).reshape(len(X), *estimator.image_shape_)
    return _unit(estimator, images.transpose(0, 3, 1, 2), raw=True)


def _mosaic(tiles, columns, gap=1):
    """Tiles ``(T, h, w[, 3])`` in a grid of ``columns``, ``gap`` pixels apart."""
    T, h, w = tiles.shape[:3]
    rows = math.ceil(T / columns)
    fill = np.array(_GAP) if tiles.ndim == 4 else np.nan
    canvas = np.empty((rows * (h + gap) - gap, columns * (w + gap) - gap, *tiles.shape[3:]))
    canvas[...] = fill
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return canvas


# ---------------------------------------------------------------------- the methods
def _rotation(est, X, random_state):
    inputs, targets = est.pretext_batch(X, random_state=random_state)
    images, B = _denormalized(est, inputs), len(X)
    if not est.all_rotations:  # one turn per image: the upright image, then the turned
        rows = [[_Panel(np.rot90(images[b], -t, axes=(0, 1)), "upright"),
                 _Panel(images[b], f"{90 * t}°")] for b, t in enumerate(targets.tolist())]
        return rows, "by how many degrees was each image rotated?"
    # rotations(): inputs[k * B + b] is image b turned by k quarter turns.
    rows = [
        [_Panel(images[k * B + b], f"{90 * int(targets[k * B + b])}°") for k in range(4)]
        for b in range(B)
    ]
    return rows, "by how many degrees was each copy rotated?"


def _cell_numbers(cells, grid, size):
    """Write on each tile of a mosaic the cell it comes from."""

    def draw(ax):
        for i, cell in enumerate(cells):
            r, c = divmod(i, grid)
            ax.text(c * (size + 1) - 0.5, r * (size + 1) - 0.5, str(cell), color="red",
                    fontsize=6, ha="left", va="top", fontweight="bold",
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "linewidth": 0})

    return draw


def _jigsaw(est, X, random_state):
    tiles, targets = est.pretext_batch(X, random_state=random_state)
    # turn_tiles=True: the targets are the permutation and each tile's quarter turns
    orders, turns = targets if est.turn_tiles else (targets, None)
    shown, originals = _stretched(tiles), _hwc(_as_images(est, X))
    grid = est._grid  # what grid="auto" chose at fit
    rows = []
    for b, target in enumerate(orders.tolist()):
        cells = est.permutations_[target]  # tile i is from cell cells[i]
        upright, title = shown[b], f"permutation {target}"
        if turns is not None:  # tile i was turned by turns[b, i] quarter turns
            upright = np.stack([np.rot90(tile, -k, axes=(0, 1))
                                for tile, k in zip(upright, turns[b].tolist(), strict=True)])
            title += ", turns " + " ".join(map(str, turns[b].tolist()))
        solved = np.empty_like(upright)
        solved[cells] = upright
        rows.append([
            _Panel(originals[b], "original"),
            _Panel(_mosaic(shown[b], grid), title, _cell_numbers(cells, grid, shown.shape[2])),
            _Panel(_mosaic(solved, grid), "put back"),
        ])
    question = f"which of {len(est.permutations_)} permutations shuffled the tiles"
    if turns is not None:
        question += ", and how many quarter turns turned each"
    return rows, question + "? (red: the cell each tile comes from)"


def _position(target):
    dr, dc = CONTEXT_OFFSETS[target]
    row, column = {-1: "top", 1: "bottom"}.get(dr), {-1: "left", 1: "right"}.get(dc)
    return "-".join(filter(None, (row, column)))


def _context(est, X, random_state):
    pairs, targets = est.pretext_batch(X, random_state=random_state)
    shown, originals = _stretched(pairs), _hwc(_as_images(est, X))
    rows = []
    for b, target in enumerate(targets.tolist()):
        centre, neighbour = shown[b]
        layout = np.full((9, *centre.shape), _EMPTY)
        dr, dc = CONTEXT_OFFSETS[target]
        layout[4], layout[(1 + dr) * 3 + 1 + dc] = centre, neighbour
        rows.append([
            _Panel(originals[b], "original"),
            _Panel(centre, "centre"),
            _Panel(neighbour, "neighbour"),
            _Panel(_mosaic(layout, 3), f"answer: {target} ({_position(target)})"),
        ])
    return rows, "where is the neighbour patch, relative to the centre one? (8 classes)"


def _tile_marks(est, classes, image_size):
    """Outline and letter every corrupted tile of an image, in its class's colour."""
    grid = est.grid
    layout = [_tile_layout(size, min(grid, size)) for size in image_size]

    def draw(ax):
        from matplotlib.patches import Rectangle

        (_, row_start, row_len), (_, col_start, col_len) = layout
        for label, kind in enumerate(classes):
            r, c = divmod(label, grid)
            if kind == 0 or r >= len(row_start) or c >= len(col_start):
                continue
            top, left = int(row_start[r]) - 0.5, int(col_start[c]) - 0.5
            ax.add_patch(Rectangle((left, top), int(col_len[c]), int(row_len[r]), fill=False,
                                   edgecolor=f"C{kind}", linewidth=1.5))
            ax.text(left + 0.5, top + 0.5, TILE_CLASSES[kind][0].upper(), color=f"C{kind}",
                    fontsize=6, ha="left", va="top", fontweight="bold")

    return draw


def _intruder(est, X, random_state):
    corrupted, targets = est.pretext_batch(X, random_state=random_state)
    tile_classes, turns = targets if isinstance(targets, tuple) else (targets, None)
    shown, originals = _denormalized(est, corrupted), _hwc(_as_images(est, X))
    rows = []
    for b, classes in enumerate(tile_classes.tolist()):
        counts = np.bincount(classes, minlength=len(TILE_CLASSES))
        title = ", ".join(f"{counts[k]} {TILE_CLASSES[k]}" for k in range(1, len(counts))
                          if counts[k]) or "all intact"
        if turns is not None:
            title += f"; turned {90 * int(turns[b])}°"
        rows.append([
            _Panel(originals[b], "original"),
            _Panel(shown[b], title, _tile_marks(est, classes, corrupted.shape[-2:])),
        ])
    question = f"which of the {est.grid}x{est.grid} tiles do not belong?"
    if turns is not None:
        question += " how far was the image turned?"
    return rows, question + " (I intruder, M misplaced, R rotated; the rest intact)"


def _simclr(est, X, random_state):
    views, _ = est.pretext_batch(X, random_state=random_state)
    shown, originals, B = _denormalized(est, views), _hwc(_as_images(est, X)), len(X)
    # Rows b and B + b are the two views of image b.
    rows = [
        [_Panel(originals[b], "original"), _Panel(shown[b], "view 1"),
         _Panel(shown[B + b], "view 2")]
        for b in range(B)
    ]
    return rows, (
        "which view of the batch comes from the same image? "
        f"(the {2 * B - 2} others are negatives)"
    )


def _mae(est, X, random_state):
    # MAE's step has no (inputs, targets) batch: reconstruct() shows the task.
    images = [_hwc(_as_images(est, a)) for a in est.reconstruct(X, random_state=random_state)]
    titles = ("original", f"masked: {est.mask_ratio:.0%} hidden", "reconstruction")
    rows = [[_Panel(a[b], t) for a, t in zip(images, titles, strict=True)] for b in range(len(X))]
    return rows, "reconstruct the hidden patches from the visible ones"


def _bag(bag):
    def draw(ax):
        ax.bar(np.arange(len(bag)), bag, width=1.0, color="C0")
        ax.set_xlim(-0.5, len(bag) - 0.5)
        ax.set_xlabel("word", fontsize="x-small")
        ax.tick_params(labelsize="x-small")

    return draw


def _bow(est, X, random_state):
    views, bags = est.pretext_batch(X, random_state=random_state)
    shown, originals = _denormalized(est, views), _hwc(_as_images(est, X))
    rows = [
        [_Panel(originals[b], "original"), _Panel(shown[b], "perturbed input"),
         _Panel(None, "target: bag of words", _bag(bags[b].float().cpu().numpy()))]
        for b in range(len(X))
    ]
    return rows, (
        f"which of {est.n_words} visual words does the teacher see in the clean image?"
    )


def _format_target(target):
    target = target.detach().cpu()
    exact = not target.is_floating_point()
    if target.ndim == 0:
        return str(int(target)) if exact else f"{float(target):.3g}"
    values = target.flatten().tolist()
    shown = 8 if exact else 4
    text = " ".join(str(int(v)) if exact else f"{v:.2g}" for v in values[:shown])
    return f"[{text}{' …' if len(values) > shown else ''}]"


def _generic(est, X, random_state):
    inputs, targets = est.pretext_batch(X, random_state=random_state)
    if inputs.ndim == 5:  # (N, T, C, h, w): a mosaic of the T tiles of each input
        T = inputs.shape[1]
        side = math.isqrt(T)
        columns = side if side * side == T else T
        images = [_mosaic(tiles, columns) for tiles in _denormalized(est, inputs)]
    else:
        images = _denormalized(est, inputs)
    N, B = len(images), len(X)
    # A task that concatenates transformed copies (as rotations) gets a row per copy.
    columns = B if N % B == 0 and B <= _MAX_COLUMNS else min(N, _MAX_COLUMNS)
    shown = min(N, columns * _MAX_ROWS)
    titles = [""] * shown if targets is None else [_format_target(t) for t in targets[:shown]]
    panels = [_Panel(images[i], titles[i]) for i in range(shown)]
    rows = [panels[start : start + columns] for start in range(0, shown, columns)]
    more = f"; {shown} of {N} inputs" if shown < N else ""
    return rows, f"the inputs, titled with their targets{more}"


# The drawing of each method; other pretrainers (PretextPretrainer, subclasses of
# BasePretrainer) get the generic one.
_DRAWINGS = (
    (RotationPretrainer, _rotation),
    (JigsawPretrainer, _jigsaw),
    (ContextPretrainer, _context),
    (IntruderPretrainer, _intruder),
    (SimCLRPretrainer, _simclr),
    (MAEPretrainer, _mae),
    (BoWPretrainer, _bow),
)


def show_pretext_batch(estimator, X, *, n_images=4, random_state=0, fig=None):
    """Draw what a pretrainer's network sees, and what it must predict.

    The first ``n_images`` images of ``X`` become a pretext batch, exactly as the
    training loop makes one (:meth:`~skssl.base.BasePretrainer.pretext_batch`), and
    each image gets a row of panels:

    - :class:`~skssl.RotationPretrainer`: the image upright and turned, titled with
      the label in degrees (0, 90, 180, 270); with ``all_rotations=True``, its four
      rotated copies;
    - :class:`~skssl.JigsawPretrainer`: the original, the shuffled tiles in the order
      the network sees them (each marked in red with the cell it comes from), titled
      with the permutation class, and the tiles put back;
    - :class:`~skssl.ContextPretrainer`: the original, the centre and the neighbour
      patches, and the answer: where the neighbour sits around the centre;
    - :class:`~skssl.IntruderPretrainer`: the original and the corrupted image, every
      corrupted tile outlined with its class (intruder, misplaced, rotated) and the
      image turned as the pretext batch turns it (with ``turn_images``);
    - :class:`~skssl.SimCLRPretrainer`: the original and its two augmented views;
    - :class:`~skssl.MAEPretrainer`: the original, the masked input and the
      reconstruction (:meth:`~skssl.MAEPretrainer.reconstruct`: MAE's step makes no
      ``(inputs, targets)`` batch);
    - :class:`~skssl.BoWPretrainer`: the original, the perturbed copy the student sees,
      and the target, the teacher's bag of words of the clean image (bars);
    - any other pretrainer (:class:`~skssl.PretextPretrainer`): the task's inputs in
      batch order, titled with their targets (integers, or the first values of a
      vector). When the task returns a multiple of ``n_images`` inputs (transformed
      copies concatenated), each row holds ``n_images`` inputs; tiles ``(N, T, C, h,
      w)`` are drawn as a mosaic per input. At most 4 rows are drawn.

    Images are drawn as the network sees them, with the normalisation undone: inputs
    standardised with the channel statistics are brought back to the scale of ``X``
    (``channel_mean_``, ``channel_std_``, ``input_scale_``); patches normalised on
    their own (jigsaw's tiles, context's patches) are stretched to full contrast,
    since their brightness is gone. Originals are shown on the scale of ``X``, gray
    or RGB; images of other channel counts are drawn as the mean of their channels.

    Parameters
    ----------
    estimator : skssl pretrainer
        A fitted pretrainer, or a ``FrozenEstimator`` of one. It must be fitted: the
        batch depends on what fit learnt (the normalisation, jigsaw's permutations,
        a teacher's vocabulary); one epoch on a few images is enough to look at a task.
    X : array-like, memmap or torch.Tensor
        Images of the shape seen at fit, in any layout the estimator accepts.
    n_images : int, default=4
        How many of the first images of ``X`` to draw (all of ``X`` if it has fewer).
    random_state : int, default=0
        Seed of the pretext randomness (rotations, tiles, crops, masks).
    fig : matplotlib Figure or SubFigure, default=None
        Where to draw; ``None`` makes a new figure sized for the panels.

    Returns
    -------
    fig : matplotlib Figure or SubFigure
        The figure, a grid of ``n_images`` rows of panels titled with their content,
        and a title saying what the network must predict.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.
    ImportError
        When matplotlib is not installed.

    See Also
    --------
    skssl.base.BasePretrainer.pretext_batch : The batch itself, as tensors.
    plot_history : The training of the same estimator.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from skssl import RotationPretrainer
    >>> from skssl.plotting import show_pretext_batch
    >>> X = load_digits().images[:64]
    >>> rot = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1).fit(X)
    >>> fig = show_pretext_batch(rot, X, n_images=2)
    >>> len(fig.axes), [ax.get_title() for ax in fig.axes]  # each image upright and turned
    (4, ['upright', '0°', 'upright', '270°'])
    >>> plt.close(fig)
    """
    plt = _pyplot()
    est = _fitted_pretrainer(estimator, "show_pretext_batch")
    if not isinstance(n_images, Integral) or isinstance(n_images, bool) or n_images < 1:
        raise ValueError(f"n_images must be a positive int, got {n_images!r}.")
    X = X[: int(n_images)]
    draw = next((draw for cls, draw in _DRAWINGS if isinstance(est, cls)), _generic)
    try:
        rows, question = draw(est, X, int(random_state))
    except NotImplementedError as exc:
        raise TypeError(
            f"show_pretext_batch cannot draw {type(est).__name__}: it makes no "
            f"(inputs, targets) batch ({exc})"
        ) from None

    n_rows, n_columns = len(rows), max(len(row) for row in rows)
    if fig is None:
        fig = plt.figure(figsize=(0.3 + _PANEL * n_columns, 0.8 + 1.1 * _PANEL * n_rows),
                         layout="constrained")
    gray = plt.get_cmap("gray").with_extremes(bad=_GAP)
    axes = fig.subplots(n_rows, n_columns, squeeze=False)
    for row_axes, row in zip(axes, rows, strict=True):
        for ax, panel in zip_longest(row_axes, row):
            if panel is None:
                ax.set_axis_off()
                continue
            if panel.image is not None:
                ax.imshow(panel.image, cmap=gray, vmin=0.0, vmax=1.0, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
            if panel.draw is not None:
                panel.draw(ax)
            title = textwrap.fill(panel.title, _TITLE_CHARS, break_on_hyphens=False)
            ax.set_title(title, fontsize="small")
    # About 12 characters of the title's font per inch.
    width = int(12 * fig.bbox.width / fig.dpi)
    name = type(est).__name__
    task = getattr(est, "task", None)  # PretextPretrainer's: say which
    if callable(task):
        name += f"({getattr(task, '__name__', type(task).__name__)})"
    question = f"{name}: {question}"
    fig.suptitle(textwrap.fill(question, width, break_on_hyphens=False), fontsize="medium")
    return fig


def plot_history(estimator, ax=None):
    """Plot the pretext loss, and accuracy where defined, of every training epoch.

    Reads ``history_``: the loss on the left axis, the pretext accuracy (when the
    method defines one: not MAE's, a regression) on a second axis on the right, from 0
    to 1, both against the epoch.

    Parameters
    ----------
    estimator : skssl pretrainer
        A fitted pretrainer, or a ``FrozenEstimator`` of one.
    ax : matplotlib Axes, default=None
        Where to plot the loss; ``None`` makes a new figure. The accuracy goes on
        ``ax.twinx()``.

    Returns
    -------
    ax : matplotlib Axes
        The axes of the loss.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.

    See Also
    --------
    show_pretext_batch : What the network learns from.

    Examples
    --------
    A pretrainer frozen inside a Pipeline is drawn the same way:

    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skssl import RotationPretrainer
    >>> from skssl.plotting import plot_history
    >>> rot = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=2)
    >>> frozen = FrozenEstimator(rot.fit(load_digits().images[:64]))
    >>> ax = plot_history(frozen)
    >>> ax.get_ylabel(), len(ax.figure.axes)  # the accuracy has an axis of its own
    ('pretext loss', 2)
    >>> plt.close(ax.figure)
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    est = _fitted_pretrainer(estimator, "plot_history")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    epochs = [entry["epoch"] for entry in est.history_]
    lines = ax.plot(epochs, [entry["loss"] for entry in est.history_], "o-", color="C0",
                    label="pretext loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("pretext loss")
    ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    accuracy = [(entry["epoch"], entry["pretext_accuracy"]) for entry in est.history_
                if entry.get("pretext_accuracy") is not None]
    if accuracy:
        twin = ax.twinx()
        epochs, values = zip(*accuracy, strict=True)
        lines += twin.plot(epochs, values, "s--", color="C1", label="pretext accuracy")
        twin.set_ylim(0, 1)
        twin.set_ylabel("pretext accuracy")
    ax.legend(handles=lines, loc="center right", fontsize="small")
    ax.set_title(f"{type(est).__name__}: {len(epochs)} epoch(s)")
    return ax


def plot_embedding(features, labels=None, *, method="pca", ax=None, random_state=0):
    """Scatter features in two dimensions (PCA or t-SNE), coloured by label.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        E.g. a pretrainer's :meth:`~skssl.base.BasePretrainer.transform`, or raw pixels
        to compare with (a DataFrame of ``set_output(transform="pandas")`` works).
    labels : array-like of shape (n_samples,), default=None
        Classes (numbers or names), one colour and legend entry each; ``None`` draws
        every point alike.
    method : {"pca", "tsne"}, default="pca"
        scikit-learn's ``PCA`` (fast, linear: the directions of largest variance) or
        ``TSNE`` (slower, nonlinear: keeps neighbours together; perplexity
        ``min(30, (n_samples - 1) / 3)``, PCA initialisation).
    ax : matplotlib Axes, default=None
        Where to draw; ``None`` makes a new figure.
    random_state : int, default=0
        Seed of the projection.

    Returns
    -------
    ax : matplotlib Axes

    See Also
    --------
    sklearn.decomposition.PCA, sklearn.manifold.TSNE : The projections.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from skssl.plotting import plot_embedding
    >>> X, y = load_digits(return_X_y=True)
    >>> ax = plot_embedding(X[:100], y[:100], method="pca")
    >>> ax.get_xlabel(), len(ax.get_legend().get_texts())
    ('PCA 1', 10)
    >>> plt.close(ax.figure)
    """
    plt = _pyplot()
    points = check_array(features, dtype=np.float64)
    n = len(points)
    if method == "pca":
        points, name = PCA(n_components=2, random_state=random_state).fit_transform(points), "PCA"
    elif method == "tsne":
        tsne = TSNE(n_components=2, perplexity=min(30.0, max((n - 1) / 3, 1.0)), init="pca",
                    random_state=random_state)
        points, name = tsne.fit_transform(points), "t-SNE"
    else:
        raise ValueError(f'method must be "pca" or "tsne", got {method!r}.')
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=8, color="C0")
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(
                f"labels must have shape ({n},), one per row of features; got {labels.shape}."
            )
        classes = np.unique(labels)
        colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, label in enumerate(classes):
            chosen = labels == label
            ax.scatter(points[chosen, 0], points[chosen, 1], s=8, label=str(label),
                       color=colours(i % colours.N))
        ax.legend(title="label", fontsize="small", markerscale=2, loc="center left",
                  bbox_to_anchor=(1.01, 0.5), ncols=1 if len(classes) <= 20 else 2)
    # The coordinates themselves mean little (nothing at all for t-SNE).
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_title(f"{name} of {n} samples")
    return ax
