"""A masked autoencoder on Fashion-MNIST: what it sees, and what it fills in.

``MAEPretrainer`` hides 75 % of the 4x4-pixel patches of every image and trains a
Vision Transformer, which sees only the visible quarter, with a small decoder that
predicts the pixels of the hidden patches. After a short fit on the 60,000 training
images (``--max-time`` seconds on the CPU), this script draws test images that the
model never saw: the originals, the masked inputs and the reconstructions (visible
patches pasted back), and saves the picture as a PNG. It also prints how a linear
probe on the MAE features compares with raw pixels on a few labels.

    python examples/mae_reconstructions.py --max-time 300 --out mae_reconstructions.png

Needs matplotlib (``pip install -e ".[plot]"``) and Fashion-MNIST
(``apt-get install dataset-fashion-mnist``).
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skssl import MAEPretrainer  # noqa: E402
from skssl.datasets import load_fashion_mnist  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-time", type=float, default=120.0, help="fit budget, seconds")
    parser.add_argument("--n-train", type=int, default=60000, help="images to fit on")
    parser.add_argument("--n-show", type=int, default=8, help="test images drawn")
    parser.add_argument("--out", default="mae_reconstructions.png")
    args = parser.parse_args(argv)

    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    mae = MAEPretrainer(max_time=args.max_time, max_epochs=100, lr_schedule="cosine",
                        random_state=0, verbose=0)
    mae.fit(X[: args.n_train])
    print(f"fit: {mae.n_iter_} epoch(s) in {sum(h['seconds'] for h in mae.history_):.0f} s, "
          f"reconstruction loss {mae.loss_curve_[0]:.3f} -> {mae.loss_curve_[-1]:.3f}")

    original, masked, reconstruction = mae.reconstruct(X_test[: args.n_show], random_state=0)
    rows = [("original", original), ("masked (75 %)", masked), ("reconstruction", reconstruction)]
    fig, axes = plt.subplots(3, args.n_show, figsize=(1.2 * args.n_show, 4))
    for r, (title, images) in enumerate(rows):
        for c in range(args.n_show):
            ax = axes[r, c]
            ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title)
    fig.suptitle("MAEPretrainer on Fashion-MNIST test images")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"saved {args.out}")

    # 20 labels per class: the MAE features against raw pixels, linear probe
    train = [i for k in range(10) for i in (y == k).nonzero()[0][:20]]
    for name, A, B in [("raw pixels", X[train].reshape(len(train), -1) / 255.0,
                        X_test.reshape(len(X_test), -1) / 255.0),
                       ("MAE features", mae.transform(X[train]), mae.transform(X_test))]:
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        print(f"{name:>13}: {clf.fit(A, y[train]).score(B, y_test):.3f} test accuracy "
              "(200 labels)")


if __name__ == "__main__":
    main()
