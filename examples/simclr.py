"""SimCLR: learn features that stay the same under augmentation, by contrast.

**The pretext task.** Every image of a batch is augmented twice, at random: a random
crop resized back, a horizontal flip, colour jitter, sometimes grey. Each of the 2B
views goes through the encoder and a small projection head, and the network must find,
for each view, the other view of the same image among the 2B - 1 others of the batch.
The NT-Xent loss (a softmax over cosine similarities) pulls the two views of an image
together and pushes them away from the views of every other image: the negatives.

**Why it teaches useful features.** The augmentations define what should *not* matter
(where the object is, its size, its brightness and colour), and the negatives what
should: whatever tells one image from another. A crop of a sleeve and a crop of a
collar of the same shirt must land close together, so the features must capture what
the shirt is rather than which pixels it covers. The paper found the choice of
augmentations (random crops with colour distortion above all) decisive, larger batches
(more negatives) better, and the features best *before* the projection head, which
``transform`` returns.

**The paper.** Chen, Kornblith, Norouzi & Hinton (2020), *A Simple Framework for
Contrastive Learning of Visual Representations* (ICML).

**What this script does.** It pretrains ``SimCLRPretrainer`` with its defaults (the
recipe measured on Fashion-MNIST: 20x20 views of the 28x28 images, crops of at least
20 % of the image, a cosine decay of the learning rate) on the training images without
labels, compares a linear probe on raw pixels, on the untrained encoder and on the
pretrained features, and draws the two views of test images as the network sees them.
Its pretext accuracy is how often a view's nearest neighbour in the batch is its
partner.

    python examples/simclr.py            # about 3 minutes on 2 CPU cores
    python examples/simclr.py --quick    # a few seconds
"""

from _common import run_example

from skssl import SimCLRPretrainer

if __name__ == "__main__":
    run_example("simclr", __doc__, SimCLRPretrainer(random_state=0))
