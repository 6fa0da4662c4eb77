"""BasePretrainer: the scikit-learn face of every pretrainer, and the hooks a method fills."""

import copy
import inspect
import os
import re
import warnings
from contextlib import closing
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state, metadata_routing
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._data import check_images, check_scale, page_releaser, prefetch
from ._distributed import replicas
from ._heap import FaultWatch
from .device import (
    _module_to_cpu,
    _on_cpu,
    autocast,
    memory_format,
    resolve_device,
    to_memory_format,
)
from .encoders import build_encoder, check_encoder_takes
from .encoders._maps import has_feature_map
from .heads import PretextNet
from .ops import pool_regions, pyramid_regions
from .persistence import read_checkpoint
from .training import split_batches, train_epochs

__all__ = ["BasePretrainer"]

# The parameters every pretrainer shares, in signature order, as numpydoc entries. Each
# estimator's docstring says `%(common_parameters)s` where they go; the defaults are read
# from its signature (a method with another default documents it) and a method's
# `_parameter_notes` are appended to the entries they name.
COMMON_PARAMETERS = """\
encoder : str, torch.nn.Module or callable
    A name from :func:`skssl.encoders.available_encoders`, a module (deep-copied at
    fit, never trained in place) or a factory returning a module; see
    :func:`skssl.encoders.build_encoder`. The module maps ``(B, C, H, W)`` images to
    ``(B, n_features)`` features.
encoder_kwargs : dict
    Keyword arguments of a named encoder or a factory (e.g.
    ``{"channels": (16, 32)}``): tunable by GridSearchCV.
image_shape : tuple of int
    ``(H, W)`` or ``(H, W, C)`` of flattened ``(n, H*W*C)`` input; ``None`` infers a
    square grayscale or RGB shape. Ignored for ``(n, H, W[, C])`` input.
max_epochs : int
    Passes over the data in :meth:`fit`.
max_time : float
    Time budget of :meth:`fit` in seconds; training stops after the batch that
    exceeds it.
batch_size : int
    Images per batch (a method may turn each into several inputs).
learning_rate : float
    Learning rate of the optimizer.
lr_schedule : {"constant", "cosine"}
    ``"cosine"`` decays the learning rate from ``learning_rate`` towards 0 along a
    half cosine (Loshchilov & Hutter 2017, without restarts) over each call to
    :meth:`fit` (``max_epochs`` epochs) or :meth:`partial_fit` (one epoch), or over
    ``max_time`` seconds when that budget ends first.
weight_decay : float
    Weight decay of the optimizer.
optimizer : {"adamw", "adam", "sgd"}
    ``"sgd"`` uses momentum 0.9.
device : str
    ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
random_state : int, RandomState instance or None
    Seeds weight initialisation, shuffling and the pretext task's randomness.
    The same integer on the CPU gives the same features.
verbose : int
    Show a progress bar per epoch with the loss and images/s.
warm_start : bool
    Whether :meth:`fit` continues from the previous fit.
channels_last : bool
    Run the encoder on ``channels_last`` tensors (NHWC memory layout), at fit and
    in :meth:`transform`. Convolutions run about 1.5x faster so on a CPU (and with
    mixed precision on a GPU); the features agree with the default layout up to
    float rounding. Set it to False for an encoder that calls ``.view`` on its
    activations (use ``.reshape`` or ``.flatten`` instead).
precision : {"auto", "float32", "bfloat16"}
    Arithmetic of convolutions and matrix products, at fit and in :meth:`transform`
    (weights, gradients and losses stay float32). ``"auto"``: bfloat16 mixed
    precision where the device computes in bfloat16 natively (CUDA, and CPUs with
    AVX-512 BF16 or AMX), float32 elsewhere (:func:`skssl.device.resolve_precision`).
    On 2 cores of an AMD EPYC (Zen 4, AVX-512 BF16), SimCLR's fit took 2.2x more
    images per second so (622 vs 286 at 28x28 views). ``"float32"`` gives the same
    features on every run on one CPU with the same ``random_state``.
checkpoint : str or path-like
    File where :meth:`fit` and :meth:`partial_fit` save the training state (weights,
    optimiser, random generators, schedule position, history) at the end of every
    epoch, in the safe format of :func:`skssl.save` (:func:`skssl.load` reads it),
    atomically: a kill leaves the previous file or the new one. With
    ``warm_start=True``, :meth:`fit` continues from the file when it exists: a fit
    killed midway finishes its planned epochs, and on a CPU ends with the weights of
    an uninterrupted fit (a ``max_time`` budget resumes approximately: the time
    since the last checkpoint is spent again). The file then holds the state and the
    estimator's own parameters are used. ``None`` writes nothing. Give each
    estimator its own file (not one shared by the clones of a search).
checkpoint_every : float
    Also save the checkpoint every this many seconds, between two steps (a resumed
    fit continues from that step); ``None``: at the end of epochs only. Needs
    ``checkpoint``.
pooling : {"mean", "pyramid", "auto"}
    How :meth:`transform` pools the encoder's last feature map into one vector per
    image. ``"mean"``: the global average, ``n_features = num_features``.
    ``"pyramid"``: the global average, then the average over each cell of a 2x2
    grid (:func:`skssl.ops.pyramid_regions`; a two-level spatial pyramid, Lazebnik et
    al. 2006), concatenated: 5x the features, and a linear probe also knows *where*
    a feature fired. It needs an encoder with a ``feature_map`` method (``cnn``,
    ``resnet18``, the ViTs). ``"auto"``: ``"pyramid"`` when the encoder has a
    ``feature_map``, ``"mean"`` otherwise (an encoder of your own that returns
    pooled features). Only the readout changes, not training: it may be set after
    fit.
"""

COMMON_ATTRIBUTES = """\
encoder_ : torch.nn.Module
    The trained encoder.
loss_curve_ : list of float
    Mean training loss of each epoch.
history_ : list of dict
    One entry per epoch: ``epoch``, ``loss``, ``seconds``, ``images``,
    ``images_per_s`` (unique images), ``inputs_per_s`` (encoder inputs, e.g. 4 per
    image for rotation) and ``pretext_accuracy`` (None when undefined).
n_iter_ : int
    Epochs trained (a partial epoch cut by ``max_time`` counts).
n_features_in_ : int
    ``H * W * C``.
image_shape_ : tuple of (int, int, int)
    ``(H, W, C)`` seen at fit.
channel_mean_, channel_std_ : ndarray of shape (C,)
    Per-channel statistics learnt at fit (on the [0, 1] scale for uint8 images),
    used to normalise every batch.
device_ : str
    Device used by the last fit.
input_scale_ : str or tuple of (float, float)
    ``"uint8"`` when the training images were pixel values (uint8, or integers all
    in 0..255), divided by 255 onto [0, 1]; otherwise the ``(min, max)`` of their
    values. :meth:`transform` and :meth:`score` refuse images clearly on another
    scale, and read integers as fit did.
interrupted_ : bool
    Whether Ctrl-C (KeyboardInterrupt) stopped the last call to :meth:`fit` or
    :meth:`partial_fit`. Training then stops after the current step with a warning,
    and the model of that step is kept and usable; a Pipeline or a search goes on
    with it, and this attribute tells that its features are from a cut fit.
"""


def _entries(block):
    """``(name, kind, description lines)`` of each numpydoc entry of ``block``."""
    for entry in re.split(r"\n(?=\S)", block.strip("\n")):
        head, *description = entry.split("\n")
        name, kind = head.split(" : ")
        yield name, kind, description


def parameter_names(entries):
    """The names documented in a block of numpydoc entries, in order."""
    return [name for name, _, _ in _entries(entries)]


def _doc_entries(entries, notes, defaults=None):
    """``entries`` indented for a class docstring, with defaults and notes added."""
    lines = []
    for name, kind, description in _entries(entries):
        if defaults is not None:
            kind += f", default={defaults[name]!r}".replace("'", '"')
        if name in notes:
            description += [f"    {line}" for line in notes[name].split("\n")]
        lines += [f"    {name} : {kind}"] + [f"    {line}" for line in description]
    return "\n".join(lines)


def _fill_doc(cls):
    """Write the shared parameter and attribute entries into ``cls``'s docstring."""
    signature = inspect.signature(cls.__init__).parameters
    defaults = {name: p.default for name, p in signature.items()}
    attribute_notes = dict(cls._attribute_notes)
    if cls._make_batch_takes_raw:
        attribute_notes.setdefault("channel_mean_, channel_std_",
                                   "They are applied after augmentation.")
    doc = cls.__doc__.replace(
        "    %(common_parameters)s",
        _doc_entries(COMMON_PARAMETERS, cls._parameter_notes, defaults),
    )
    return doc.replace(
        "    %(common_attributes)s", _doc_entries(COMMON_ATTRIBUTES, attribute_notes)
    )


def _same_value(a, b):
    """``a == b`` for parameter values, also for those whose ``==`` is elementwise."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays: compare what they print
        return repr(a) == repr(b)


class BasePretrainer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the pretrainers: the scikit-learn face and the method hooks.

    A pretrainer learns an encoder on unlabelled images by solving a pretext task,
    then :meth:`transform` maps images to the encoder's features. This class owns
    validation, seeding, devices, normalisation, ``fit``/``partial_fit``/
    ``transform``/``score``, feature names and pickling; the loop itself is
    :func:`skssl.training.train_epochs`. A method is a subclass that fills some of
    these hooks, each with a default, and never overrides anything else:

    - ``_check_image_shape(image_shape)``: raise a ValueError for ``(H, W, C)`` images
      the method cannot use (default: all accepted).
    - ``_prepare(x)``: applied to every batch before anything else, at fit,
      :meth:`transform` and :meth:`score` (default: identity).
    - ``_encoder_input_size(image_size)``: ``(h, w)`` of the encoder's inputs at fit,
      when they are patches or views rather than whole images; the encoder is built
      for that size and checked on whole images (default: the image size).
    - ``_encoder_kwargs(input_size)``: the encoder's keyword arguments, where a
      method adds defaults of its own to ``encoder_kwargs`` (default: as given).
    - ``_fit_method_state(data, random_state)``: method state fitted once from the
      data before training (a permutation set, a vocabulary), stored in public
      fitted attributes (default: none).
    - ``_make_batch(x, generator)``: a batch becomes ``(inputs, targets)``; inputs of
      shape ``(N, C, h, w)``, or ``(N, T, C, h, w)`` for ``T`` tiles per sample.
    - ``_build_head(n_inputs)``: the head, given its input size, which the base class
      measures once by passing a probe batch of ``_make_batch`` through the network
      without head (``T * num_features`` for tiles, the channels of a feature map).
    - ``_build_network(encoder, head)``: the trained module (default
      :class:`~skssl.heads.PretextNet`).
    - ``_loss(outputs, targets)`` (default: cross-entropy over the last dimension) and
      ``_count_correct(outputs, targets)`` (the pretext accuracy of ``history_``).
    - ``_train_step(net, x, generator)``: one step's loss and counts; the default is
      ``_make_batch`` -> network -> ``_loss``. A method whose step is different
      overrides this step alone.
    - ``_embed(x)``: the features of a batch of whole images, for :meth:`transform`
      (default: the encoder's output).

    Every module is built from the image shape, the parameters and the method's
    fitted state alone, with no data, so that a saved model can be rebuilt:
    :func:`skssl.save` stores weights and JSON, and :func:`skssl.load` rebuilds the
    estimator running no code from the file. Share models that way: pickle and
    joblib files run the code they hold when loaded. A
    method that augments images sets the class attribute ``_make_batch_takes_raw =
    True``: its batches then come on the [0, 1] scale, before normalisation, and it
    normalises its inputs with ``_normalize``.

    Parameters
    ----------
    %(common_parameters)s

    Attributes
    ----------
    %(common_attributes)s
    head_ : torch.nn.Module
        The pretext head, built by ``_build_head``.
    """

    _parameter_constraints: dict = {
        "encoder": [str, nn.Module, callable],
        "encoder_kwargs": [dict, None],
        "image_shape": [tuple, list, None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "optimizer": [StrOptions({"adamw", "adam", "sgd"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "channels_last": ["boolean"],
        "precision": [StrOptions({"auto", "float32", "bfloat16"})],
        "checkpoint": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Real, 0, None, closed="neither"), None],
        "pooling": [StrOptions({"mean", "pyramid", "auto"})],
    }

    # transform's `out` is a buffer of one call, not metadata that a Pipeline routes.
    __metadata_request__transform = {"out": metadata_routing.UNUSED}

    # Method-specific sentences appended to a shared parameter's or attribute's entry.
    _parameter_notes: dict = {}
    _attribute_notes: dict = {}

    # Colour augmentations need images on their [0, 1] scale (uint8 / 255, floats as
    # given): a method that sets this gets them so, and normalises with `_normalize`.
    _make_batch_takes_raw = False
    #: Parameters that the network and the method's fitted state are built from. A
    #: warm fit (``partial_fit``, ``warm_start=True``) trains what they built, so it
    #: refuses a change of any of them (``encoder`` only by name: a module or factory
    #: passed as ``encoder`` is not compared).
    _network_parameters = ("encoder", "encoder_kwargs")

    def __init__(
        self, *, encoder="cnn", encoder_kwargs=None, image_shape=None, max_epochs=10,
        max_time=None, batch_size=256, learning_rate=1e-3, lr_schedule="constant",
        weight_decay=1e-4, optimizer="adamw", device="auto", random_state=None, verbose=0,
        warm_start=False, channels_last=True, precision="auto", checkpoint=None,
        checkpoint_every=None, pooling="auto",
    ):
        self.encoder = encoder
        self.encoder_kwargs = encoder_kwargs
        self.image_shape = image_shape
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.channels_last = channels_last
        self.precision = precision
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.pooling = pooling

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and "%(common_" in cls.__doc__:
            cls.__doc__ = _fill_doc(cls)

    def _set_params(self, params):
        """Store the ``__init__`` arguments of a method, ``params = locals()``.

        scikit-learn reads the parameters from the ``__init__`` signature, which a
        method therefore spells out; the body need not repeat them.
        """
        for name in inspect.signature(type(self).__init__).parameters:
            if name != "self":
                setattr(self, name, params[name])

    # ------------------------------------------------------------------ method hooks
    def _check_image_shape(self, image_shape):
        """Raise a ValueError for ``(H, W, C)`` images the method cannot use."""

    def _prepare(self, x):
        """Applied to every batch first, at fit, transform and score (identity)."""
        return x

    def _encoder_input_size(self, image_size):
        """``(h, w)`` of the encoder's inputs at fit, for prepared images of ``image_size``."""
        return image_size

    def _encoder_kwargs(self, input_size):
        """Keyword arguments of the encoder, for inputs of ``input_size``: a method may
        add its own defaults to ``encoder_kwargs`` (default: ``encoder_kwargs`` as given)."""
        return self.encoder_kwargs

    def _fit_method_state(self, data, random_state):
        """Fit the method's own state from ``data`` before training (nothing)."""

    def _make_batch(self, x, generator):
        """Turn a batch ``(B, C, H, W)`` into ``(inputs, targets)``."""
        raise NotImplementedError(
            f"{type(self).__name__} must define _make_batch or override _train_step."
        )

    def _build_head(self, n_inputs):
        """Return the pretext head for ``n_inputs`` input features."""
        raise NotImplementedError(f"{type(self).__name__} must define _build_head.")

    def _build_network(self, encoder, head):
        """Return the module trained by the loop, holding ``encoder`` and ``head``."""
        return PretextNet(encoder, head)

    def _loss(self, outputs, targets):
        """Cross-entropy over the last dimension (any leading shape)."""
        return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))

    def _count_correct(self, outputs, targets):
        """Return ``(n_correct, n_predictions)`` of a training batch, ``(0, 0)`` if undefined.

        By default, the argmax of the outputs against integer class targets.
        """
        if (
            isinstance(targets, torch.Tensor)
            and not targets.is_floating_point()
            and outputs.shape[:-1] == targets.shape
        ):
            return int((outputs.argmax(-1) == targets).sum()), targets.numel()
        return 0, 0

    def _train_step(self, net, x, generator):
        """One step on batch ``x``: return the loss and the counts ``history_`` sums.

        The counts are ``inputs`` (encoder inputs), ``correct`` and ``count`` (pretext
        predictions right, and made). The loop takes the optimiser step; :meth:`score`
        calls this under ``torch.inference_mode``.
        """
        inputs, targets = self._make_batch(x, generator)
        inputs = to_memory_format(inputs, self.channels_last)
        with autocast(x.device, self.precision):
            outputs = net(inputs)
            loss = self._loss(outputs, targets)
        with torch.no_grad():
            correct, count = self._count_correct(outputs, targets)
        n_inputs = inputs.shape[0] * (inputs.shape[1] if inputs.ndim == 5 else 1)
        return loss, {"inputs": n_inputs, "correct": correct, "count": count}

    def _embed(self, x):
        """Features of a batch of normalised, prepared whole images."""
        return self._encode(x)

    @property
    def _pooling(self):
        """``pooling`` with ``"auto"`` resolved for the fitted encoder."""
        if self.pooling == "auto":
            return "pyramid" if has_feature_map(self.encoder_) else "mean"
        return self.pooling

    def _encode(self, x):
        """The encoder's features of ``x``, pooled as ``pooling`` says."""
        if self._pooling == "mean":
            return self.encoder_(x)
        self._check_pooling()
        maps = self.encoder_.feature_map(x)  # (B, F, h, w)
        h, w = maps.shape[-2:]
        if min(h, w) < 2:  # repeat a single row or column: 4 cells, the same mean
            maps = torch.nn.functional.interpolate(maps, size=(max(h, 2), max(w, 2)))
        regions = pyramid_regions(tuple(maps.shape[-2:]), (1, 2))
        return pool_regions(maps.flatten(2).transpose(1, 2), regions, "mean").flatten(1)

    def _check_pooling(self):
        if self.pooling == "pyramid" and not has_feature_map(self.encoder_):
            raise ValueError(
                f'pooling="pyramid" pools the encoder\'s last feature map, but the '
                f"{type(self.encoder_).__name__} encoder has no feature_map method: use "
                'pooling="mean", or give the module a feature_map(x) -> (B, F, h, w).'
            )

    # ------------------------------------------------------------------ sklearn API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the encoder on the pretext task.

        A fit that raises (bad input, a task that errs, a non-finite loss) leaves the
        estimator as it was before the call: unfitted, or as its previous fit left it.
        Ctrl-C stops training after the current step and keeps the model, with a
        warning and ``interrupted_ = True``. With ``warm_start=True`` and an existing
        ``checkpoint`` file, training continues from the file.

        Parameters
        ----------
        X : array-like, memmap, torch.Tensor or indexable
            Images: ``(n, H*W*C)``, ``(n, H, W)`` or ``(n, H, W, C)``, read one batch
            at a time; any object with ``__len__`` and ``__getitem__`` returning one
            image (a dataset class) is read image by image, never whole.
        y : None
            Ignored: self-supervised.

        Returns
        -------
        self : object

        Raises
        ------
        FloatingPointError
            When the pretext loss becomes NaN or infinite; the message names the epoch
            and step and the likely causes.
        """
        resume = (
            self.warm_start and self.checkpoint is not None and os.path.exists(self.checkpoint)
        )
        return self._fit(X, self.max_epochs, warm=self.warm_start, resume=resume)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch, continuing from the previous call.

        As :meth:`fit`, a call that raises leaves the estimator as it was before it.

        Parameters
        ----------
        X : array-like, memmap, torch.Tensor or indexable
            Images of the same shape as in earlier calls.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        return self._fit(X, 1, warm=True, resume=False)

    def transform(self, X, out=None):
        """Map images to the trained encoder's features.

        The encoder runs in eval mode, without gradients, batch by batch: images are
        read and converted one batch at a time, and with ``out`` the features go
        straight into the caller's array, so that a dataset larger than memory is
        featurised in bounded memory. The pages of memmaps (``X`` and ``out``) are
        released from the process once their rows are done (Linux), so that its
        resident memory does not grow with the files.

        Parameters
        ----------
        X : array-like, memmap, torch.Tensor or indexable
            Images of the shape seen at fit; any object with ``__len__`` and
            ``__getitem__`` returning one image is read image by image.
        out : ndarray or memmap of shape (n_samples, n_features_out), dtype float32, \
                default=None
            Where to write the features (e.g. ``numpy.lib.format.open_memmap(path,
            mode="w+", dtype=np.float32, shape=...)``). It is filled batch by batch
            and returned; a call that fails midway leaves it partly written.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), dtype float32
            ``out`` when given.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skssl import RotationPretrainer
        >>> X = load_digits().images[:64]
        >>> rot = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1,
        ...                          random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "features.npy")
        >>> n_features = len(rot.get_feature_names_out())
        >>> out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
        ...                                 shape=(len(X), n_features))
        >>> rot.transform(X, out=out) is out
        True
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        out = self._check_out(out, data)
        device = resolve_device(self.device)
        self.encoder_.to(device, memory_format=memory_format(self.channels_last))
        batches = [slice(start, start + self.batch_size)
                   for start in range(0, data.n_samples, self.batch_size)]
        loader = self._batches(data, batches, device)
        # Rows done are done for good: a memmap's pages leave the resident memory.
        releasers = [page_releaser(a) for a in (out, data.X) if isinstance(a, np.ndarray)]
        with (closing(loader), torch.inference_mode(), autocast(device, self.precision),
              FaultWatch(device == "cpu") as faults):
            for rows, x in loader:
                x = to_memory_format(x, self.channels_last)
                out[rows] = self._embed(x).float().cpu().numpy()
                faults.step_done()
                for release in releasers:
                    release(rows.stop)
        return out

    def score(self, X, y=None):
        """Minus the mean pretext loss on ``X`` (higher is better).

        The pretext randomness is seeded, so the score of a fitted model is
        reproducible; this lets GridSearchCV tune a pretrainer on its own.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        device = resolve_device(self.device)
        net = self._build_network(self.encoder_, self.head_)
        net = net.to(device, memory_format=memory_format(self.channels_last)).eval()
        generator = torch.Generator(device=device).manual_seed(0)
        total = 0.0
        normalize = not self._make_batch_takes_raw
        loader = self._batches(data, split_batches(np.arange(data.n_samples), self.batch_size),
                               device, normalize=normalize)
        with closing(loader), torch.inference_mode(), FaultWatch(device == "cpu") as faults:
            for rows, x in loader:
                loss, _ = self._train_step(net, x, generator)
                total += float(loss) * len(rows)
                faults.step_done()
        return -total / data.n_samples

    def pretext_batch(self, X, *, random_state=0):
        """The pretext batch the training loop makes from images ``X``.

        What the network sees and must predict, for looking at a task or testing it:
        ``X`` is checked, normalised and prepared as at fit, then turned into
        ``(inputs, targets)`` by the method.

        Parameters
        ----------
        X : array-like, memmap or torch.Tensor
            Images of the shape seen at fit (at least 2).
        random_state : int, default=0
            Seed of the pretext randomness.

        Returns
        -------
        inputs : torch.Tensor
            ``(N, C, h, w)``, or ``(N, T, C, h, w)`` for ``T`` tiles per sample.
        targets : torch.Tensor or None
            What the head must predict; see the method's description.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skssl import RotationPretrainer
        >>> X = load_digits().images[:64]
        >>> rot = RotationPretrainer(encoder_kwargs={"channels": (4,)}, max_epochs=1).fit(X)
        >>> inputs, targets = rot.pretext_batch(X[:3])  # each image turned, and by how much
        >>> tuple(inputs.shape), targets.tolist()
        ((3, 1, 8, 8), [0, 3, 1])
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        generator = torch.Generator().manual_seed(int(random_state))
        x = self._load(data, np.arange(data.n_samples), "cpu",
                       normalize=not self._make_batch_takes_raw)
        with torch.no_grad():
            return self._make_batch(x, generator)

    @property
    def _n_features_out(self):
        return self.encoder_.num_features * (5 if self._pooling == "pyramid" else 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        # A model trained on a GPU must unpickle on a CPU-only machine.
        if not all(_on_cpu(v) for v in state.values() if isinstance(v, nn.Module)):
            state = {k: _module_to_cpu(v) for k, v in state.items()}
        return state

    # ------------------------------------------------------------------ internals
    def _check_out(self, out, data):
        """``out`` checked for :meth:`transform`, or a new float32 array."""
        shape = (data.n_samples, self._n_features_out)
        if out is None:
            return np.empty(shape, dtype=np.float32)
        if not isinstance(out, np.ndarray):
            raise TypeError(
                f"out must be a numpy array or memmap of shape {shape} and dtype float32, "
                f"got {type(out).__name__}."
            )
        if out.shape != shape:
            raise ValueError(
                f"out has shape {out.shape}, but {type(self).__name__}.transform writes "
                f"{shape[0]} rows of {shape[1]} features: allocate out with shape {shape}."
            )
        if out.dtype != np.float32:
            raise ValueError(
                f"out has dtype {out.dtype}, but the features are float32: allocate out "
                "with dtype=np.float32."
            )
        if not out.flags.writeable:
            raise ValueError(
                "out is read-only (a memmap opened with mode='r'?): open it with mode='r+' "
                "or 'w+'."
            )
        if isinstance(data.X, np.ndarray) and np.may_share_memory(out, data.X):
            raise ValueError(
                "out shares memory with X: the features would overwrite the images being "
                "read. Pass another array."
            )
        return out

    def _check_images(self, X, reset):
        if reset:
            data = check_images(X, self.image_shape, estimator_name=type(self).__name__)
            if data.n_samples < 2:
                raise ValueError(
                    f"n_samples={data.n_samples}: {type(self).__name__} needs at least 2 "
                    "images to learn from."
                )
            self._check_image_shape(data.image_shape)
            return data
        data = check_images(X, expected=self.image_shape_, estimator_name=type(self).__name__,
                            unit_scale=self.input_scale_ == "uint8")
        check_scale(data, self.input_scale_, type(self).__name__)
        return data

    def _load(self, data, rows, device, normalize=True):
        """Load rows as a (normalised,) method-prepared float batch on ``device``."""
        return self._convert(data, data.read(rows), device, normalize)

    def _convert(self, data, rows, device, normalize=True):
        """Rows read by ``data.read`` as a (normalised,) method-prepared float batch."""
        x = data.convert(rows, device)
        return self._prepare(self._normalize(x) if normalize else x)

    def _batches(self, data, items, device, normalize=True, rows_of=None):
        """:func:`~skssl._data.prefetch` of the batches of rows ``items`` (or of
        ``rows_of(item)``): yields ``(item, batch)``, the next one read while a step
        computes where that is worth it."""
        return prefetch(
            lambda item: data.read(item if rows_of is None else rows_of(item)),
            lambda rows: self._convert(data, rows, device, normalize),
            items, device, background=data.read_from_storage,
        )

    def _normalize(self, x):
        """Standardise a batch with the per-channel mean and std learnt at fit."""
        mean = torch.as_tensor(self.channel_mean_, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.channel_std_, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def _initialize(self, data, ranks):
        """Set the fitted state that a fresh fit starts from (the same on every rank)."""
        self.image_shape_ = data.image_shape
        self.n_features_in_ = data.n_features
        self._rng = ranks.same_random_state(check_random_state(self.random_state))
        mean, std = data.channel_mean_std(ranks)  # each rank reads its share of the rows
        self.channel_mean_ = mean.astype(np.float32)
        self.channel_std_ = std.astype(np.float32)
        self.input_scale_ = "uint8" if data.unit_scale else tuple(data.value_range())
        if self._make_batch_takes_raw:
            low, high = data.value_range()
            if low < 0 or high > 1:
                warnings.warn(
                    f"{type(self).__name__} augments images on the [0, 1] scale, but X has "
                    f"values in [{low:.3g}, {high:.3g}]: its colour augmentations clip them. "
                    "Pass uint8 images or floats scaled to [0, 1].",
                    UserWarning,
                    stacklevel=5,
                )
        init_seed = self._rng.randint(2**31 - 1)
        self._generator_seed = int(self._rng.randint(2**31 - 1))
        self._fit_method_state(data, self._rng)
        self._build_modules(init_seed)
        self._check_pooling()
        self._generator_state = None
        self._optimizer_state = None
        self.loss_curve_ = []
        self.history_ = []
        self.n_iter_ = 0

    def _build_modules(self, seed):
        """Build ``encoder_`` and ``head_`` from the image shape, the parameters and the
        method's fitted state alone, with torch's global generator seeded by ``seed``."""
        H, W, C = self.image_shape_
        size = tuple(self._prepare(torch.zeros(1, C, H, W)).shape[-2:])
        input_size = tuple(self._encoder_input_size(size))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder_ = build_encoder(
                self.encoder, C, input_size,
                encoder_kwargs=self._encoder_kwargs(input_size),
                channels_last=self.channels_last,
            )
            if input_size != size:
                check_encoder_takes(
                    self.encoder_, C, size, input_size, channels_last=self.channels_last,
                    method=type(self).__name__,
                )
            self._head_inputs = self._probe_head_inputs()
            self.head_ = self._build_head(self._head_inputs)
        self._built_with = self._network_values()

    def _network_values(self):
        """The plain values of ``_network_parameters`` (modules and functions left out)."""
        return {
            name: copy.deepcopy(value)
            for name in self._network_parameters
            if not callable(value := getattr(self, name))
        }

    def _check_network_parameters(self):
        """Refuse a warm fit after a change of a parameter the network was built from."""
        built = getattr(self, "_built_with", {})
        for name, value in self._network_values().items():
            if name in built and not _same_value(value, built[name]):
                raise ValueError(
                    f"{name} changed from {built[name]!r} to {value!r} since the network of "
                    f"this {type(self).__name__} was built, but a warm fit (partial_fit, "
                    "warm_start=True) trains the network it has. Set it back, or call fit "
                    "with warm_start=False to build a new network."
                )

    def _probe_head_inputs(self):
        """The head's input size: the network without head on a probe batch of the method."""
        if type(self)._make_batch is BasePretrainer._make_batch:
            return self.encoder_.num_features
        # Within the caller's seeded fork: whatever a method draws from the global
        # generator here must not move the weights of the head built next.
        self._head_inputs = None
        H, W, C = self.image_shape_
        images = torch.rand((8, C, H, W), generator=torch.Generator().manual_seed(0))
        x = self._prepare(images if self._make_batch_takes_raw else self._normalize(images))
        inputs, _ = self._make_batch(x, torch.Generator().manual_seed(0))
        net = self._build_network(self.encoder_, nn.Identity()).eval()
        try:
            with torch.no_grad():
                features = net(to_memory_format(inputs, self.channels_last))
        finally:
            net.train()
        # The features' size: their last dimension, or the channels of a feature map.
        return int(features.shape[1] if features.ndim == 4 else features.shape[-1])

    def _fit(self, X, n_epochs, warm, resume):
        self._check_fit_parameters()
        params = self.get_params(deep=False)
        # Everything a fit may change, deep-copied: modules and optimiser state are
        # trained in place by a warm fit.
        before = copy.deepcopy({k: v for k, v in vars(self).items() if k not in params})
        try:
            ranks = replicas()  # under torchrun, this process's GPU is set first
            progress = read_checkpoint(self, self.checkpoint) if resume else None
            self.device_ = resolve_device(self.device)
            reset = not (warm and hasattr(self, "encoder_"))
            data = self._check_images(X, reset=reset)
            ranks.check_same_data(data.n_samples, data.image_shape)
            ranks.check_batch_size(self.batch_size, data.n_samples)
            if reset:
                self._initialize(data, ranks)
            else:
                self._check_network_parameters()
            train_epochs(self, data, n_epochs, progress)
        except BaseException:
            # A fit that raises leaves the estimator as it was before the call.
            for name in [k for k in vars(self) if k not in params]:
                delattr(self, name)
            vars(self).update(before)
            raise
        return self

    def _check_fit_parameters(self):
        """What ``_parameter_constraints`` cannot say: no bool for a number, and
        ``checkpoint_every`` needs ``checkpoint``."""
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name)
            numeric = any(isinstance(c, Interval) for c in constraints)
            if numeric and "boolean" not in constraints and isinstance(value, (bool, np.bool_)):
                # bool is an int to Python and to scikit-learn's Interval.
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be a number, got "
                    f"{value!r}: a bool is not accepted here."
                )
        if self.checkpoint_every is not None and self.checkpoint is None:
            raise InvalidParameterError(
                f"checkpoint_every={self.checkpoint_every} needs a checkpoint file: set "
                "checkpoint, or checkpoint_every=None."
            )
        if self.checkpoint is not None:  # found now rather than after the first epoch
            folder = os.path.dirname(os.path.abspath(self.checkpoint))
            if not os.path.isdir(folder):
                raise InvalidParameterError(
                    f"checkpoint={os.fspath(self.checkpoint)!r} is in {folder}, which is not "
                    "an existing folder: create it, or set checkpoint to a file in one."
                )


BasePretrainer.__doc__ = _fill_doc(BasePretrainer)
