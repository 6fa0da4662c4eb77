"""Context prediction: learn what things look like by guessing where a patch belongs.

**The pretext task.** Picture a 3x3 grid of patches laid over an image. The network is
shown the centre patch and one of its eight neighbours, and must say which neighbour
it is: top-left, top, top-right, left, right, bottom-left, bottom or bottom-right, an
8-way classification. Both patches go through the same encoder (a siamese network), and
a small head reads the two feature vectors side by side.

**Why it teaches useful features.** To tell that one patch is *above* another, you have
to recognise what both show: the collar is above the chest pocket, the laces above the
sole. Answering requires a model of objects and their parts, learnt from the images
alone. As with jigsaw puzzles, the paper closes the shortcuts that would let a network
answer without understanding: a gap between the patches, and a random jitter of each,
so that lines and textures do not simply continue across the border; every patch
normalised on its own; and, on colour images, a guard against chromatic aberration (a
lens shifts the colour channels a little depending on where a patch was in the
photograph, and Doersch et al. found their first network reading the position off it).

**The paper.** Doersch, Gupta & Efros (2015), *Unsupervised Visual Representation
Learning by Context Prediction* (ICCV): the first of the modern pretext tasks, and the
late-fusion siamese network used here.

**Where it is weak.** Eight answers are few: once the network can tell the top of an
object from its bottom, the task gets easy and the features stop improving. Jigsaw
puzzles (100 classes) and skssl's intruder task ask for more per image.

**What this script does.** It pretrains ``ContextPretrainer`` on the Fashion-MNIST
training images without labels (7x7 patches with a 2-pixel gap), compares a linear
probe on raw pixels, on the untrained encoder and on the pretrained features, and draws
pairs of test images: the centre and the neighbour as the network sees them, and the
answer, the neighbour placed around the centre.

    python examples/context.py           # about 3 minutes on 2 CPU cores
    python examples/context.py --quick   # a few seconds
"""

from _common import run_example

from skssl import ContextPretrainer

if __name__ == "__main__":
    run_example("context", __doc__, ContextPretrainer(random_state=0))
