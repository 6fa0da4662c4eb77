"""Jigsaw puzzles: learn object parts by putting shuffled tiles back in order.

**The pretext task.** A square region of each image is cut into a 3x3 grid of cells,
and a tile is cut at a random place inside every cell. The nine tiles are shuffled by
one of 100 fixed permutations, and the network must say which one: a 100-way
classification. It sees the tiles one by one, through one encoder shared by all nine,
and a small head reads their nine feature vectors, concatenated in the shuffled order.

**Why it teaches useful features.** To put a puzzle back together you must know what
each piece shows and where such a piece goes in an object: the collar is at the top of
a shirt, the heel at the back of a shoe. Since each tile goes through the encoder on
its own, the encoder cannot cheat by comparing pixels across tiles; it must describe
every tile well enough for the head to place it. Several choices of the paper close
the remaining shortcuts:

- the gaps between tiles and their random placement in the cells hide the edges and
  lines that would let the network match neighbours without understanding them;
- every tile is normalised on its own, so brightness and contrast give nothing away;
- the 100 permutations are chosen as far apart as possible (Hamming distance), so that
  no two classes differ by a single swapped pair;
- on colour images, some images are turned grey and the colour channels of every tile
  are shifted a little, against chromatic aberration (a lens shifts colours depending
  on where in the photograph a tile was, which would give its position away).

**The paper.** Noroozi & Favaro (2016), *Unsupervised Learning of Visual
Representations by Solving Jigsaw Puzzles* (ECCV): the context-free network above, with
the features of the shared encoder used for transfer on whole images.

**Small images.** On 28 px images the paper's 3x3 grid leaves tiles of 7 px, which
show little of an object. ``JigsawPretrainer`` therefore cuts images under 57 px into
a 2x2 grid (tiles of 11 px on Fashion-MNIST) and uses all 24 orders of the four tiles as
its classes (``grid="auto"``, ``n_permutations="auto"``): after 300 s of fit on 2 cores
that gave a linear probe of 0.899-0.900 against 0.884-0.892 for the paper's 3x3 with 100
permutations (3 seeds each).

**What this script does.** It pretrains ``JigsawPretrainer`` on the Fashion-MNIST
training images without labels (11x11-pixel tiles in 14x14 cells), compares a linear probe
on raw pixels, on the untrained encoder and on the pretrained features, and draws
puzzles of test images: the shuffled tiles in the order the network sees them (each
marked with the cell it comes from), titled with the permutation class, and the tiles
put back. The encoder is trained on tiles but ``transform`` applies it to whole
images, each normalised on its own as the tiles were.

    python examples/jigsaw.py            # about 3 minutes on 2 CPU cores
    python examples/jigsaw.py --quick    # a few seconds
"""

from _common import run_example

from skssl import JigsawPretrainer

if __name__ == "__main__":
    run_example("jigsaw", __doc__, JigsawPretrainer(random_state=0))
