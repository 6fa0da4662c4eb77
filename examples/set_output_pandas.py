"""set_output(transform="pandas"): features with names, and two pretrainers side by side.

**The idea.** Every pretrainer names its output features (``get_feature_names_out``:
``rotationpretrainer0``, ``rotationpretrainer1``, ...) and honours scikit-learn's
``set_output`` API, so ``transform`` can return a pandas DataFrame instead of an
array. Names start to matter when features from several sources are combined: a
``FeatureUnion`` of two pretrainers concatenates their features and prefixes each
column with its step name (``rotation__rotationpretrainer0``, ``intruder__...``), so
that what a downstream model does can be traced back to where each feature came from.
Input may be a DataFrame too: one row of pixels per image, as a CSV export of images
would give; the square 28x28 shape is inferred from the 784 columns.

Two pretext tasks learn different things (rotation: where the top of an object is;
intruders: which parts belong together), and their features can complement each other.

**What this script does.** It builds a DataFrame of the Fashion-MNIST training pixels,
fits a ``FeatureUnion`` of a ``RotationPretrainer`` and an ``IntruderPretrainer`` on
it without labels (half of ``--max-time`` each), prints the first rows and named
columns of the union's DataFrame output, compares a linear probe on raw pixels, on each
pretrainer's features and on both, and, reading the column names, how much of the
probe's weight goes to each pretrainer's features. The figure shows the training curve
of both pretrainers and a PCA of the combined test features (from the DataFrame).

    python examples/set_output_pandas.py           # about 4 minutes on 2 CPU cores
    python examples/set_output_pandas.py --quick   # a few seconds
"""

import _common as common
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import IntruderPretrainer, RotationPretrainer
from skssl.plotting import plot_embedding, plot_history


def pixels(images):
    """Images as a DataFrame: one row of pixels per image."""
    flat = images.reshape(len(images), -1)
    return pd.DataFrame(flat, columns=[f"pixel{i}" for i in range(flat.shape[1])])


def main(argv=None):
    args = common.parse_args("set_output_pandas", __doc__, argv, max_time=150.0)
    data = common.load_data(args.quick)
    half = args.max_time / 2
    union = FeatureUnion([
        ("rotation", common.configure(RotationPretrainer(random_state=0), args, max_time=half)),
        ("intruder", common.configure(IntruderPretrainer(random_state=0), args, max_time=half)),
    ]).set_output(transform="pandas")
    train = pixels(common.training_images(data, args))
    print(f"input: a DataFrame of {train.shape[0]} rows x {train.shape[1]} columns "
          f"({', '.join(train.columns[:3])}, ...)")
    union.fit(train)
    rotation, intruder = (step for _, step in union.transformer_list)
    for step in (rotation, intruder):
        print(f"{type(step).__name__}: {step.n_iter_} epoch(s), pretext loss "
              f"{step.loss_curve_[-1]:.3f}")

    head = union.transform(pixels(data.X_test[:3]))
    print(f"union.transform: a {type(head).__name__} with {head.shape[1]} named columns")
    print(head.iloc[:, [0, 1, -2, -1]].round(3).to_string(), "\n")

    features = common.compare(data, {"rotation": rotation, "intruder": intruder, "both": union},
                       args.quick)["both"]

    # Which pretrainer's features does the probe lean on? The column names say.
    (labelled,) = common.labelled_subsets(data.y_train, [20 if args.quick else 100])
    labelled_features = union.transform(pixels(data.X_train[labelled]))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(labelled_features, data.y_train[labelled])
    weight = pd.Series(np.abs(probe[-1].coef_).sum(axis=0), index=labelled_features.columns)
    share = weight.groupby(weight.index.str.split("__").str[0]).sum() / weight.sum()
    print(f"Share of the weights of a probe on both ({len(labelled)} labelled images), by "
          "the source of the feature:")
    print(share.round(3).to_string(), "\n")

    fig = common.new_figure(height=4.5, width=13)
    left, middle, right = fig.subplots(1, 3)
    plot_history(rotation, ax=left)
    plot_history(intruder, ax=middle)
    plot_embedding(features.iloc[:1000], data.classes[data.y_test[:1000]], ax=right)
    right.set_title("PCA of both features (a DataFrame)")
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
