"""RotationPretrainer: predict which of four rotations was applied (RotNet)."""

from ..base import BasePretrainer
from ..encoders._maps import has_feature_map
from ..heads import PretextNet, PyramidHead, mlp_head
from ..ops import center_crop_square, rotations, turn_each
from ..ops._checks import randint


class RotationPretrainer(BasePretrainer):
    """Learn image features by predicting rotations of 0, 90, 180 or 270 degrees.

    Gidaris, Singh & Komodakis (2018), *Unsupervised Representation Learning by
    Predicting Image Rotations*: to tell how an image was rotated, a network must know
    where the objects' heads, feet, tops and bottoms are, i.e. recognise the objects.
    By default each image of a batch is turned once, by a number of quarter turns
    drawn for it (``all_rotations=False``); with ``all_rotations=True``, as in the
    paper, all four rotated copies of every image are in the same batch (a batch of
    ``batch_size`` images gives ``4 * batch_size`` encoder inputs). The paper found the
    four copies better than one at an equal number of epochs; at an equal time, one
    turn per image sees four times as many images: on Fashion-MNIST with 300 s of fit
    (2 cores, the 60,000 training images) it ran 11 epochs against 3 and reached a
    linear probe of 0.899-0.902 (kNN-20 0.874-0.876) against 0.892-0.895 (0.870-0.872)
    with the four copies, seeds 0, 1 and 2 side by side. :meth:`transform` returns the
    encoder's pooled features. The head is a small MLP
    (``Linear-BatchNorm-ReLU-Linear``, 256 hidden units): the paper found the last
    layers of a rotation network specialise in the pretext task, and a nonlinear head
    takes that specialisation off the encoder (with a linear head, linear-probe accuracy
    on Fashion-MNIST was 1.3 points lower, on scikit-learn's digits 9 points lower).
    For an encoder with a feature map (the built-in ones) the MLP reads the map's
    pyramid, its mean and the means of its four quadrants
    (:class:`~skssl.heads.PyramidHead`), what the default readout of :meth:`transform`
    pools: the head sees where things are, so the quadrants' features need not encode
    it. On Fashion-MNIST after 300 s of fit (3 seeds) that gave a linear probe of
    0.903-0.905 against 0.900-0.903 with the MLP on the mean features, and a kNN-20 of
    0.870-0.879 against 0.876-0.879. Other encoders get the MLP on their pooled features.

    Non-square images are centre-cropped to a square (side ``min(H, W)``) at fit and
    at transform, since a rotation by 90 degrees of a non-square image changes its shape
    (and padding would give the rotation away).

    Parameters
    ----------
    %(common_parameters)s
    all_rotations : bool, default=False
        Whether every image comes four times in its batch, once per rotation (the
        paper's batch), rather than once, turned by a random multiple of 90 degrees.
        The default is the faster learner per second of fit (above).

    Attributes
    ----------
    head_ : torch.nn.Module
        The 4-way rotation classifier: :class:`~skssl.heads.PyramidHead` on the
        encoder's feature map, or an MLP on the pooled features of an encoder without
        one.
    %(common_attributes)s

    See Also
    --------
    skssl.base.BasePretrainer : The training loop and the hooks a method overrides.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skssl import RotationPretrainer
    >>> X = load_digits().images[:200]
    >>> rot = RotationPretrainer(encoder_kwargs={"channels": (8, 16)}, max_epochs=3,
    ...                          batch_size=50, random_state=0)
    >>> rot.fit_transform(X).shape
    (200, 80)
    >>> rot.loss_curve_[-1] < rot.loss_curve_[0]
    True
    >>> inputs, targets = rot.pretext_batch(X[:3])
    >>> tuple(inputs.shape), targets.tolist()  # one random turn per image
    ((3, 1, 8, 8), [0, 3, 1])
    >>> paper = rot.set_params(all_rotations=True)
    >>> inputs, targets = paper.pretext_batch(X[:3])
    >>> tuple(inputs.shape), targets.tolist()  # all four turns of every image
    ((12, 1, 8, 8), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    """

    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "all_rotations": ["boolean"],
    }

    _parameter_notes = {
        "batch_size": (
            "With ``all_rotations=True`` each image gives 4 encoder inputs, its 4\n"
            "rotations."
        ),
        "pooling": (
            '``"auto"`` (the pyramid for the built-in encoders) by default: on\n'
            "Fashion-MNIST after 300 s of fit, a linear probe of 0.899-0.902 against\n"
            "0.867-0.871 with the mean readout of the same fits (3 seeds)."
        ),
    }
    _attribute_notes = {"history_": "Chance ``pretext_accuracy`` is 0.25."}

    def __init__(
        self, *, encoder="cnn", encoder_kwargs=None, image_shape=None, max_epochs=10,
        max_time=None, batch_size=256, learning_rate=1e-3, lr_schedule="constant",
        weight_decay=1e-4, optimizer="adamw", device="auto", random_state=None, verbose=0,
        warm_start=False, channels_last=True, precision="auto", checkpoint=None,
        checkpoint_every=None, pooling="auto", all_rotations=False,
    ):
        self._set_params(locals())

    def _build_head(self, n_inputs):
        if has_feature_map(self.encoder_):
            return PyramidHead(n_inputs, 4)
        return mlp_head(n_inputs, 4)

    def _build_network(self, encoder, head):
        return PretextNet(encoder, head, use_feature_map=has_feature_map(encoder))

    def _prepare(self, x):
        return center_crop_square(x)

    def _make_batch(self, x, generator):
        if self.all_rotations:
            return rotations(x)
        turns = randint(0, 3, (x.shape[0],), generator, x.device)
        return turn_each(x, turns), turns
