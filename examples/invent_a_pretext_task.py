"""Invent a pretext task in a few lines with PretextPretrainer.

A pretext task is a function ``task(x, generator) -> (inputs, targets)``: it receives a
normalised batch of images ``(B, C, H, W)`` and a seeded ``torch.Generator`` for its
randomness, and returns what the network sees and what it must predict. Everything else
(the encoder, the head, the training loop, seeding, devices, ``transform``) comes from
``PretextPretrainer``; a task that returns wrong types, shapes or values fails on the
first batch with a message saying what was expected.

1. Rebuild rotation prediction (Gidaris et al. 2018) as a plain function, and check
   that it makes exactly RotationPretrainer's batches for the same seed (the built-in's
   head then reads the feature map's mean and quadrants, ``skssl.heads.PyramidHead``;
   ``PretextPretrainer``'s head reads the pooled features).
2. Invent a second task (which quadrants were mirrored left-right? four yes/no
   answers, a binary cross-entropy) and compare it with rotation, with our
   IntruderPretrainer and with an untrained encoder: every method trains for the same
   time (``--max-time`` seconds each) on Fashion-MNIST images, then the same linear
   probe (StandardScaler + LogisticRegression) is trained on each encoder's features
   with a few labels per class.

The figure shows both invented tasks as the network sees them, each input titled with
its target (``show_pretext_batch`` draws any task this way).

    python examples/invent_a_pretext_task.py           # about 2 minutes on 2 CPU cores
    python examples/invent_a_pretext_task.py --quick   # a few seconds
"""

import _common as common
import torch

from skssl import IntruderPretrainer, PretextPretrainer, RotationPretrainer
from skssl.ops import turn_each
from skssl.plotting import show_pretext_batch


# 1. Rotation prediction: turn every image by a random number of quarter turns, predict it.
def rotate(x, generator):
    turns = torch.randint(4, (len(x),), generator=generator, device=generator.device)
    turns = turns.to(x.device)
    return turn_each(x, turns), turns  # turn_each: torch.rot90 of each image by its own k


def rotation(**params):
    # 4 classes, cross-entropy, an MLP head on the pooled features; the rest is the base class.
    return PretextPretrainer(rotate, n_outputs=4, hidden_size=256, **params)


# 2. A new task: mirror each quadrant left-right with probability 1/2, say which (BCE).
def mirror_quadrants(x, generator):
    B, C, H, W = x.shape
    flips = torch.rand(B, 2, 2, generator=generator, device=generator.device).to(x.device) < 0.5
    quadrants = x.reshape(B, C, 2, H // 2, 2, W // 2)  # H and W even, as 28x28
    mirrored = torch.where(flips[:, None, :, None, :, None], quadrants.flip(-1), quadrants)
    return mirrored.reshape(B, C, H, W), flips.reshape(B, 4)


def main(argv=None):
    args = common.parse_args("invent_a_pretext_task", __doc__, argv, max_time=15.0)
    data = common.load_data(args.quick)
    X = common.training_images(data, args)

    same = dict(max_epochs=1, batch_size=128, random_state=0, device="cpu")
    if args.quick:
        same["encoder_kwargs"] = {"channels": (8, 16)}
    ours = rotation(**same).fit(X[:512]).pretext_batch(X[:64], random_state=0)
    builtin = RotationPretrainer(**same).fit(X[:512]).pretext_batch(X[:64], random_state=0)
    same_batches = all(torch.equal(a, b) for a, b in zip(ours, builtin, strict=True))
    print(f"PretextPretrainer(rotate) makes RotationPretrainer's batches: {same_batches}\n")
    assert same_batches

    methods = {
        "rotation": rotation(random_state=0),
        "mirrored quadrants": PretextPretrainer(mirror_quadrants, n_outputs=4, loss="bce",
                                                random_state=0),
        "intruder": IntruderPretrainer(random_state=0),
    }
    for name, est in methods.items():
        common.fit(common.configure(est, args), X, name)
    baseline = common.untrained(methods["rotation"], X)
    common.compare(data, {"untrained": baseline, **methods}, args.quick)

    fig = common.new_figure(height=5, width=13)
    left, right = fig.subfigures(1, 2)
    show_pretext_batch(methods["rotation"], data.X_test, n_images=4, fig=left)
    show_pretext_batch(methods["mirrored quadrants"], data.X_test, n_images=6, fig=right)
    common.save(fig, args.out)


if __name__ == "__main__":
    main()
