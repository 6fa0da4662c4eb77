"""Spot the intruders: skssl's own pretext task, tile by tile on whole images.

**The pretext task.** Every image is cut into 4x4 tiles and some tiles are corrupted:
replaced by the tile at the same place in *another image of the batch*, one of the 16
most like it (an intruder), replaced by another tile of the same image (misplaced), or
turned by 180 degrees (rotated). The corrupted image is then turned by 0, 90, 180 or 270
degrees. The encoder sees the whole image, and for each of the 16 tiles the head says
which of the four classes it is in (intact, intruder, misplaced or rotated), and for the
whole image by how much it was turned, as rotation prediction asks.

**Why it teaches useful features.** It answers three weaknesses of the classic
predictive tasks:

- *Too few answers.* Rotation has 4 and context prediction 8 per image; once the
  network finds the top of an object, they get easy. Here every image asks 16 graded
  questions, and the task keeps teaching after many epochs.
- *No negatives from other images.* To see that a sleeve does not belong on a trouser,
  the network must know which parts belong together, that is tell images apart, as
  contrastive methods (SimCLR) do, but without their pairs of views, projection head or
  large batches. The donors are the images most like the image (hard negatives): a
  sleeve of another shirt is given away only by the fine details that tell garments apart.
- *Shortcuts.* Intruders come from the same place in their donor image, so position and
  background do not give them away; all three corruptions leave the same seams at tile
  borders, so seams say *that* a tile changed but not *how*: the class must be read
  from the content. A corruption that changes nothing (background replaced by
  background) is labelled intact, so there is no unlearnable noise.

Unlike jigsaw and context prediction, whose encoder sees small tiles, the encoder here
always sees whole images, as in ``transform``. The head reads each tile's answer from the
encoder's feature map at the tile's place, so every place of the map must tell what is
there and whether it fits the rest of the image.

**The papers it builds on.** Gidaris et al. (2018, rotations), Noroozi & Favaro (2016,
jigsaw), Doersch et al. (2015, context) for the predictive tasks and their shortcuts;
Chen et al. (2020, SimCLR) for negatives from the batch. The task itself is ours; see
``IntruderPretrainer``'s docstring and the README for its measurements.

**What this script does.** It pretrains ``IntruderPretrainer`` on the Fashion-MNIST
training images without labels, compares a linear probe on raw pixels, on the untrained
encoder and on the pretrained features, and draws corrupted test images, every
corrupted tile outlined with its class, with the turn of each image.

    python examples/intruder.py          # about 3 minutes on 2 CPU cores
    python examples/intruder.py --quick  # a few seconds
"""

from _common import run_example

from skssl import IntruderPretrainer

if __name__ == "__main__":
    run_example("intruder", __doc__, IntruderPretrainer(random_state=0))
