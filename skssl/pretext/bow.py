"""BoWPretrainer: predict the bag of visual words that a teacher sees (BoWNet)."""

from numbers import Integral, Real

import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from .._descriptors import descriptor_maps, fitted_descriptor, learn_vocabulary, sample_descriptors
from ..augment import simclr_augment
from ..base import BasePretrainer
from ..device import autocast
from ..heads import CosineClassifier
from ..ops import assign_words, pool_regions, pyramid_regions, squared_distances
from .rotation import RotationPretrainer

# OBoW's soft assignment: softmax over words of -15 d^2 / (mean squared distance of a
# descriptor to its nearest word), so that it is as peaked whatever the feature scale.
_INVERSE_TEMPERATURE = 15.0
# Teacher descriptors the k-means of the vocabulary sees.
_VOCABULARY_SAMPLE = 100_000
# What the default teacher takes from this estimator's parameters.
_TEACHER_PARAMETERS = (
    "encoder", "encoder_kwargs", "max_epochs", "max_time", "batch_size", "learning_rate",
    "lr_schedule", "weight_decay", "optimizer", "device", "verbose", "channels_last",
    "precision",
)


class BoWPretrainer(BasePretrainer):
    """Learn image features by predicting a teacher's bag of visual words (BoWNet).

    Gidaris, Bursuc, Komodakis, Pérez & Cord (2020), *Learning Representations by
    Predicting Bags of Visual Words*. A teacher network, already trained (by default
    a :class:`~skssl.RotationPretrainer`, as in the paper), describes every location
    of an image by its feature map; before training, k-means on a sample of these
    descriptors gives a vocabulary of ``n_words`` visual words (``vocabulary_``).
    The target of an image is its bag of words on the clean image, teacher in eval
    mode, L1-normalised to a distribution over the words. The student (``encoder``)
    sees a perturbed copy (random resized crop, horizontal flip and colour jitter:
    :func:`skssl.augment.simclr_augment`, on the [0, 1] scale) and predicts the
    bag through a cosine classifier with a learnable scale
    (:class:`skssl.heads.CosineClassifier`), trained by cross-entropy against the
    soft target. To predict which words the whole image holds from a crop, the
    student must recognise parts and context: the paper finds its features much
    better than the teacher's. :meth:`transform` gives the student's features.

    The estimator can be iterated as in the paper: the fitted student, wrapped in
    ``FrozenEstimator``, is the teacher of the next round (see Examples). In a pilot
    on 10,000 Fashion-MNIST images (linear probe on 5,000 test images), a rotation
    teacher of 3 epochs (all four rotations of each image) gave 0.836, its student
    0.846 after 3 epochs and 0.857 after 6, the random-init encoder 0.809; a second
    round of 3 epochs gave 0.837: train a student longer before making it a teacher.

    Parameters
    ----------
    %(common_parameters)s
    teacher : skssl pretrainer, torch.nn.Module or None, default=None
        Whose feature maps (:func:`skssl.encoders.feature_map`) give the words.
        ``None`` trains a ``RotationPretrainer`` first, on the data of :meth:`fit`,
        with this estimator's ``encoder``, ``encoder_kwargs``, training and device
        parameters (``max_epochs`` and ``max_time`` apply to each of the two
        trainings) and a seed drawn from ``random_state``. A pretrainer wrapped in
        ``sklearn.frozen.FrozenEstimator`` is used as fitted, a copy of it (the way
        to keep a fitted teacher through ``clone``, GridSearchCV or
        cross-validation, which unfit plain estimator parameters); any other
        pretrainer is cloned and fitted on the data of :meth:`fit` first. A module
        with a ``feature_map`` method is deep-copied and sees images on the [0, 1]
        scale.
    n_words : int, default=256
        Size of the vocabulary.
    targets : {"soft", "hard"}, default="soft"
        ``"soft"``: each descriptor softly assigned to the words (softmax of minus
        15 squared distances over the mean squared distance to the nearest word)
        and max-pooled over the image, as in OBoW (Gidaris et al. 2021, *Online
        Bag-of-Visual-Words Generation for Self-Supervised Learning*); ``"hard"``:
        counts of nearest words, as in BoWNet. Both L1-normalised.
    crop_scale : float or tuple of (float, float), default=(0.2, 1.0)
        Range of the student's crop area as a fraction of the image, in ``(0, 1]``
        (a float ``s`` means ``(s, 1.0)``); the crop is resized to the image size.
    jitter_strength : float, default=0.5
        Colour jitter strength of the student's copy (brightness and contrast
        ``0.8 s``, and on RGB saturation ``0.8 s`` and hue ``0.2 s``, on 80 % of the
        images); 0 turns it off.

    Attributes
    ----------
    head_ : CosineClassifier
        The bag-of-words predictor (not used by :meth:`transform`).
    teacher_ : BasePretrainer or torch.nn.Module
        The fitted teacher, a copy; its encoder moves to the training device.
    vocabulary_ : ndarray of shape (n_words, D)
        The visual words, in the space of the teacher's ``D`` feature channels.
    temperature_ : float
        The softmax temperature of ``"soft"`` targets.
    %(common_attributes)s

    See Also
    --------
    skssl.VisualBoW : The bags of words themselves, as features.
    skssl.base.BasePretrainer : The training loop and the hooks a method overrides.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skssl import BoWPretrainer, RotationPretrainer
    >>> X = load_digits().images[:200] / 16  # floats on the [0, 1] scale
    >>> fast = dict(encoder_kwargs={"channels": (8, 16)}, max_epochs=2, batch_size=50,
    ...             random_state=0)
    >>> rotation = RotationPretrainer(**fast).fit(X)
    >>> bow = BoWPretrainer(teacher=FrozenEstimator(rotation), n_words=32, crop_scale=0.5,
    ...                     **fast).fit(X)
    >>> bow.transform(X).shape, bow.vocabulary_.shape
    ((200, 16), (32, 16))

    Iterated, as in the paper: the student is the next round's teacher.

    >>> second = BoWPretrainer(teacher=FrozenEstimator(bow), n_words=32, crop_scale=0.5,
    ...                        **fast).fit(X)
    >>> second.teacher_.encoder_ is not bow.encoder_  # a copy: bow is left as it was
    True
    """

    _network_parameters = (*BasePretrainer._network_parameters, "n_words")
    _parameter_constraints: dict = {
        **BasePretrainer._parameter_constraints,
        "teacher": [BaseEstimator, nn.Module, None],
        "n_words": [Interval(Integral, 1, None, closed="left")],
        "targets": [StrOptions({"soft", "hard"})],
        "crop_scale": [Interval(Real, 0, 1, closed="right"), tuple],
        "jitter_strength": [Interval(Real, 0, None, closed="left")],
    }

    _make_batch_takes_raw = True

    _attribute_notes = {
        "history_": (
            "``pretext_accuracy`` is how often the predicted most likely word has more\n"
            "than the average weight ``1 / n_words`` in the target bag."
        ),
    }

    def __init__(
        self, *, encoder="cnn", encoder_kwargs=None, image_shape=None, max_epochs=10,
        max_time=None, batch_size=256, learning_rate=1e-3, lr_schedule="constant",
        weight_decay=1e-4, optimizer="adamw", device="auto", random_state=None, verbose=0,
        warm_start=False, channels_last=True, precision="auto", checkpoint=None,
        checkpoint_every=None, pooling="mean", teacher=None, n_words=256, targets="soft",
        crop_scale=(0.2, 1.0), jitter_strength=0.5,
    ):
        self._set_params(locals())

    def _augmentation(self, image_shape):
        """The student's perturbation of ``(H, W, C)`` images."""
        H, W, C = image_shape
        if C not in (1, 3):
            raise ValueError(
                f"{type(self).__name__} perturbs gray (1 channel) or RGB (3 channels) images, "
                f"got {C} channels."
            )
        # simclr_augment reads a float as (s, 1.0) and checks the pair.
        return simclr_augment((H, W), C, crop_scale=self.crop_scale,
                              jitter_strength=self.jitter_strength, grayscale_p=0.0)

    def _check_image_shape(self, image_shape):
        self._augmentation(image_shape)

    def _fit_method_state(self, data, random_state):
        name = type(self).__name__
        teacher = self.teacher
        if teacher is None:
            teacher = RotationPretrainer(
                **{key: getattr(self, key) for key in _TEACHER_PARAMETERS},
                random_state=random_state.randint(2**31 - 1),
            )
        self.teacher_ = fitted_descriptor(teacher, data.X.reshape(-1, *data.image_shape), name)
        shape = getattr(self.teacher_, "image_shape_", data.image_shape)
        if tuple(shape) != tuple(data.image_shape):
            raise ValueError(
                f"The teacher was fitted on images of shape {tuple(shape)}, but {name} gets "
                f"images of shape {data.image_shape}."
            )
        with torch.inference_mode():
            sample = sample_descriptors(self._teacher_descriptors, data, _VOCABULARY_SAMPLE,
                                        random_state, self.batch_size)
            self.vocabulary_ = learn_vocabulary(sample, self.n_words, random_state, name)
            nearest = squared_distances(sample, torch.from_numpy(self.vocabulary_)).amin(dim=1)
        # Identical descriptors have no distance to scale by: keep the softmax finite.
        self.temperature_ = max(float(nearest.mean()), 1e-12) / _INVERSE_TEMPERATURE

    def _teacher_maps(self, x):
        """The teacher's feature maps ``(B, D, h, w)`` of a batch on the [0, 1] scale."""
        with autocast(x.device, self.precision):
            return descriptor_maps(self.teacher_, x).float()

    def _teacher_descriptors(self, x):
        return self._teacher_maps(x).flatten(2).transpose(1, 2)

    def _targets(self, x):
        """The teacher's L1-normalised bags of words ``(B, n_words)`` of clean images."""
        maps = self._teacher_maps(x)
        soft = self.targets == "soft"
        codes = assign_words(maps.flatten(2).transpose(1, 2),
                             torch.from_numpy(self.vocabulary_).to(x.device),
                             "softmax" if soft else "hard", self.temperature_)
        whole_image = pyramid_regions(maps.shape[2:], (1,))
        bags = pool_regions(codes, whole_image, "max" if soft else "sum")[:, 0]
        return F.normalize(bags, p=1, dim=1)

    def _build_head(self, n_inputs):
        return CosineClassifier(n_inputs, self.n_words)

    def _make_batch(self, x, generator):
        with torch.no_grad():
            targets = self._targets(x)
        views = self._augmentation((*x.shape[2:], x.shape[1]))(x, generator)
        return self._normalize(views), targets

    def _loss(self, outputs, targets):
        return -(targets * F.log_softmax(outputs.float(), dim=-1)).sum(-1).mean()

    def _count_correct(self, outputs, targets):
        # Soft bags have near-ties at the top: ask whether the predicted word is in the bag
        # with more than the average weight, not whether it is the heaviest.
        weight = targets.gather(-1, outputs.argmax(-1, keepdim=True))
        return int((weight > 1 / self.n_words).sum()), len(targets)
