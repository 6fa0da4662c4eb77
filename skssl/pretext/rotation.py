"""RotationPretrainer: predict which of four rotations was applied (RotNet)."""

from ..base import BasePretrainer
from ..heads import mlp_head
from ..ops import center_crop_square, rotations


class RotationPretrainer(BasePretrainer):
    """Learn image features by predicting rotations of 0, 90, 180 or 270 degrees.

    Gidaris, Singh & Komodakis (2018), *Unsupervised Representation Learning by
    Predicting Image Rotations*: to tell how an image was rotated, a network must know
    where the objects' heads, feet, tops and bottoms are, i.e. recognise the objects.
    As in the paper, all four rotated copies of every image are in the same batch
    (a batch of ``batch_size`` images gives ``4 * batch_size`` encoder inputs).
    :meth:`transform` returns the encoder's pooled features. The head is a small MLP
    (``Linear-BatchNorm-ReLU-Linear``, 256 hidden units): the paper found the last
    layers of a rotation network specialise in the pretext task, and a nonlinear head
    takes that specialisation off the encoder (with a linear head, linear-probe accuracy
    on Fashion-MNIST was 1.3 points lower, on scikit-learn's digits 9 points lower).

    Non-square images are centre-cropped to a square (side ``min(H, W)``) at fit and
    at transform, since a rotation by 90 degrees of a non-square image changes its shape
    (and padding would give the rotation away).

    Parameters
    ----------
    %(common_parameters)s

    Attributes
    ----------
    head_ : torch.nn.Sequential
        The 4-way rotation classifier (an MLP).
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
    """

    _parameter_notes = {
        "batch_size": "Each image gives 4 encoder inputs, its 4 rotations.",
        "pooling": (
            '``"auto"`` (the pyramid for the built-in encoders) by default: on\n'
            "Fashion-MNIST after 300 s of fit, a linear probe of 0.891-0.899 against\n"
            "0.861-0.867 with the mean readout of the same fits (3 seeds)."
        ),
    }
    _attribute_notes = {"history_": "Chance ``pretext_accuracy`` is 0.25."}

    def _build_head(self, n_inputs):
        return mlp_head(n_inputs, 4)

    def _prepare(self, x):
        return center_crop_square(x)

    def _make_batch(self, x, generator):
        return rotations(x)
