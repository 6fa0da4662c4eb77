"""Pretrain once, tune the classifier many times: FrozenEstimator.

**The idea.** Self-supervised learning pays off when there are many unlabelled images
and few labelled ones. The pretrainer should then learn from *all* the images, once,
and the classifier on top be tuned with the few labels, as often as needed. But
scikit-learn refits every step of a pipeline in ``fit``, and ``GridSearchCV`` clones
and refits it for every candidate and fold: a pretrainer inside would be retrained on
the labelled folds alone, dozens of times. ``sklearn.frozen.FrozenEstimator`` (new in
scikit-learn 1.6) wraps a fitted estimator so that ``fit`` does nothing and ``clone``
returns it as it is: the pipeline keeps the pretrained encoder, and the search only
refits the scaler and the classifier. The pipeline stays one object that maps raw
images to predictions, and can be saved, cross-validated or searched as a whole.

**What this script does.** It pretrains a ``RotationPretrainer`` once on the 60,000
Fashion-MNIST training images, without labels (``--max-time`` seconds), then, for 10,
100 and 1,000 labelled images per class, runs the same ``GridSearchCV`` over the
logistic regression's ``C`` (3 values x 3 folds) on raw pixels and on
``make_pipeline(FrozenEstimator(pretrainer), StandardScaler(), LogisticRegression())``.
It prints the test accuracies, how long each search took, and checks that the
pretrainer was never refitted (its ``n_iter_`` and training history are unchanged after
all the pipeline fits). The figure is a t-SNE of 1,000 test images, in raw pixels and
in the pretrained features: the classes that the features separate are those the
linear probe finds easy.

    python examples/frozen_estimator.py          # about 4 minutes on 2 CPU cores
    python examples/frozen_estimator.py --quick  # a few seconds
"""

import time

import _common as common
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import RotationPretrainer
from skssl.plotting import plot_embedding

GRID = {"logisticregression__C": [0.01, 0.1, 1.0]}


def main(argv=None):
    args = common.parse_args("frozen_estimator", __doc__, argv)
    data = common.load_data(args.quick)
    pretrainer = common.configure(RotationPretrainer(random_state=0), args)
    common.fit(pretrainer, common.training_images(data, args))
    epochs = pretrainer.n_iter_

    flat = data.X_train.reshape(len(data.X_train), -1)
    X_test = data.X_test.reshape(len(data.X_test), -1)
    pipelines = {
        "raw pixels": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "frozen rotation features": make_pipeline(
            FrozenEstimator(pretrainer), StandardScaler(), LogisticRegression(max_iter=1000)
        ),
    }
    counts = common.LABEL_COUNTS[args.quick]
    print(f"\nGridSearchCV over C {GRID['logisticregression__C']}, 3 folds; test accuracy on "
          f"{len(X_test)} {data.name} test images")
    print(f"{'labels/class':>12} " + " ".join(f"{name:>26s}" for name in pipelines))
    fits = 0
    for n, subset in zip(counts, common.labelled_subsets(data.y_train, counts), strict=True):
        cells = []
        for pipeline in pipelines.values():
            start = time.perf_counter()
            search = GridSearchCV(pipeline, GRID, cv=3).fit(flat[subset], data.y_train[subset])
            seconds = time.perf_counter() - start
            fits += 3 * len(GRID["logisticregression__C"]) + 1
            C = search.best_params_["logisticregression__C"]
            cells.append(f"{search.score(X_test, data.y_test):.3f}, C={C:g}, {seconds:.0f} s")
        print(f"{n:>12} " + " ".join(f"{cell:>26s}" for cell in cells))
    assert pretrainer.n_iter_ == epochs and len(pretrainer.history_) == epochs
    print(f"\nThe pretrainer was fitted once: after {fits} pipeline fits, n_iter_ is still "
          f"{pretrainer.n_iter_}.\n")

    shown = slice(0, 200 if args.quick else 1000)
    labels = data.classes[data.y_test[shown]]
    fig = common.new_figure(height=5, width=13)
    left, right = fig.subplots(1, 2)
    plot_embedding(X_test[shown], labels, method="tsne", ax=left)
    left.set_title("t-SNE of raw pixels")
    left.get_legend().remove()
    plot_embedding(pretrainer.transform(X_test[shown]), labels, method="tsne", ax=right)
    right.set_title("t-SNE of the rotation features")
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
