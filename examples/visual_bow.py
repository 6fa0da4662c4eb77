"""Bags of visual words: images as histograms of local patterns, with no network at all.

**The idea.** Long before deep networks, images were described like documents by the
words they contain (Sivic & Zisserman 2003; Csurka et al. 2004). Here a *visual word*
is a typical small patch:

1. cut every 5x5 patch out of every image (dense descriptors), and normalise each for
   brightness and contrast;
2. whiten them (ZCA): decorrelating neighbouring pixels makes edges and corners stand
   out from the smooth gradients that dominate raw patches;
3. run k-means on a sample of them: the 200 centres are the vocabulary;
4. describe an image by how much of each word it contains, counted in each cell of a
   4x4 grid (a spatial pyramid, Lazebnik et al. 2006), so that *where* a word is
   matters too: a sole at the bottom, a collar at the top.

**Why it works, and why it is in a self-supervised library.** No labels are used
anywhere: the vocabulary is what the images themselves have in common. Coates, Lee & Ng
(2011), *An Analysis of Single-Layer Networks in Unsupervised Feature Learning*, showed
that this single layer, with whitening, dense patches at stride 1 and a soft
("triangle") assignment of each patch to the words nearer than average, rivalled the
deep unsupervised networks of its day. It is a strong, fast baseline to beat, and the
teacher's targets of ``bow_prediction.py`` are built the same way, from a network's
feature maps instead of raw patches (pass a fitted pretrainer as ``descriptor``).

**What this script does.** It fits ``VisualBoW()`` (its defaults are the best of a
pilot on Fashion-MNIST) on the training images without labels, which takes seconds,
then compares a linear probe on raw pixels and on the 3,200 bag-of-words features
(200 words x 16 cells). The figure shows 100 words of the vocabulary, as whitened
patches (edges, bars and corners), and a PCA of the test features.

    python examples/visual_bow.py            # about 2 minutes on 2 CPU cores
    python examples/visual_bow.py --quick    # a few seconds
"""

import time

import _common as common
import numpy as np

from skssl import VisualBoW
from skssl.plotting import plot_embedding


def word_mosaic(vocabulary, patch_size, columns=10):
    """The first words as a grid of patches, each stretched to full contrast."""
    words = vocabulary[: columns * columns].reshape(-1, patch_size, patch_size)
    low = words.min(axis=(1, 2), keepdims=True)
    words = (words - low) / np.maximum(words.max(axis=(1, 2), keepdims=True) - low, 1e-12)
    words = np.pad(words, ((0, 0), (0, 1), (0, 1)), constant_values=1.0)
    rows = len(words) // columns
    size = patch_size + 1
    return words[: rows * columns].reshape(rows, columns, size, size).swapaxes(1, 2).reshape(
        rows * size, columns * size)


def main(argv=None):
    args = common.parse_args("visual_bow", __doc__, argv)
    data = common.load_data(args.quick)
    quick = {"n_words": 32, "max_descriptors": 20_000} if args.quick else {}
    bow = VisualBoW(random_state=0).set_params(**quick)
    X = common.training_images(data, args)
    start = time.perf_counter()
    bow.fit(X)
    print(f"VisualBoW: vocabulary of {bow.n_words} words learnt from {bow.n_descriptors_} "
          f"patches of {len(X)} unlabelled images in {time.perf_counter() - start:.0f} s; "
          f"{bow.grid_size_[0]}x{bow.grid_size_[1]} patches per image, pyramid {bow.pyramid_}")
    features = common.compare(data, {"VisualBoW": bow}, args.quick)["VisualBoW"]

    fig = common.new_figure(height=5.5, width=11)
    words, embedding = fig.subplots(1, 2)
    words.imshow(word_mosaic(bow.vocabulary_, bow.patch_size), cmap="gray")
    words.set_axis_off()
    shown = min(100, bow.n_words) // 10 * 10
    words.set_title(f"{shown} of the {bow.n_words} visual words (whitened {bow.patch_size}x"
                    f"{bow.patch_size} patches)")
    plot_embedding(features[:1000], data.classes[data.y_test[:1000]], ax=embedding)
    embedding.set_title("PCA of the bag-of-words features of test images")
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
