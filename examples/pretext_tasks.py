"""Every pretext task of skssl in one picture: what each network sees and must predict.

A pretext task turns unlabelled images into a supervised problem whose answer is in the
images themselves. This script fits each pretrainer briefly on Fashion-MNIST's training
images, without their labels, and draws one pretext batch of each on the same test
images with ``skssl.plotting.show_pretext_batch``, exactly as its training loop makes
one:

- ``RotationPretrainer``: an image turned by 0-3 quarter turns; by how much?
- ``JigsawPretrainer``: 3x3 shuffled tiles; which permutation shuffled them?
- ``ContextPretrainer``: a centre and a neighbour patch; where is the neighbour?
- ``IntruderPretrainer``: a whole image with corrupted tiles, turned; which tiles do not
  belong, and how far was the image turned?
- ``SimCLRPretrainer``: two augmented views; which view of the batch is the partner?
- ``MAEPretrainer``: 75 % of the patches hidden; what was under them?
- ``BoWPretrainer``: a perturbed copy; which visual words does a teacher see in the
  clean image?

Budgets. A batch looks the same after a second of training as after an hour, except
where the picture shows what a network learnt:

- every method is fitted for ``--max-time`` seconds (20 by default) with its default
  parameters: enough to learn the normalisation and, for jigsaw, the permutations;
- ``MAEPretrainer`` draws its own reconstruction of the hidden patches, which is a
  uniform grey at first: it gets ``--mae-time`` seconds (150 by default, about half an
  epoch on 2 CPU cores) and a cosine learning-rate decay, as in
  ``mae_reconstructions.py``; the reconstructions are still coarse (they sharpen with
  the README's 900-s fit);
- ``BoWPretrainer``'s targets are the bags of words of its teacher: its teacher is the
  ``RotationPretrainer`` fitted above (wrapped in ``FrozenEstimator``), whose feature
  map gives the vocabulary; the student's own ``--max-time`` changes nothing in the
  picture.

About 5 minutes on 2 CPU cores, or a few seconds in quick mode (tiny encoders, one
epoch on 512 images: the tasks look the same, MAE's reconstructions are noise).

    python examples/pretext_tasks.py                                    # figures/
    python examples/pretext_tasks.py --out benchmarks/results/pretext_tasks.png
    python examples/pretext_tasks.py --quick
"""

import _common as common
import numpy as np
from sklearn.frozen import FrozenEstimator

from skssl import (
    BoWPretrainer,
    ContextPretrainer,
    IntruderPretrainer,
    JigsawPretrainer,
    MAEPretrainer,
    RotationPretrainer,
    SimCLRPretrainer,
)

# A ViT small enough for the quick mode's few seconds (as mae_reconstructions.py).
TINY_VIT = {"patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2}
# Rows of the figure: the methods side by side, each as wide as its panels per image
# (rotation 2, jigsaw 3, context 4, intruder 2, SimCLR 3, MAE 3, BoW 3): 7, 7 and 6.
LAYOUT = (("rotation", "jigsaw", "intruder"), ("context", "simclr"), ("mae", "bow"))
PANELS = {"rotation": 2, "jigsaw": 3, "context": 4, "intruder": 2, "simclr": 3, "mae": 3,
          "bow": 3}
PANEL_INCHES = 1.45


def options(parser):
    parser.add_argument("--mae-time", type=float, default=150.0,
                        help="seconds of MAE pretraining (default %(default)s)")


def fit_all(data, args):
    """Each pretrainer fitted on the training images, by name."""
    X = common.training_images(data, args)
    fitted = {}
    for name, est in (("rotation", RotationPretrainer(random_state=0)),
                      ("jigsaw", JigsawPretrainer(random_state=0)),
                      ("context", ContextPretrainer(random_state=0)),
                      ("intruder", IntruderPretrainer(random_state=0)),
                      ("simclr", SimCLRPretrainer(random_state=0))):
        fitted[name] = common.fit(common.configure(est, args), X)
    mae = MAEPretrainer(lr_schedule="cosine", random_state=0)
    common.configure(mae, args, max_time=args.mae_time,
                     quick={"encoder_kwargs": TINY_VIT, "decoder_dim": 32, "decoder_depth": 1})
    fitted["mae"] = common.fit(mae, X)
    bow = BoWPretrainer(teacher=FrozenEstimator(fitted["rotation"]), random_state=0)
    fitted["bow"] = common.fit(common.configure(bow, args, quick={"n_words": 64}), X,
                               "BoWPretrainer (teacher: the RotationPretrainer above)")
    return fitted


# The classes drawn, in this order: an ankle boot, a pullover, a trouser, a bag, ... (on
# the digits fallback: those digits).
CLASSES = (9, 2, 1, 8, 0, 7, 3, 5, 4, 6)


def shown_images(data, n):
    """The first test image of each of the first ``n`` classes of :data:`CLASSES`."""
    first = [np.flatnonzero(data.y_test == c)[:1] for c in CLASSES]
    return data.X_test[np.concatenate(first)[:n]]


def gallery(fitted, X, data, n_train, quick):
    """One subfigure per method, in rows of :data:`LAYOUT`, every panel the same size."""
    from skssl.plotting import show_pretext_batch

    width = max(sum(PANELS[name] for name in row) for row in LAYOUT)
    row_height = 1.0 + 1.1 * PANEL_INCHES * len(X)
    fig = common.new_figure(height=0.5 + row_height * len(LAYOUT),
                            width=0.3 + PANEL_INCHES * width)
    for subfig, names in zip(fig.subfigures(len(LAYOUT), 1), LAYOUT, strict=True):
        spare = width - sum(PANELS[name] for name in names)
        ratios = [PANELS[name] for name in names] + ([spare] if spare else [])
        parts = subfig.subfigures(1, len(ratios), width_ratios=ratios, wspace=0.04)
        for part, name in zip(np.atleast_1d(parts), names, strict=False):
            show_pretext_batch(fitted[name], X, n_images=len(X), fig=part)
    budget = (f"quick mode: tiny encoders, one epoch on {n_train} images" if quick
              else f"each fitted briefly on {n_train:,} {data.name} training images "
                   "without their labels, drawn on test images")
    fig.suptitle(f"What each pretrainer's network sees, and must predict\n({budget})",
                 fontsize="large")
    return fig


def main(argv=None):
    args = common.parse_args("pretext_tasks", __doc__, argv, max_time=20.0, n_show=2,
                             extra=options)
    data = common.load_data(args.quick)
    fitted = fit_all(data, args)
    X = shown_images(data, args.n_show)
    n_train = len(common.training_images(data, args))
    common.save(gallery(fitted, X, data, n_train, args.quick), args.out)


if __name__ == "__main__":
    main()
