"""Pipeline + GridSearchCV: let cross-validation choose the pretext task, or none.

**The idea.** A pretrainer is a scikit-learn transformer, so it is a step of a
``Pipeline`` like PCA, and every parameter of the pipeline, its own included, can be
tuned by ``GridSearchCV``: here even *which* pretrainer to use. The step named
``features`` is searched over ``"passthrough"`` (raw pixels), a ``RotationPretrainer``
and an ``IntruderPretrainer``, together with the probe's regularisation ``C``; every
candidate is scored by 3-fold cross-validation on the labelled images, and the best is
refitted on all of them. Raw pixels compete in the same search, under the same
protocol: the comparison is part of the search.

**What to know.** In a pipeline the pretrainer is fitted, like every step, on the
training fold of each split: it learns from the labelled images only, once per
candidate and fold (6 pretrainer fits per candidate pretrainer here, with the refit).
That is the right protocol when all your images are labelled, or to tune a
pretrainer's own parameters; when you have many more unlabelled images than labelled
ones, pretrain once on all of them and tune the classifier on top, as
``frozen_estimator.py`` shows. A pretrainer can also be tuned alone, without labels:
its ``score`` is minus its pretext loss, so ``GridSearchCV(RotationPretrainer(),
param_grid).fit(X)`` works, though a lower pretext loss does not always mean better
features.

**What this script does.** 200 labelled Fashion-MNIST training images per class (2,000
images, flattened to rows of 784 pixels, as scikit-learn's steps expect; the pretrainers
infer the 28x28 shape), a search over 3 feature steps x 2 values of ``C`` with
``--max-time`` seconds per pretrainer fit, then the test accuracy of the best
candidate and of the best raw-pixel candidate on the 10,000 test images. The figure
shows the cross-validated accuracy of every candidate.

    python examples/pipeline_gridsearch.py           # about 4 minutes on 2 CPU cores
    python examples/pipeline_gridsearch.py --quick   # a few seconds
"""

import time

import _common as common
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skssl import IntruderPretrainer, RotationPretrainer


def describe(params):
    step = params["features"]
    name = "raw pixels" if step == "passthrough" else type(step).__name__
    return f"{name}, C={params['probe__C']:g}"


def main(argv=None):
    args = common.parse_args("pipeline_gridsearch", __doc__, argv, max_time=10.0)
    data = common.load_data(args.quick)
    (labelled,) = common.labelled_subsets(data.y_train, [20 if args.quick else 200])
    X, y = data.X_train[labelled].reshape(len(labelled), -1), data.y_train[labelled]
    X_test = data.X_test.reshape(len(data.X_test), -1)

    pipeline = Pipeline([
        ("features", "passthrough"),
        ("scale", StandardScaler()),
        ("probe", LogisticRegression(max_iter=1000)),
    ])
    grid = {
        "features": [
            "passthrough",
            common.configure(RotationPretrainer(random_state=0), args),
            common.configure(IntruderPretrainer(random_state=0), args),
        ],
        "probe__C": [0.1, 1.0],
    }
    start = time.perf_counter()
    search = GridSearchCV(pipeline, grid, cv=3).fit(X, y)
    print(f"GridSearchCV: {len(search.cv_results_['params'])} candidates x 3 folds on "
          f"{len(X)} labelled images in {time.perf_counter() - start:.0f} s\n")

    results = search.cv_results_
    names = [describe(params) for params in results["params"]]
    print(f"{'candidate':32s} {'CV accuracy':>14s} {'fit s':>6s}")
    for name, mean, std, seconds in zip(names, results["mean_test_score"],
                                        results["std_test_score"], results["mean_fit_time"],
                                        strict=True):
        print(f"{name:32s} {mean:8.3f} ± {std:.3f} {seconds:6.1f}")

    raw = [i for i, p in enumerate(results["params"]) if p["features"] == "passthrough"]
    best_raw = max(raw, key=lambda i: results["mean_test_score"][i])
    raw_model = pipeline.set_params(**results["params"][best_raw]).fit(X, y)
    print(f"\nbest candidate:  {describe(search.best_params_):32s} test accuracy "
          f"{search.score(X_test, data.y_test):.3f}")
    print(f"best raw pixels: {names[best_raw]:32s} test accuracy "
          f"{raw_model.score(X_test, data.y_test):.3f}  ({len(X_test)} test images)\n")

    fig = common.new_figure(height=4, width=8)
    ax = fig.subplots()
    order = np.argsort(results["mean_test_score"])
    ax.barh([names[i] for i in order], results["mean_test_score"][order],
            xerr=results["std_test_score"][order], color="C0")
    ax.set_xlabel("3-fold cross-validated accuracy")
    ax.set_xlim(max(0.0, results["mean_test_score"].min() - 0.1), 1.0)
    ax.set_title(f"GridSearchCV over the feature step and C ({len(X)} labelled images)")
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
