"""Rotation prediction: learn what objects look like by telling which way is up.

**The pretext task.** Every unlabelled image is turned by 0, 90, 180 or 270 degrees
(drawn anew each time the image is seen), and the network must say which of the four
rotations it is looking at: a 4-way classification whose labels cost nothing, since we
made the rotations ourselves.

**Why it teaches useful features.** A rotation can only be recognised by someone who
knows where the top of the object is: the collar of a shirt, the sole of a shoe, the
handle of a bag. The network cannot answer from low-level statistics (pixel
histograms and textures look the same in all four copies), so it has to learn to find
and recognise the object's parts, which are exactly the features a classifier of
clothes needs. We keep the encoder and throw the rotation head away.

**The paper.** Gidaris, Singh & Komodakis (2018), *Unsupervised Representation Learning
by Predicting Image Rotations* (ICLR). They found that all four copies of an image
should be in the same batch (the network then compares them) at an equal number of
epochs; at an equal time on a CPU, one random turn per image sees four times as many
images and learnt better features in our runs, so that is ``RotationPretrainer``'s
default (``all_rotations=True`` gives the paper's batch). They found that the four rotations
of multiples of 90 degrees work best (no interpolation artefacts give the answer away),
and that the last layers specialise in the pretext task: the useful features are in
the middle of the network, hence ``RotationPretrainer``'s two-layer head that keeps the
specialisation off the encoder.

**Where it fails.** Images without a canonical orientation (aerial photographs, cells
under a microscope, textures) give the task no answer to learn; and symmetric objects
(a trouser turned by 180 degrees is almost a trouser) make part of it ambiguous.

**What this script does.** It pretrains ``RotationPretrainer`` on the 60,000
Fashion-MNIST training images without their labels (``--max-time`` seconds, 2 minutes
by default), then trains the same linear probe (``StandardScaler`` +
``LogisticRegression``) with 10, 100 and 1,000 labels per class on raw pixels, on the
features of the same encoder untrained, and on the pretrained features, and prints the
test accuracies. The figure shows the task on test images (each upright and turned,
titled with its label), the training curve and a PCA of the test features.

    python examples/rotation.py                  # about 3 minutes on 2 CPU cores
    python examples/rotation.py --quick          # a few seconds
"""

from _common import run_example

from skssl import RotationPretrainer

if __name__ == "__main__":
    run_example("rotation", __doc__, RotationPretrainer(random_state=0))
